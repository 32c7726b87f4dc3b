"""``neonpay.payments``: listing and totals; the payment API without a bot attached."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone

import pytest

from neonpay import ConfigurationError, NeonPay, PaymentStage, ValidationError, create_neonpay
from neonpay.store.base import PaymentRow

DAY1 = datetime(2025, 3, 1, 12, tzinfo=timezone.utc).timestamp()
DAY2 = datetime(2025, 3, 2, 9, tzinfo=timezone.utc).timestamp()


@pytest.fixture
def neonpay(sqlite_url: str) -> Iterator[NeonPay]:
    np = create_neonpay(storage=sqlite_url)
    rows = [
        PaymentRow("c1", 1, "basic", 10, created_at=DAY1),
        PaymentRow("c2", 2, "basic", 8, promo_code="SAVE20", created_at=DAY1 + 60),
        PaymentRow("c3", 1, "gold", 50, promo_code="SAVE20", created_at=DAY2),
        PaymentRow("c4", 3, "gold", 50, created_at=DAY2 + 60),
    ]
    for row in rows:
        assert np.store.add_payment(row)
    assert np.store.mark_refunded("c4", DAY2 + 120)
    yield np
    np.close()


def test_list_filters(neonpay: NeonPay) -> None:
    payments = neonpay.payments
    assert [p.charge_id for p in payments.list()] == ["c1", "c2", "c3", "c4"]
    assert [p.charge_id for p in payments.list(user_id=1)] == ["c1", "c3"]
    assert [p.charge_id for p in payments.list(stage_id="gold")] == ["c3", "c4"]
    assert [p.charge_id for p in payments.list(since=DAY2)] == ["c3", "c4"]
    day2 = datetime(2025, 3, 2, tzinfo=timezone.utc)
    assert [p.charge_id for p in payments.list(until=day2)] == ["c1", "c2"]
    assert [p.charge_id for p in payments.list(limit=1)] == ["c1"]
    refunded = payments.get("c4")
    assert refunded is not None
    assert refunded.refunded
    assert refunded.refunded_at == DAY2 + 120
    first = payments.get("c1")
    assert first is not None
    assert not first.refunded
    assert first.paid_at.day == 1
    assert payments.get("missing") is None


def test_totals_per_stage_promo_code_and_day(neonpay: NeonPay) -> None:
    by_stage = neonpay.payments.totals()
    assert list(by_stage) == ["basic", "gold"]
    gold = by_stage["gold"]
    assert (gold.count, gold.amount, gold.refunded, gold.refunded_amount, gold.net_amount) == (
        2,
        100,
        1,
        50,
        50,
    )
    by_promo = neonpay.payments.totals(by="promo_code")
    assert list(by_promo) == [None, "SAVE20"]
    assert (by_promo["SAVE20"].count, by_promo["SAVE20"].amount) == (2, 58)
    by_day = neonpay.payments.totals(by="day", user_id=1)
    assert {day: t.amount for day, t in by_day.items()} == {"2025-03-01": 10, "2025-03-02": 50}


@pytest.mark.parametrize(
    "call",
    [
        lambda np: np.payments.totals(by="week"),
        lambda np: np.payments.list(limit=0),
        lambda np: np.payments.list(limit=True),
        lambda np: np.payments.list(since=datetime(2025, 1, 1)),
        lambda np: np.payments.list(since="yesterday"),
    ],
)
def test_bad_arguments_are_refused(neonpay: NeonPay, call: object) -> None:
    before = neonpay.payments.list()
    with pytest.raises(ValidationError):
        call(neonpay)  # type: ignore[operator]
    assert neonpay.payments.list() == before


async def test_payment_calls_need_a_bot(sqlite_url: str) -> None:
    with create_neonpay(storage=sqlite_url) as np:
        np.create_payment_stage("basic", PaymentStage("Basic", "A thing", price=5))
        with pytest.raises(ConfigurationError, match="bot_instance"):
            await np.send_payment(1, "basic")
        with pytest.raises(ConfigurationError):
            await np.create_invoice_link("basic")
        with pytest.raises(ValidationError):
            await np.send_payment(0, "basic")
        with pytest.raises(ConfigurationError):
            np.on_payment("not callable")  # type: ignore[arg-type]
        assert np.store.get_meta("invoice_secret") is None
        await np.setup()
        assert np.store.get_meta("invoice_secret") is not None
