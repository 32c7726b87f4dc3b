"""NEONPAY testing tools: a local Telegram Bot API emulator.

:class:`BotAPIEmulator` is a real HTTP server on 127.0.0.1 speaking the Bot API, so
aiogram, python-telegram-bot and pyTelegramBotAPI bots run against it end to end with no
network, plus a simulated user who writes messages, presses buttons and pays Stars
invoices. Pointing the frameworks at it:

* aiogram: ``Bot(token, session=AiohttpSession(api=emu.aiogram_server()))``
* python-telegram-bot: ``Application.builder().token(token).base_url(emu.ptb_base_url)``
* pyTelegramBotAPI: ``telebot.apihelper.API_URL = emu.telebot_api_url`` (sync) or
  ``telebot.asyncio_helper.API_URL = emu.telebot_api_url`` (async); restore it after.

Standalone: ``python -m neonpay.testing --port 8081`` (see :func:`run_emulator`).
"""

from __future__ import annotations

from .emulator import BotAPIEmulator, BotRef
from .errors import ApiError
from .params import UploadedFile
from .runner import main, run_emulator
from .state import (
    BotState,
    CallRecord,
    ChargeRecord,
    InvoiceRecord,
    PaymentResult,
    UserState,
    WebhookDelivery,
)
from .tokens import mask_token
from .validation import MAX_SUBSCRIPTION_AMOUNT, STARS_CURRENCY, SUBSCRIPTION_PERIOD

__all__ = [
    "MAX_SUBSCRIPTION_AMOUNT",
    "STARS_CURRENCY",
    "SUBSCRIPTION_PERIOD",
    "ApiError",
    "BotAPIEmulator",
    "BotRef",
    "BotState",
    "CallRecord",
    "ChargeRecord",
    "InvoiceRecord",
    "PaymentResult",
    "UploadedFile",
    "UserState",
    "WebhookDelivery",
    "main",
    "mask_token",
    "run_emulator",
]
