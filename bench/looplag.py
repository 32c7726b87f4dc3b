"""The loop-lag probe: does a store waiting on a lock stall the bot's event loop?

Another process takes the bot's SQLite write lock and holds it for ``HOLD_SECONDS``.
Meanwhile the bot, on one event loop, handles a stream of pre-checkout queries, serves a
peer's push to its sync server, and runs a sync (pull and push) with that peer. A probe
coroutine asks to wake every millisecond and records how late each wake-up is: the
largest delay is the longest stall of the loop. For reference, the same probe runs while
one store write is made directly on the loop (as every async path did before), under the
same lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.context import Context
from bench.report import Result

__all__ = ["HOLD_SECONDS", "bench_loop_lag"]

#: Seconds the other process holds the write lock.
HOLD_SECONDS = 5.0
_PROBE_INTERVAL = 0.001
_QUERIES = 20
_SECRET = "loop-lag-bench-secret-0123456789"

_LOCKER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
conn.execute("BEGIN IMMEDIATE")
conn.execute("UPDATE neonpay_meta SET value = value WHERE name = 'schema_version'")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("COMMIT")
print("released", flush=True)
"""


class _Probe:
    """Wakes every ``_PROBE_INTERVAL`` and keeps the largest lateness seen."""

    def __init__(self) -> None:
        self.delays: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            planned = loop.time() + _PROBE_INTERVAL
            await asyncio.sleep(_PROBE_INTERVAL)
            self.delays.append(max(0.0, loop.time() - planned))

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> float:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        return max(self.delays, default=0.0)


def _same(query: object) -> Any:
    return query


async def _hold_lock(path: Path, seconds: float) -> asyncio.subprocess.Process:
    """Start the lock holder; return once it holds the lock."""
    locker = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _LOCKER, str(path), str(seconds), stdout=subprocess.PIPE
    )
    assert locker.stdout is not None
    line = await asyncio.wait_for(locker.stdout.readline(), 30)
    if line.strip() != b"locked":
        raise RuntimeError(f"the lock holder did not lock: {line!r}")
    return locker


async def bench_loop_lag(ctx: Context) -> None:
    """The largest event-loop stall while another process holds the write lock."""
    from neonpay import BotSyncConfig, MultiBotSyncManager, PaymentStage, create_neonpay
    from neonpay.core.checkout import PreCheckoutQuery
    from neonpay.core.invoices import InvoiceKind
    from neonpay.web_sync import SyncServer
    from neonpay.web_sync.client import HttpTransport

    work = ctx.fresh("loop_lag")
    bot_db, peer_db = work / "bot.db", work / "peer.db"
    bot = create_neonpay(storage=f"sqlite:///{bot_db}", node_id="bot")
    peer = create_neonpay(storage=f"sqlite:///{peer_db}", node_id="peer")
    holds = 1.0 if ctx.settings.quick else HOLD_SECONDS
    try:
        bot.create_payment_stage("premium", PaymentStage("Premium", "30 days", price=100))
        for i in range(50):
            peer.create_payment_stage(f"p{i}", PaymentStage(f"Peer {i}", "from the peer", 5))
        _, payload = bot.cashier.signer().issue(InvoiceKind.CHAT, "premium", 100, user_id=7)
        answers: list[float] = []

        async def answer(ok: bool, error_message: str | None) -> None:
            if not ok:
                raise RuntimeError(f"a pre-checkout query was refused: {error_message}")

        async def queries() -> None:
            for i in range(_QUERIES):
                query = PreCheckoutQuery(f"q{i}", 7, "XTR", 100, payload)
                started = time.perf_counter()
                await bot.cashier.handle_pre_checkout(functools.partial(_same, query), answer)
                answers.append(time.perf_counter() - started)
                await asyncio.sleep(holds / _QUERIES)

        async with (
            SyncServer(bot, port=0, webhook_secret=_SECRET) as bot_server,
            SyncServer(peer, port=0, webhook_secret=_SECRET) as peer_server,
            MultiBotSyncManager(bot) as manager,
        ):
            manager.add_bot(
                BotSyncConfig(
                    target_bot_name="peer",
                    webhook_url=f"http://127.0.0.1:{peer_server.port}/sync",
                    webhook_secret=_SECRET,
                )
            )
            incoming = HttpTransport(
                f"http://127.0.0.1:{bot_server.port}/sync", secret=_SECRET, node_id="peer"
            )
            pushed = peer.store.feed(0, 1000).records[:10]
            result = Result(
                "loop_lag",
                f"write lock held {holds:.0f} s by another process",
                params={"hold_s": holds},
            )
            probe = _Probe()
            locker = await _hold_lock(bot_db, holds)
            started = time.perf_counter()
            probe.start()
            sync = asyncio.create_task(manager.sync_with_bot("peer"))
            push = asyncio.create_task(incoming.push(pushed, sender="peer"))
            await queries()
            stall = await probe.stop()
            synced = await asyncio.wait_for(sync, 60)
            await asyncio.wait_for(push, 60)
            waited = time.perf_counter() - started
            await incoming.close()
            await locker.wait()
            if synced.errors:
                raise RuntimeError(f"the sync under the lock failed: {synced.errors}")
            result.put("max_stall_ms", [stall * 1000])
            result.put("pre_checkout_answer_ms", [a * 1000 for a in answers])
            result.put("sync_done_after_s", [waited])
            result.notes.append(
                f"{_QUERIES} pre-checkout queries, a sync (pull+push) and a peer's push "
                "handled meanwhile; the sync and the push finish once the lock goes"
            )
            # reference: one store write on the loop itself, under the same lock
            reference = Result(
                "loop_lag",
                f"reference: one write on the loop, lock held {holds:.0f} s",
                params={"hold_s": holds, "reference": True},
            )
            probe = _Probe()
            locker = await _hold_lock(bot_db, holds)
            probe.start()
            await asyncio.sleep(0.05)
            bot.update_payment_stage("premium", description="written on the loop")
            await asyncio.sleep(0.01)  # the probe wakes and notes how late it is
            stall = await probe.stop()
            await locker.wait()
            reference.put("max_stall_ms", [stall * 1000])
            ctx.add(result)
            ctx.add(reference)
    finally:
        bot.close()
        peer.close()
