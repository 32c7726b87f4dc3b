"""The reference benchmarks: the floor (what the machine can do) and the naive full dump
(what users of neonpay 2.x pay), each between two processes on 127.0.0.1."""

from __future__ import annotations

from dataclasses import dataclass

from bench.catalog import copy_sqlite, stage_id
from bench.context import Context
from bench.procs import Child
from bench.proxy import CountingProxy, TrafficStats
from bench.report import Result

__all__ = ["FloorSample", "bench_floor", "bench_naive", "floor_once", "floor_result"]

_MB = 1024 * 1024


def put_traffic(result: Result, samples: list[TrafficStats]) -> None:
    """Record the wire figures of ``samples`` (one per repeat) on ``result``."""
    result.put("bytes_up", [t.bytes_up for t in samples])
    result.put("bytes_down", [t.bytes_down for t in samples])
    result.put("bytes", [t.bytes_total for t in samples])
    result.put("requests", [t.requests for t in samples])


async def _server(ctx: Context) -> Child:
    db = ctx.fresh("raw-receiver.db")
    return await ctx.procs.spawn("raw-receiver", "bench.rawnode", "serve", "--db", str(db))


@dataclass(frozen=True)
class FloorSample:
    """One run of the floor."""

    seconds: float
    traffic: TrafficStats
    rss_sender_mb: float
    rss_receiver_mb: float
    pages: int


async def floor_once(ctx: Context, n: int, *, direct: bool = False) -> FloorSample:
    """Move ``n`` records with the floor once, between two fresh processes."""
    source = await ctx.plain_source(n)
    server = await _server(ctx)
    client = await ctx.procs.spawn("floor-sender", "bench.rawnode", "client")
    try:
        async with CountingProxy(server.ready["port"]) as proxy:
            url = f"http://127.0.0.1:{server.ready['port']}" if direct else proxy.url
            out = await client.call("floor_send", source=str(source), url=url)
            counts = await server.call("count")
        if counts["floor"] != n or out["records"] != n:
            raise RuntimeError(f"the floor moved {counts['floor']} of {n} records")
        return FloorSample(
            out["seconds"],
            proxy.stats.copy(),
            client.peak_rss() / _MB,
            server.peak_rss() / _MB,
            out["pages"],
        )
    finally:
        await ctx.procs.stop(client)
        await ctx.procs.stop(server)


def floor_result(n: int, samples: list[FloorSample], *, direct: bool = False) -> Result:
    """The table row of the floor runs for ``n`` records."""
    result = Result("floor", f"{n} records" + (" direct" if direct else ""), params={"n": n})
    result.put("time_s", [s.seconds for s in samples])
    if not direct:
        put_traffic(result, [s.traffic for s in samples])
    result.put("rss_sender_mb", [s.rss_sender_mb for s in samples])
    result.put("rss_receiver_mb", [s.rss_receiver_mb for s in samples])
    result.params["pages"] = samples[-1].pages
    if direct:
        result.params["direct"] = True
        result.notes.append("no proxy in the path (the proxy's own cost is the difference)")
    return result


async def bench_floor(ctx: Context) -> None:
    """The floor for every size, its cost without the proxy, and a no-change round trip."""
    for n in ctx.settings.sizes:
        for _ in range(ctx.repeats(n)):
            await ctx.floor(n)
    n = ctx.settings.catalog
    direct = [await floor_once(ctx, n, direct=True) for _ in range(ctx.repeats(n))]
    ctx.add(floor_result(n, direct, direct=True))
    ctx.add(await round_trip_case(ctx))


async def round_trips(ctx: Context, count: int) -> tuple[list[float], TrafficStats]:
    """``count`` floor no-change polls on a warm connection: their seconds, and the
    traffic of one."""
    server = await _server(ctx)
    client = await ctx.procs.spawn("floor-sender", "bench.rawnode", "client")
    try:
        async with CountingProxy(server.ready["port"]) as proxy:
            out = await client.call("round_trips", url=proxy.url, count=count)
            spent = proxy.stats
            # count + 1 polls (one to warm up), all the same size
            one = TrafficStats(
                spent.bytes_up // (count + 1),
                spent.bytes_down // (count + 1),
                spent.requests // (count + 1),
            )
    finally:
        await ctx.procs.stop(client)
        await ctx.procs.stop(server)
    return list(out["samples"]), one


async def round_trip_case(ctx: Context) -> Result:
    """One tiny poll and its answer, on a warm connection, many times."""
    result = Result("floor", "no-change round trip", params={"round_trip": True})
    times: list[float] = []
    wire: list[TrafficStats] = []
    for _ in range(ctx.settings.repeats):
        samples, one = await round_trips(ctx, ctx.settings.round_trips)
        times += samples
        wire.append(one)
    result.put("time_s", times)
    put_traffic(result, wire)
    return result


async def bench_naive(ctx: Context) -> None:
    """Full-dump syncs of the catalog after no change and after one change."""
    n = ctx.settings.catalog
    source = ctx.fresh(f"naive-source-{n}.db")
    copy_sqlite(await ctx.plain_source(n), source)
    for changes in (0, 1):
        result = Result(
            "naive", f"{n} catalog, {changes} changed", params={"n": n, "changes": changes}
        )
        times: list[float] = []
        bases: list[float] = []
        traffic: list[TrafficStats] = []
        rss_sender: list[float] = []
        rss_receiver: list[float] = []
        for repeat in range(ctx.settings.repeats):
            bases.append(await ctx.floor(n))
            server = await _server(ctx)
            client = await ctx.procs.spawn("naive-sender", "bench.rawnode", "client")
            try:
                async with CountingProxy(server.ready["port"]) as proxy:
                    # the receiver already holds the catalog from an earlier sync
                    await client.call("naive_send", source=str(source), url=proxy.url)
                    if changes:
                        await client.call(
                            "naive_edit", source=str(source), key=stage_id(repeat), revision=1
                        )
                    before = proxy.snapshot()
                    out = await client.call("naive_send", source=str(source), url=proxy.url)
                    traffic.append(proxy.stats.since(before))
                    counts = await server.call("count")
                times.append(out["seconds"])
                if out["records"] != n or counts["naive"] != n:
                    raise RuntimeError(f"the naive sync moved {out['records']} of {n}")
                rss_sender.append(client.peak_rss() / _MB)
                rss_receiver.append(server.peak_rss() / _MB)
            finally:
                await ctx.procs.stop(client)
                await ctx.procs.stop(server)
        result.put("time_s", times)
        put_traffic(result, traffic)
        result.put("rss_sender_mb", rss_sender)
        result.put("rss_receiver_mb", rss_receiver)
        result.params["bytes_per_stage"] = round(out["body_bytes"] / n, 1)
        ctx.set_ratio(result, times, bases, n)
        ctx.add(result)
