"""A raw Bot API bot over aiohttp: :class:`RawBotAPI`, and its payment adapter.

For bots that use no framework::

    bot = RawBotAPI(token)                       # api_base="https://api.telegram.org"
    neonpay = create_neonpay(bot_instance=bot)
    await bot.start_polling()                    # or serve bot.webhook_handler(secret)
    ...
    await bot.stop_polling(); await bot.close()

Updates come from :meth:`RawBotAPI.start_polling` (``getUpdates``, handled one at a time
in order; an update is confirmed only after it was handled, so a crash redelivers it
and the idempotent payment path ignores what it already recorded) or from a webhook:
:meth:`RawBotAPI.webhook_handler` is an aiohttp handler that checks the
``X-Telegram-Bot-Api-Secret-Token`` header in constant time (401 otherwise) and answers
500 when a payment could not be recorded, so that Telegram delivers it again. NEONPAY's
payment updates are handled by the attached adapter; every other update goes to the
callbacks given to :meth:`RawBotAPI.on_update`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import inspect
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from neonpay.adapters.base import AdapterBase
from neonpay.adapters.updates import is_ours
from neonpay.core.gateway import BotAPIError, BotLibrary
from neonpay.errors import ConfigurationError, MissingExtraError, StorageError, mask_token

if TYPE_CHECKING:
    import aiohttp
    from aiohttp import web

    from neonpay.core.cashier import Cashier
    from neonpay.core.invoices import Invoice

__all__ = ["SECRET_HEADER", "RawAPIAdapter", "RawBotAPI", "UpdateCallback"]

logger = logging.getLogger("neonpay.adapters.raw")

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 (a header name)
DEFAULT_API_BASE = "https://api.telegram.org"

#: Receives every update NEONPAY does not handle itself (a plain or async function).
UpdateCallback = Callable[[dict[str, Any]], Any]
#: Handles NEONPAY's payment updates; returns whether it did.
UpdateRouter = Callable[[Mapping[str, Any]], Awaitable[bool]]

_TOKEN_RE = re.compile(r"\d+:[A-Za-z0-9_-]+")
_SECRET_RE = re.compile(r"[A-Za-z0-9_-]{1,256}")
_NOT_OURS = "This invoice cannot be paid here. Please ask the bot for a new one."


def _aiohttp() -> Any:
    try:
        import aiohttp
    except ImportError as exc:  # pragma: no cover - aiohttp comes with the sync extra
        raise MissingExtraError("sync", "the raw Bot API adapter") from exc
    return aiohttp


class RawBotAPI:
    """A minimal Bot API client: calls, long polling and webhook updates.

    Args:
        token: the bot token (never shown in a repr, a log line or an error).
        api_base: the Bot API server (a local Bot API server or the emulator in tests).
        session: an ``aiohttp.ClientSession`` to use (then the caller closes it);
            by default one is opened on first use and closed by :meth:`close`.
        request_timeout: seconds for each call (long polls get their timeout on top).

    Raises:
        ConfigurationError: the token or the URL is malformed.
    """

    def __init__(
        self,
        token: str,
        api_base: str = DEFAULT_API_BASE,
        session: aiohttp.ClientSession | None = None,
        *,
        request_timeout: float = 30.0,
    ) -> None:
        if not isinstance(token, str) or not _TOKEN_RE.fullmatch(token):
            raise ConfigurationError("token must look like a bot token: '123456:ABC...'")
        parts = urlsplit(api_base) if isinstance(api_base, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigurationError(f"api_base must be an http(s) URL: {api_base!r}")
        self._token = token
        self.api_base = api_base.rstrip("/")
        self.request_timeout = request_timeout
        self._session = session
        self._owns_session = session is None
        self._router: UpdateRouter | None = None
        self._listeners: list[UpdateCallback] = []
        self._poll_task: asyncio.Task[None] | None = None
        self._offset = 0
        self._closed = False

    def __repr__(self) -> str:
        return f"<RawBotAPI bot={mask_token(self._token)} api_base={self.api_base}>"

    @property
    def token(self) -> str:
        """The bot token (handle with care: it is the bot's password)."""
        return self._token

    @property
    def bot_id(self) -> int:
        """The bot's user id (the digits before the colon of the token)."""
        return int(self._token.split(":", 1)[0])

    # --- lifecycle ---------------------------------------------------------------------
    async def close(self) -> None:
        """Stop polling and close the session this object opened. Idempotent."""
        await self.stop_polling()
        self._closed = True
        session, self._session = self._session, None
        if session is not None and self._owns_session:
            await session.close()

    async def __aenter__(self) -> RawBotAPI:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def _client(self) -> aiohttp.ClientSession:
        if self._closed:
            raise ConfigurationError("this RawBotAPI is closed")
        if self._session is None:
            self._session = _aiohttp().ClientSession()
        return self._session

    # --- calls -------------------------------------------------------------------------
    async def call(
        self,
        method: str,
        params: Mapping[str, Any] | None = None,
        *,
        request_timeout: float | None = None,
        **kwargs: Any,
    ) -> Any:
        """Call a Bot API method with JSON parameters (``params`` and keyword arguments;
        None values are left out); returns the ``result``.

        Raises:
            BotAPIError: Telegram answered ``ok: false``, or the network failed.
        """
        aiohttp = _aiohttp()
        merged = {**(params or {}), **kwargs}
        body = {key: value for key, value in merged.items() if value is not None}
        url = f"{self.api_base}/bot{self._token}/{method}"
        wait = aiohttp.ClientTimeout(total=request_timeout or self.request_timeout)
        try:
            async with self._client().post(url, json=body, timeout=wait) as response:
                try:
                    answer = await response.json(content_type=None)
                except ValueError:
                    answer = None
                status = response.status
        except asyncio.TimeoutError:
            raise BotAPIError(method, "the request timed out") from None
        except aiohttp.ClientError as exc:
            # Not chained: some aiohttp errors carry the request URL, which holds the token.
            raise BotAPIError(method, f"network error: {type(exc).__name__}") from None
        if not isinstance(answer, dict):
            raise BotAPIError(method, f"not a Bot API answer (HTTP {status})", error_code=status)
        if not answer.get("ok"):
            raise BotAPIError(
                method,
                str(answer.get("description") or "unknown error"),
                error_code=answer.get("error_code") or status,
            )
        return answer.get("result")

    async def set_webhook(self, url: str, *, secret_token: str, **params: Any) -> None:
        """``setWebhook`` with a secret token (required: the handler checks it).

        Raises:
            ConfigurationError: a malformed secret token.
            BotAPIError: Telegram refused.
        """
        _check_secret(secret_token)
        await self.call("setWebhook", url=url, secret_token=secret_token, **params)

    async def delete_webhook(self, *, drop_pending_updates: bool = False) -> None:
        """``deleteWebhook``.

        Raises:
            BotAPIError: Telegram refused.
        """
        await self.call("deleteWebhook", drop_pending_updates=drop_pending_updates)

    # --- updates -------------------------------------------------------------------------
    def on_update(self, callback: UpdateCallback) -> UpdateCallback:
        """Receive every update that is not one of NEONPAY's payments (decorator-friendly)."""
        if not callable(callback):
            raise ConfigurationError("an update callback must be callable")
        self._listeners.append(callback)
        return callback

    def attach_router(self, router: UpdateRouter) -> None:
        """Set the handler of NEONPAY's payment updates (done by :class:`RawAPIAdapter`)."""
        self._router = router

    async def process_update(self, update: Mapping[str, Any]) -> None:
        """Handle one update (a decoded JSON object).

        Raises:
            StorageError: a payment could not be recorded (deliver the update again).
        """
        if self._router is not None and await self._router(update):
            return
        if not self._listeners:
            await self._refuse_foreign_checkout(update)
            return
        for listener in list(self._listeners):
            try:
                outcome = listener(dict(update))
                if inspect.isawaitable(outcome):
                    await outcome
            except Exception:
                logger.exception("an update callback failed on update %s", update.get("update_id"))

    async def _refuse_foreign_checkout(self, update: Mapping[str, Any]) -> None:
        query = update.get("pre_checkout_query")
        if not isinstance(query, Mapping) or "id" not in query:
            return
        try:
            await self.call(
                "answerPreCheckoutQuery",
                pre_checkout_query_id=str(query["id"]),
                ok=False,
                error_message=_NOT_OURS,
            )
        except BotAPIError as exc:
            logger.warning("refusing a foreign pre-checkout query failed: %s", exc)

    async def run_polling(
        self,
        *,
        timeout: int = 30,
        allowed_updates: list[str] | None = None,
        error_delay: float = 1.0,
    ) -> None:
        """Long-poll ``getUpdates`` and handle updates until cancelled.

        A failed poll is logged and retried after ``error_delay`` (doubling up to 30 s).
        An update whose payment could not be recorded (``StorageError``) is not
        confirmed: it is fetched and handled again after the same delay. Any other error
        of a handler is logged and the update confirmed.
        """
        delay = error_delay
        while True:
            try:
                updates = await self.call(
                    "getUpdates",
                    _poll_params(self._offset, timeout, allowed_updates),
                    request_timeout=self.request_timeout + timeout,
                )
            except BotAPIError as exc:
                logger.warning("getUpdates failed: %s; retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            delay = error_delay
            for update in updates if isinstance(updates, list) else []:
                if not isinstance(update, dict) or not isinstance(update.get("update_id"), int):
                    continue
                try:
                    await self.process_update(update)
                except StorageError as exc:
                    # Not confirmed: the next getUpdates returns it again, once the store
                    # works, so no payment is lost while the database is away.
                    logger.error(
                        "update %s not handled (%s); retrying in %.1f s",
                        update["update_id"],
                        exc,
                        delay,
                    )
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 30.0)
                    break
                except Exception:
                    logger.exception("update %s could not be handled", update["update_id"])
                self._offset = update["update_id"] + 1

    async def start_polling(
        self,
        *,
        timeout: int = 30,
        allowed_updates: list[str] | None = None,
        error_delay: float = 1.0,
    ) -> None:
        """Start :meth:`run_polling` in a background task (stopped by :meth:`stop_polling`).

        Raises:
            ConfigurationError: polling is already running.
        """
        if self._poll_task is not None and not self._poll_task.done():
            raise ConfigurationError("polling is already running")
        self._poll_task = asyncio.create_task(
            self.run_polling(
                timeout=timeout, allowed_updates=allowed_updates, error_delay=error_delay
            ),
            name="neonpay-raw-polling",
        )

    async def stop_polling(self) -> None:
        """Cancel the polling task and wait for it. Idempotent."""
        task, self._poll_task = self._poll_task, None
        if task is None:
            return
        task.cancel()
        # wait() does not raise the task's CancelledError, only our own cancellation.
        await asyncio.wait({task})
        if not task.cancelled() and task.exception() is not None:
            logger.error("polling had stopped with an error: %r", task.exception())

    def webhook_handler(
        self, secret_token: str
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        """An aiohttp request handler for Telegram's webhook deliveries.

        401 when ``X-Telegram-Bot-Api-Secret-Token`` is missing or wrong (compared in
        constant time; nothing is handled), 400 for a body that is not a JSON object,
        500 when a payment could not be recorded (Telegram retries), else 200.

        Raises:
            ConfigurationError: a malformed secret token.
        """
        _check_secret(secret_token)
        from aiohttp import web

        expected = hashlib.sha256(secret_token.encode()).digest()

        async def handle(request: web.Request) -> web.StreamResponse:
            given = request.headers.get(SECRET_HEADER, "")
            digest = hashlib.sha256(given.encode(errors="replace")).digest()
            if not hmac.compare_digest(digest, expected):
                return web.json_response({"ok": False, "error": "unauthorized"}, status=401)
            try:
                update = await request.json()
            except ValueError:
                return web.json_response({"ok": False, "error": "malformed JSON"}, status=400)
            if not isinstance(update, dict):
                return web.json_response({"ok": False, "error": "not an update"}, status=400)
            try:
                await self.process_update(update)
            except StorageError:
                return web.json_response({"ok": False, "error": "try again"}, status=500)
            except Exception:
                logger.exception("webhook update %s could not be handled", update.get("update_id"))
            return web.json_response({"ok": True})

        return handle


def _poll_params(offset: int, timeout: int, allowed_updates: list[str] | None) -> dict[str, Any]:
    params: dict[str, Any] = {"timeout": timeout}
    if offset:
        params["offset"] = offset
    if allowed_updates is not None:
        params["allowed_updates"] = allowed_updates
    return params


def _check_secret(secret_token: str) -> None:
    if not isinstance(secret_token, str) or not _SECRET_RE.fullmatch(secret_token):
        raise ConfigurationError(
            "secret_token must be 1-256 characters of A-Z, a-z, 0-9, '_' and '-'"
        )


class RawAPIAdapter(AdapterBase):
    """The payment gateway over a :class:`RawBotAPI`; routes its payment updates."""

    library = BotLibrary.BOTAPI

    def __init__(self, bot: RawBotAPI, cashier: Cashier) -> None:
        super().__init__(bot, cashier, bot.token)
        self.bot: RawBotAPI = bot
        bot.attach_router(self.route)

    async def route(self, update: Mapping[str, Any]) -> bool:
        """Handle ``update`` when it is one of NEONPAY's payment updates.

        Raises:
            StorageError: a payment could not be recorded.
        """
        query = update.get("pre_checkout_query")
        if isinstance(query, Mapping) and is_ours(query):
            query_id = str(query.get("id", ""))

            async def answer(ok: bool, error_message: str | None) -> None:
                await self.bot.call(
                    "answerPreCheckoutQuery",
                    pre_checkout_query_id=query_id,
                    ok=ok,
                    error_message=error_message,
                )

            await self.pre_checkout(query, answer)
            return True
        message = update.get("message")
        if not isinstance(message, Mapping):
            return False
        payment = message.get("successful_payment")
        if isinstance(payment, Mapping) and is_ours(payment):
            chat_id = (message.get("chat") or {}).get("id")

            async def reply(text: str) -> None:
                await self.bot.call("sendMessage", chat_id=chat_id, text=text)

            await self.successful_payment(message, reply)
            return True
        refund = message.get("refunded_payment")
        if isinstance(refund, Mapping) and is_ours(refund):
            await self.refunded_payment(message)
            return True
        return False

    # --- PaymentGateway ----------------------------------------------------------------
    async def send_invoice(self, chat_id: int, invoice: Invoice) -> dict[str, Any]:
        message = await self.bot.call("sendInvoice", invoice.send_invoice_params(chat_id))
        return dict(message) if isinstance(message, dict) else {"result": message}

    async def create_invoice_link(self, invoice: Invoice) -> str:
        link = await self.bot.call("createInvoiceLink", invoice.invoice_link_params())
        return str(link)

    async def refund_star_payment(self, user_id: int, charge_id: str) -> None:
        await self.bot.call(
            "refundStarPayment", user_id=user_id, telegram_payment_charge_id=charge_id
        )

    async def send_message(self, chat_id: int, text: str) -> None:
        await self.bot.call("sendMessage", chat_id=chat_id, text=text)
