"""pyTelegramBotAPI: AsyncTeleBot polling the emulator, and the synchronous TeleBot."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from telebot import TeleBot, apihelper, asyncio_helper
from telebot.async_telebot import AsyncTeleBot

from neonpay import create_neonpay
from neonpay.adapters.telebot import TelebotAdapter
from neonpay.testing import BotAPIEmulator

from .flow import PRICE, TOKEN, USER_ID, check_invoice_call, eventually, sale_flow, stock


@pytest.fixture
def api_url(emu: BotAPIEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point both telebot flavours at the emulator (module globals, restored after)."""
    monkeypatch.setattr(asyncio_helper, "API_URL", emu.telebot_api_url)
    monkeypatch.setattr(apihelper, "API_URL", emu.telebot_api_url)


@pytest.mark.usefixtures("api_url")
async def test_async_sale_flow(
    emu: BotAPIEmulator, sqlite_url: str, payment_logs: pytest.LogCaptureFixture
) -> None:
    bot: Any = AsyncTeleBot(TOKEN)  # telebot is untyped
    neonpay = create_neonpay(bot_instance=bot, storage=sqlite_url)
    task = asyncio.create_task(bot.polling(non_stop=True, timeout=1, request_timeout=5))
    try:
        assert isinstance(neonpay.adapter, TelebotAdapter)
        assert neonpay.adapter.is_async
        stock(neonpay)
        await sale_flow(emu, neonpay, payment_logs)
    finally:
        task.cancel()
        await asyncio.wait({task}, timeout=10)
        await bot.close_session()
        neonpay.close()


@pytest.mark.usefixtures("api_url")
async def test_sync_telebot_sells_from_a_thread(
    emu: BotAPIEmulator, sqlite_url: str, payment_logs: pytest.LogCaptureFixture
) -> None:
    """The sync TeleBot sends the invoice from a worker thread, and its own polling thread
    answers the pre-checkout query and records the payment."""
    bot: Any = TeleBot(TOKEN, threaded=False)
    neonpay = create_neonpay(bot_instance=bot, storage=sqlite_url)
    seen: list[int] = []
    neonpay.on_payment(lambda result: seen.append(result.amount))
    stock(neonpay)
    assert isinstance(neonpay.adapter, TelebotAdapter)
    assert not neonpay.adapter.is_async
    poller = threading.Thread(
        target=bot.polling, kwargs={"non_stop": True, "timeout": 1, "long_polling_timeout": 1}
    )
    poller.start()
    try:
        assert await neonpay.send_payment(USER_ID, "premium") is True
        call = await emu.wait_for_call("sendInvoice")
        check_invoice_call(call.params, PRICE)
        result = await emu.pay(USER_ID, emu.invoices()[-1])
        assert result.approved, result.error_message
        await eventually(lambda: seen == [PRICE], "the payment callback")
        payment = neonpay.payments.get(result.charge_id or "")
        assert payment is not None
        assert payment.amount == PRICE
        await eventually(
            lambda: any(m.get("text") == neonpay.thank_you_message for m in emu.sent_messages()),
            "the thank-you message",
        )
    finally:
        bot.stop_polling()
        await asyncio.to_thread(poller.join, 10)
        neonpay.close()
    assert not poller.is_alive()
