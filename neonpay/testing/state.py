"""State kept by the emulator: bots, users, chats, invoices, charges and records.

Plain dataclasses; the logic that changes them lives in :mod:`neonpay.testing.core` and
:mod:`neonpay.testing.stars`. Telegram objects (messages, updates) are kept as JSON-ready
dicts so they can be served without conversion.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from .tokens import mask_token

__all__ = [
    "DEFAULT_UPDATE_TYPES",
    "BotState",
    "CallRecord",
    "ChargeRecord",
    "ChatState",
    "InvoiceRecord",
    "PaymentResult",
    "PreCheckoutRecord",
    "UserState",
    "WebhookConfig",
    "WebhookDelivery",
]

#: Update types delivered when ``allowed_updates`` was never set (or set to ``[]``).
DEFAULT_UPDATE_TYPES = frozenset(
    {
        "message",
        "edited_message",
        "channel_post",
        "edited_channel_post",
        "business_connection",
        "business_message",
        "edited_business_message",
        "deleted_business_messages",
        "inline_query",
        "chosen_inline_result",
        "callback_query",
        "shipping_query",
        "pre_checkout_query",
        "purchased_paid_media",
        "poll",
        "poll_answer",
        "my_chat_member",
        "chat_join_request",
        "chat_boost",
        "removed_chat_boost",
    }
)


@dataclass
class UserState:
    """A simulated Telegram user."""

    id: int
    first_name: str
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = "en"
    is_premium: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The ``User`` object."""
        data: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        if self.last_name:
            data["last_name"] = self.last_name
        if self.username:
            data["username"] = self.username
        if self.language_code:
            data["language_code"] = self.language_code
        if self.is_premium:
            data["is_premium"] = True
        return data


@dataclass
class ChatState:
    """A chat as seen by one bot, with the messages it still holds."""

    id: int
    type: str
    title: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    username: str | None = None
    messages: dict[int, dict[str, Any]] = field(default_factory=dict)
    next_message_id: int = 1

    def to_dict(self) -> dict[str, Any]:
        """The ``Chat`` object embedded in messages."""
        data: dict[str, Any] = {"id": self.id, "type": self.type}
        for key in ("title", "first_name", "last_name", "username"):
            value = getattr(self, key)
            if value:
                data[key] = value
        return data


@dataclass
class WebhookConfig:
    """The webhook set by ``setWebhook``."""

    url: str
    secret_token: str | None = None
    max_connections: int = 40
    ip_address: str | None = None
    allowed_updates: list[str] | None = None
    last_error_date: int | None = None
    last_error_message: str | None = None

    def info(self, pending: int) -> dict[str, Any]:
        """The ``WebhookInfo`` object."""
        data: dict[str, Any] = {
            "url": self.url,
            "has_custom_certificate": False,
            "pending_update_count": pending,
            "max_connections": self.max_connections,
        }
        if self.ip_address:
            data["ip_address"] = self.ip_address
        if self.allowed_updates is not None:
            data["allowed_updates"] = list(self.allowed_updates)
        if self.last_error_date is not None:
            data["last_error_date"] = self.last_error_date
            data["last_error_message"] = self.last_error_message or ""
        return data


@dataclass
class InvoiceRecord:
    """A Stars invoice created by ``sendInvoice`` (a message) or ``createInvoiceLink``."""

    key: str
    bot_id: int
    title: str
    description: str
    payload: str
    currency: str
    amount: int
    label: str
    start_parameter: str = ""
    subscription_period: int | None = None
    chat_id: int | None = None
    message_id: int | None = None
    link: str | None = None
    photo_url: str | None = None
    date: int = 0

    @property
    def is_subscription(self) -> bool:
        """Whether paying this invoice starts a subscription."""
        return self.subscription_period is not None


@dataclass
class PreCheckoutRecord:
    """A ``pre_checkout_query`` waiting for ``answerPreCheckoutQuery``."""

    id: str
    bot_id: int
    user_id: int
    invoice: InvoiceRecord
    deadline: float
    waiter: asyncio.Future[tuple[bool, str | None]] | None = None
    answered: bool = False
    expired: bool = False
    ok: bool | None = None
    error_message: str | None = None


@dataclass
class ChargeRecord:
    """A successful Stars payment, identified by ``telegram_payment_charge_id``."""

    charge_id: str
    bot_id: int
    user_id: int
    chat_id: int
    amount: int
    currency: str
    payload: str
    invoice: InvoiceRecord
    date: int
    refunded: bool = False
    refund_date: int | None = None
    subscription_expiration_date: int | None = None
    subscription_canceled: bool = False


@dataclass
class BotState:
    """One bot: identity, update queue, webhook, Stars balance and ledger."""

    id: int
    token: str
    username: str
    first_name: str
    pending: list[dict[str, Any]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    next_update_id: int = 100001
    allowed_updates: frozenset[str] = DEFAULT_UPDATE_TYPES
    webhook: WebhookConfig | None = None
    webhook_task: asyncio.Task[None] | None = None
    poll_generation: int = 0
    star_balance: int = 0
    transactions: list[dict[str, Any]] = field(default_factory=list)
    charges: dict[str, ChargeRecord] = field(default_factory=dict)
    chats: dict[int, ChatState] = field(default_factory=dict)
    commands: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    signal: asyncio.Event | None = None

    def __repr__(self) -> str:
        return (
            f"BotState(id={self.id}, username={self.username!r}, "
            f"token={mask_token(self.token)!r}, pending={len(self.pending)}, "
            f"star_balance={self.star_balance})"
        )

    @property
    def masked_token(self) -> str:
        """The token as it may appear in logs."""
        return mask_token(self.token)

    def user_dict(self) -> dict[str, Any]:
        """The bot's ``User`` object as it appears in ``from`` fields."""
        return {
            "id": self.id,
            "is_bot": True,
            "first_name": self.first_name,
            "username": self.username,
        }

    def me_dict(self) -> dict[str, Any]:
        """The ``getMe`` answer."""
        data = self.user_dict()
        data.update(
            {
                "can_join_groups": True,
                "can_read_all_group_messages": False,
                "supports_inline_queries": False,
                "can_connect_to_business": False,
                "has_main_web_app": False,
            }
        )
        return data


@dataclass(frozen=True)
class CallRecord:
    """One Bot API call received by the emulator.

    ``params`` holds the parameters with form strings decoded on a best-effort basis
    (JSON objects/arrays parsed, integer and boolean strings converted, free text such as
    ``text`` or ``payload`` untouched); ``raw_params`` holds them exactly as received.
    """

    bot_id: int | None
    method: str
    params: dict[str, Any]
    raw_params: dict[str, Any]
    time: float
    status: int
    ok: bool
    result: Any = None
    description: str | None = None
    source: str = "http"


@dataclass(frozen=True)
class WebhookDelivery:
    """One attempt to deliver an update to a webhook."""

    bot_id: int
    update_id: int
    url: str
    attempt: int
    status: int | None
    error: str | None
    time: float

    @property
    def ok(self) -> bool:
        """Whether the webhook answered 2xx."""
        return self.status is not None and 200 <= self.status < 300


@dataclass
class PaymentResult:
    """What :meth:`BotAPIEmulator.pay` observed.

    ``approved`` is true only when the bot approved the pre-checkout query in time and
    the successful payment was delivered; then ``charge_id`` holds the new
    ``telegram_payment_charge_id``. ``updates`` are the updates sent to the bot.
    """

    approved: bool
    invoice: InvoiceRecord
    pre_checkout_query: dict[str, Any]
    error_message: str | None = None
    timed_out: bool = False
    charge_id: str | None = None
    successful_payment: dict[str, Any] | None = None
    message: dict[str, Any] | None = None
    updates: list[dict[str, Any]] = field(default_factory=list)

    @property
    def payment_update(self) -> dict[str, Any] | None:
        """The update carrying the ``successful_payment`` message, if any."""
        for update in self.updates:
            message = update.get("message")
            if isinstance(message, dict) and "successful_payment" in message:
                return update
        return None
