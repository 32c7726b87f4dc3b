"""No bot token in any log line, error or repr, during full flows at DEBUG level."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from telebot import asyncio_helper
from telebot.async_telebot import AsyncTeleBot
from telegram.ext import ApplicationBuilder

from neonpay import NeonPay, create_neonpay
from neonpay.adapters import protect_logs
from neonpay.adapters.raw import RawBotAPI
from neonpay.core.gateway import BotAPIError
from neonpay.testing import BotAPIEmulator

from .flow import TOKEN, sale_flow, stock

SECRET_PART = TOKEN.split(":", 1)[1]
LOGGERS = ("", "aiogram", "telegram", "httpx", "httpcore", "TeleBot", "aiohttp", "neonpay")


def leaks(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Captured lines (messages, formatted records and tracebacks) showing the token."""
    texts = [caplog.text]
    for record in caplog.records:
        texts.append(record.getMessage())
        if record.exc_text:
            texts.append(record.exc_text)
    fragments = (TOKEN, SECRET_PART, SECRET_PART[2:-2])
    return [
        line for text in texts for line in text.splitlines() if any(f in line for f in fragments)
    ]


async def refund_errors_are_masked(neonpay: NeonPay) -> None:
    with pytest.raises(BotAPIError) as info:
        await neonpay.adapter.refund_star_payment(1, "no-such-charge")
    assert TOKEN not in str(info.value)
    assert SECRET_PART not in repr(info.value)
    assert TOKEN not in repr(neonpay)
    assert TOKEN not in repr(neonpay.adapter)


async def test_no_token_in_logs_errors_or_reprs(
    emu: BotAPIEmulator,
    tmp_path: object,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # python-telegram-bot logs its API URL while the Application is built, before
    # NEONPAY is attached: the documented remedy is protect_logs() at start-up.
    protect_logs()
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)

    # aiogram
    bot = Bot(TOKEN, session=AiohttpSession(api=emu.aiogram_server()))
    dp = Dispatcher()
    neonpay = create_neonpay(bot_instance=bot, dispatcher=dp, storage=f"sqlite:///{tmp_path}/a.db")
    stock(neonpay)
    polling = asyncio.create_task(
        dp.start_polling(bot, polling_timeout=1, handle_signals=False, close_bot_session=False)
    )
    try:
        await sale_flow(emu, neonpay, caplog)
        await refund_errors_are_masked(neonpay)
    finally:
        await dp.stop_polling()
        await asyncio.wait_for(polling, 10)
        await bot.session.close()
        neonpay.close()

    # python-telegram-bot
    app = ApplicationBuilder().token(TOKEN).base_url(emu.ptb_base_url).build()
    neonpay = create_neonpay(bot_instance=app, storage=f"sqlite:///{tmp_path}/p.db")
    stock(neonpay)
    await app.initialize()
    await app.start()
    assert app.updater is not None
    await app.updater.start_polling(poll_interval=0, timeout=1)
    try:
        await sale_flow(emu, neonpay, caplog)
        await refund_errors_are_masked(neonpay)
    finally:
        await app.updater.stop()
        await app.stop()
        await app.shutdown()
        neonpay.close()

    # pyTelegramBotAPI (async)
    monkeypatch.setattr(asyncio_helper, "API_URL", emu.telebot_api_url)
    telebot: Any = AsyncTeleBot(TOKEN)  # telebot is untyped
    neonpay = create_neonpay(bot_instance=telebot, storage=f"sqlite:///{tmp_path}/t.db")
    stock(neonpay)
    polling = asyncio.create_task(telebot.polling(non_stop=True, timeout=1, request_timeout=5))
    try:
        await sale_flow(emu, neonpay, caplog)
        await refund_errors_are_masked(neonpay)
    finally:
        polling.cancel()
        await asyncio.wait({polling}, timeout=10)
        await telebot.close_session()
        neonpay.close()

    # raw Bot API
    raw = RawBotAPI(TOKEN, api_base=emu.base_url)
    neonpay = create_neonpay(bot_instance=raw, storage=f"sqlite:///{tmp_path}/r.db")
    stock(neonpay)
    await raw.start_polling(timeout=1)
    try:
        await sale_flow(emu, neonpay, caplog)
        await refund_errors_are_masked(neonpay)
    finally:
        await raw.close()
        neonpay.close()

    assert len(caplog.records) > 100  # the frameworks did log at DEBUG
    assert any(r.name.startswith("httpx") for r in caplog.records)
    assert leaks(caplog) == []


def test_masking_reaches_framework_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    protect_logs(TOKEN)
    caplog.set_level(logging.DEBUG)
    try:
        raise RuntimeError(f"GET https://api.telegram.org/bot{TOKEN}/getMe failed")
    except RuntimeError:
        logging.getLogger("aiohttp.client").exception("request failed for %s", TOKEN)
        logging.getLogger("someone.else").exception("bot %s", TOKEN)
    logging.getLogger("someone.else").info("an id like 1234567:abcdefghijkl stays")
    assert leaks(caplog) == []
    assert "1234567:abcdefghijkl" in caplog.text  # only framework records are pattern-masked
