"""Pre-checkout decisions and payment records, without any bot framework."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from neonpay import DiscountType, NeonPay, PaymentStage, create_neonpay
from neonpay.core.checkout import (
    Checkout,
    PreCheckoutQuery,
    RefundedPayment,
    SuccessfulPayment,
)
from neonpay.core.invoices import InvalidInvoice, InvoiceKind, InvoiceSigner
from neonpay.core.payments import PaymentResult, PaymentStatus

USER = 4242


@pytest.fixture
def neonpay(store_url: str) -> Iterator[NeonPay]:
    """A catalog with one stage and promo codes, on SQLite and on PostgreSQL."""
    np = create_neonpay(storage=store_url)
    np.create_payment_stage(
        "premium", PaymentStage("Premium", "30 days", price=100, payload={"tier": "gold"})
    )
    np.create_promo_code("SAVE20", DiscountType.PERCENTAGE, 20, max_uses=1)
    np.create_promo_code("VIP", DiscountType.FIXED_AMOUNT, 10, allowed_user_ids=[USER])
    yield np
    np.close()


def issue(np: NeonPay, price: int, *, promo: str | None = None, user: int = USER) -> str:
    _, payload = np.cashier.signer().issue(
        InvoiceKind.CHAT, "premium", price, promo_code=promo, user_id=user
    )
    return payload


def query(
    payload: str, amount: int, *, user: int = USER, currency: str = "XTR"
) -> PreCheckoutQuery:
    return PreCheckoutQuery("q1", user, currency, amount, payload)


def paid(payload: str, amount: int, charge: str = "stx-1", **extra: Any) -> SuccessfulPayment:
    return SuccessfulPayment(charge, USER, USER, "XTR", amount, payload, **extra)


def test_approves_a_fresh_invoice_at_the_current_price(neonpay: NeonPay) -> None:
    answer = neonpay.cashier.checkout.review(query(issue(neonpay, 100), 100))
    assert answer.ok
    assert answer.error_message is None
    assert answer.claim is not None
    assert answer.claim.stage_id == "premium"


def test_approves_the_discounted_price(neonpay: NeonPay) -> None:
    payload = issue(neonpay, 80, promo="SAVE20")
    assert neonpay.cashier.checkout.review(query(payload, 80)).ok


def test_refuses_when_the_price_changed(neonpay: NeonPay) -> None:
    payload = issue(neonpay, 100)
    neonpay.update_payment_stage("premium", price=120)
    answer = neonpay.cashier.checkout.review(query(payload, 100))
    assert not answer.ok
    assert answer.error_message is not None
    assert "120 Stars" in answer.error_message
    assert neonpay.payments.list() == []


def test_refuses_when_the_stage_is_gone(neonpay: NeonPay) -> None:
    payload = issue(neonpay, 100)
    neonpay.remove_payment_stage("premium")
    answer = neonpay.cashier.checkout.review(query(payload, 100))
    assert not answer.ok
    assert answer.error_message == "This product is no longer available."


def test_refuses_a_used_up_promo_code(neonpay: NeonPay) -> None:
    payload = issue(neonpay, 80, promo="SAVE20")
    neonpay.promotions.record_use("SAVE20")
    answer = neonpay.cashier.checkout.review(query(payload, 80))
    assert not answer.ok
    assert answer.error_message is not None
    assert "used up" in answer.error_message


def test_refuses_a_deleted_promo_code(neonpay: NeonPay) -> None:
    payload = issue(neonpay, 80, promo="SAVE20")
    neonpay.promotions.remove_promo_code("SAVE20")
    answer = neonpay.cashier.checkout.review(query(payload, 80))
    assert not answer.ok
    assert "no longer exists" in (answer.error_message or "")


def test_refuses_a_promo_code_not_for_this_user(neonpay: NeonPay) -> None:
    other = USER + 1
    payload = issue(neonpay, 90, promo="VIP", user=other)
    answer = neonpay.cashier.checkout.review(query(payload, 90, user=other))
    assert not answer.ok
    assert "not available to this user" in (answer.error_message or "")


def test_refuses_another_users_invoice_a_forged_one_and_another_currency(
    neonpay: NeonPay,
) -> None:
    payload = issue(neonpay, 100)
    review = neonpay.cashier.checkout.review
    assert not review(query(payload, 100, user=USER + 1)).ok
    assert not review(query(payload.replace("premium", "premiun"), 100)).ok
    assert not review(query("order-1", 100)).ok
    answer = review(query(payload, 100, currency="USD"))
    assert not answer.ok
    assert "not valid" in (answer.error_message or "")
    assert neonpay.payments.list() == []
    assert neonpay.promotions.usage("SAVE20") == 0


def test_refuses_a_stale_invoice(neonpay: NeonPay) -> None:
    now = [time.time()]
    signer = InvoiceSigner(neonpay.cashier.signer()._secret, max_age=60, clock=lambda: now[0])
    checkout = Checkout(
        neonpay.store, neonpay.stages, neonpay.promotions, lambda: signer, clock=lambda: now[0]
    )
    _, payload = signer.issue(InvoiceKind.CHAT, "premium", 100, user_id=USER)
    assert checkout.review(query(payload, 100)).ok
    now[0] += 61
    answer = checkout.review(query(payload, 100))
    assert not answer.ok
    assert "expired" in (answer.error_message or "")


def test_records_once_per_charge_id(neonpay: NeonPay) -> None:
    """A redelivered successful payment changes nothing (SQLite and PostgreSQL)."""
    payload = issue(neonpay, 80, promo="SAVE20")
    checkout = neonpay.cashier.checkout
    first = checkout.record(paid(payload, 80))
    assert isinstance(first, PaymentResult)
    assert first.status is PaymentStatus.COMPLETED
    assert first.transaction_id == "stx-1"
    assert first.stage_id == "premium"
    assert first.promo_code == "SAVE20"
    assert first.metadata["payload"] == {"tier": "gold"}
    assert first.metadata["verified"] is True
    assert checkout.record(paid(payload, 80)) is None
    payments = neonpay.payments.list()
    assert [(p.charge_id, p.amount, p.promo_code) for p in payments] == [("stx-1", 80, "SAVE20")]
    assert neonpay.promotions.usage("SAVE20") == 1


def test_records_once_across_a_restart(store_url: str) -> None:
    first = create_neonpay(storage=store_url)
    first.create_payment_stage("premium", PaymentStage("Premium", "30 days", price=100))
    payload = issue(first, 100)
    assert first.cashier.checkout.record(paid(payload, 100)) is not None
    first.close()
    second = create_neonpay(storage=store_url)
    try:
        assert second.cashier.checkout.record(paid(payload, 100)) is None
        assert len(second.payments.list()) == 1
    finally:
        second.close()


def test_renewals_are_recorded_without_counting_the_promo_again(neonpay: NeonPay) -> None:
    _, payload = neonpay.cashier.signer().issue(
        InvoiceKind.SUBSCRIPTION, "premium", 80, promo_code="SAVE20"
    )
    checkout = neonpay.cashier.checkout
    checkout.record(paid(payload, 80, "c1", is_recurring=True, is_first_recurring=True))
    renewal = checkout.record(
        paid(payload, 80, "c2", is_recurring=True, subscription_expiration_date=123)
    )
    assert renewal is not None
    assert renewal.metadata["subscription_expiration_date"] == 123
    assert [p.charge_id for p in neonpay.payments.list()] == ["c1", "c2"]
    assert neonpay.promotions.usage("SAVE20") == 1


def test_unverified_payment_is_recorded_and_flagged(neonpay: NeonPay) -> None:
    payload = issue(neonpay, 100)
    result = neonpay.cashier.checkout.record(paid(payload, 99))  # amount differs from the MAC
    assert result is not None
    assert result.metadata["verified"] is False
    payment = neonpay.payments.get("stx-1")
    assert payment is not None
    assert payment.extra["verified"] is False


def test_foreign_payment_is_not_recorded(neonpay: NeonPay) -> None:
    with pytest.raises(InvalidInvoice):
        neonpay.cashier.checkout.record(paid("order-1", 100))
    assert neonpay.payments.list() == []


def test_refund_is_recorded_once(neonpay: NeonPay) -> None:
    checkout = neonpay.cashier.checkout
    checkout.record(paid(issue(neonpay, 100), 100))
    marked = checkout.record_refund("stx-1")
    assert marked is not None
    assert marked.refunded
    assert checkout.record_refund("stx-1") is None
    assert checkout.record_refund("unknown") is None
    payment = neonpay.payments.get("stx-1")
    assert payment is not None
    assert payment.refunded_at == marked.refunded_at


async def test_double_delivery_through_the_cashier_runs_callbacks_once(neonpay: NeonPay) -> None:
    seen: list[PaymentResult] = []
    refunds: list[PaymentResult] = []

    async def on_payment(result: PaymentResult) -> None:
        seen.append(result)

    def broken(result: PaymentResult) -> None:
        raise RuntimeError("a bug in the bot's callback")

    neonpay.on_payment(broken)
    neonpay.on_payment(on_payment)
    neonpay.on_refund(refunds.append)
    payload = issue(neonpay, 100)
    replies: list[str] = []

    async def reply(text: str) -> None:
        replies.append(text)

    for _ in range(2):
        await neonpay.cashier.handle_successful_payment(lambda: paid(payload, 100), reply)
    assert len(seen) == 1
    assert seen[0].amount == 100
    assert replies == [neonpay.thank_you_message]
    refund = RefundedPayment("stx-1", USER, "XTR", 100, payload)
    for _ in range(2):
        await neonpay.cashier.handle_refunded_payment(lambda: refund)
    assert [r.status for r in refunds] == [PaymentStatus.REFUNDED]
    assert len(neonpay.payments.list()) == 1


async def test_pre_checkout_is_answered_when_deciding_fails(neonpay: NeonPay) -> None:
    answers: list[tuple[bool, str | None]] = []

    async def answer(ok: bool, error_message: str | None) -> None:
        answers.append((ok, error_message))

    def broken() -> PreCheckoutQuery:
        raise KeyError("from")

    await neonpay.cashier.handle_pre_checkout(broken, answer)
    payload = issue(neonpay, 100)
    neonpay.store.close()  # the store fails from now on
    await neonpay.cashier.handle_pre_checkout(lambda: query(payload, 100), answer)
    assert answers == [
        (False, "Internal error, please try again."),
        (False, "Internal error, please try again."),
    ]
