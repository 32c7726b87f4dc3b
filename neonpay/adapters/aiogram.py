"""aiogram 3: send through a ``Bot``, receive through a ``Dispatcher`` or ``Router``.

With ``create_neonpay(bot_instance=bot, dispatcher=dp)`` three handlers are registered on
``dp`` (or a ``Router``), each only for NEONPAY's own invoices, so the bot's handlers
keep every other invoice:

* ``pre_checkout_query``: decided and answered by the cashier;
* ``message`` with ``successful_payment``: recorded once, callbacks, thank-you;
* ``message`` with ``refunded_payment``: the refund recorded.

aiogram runs the first handler that matches, in registration order: create NEONPAY
before registering catch-all message handlers. Each update is answered with the bot
that received it, so one dispatcher may serve several bots.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiogram import Bot
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramConflictError,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.types import LabeledPrice, Message, PreCheckoutQuery

from neonpay.adapters.base import BotMethodsAdapter
from neonpay.adapters.updates import is_ours
from neonpay.core.gateway import BotLibrary
from neonpay.errors import ConfigurationError

if TYPE_CHECKING:
    from neonpay.core.cashier import Cashier

__all__ = ["AiogramAdapter"]

_CODES: tuple[tuple[type[TelegramAPIError], int], ...] = (
    (TelegramBadRequest, 400),
    (TelegramUnauthorizedError, 401),
    (TelegramForbiddenError, 403),
    (TelegramNotFound, 404),
    (TelegramConflictError, 409),
    (TelegramEntityTooLarge, 413),
    (TelegramRetryAfter, 429),
    (TelegramServerError, 500),
)


def _ours_query(query: PreCheckoutQuery) -> bool:
    return is_ours(query)


def _ours_payment(message: Message) -> bool:
    return message.successful_payment is not None and is_ours(message.successful_payment)


def _ours_refund(message: Message) -> bool:
    return message.refunded_payment is not None and is_ours(message.refunded_payment)


class AiogramAdapter(BotMethodsAdapter):
    """The payment gateway over an aiogram 3 ``Bot``.

    Raises:
        ConfigurationError: ``dispatcher`` is not an aiogram ``Dispatcher`` or ``Router``.
    """

    library = BotLibrary.AIOGRAM
    labeled_price = LabeledPrice

    def __init__(self, bot: Bot, cashier: Cashier, *, dispatcher: Any = None) -> None:
        super().__init__(bot, cashier, bot.token)
        self.bot: Bot = bot
        self.dispatcher = dispatcher
        if dispatcher is not None:
            self.register(dispatcher)

    def register(self, router: Any) -> None:
        """Register the payment handlers on an aiogram ``Dispatcher`` or ``Router``.

        Raises:
            ConfigurationError: ``router`` is not one.
        """
        from aiogram import Router

        if not isinstance(router, Router):
            raise ConfigurationError(
                f"dispatcher= must be an aiogram Dispatcher or Router, not {type(router).__name__}"
            )
        router.pre_checkout_query.register(self._on_pre_checkout, _ours_query)
        router.message.register(self._on_successful_payment, _ours_payment)
        router.message.register(self._on_refunded_payment, _ours_refund)

    def describe(self, exc: BaseException) -> tuple[str, int | None]:
        description, code = super().describe(exc)
        if isinstance(exc, TelegramAPIError):
            code = next((c for kind, c in _CODES if isinstance(exc, kind)), None)
        return description, code

    # --- handlers ------------------------------------------------------------------------
    async def _on_pre_checkout(self, query: PreCheckoutQuery, bot: Bot) -> None:
        async def answer(ok: bool, error_message: str | None) -> None:
            await bot.answer_pre_checkout_query(
                pre_checkout_query_id=query.id, ok=ok, error_message=error_message
            )

        await self.pre_checkout(query, self.answerer(answer))

    async def _on_successful_payment(self, message: Message, bot: Bot) -> None:
        async def reply(text: str) -> None:
            await self.call("sendMessage", bot.send_message(chat_id=message.chat.id, text=text))

        await self.successful_payment(message, reply)

    async def _on_refunded_payment(self, message: Message) -> None:
        await self.refunded_payment(message)
