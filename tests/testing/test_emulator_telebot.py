"""pyTelegramBotAPI (AsyncTeleBot polling and sync TeleBot) against the emulator."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio
import requests
import telebot
from telebot import apihelper, asyncio_helper, types
from telebot.async_telebot import AsyncTeleBot

from neonpay.testing import BotAPIEmulator

from .helpers import TOKEN, USER_ID


def price(label: str, amount: int) -> Any:
    """A telebot ``LabeledPrice`` (the class is untyped)."""
    return types.LabeledPrice(label, amount)  # type: ignore[no-untyped-call]


def premium_invoice(payload: str, amount: int, currency: str = "XTR") -> tuple[Any, ...]:
    """telebot's positional ``send_invoice`` arguments: "Premium" to the test user."""
    return USER_ID, "Premium", "30 days", payload, None, currency, [price("x", amount)]


@pytest_asyncio.fixture
async def async_api(emu: BotAPIEmulator) -> AsyncIterator[None]:
    """Point AsyncTeleBot at the emulator; restore the module global and close sessions."""
    previous = asyncio_helper.API_URL
    asyncio_helper.API_URL = emu.telebot_api_url
    try:
        yield
    finally:
        asyncio_helper.API_URL = previous
        session = asyncio_helper.session_manager.session
        if session is not None and not session.closed:
            await session.close()
        asyncio_helper.session_manager.session = None


@pytest.fixture
def sync_api(emu: BotAPIEmulator) -> Iterator[None]:
    """Point the sync TeleBot at the emulator through a requests session we close."""
    previous_url = apihelper.API_URL
    previous_sender = apihelper.CUSTOM_REQUEST_SENDER
    session = requests.Session()
    apihelper.API_URL = emu.telebot_api_url  # type: ignore[assignment]
    apihelper.CUSTOM_REQUEST_SENDER = session.request  # type: ignore[assignment]
    try:
        yield
    finally:
        apihelper.API_URL = previous_url
        apihelper.CUSTOM_REQUEST_SENDER = previous_sender
        session.close()


@pytest.mark.asyncio
@pytest.mark.usefixtures("async_api")
async def test_async_telebot_polling_payment(emu: BotAPIEmulator) -> None:
    bot = AsyncTeleBot(TOKEN)
    paid: list[Any] = []
    paid_event = asyncio.Event()

    @bot.message_handler(commands=["start"])  # type: ignore[no-untyped-call,untyped-decorator]
    async def on_start(message: Any) -> None:
        await bot.reply_to(message, "Hi from telebot")

    @bot.pre_checkout_query_handler(func=lambda query: True)  # type: ignore[no-untyped-call,untyped-decorator]
    async def on_checkout(query: Any) -> None:
        await bot.answer_pre_checkout_query(query.id, ok=True)

    @bot.message_handler(content_types=["successful_payment"])  # type: ignore[no-untyped-call,untyped-decorator]
    async def on_paid(message: Any) -> None:
        paid.append(message.successful_payment)
        paid_event.set()

    task = asyncio.create_task(bot.polling(non_stop=True, timeout=1, interval=0))
    try:
        since = len(emu.calls)
        emu.send_message_from_user(TOKEN, USER_ID, "/start")
        reply = await emu.wait_for_call("sendMessage", timeout=5, since=since)
        assert reply.params["text"] == "Hi from telebot"
        assert reply.params["reply_parameters"]["message_id"] > 0

        invoice = await bot.send_invoice(*premium_invoice("telebot-order", 5))
        assert invoice.invoice is not None
        assert invoice.invoice.total_amount == 5
        result = await emu.pay(USER_ID, invoice)
        assert result.approved, result
        charge = result.charge_id
        assert charge is not None
        await asyncio.wait_for(paid_event.wait(), 5)
        assert paid[0].telegram_payment_charge_id == charge
        assert emu.star_balance(TOKEN) == 5
        assert await bot.refund_star_payment(USER_ID, charge)
        with pytest.raises(asyncio_helper.ApiTelegramException, match="CHARGE_ALREADY_REFUNDED"):
            await bot.refund_star_payment(USER_ID, charge)
    finally:
        task.cancel()
        await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), 5)


@pytest.mark.asyncio
@pytest.mark.usefixtures("sync_api")
async def test_sync_telebot_sends_invoice(emu: BotAPIEmulator) -> None:
    bot = telebot.TeleBot(TOKEN, threaded=False)
    me = await asyncio.to_thread(bot.get_me)
    assert me.id == 123456789
    invoice = await asyncio.to_thread(bot.send_invoice, *premium_invoice("sync-order", 7))
    assert invoice.invoice is not None
    assert invoice.invoice.total_amount == 7
    call = emu.calls_to("sendInvoice")[-1]
    assert call.params["prices"] == [{"label": "x", "amount": 7}]

    with pytest.raises(apihelper.ApiTelegramException, match="CURRENCY_INVALID"):
        await asyncio.to_thread(bot.send_invoice, *premium_invoice("sync-order", 7, "EUR"))
