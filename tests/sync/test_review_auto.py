"""Review: automatic sync (debounce, clean stop, surviving errors) and statistics that
tell the truth after failures and partial runs."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from neonpay import NeonPay
from neonpay.errors import PeerUnreachable
from neonpay.store.base import Record
from neonpay.sync import BotSyncConfig, MultiBotSyncManager, SyncStatus
from neonpay.sync.local import LocalTransport
from neonpay.sync.protocol import PushResult
from neonpay.sync.service import SyncService

from .network import Network, stage
from .network import wait_until as _wait_for
from .test_multi import _factory, _peer


def _runs_reach(multi: MultiBotSyncManager, runs: int) -> Callable[[], bool]:
    return lambda: multi.get_sync_stats("B")["total_syncs"] >= runs


def _sync_tasks() -> list[asyncio.Task[Any]]:
    return [
        t for t in asyncio.all_tasks() if t.get_name().startswith("neonpay-sync:") and not t.done()
    ]


async def test_a_burst_of_a_thousand_writes_is_one_push(net: Network) -> None:
    a, b = net.node("A"), net.node("B")
    async with MultiBotSyncManager(a, transport_factory=_factory(net), debounce=0.05) as multi:
        multi.add_bot(_peer("B", auto_sync=True))
        await multi.start_auto_sync_all()
        await _wait_for(lambda: multi.get_sync_stats("B")["total_syncs"] >= 1)
        for i in range(1000):  # all on the loop's thread, before it can run
            a.create_payment_stage(f"s{i}", stage(price=i % 100 + 1))
        await _wait_for(lambda: b.store.count("payment_stage") == 1000)
        # the run that carried them is recorded once its answer is handled
        await _wait_for(lambda: multi.get_sync_stats("B")["total_items_synced"] >= 1000)
        stats = multi.get_sync_stats("B")
    assert stats["total_syncs"] <= 3  # the first sync, then one push (maybe two)
    assert stats["total_items_synced"] == 1000
    assert stats["lag"] == 0


class _Slow(LocalTransport):
    """A peer that takes its time answering a push."""

    def __init__(self, service: SyncService) -> None:
        super().__init__(service)
        self.pushing = asyncio.Event()

    async def push(self, records: Sequence[Record], *, sender: str) -> PushResult:
        self.pushing.set()
        await asyncio.sleep(30)
        return await super().push(records, sender=sender)


async def test_stopping_during_a_sync_leaves_no_task_behind(net: Network) -> None:
    a, b = net.node("A"), net.node("B")
    a.create_payment_stage("before", stage())
    transport = _Slow(SyncService(b))
    multi = MultiBotSyncManager(a, transport_factory=lambda config: transport, debounce=0.01)
    multi.add_bot(_peer("B", auto_sync=True, direction="push"))
    await multi.start_auto_sync_all()
    await asyncio.wait_for(transport.pushing.wait(), timeout=5)
    assert len(_sync_tasks()) == 1
    await asyncio.wait_for(multi.stop_auto_sync_all(), timeout=5)
    assert _sync_tasks() == []
    assert not multi.auto_sync_running
    a.create_payment_stage("after", stage())  # no listener left to wake anything
    await asyncio.sleep(0.05)
    assert _sync_tasks() == []
    await multi.stop_auto_sync_all()  # idempotent
    await multi.close()
    (run,) = a.store.list_sync_runs("B")
    assert run.status == "failed"
    assert "cancelled" in run.errors[0]
    assert b.get_payment_stage("after") is None
    assert b.get_payment_stage("before") is None  # the slow push never finished


class _Flaky(LocalTransport):
    """Raises an unexpected error on every other call."""

    def __init__(self, service: SyncService) -> None:
        super().__init__(service)
        self.calls = 0

    async def push(self, records: Sequence[Record], *, sender: str) -> PushResult:
        self.calls += 1
        if self.calls % 2:
            raise RuntimeError("a bug somewhere in the transport")
        return await super().push(records, sender=sender)


async def test_unexpected_errors_never_end_the_loop(net: Network) -> None:
    a, b = net.node("A"), net.node("B")
    transport = _Flaky(SyncService(b))
    async with MultiBotSyncManager(
        a, transport_factory=lambda config: transport, debounce=0.01
    ) as multi:
        multi.add_bot(_peer("B", auto_sync=True, direction="push"))
        await multi.start_auto_sync_all()
        await _wait_for(lambda: multi.get_sync_stats("B")["total_syncs"] >= 1)
        for i in range(6):  # every other push fails; the next change brings it along
            a.create_payment_stage(f"s{i}", stage())
            await _wait_for(_runs_reach(multi, i + 2))
        await _wait_for(lambda: b.store.count("payment_stage") == 6)
        stats = multi.get_sync_stats("B")
        assert multi.auto_sync_running
    assert stats["failed_syncs"] == 3
    assert stats["successful_syncs"] == 4
    # last_error is the latest run's: none after a completed run
    if stats["last_status"] == "completed":
        assert stats["last_error"] is None
    else:
        assert "internal error" in stats["last_error"]


# --- statistics --------------------------------------------------------------------------
class _Failing(LocalTransport):
    """Fails the ``fail_on``-th push (1-based), once."""

    def __init__(self, service: SyncService, fail_on: int) -> None:
        super().__init__(service)
        self.fail_on = fail_on
        self.pushes = 0

    async def push(self, records: Sequence[Record], *, sender: str) -> PushResult:
        self.pushes += 1
        if self.pushes == self.fail_on:
            raise PeerUnreachable("connection reset (injected)")
        return await super().push(records, sender=sender)


async def test_statistics_after_completed_failed_and_partial_runs(net: Network) -> None:
    a, b = net.node("A"), net.node("B")
    b.stages.max_price = 50
    transport = _Failing(SyncService(b), fail_on=2)
    async with MultiBotSyncManager(a, transport_factory=lambda config: transport) as multi:
        multi.add_bot(_peer("B", page_size=2))
        for i in range(5):
            a.create_payment_stage(f"s{i}", stage(price=i + 1))
        failed = await multi.sync_with_bot("B")  # the second page of five fails
        assert failed.status is SyncStatus.FAILED
        stats = multi.get_sync_stats("B")
        assert stats["lag"] == 3  # two went through, three did not
        assert stats["last_status"] == "failed"
        assert "unreachable" in stats["last_error"]
        assert stats["total_items_synced"] == 2
        a.create_payment_stage("dear", stage(price=500))  # B refuses prices above 50
        partial = await multi.sync_with_bot("B")
        assert partial.status is SyncStatus.PARTIAL
        assert partial.pushed == 3
        completed = await multi.sync_with_bot("B")
        assert completed.status is SyncStatus.COMPLETED
        stats = multi.get_sync_stats("B")
    assert stats["total_syncs"] == 3
    assert stats["successful_syncs"] == 1
    assert stats["failed_syncs"] == 1
    assert stats["partial_syncs"] == 1
    assert stats["success_rate"] == 100.0 / 3
    assert stats["total_items_synced"] == 5
    assert stats["lag"] == 0
    assert stats["last_status"] == "completed"
    assert stats["last_error"] is None  # the latest run completed: an older error is history
    assert _b_prices(b) == {f"s{i}": i + 1 for i in range(5)}


def _b_prices(node: NeonPay) -> dict[str, int]:
    return {k: s.price for k, s in node.list_payment_stages().items()}


async def test_success_rate_is_exact_for_every_mix(net: Network) -> None:
    from neonpay.store.base import SyncRunRow

    a = net.node("A")
    async with MultiBotSyncManager(a, transport_factory=_factory(net)) as multi:
        multi.add_bot(_peer("B"))
        for i in range(100):
            status = "completed" if i < 29 else ("partial" if i % 2 else "failed")
            a.store.add_sync_run(SyncRunRow("B", float(i), float(i), status, errors=("e",)))
        stats = multi.get_sync_stats("B")
    assert stats["success_rate"] == 29.0
    assert stats["successful_syncs"] + stats["failed_syncs"] + stats["partial_syncs"] == 100


async def test_lag_of_a_peer_never_reached_counts_everything(net: Network) -> None:
    a = net.node("A")
    for i in range(3):
        a.create_payment_stage(f"s{i}", stage())
    async with MultiBotSyncManager(a, transport_factory=_factory(net)) as multi:
        multi.add_bot(_peer("nobody", sync_settings=False))
        multi.add_bot(_peer("puller", direction="pull"))
        a.settings.set("motto", "not for nobody")
        stats = multi.get_all_sync_stats()
    assert stats["nobody"]["lag"] == 3
    assert stats["nobody"]["success_rate"] == 0.0
    assert stats["nobody"]["last_error"] is None
    assert stats["puller"]["lag"] == 0  # a pull-only peer never receives from us
    assert isinstance(BotSyncConfig, type)
