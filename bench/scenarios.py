"""The NEONPAY scenarios: real bots in separate processes on 127.0.0.1, each with its own
store on disk, signing on, compression as configured, every byte through a counting proxy.

A bot that runs the :class:`~neonpay.sync.manager.SyncManager` is started with
``bench.node``; its peer runs ``run_sync_server``. Times are measured inside the process
that runs the sync (around ``sync_all()``); bytes and requests at the proxy; peak memory
from ``/proc``.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bench.catalog import KIND, remove_sqlite, stage_id
from bench.context import Context
from bench.measure import percentile
from bench.node import SECRET_ENV, edited_title
from bench.procs import Child
from bench.proxy import CountingProxy, TrafficStats
from bench.references import put_traffic, round_trips
from bench.report import Result
from neonpay.store import Store, open_store

__all__ = [
    "bench_chain",
    "bench_changes",
    "bench_conflicts",
    "bench_first_sync",
    "bench_no_change",
    "bench_postgres",
    "bench_realtime",
]

_MB = 1024 * 1024
_SEEN_TIMEOUT = 5.0
_POLL = 0.001


def _sqlite(path: Path) -> str:
    return f"sqlite:///{path}"


async def _node(ctx: Context, name: str, storage: str, *, serve: bool = False) -> Child:
    args = ["--storage", storage, *(["--serve"] if serve else [])]
    return await ctx.procs.spawn(name, "bench.node", *args, env={SECRET_ENV: ctx.secret})


async def _peer(
    ctx: Context, node: Child, name: str, proxy: CountingProxy, direction: str, **options: Any
) -> None:
    await node.call(
        "add_peer",
        name=name,
        url=f"{proxy.url}/sync",
        direction=direction,
        secret=ctx.secret,
        **options,
    )


async def _sync(node: Child, peer: str) -> dict[str, Any]:
    """One ``sync_all()``; raises when it did not complete."""
    out: dict[str, Any] = await node.call("sync", name=peer)
    if out["status"] != "completed":
        raise RuntimeError(f"sync with {peer} ended {out['status']}: {out['errors']}")
    return out


@contextlib.asynccontextmanager
async def _postgres_schema(ctx: Context) -> AsyncIterator[str]:
    """A store URL whose connections see a fresh, empty PostgreSQL schema (dropped after)."""
    import psycopg

    base = ctx.settings.postgres_url
    assert base is not None
    schema = f"bench_{uuid.uuid4().hex[:12]}"

    def run(sql: str) -> None:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(sql)

    await asyncio.to_thread(run, f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options={quote(f'-csearch_path={schema}')}"
    finally:
        await asyncio.to_thread(run, f"DROP SCHEMA {schema} CASCADE")


# --- first sync ---------------------------------------------------------------------------
async def _first_sync_once(
    ctx: Context, n: int, direction: str, receiver_storage: str | None
) -> tuple[dict[str, Any], TrafficStats, float, float]:
    """One first sync of ``n`` stages between two fresh processes.

    Returns the sync's answer, the traffic, and the peak RSS (MB) of the process that
    sent the data and of the one that received it.
    """
    full = await ctx.store_copy(n, "full.db")
    empty = ctx.fresh("empty.db")
    files = [full, empty]
    if direction == "push":  # the manager's bot has the data; the server receives
        manager_storage = _sqlite(full)
        server_storage = receiver_storage or _sqlite(empty)
    else:  # the server has the data; the manager's bot pulls it
        manager_storage = _sqlite(empty)
        server_storage = _sqlite(full)
    try:
        server = await _node(ctx, "server", server_storage, serve=True)
        manager = await _node(ctx, "manager", manager_storage)
        async with CountingProxy(server.ready["port"]) as proxy:
            await _peer(ctx, manager, "server", proxy, direction)
            out = await _sync(manager, "server")
            receiver = server if direction == "push" else manager
            held = await receiver.call("count")
        if held != n:
            raise RuntimeError(f"the receiver holds {held} of {n} stages after the sync")
        sender_rss, receiver_rss = manager.peak_rss(), server.peak_rss()
        if direction == "pull":
            sender_rss, receiver_rss = receiver_rss, sender_rss
        await ctx.procs.stop(manager)
        await ctx.procs.stop(server)
        return out, proxy.stats.copy(), sender_rss / _MB, receiver_rss / _MB
    finally:
        await ctx.procs.close()
        for path in files:
            remove_sqlite(path)


async def _first_sync_case(
    ctx: Context, n: int, direction: str, *, bench: str = "first_sync", postgres: bool = False
) -> Result:
    await ctx.store_source(n)
    label = f"{direction} {n}" + (" into PostgreSQL" if postgres else "")
    result = Result(bench, label, params={"n": n, "direction": direction})
    times: list[float] = []
    bases: list[float] = []
    traffic: list[TrafficStats] = []
    rss_sender: list[float] = []
    rss_receiver: list[float] = []
    engine_requests: list[int] = []
    for _ in range(ctx.repeats(n)):
        bases.append(await ctx.floor(n))
        async with contextlib.AsyncExitStack() as stack:
            storage = None
            if postgres:
                storage = await stack.enter_async_context(_postgres_schema(ctx))
            out, wire, snd, rcv = await _first_sync_once(ctx, n, direction, storage)
        times.append(out["seconds"])
        traffic.append(wire)
        rss_sender.append(snd)
        rss_receiver.append(rcv)
        engine_requests.append(out["requests"])
    result.put("time_s", times)
    put_traffic(result, traffic)
    result.put("rss_sender_mb", rss_sender)
    result.put("rss_receiver_mb", rss_receiver)
    result.params["engine_requests"] = engine_requests[-1]
    if postgres:
        result.notes.append("ratio against the SQLite floor")
    ctx.set_ratio(result, times, bases, n)
    return ctx.add(result)


async def bench_first_sync(ctx: Context) -> None:
    """First sync of each catalog size, pushed and pulled."""
    for n in ctx.settings.sizes:
        for direction in ("push", "pull"):
            await _first_sync_case(ctx, n, direction)


async def bench_postgres(ctx: Context) -> None:
    """The first push sync with a PostgreSQL store on the receiving bot."""
    if not ctx.settings.postgres_url:
        ctx.skipped.append(("postgres", "set NEONPAY_TEST_POSTGRES=postgresql://... to run it"))
        return
    for n in ctx.settings.sizes:
        await _first_sync_case(ctx, n, "push", bench="postgres", postgres=True)


# --- a synced pair ------------------------------------------------------------------------
class _Pair:
    """Two bots whose catalogs are in sync: ``a`` runs a manager per peer config (named
    after its direction), ``b`` serves."""

    def __init__(self, a: Child, b: Child, proxy: CountingProxy, files: list[Path]) -> None:
        self.a, self.b, self.proxy, self.files = a, b, proxy, files


@contextlib.asynccontextmanager
async def _synced_pair(
    ctx: Context, n: int, directions: Sequence[str], **options: Any
) -> AsyncIterator[_Pair]:
    """``a`` with the catalog of ``n`` stages, ``b`` holding it too after a first push,
    and one peer config on ``a`` for each direction (each synced once)."""
    full = await ctx.store_copy(n, "a.db")
    empty = ctx.fresh("b.db")
    try:
        b = await _node(ctx, "b", _sqlite(empty), serve=True)
        a = await _node(ctx, "a", _sqlite(full))
        async with CountingProxy(b.ready["port"]) as proxy:
            for direction in ["push", *(d for d in directions if d != "push")]:
                await _peer(ctx, a, direction, proxy, direction, **options)
                await _sync(a, direction)
            yield _Pair(a, b, proxy, [full, empty])
    finally:
        await ctx.procs.close()
        for path in (full, empty):
            remove_sqlite(path)


def _put_rss(result: Result, **nodes: Child) -> None:
    """Record the peak memory so far of each named node (``rss_<name>_mb``)."""
    for name, node in nodes.items():
        result.put(f"rss_{name}_mb", [node.peak_rss() / _MB])


async def _measured_syncs(
    pair: _Pair, peer: str, count: int
) -> tuple[list[float], list[TrafficStats], list[dict[str, Any]]]:
    times: list[float] = []
    traffic: list[TrafficStats] = []
    answers: list[dict[str, Any]] = []
    for _ in range(count):
        before = pair.proxy.snapshot()
        out = await _sync(pair.a, peer)
        traffic.append(pair.proxy.stats.since(before))
        times.append(out["seconds"])
        answers.append(out)
    return times, traffic, answers


async def bench_no_change(ctx: Context) -> None:
    """Syncs with nothing new on either side, on a synced catalog."""
    n = ctx.settings.catalog
    await ctx.store_source(n)
    count = max(10, ctx.settings.round_trips // 4) * ctx.settings.repeats
    modes = (("bidirectional", 2), ("push", 1), ("pull", 1))
    base, _ = await round_trips(ctx, count)
    async with _synced_pair(ctx, n, [mode for mode, _ in modes]) as pair:
        for direction, directions in modes:
            result = Result(
                "no_change",
                f"{direction}, {n} catalog",
                params={"n": n, "direction": direction, "directions": directions},
            )
            times, traffic, answers = await _measured_syncs(pair, direction, count)
            moved = sum(a["pushed"] + a["pulled"] for a in answers)
            if moved:
                raise RuntimeError(f"a sync with nothing new moved {moved} records")
            result.put("time_s", times)
            put_traffic(result, traffic)
            result.ratio = statistics.median(times) / statistics.median(base)
            result.ratio_to = "floor no-change round trip, measured just before"
            _put_rss(result, a=pair.a, b=pair.b)
            ctx.add(result)


async def bench_changes(ctx: Context) -> None:
    """A sync after 1 and after 100 local changes on a synced catalog."""
    n = ctx.settings.catalog
    await ctx.store_source(n)
    cases = (("push", 1), ("push", 100), ("bidirectional", 1))
    revision = 0
    async with _synced_pair(ctx, n, ["push", "bidirectional"]) as pair:
        for direction, changes in cases:
            result = Result(
                "changes",
                f"{direction}: {changes} changed of {n}",
                params={"n": n, "changes": changes, "direction": direction},
            )
            times: list[float] = []
            traffic: list[TrafficStats] = []
            await _sync(pair.a, direction)  # catch up with what other peers were sent
            for repeat in range(ctx.settings.repeats):
                revision += 1
                first = (repeat * changes) % max(1, n - changes)
                indices = list(range(first, first + changes))
                await pair.a.call(
                    "edit", indices=indices, field="title", tag="c", revision=revision
                )
                t, w, answers = await _measured_syncs(pair, direction, 1)
                if answers[0]["pushed"] != changes:
                    raise RuntimeError(f"{answers[0]['pushed']} of {changes} changes were pushed")
                times += t
                traffic += w
            if await pair.a.call("digest") != await pair.b.call("digest"):
                raise RuntimeError("the catalogs differ after the syncs")
            result.put("time_s", times)
            put_traffic(result, traffic)
            _put_rss(result, a=pair.a, b=pair.b)
            ctx.add(result)


async def bench_conflicts(ctx: Context) -> None:
    """Bidirectional sync after 1% of the stages were edited on both sides (MERGE)."""
    n = ctx.settings.catalog
    await ctx.store_source(n)
    edits = max(2, n // 100)
    result = Result(
        "conflicts",
        f"bidirectional MERGE, {edits} of {n} edited on both",
        params={"n": n, "conflicting": edits},
    )
    times: list[float] = []
    traffic: list[TrafficStats] = []
    conflicts: list[int] = []
    extra_syncs: list[int] = []
    async with _synced_pair(ctx, n, ["bidirectional"], resolution="merge") as pair:
        for repeat in range(ctx.settings.repeats):
            first = (repeat * edits) % max(1, n - edits)
            indices = list(range(first, first + edits))
            half = edits // 2
            await pair.a.call("edit", indices=indices, field="price", tag="a", revision=repeat)
            await pair.b.call("edit", indices=indices[:half], field="title", tag="b", revision=0)
            await pair.b.call("edit", indices=indices[half:], field="price", tag="bb", revision=0)
            t, w, answers = await _measured_syncs(pair, "bidirectional", 1)
            times += t
            traffic += w
            conflicts.append(answers[0]["conflicts"])
            more = 0
            while await pair.a.call("digest") != await pair.b.call("digest"):
                more += 1
                if more > 3:
                    raise RuntimeError("the catalogs did not converge after 3 more syncs")
                await _sync(pair.a, "bidirectional")
            extra_syncs.append(more)
        _put_rss(result, a=pair.a, b=pair.b)
    result.put("time_s", times)
    put_traffic(result, traffic)
    result.put("conflicts", conflicts)
    result.params["extra_syncs_to_converge"] = max(extra_syncs)
    ctx.add(result)


# --- three bots ---------------------------------------------------------------------------
async def bench_chain(ctx: Context) -> None:
    """A -> B -> C: the first sync of the catalog through B, one change, and real-time
    propagation with auto sync on A and B."""
    n = ctx.settings.catalog
    await ctx.store_source(n)
    first = Result("chain", f"A->B->C first sync of {n}", params={"n": n, "hops": 2})
    change = Result("chain", "A->B->C one change", params={"n": n, "hops": 2, "changes": 1})
    times: list[float] = []
    traffic: list[TrafficStats] = []
    change_times: list[float] = []
    change_traffic: list[TrafficStats] = []
    bases: list[float] = []
    rss: dict[str, list[float]] = {}
    for repeat in range(ctx.repeats(n)):
        bases.append(await ctx.floor(n))
        a_db = await ctx.store_copy(n, "a.db")
        b_db, c_db = ctx.fresh("b.db"), ctx.fresh("c.db")
        try:
            c = await _node(ctx, "c", _sqlite(c_db), serve=True)
            b = await _node(ctx, "b", _sqlite(b_db), serve=True)
            a = await _node(ctx, "a", _sqlite(a_db))
            async with CountingProxy(b.ready["port"]) as ab, CountingProxy(c.ready["port"]) as bc:
                await _peer(ctx, a, "b", ab, "push")
                await _peer(ctx, b, "c", bc, "push")
                one = await _sync(a, "b")
                two = await _sync(b, "c")
                times.append(one["seconds"] + two["seconds"])
                traffic.append(_sum(ab.stats, bc.stats))
                before_ab, before_bc = ab.snapshot(), bc.snapshot()
                await a.call("edit", indices=[repeat], field="title", tag="x", revision=1)
                one = await _sync(a, "b")
                two = await _sync(b, "c")
                change_times.append(one["seconds"] + two["seconds"])
                change_traffic.append(_sum(ab.stats.since(before_ab), bc.stats.since(before_bc)))
                if await a.call("digest") != await c.call("digest"):
                    raise RuntimeError("C's catalog differs from A's after the chain")
                for name, node in (("a", a), ("b", b), ("c", c)):
                    rss.setdefault(name, []).append(node.peak_rss() / _MB)
        finally:
            await ctx.procs.close()
            for path in (a_db, b_db, c_db):
                remove_sqlite(path)
    first.put("time_s", times)
    put_traffic(first, traffic)
    first.notes.append("two hops; the floor moves the records once")
    for name, values in rss.items():
        first.put(f"rss_{name}_mb", values)
    ctx.set_ratio(first, times, bases, n)
    ctx.add(first)
    change.put("time_s", change_times)
    put_traffic(change, change_traffic)
    ctx.add(change)
    ctx.add(await _chain_realtime(ctx, n))


def _sum(*stats: TrafficStats) -> TrafficStats:
    return TrafficStats(
        sum(s.bytes_up for s in stats),
        sum(s.bytes_down for s in stats),
        sum(s.requests for s in stats),
        sum(s.connections for s in stats),
    )


# --- real time -------------------------------------------------------------------------------
async def _seen(store: Store, key: str, title: str) -> float:
    """Poll ``store`` until stage ``key`` has ``title``; the monotonic time it did."""
    deadline = time.monotonic() + _SEEN_TIMEOUT
    while True:
        record = store.get(KIND, key)
        now = time.monotonic()
        if record is not None and record.fields.get("title") == title:
            return now
        if now > deadline:
            raise TimeoutError(f"{key} did not reach the peer within {_SEEN_TIMEOUT:.0f} s")
        await asyncio.sleep(_POLL)


async def _latencies(
    ctx: Context, writer: Child, peer_db: Path, n: int, proxies: list[CountingProxy]
) -> tuple[list[float], list[TrafficStats]]:
    """Retitle random stages on ``writer``, each time until ``peer_db`` has the new
    title: the write-to-peer latencies (ms) and the traffic of each write."""
    latencies: list[float] = []
    traffic: list[TrafficStats] = []
    rng = random.Random(8)
    peer = open_store(_sqlite(peer_db))
    try:
        for sample in range(ctx.settings.realtime_samples):
            index = rng.randrange(n)
            title = edited_title(index, "rt", sample)
            before = [p.snapshot() for p in proxies]
            written = await writer.call("update", index=index, title=title)
            seen = await _seen(peer, stage_id(index), title)
            latencies.append((seen - float(written["t_write"])) * 1000)
            await asyncio.sleep(0.05)  # let the pushes finish before the next write
            traffic.append(_sum(*(p.stats.since(b) for p, b in zip(proxies, before, strict=True))))
            await asyncio.sleep(rng.uniform(0.0, 0.05))
    finally:
        peer.close()
    return latencies, traffic


def _latency_result(result: Result, latencies: list[float], traffic: list[TrafficStats]) -> Result:
    result.put("latency_ms", latencies)
    result.put("p99_ms", [percentile(latencies, 99)])
    put_traffic(result, traffic)
    result.params["samples"] = len(latencies)
    return result


async def bench_realtime(ctx: Context) -> None:
    """A write on one bot until its push peer's store has it, with auto sync running."""
    n = ctx.settings.catalog
    await ctx.store_source(n)
    result = Result("realtime", f"write on A -> in B's store ({n} catalog)", params={"n": n})
    async with _synced_pair(ctx, n, ["push"], auto=True, interval_minutes=60.0) as pair:
        await pair.a.call("start_auto")
        await asyncio.sleep(0.3)  # the loops sync once when they start
        latencies, traffic = await _latencies(ctx, pair.a, pair.files[1], n, [pair.proxy])
        _put_rss(result, a=pair.a, b=pair.b)
        burst = await _burst(ctx, pair.a, pair.files[1], pair.proxy, min(n, _BURST))
    ctx.add(_latency_result(result, latencies, traffic))
    ctx.add(burst)


_BURST = 1000  # writes in the burst case


async def _burst(
    ctx: Context, writer: Child, peer_db: Path, proxy: CountingProxy, count: int
) -> Result:
    """``count`` writes in a row on ``writer`` (from a worker thread): the requests that
    carried them to the peer, counted at the proxy, once the last one is there."""
    result = Result("realtime", f"burst of {count} writes", params={"writes": count})
    before = proxy.snapshot()
    started = time.monotonic()
    await writer.call("burst", count=count, tag="burst")
    peer = open_store(_sqlite(peer_db))
    try:
        for i in (0, count - 1):
            await _seen(peer, stage_id(i), edited_title(i, "burst", 1))
    finally:
        peer.close()
    result.put("time_s", [time.monotonic() - started])
    put_traffic(result, [proxy.stats.since(before)])
    return result


async def _chain_realtime(ctx: Context, n: int) -> Result:
    """A -> B -> C with auto sync on A and B: a write on A until C's store has it."""
    result = Result(
        "chain", "A->B->C real-time, write on A -> in C's store", params={"n": n, "hops": 2}
    )
    a_db = await ctx.store_copy(n, "a.db")
    b_db, c_db = ctx.fresh("b.db"), ctx.fresh("c.db")
    try:
        c = await _node(ctx, "c", _sqlite(c_db), serve=True)
        b = await _node(ctx, "b", _sqlite(b_db), serve=True)
        a = await _node(ctx, "a", _sqlite(a_db))
        async with CountingProxy(b.ready["port"]) as ab, CountingProxy(c.ready["port"]) as bc:
            await _peer(ctx, a, "b", ab, "push", auto=True, interval_minutes=60.0)
            await _peer(ctx, b, "c", bc, "push", auto=True, interval_minutes=60.0)
            await _sync(a, "b")
            await _sync(b, "c")
            await a.call("start_auto")
            await b.call("start_auto")
            await asyncio.sleep(0.3)
            latencies, traffic = await _latencies(ctx, a, c_db, n, [ab, bc])
            _put_rss(result, a=a, b=b, c=c)
    finally:
        await ctx.procs.close()
        for path in (a_db, b_db, c_db):
            remove_sqlite(path)
    return _latency_result(result, latencies, traffic)
