"""pyTelegramBotAPI: ``AsyncTeleBot`` and the synchronous ``TeleBot``.

The handlers are registered on the bot itself, each only for NEONPAY's own invoices:
a pre-checkout query handler and two message handlers (successful and refunded
payments). With the synchronous ``TeleBot`` the calls NEONPAY makes from async code run
in a worker thread, and its handlers (which telebot runs in its own threads) run the
payment path in a short-lived event loop; ``async`` ``on_payment`` callbacks run there.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from telebot import types as tb_types

from neonpay.adapters.base import AdapterBase
from neonpay.adapters.updates import is_ours
from neonpay.core.gateway import BotLibrary

if TYPE_CHECKING:
    from neonpay.core.cashier import Cashier
    from neonpay.core.invoices import Invoice

__all__ = ["TelebotAdapter"]

T = TypeVar("T")

#: telebot's types are untyped for mypy; one alias keeps ``Any`` in this module.
LabeledPrice: Any = tb_types.LabeledPrice


def _ours_payment(message: Any) -> bool:
    payment = getattr(message, "successful_payment", None)
    return payment is not None and is_ours(payment)


def _ours_refund(message: Any) -> bool:
    refund = getattr(message, "refunded_payment", None)
    return refund is not None and is_ours(refund)


def _run(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from synchronous code (in a thread of its own when
    this thread already runs an event loop)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    box: dict[str, Any] = {}

    def worker() -> None:
        try:
            box["value"] = asyncio.run(make())
        except BaseException as exc:  # handed back to the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=worker, name="neonpay-telebot")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    result: T = box["value"]
    return result


class TelebotAdapter(AdapterBase):
    """The payment gateway over a ``TeleBot`` or ``AsyncTeleBot``."""

    library = BotLibrary.TELEBOT

    def __init__(self, bot: Any, cashier: Cashier, *, is_async: bool) -> None:
        super().__init__(bot, cashier, getattr(bot, "token", None))
        self.is_async = is_async
        self.register()

    def register(self) -> None:
        """Register the payment handlers on the bot."""
        if self.is_async:
            pre_checkout: Callable[[Any], Any] = self._on_pre_checkout
            payment: Callable[[Any], Any] = self._on_successful_payment
            refund: Callable[[Any], Any] = self._on_refunded_payment
        else:
            pre_checkout = self._on_pre_checkout_sync
            payment = self._on_successful_payment_sync
            refund = self._on_refunded_payment_sync
        self.bot.add_pre_checkout_query_handler(
            {"function": pre_checkout, "pass_bot": False, "filters": {"func": is_ours}}
        )
        self.bot.add_message_handler(
            {"function": payment, "pass_bot": False, "filters": {"func": _ours_payment}}
        )
        self.bot.add_message_handler(
            {"function": refund, "pass_bot": False, "filters": {"func": _ours_refund}}
        )

    async def _invoke(self, method: str, name: str, *args: Any, **kwargs: Any) -> Any:
        function = getattr(self.bot, name)
        if self.is_async:
            return await self.call(method, function(*args, **kwargs))
        return await self.call(method, asyncio.to_thread(function, *args, **kwargs))

    # --- PaymentGateway ----------------------------------------------------------------
    async def send_invoice(self, chat_id: int, invoice: Invoice) -> Any:
        params = invoice.send_invoice_params(chat_id, LabeledPrice)
        params["invoice_payload"] = params.pop("payload")  # telebot's name in send_invoice
        return await self._invoke("sendInvoice", "send_invoice", **params)

    async def create_invoice_link(self, invoice: Invoice) -> str:
        params = invoice.invoice_link_params(LabeledPrice)
        link = await self._invoke("createInvoiceLink", "create_invoice_link", **params)
        return str(link)

    async def refund_star_payment(self, user_id: int, charge_id: str) -> None:
        await self._invoke("refundStarPayment", "refund_star_payment", user_id, charge_id)

    async def send_message(self, chat_id: int, text: str) -> None:
        await self._invoke("sendMessage", "send_message", chat_id, text)

    # --- handlers (AsyncTeleBot) -----------------------------------------------------------
    async def _answer(self, query_id: str, ok: bool, error_message: str | None) -> None:
        await self._invoke(
            "answerPreCheckoutQuery",
            "answer_pre_checkout_query",
            query_id,
            ok,
            error_message=error_message,
        )

    async def _on_pre_checkout(self, query: Any) -> None:
        await self.pre_checkout(
            query, lambda ok, error_message: self._answer(str(query.id), ok, error_message)
        )

    async def _on_successful_payment(self, message: Any) -> None:
        await self.successful_payment(
            message, lambda text: self.send_message(message.chat.id, text)
        )

    async def _on_refunded_payment(self, message: Any) -> None:
        await self.refunded_payment(message)

    # --- handlers (TeleBot: called in telebot's threads) ----------------------------------
    def _answer_sync(self, query_id: str, ok: bool, error_message: str | None) -> None:
        self.bot.answer_pre_checkout_query(query_id, ok, error_message=error_message)

    def _on_pre_checkout_sync(self, query: Any) -> None:
        async def answer(ok: bool, error_message: str | None) -> None:
            self._answer_sync(str(query.id), ok, error_message)

        _run(lambda: self.pre_checkout(query, self.answerer(answer)))

    def _on_successful_payment_sync(self, message: Any) -> None:
        async def reply(text: str) -> None:
            self.bot.send_message(message.chat.id, text)

        _run(lambda: self.successful_payment(message, reply))

    def _on_refunded_payment_sync(self, message: Any) -> None:
        _run(lambda: self.refunded_payment(message))
