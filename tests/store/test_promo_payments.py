"""A promo code's max_uses holds exactly on one store: its use is checked and counted in
the transaction that records the payment. Buyers who lose the race after pre-checkout
still have their payment recorded, flagged and reported as an over-use; a crash leaves
the payment and its use both recorded or both absent."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import pytest

from neonpay import DiscountType, NeonPay, PaymentStage, create_neonpay
from neonpay.cli.views import promo_row
from neonpay.core.checkout import PreCheckoutQuery, SuccessfulPayment
from neonpay.core.invoices import InvoiceKind

from .invariants import assert_log_consistent
from .processes import start_all, start_python

CODE = "FIVE"
MAX_USES = 5
PRICE = 100
PAID = 80  # 20% off


@pytest.fixture
def shop(store_url: str) -> Iterator[NeonPay]:
    np = create_neonpay(storage=store_url)
    np.create_payment_stage("item", PaymentStage("Item", "One item", PRICE))
    np.create_promo_code(CODE, DiscountType.PERCENTAGE, 20, max_uses=MAX_USES)
    yield np
    np.close()


def payload_for(np: NeonPay, user: int) -> str:
    _, payload = np.cashier.signer().issue(
        InvoiceKind.CHAT, "item", PAID, promo_code=CODE, user_id=user
    )
    return payload


def paid_with_code(np: NeonPay) -> list[bool]:
    """The ``promo_over_use`` flag of every payment that used the code."""
    return [p.promo_over_use for p in np.payments.list() if p.promo_code == CODE]


def test_buyers_racing_in_threads_get_exactly_max_uses(
    store_url: str, shop: NeonPay, caplog: pytest.LogCaptureFixture
) -> None:
    """Twelve buyers, each on its own store object (replicas) and thread, pass
    pre-checkout together, then pay together: exactly five uses are within the limit, the
    seven others are recorded as over-uses, none is lost, and a later buyer is refused
    at pre-checkout."""
    buyers = 12
    payloads = [payload_for(shop, 1000 + b) for b in range(buyers)]
    reviewed = threading.Barrier(buyers)
    errors: list[BaseException] = []
    approved: list[bool] = [False] * buyers
    results: list[object] = [None] * buyers

    def buy(b: int) -> None:
        try:
            with create_neonpay(storage=store_url) as np:
                checkout = np.cashier.checkout
                answer = checkout.review(
                    PreCheckoutQuery(f"q{b}", 1000 + b, "XTR", PAID, payloads[b])
                )
                approved[b] = answer.ok
                reviewed.wait(timeout=60)  # everyone approved before anyone paid
                results[b] = checkout.record(
                    SuccessfulPayment(f"charge-{b}", 1000 + b, 1000 + b, "XTR", PAID, payloads[b])
                )
        except BaseException as exc:  # reported below
            errors.append(exc)

    with caplog.at_level(logging.WARNING, logger="neonpay.checkout"):
        threads = [threading.Thread(target=buy, args=(b,)) for b in range(buyers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    assert all(approved)  # the race was lost after pre-checkout, by design of the test
    flags = paid_with_code(shop)
    assert len(flags) == buyers  # every payment recorded
    assert flags.count(False) == MAX_USES  # exactly five within the limit
    assert flags.count(True) == buyers - MAX_USES
    over_metadata = [
        r
        for r in results
        if r is not None and r.metadata.get("promo_over_use")  # type: ignore[attr-defined]
    ]
    assert len(over_metadata) == buyers - MAX_USES
    warnings = [r for r in caplog.records if "beyond its max_uses" in r.getMessage()]
    assert len(warnings) == buyers - MAX_USES
    assert shop.promotions.usage(CODE) == buyers  # every discount given is counted
    promo = shop.promotions.get_promo_code(CODE)
    assert promo is not None
    assert promo.over_uses == buyers - MAX_USES
    assert promo_row(promo)["uses"] == f"{buyers}/{MAX_USES} ({buyers - MAX_USES} over the limit)"
    assert shop.get_stats()["promo_over_uses"] == buyers - MAX_USES
    assert_log_consistent(shop.store)
    # the code is used up: the next buyer is refused before paying
    late = shop.cashier.checkout.review(
        PreCheckoutQuery("late", 99, "XTR", PAID, payload_for(shop, 99))
    )
    assert not late.ok
    assert "used up" in late.reason


def test_buyers_one_after_another_are_refused_once_used_up(shop: NeonPay) -> None:
    checkout = shop.cashier.checkout
    outcomes = []
    for b in range(MAX_USES + 3):
        payload = payload_for(shop, 2000 + b)
        answer = checkout.review(PreCheckoutQuery(f"q{b}", 2000 + b, "XTR", PAID, payload))
        outcomes.append(answer.ok)
        if answer.ok:
            checkout.record(SuccessfulPayment(f"c{b}", 2000 + b, 2000 + b, "XTR", PAID, payload))
    assert outcomes == [True] * MAX_USES + [False] * 3
    assert paid_with_code(shop) == [False] * MAX_USES  # no over-use without a race
    assert shop.get_stats()["promo_over_uses"] == 0


BUYER = """
import sys
from neonpay import create_neonpay
from neonpay.core.checkout import PreCheckoutQuery, SuccessfulPayment
from neonpay.core.invoices import InvoiceKind

url, worker, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
np = create_neonpay(storage=url)
checkout = np.cashier.checkout
payloads = []
for i in range(n):
    user = 10_000 * (worker + 1) + i
    _, payload = np.cashier.signer().issue(
        InvoiceKind.CHAT, "item", 80, promo_code="FIVE", user_id=user
    )
    payloads.append((user, payload))
print("ready", flush=True)
sys.stdin.readline()
for user, payload in payloads:
    if checkout.review(PreCheckoutQuery("q", user, "XTR", 80, payload)).ok:
        result = checkout.record(
            SuccessfulPayment(f"ch-{user}", user, user, "XTR", 80, payload)
        )
        over = bool(result.metadata.get("promo_over_use"))
        print("paid", "over" if over else "within", flush=True)
    else:
        print("refused", flush=True)
np.close()
print("done", flush=True)
"""


def test_buyers_racing_in_processes_get_exactly_max_uses(store_url: str, shop: NeonPay) -> None:
    workers, each = 4, 4
    children = start_all(BUYER, [(store_url, str(w), str(each)) for w in range(workers)])
    try:
        for child in children:
            assert child.readline() == "ready"
        for child in children:
            child.send("go\n")
        lines = [line for child in children for line in child.finish()]
    finally:
        for child in children:
            child.ensure_dead()
    within = lines.count("paid within")
    over = lines.count("paid over")
    refused = lines.count("refused")
    assert within == MAX_USES
    assert within + over + refused == workers * each
    flags = paid_with_code(shop)
    assert flags.count(False) == MAX_USES
    assert flags.count(True) == over
    assert shop.promotions.usage(CODE) == within + over
    assert shop.get_stats()["promo_over_uses"] == over
    assert_log_consistent(shop.store)


# The child records one payment and stops inside its transaction, after the payment row
# is written and while the promo use is being written; the parent kills it there.
KILLED_INSIDE = """
import sys
from neonpay import create_neonpay
from neonpay.core.checkout import SuccessfulPayment
from neonpay.core.invoices import InvoiceKind
from neonpay.store.base import PaymentEffects

np = create_neonpay(storage=sys.argv[1])
promotions = np.promotions
counted = promotions.payment_use

def paused_use(code):
    consume = counted(code)

    def inner(payment, read):
        effects = consume(payment, read)
        (kind, key, change), = effects.writes

        def bump(old):
            new = change(old)
            print("inside", flush=True)  # the payment row is written, the use not yet
            sys.stdin.readline()  # killed here
            return new

        return PaymentEffects(effects.payment, ((kind, key, bump),))

    return inner

promotions.payment_use = paused_use
_, payload = np.cashier.signer().issue(InvoiceKind.CHAT, "item", 80, promo_code="FIVE", user_id=7)
np.cashier.checkout.record(SuccessfulPayment("killed-charge", 7, 7, "XTR", 80, payload))
print("recorded", flush=True)
"""


def test_a_process_killed_between_payment_and_promo_use_keeps_neither(
    store_url: str, shop: NeonPay
) -> None:
    child = start_python(KILLED_INSIDE, store_url)
    try:
        assert child.readline() == "inside"
        lines = child.kill()
    finally:
        child.ensure_dead()
    assert child.proc.returncode == -9
    assert "recorded" not in lines
    with create_neonpay(storage=store_url) as np:
        assert np.payments.get("killed-charge") is None
        assert np.promotions.usage(CODE) == 0
        assert_log_consistent(np.store)
        # the store works on: the same payment arrives again and is recorded with its use
        _, payload = np.cashier.signer().issue(
            InvoiceKind.CHAT, "item", PAID, promo_code=CODE, user_id=7
        )
        np.cashier.checkout.record(SuccessfulPayment("killed-charge", 7, 7, "XTR", PAID, payload))
        assert np.payments.get("killed-charge") is not None
        assert np.promotions.usage(CODE) == 1


LOOPING_BUYER = """
import sys
from neonpay import create_neonpay
from neonpay.core.checkout import SuccessfulPayment
from neonpay.core.invoices import InvoiceKind

np = create_neonpay(storage=sys.argv[1])
checkout = np.cashier.checkout
print("ready", flush=True)
i = 0
while True:
    _, payload = np.cashier.signer().issue(
        InvoiceKind.CHAT, "item", 80, promo_code="FIVE", user_id=1 + i
    )
    checkout.record(SuccessfulPayment(f"loop-{i}", 1 + i, 1 + i, "XTR", 80, payload))
    print(f"loop-{i}", flush=True)
    i += 1
"""


def test_a_process_killed_while_recording_payments_keeps_both_or_neither(
    store_url: str, shop: NeonPay
) -> None:
    child = start_python(LOOPING_BUYER, store_url)
    try:
        assert child.readline() == "ready"
        for _ in range(15):
            child.readline()
        printed = [line for line in child.kill() if line.startswith("loop-")]
    finally:
        child.ensure_dead()
    assert child.proc.returncode == -9
    with create_neonpay(storage=store_url) as np:
        recorded = [p for p in np.payments.list() if p.charge_id.startswith("loop-")]
        assert set(printed) <= {p.charge_id for p in recorded}
        assert len(printed) <= len(recorded) <= len(printed) + 1
        # each recorded payment has its use, and no use lacks its payment
        assert np.promotions.usage(CODE) == len(recorded)
        assert sum(p.promo_over_use for p in recorded) == len(recorded) - MAX_USES
        assert_log_consistent(np.store)
