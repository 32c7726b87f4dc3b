"""aiogram 3 against the emulator: real polling, real webhook, Stars payment flow."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from aiogram import Bot, Dispatcher, F
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import CommandStart
from aiogram.types import LabeledPrice, Message, PreCheckoutQuery, SuccessfulPayment
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web

from neonpay.testing import BotAPIEmulator

from .helpers import TOKEN, USER_ID


@asynccontextmanager
async def emulated_bot(emu: BotAPIEmulator) -> AsyncIterator[Bot]:
    """An aiogram ``Bot`` that calls the emulator; its session is closed on exit."""
    bot = Bot(TOKEN, session=AiohttpSession(api=emu.aiogram_server()))
    try:
        yield bot
    finally:
        await bot.session.close()


@asynccontextmanager
async def polling(dp: Dispatcher, bot: Bot, emu: BotAPIEmulator) -> AsyncIterator[None]:
    """Run ``dp.start_polling`` in a task; stop it (bounded) on exit."""
    task = asyncio.create_task(
        dp.start_polling(bot, handle_signals=False, polling_timeout=1, close_bot_session=False)
    )
    try:
        await emu.wait_for_call("getMe", timeout=5)
        yield
    finally:
        try:
            await asyncio.wait_for(dp.stop_polling(), 5)
        except RuntimeError:
            task.cancel()
        await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), 5)


def approving_dispatcher() -> Dispatcher:
    """A ``Dispatcher`` whose pre-checkout handler approves every query."""
    dp = Dispatcher()

    @dp.pre_checkout_query()
    async def on_checkout(query: PreCheckoutQuery) -> None:
        await query.answer(ok=True)

    return dp


async def send_premium_invoice(bot: Bot, payload: str, amount: int) -> Message:
    """A one-price Stars invoice ("Premium", "30 days") sent to the test user."""
    return await bot.send_invoice(
        chat_id=USER_ID,
        title="Premium",
        description="30 days",
        payload=payload,
        currency="XTR",
        prices=[LabeledPrice(label="x", amount=amount)],
    )


@pytest.mark.asyncio
async def test_aiogram_polling_payment_and_refund(emu: BotAPIEmulator) -> None:
    dp = approving_dispatcher()
    paid: list[SuccessfulPayment] = []
    paid_event = asyncio.Event()
    refunds: list[Message] = []
    refund_event = asyncio.Event()

    @dp.message(CommandStart())
    async def on_start(message: Message) -> None:
        await message.answer("Welcome!")

    @dp.message(F.successful_payment)
    async def on_paid(message: Message) -> None:
        assert message.successful_payment is not None
        paid.append(message.successful_payment)
        paid_event.set()

    @dp.message(F.refunded_payment)
    async def on_refund(message: Message) -> None:
        refunds.append(message)
        refund_event.set()

    async with emulated_bot(emu) as bot, polling(dp, bot, emu):
        since = len(emu.calls)
        emu.send_message_from_user(TOKEN, USER_ID, "/start")
        reply = await emu.wait_for_call("sendMessage", timeout=5, since=since)
        assert reply.params["text"] == "Welcome!"
        assert reply.params["chat_id"] == USER_ID

        invoice = await send_premium_invoice(bot, "order-42", 5)
        assert invoice.invoice is not None
        assert invoice.invoice.total_amount == 5
        sent = emu.calls_to("sendInvoice")[-1]
        assert sent.params["prices"] == [{"label": "x", "amount": 5}]

        result = await emu.pay(USER_ID, invoice)
        assert result.approved, result
        await asyncio.wait_for(paid_event.wait(), 5)
        assert paid[0].telegram_payment_charge_id == result.charge_id
        assert paid[0].invoice_payload == "order-42"
        assert emu.star_balance(TOKEN) == 5
        balance = await bot.get_my_star_balance()
        assert balance.amount == 5

        charge = paid[0].telegram_payment_charge_id
        assert await bot.refund_star_payment(user_id=USER_ID, telegram_payment_charge_id=charge)
        with pytest.raises(TelegramBadRequest, match="CHARGE_ALREADY_REFUNDED"):
            await bot.refund_star_payment(user_id=USER_ID, telegram_payment_charge_id=charge)
        await asyncio.wait_for(refund_event.wait(), 5)
        refunded = refunds[0].refunded_payment
        assert refunded is not None
        assert refunded.telegram_payment_charge_id == charge
        assert emu.star_balance(TOKEN) == 0

        transactions = await bot.get_star_transactions()
        assert [t.id for t in transactions.transactions] == [charge, charge]
        assert transactions.transactions[0].source is not None
        assert transactions.transactions[1].receiver is not None


@pytest.mark.asyncio
async def test_aiogram_double_delivery_is_visible(emu: BotAPIEmulator) -> None:
    """A redelivered successful_payment reaches the handler twice with one charge id."""
    dp = approving_dispatcher()
    seen: list[str] = []
    twice = asyncio.Event()

    @dp.message(F.successful_payment)
    async def on_paid(message: Message) -> None:
        assert message.successful_payment is not None
        seen.append(message.successful_payment.telegram_payment_charge_id)
        if len(seen) == 2:
            twice.set()

    async with emulated_bot(emu) as bot, polling(dp, bot, emu):
        link = await bot.create_invoice_link(
            title="Coins",
            description="100 coins",
            payload="coins-100",
            currency="XTR",
            prices=[LabeledPrice(label="coins", amount=3)],
        )
        result = await emu.pay(USER_ID, link)
        assert result.payment_update is not None
        emu.redeliver(result.payment_update)
        await asyncio.wait_for(twice.wait(), 5)
        assert seen == [result.charge_id, result.charge_id]
        assert emu.star_balance() == 3


@pytest.mark.asyncio
async def test_aiogram_late_answer_fails_payment() -> None:
    async with BotAPIEmulator(precheckout_timeout=0.3) as emu:
        dp = Dispatcher()
        errors: list[str] = []
        answered = asyncio.Event()
        paid: list[Message] = []

        @dp.pre_checkout_query()
        async def on_checkout(query: PreCheckoutQuery) -> None:
            await asyncio.sleep(0.6)
            try:
                await query.answer(ok=True)
            except TelegramBadRequest as exc:
                errors.append(exc.message)
            answered.set()

        @dp.message(F.successful_payment)
        async def on_paid(message: Message) -> None:
            paid.append(message)

        async with emulated_bot(emu) as bot, polling(dp, bot, emu):
            invoice = await send_premium_invoice(bot, "late", 5)
            result = await emu.pay(USER_ID, invoice)
            assert result.timed_out
            assert not result.approved
            await asyncio.wait_for(answered.wait(), 5)
            assert errors
            assert "query is too old" in errors[0]
            assert paid == []
            assert emu.star_balance() == 0


@pytest.mark.asyncio
async def test_aiogram_webhook_reply_answers_checkout(emu: BotAPIEmulator) -> None:
    """aiogram's webhook handler answers in the HTTP reply (multipart); the emulator runs it."""
    dp = Dispatcher()
    paid = asyncio.Event()

    @dp.pre_checkout_query()
    async def on_checkout(query: PreCheckoutQuery) -> object:
        return query.answer(ok=True)

    @dp.message(F.successful_payment)
    async def on_paid(message: Message) -> None:
        paid.set()

    async with emulated_bot(emu) as bot:
        app = web.Application()
        SimpleRequestHandler(
            dispatcher=dp, bot=bot, secret_token="s3cret", handle_in_background=False
        ).register(app, path="/hook")
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            await bot.set_webhook(f"http://127.0.0.1:{port}/hook", secret_token="s3cret")
            invoice = await send_premium_invoice(bot, "hook", 8)
            result = await emu.pay(USER_ID, invoice)
            assert result.approved, result
            await asyncio.wait_for(paid.wait(), 5)
            answer = emu.calls_to("answerPreCheckoutQuery")[-1]
            assert answer.source == "webhook_reply"
            assert answer.ok
            assert emu.star_balance() == 8
            await bot.delete_webhook()
        finally:
            await runner.cleanup()
