"""Pyrogram-compatible clients (pyrogram, kurigram, pyrofork): a bot ``Client``.

The handlers are added to the client itself, in their own group
(:data:`~neonpay.adapters.base.HANDLER_GROUP`, before the default group 0): a
``PreCheckoutQueryHandler`` and two ``MessageHandler`` s (successful and refunded
payments), each only for NEONPAY's own invoices.

Pyrogram speaks MTProto, not the HTTP Bot API, so the local emulator cannot serve it; its
tests drive this adapter at the client's method boundary with real pyrogram types.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pyrogram import filters as pyro_filters
from pyrogram.errors.rpc_error import RPCError
from pyrogram.handlers import MessageHandler, PreCheckoutQueryHandler
from pyrogram.types import LabeledPrice

from neonpay.adapters.base import HANDLER_GROUP, BotMethodsAdapter
from neonpay.adapters.updates import is_ours
from neonpay.core.gateway import BotLibrary

if TYPE_CHECKING:
    from neonpay.core.cashier import Cashier

__all__ = ["PyrogramAdapter"]


def _ours_query(_: Any, __: Any, query: Any) -> bool:
    return is_ours(query)


def _ours_payment(_: Any, __: Any, message: Any) -> bool:
    payment = getattr(message, "successful_payment", None)
    return payment is not None and is_ours(payment)


def _ours_refund(_: Any, __: Any, message: Any) -> bool:
    refund = getattr(message, "refunded_payment", None)
    return refund is not None and is_ours(refund)


class PyrogramAdapter(BotMethodsAdapter):
    """The payment gateway over a Pyrogram ``Client`` logged in as a bot."""

    library = BotLibrary.PYROGRAM
    labeled_price = LabeledPrice

    def __init__(self, client: Any, cashier: Cashier) -> None:
        super().__init__(client, cashier, getattr(client, "bot_token", None))
        self.handlers: list[tuple[Any, int]] = []
        self.register()

    def register(self) -> None:
        """Add the payment handlers to the client (group ``HANDLER_GROUP``)."""
        for handler in (
            PreCheckoutQueryHandler(self._on_pre_checkout, pyro_filters.create(_ours_query)),
            MessageHandler(self._on_successful_payment, pyro_filters.create(_ours_payment)),
            MessageHandler(self._on_refunded_payment, pyro_filters.create(_ours_refund)),
        ):
            self.bot.add_handler(handler, HANDLER_GROUP)
            self.handlers.append((handler, HANDLER_GROUP))

    def describe(self, exc: BaseException) -> tuple[str, int | None]:
        if isinstance(exc, RPCError):
            code = exc.CODE if isinstance(exc.CODE, int) else None
            return str(exc), code
        return super().describe(exc)

    # --- handlers ------------------------------------------------------------------------
    async def _on_pre_checkout(self, client: Any, query: Any) -> None:
        async def answer(ok: bool, error_message: str | None) -> None:
            await client.answer_pre_checkout_query(
                str(query.id), ok=ok or None, error_message=error_message
            )

        await self.pre_checkout(query, self.answerer(answer))

    async def _on_successful_payment(self, client: Any, message: Any) -> None:
        async def reply(text: str) -> None:
            await self.call("sendMessage", client.send_message(message.chat.id, text))

        await self.successful_payment(message, reply)

    async def _on_refunded_payment(self, client: Any, message: Any) -> None:
        await self.refunded_payment(message)
