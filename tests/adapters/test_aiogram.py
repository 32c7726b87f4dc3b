"""aiogram 3: a real Dispatcher polling the emulator."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from aiogram import Bot, Dispatcher, F, Router
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.types import LabeledPrice, Message, PreCheckoutQuery

from neonpay import create_neonpay
from neonpay.adapters.aiogram import AiogramAdapter
from neonpay.testing import BotAPIEmulator

from .flow import TOKEN, USER_ID, eventually, sale_flow, stock


@asynccontextmanager
async def polling(bot: Bot, dp: Dispatcher) -> AsyncIterator[None]:
    task = asyncio.create_task(
        dp.start_polling(bot, polling_timeout=1, handle_signals=False, close_bot_session=False)
    )
    try:
        yield
    finally:
        await asyncio.wait_for(dp.stop_polling(), 10)
        await asyncio.wait_for(task, 10)


async def test_sale_flow(
    emu: BotAPIEmulator, sqlite_url: str, payment_logs: pytest.LogCaptureFixture
) -> None:
    bot = Bot(TOKEN, session=AiohttpSession(api=emu.aiogram_server()))
    dp = Dispatcher()
    neonpay = create_neonpay(bot_instance=bot, dispatcher=dp, storage=sqlite_url)
    try:
        assert isinstance(neonpay.adapter, AiogramAdapter)
        stock(neonpay)
        async with polling(bot, dp):
            await sale_flow(emu, neonpay, payment_logs)
    finally:
        neonpay.close()
        await bot.session.close()


async def test_other_invoices_are_left_to_the_bots_handlers(
    emu: BotAPIEmulator, sqlite_url: str
) -> None:
    """An invoice the bot issued itself reaches the bot's own handlers, not NEONPAY's."""
    bot = Bot(TOKEN, session=AiohttpSession(api=emu.aiogram_server()))
    dp = Dispatcher()
    router = Router()
    own: list[str] = []

    @router.pre_checkout_query()
    async def approve(query: PreCheckoutQuery) -> None:
        own.append(query.invoice_payload)
        await query.answer(ok=True)

    @router.message(F.successful_payment)
    async def paid(message: Message) -> None:
        assert message.successful_payment is not None
        own.append(message.successful_payment.telegram_payment_charge_id)

    neonpay = create_neonpay(bot_instance=bot, dispatcher=router, storage=sqlite_url)
    dp.include_router(router)
    try:
        async with polling(bot, dp):
            await bot.send_invoice(
                USER_ID,
                "Sticker",
                "A sticker",
                "order-7",
                "XTR",
                [LabeledPrice(label="x", amount=3)],
            )
            result = await emu.pay(USER_ID, emu.invoices()[-1])
            assert result.approved
            await eventually(lambda: len(own) == 2, "the bot's own handlers")
        assert own == ["order-7", result.charge_id]
        assert neonpay.payments.list() == []
    finally:
        neonpay.close()
        await bot.session.close()
