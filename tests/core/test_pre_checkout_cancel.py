"""A pre-checkout whose handler is cancelled while the review waits for the store (the
bot stops, or the framework gives up on the handler) is still answered: refused with a
request to try again, before the cancellation goes on."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from neonpay import NeonPay, PaymentStage, create_neonpay
from neonpay.core.cashier import BUSY_MESSAGE

from .test_off_the_loop import BOUND, _query, store_locked


@pytest.fixture
def neonpay(postgres_url: str) -> Iterator[NeonPay]:
    np = create_neonpay(storage=postgres_url)
    np.create_payment_stage("premium", PaymentStage("Premium", "30 days", price=100))
    yield np
    np.close()


def _waiting_on_a_lock(url: str) -> bool:
    import psycopg

    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM pg_locks WHERE NOT granted").fetchone()
    return bool(row and row[0])


async def test_a_cancelled_pre_checkout_is_still_answered(
    neonpay: NeonPay, postgres_url: str
) -> None:
    query = _query(neonpay)
    answers: list[tuple[bool, str | None]] = []

    async def answer(ok: bool, error_message: str | None) -> None:
        answers.append((ok, error_message))

    with store_locked(neonpay, postgres_url):
        handling = asyncio.create_task(neonpay.cashier.handle_pre_checkout(lambda: query, answer))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + BOUND
        # the review is in its thread, waiting for the lock (a condition, polled within a bound)
        while not await asyncio.to_thread(_waiting_on_a_lock, postgres_url):
            assert loop.time() < deadline, "the review never waited on the lock"
            await asyncio.sleep(0.01)
        handling.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(handling, BOUND)
    assert answers == [(False, BUSY_MESSAGE)]
    assert neonpay.payments.list() == []
