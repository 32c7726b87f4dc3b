"""What every adapter shares: the cashier it feeds, error translation, masked reprs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from neonpay.adapters.logs import protect_logs
from neonpay.adapters.updates import (
    read_pre_checkout,
    read_refunded_payment,
    read_successful_payment,
)
from neonpay.core.gateway import BotAPIError, BotLibrary
from neonpay.errors import mask_token

if TYPE_CHECKING:
    from neonpay.core.cashier import AnswerPreCheckout, Cashier, Reply
    from neonpay.core.invoices import Invoice

__all__ = ["HANDLER_GROUP", "AdapterBase", "BotMethodsAdapter", "describe_error"]

T = TypeVar("T")

#: The handler group NEONPAY uses on python-telegram-bot and Pyrogram: a group of its
#: own, run before the default group 0, so the bot's own handlers still see the updates.
HANDLER_GROUP = -100


def describe_error(exc: BaseException) -> tuple[str, int | None]:
    """Telegram's description and error code from a framework's exception, if it has them."""
    description = (
        getattr(exc, "description", None)
        or getattr(exc, "message", None)
        or getattr(exc, "MESSAGE", None)
        or str(exc)
        or type(exc).__name__
    )
    code = getattr(exc, "error_code", None)
    if not isinstance(code, int):
        code = getattr(exc, "CODE", None)
    return str(description), code if isinstance(code, int) else None


class AdapterBase:
    """Holds the cashier and the bot's token (masked in reprs; masked in log records from
    construction on, see :func:`~neonpay.adapters.logs.protect_logs`).

    Subclasses implement the :class:`~neonpay.core.gateway.PaymentGateway` calls and
    register the payment handlers on their framework.
    """

    library: BotLibrary

    def __init__(self, bot: Any, cashier: Cashier, token: str | None) -> None:
        self.bot = bot
        self.cashier = cashier
        self._token = token or ""
        if self._token:
            protect_logs(self._token)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} bot={mask_token(self._token) or type(self.bot).__name__}>"

    def describe(self, exc: BaseException) -> tuple[str, int | None]:
        """Description and code of a framework error (override for special cases)."""
        description, code = describe_error(exc)
        if self._token:
            description = description.replace(self._token, mask_token(self._token))
        return description, code

    async def call(self, method: str, awaitable: Awaitable[T]) -> T:
        """Await a framework call; its failure becomes :class:`BotAPIError`."""
        try:
            return await awaitable
        except BotAPIError:
            raise
        except Exception as exc:
            description, code = self.describe(exc)
            raise BotAPIError(method, description, error_code=code) from exc

    def answerer(
        self, answer: Callable[[bool, str | None], Awaitable[Any]]
    ) -> Callable[[bool, str | None], Awaitable[Any]]:
        """Wrap an answer call so that its failure is a :class:`BotAPIError`."""

        async def wrapped(ok: bool, error_message: str | None) -> Any:
            return await self.call("answerPreCheckoutQuery", answer(ok, error_message))

        return wrapped

    # --- the payment path, for any framework's objects (or Bot API JSON) --------------------
    async def pre_checkout(self, query: Any, answer: AnswerPreCheckout) -> None:
        """Decide ``query`` (a framework's ``PreCheckoutQuery`` or a dict) and answer it
        through ``answer``; the cashier always answers."""
        await self.cashier.handle_pre_checkout(lambda: read_pre_checkout(query), answer)

    async def successful_payment(self, message: Any, reply: Reply) -> None:
        """Record the ``successful_payment`` of ``message``; a new one is thanked via ``reply``.

        Raises:
            StorageError: the payment could not be recorded.
        """
        await self.cashier.handle_successful_payment(
            lambda: read_successful_payment(message), reply
        )

    async def refunded_payment(self, message: Any) -> None:
        """Record the ``refunded_payment`` of ``message``.

        Raises:
            StorageError: the store failed.
        """
        await self.cashier.handle_refunded_payment(lambda: read_refunded_payment(message))


class BotMethodsAdapter(AdapterBase):
    """An adapter whose bot object has the Bot API methods as coroutine methods taking the
    Bot API's keyword arguments (aiogram, python-telegram-bot, Pyrogram): the
    :class:`~neonpay.core.gateway.PaymentGateway` calls differ only in the framework's
    ``LabeledPrice`` class, which subclasses set as :attr:`labeled_price`.
    """

    #: Builds the invoice's one price from the keywords ``label`` and ``amount``.
    labeled_price: Callable[..., object]

    async def send_invoice(self, chat_id: int, invoice: Invoice) -> Any:
        """``sendInvoice``; the sent message.

        Raises:
            BotAPIError: Telegram or the framework refused.
        """
        params = invoice.send_invoice_params(chat_id, self.labeled_price)
        return await self.call("sendInvoice", self.bot.send_invoice(**params))

    async def create_invoice_link(self, invoice: Invoice) -> str:
        """``createInvoiceLink``; the link.

        Raises:
            BotAPIError: Telegram or the framework refused.
        """
        params = invoice.invoice_link_params(self.labeled_price)
        link = await self.call("createInvoiceLink", self.bot.create_invoice_link(**params))
        return str(link)

    async def refund_star_payment(self, user_id: int, charge_id: str) -> None:
        """``refundStarPayment``.

        Raises:
            BotAPIError: Telegram or the framework refused.
        """
        await self.call(
            "refundStarPayment",
            self.bot.refund_star_payment(user_id=user_id, telegram_payment_charge_id=charge_id),
        )

    async def send_message(self, chat_id: int, text: str) -> None:
        """``sendMessage`` with plain text.

        Raises:
            BotAPIError: Telegram or the framework refused.
        """
        await self.call("sendMessage", self.bot.send_message(chat_id=chat_id, text=text))
