"""python-telegram-bot 21/22: send through a ``Bot``, receive through an ``Application``.

With ``create_neonpay(bot_instance=app)`` (or ``application=app``) three handlers are
added to the application in their own group (:data:`~neonpay.adapters.base.HANDLER_GROUP`,
which runs before the default group 0, so the bot's handlers still see every update):
a ``PreCheckoutQueryHandler`` and two ``MessageHandler`` s, for successful and refunded
payments. Each matches only NEONPAY's own invoices.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from telegram import Bot, LabeledPrice, Message, Update
from telegram import error as tg_error
from telegram.ext import Application, MessageHandler, PreCheckoutQueryHandler, filters

from neonpay.adapters.base import HANDLER_GROUP, BotMethodsAdapter
from neonpay.adapters.updates import is_ours
from neonpay.core.gateway import BotLibrary
from neonpay.core.invoices import PAYLOAD_PREFIX

if TYPE_CHECKING:
    from neonpay.core.cashier import Cashier

__all__ = ["PythonTelegramBotAdapter"]

_CODES: tuple[tuple[type[tg_error.TelegramError], int], ...] = (
    (tg_error.BadRequest, 400),
    (tg_error.InvalidToken, 401),
    (tg_error.Forbidden, 403),
    (tg_error.Conflict, 409),
    (tg_error.RetryAfter, 429),
)


class _NeonPayMessage(filters.MessageFilter):
    """Messages whose ``successful_payment`` / ``refunded_payment`` is NEONPAY's."""

    def __init__(self, field: str) -> None:
        super().__init__(name=f"neonpay.{field}")
        self.field = field

    def filter(self, message: Message) -> bool:
        payment = getattr(message, self.field, None)
        return payment is not None and is_ours(payment)


class PythonTelegramBotAdapter(BotMethodsAdapter):
    """The payment gateway over a python-telegram-bot ``Bot`` (and ``Application``)."""

    library = BotLibrary.PYTHON_TELEGRAM_BOT
    labeled_price = LabeledPrice

    def __init__(
        self,
        bot: Bot,
        cashier: Cashier,
        *,
        application: Application[Any, Any, Any, Any, Any, Any] | None = None,
    ) -> None:
        super().__init__(bot, cashier, bot.token)
        self.bot: Bot = bot
        self.application = application
        if application is not None:
            self.register(application)

    def register(self, application: Application[Any, Any, Any, Any, Any, Any]) -> None:
        """Add the payment handlers to ``application`` (group ``HANDLER_GROUP``)."""
        pattern = re.compile("^" + re.escape(PAYLOAD_PREFIX))
        application.add_handlers(
            [
                PreCheckoutQueryHandler(self._on_pre_checkout, pattern=pattern),
                MessageHandler(
                    filters.SUCCESSFUL_PAYMENT & _NeonPayMessage("successful_payment"),
                    self._on_successful_payment,
                ),
                MessageHandler(_NeonPayMessage("refunded_payment"), self._on_refunded_payment),
            ],
            group=HANDLER_GROUP,
        )

    def describe(self, exc: BaseException) -> tuple[str, int | None]:
        description, code = super().describe(exc)
        if isinstance(exc, tg_error.TelegramError):
            code = next((c for kind, c in _CODES if isinstance(exc, kind)), None)
        return description, code

    # --- handlers ------------------------------------------------------------------------
    async def _on_pre_checkout(self, update: Update, context: Any) -> None:
        query = update.pre_checkout_query
        bot: Bot = context.bot

        async def answer(ok: bool, error_message: str | None) -> None:
            assert query is not None  # the handler matched a pre-checkout query
            await bot.answer_pre_checkout_query(query.id, ok=ok, error_message=error_message)

        await self.pre_checkout(query, self.answerer(answer))

    async def _on_successful_payment(self, update: Update, context: Any) -> None:
        message = update.effective_message
        bot: Bot = context.bot

        async def reply(text: str) -> None:
            assert message is not None
            await self.call("sendMessage", bot.send_message(chat_id=message.chat_id, text=text))

        await self.successful_payment(message, reply)

    async def _on_refunded_payment(self, update: Update, context: Any) -> None:
        message = update.effective_message
        await self.refunded_payment(message)
