"""The selling flow every framework runs against the emulator.

A user pays an invoice; the successful payment is delivered twice and recorded once; a
price changed between invoice and payment is refused at pre-checkout; a promo code is
applied and counted; a payment is refunded, and refunding it again is done already.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from neonpay import DiscountType, NeonPay, PaymentStage
from neonpay.core.payments import PaymentResult, PaymentStatus
from neonpay.testing import BotAPIEmulator

TOKEN = "123456789:AAEhBOweik6ad9r_QXMENQjcrGbqCr4K-ZA"
USER_ID = 4242
PRICE = 25


async def eventually(predicate: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    """Wait until ``predicate()`` holds (polling), at most ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def stock(neonpay: NeonPay) -> None:
    """The catalog the flow sells from."""
    neonpay.create_payment_stage(
        "premium",
        PaymentStage("Premium", "30 days of premium", price=PRICE, payload={"tier": "gold"}),
    )
    neonpay.create_promo_code("SAVE20", DiscountType.PERCENTAGE, 20, max_uses=5)


def logged(caplog: pytest.LogCaptureFixture, *parts: str) -> bool:
    """Whether a captured log line contains every part."""
    return any(all(p in r.getMessage() for p in parts) for r in caplog.records)


def check_invoice_call(params: dict[str, Any], amount: int) -> None:
    """A Stars invoice as the Bot API received it: XTR, one price in whole Stars, no tips."""
    assert params["currency"] == "XTR"
    assert params["prices"] == [{"label": "Payment", "amount": amount}]
    assert params.get("provider_token", "") == ""
    assert "max_tip_amount" not in params
    assert "suggested_tip_amounts" not in params
    assert str(params["payload"]).startswith("np1c|premium|")
    assert len(str(params["payload"]).encode()) <= 128


def thank_yous(emu: BotAPIEmulator, neonpay: NeonPay) -> int:
    text = neonpay.thank_you_message
    return sum(1 for m in emu.sent_messages(USER_ID) if m.get("text") == text)


async def sale_flow(emu: BotAPIEmulator, neonpay: NeonPay, caplog: pytest.LogCaptureFixture) -> str:
    """Run the whole flow (the catalog must be stocked); returns the refunded charge id."""
    seen: list[PaymentResult] = []
    refunds: list[PaymentResult] = []

    async def on_payment(result: PaymentResult) -> None:
        seen.append(result)

    neonpay.on_payment(on_payment)
    neonpay.on_refund(refunds.append)
    thanked = thank_yous(emu, neonpay)  # the emulator may have served earlier flows
    refund_calls = len(emu.calls_to("refundStarPayment"))

    # An invoice in whole Stars, paid once.
    since = len(emu.calls)
    assert await neonpay.send_payment(USER_ID, "premium") is True
    call = await emu.wait_for_call("sendInvoice", since=since)
    assert call.ok, call.description
    check_invoice_call(call.params, PRICE)
    result = await emu.pay(USER_ID, emu.invoices()[-1])
    assert result.approved, result.error_message
    assert result.charge_id is not None
    assert result.payment_update is not None
    charge = result.charge_id
    await eventually(lambda: len(seen) == 1, "the on_payment callback")
    await eventually(lambda: thank_yous(emu, neonpay) == thanked + 1, "the thank-you message")
    payment = neonpay.payments.get(charge)
    assert payment is not None
    assert (payment.user_id, payment.stage_id, payment.amount, payment.promo_code) == (
        USER_ID,
        "premium",
        PRICE,
        None,
    )
    assert seen[0].transaction_id == charge
    assert seen[0].metadata["payload"] == {"tier": "gold"}

    # The same successful payment delivered again: recorded once, no second callback.
    emu.redeliver(result.payment_update)
    await eventually(lambda: logged(caplog, charge, "already recorded"), "the redelivery")
    assert [p.charge_id for p in neonpay.payments.list()] == [charge]
    assert len(seen) == 1
    assert thank_yous(emu, neonpay) == thanked + 1

    # The price changes between the invoice and the payment: refused, nothing recorded.
    assert await neonpay.send_payment(USER_ID, "premium") is True
    stale = emu.invoices()[-1]
    neonpay.update_payment_stage("premium", price=PRICE + 5)
    refused = await emu.pay(USER_ID, stale)
    assert not refused.approved
    assert not refused.timed_out
    assert refused.error_message is not None
    assert "price has changed" in refused.error_message
    assert [p.charge_id for p in neonpay.payments.list()] == [charge]
    assert len(seen) == 1

    # A promo code: the discounted price is invoiced, paid and its use counted.
    assert await neonpay.send_payment(USER_ID, "premium", promo_code="save20") is True
    discounted = emu.invoices()[-1]
    assert discounted.amount == (PRICE + 5) * 80 // 100
    with_promo = await emu.pay(USER_ID, discounted)
    assert with_promo.approved, with_promo.error_message
    await eventually(lambda: len(seen) == 2, "the second payment")
    assert seen[1].promo_code == "SAVE20"
    assert seen[1].amount == discounted.amount
    assert neonpay.promotions.usage("SAVE20") == 1

    # A refund, then the same refund again: done, Telegram asked once.
    refunded = await neonpay.refund(charge)
    assert refunded.refunded
    assert [c.refunded for c in emu.charges() if c.charge_id == charge] == [True]
    again = await neonpay.refund(charge)
    assert again.refunded
    assert again.refunded_at == refunded.refunded_at
    assert len(emu.calls_to("refundStarPayment")) == refund_calls + 1
    await eventually(
        lambda: logged(caplog, charge, "unknown or already recorded"),
        "the refunded_payment message",
    )
    assert [r.status for r in refunds] == [PaymentStatus.REFUNDED]
    totals = neonpay.payments.totals()["premium"]
    assert (totals.count, totals.amount, totals.refunded, totals.refunded_amount) == (
        2,
        PRICE + discounted.amount,
        1,
        PRICE,
    )
    return charge
