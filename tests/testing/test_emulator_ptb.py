"""python-telegram-bot 22 against the emulator: Application polling, Stars flow."""

from __future__ import annotations

import asyncio

import pytest
from telegram import LabeledPrice, SuccessfulPayment, Update
from telegram.error import BadRequest
from telegram.ext import (
    Application,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    PreCheckoutQueryHandler,
    filters,
)

from neonpay.testing import BotAPIEmulator

from .helpers import TOKEN, USER_ID


@pytest.mark.asyncio
async def test_ptb_polling_payment_and_refund(emu: BotAPIEmulator) -> None:
    paid: list[SuccessfulPayment] = []
    paid_event = asyncio.Event()

    async def on_start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        await update.effective_message.reply_text("Hello from PTB")

    async def on_checkout(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.pre_checkout_query is not None
        await update.pre_checkout_query.answer(ok=True)

    async def on_paid(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None
        assert update.message.successful_payment is not None
        paid.append(update.message.successful_payment)
        paid_event.set()

    app = Application.builder().token(TOKEN).base_url(emu.ptb_base_url).build()
    app.add_handler(CommandHandler("start", on_start))
    app.add_handler(PreCheckoutQueryHandler(on_checkout))
    app.add_handler(MessageHandler(filters.SUCCESSFUL_PAYMENT, on_paid))

    async with app:
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0, timeout=1)
        try:
            assert [c.method for c in emu.calls[:2]] == ["getMe", "deleteWebhook"]
            since = len(emu.calls)
            emu.send_message_from_user(TOKEN, USER_ID, "/start")
            reply = await emu.wait_for_call("sendMessage", timeout=5, since=since)
            assert reply.params["text"] == "Hello from PTB"

            invoice = await app.bot.send_invoice(
                chat_id=USER_ID,
                title="Premium",
                description="30 days",
                payload="ptb-order",
                currency="XTR",
                prices=[LabeledPrice("x", 5)],
            )
            assert invoice.invoice is not None
            assert invoice.invoice.currency == "XTR"
            result = await emu.pay(USER_ID, invoice)
            assert result.approved, result
            await asyncio.wait_for(paid_event.wait(), 5)
            assert paid[0].telegram_payment_charge_id == result.charge_id
            assert paid[0].invoice_payload == "ptb-order"
            assert emu.star_balance(TOKEN) == 5
            balance = await app.bot.get_my_star_balance()
            assert balance.amount == 5

            charge = paid[0].telegram_payment_charge_id
            assert await app.bot.refund_star_payment(USER_ID, charge)
            # PTB capitalizes descriptions: "Charge_already_refunded".
            with pytest.raises(BadRequest, match=r"(?i)charge_already_refunded"):
                await app.bot.refund_star_payment(USER_ID, charge)
            transactions = await app.bot.get_star_transactions()
            assert [t.id for t in transactions.transactions] == [charge, charge]
            assert emu.star_balance(TOKEN) == 0
        finally:
            await asyncio.wait_for(app.updater.stop(), 5)
            await asyncio.wait_for(app.stop(), 5)


@pytest.mark.asyncio
async def test_ptb_rejecting_checkout(emu: BotAPIEmulator) -> None:
    async def on_checkout(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.pre_checkout_query is not None
        await update.pre_checkout_query.answer(ok=False, error_message="Out of stock")

    app = Application.builder().token(TOKEN).base_url(emu.ptb_base_url).build()
    app.add_handler(PreCheckoutQueryHandler(on_checkout))
    async with app:
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0, timeout=1)
        try:
            link = await app.bot.create_invoice_link(
                title="Premium",
                description="30 days",
                payload="ptb-sub",
                currency="XTR",
                prices=[LabeledPrice("month", 50)],
                subscription_period=2592000,
            )
            result = await emu.pay(USER_ID, link)
            assert not result.approved
            assert result.error_message == "Out of stock"
            assert emu.star_balance() == 0
        finally:
            await asyncio.wait_for(app.updater.stop(), 5)
            await asyncio.wait_for(app.stop(), 5)
