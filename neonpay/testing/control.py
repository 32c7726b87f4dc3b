"""The control API: acting as the simulated user from another process.

Served by the emulator under :data:`CONTROL_PREFIX` (``/_control/...``), a path no Bot
API method can take (those are ``/bot<token>/<method>``). JSON in, JSON out; every answer
is ``{"ok": true, ...}`` or ``{"ok": false, "error": "..."}`` with a 4xx status. Tokens
are never shown unmasked. ``neonpay emulator send|pay|messages|...`` are its clients.

Only loopback clients are served (even when the emulator listens on another interface),
the ``Host`` header must name a loopback host (a web page cannot reach it by DNS
rebinding), and a body must be sent as ``application/json`` (a web page cannot send one
across origins without a preflight, which is not answered).

| route | what it does |
| --- | --- |
| ``GET /_control/bots`` | the bots that have called the emulator |
| ``POST /_control/send`` | ``{"bot", "user", "text", "wait"}``: the user writes to the bot |
| ``GET /_control/messages?bot=&user=&since=&wait=`` | what the bot sent to the user |
| ``GET /_control/invoices?bot=&user=`` | the invoices the bot sent to the user |
| ``POST /_control/pay`` | ``{"bot", "user", "invoice", "wait"}``: the user pays |
| ``POST /_control/refund`` | ``{"bot", "user", "charge_id"}``: a refund by Telegram |

``bot`` is the bot's username (``@`` optional) or id, and may be left out when only one
bot is known. ``wait`` (seconds, at most :data:`MAX_WAIT`) waits for the bot's first
reply; ``replies`` then holds what the bot sent after the action.
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from aiohttp import web

from neonpay.limits import loads_checked, text_problem

from .errors import ApiError
from .state import BotState, ChargeRecord, InvoiceRecord

if TYPE_CHECKING:
    from .emulator import BotAPIEmulator

__all__ = [
    "CONTROL_PREFIX",
    "MAX_CONTROL_BODY",
    "MAX_TEXT_LENGTH",
    "MAX_USER_ID",
    "MAX_WAIT",
    "ControlAPI",
    "ControlError",
    "summary",
]

#: Where the control API lives; no ``/bot<token>/<method>`` path starts with it.
CONTROL_PREFIX = "/_control/"
#: The largest request body the control API reads, in bytes.
MAX_CONTROL_BODY = 64 * 1024
#: The longest message text a user may send (Telegram's limit).
MAX_TEXT_LENGTH = 4096
#: The largest user id accepted (Telegram's ids fit in 52 bits; JSON numbers in 53).
MAX_USER_ID = 2**53 - 1
#: The longest wait for a bot's reply, in seconds.
MAX_WAIT = 60.0

_LOOPBACK_NAMES = frozenset({"localhost", "localhost."})


class ControlError(Exception):
    """A refused control request: an HTTP status and a one-line reason."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _ok(body: dict[str, Any]) -> web.Response:
    return web.json_response({"ok": True, **body})


def _refused(status: int, message: str) -> web.Response:
    return web.json_response({"ok": False, "error": message}, status=status)


def summary(message: Mapping[str, Any]) -> str:
    """One line saying what a message holds (its text, an invoice, a payment...)."""
    if "text" in message:
        text = str(message["text"])
    elif "invoice" in message:
        invoice = message["invoice"]
        text = (
            f"invoice: {invoice.get('title')} ({invoice.get('total_amount')} "
            f"{invoice.get('currency')})"
        )
    elif "successful_payment" in message:
        paid = message["successful_payment"]
        text = f"payment: {paid.get('total_amount')} {paid.get('currency')}"
    elif "refunded_payment" in message:
        refunded = message["refunded_payment"]
        text = f"refund: {refunded.get('total_amount')} {refunded.get('currency')}"
    elif "caption" in message:
        text = str(message["caption"])
    else:
        kinds = [k for k in message if k not in ("message_id", "date", "chat", "from")]
        text = f"({', '.join(kinds) or 'empty'})"
    buttons = [
        str(button.get("text"))
        for row in message.get("reply_markup", {}).get("inline_keyboard", [])
        for button in row
    ]
    return text + (f" [buttons: {', '.join(buttons)}]" if buttons else "")


def _message_view(message: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "message_id": message["message_id"],
        "date": message.get("date"),
        "summary": summary(message),
        "message": dict(message),
    }


def _invoice_view(record: InvoiceRecord, paid: bool) -> dict[str, Any]:
    return {
        "message_id": record.message_id,
        "title": record.title,
        "description": record.description,
        "amount": record.amount,
        "currency": record.currency,
        "payload": record.payload,
        "subscription_period": record.subscription_period,
        "date": record.date,
        "paid": paid,
    }


def _charge_view(charge: ChargeRecord) -> dict[str, Any]:
    return {
        "charge_id": charge.charge_id,
        "amount": charge.amount,
        "currency": charge.currency,
        "payload": charge.payload,
        "invoice_message_id": charge.invoice.message_id,
        "refunded": charge.refunded,
    }


def _bot_view(bot: BotState) -> dict[str, Any]:
    return {
        "id": bot.id,
        "username": bot.username,
        "first_name": bot.first_name,
        "token": bot.masked_token,
        "star_balance": bot.star_balance,
        "webhook": bot.webhook is not None,
    }


def _loopback_host(header: str | None) -> bool:
    if not header:
        return False
    host = header.strip().lower()
    if host.startswith("["):
        host = host[1:].partition("]")[0]
    elif host.count(":") == 1:
        host = host.partition(":")[0]
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _loopback_peer(remote: str | None) -> bool:
    if not remote:
        return False
    try:
        return ipaddress.ip_address(remote).is_loopback
    except ValueError:
        return False


class _Fields:
    """The fields of one request (query or JSON body), checked one by one."""

    def __init__(self, values: Mapping[str, Any], *, from_query: bool) -> None:
        self.values = values
        self.from_query = from_query

    def refuse_unknown(self, known: set[str]) -> None:
        unknown = sorted(set(self.values) - known)
        if unknown:
            raise ControlError(
                400, f"unknown field {unknown[0]!r} (known: {', '.join(sorted(known))})"
            )

    def _number(self, name: str) -> int | float | None:
        value = self.values.get(name)
        if value is None:
            return None
        if self.from_query and isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                try:
                    return float(value)
                except ValueError:
                    raise ControlError(400, f"{name} must be a number, not {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ControlError(400, f"{name} must be a number")
        return value

    def user(self) -> int:
        value = self._number("user")
        if value is None:
            raise ControlError(400, "user is required (the simulated user's id)")
        if not isinstance(value, int) or not 1 <= value <= MAX_USER_ID:
            raise ControlError(400, f"user must be a whole number from 1 to {MAX_USER_ID}")
        return value

    def count(self, name: str) -> int:
        value = self._number(name)
        if value is None:
            return 0
        if not isinstance(value, int) or value < 0:
            raise ControlError(400, f"{name} must be a whole number of at least 0")
        return value

    def wait(self) -> float:
        value = self._number("wait")
        if value is None:
            return 0.0
        if not 0 <= value <= MAX_WAIT:
            raise ControlError(400, f"wait must be from 0 to {MAX_WAIT:g} seconds")
        return float(value)

    def text(self, name: str, *, required: bool = True) -> str | None:
        value = self.values.get(name)
        if value is None:
            if required:
                raise ControlError(400, f"{name} is required")
            return None
        if not isinstance(value, str):
            raise ControlError(400, f"{name} must be text")
        problem = text_problem(value)
        if problem is not None:
            raise ControlError(400, f"{name} {problem}")
        return value


#: A control route: the request's fields in, the answer's fields out.
_Route = Callable[[_Fields], Awaitable[dict[str, Any]]]


class ControlAPI:
    """The ``/_control/...`` routes of one emulator."""

    def __init__(self, emulator: BotAPIEmulator) -> None:
        self.emulator = emulator
        self._routes: dict[tuple[str, str], _Route] = {
            ("GET", "bots"): self._bots,
            ("POST", "send"): self._send,
            ("GET", "messages"): self._messages,
            ("GET", "invoices"): self._invoices,
            ("POST", "pay"): self._pay,
            ("POST", "refund"): self._refund,
        }

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Answer one control request (the path starts with :data:`CONTROL_PREFIX`)."""
        try:
            return _ok(await self._answer(request))
        except ControlError as error:
            return _refused(error.status, error.message)
        except ApiError as error:
            return _refused(400, error.description)

    async def _answer(self, request: web.Request) -> dict[str, Any]:
        if not _loopback_peer(request.remote) or not _loopback_host(request.headers.get("Host")):
            raise ControlError(403, "the control API answers loopback clients only")
        name = request.path[len(CONTROL_PREFIX) :].strip("/")
        route = self._routes.get((request.method, name))
        if route is None:
            if any(path == name for _, path in self._routes):
                raise ControlError(405, f"use {self._method_of(name)} for {CONTROL_PREFIX}{name}")
            known = ", ".join(sorted({path for _, path in self._routes}))
            raise ControlError(404, f"no control route {name!r} (known: {known})")
        if request.method == "GET":
            return await route(_Fields(dict(request.query), from_query=True))
        if request.content_type != "application/json":
            raise ControlError(415, "send the body as application/json")
        if request.content_length is not None and request.content_length > MAX_CONTROL_BODY:
            raise ControlError(413, f"the body is larger than {MAX_CONTROL_BODY} bytes")
        raw = await request.content.read(MAX_CONTROL_BODY + 1)
        if len(raw) > MAX_CONTROL_BODY:
            raise ControlError(413, f"the body is larger than {MAX_CONTROL_BODY} bytes")
        try:
            body = loads_checked(raw) if raw else {}
        except (ValueError, UnicodeDecodeError) as exc:
            raise ControlError(400, f"the body is not valid JSON: {exc}") from None
        if not isinstance(body, dict):
            raise ControlError(400, "the body must be a JSON object")
        return await route(_Fields(body, from_query=False))

    def _method_of(self, name: str) -> str:
        return next(method for method, path in self._routes if path == name)

    # ----------------------------------------------------------------- lookups

    def _bot(self, fields: _Fields) -> BotState:
        ref = fields.text("bot", required=False)
        bots = self.emulator.bots()
        known = ", ".join(f"@{b.username} ({b.id})" for b in bots) or "none yet"
        if ref is None or not ref.strip():
            if len(bots) == 1:
                return bots[0]
            if not bots:
                raise ControlError(
                    404, "no bot has called the emulator yet: start your bot against it first"
                )
            raise ControlError(400, f"several bots are known: name one with bot ({known})")
        wanted = ref.strip().removeprefix("@")
        for bot in bots:
            if (wanted.isdigit() and int(wanted) == bot.id) or bot.username.lower() == (
                wanted.lower()
            ):
                return bot
        shown = wanted[:64] + ("…" if len(wanted) > 64 else "")
        raise ControlError(404, f"no bot {shown!r} (known: {known})")

    def _invoices_to(self, bot: BotState, user: int) -> list[InvoiceRecord]:
        return [
            record
            for record in self.emulator.invoices(bot)
            if record.chat_id == user and record.message_id is not None
        ]

    def _paid(self, bot: BotState, record: InvoiceRecord) -> bool:
        return any(charge.invoice is record for charge in bot.charges.values())

    async def _replies(self, bot: BotState, user: int, since: int, wait: float) -> list[Any]:
        if wait > 0:
            with contextlib.suppress(TimeoutError):  # no reply yet: show what there is
                await self.emulator.wait_for_message(user, bot=bot, since=since, timeout=wait)
        return [_message_view(m) for m in self.emulator.sent_messages(user, bot=bot)[since:]]

    # ----------------------------------------------------------------- routes

    async def _bots(self, fields: _Fields) -> dict[str, Any]:
        fields.refuse_unknown(set())
        return {"bots": [_bot_view(bot) for bot in self.emulator.bots()]}

    async def _send(self, fields: _Fields) -> dict[str, Any]:
        fields.refuse_unknown({"bot", "user", "text", "wait"})
        bot, user, wait = self._bot(fields), fields.user(), fields.wait()
        text = fields.text("text")
        assert text is not None
        if not text.strip():
            raise ControlError(400, "text must not be empty")
        if len(text) > MAX_TEXT_LENGTH:
            raise ControlError(400, f"text is longer than {MAX_TEXT_LENGTH} characters")
        since = len(self.emulator.sent_messages(user, bot=bot))
        message = self.emulator.send_message_from_user(bot, user, text)
        return {
            "bot": bot.username,
            "sent": _message_view(message),
            "replies": await self._replies(bot, user, since, wait),
        }

    async def _messages(self, fields: _Fields) -> dict[str, Any]:
        fields.refuse_unknown({"bot", "user", "since", "wait"})
        bot, user = self._bot(fields), fields.user()
        since, wait = fields.count("since"), fields.wait()
        return {"bot": bot.username, "messages": await self._replies(bot, user, since, wait)}

    async def _invoices(self, fields: _Fields) -> dict[str, Any]:
        fields.refuse_unknown({"bot", "user"})
        bot, user = self._bot(fields), fields.user()
        records = self._invoices_to(bot, user)
        return {
            "bot": bot.username,
            "invoices": [_invoice_view(r, self._paid(bot, r)) for r in records],
        }

    async def _pay(self, fields: _Fields) -> dict[str, Any]:
        fields.refuse_unknown({"bot", "user", "invoice", "wait"})
        bot, user, wait = self._bot(fields), fields.user(), fields.wait()
        records = self._invoices_to(bot, user)
        wanted = fields.count("invoice") if fields.values.get("invoice") is not None else None
        if wanted is None:
            if not records:
                raise ControlError(404, f"@{bot.username} has sent no invoice to user {user}")
            record = records[-1]
        else:
            found = [r for r in records if r.message_id == wanted]
            if not found:
                raise ControlError(
                    404, f"@{bot.username} sent user {user} no invoice in message {wanted}"
                )
            record = found[0]
        since = len(self.emulator.sent_messages(user, bot=bot))
        result = await self.emulator.pay(user, record, bot=bot)
        return {
            "bot": bot.username,
            "invoice": _invoice_view(record, self._paid(bot, record)),
            "approved": result.approved,
            "error_message": result.error_message,
            "timed_out": result.timed_out,
            "charge_id": result.charge_id,
            "replies": await self._replies(bot, user, since, wait if result.approved else 0),
        }

    async def _refund(self, fields: _Fields) -> dict[str, Any]:
        fields.refuse_unknown({"bot", "user", "charge_id"})
        bot, user = self._bot(fields), fields.user()
        charge_id = fields.text("charge_id", required=False)
        charges = [c for c in bot.charges.values() if c.user_id == user]
        if charge_id is None:
            open_charges = [c for c in charges if not c.refunded]
            if not open_charges:
                raise ControlError(404, f"user {user} has no payment to @{bot.username} to refund")
            charge = open_charges[-1]
        else:
            match = [c for c in charges if c.charge_id == charge_id]
            if not match:
                raise ControlError(404, f"user {user} has no payment {charge_id[:80]!r}")
            charge = match[0]
        if charge.refunded:
            raise ControlError(409, f"payment {charge.charge_id!r} is already refunded")
        message = await self.emulator.refund(user, charge.charge_id, bot=bot)
        return {"bot": bot.username, "refund": _charge_view(charge), "sent": _message_view(message)}
