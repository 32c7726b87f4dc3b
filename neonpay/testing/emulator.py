"""The public face of the emulator: lifecycle, the simulated user, and assertions.

Example::

    async with BotAPIEmulator() as emu:
        bot = Bot(TOKEN, session=AiohttpSession(api=emu.aiogram_server()))
        ...
        emu.send_message_from_user(TOKEN, 42, "/start")
        invoice_call = await emu.wait_for_call("sendInvoice", timeout=5)
        result = await emu.pay(42, invoice_call.result)
        assert result.approved and emu.star_balance(TOKEN) == 5

Redelivery semantics (:meth:`BotAPIEmulator.redeliver`): while a webhook is set the
copy keeps the original ``update_id``, as Telegram's own webhook retries do; while the
bot polls, the copy gets a fresh ``update_id``, because the bot's ``offset`` has already
confirmed the original id and ``getUpdates`` would silently drop a copy that kept it.
Pass ``keep_update_id`` to force either behaviour.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from aiohttp import ClientSession

from . import stars
from .control import ControlAPI
from .core import EmulatorConfig, EmulatorCore, update_type
from .server import EmulatorServer
from .state import (
    BotState,
    CallRecord,
    ChargeRecord,
    InvoiceRecord,
    PaymentResult,
    UserState,
    WebhookDelivery,
)

if TYPE_CHECKING:
    from aiogram.client.telegram import TelegramAPIServer

__all__ = ["BotAPIEmulator", "BotRef"]

#: A bot given by its :class:`BotState`, id or token; ``None`` means the only bot.
BotRef = BotState | int | str | None

_INVOICE_LINK_PREFIX = "https://t.me/$"


def _command_entities(text: str) -> list[dict[str, Any]]:
    if not text.startswith("/") or len(text) < 2:
        return []
    command = text.split(maxsplit=1)[0]
    return [{"type": "bot_command", "offset": 0, "length": len(command.encode("utf-16-le")) // 2}]


class BotAPIEmulator:
    """A local Telegram Bot API server plus a simulated user to drive it.

    Use as an async context manager, or call :meth:`start` and :meth:`close` (both
    idempotent). Every background task is tracked and cancelled on close.

    :param host: interface to bind (loopback by default).
    :param port: port to bind; ``0`` picks a free one (see :attr:`port`).
    :param precheckout_timeout: seconds a bot has to answer a pre-checkout query (10 on
        Telegram); later answers fail with "query is too old".
    :param max_poll_timeout: cap for ``getUpdates`` ``timeout``.
    :param webhook_retry_delay: pause between webhook delivery attempts.
    :param webhook_max_attempts: delivery attempts per update before it is dropped.
    :param webhook_timeout: seconds to wait for a webhook answer.
    :param max_star_amount: largest accepted invoice amount in Stars (default 100000).
    :param max_subscription_amount: largest subscription price (Telegram: 10000).
    :param auto_register_bots: accept any well-formed token; otherwise only
        :meth:`add_bot` tokens (others get 401).
    :param strict_chats: refuse to message users who never wrote to the bot (403) and
        unknown groups (400), like Telegram; by default chats are created on demand.
    :param allow_remote_webhooks: allow webhook URLs outside loopback.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        precheckout_timeout: float = 10.0,
        max_poll_timeout: float = 50.0,
        webhook_retry_delay: float = 0.1,
        webhook_max_attempts: int = 5,
        webhook_timeout: float = 10.0,
        max_star_amount: int = 100_000,
        max_subscription_amount: int = 10_000,
        auto_register_bots: bool = True,
        strict_chats: bool = False,
        allow_remote_webhooks: bool = False,
    ) -> None:
        self.config = EmulatorConfig(
            precheckout_timeout=precheckout_timeout,
            max_poll_timeout=max_poll_timeout,
            webhook_retry_delay=webhook_retry_delay,
            webhook_max_attempts=max(1, webhook_max_attempts),
            webhook_timeout=webhook_timeout,
            max_star_amount=max_star_amount,
            max_subscription_amount=max_subscription_amount,
            auto_register_bots=auto_register_bots,
            strict_chats=strict_chats,
            allow_remote_webhooks=allow_remote_webhooks,
        )
        self.host = host
        self._core = EmulatorCore(self.config)
        self._server = EmulatorServer(self._core, host, port)
        self._server.control = ControlAPI(self).handle
        self._started = False
        self._closed = False

    def __repr__(self) -> str:
        state = "running" if self.running else ("closed" if self._closed else "not started")
        return f"BotAPIEmulator({self.host}:{self._server.port}, {state})"

    # ----------------------------------------------------------------- lifecycle

    @property
    def running(self) -> bool:
        """Whether the server is accepting requests."""
        return self._started and not self._closed

    async def start(self) -> BotAPIEmulator:
        """Bind the server (idempotent); returns ``self``."""
        if self._closed:
            raise RuntimeError("a closed BotAPIEmulator cannot be restarted")
        if self._started:
            return self
        self._core.http_session = ClientSession()
        try:
            await self._server.start()
        except BaseException:
            await self._core.http_session.close()
            self._core.http_session = None
            raise
        self._started = True
        return self

    async def close(self) -> None:
        """Stop the server, wake long polls, cancel background tasks (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if not self._started:
            return
        await self._core.shutdown()
        await self._server.stop()
        session, self._core.http_session = self._core.http_session, None
        if session is not None:
            await session.close()

    async def __aenter__(self) -> BotAPIEmulator:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # ----------------------------------------------------------------- URLs

    @property
    def port(self) -> int:
        """The bound port (known after :meth:`start`)."""
        return self._server.port

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def api_url(self, token: str, method: str | None = None) -> str:
        """``BASE/bot<token>/`` or ``BASE/bot<token>/<method>``."""
        return f"{self.base_url}/bot{token}/{method or ''}"

    @property
    def ptb_base_url(self) -> str:
        """``BASE/bot`` -- python-telegram-bot's ``base_url`` (it appends the token)."""
        return f"{self.base_url}/bot"

    @property
    def telebot_api_url(self) -> str:
        """URL template for pyTelegramBotAPI.

        Set ``telebot.apihelper.API_URL`` (sync ``TeleBot``) or
        ``telebot.asyncio_helper.API_URL`` (``AsyncTeleBot``) to this value, and restore
        the old value afterwards: both are module globals.
        """
        return f"{self.base_url}/bot{{0}}/{{1}}"

    def aiogram_server(self) -> TelegramAPIServer:
        """An aiogram ``TelegramAPIServer`` pointing at the emulator.

        Use as ``Bot(token, session=AiohttpSession(api=emu.aiogram_server()))``.
        """
        from aiogram.client.telegram import TelegramAPIServer

        return TelegramAPIServer.from_base(self.base_url)

    # ----------------------------------------------------------------- bots and users

    def add_bot(
        self, token: str, *, username: str | None = None, first_name: str | None = None
    ) -> BotState:
        """Register a bot (tokens are otherwise registered on first use)."""
        return self._core.register_bot(token, username=username, first_name=first_name)

    def bot(self, bot: BotRef = None) -> BotState:
        """The state of a bot, by token, id or state; ``None`` for the only bot."""
        return self._core.find_bot(bot)

    def bots(self) -> list[BotState]:
        """Every bot known so far (added, or registered by its first call), oldest first."""
        return list(self._core.bots.values())

    def add_user(
        self,
        user_id: int,
        *,
        first_name: str | None = None,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = "en",
        is_premium: bool = False,
    ) -> UserState:
        """Define a simulated user (users are otherwise created on first use)."""
        user = self._core.user(user_id)
        if first_name:
            user.first_name = first_name
        user.last_name = last_name
        user.username = username
        user.language_code = language_code
        user.is_premium = is_premium
        return user

    def user(self, user_id: int) -> UserState:
        """A simulated user (created on first use)."""
        return self._core.user(user_id)

    # ----------------------------------------------------------------- simulated user

    def send_message_from_user(
        self, bot: BotRef, user_id: int, text: str, *, chat_id: int | None = None
    ) -> dict[str, Any]:
        """The user writes ``text`` to the bot (in private, or in group ``chat_id``).

        Commands (``/start``) get their ``bot_command`` entity. Returns the message; the
        update is queued unless the bot's ``allowed_updates`` excludes messages.
        """
        state = self._core.find_bot(bot)
        user = self._core.user(user_id)
        if chat_id is None or chat_id == user_id:
            chat = self._core.private_chat(state, user_id)
        else:
            chat = self._core.resolve_chat(state, chat_id)
        content: dict[str, Any] = {"text": text}
        entities = _command_entities(text)
        if entities:
            content["entities"] = entities
        message = self._core.store_message(state, chat, user.to_dict(), content)
        self._core.push_update(state, "message", message)
        return message

    def press_button(self, bot: BotRef, user_id: int, message: Any, data: str) -> str:
        """The user presses an inline button with ``callback_data`` ``data``.

        ``message`` is a bot message (dict, framework message object, or message id in
        the user's private chat). Returns the callback query id; the bot's answer is then
        available from :meth:`callback_answer`.
        """
        state = self._core.find_bot(bot)
        chat_id, message_id = self._message_ref(message, default_chat=user_id)
        stored = self._core.get_message(state, chat_id, message_id)
        if stored is None:
            raise LookupError(f"no message {message_id} in chat {chat_id}")
        buttons = [
            button
            for row in stored.get("reply_markup", {}).get("inline_keyboard", [])
            for button in row
        ]
        if not any(b.get("callback_data") == data for b in buttons):
            raise ValueError(f"message {message_id} has no button with callback_data {data!r}")
        query_id = self._core.numeric_id()
        query: dict[str, Any] = {
            "id": query_id,
            "from": self._core.user(user_id).to_dict(),
            "message": stored,
            "chat_instance": str(abs(hash((state.id, chat_id))) % 10**18),
            "data": data,
        }
        self._core.callback_queries[query_id] = (state.id, query)
        self._core.push_update(state, "callback_query", query)
        return query_id

    def callback_answer(self, query_id: str) -> dict[str, Any] | None:
        """How the bot answered a callback query (``None`` if not yet)."""
        return self._core.callback_answers.get(query_id)

    async def pay(
        self,
        user_id: int,
        invoice: Any,
        *,
        bot: BotRef = None,
        timeout: float | None = None,
    ) -> PaymentResult:
        """The user pays an invoice.

        ``invoice`` is an invoice message (the dict ``sendInvoice`` returned, or an
        aiogram / PTB / telebot ``Message``), an invoice message id, an invoice link from
        ``createInvoiceLink``, or an :class:`InvoiceRecord`.

        Sends a ``pre_checkout_query`` update and waits for ``answerPreCheckoutQuery`` up
        to the deadline (``precheckout_timeout``, or ``timeout`` for this payment). If the
        bot approved in time, sends the ``successful_payment`` message, credits the bot's
        balance and records the transaction. Rejections and timeouts change nothing.
        """
        self._require_running()
        record = self._resolve_invoice(invoice, bot)
        state = self._core.find_bot(record.bot_id)
        return await stars.pay(self._core, state, user_id, record, timeout=timeout)

    async def refund(self, user_id: int, charge_id: str, *, bot: BotRef = None) -> dict[str, Any]:
        """A refund initiated on Telegram's side (e.g. by support).

        Same effects as ``refundStarPayment``; returns the ``refunded_payment`` message.
        Raises :class:`~neonpay.testing.errors.ApiError` (``CHARGE_NOT_FOUND``,
        ``CHARGE_ALREADY_REFUNDED``) like the method would.
        """
        state = self._bot_for_charge(charge_id, bot)
        return stars.refund(self._core, state, user_id, charge_id)

    async def renew_subscription(self, charge_id: str, *, bot: BotRef = None) -> dict[str, Any]:
        """Charge the next period of a subscription; returns the new payment message."""
        state = self._bot_for_charge(charge_id, bot)
        _, message = stars.renew_subscription(self._core, state, charge_id)
        return message

    def redeliver(
        self,
        update: Mapping[str, Any] | int,
        *,
        bot: BotRef = None,
        keep_update_id: bool | None = None,
    ) -> dict[str, Any] | None:
        """Deliver an already sent update once more (see the module docs for ids).

        ``update`` is an update dict (e.g. ``PaymentResult.payment_update``) or an
        ``update_id``. Returns the queued copy.
        """
        update_id = int(update if isinstance(update, int) else update["update_id"])
        candidates = (
            [self._core.find_bot(bot)] if bot is not None else list(self._core.bots.values())
        )
        found: list[tuple[BotState, dict[str, Any]]] = []
        for state in candidates:
            for item in state.history:
                if item["update_id"] != update_id:
                    continue
                if isinstance(update, Mapping) and dict(update) != item:
                    continue
                found.append((state, item))
                break
        if len(found) != 1:
            raise LookupError(
                f"update {update_id} not found" if not found else "ambiguous update: pass bot="
            )
        state, original = found[0]
        kind = update_type(original)
        keep = state.webhook is not None if keep_update_id is None else keep_update_id
        return self._core.push_update(
            state,
            kind,
            original[kind],
            update_id=update_id if keep else None,
            force=True,
        )

    def deliver_twice(
        self, update: Mapping[str, Any] | int, *, bot: BotRef = None
    ) -> dict[str, Any] | None:
        """Send an already delivered update once more, as Telegram does when it did not
        see the first delivery acknowledged (same as :meth:`redeliver`)."""
        return self.redeliver(update, bot=bot)

    def push_update(self, bot: BotRef, update: Mapping[str, Any]) -> dict[str, Any] | None:
        """Queue a hand-made update such as ``{"message": {...}}`` (``update_id`` assigned).

        Returns ``None`` when the bot's ``allowed_updates`` filters it out.
        """
        state = self._core.find_bot(bot)
        kinds = [key for key in update if key != "update_id"]
        if len(kinds) != 1:
            raise ValueError("an update has exactly one payload field")
        return self._core.push_update(state, kinds[0], dict(update[kinds[0]]))

    # ----------------------------------------------------------------- assertions

    @property
    def calls(self) -> list[CallRecord]:
        """Every Bot API call received, in order."""
        return self._core.calls

    def calls_to(self, method: str, *, bot: BotRef = None) -> list[CallRecord]:
        """Calls of ``method`` (any case), optionally for one bot."""
        bot_id = self._core.find_bot(bot).id if bot is not None else None
        wanted = method.lower()
        return [
            call
            for call in self._core.calls
            if call.method.lower() == wanted and (bot_id is None or call.bot_id == bot_id)
        ]

    async def wait_for_call(
        self,
        method: str,
        *,
        timeout: float = 5.0,
        predicate: Callable[[CallRecord], bool] | None = None,
        since: int = 0,
        bot: BotRef = None,
    ) -> CallRecord:
        """The first call of ``method`` at index ``>= since`` in :attr:`calls` that
        satisfies ``predicate``, waiting up to ``timeout`` seconds for it.

        Pass ``since=len(emu.calls)`` to wait for a new call only. Raises
        :class:`TimeoutError` when none arrives in time.
        """
        bot_id = self._core.find_bot(bot).id if bot is not None else None
        wanted = method.lower()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        index = since
        while True:
            calls = self._core.calls
            while index < len(calls):
                call = calls[index]
                index += 1
                if call.method.lower() != wanted:
                    continue
                if bot_id is not None and call.bot_id != bot_id:
                    continue
                if predicate is None or predicate(call):
                    return call
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"no {method} call within {timeout} s")
            await self._core.wait_calls_changed(remaining)

    def sent_messages(
        self, chat_id: int | None = None, *, bot: BotRef = None
    ) -> list[dict[str, Any]]:
        """Messages sent by bots (latest version after edits; deleted ones included)."""
        bot_id = self._core.find_bot(bot).id if bot is not None else None
        return [
            message
            for owner, message in self._core.bot_messages
            if (bot_id is None or owner == bot_id)
            and (chat_id is None or message["chat"]["id"] == chat_id)
        ]

    async def wait_for_message(
        self,
        chat_id: int | None = None,
        *,
        timeout: float = 5.0,
        predicate: Callable[[dict[str, Any]], bool] | None = None,
        since: int = 0,
        bot: BotRef = None,
    ) -> dict[str, Any]:
        """The first bot message (index ``>= since`` in :meth:`sent_messages`) matching,
        waiting up to ``timeout`` seconds; raises :class:`TimeoutError`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            messages = self.sent_messages(chat_id, bot=bot)[since:]
            for message in messages:
                if predicate is None or predicate(message):
                    return message
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"no bot message within {timeout} s")
            await self._core.wait_calls_changed(remaining)

    def star_balance(self, bot: BotRef = None) -> int:
        """The bot's Stars balance."""
        return self._core.find_bot(bot).star_balance

    def transactions(self, bot: BotRef = None) -> list[dict[str, Any]]:
        """The bot's ``StarTransaction`` objects, oldest first."""
        return list(self._core.find_bot(bot).transactions)

    def charges(self, bot: BotRef = None) -> list[ChargeRecord]:
        """The bot's successful payments (refunded ones flagged)."""
        return list(self._core.find_bot(bot).charges.values())

    def invoices(self, bot: BotRef = None) -> list[InvoiceRecord]:
        """Invoices created, oldest first (all bots unless ``bot`` is given)."""
        bot_id = self._core.find_bot(bot).id if bot is not None else None
        return [i for i in self._core.invoices.values() if bot_id is None or i.bot_id == bot_id]

    def updates(self, bot: BotRef = None) -> list[dict[str, Any]]:
        """Every update queued for the bot, in order (delivered or not)."""
        return list(self._core.find_bot(bot).history)

    def pending_updates(self, bot: BotRef = None) -> list[dict[str, Any]]:
        """Updates not yet confirmed (polling) or delivered (webhook)."""
        return list(self._core.find_bot(bot).pending)

    def webhook_deliveries(self, bot: BotRef = None) -> list[WebhookDelivery]:
        """Every webhook delivery attempt."""
        bot_id = self._core.find_bot(bot).id if bot is not None else None
        return [d for d in self._core.webhook_deliveries if bot_id is None or d.bot_id == bot_id]

    # ----------------------------------------------------------------- helpers

    def _require_running(self) -> None:
        if not self.running:
            raise RuntimeError("the emulator is not running: use 'async with' or start()")

    @staticmethod
    def _message_ref(message: Any, *, default_chat: int | None) -> tuple[int, int]:
        if isinstance(message, int):
            if default_chat is None:
                raise ValueError("a bare message id needs a chat")
            return default_chat, message
        if isinstance(message, Mapping):
            return int(message["chat"]["id"]), int(message["message_id"])
        message_id = getattr(message, "message_id", None)
        chat = getattr(message, "chat", None)
        chat_id = getattr(chat, "id", None)
        if isinstance(message_id, int) and isinstance(chat_id, int):
            return chat_id, message_id
        raise TypeError(f"not a message: {type(message).__name__}")

    def _resolve_invoice(self, invoice: Any, bot: BotRef) -> InvoiceRecord:
        if isinstance(invoice, InvoiceRecord):
            return invoice
        bot_id = self._core.find_bot(bot).id if bot is not None else None
        if isinstance(invoice, str):
            key = invoice.removeprefix(_INVOICE_LINK_PREFIX)
            record = self._core.invoices.get(key)
            if record is None or (bot_id is not None and record.bot_id != bot_id):
                raise LookupError(f"unknown invoice link {invoice!r}")
            return record
        if isinstance(invoice, int) and not isinstance(invoice, bool):
            matches = [
                r
                for r in self._core.invoices.values()
                if r.message_id == invoice and (bot_id is None or r.bot_id == bot_id)
            ]
        else:
            chat_id, message_id = self._message_ref(invoice, default_chat=None)
            matches = [
                r
                for r in self._core.invoices.values()
                if r.message_id == message_id
                and r.chat_id == chat_id
                and (bot_id is None or r.bot_id == bot_id)
            ]
        if len(matches) != 1:
            raise LookupError(
                "no such invoice message" if not matches else "ambiguous invoice: pass bot="
            )
        return matches[0]

    def _bot_for_charge(self, charge_id: str, bot: BotRef) -> BotState:
        if bot is not None:
            return self._core.find_bot(bot)
        for state in self._core.bots.values():
            if charge_id in state.charges:
                return state
        return self._core.find_bot(None)
