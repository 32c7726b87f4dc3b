"""A store that waits on a lock never stalls the event loop, and a pre-checkout query is
answered within the budget whatever the store does.

The locks are real: another connection holds SQLite's write lock (readers never wait for
it: each thread reads on a connection of its own, in WAL mode) or PostgreSQL's ACCESS
EXCLUSIVE lock on the tables (readers wait too). Progress is shown by events, never by
timing."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Iterator

import pytest

from neonpay import NeonPay, PaymentStage, create_neonpay
from neonpay.core.cashier import BUSY_MESSAGE
from neonpay.core.checkout import PreCheckoutQuery, SuccessfulPayment
from neonpay.core.invoices import InvoiceKind
from neonpay.store.sqlite import SQLiteStore

USER = 4242
#: Bounds for waiting on events (generous: the machine is shared).
BOUND = 30.0


@pytest.fixture
def neonpay(store_url: str) -> Iterator[NeonPay]:
    np = create_neonpay(storage=store_url)
    np.create_payment_stage("premium", PaymentStage("Premium", "30 days", price=100))
    yield np
    np.close()


@contextlib.contextmanager
def store_locked(np: NeonPay, url: str) -> Iterator[None]:
    """Hold a lock on the store from another connection: SQLite's write lock, or on
    PostgreSQL a lock that blocks reads and writes of records and payments."""
    store = np.store
    if isinstance(store, SQLiteStore):
        conn = sqlite3.connect(store.path, isolation_level=None, timeout=BOUND)
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("UPDATE neonpay_meta SET value = value WHERE name = 'schema_version'")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
            conn.close()
        return
    import psycopg

    with psycopg.connect(url) as locker:
        locker.execute("LOCK TABLE neonpay_records IN ACCESS EXCLUSIVE MODE")
        locker.execute("LOCK TABLE neonpay_payments IN ACCESS EXCLUSIVE MODE")
        yield
        locker.rollback()


def _query(np: NeonPay, query_id: str = "q1") -> PreCheckoutQuery:
    _, payload = np.cashier.signer().issue(InvoiceKind.CHAT, "premium", 100, user_id=USER)
    return PreCheckoutQuery(query_id, USER, "XTR", 100, payload)


async def test_pre_checkout_is_answered_in_time_whatever_the_store_does(
    neonpay: NeonPay, store_url: str
) -> None:
    """PostgreSQL: the review waits on the lock, and the query is refused with a request
    to try again when the budget runs out. SQLite: a write lock held elsewhere does not
    delay the review at all (it reads on its own connection), so it is approved."""
    neonpay.cashier.pre_checkout_budget = 0.5
    query = _query(neonpay)
    answers: list[tuple[bool, str | None]] = []

    async def answer(ok: bool, error_message: str | None) -> None:
        answers.append((ok, error_message))

    with store_locked(neonpay, store_url):
        decision = await asyncio.wait_for(
            neonpay.cashier.handle_pre_checkout(lambda: query, answer), BOUND
        )
    if isinstance(neonpay.store, SQLiteStore):
        assert answers == [(True, None)]
        assert decision.ok
        return
    assert answers == [(False, BUSY_MESSAGE)]
    assert not decision.ok
    assert neonpay.payments.list() == []
    # with the store free again, the same query is approved
    answers.clear()
    await neonpay.cashier.handle_pre_checkout(lambda: query, answer)
    assert answers == [(True, None)]


async def test_other_work_goes_on_while_a_payment_waits_for_the_store(
    neonpay: NeonPay, store_url: str
) -> None:
    """A successful payment is recorded in a worker thread: while the store is locked
    the loop keeps running other coroutines, and the payment is recorded once the lock
    goes."""
    _, payload = neonpay.cashier.signer().issue(InvoiceKind.CHAT, "premium", 100, user_id=USER)
    payment = SuccessfulPayment("charge-1", USER, USER, "XTR", 100, payload)
    ticks = 0
    ticked = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            if ticks >= 20:
                ticked.set()
            await asyncio.sleep(0)

    with store_locked(neonpay, store_url):
        recording = asyncio.create_task(neonpay.cashier.handle_successful_payment(lambda: payment))
        beat = asyncio.create_task(ticker())
        await asyncio.wait_for(ticked.wait(), BOUND)  # the loop ran on meanwhile
        assert not recording.done()  # the payment is still waiting for the lock
    result = await asyncio.wait_for(recording, BOUND)
    beat.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await beat
    assert result is not None
    assert [p.charge_id for p in neonpay.payments.list()] == ["charge-1"]
