"""Concurrent writers (threads and processes) lose nothing and keep the log gap-free."""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable, Iterator, Sequence

import pytest

from neonpay import DiscountType, NeonPay, PaymentStage, create_neonpay

from .invariants import assert_log_consistent
from .processes import start_all

SHARED_KEYS = 5


def work(np: NeonPay, worker: int, n: int) -> None:
    """The writes of one worker: shared stages, own stages and promo uses."""
    for i in range(n):
        if i % 2 == 0:  # every write changes the shared stage (a unique description)
            stage = PaymentStage("Shared", f"w{worker} i{i}", 1 + i)
            np.create_payment_stage(f"shared-{i % SHARED_KEYS}", stage)
        elif i % 4 == 1:
            np.create_payment_stage(f"own-{worker}-{i}", PaymentStage("Own", f"w{worker}", 1 + i))
        else:
            np.promotions.record_use("SHARED")


def expected_counts(n: int) -> tuple[int, int, int]:
    """(shared writes, own stages, promo uses) of one worker doing ``n`` writes."""
    shared = sum(1 for i in range(n) if i % 2 == 0)
    own = sum(1 for i in range(n) if i % 4 == 1)
    return shared, own, n - shared - own


def check(np: NeonPay, workers: int, n: int) -> None:
    shared, own, uses = expected_counts(n)
    log = assert_log_consistent(np.store)
    assert len(log) == 1 + workers * n  # the promo code, then one entry per write
    assert np.promotions.usage("SHARED") == workers * uses
    usage = np.store.get("promo_usage", "SHARED")
    assert usage is not None
    assert usage.version == {np.node_id: workers * uses}
    stages = np.store.list("payment_stage")
    assert len(stages) == SHARED_KEYS + workers * own
    shared_versions = sum(r.version[np.node_id] for r in stages if r.key.startswith("shared-"))
    assert shared_versions == workers * shared
    for worker in range(workers):
        for i in range(n):
            if i % 4 == 1:
                assert np.get_payment_stage(f"own-{worker}-{i}") is not None


@pytest.fixture
def catalog(store_url: str) -> Iterator[Callable[[], NeonPay]]:
    opened: list[NeonPay] = []

    def factory() -> NeonPay:
        np = create_neonpay(storage=store_url)
        opened.append(np)
        return np

    yield factory
    for np in opened:
        np.close()


def work_in_threads(catalogs: Sequence[NeonPay], n: int) -> None:
    """Run ``work`` in one thread per catalog (worker ``w`` on ``catalogs[w]``), all
    released at once; every thread must end in time and none may fail."""
    errors: list[BaseException] = []
    start = threading.Barrier(len(catalogs))

    def run(worker: int) -> None:
        try:
            start.wait(timeout=30)
            work(catalogs[worker], worker, n)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(w,)) for w in range(len(catalogs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert errors == []


def test_threads_sharing_one_catalog(catalog: Callable[[], NeonPay]) -> None:
    np = catalog()
    np.promotions.create_promo_code("SHARED", DiscountType.PERCENTAGE, 5)
    workers, n = 6, 30
    work_in_threads([np] * workers, n)
    check(np, workers, n)


def test_threads_with_a_store_each(catalog: Callable[[], NeonPay]) -> None:
    first = catalog()
    first.promotions.create_promo_code("SHARED", DiscountType.PERCENTAGE, 5)
    workers, n = 4, 30
    work_in_threads([catalog() for _ in range(workers)], n)
    check(first, workers, n)


# The child runs the very same ``work`` function, its source copied into the script.
WORKER = f"""
import sys
from neonpay import NeonPay, PaymentStage, create_neonpay

SHARED_KEYS = {SHARED_KEYS}

{inspect.getsource(work)}

url, worker, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
np = create_neonpay(storage=url)
print("ready", flush=True)
sys.stdin.readline()
work(np, worker, n)
np.close()
print("done", flush=True)
"""


def run_processes(np: NeonPay, url: str, workers: int, n: int) -> None:
    np.promotions.create_promo_code("SHARED", DiscountType.PERCENTAGE, 5)
    children = start_all(WORKER, [(url, str(w), str(n)) for w in range(workers)])
    try:
        for child in children:
            assert child.readline() == "ready"
        for child in children:  # all start writing at once
            child.send("go\n")
        for child in children:
            assert child.finish()[-1] == "done"
    finally:
        for child in children:
            child.ensure_dead()
    check(np, workers, n)


def test_processes_on_postgres(postgres_url: str) -> None:
    with create_neonpay(storage=postgres_url) as np:
        run_processes(np, postgres_url, workers=4, n=50)


def test_processes_on_sqlite(sqlite_url: str) -> None:
    with create_neonpay(storage=sqlite_url) as np:
        run_processes(np, sqlite_url, workers=2, n=50)
