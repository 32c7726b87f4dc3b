"""The issue's targets, checked against a run's figures: PASS, MISS, or N/A when the
run did not measure them. A miss is reported, never raised."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bench.context import Settings
from bench.report import MISS, NOT_RUN, PASS, Result, Target

__all__ = ["evaluate"]

FIRST_SYNC_MAX_RATIO = 3.0
RSS_GROWTH_MAX_MB = 60.0
NO_CHANGE_MAX_BYTES = 1024
NO_CHANGE_MAX_SECONDS = 0.005
ONE_CHANGE_MAX_BYTES = 2048
ONE_CHANGE_MIN_GAIN = 1000.0
REALTIME_MAX_MEDIAN_MS = 10.0
REALTIME_MAX_P99_MS = 30.0
CHAIN_REALTIME_MAX_MEDIAN_MS = 25.0
BURST_MAX_REQUESTS = 10
LOOP_STALL_MAX_MS = 50.0
PRE_CHECKOUT_MAX_MS = 8000.0
LOCAL_WRITE_MAX_RATIO = 2.0  # over a raw transaction writing the same rows
LOCAL_WRITE_MAX_GROWTH = 1.5  # largest catalog over the empty one: constant time
BULK_MIN_PER_S = 20_000.0
BULK_TARGET_SIZE = 100_000  # the bulk target is about loading a catalog of this size


def _find(results: Sequence[Result], bench: str, **params: Any) -> Result | None:
    for result in results:
        if result.bench == bench and all(result.params.get(k) == v for k, v in params.items()):
            return result
    return None


def _status(ok: bool) -> str:
    return PASS if ok else MISS


def _first_sync(results: Sequence[Result], settings: Settings) -> list[Target]:
    targets: list[Target] = []
    limit = f"<= {FIRST_SYNC_MAX_RATIO:.0f}x floor"
    for n in settings.sizes[1:]:
        for direction in ("push", "pull"):
            name = f"first sync {n} ({direction})"
            found = _find(results, "first_sync", n=n, direction=direction)
            if found is None or found.ratio is None:
                targets.append(Target(name, limit, "", NOT_RUN))
                continue
            targets.append(
                Target(
                    name,
                    limit,
                    f"{found.ratio:.2f}x",
                    _status(found.ratio <= FIRST_SYNC_MAX_RATIO),
                )
            )
    return targets


def _memory(results: Sequence[Result], settings: Settings) -> list[Target]:
    targets: list[Target] = []
    small, big = settings.sizes[0], settings.sizes[-1]
    limit = f"< {RSS_GROWTH_MAX_MB:.0f} MB"
    for direction in ("push", "pull"):
        low = _find(results, "first_sync", n=small, direction=direction)
        high = _find(results, "first_sync", n=big, direction=direction)
        for role in ("sender", "receiver"):
            name = f"RSS growth {small}->{big}, {role} ({direction})"
            figure = f"rss_{role}_mb"
            a = low.median(figure) if low else None
            b = high.median(figure) if high else None
            if a is None or b is None:
                targets.append(Target(name, limit, "", NOT_RUN))
                continue
            growth = b - a
            targets.append(
                Target(
                    name,
                    limit,
                    f"{growth:+.1f} MB ({a:.0f} -> {b:.0f})",
                    _status(growth < RSS_GROWTH_MAX_MB),
                )
            )
    return targets


def _no_change(results: Sequence[Result]) -> list[Target]:
    found = [r for r in results if r.bench == "no_change"]
    if not found:
        return [
            Target("no-change sync: round trips", "<= 1 per direction", "", NOT_RUN),
            Target("no-change sync: wire bytes", f"< {NO_CHANGE_MAX_BYTES} B", "", NOT_RUN),
            Target("no-change sync: time", f"< {NO_CHANGE_MAX_SECONDS * 1000:.0f} ms", "", NOT_RUN),
        ]
    out: list[Target] = []
    for result in found:
        mode = result.params.get("direction", "")
        directions = int(result.params.get("directions", 1))
        requests = result.median("requests")
        wire = result.median("bytes")
        seconds = result.median("time_s")
        if requests is not None:
            out.append(
                Target(
                    f"no-change sync ({mode}): round trips",
                    f"<= {directions}",
                    f"{requests:.0f}",
                    _status(requests <= directions),
                )
            )
        if wire is not None:
            out.append(
                Target(
                    f"no-change sync ({mode}): wire bytes",
                    f"< {NO_CHANGE_MAX_BYTES} B",
                    f"{wire:.0f} B",
                    _status(wire < NO_CHANGE_MAX_BYTES),
                )
            )
        if seconds is not None:
            out.append(
                Target(
                    f"no-change sync ({mode}): time",
                    f"< {NO_CHANGE_MAX_SECONDS * 1000:.0f} ms",
                    f"{seconds * 1000:.2f} ms",
                    _status(seconds < NO_CHANGE_MAX_SECONDS),
                )
            )
    return out


def _one_change(results: Sequence[Result], settings: Settings) -> list[Target]:
    n = settings.catalog
    naive = _find(results, "naive", changes=1, n=n)
    naive_wire = naive.median("bytes") if naive else None
    found = [
        r
        for r in results
        if r.bench == "changes" and r.params.get("changes") == 1 and r.params.get("n") == n
    ]
    if not found:
        return [
            Target(
                f"one changed stage in {n}: wire bytes", f"< {ONE_CHANGE_MAX_BYTES} B", "", NOT_RUN
            ),
            Target(
                f"one changed stage in {n}: fewer bytes than naive",
                f">= {ONE_CHANGE_MIN_GAIN:.0f}x",
                "",
                NOT_RUN,
            ),
        ]
    targets: list[Target] = []
    for result in found:
        mode = result.params.get("direction", "")
        wire = result.median("bytes")
        if wire is None:
            continue
        targets.append(
            Target(
                f"one changed stage in {n} ({mode}): wire bytes",
                f"< {ONE_CHANGE_MAX_BYTES} B",
                f"{wire:.0f} B",
                _status(wire < ONE_CHANGE_MAX_BYTES),
            )
        )
        name = f"one changed stage in {n} ({mode}): fewer bytes than naive"
        limit = f">= {ONE_CHANGE_MIN_GAIN:.0f}x"
        if naive_wire is None or wire <= 0:
            targets.append(Target(name, limit, "", NOT_RUN))
        else:
            gain = naive_wire / wire
            targets.append(
                Target(name, limit, f"{gain:.0f}x", _status(gain >= ONE_CHANGE_MIN_GAIN))
            )
    return targets


def _realtime(results: Sequence[Result]) -> list[Target]:
    found = _find(results, "realtime")
    median = found.median("latency_ms") if found else None
    p99 = found.median("p99_ms") if found else None
    chain = next((r for r in results if r.bench == "chain" and "real-time" in r.case), None)
    chain_median = chain.median("latency_ms") if chain else None
    burst = next((r for r in results if r.bench == "realtime" and "burst" in r.case), None)
    requests = burst.median("requests") if burst else None
    return [
        Target(
            "real-time A->B->C: median",
            f"<= {CHAIN_REALTIME_MAX_MEDIAN_MS:.0f} ms",
            f"{chain_median:.1f} ms" if chain_median is not None else "",
            NOT_RUN
            if chain_median is None
            else _status(chain_median <= CHAIN_REALTIME_MAX_MEDIAN_MS),
        ),
        Target(
            "real-time burst of 1000 writes: requests",
            f"<= {BURST_MAX_REQUESTS}",
            f"{requests:.0f}" if requests is not None else "",
            NOT_RUN if requests is None else _status(requests <= BURST_MAX_REQUESTS),
        ),
        Target(
            "real-time write-to-peer: median",
            f"<= {REALTIME_MAX_MEDIAN_MS:.0f} ms",
            f"{median:.1f} ms" if median is not None else "",
            NOT_RUN if median is None else _status(median <= REALTIME_MAX_MEDIAN_MS),
        ),
        Target(
            "real-time write-to-peer: p99",
            f"<= {REALTIME_MAX_P99_MS:.0f} ms",
            f"{p99:.1f} ms" if p99 is not None else "",
            NOT_RUN if p99 is None else _status(p99 <= REALTIME_MAX_P99_MS),
        ),
    ]


def _loop_lag(results: Sequence[Result]) -> list[Target]:
    found = next(
        (r for r in results if r.bench == "loop_lag" and not r.params.get("reference")), None
    )
    stall = found.median("max_stall_ms") if found else None
    answer = found.figures.get("pre_checkout_answer_ms") if found else None
    return [
        Target(
            "largest event-loop stall under a held lock",
            f"< {LOOP_STALL_MAX_MS:.0f} ms",
            "" if stall is None else f"{stall:.1f} ms",
            NOT_RUN if stall is None else _status(stall < LOOP_STALL_MAX_MS),
        ),
        Target(
            "pre-checkout answered under a held lock",
            f"< {PRE_CHECKOUT_MAX_MS:.0f} ms",
            "" if answer is None else f"{answer.max:.1f} ms (max)",
            NOT_RUN if answer is None else _status(answer.max < PRE_CHECKOUT_MAX_MS),
        ),
    ]


def _local_writes(results: Sequence[Result], bench: str, reference: str) -> list[Target]:
    """Each write next to its raw transaction, and its cost growth with the catalog."""
    targets: list[Target] = []
    rows = [r for r in results if r.bench == bench and not r.params.get("raw") and "op" in r.params]
    sizes = sorted({r.params["n"] for r in rows})
    for op in ("create", "update", "delete"):
        for n in sizes:
            name = f"{bench}: {op} at {n} stages"
            limit = f"<= {LOCAL_WRITE_MAX_RATIO:.0f}x {reference}"
            found = _find(rows, bench, n=n, op=op)
            if found is None or found.ratio is None:
                targets.append(Target(name, limit, "", NOT_RUN))
                continue
            targets.append(
                Target(
                    name,
                    limit,
                    f"{found.ratio:.2f}x",
                    _status(found.ratio <= LOCAL_WRITE_MAX_RATIO),
                )
            )
        if len(sizes) >= 2:
            low = _find(rows, bench, n=sizes[0], op=op)
            high = _find(rows, bench, n=sizes[-1], op=op)
            a = low.median("time_s") if low else None
            b = high.median("time_s") if high else None
            name = f"{bench}: {op} cost, {sizes[-1]} over {sizes[0]} stages"
            limit = f"<= {LOCAL_WRITE_MAX_GROWTH:.1f}x"
            if a and b:
                growth = b / a
                targets.append(
                    Target(name, limit, f"{growth:.2f}x", _status(growth <= LOCAL_WRITE_MAX_GROWTH))
                )
    return targets


def _bulk(results: Sequence[Result]) -> list[Target]:
    targets: list[Target] = []
    for result in results:
        if "bulk" not in result.params:
            continue
        if result.params["n"] < BULK_TARGET_SIZE:  # start-up would dominate a small one
            continue
        rate = result.median("stages_per_s")
        name = f"{result.bench}: {result.case}"
        limit = f">= {BULK_MIN_PER_S:,.0f} stages/s"
        if rate is None:
            targets.append(Target(name, limit, "", NOT_RUN))
            continue
        targets.append(
            Target(name, limit, f"{rate:,.0f} stages/s", _status(rate >= BULK_MIN_PER_S))
        )
    return targets


def evaluate(results: Sequence[Result], settings: Settings) -> list[Target]:
    """Every target with its status in this run."""
    return [
        *_first_sync(results, settings),
        *_memory(results, settings),
        *_no_change(results),
        *_one_change(results, settings),
        *_realtime(results),
        *_loop_lag(results),
        *_local_writes(results, "local_writes", "raw sqlite3"),
        *_local_writes(results, "postgres_writes", "raw psycopg"),
        *_bulk(results),
    ]
