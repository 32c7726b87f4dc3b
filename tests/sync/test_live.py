"""Live auto sync: writes and peer changes made by other processes (the ``neonpay`` CLI
in a subprocess) reach a running MultiBotSyncManager without a manual sync; a burst is
coalesced; starting and stopping leaves nothing behind. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from neonpay import NeonPay
from neonpay.sync import BotSyncConfig, MultiBotSyncManager
from neonpay.sync.local import LocalTransport
from neonpay.sync.service import SyncService

from .network import Network, stage
from .network import wait_until as _wait_for
from .test_multi import TOKEN, _peer

_BOUND = 30.0  # seconds any wait below may take before the test fails


def _neonpay(storage: str, *args: str) -> None:
    """Run ``neonpay ARGS`` on ``storage`` in a subprocess; it must succeed."""
    env = {**os.environ, "NEONPAY_STORAGE": storage, "NO_COLOR": "1", "PYTHONWARNINGS": "error"}
    env.pop("NEONPAY_SYNC_SECRET", None)
    done = subprocess.run(  # noqa: S603 - our own package
        [sys.executable, "-m", "neonpay", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr


async def _in_thread_neonpay(storage: str, *args: str) -> None:
    await asyncio.to_thread(_neonpay, storage, *args)


def _has_stage(bot: NeonPay, key: str, price: int | None = None) -> Callable[[], bool]:
    def check() -> bool:
        record = bot.store.get("payment_stage", key)
        return record is not None and (price is None or record.fields.get("price") == price)

    return check


class _Links:
    """A transport factory to in-process peers that keeps every transport it built."""

    def __init__(self, net: Network) -> None:
        self.net = net
        self.built: dict[str, list[LocalTransport]] = {}

    def __call__(self, config: BotSyncConfig) -> LocalTransport:
        name = config.require_name()
        transport = LocalTransport(SyncService(self.net.nodes[name]), name=name)
        self.built.setdefault(name, []).append(transport)
        return transport

    def requests(self, name: str) -> int:
        return sum(t.stats.requests for t in self.built.get(name, []))


@pytest.fixture
def storage(store_url: str) -> str:
    return store_url


async def test_a_cli_write_reaches_a_peer_through_running_auto_sync(
    net: Network, storage: str
) -> None:
    a = net.node("A", storage=storage)
    b = net.node("B")
    links = _Links(net)
    async with MultiBotSyncManager(a, transport_factory=links) as multi:
        # an hour between timed syncs: only the write itself can bring it over
        multi.add_bot(_peer("B", auto_sync=True, direction="push", sync_interval_minutes=60))
        await multi.start_auto_sync_all()
        await _wait_for(lambda: multi.get_sync_stats("B")["total_syncs"] >= 1, "first sync")
        await _in_thread_neonpay(
            storage, "stages", "add", "cli", "--title", "T", "--description", "D", "--price", "7"
        )
        await _wait_for(_has_stage(b, "cli", 7), "the CLI's new stage at the peer")
        await _in_thread_neonpay(storage, "stages", "update", "cli", "--price", "120")
        await _wait_for(_has_stage(b, "cli", 120), "the CLI's update at the peer")


async def test_bots_added_and_removed_by_the_cli_take_effect_while_auto_sync_runs(
    net: Network, storage: str
) -> None:
    a = net.node("A", storage=storage)
    b, c = net.node("B"), net.node("C")
    links = _Links(net)
    async with MultiBotSyncManager(a, transport_factory=links) as multi:
        multi.add_bot(_peer("C", auto_sync=True, direction="push", sync_interval_minutes=60))
        await multi.start_auto_sync_all()
        add = ["sync", "add-bot", "--token", TOKEN, "--name", "B"]
        add += ["--webhook", "http://127.0.0.1:9/sync", "--direction", "push", "--auto-sync"]
        await _in_thread_neonpay(storage, *add)
        await _wait_for(lambda: multi.get_bot("B") is not None, "B adopted")
        a.create_payment_stage("one", stage(price=1))
        await _wait_for(_has_stage(b, "one"), "a write reaching the added bot")
        await _wait_for(_has_stage(c, "one"), "a write reaching the other bot")

        await _in_thread_neonpay(storage, "sync", "remove-bot", "B")
        await _wait_for(lambda: multi.get_bot("B") is None, "B forgotten")
        await _wait_for(lambda: not multi._scheduler.peers.count("B"), "B's loop stopped")
        runs = len(a.store.list_sync_runs("B"))
        requests = links.requests("B")
        a.create_payment_stage("two", stage(price=2))
        await _in_thread_neonpay(
            storage, "stages", "add", "three", "--title", "T", "--description", "D", "--price", "3"
        )
        await _wait_for(_has_stage(c, "three"), "later writes reaching the remaining bot")
        await _wait_for(_has_stage(c, "two"), "later writes reaching the remaining bot")
        assert multi.get_sync_stats("C")["lag"] == 0
        assert len(a.store.list_sync_runs("B")) == runs  # no further run with B
        assert links.requests("B") == requests
        assert b.store.get("payment_stage", "two") is None
        assert b.store.get("payment_stage", "three") is None


async def test_a_burst_of_a_thousand_writes_from_a_thread_makes_few_requests(
    net: Network, tmp_path: Path
) -> None:
    a, b = net.node("A"), net.node("B")
    links = _Links(net)
    async with MultiBotSyncManager(a, transport_factory=links) as multi:
        multi.add_bot(_peer("B", auto_sync=True, direction="push", sync_interval_minutes=60))
        await multi.start_auto_sync_all()
        await _wait_for(lambda: multi.get_sync_stats("B")["total_syncs"] >= 1, "first sync")
        before = links.requests("B")

        def burst() -> None:  # writes while pushes are in flight, like a busy bot
            for i in range(1000):
                a.create_payment_stage(f"s{i}", stage(price=i % 100 + 1))

        await asyncio.to_thread(burst)
        await _wait_for(lambda: b.store.count("payment_stage") == 1000, "the burst at the peer")
        await _wait_for(lambda: multi.get_sync_stats("B")["lag"] == 0, "the cursor caught up")
        burst_requests = links.requests("B") - before
    assert 1 <= burst_requests <= 10, burst_requests


def _watch_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("neonpay-watch")]


def _live_tasks() -> list[asyncio.Task[object]]:
    return [
        t for t in asyncio.all_tasks() if t.get_name().startswith("neonpay-sync") and not t.done()
    ]


async def test_starting_and_stopping_auto_sync_repeatedly_leaves_nothing_behind(
    net: Network, storage: str
) -> None:
    a = net.node("A", storage=storage)
    b = net.node("B")
    links = _Links(net)
    threads = threading.active_count()
    async with MultiBotSyncManager(a, transport_factory=links) as multi:
        multi.add_bot(_peer("B", auto_sync=True, direction="push", sync_interval_minutes=60))
        for i in range(10):
            await multi.start_auto_sync_all()
            assert len(_watch_threads()) == 1
            a.create_payment_stage(f"s{i}", stage(price=i + 1))
            await _wait_for(_has_stage(b, f"s{i}"), "a write while running")
            await multi.stop_auto_sync_all()
            assert _watch_threads() == []
            assert _live_tasks() == []
            assert not multi.auto_sync_running
    # the default executor's worker threads stay for reuse; nothing else may grow
    workers = [t for t in threading.enumerate() if t.name.startswith("asyncio_")]
    assert threading.active_count() - len(workers) <= threads
    if storage.startswith("postgresql"):
        _assert_no_listener_left(storage)


def _assert_no_listener_left(storage: str) -> None:
    import psycopg

    with psycopg.connect(storage, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND query LIKE 'LISTEN neonpay_changes%' AND pid <> pg_backend_pid()"
        ).fetchone()
    assert row is not None
    assert row[0] == 0


def test_a_store_that_only_this_process_writes_has_no_watcher() -> None:
    from neonpay.store.sqlite import SQLiteStore
    from neonpay.store.watch import open_watcher

    memory = SQLiteStore(":memory:")
    try:
        assert open_watcher(memory, lambda: None) is None
    finally:
        memory.close()
