"""The raw Bot API adapter: polling, webhook delivery, and the refusals."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from neonpay import NeonPay, create_neonpay
from neonpay.adapters.raw import SECRET_HEADER, RawAPIAdapter, RawBotAPI
from neonpay.core.gateway import BotAPIError
from neonpay.core.payments import PaymentResult
from neonpay.errors import ConfigurationError
from neonpay.store.sqlite import SQLiteStore
from neonpay.testing import BotAPIEmulator

from .flow import PRICE, TOKEN, USER_ID, eventually, logged, sale_flow, stock

SECRET = "s3cret-Token_42"


@pytest.fixture
def raw_bot(emu: BotAPIEmulator) -> RawBotAPI:
    return RawBotAPI(TOKEN, api_base=emu.base_url, request_timeout=10)


@pytest.fixture
def shop(raw_bot: RawBotAPI, sqlite_url: str) -> Iterator[NeonPay]:
    neonpay = create_neonpay(bot_instance=raw_bot, storage=sqlite_url)
    stock(neonpay)
    yield neonpay
    neonpay.close()


@asynccontextmanager
async def polling(bot: RawBotAPI) -> AsyncIterator[None]:
    await bot.start_polling(timeout=1)
    try:
        yield
    finally:
        await bot.stop_polling()


@asynccontextmanager
async def webhook_server(bot: RawBotAPI, secret: str) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/telegram", bot.webhook_handler(secret))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/telegram"
    finally:
        await runner.cleanup()


async def test_sale_flow_by_polling(
    emu: BotAPIEmulator, raw_bot: RawBotAPI, store_url: str, payment_logs: pytest.LogCaptureFixture
) -> None:
    """The whole flow, on SQLite and on PostgreSQL (double delivery recorded once)."""
    neonpay = create_neonpay(bot_instance=raw_bot, storage=store_url)
    try:
        assert isinstance(neonpay.adapter, RawAPIAdapter)
        stock(neonpay)
        async with polling(raw_bot):
            await sale_flow(emu, neonpay, payment_logs)
    finally:
        neonpay.close()
        await raw_bot.close()


async def test_sale_flow_by_webhook(
    emu: BotAPIEmulator, raw_bot: RawBotAPI, shop: NeonPay, payment_logs: pytest.LogCaptureFixture
) -> None:
    """Telegram (the emulator) delivers to the webhook with the secret-token header; the
    redelivered update keeps its update_id, as Telegram's retries do."""
    try:
        async with webhook_server(raw_bot, SECRET) as url:
            await raw_bot.set_webhook(url, secret_token=SECRET)
            await sale_flow(emu, shop, payment_logs)
            assert all(d.ok for d in emu.webhook_deliveries())
            await raw_bot.delete_webhook()
    finally:
        await raw_bot.close()


async def test_webhook_refuses_a_wrong_or_missing_secret(
    emu: BotAPIEmulator, raw_bot: RawBotAPI, shop: NeonPay
) -> None:
    try:
        assert await shop.send_payment(USER_ID, "premium")
        invoice = emu.invoices()[-1]
        async with webhook_server(raw_bot, SECRET) as url:
            # Telegram configured with another secret: every delivery is refused.
            await raw_bot.call("setWebhook", url=url, secret_token="another-secret")
            result = await emu.pay(USER_ID, invoice, timeout=1.5)
            assert result.timed_out
            assert not result.approved
            deliveries = emu.webhook_deliveries()
            assert deliveries
            assert {d.status for d in deliveries} == {401}
            # A forged delivery of a successful payment, with no header or a wrong one.
            update = {
                "update_id": 1,
                "message": {
                    "message_id": 9,
                    "date": 0,
                    "chat": {"id": USER_ID, "type": "private"},
                    "from": {"id": USER_ID, "is_bot": False, "first_name": "U"},
                    "successful_payment": {
                        "currency": "XTR",
                        "total_amount": PRICE,
                        "invoice_payload": invoice.payload,
                        "telegram_payment_charge_id": "forged-1",
                        "provider_payment_charge_id": "",
                    },
                },
            }
            async with aiohttp.ClientSession() as http:
                for headers in ({}, {SECRET_HEADER: "wrong"}, {SECRET_HEADER: SECRET + "x"}):
                    async with http.post(url, json=update, headers=headers) as response:
                        assert response.status == 401
                async with http.post(url, data=b"{", headers={SECRET_HEADER: SECRET}) as response:
                    assert response.status == 400
            await raw_bot.delete_webhook()
        assert shop.payments.list() == []
        assert emu.charges() == []
    finally:
        await raw_bot.close()


async def test_forged_and_foreign_invoices_are_refused(
    emu: BotAPIEmulator, raw_bot: RawBotAPI, shop: NeonPay
) -> None:
    invoice = {
        "chat_id": USER_ID,
        "title": "Premium",
        "description": "30 days",
        "currency": "XTR",
        "prices": [{"label": "Payment", "amount": PRICE}],
    }
    try:
        async with polling(raw_bot):
            await raw_bot.call("sendInvoice", invoice, payload="np1c|premium||0|AAAAAAAAAAAAAAAA")
            forged = await emu.pay(USER_ID, emu.invoices()[-1])
            assert not forged.approved
            assert "not valid" in (forged.error_message or "")
            await raw_bot.call("sendInvoice", invoice, payload="order-1")
            foreign = await emu.pay(USER_ID, emu.invoices()[-1])
            assert not foreign.approved
            assert "cannot be paid here" in (foreign.error_message or "")
            seen: list[dict[str, Any]] = []
            raw_bot.on_update(seen.append)
            await raw_bot.call("sendInvoice", invoice, payload="order-2")
            pending = await emu.pay(USER_ID, emu.invoices()[-1], timeout=0.5)
            assert pending.timed_out  # left to the bot's own callback, which did not answer
            assert [u["pre_checkout_query"]["invoice_payload"] for u in seen] == ["order-2"]
        assert shop.payments.list() == []
        assert emu.charges() == []
    finally:
        await raw_bot.close()


async def test_refund_already_done_on_telegrams_side(
    emu: BotAPIEmulator, raw_bot: RawBotAPI, shop: NeonPay, payment_logs: pytest.LogCaptureFixture
) -> None:
    """Support refunded on Telegram's side while the bot was away: CHARGE_ALREADY_REFUNDED
    counts as done, and the late refunded_payment message changes nothing more."""
    refunds: list[PaymentResult] = []
    shop.on_refund(refunds.append)
    try:
        async with polling(raw_bot):
            assert await shop.send_payment(USER_ID, "premium")
            result = await emu.pay(USER_ID, emu.invoices()[-1])
            charge = result.charge_id or ""
            await eventually(lambda: shop.payments.get(charge) is not None, "the payment")
        await emu.refund(USER_ID, charge)
        payment = await shop.refund(charge)
        assert payment.refunded
        assert len(refunds) == 1
        call = emu.calls_to("refundStarPayment")[-1]
        assert not call.ok
        assert "CHARGE_ALREADY_REFUNDED" in (call.description or "")
        async with polling(raw_bot):
            await eventually(
                lambda: logged(payment_logs, charge, "unknown or already recorded"),
                "the late refunded_payment message",
            )
        assert len(refunds) == 1
        with pytest.raises(BotAPIError) as info:
            await shop.adapter.refund_star_payment(USER_ID, "no-such-charge")
        assert info.value.has_reason("CHARGE_NOT_FOUND")
        assert info.value.error_code == 400
    finally:
        await raw_bot.close()


async def test_a_failing_store_is_answered_internal_error(
    emu: BotAPIEmulator, raw_bot: RawBotAPI, shop: NeonPay
) -> None:
    try:
        assert await shop.send_payment(USER_ID, "premium")
        shop.store.close()
        async with polling(raw_bot):
            result = await emu.pay(USER_ID, emu.invoices()[-1])
        assert not result.approved
        assert result.error_message == "Internal error, please try again."
        assert emu.charges() == []
    finally:
        await raw_bot.close()


async def test_invoice_links_and_subscriptions(
    emu: BotAPIEmulator, raw_bot: RawBotAPI, shop: NeonPay
) -> None:
    try:
        link = await shop.create_invoice_link("premium", promo_code="SAVE20")
        record = emu.invoices()[-1]
        assert link == record.link
        assert record.amount == PRICE * 80 // 100
        assert record.payload.startswith("np1l|premium|SAVE20|")
        monthly = await shop.create_invoice_link("premium", subscription_period=2_592_000)
        assert emu.invoices()[-1].subscription_period == 2_592_000
        assert monthly != link
        async with polling(raw_bot):
            paid = await emu.pay(USER_ID + 1, monthly)
            assert paid.approved, paid.error_message
            await eventually(lambda: len(shop.payments.list()) == 1, "the subscription payment")
        payment = shop.payments.list()[0]
        assert payment.user_id == USER_ID + 1
        assert payment.extra["is_recurring"] is True
        with pytest.raises(ValueError, match="2592000"):
            await shop.create_invoice_link("premium", subscription_period=86_400)
        assert len(emu.invoices()) == 2
    finally:
        await raw_bot.close()


def test_raw_bot_validates_and_masks() -> None:
    bot = RawBotAPI(TOKEN, api_base="http://127.0.0.1:1/")
    assert TOKEN not in repr(bot)
    assert "123456789:AA" in repr(bot)
    assert bot.api_base == "http://127.0.0.1:1"
    assert bot.bot_id == 123456789
    for token in ("", "nope", "123:"):
        with pytest.raises(ConfigurationError):
            RawBotAPI(token)
    with pytest.raises(ConfigurationError):
        RawBotAPI(TOKEN, api_base="ftp://example.org")
    with pytest.raises(ConfigurationError):
        bot.webhook_handler("bad secret!")


async def test_unreachable_api_is_a_bot_api_error_without_the_token() -> None:
    async with RawBotAPI(TOKEN, api_base="http://127.0.0.1:1", request_timeout=2) as bot:
        with pytest.raises(BotAPIError) as info:
            await bot.call("getMe")
    assert TOKEN not in str(info.value)
    assert info.value.error_code is None
    with pytest.raises(ConfigurationError):
        await bot.call("getMe")


async def test_payment_is_recorded_once_the_database_is_back(
    emu: BotAPIEmulator,
    raw_bot: RawBotAPI,
    tmp_path: Path,
    payment_logs: pytest.LogCaptureFixture,
) -> None:
    """While another writer holds the database, the successful payment cannot be written:
    the update stays unconfirmed and is handled again until it is recorded, once."""
    path = tmp_path / "busy.db"
    store = SQLiteStore(path, busy_timeout=0.1)
    neonpay = create_neonpay(bot_instance=raw_bot, storage=store)
    seen: list[PaymentResult] = []
    neonpay.on_payment(seen.append)
    blocker = sqlite3.connect(path, isolation_level=None)
    try:
        stock(neonpay)
        assert await neonpay.send_payment(USER_ID, "premium")
        blocker.execute("BEGIN IMMEDIATE")  # holds the write lock; reads still work
        await raw_bot.start_polling(timeout=1, error_delay=0.1)
        try:
            result = await emu.pay(USER_ID, emu.invoices()[-1])
            assert result.approved, result.error_message
            charge = result.charge_id or ""
            # The cashier's own retries give up, the update stays unconfirmed...
            await eventually(lambda: logged(payment_logs, "not handled", "locked"), "a retry")
            assert neonpay.payments.list() == []
            blocker.execute("ROLLBACK")
            # ... and the next delivery of it is recorded.
            await eventually(lambda: len(seen) == 1, "the payment after the lock", timeout=10)
        finally:
            await raw_bot.stop_polling()
        assert [p.charge_id for p in neonpay.payments.list()] == [charge]
        assert len(seen) == 1
    finally:
        blocker.close()
        neonpay.close()
        store.close()
        await raw_bot.close()
