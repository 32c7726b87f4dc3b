"""What the payment path needs from a bot framework: the :class:`PaymentGateway` protocol.

The core never imports a bot framework. Each adapter in :mod:`neonpay.adapters`
implements this protocol over its framework's bot object and translates the framework's
errors into :class:`BotAPIError`.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from neonpay.errors import PaymentError, mask_secrets

if TYPE_CHECKING:
    from neonpay.core.invoices import Invoice

__all__ = ["BotAPIError", "BotLibrary", "PaymentGateway"]


class BotLibrary(str, enum.Enum):
    """The bot frameworks NEONPAY integrates with (the names of neonpay 2.x)."""

    PYROGRAM = "pyrogram"
    AIOGRAM = "aiogram"
    PYTHON_TELEGRAM_BOT = "python-telegram-bot"
    TELEBOT = "telebot"
    BOTAPI = "botapi"


class BotAPIError(PaymentError):
    """A Bot API call made for a payment failed.

    ``method`` is the Bot API method, ``description`` Telegram's description (for example
    ``Bad Request: CHARGE_ALREADY_REFUNDED``) with any bot token masked, and
    ``error_code`` the HTTP-like code when Telegram gave one (None for network errors).
    """

    def __init__(self, method: str, description: str, *, error_code: int | None = None) -> None:
        self.method = method
        self.description = mask_secrets(description)
        self.error_code = error_code
        code = f" ({error_code})" if error_code is not None else ""
        super().__init__(f"{method} failed{code}: {self.description}")

    def has_reason(self, reason: str) -> bool:
        """Whether Telegram's description names ``reason`` (e.g. ``CHARGE_ALREADY_REFUNDED``)."""
        return reason.lower() in self.description.lower()


@runtime_checkable
class PaymentGateway(Protocol):
    """The Bot API calls the payment path makes through a framework.

    Every method raises :class:`BotAPIError` when Telegram (or the network) refuses the
    call; no other exception escapes an adapter.
    """

    @property
    def library(self) -> BotLibrary:
        """Which framework this gateway drives."""

    async def send_invoice(self, chat_id: int, invoice: Invoice) -> Any:
        """``sendInvoice`` to ``chat_id``; returns the framework's message object."""

    async def create_invoice_link(self, invoice: Invoice) -> str:
        """``createInvoiceLink``; returns the link."""

    async def refund_star_payment(self, user_id: int, charge_id: str) -> None:
        """``refundStarPayment`` for one charge."""

    async def send_message(self, chat_id: int, text: str) -> None:
        """``sendMessage`` with plain text."""
