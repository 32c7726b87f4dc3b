"""python-telegram-bot: a real Application polling the emulator (``base_url``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from telegram.ext import Application, ApplicationBuilder

from neonpay import create_neonpay
from neonpay.adapters.ptb import PythonTelegramBotAdapter
from neonpay.testing import BotAPIEmulator

from .flow import TOKEN, sale_flow, stock


def build(emu: BotAPIEmulator) -> Application[Any, Any, Any, Any, Any, Any]:
    return ApplicationBuilder().token(TOKEN).base_url(emu.ptb_base_url).build()


@asynccontextmanager
async def running(app: Application[Any, Any, Any, Any, Any, Any]) -> AsyncIterator[None]:
    await app.initialize()
    await app.start()
    assert app.updater is not None
    await app.updater.start_polling(poll_interval=0, timeout=1)
    try:
        yield
    finally:
        await app.updater.stop()
        await app.stop()
        await app.shutdown()


async def test_sale_flow(
    emu: BotAPIEmulator, sqlite_url: str, payment_logs: pytest.LogCaptureFixture
) -> None:
    app = build(emu)
    neonpay = create_neonpay(bot_instance=app, storage=sqlite_url)
    try:
        assert isinstance(neonpay.adapter, PythonTelegramBotAdapter)
        assert neonpay.adapter.application is app
        stock(neonpay)
        async with running(app):
            await sale_flow(emu, neonpay, payment_logs)
    finally:
        neonpay.close()


async def test_bot_with_application_argument(emu: BotAPIEmulator, sqlite_url: str) -> None:
    """``bot_instance=app.bot, application=app`` registers on the application too."""
    app = build(emu)
    with create_neonpay(bot_instance=app.bot, application=app, storage=sqlite_url) as neonpay:
        adapter = neonpay.adapter
        assert isinstance(adapter, PythonTelegramBotAdapter)
        assert adapter.bot is app.bot
        assert adapter.application is app
        assert len(app.handlers[-100]) == 3


def test_application_alone(emu: BotAPIEmulator, sqlite_url: str) -> None:
    """``create_neonpay(application=app)`` without ``bot_instance`` uses the app's bot."""
    app = build(emu)
    with create_neonpay(application=app, storage=sqlite_url) as neonpay:
        adapter = neonpay.adapter
        assert isinstance(adapter, PythonTelegramBotAdapter)
        assert adapter.bot is app.bot
        assert len(app.handlers[-100]) == 3
