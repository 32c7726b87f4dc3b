"""Run the NEONPAY benchmarks: ``python -m bench`` (or ``python bench/run.py``).

Runs every benchmark (or those named with ``--only``), prints a table of the figures and
the targets with PASS / MISS, and writes ``bench/results.json``. ``--quick`` is the
short version CI runs (small catalogs, one run of each case). Partial runs write
``bench/results-quick.json`` or ``bench/results-partial.json`` unless told otherwise. A
missed target does not fail the run; a benchmark that breaks does (exit status 1), after
the others have run.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import looplag, references
from bench.context import Context, Settings
from bench.machine import machine_facts
from bench.procs import REPO_ROOT, ProcessGroup
from bench.report import format_table, format_targets, write_json
from bench.targets import evaluate

__all__ = ["BENCHMARKS", "main"]

Bench = Callable[[Context], Awaitable[None]]


def _scenario(name: str) -> Bench:
    """A NEONPAY scenario from :mod:`bench.scenarios`, imported when it runs (it needs
    the sync engine and the HTTP layer)."""

    async def run(ctx: Context) -> None:
        from bench import scenarios

        await getattr(scenarios, f"bench_{name}")(ctx)

    return run


def _writes(name: str) -> Bench:
    """A store benchmark from :mod:`bench.writes` (local writes, bulk import)."""

    async def run(ctx: Context) -> None:
        from bench import writes

        names = {"local": "local_writes", "bulk": "bulk_import", "postgres": "postgres_writes"}
        await getattr(writes, f"bench_{names[name]}")(ctx)

    return run


#: Every benchmark, in the order they run: (name, what it measures, function).
BENCHMARKS: list[tuple[str, str, Bench]] = [
    ("floor", "raw aiohttp + executemany: the machine's floor", references.bench_floor),
    ("naive", "full dump every sync, as neonpay 2.x", references.bench_naive),
    ("first_sync", "first sync of a catalog, push and pull", _scenario("first_sync")),
    ("no_change", "a sync with nothing new", _scenario("no_change")),
    ("changes", "a sync after 1 and after 100 changes", _scenario("changes")),
    ("conflicts", "bidirectional, 1% concurrent edits, MERGE", _scenario("conflicts")),
    ("chain", "three bots in a chain", _scenario("chain")),
    ("realtime", "write-to-peer latency with auto sync", _scenario("realtime")),
    ("postgres", "first sync into a PostgreSQL receiver", _scenario("postgres")),
    ("loop_lag", "event-loop stall while another process holds the lock", looplag.bench_loop_lag),
    ("local_writes", "create/update/delete cost by catalog size, vs raw SQLite", _writes("local")),
    ("bulk_import", "create_payment_stages and neonpay import of a catalog", _writes("bulk")),
    ("postgres_writes", "local writes and bulk import on PostgreSQL", _writes("postgres")),
]


def _parse(argv: list[str] | None) -> argparse.Namespace:
    names = [name for name, _, _ in BENCHMARKS]
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmarks of NEONPAY sync against a floor and a naive full dump.",
        epilog="benchmarks: " + ", ".join(names),
    )
    parser.add_argument("--quick", action="store_true", help="small catalogs, few repeats (CI)")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help="run only these benchmarks (repeatable or comma-separated)",
    )
    parser.add_argument("--repeats", type=int, help="runs of each case (default 5, quick 1)")
    parser.add_argument(
        "--output",
        type=Path,
        help="where to write the figures (default bench/results.json; with --quick "
        "bench/results-quick.json, with --only bench/results-partial.json)",
    )
    parser.add_argument("--work-dir", type=Path, help="keep databases and logs here")
    parser.add_argument("--markdown", action="store_true", help="print Markdown tables")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="run NEONPAY nodes under py-spy (profiles in the work dir; distorts figures)",
    )
    args = parser.parse_args(argv)
    only = [n.strip() for item in args.only for n in item.split(",") if n.strip()]
    unknown = [n for n in only if n not in names]
    if unknown:
        parser.error(f"unknown benchmark {unknown[0]!r}; choose from {', '.join(names)}")
    if args.repeats is not None and args.repeats < 1:
        parser.error("--repeats must be at least 1")
    args.only = only
    if args.output is None:  # a partial run never overwrites the full figures
        name = "results-quick.json" if args.quick else "results-partial.json" if only else None
        args.output = REPO_ROOT / "bench" / (name or "results.json")
    return args


async def _run(args: argparse.Namespace, settings: Settings, work: Path) -> tuple[Context, bool]:
    failed = False
    budget = 120.0 if settings.quick else 1800.0
    async with ProcessGroup(work, profile=args.profile) as procs:
        ctx = Context(settings, work, procs)
        for name, title, bench in BENCHMARKS:
            if args.only and name not in args.only:
                continue
            print(f"== {name}: {title}", file=sys.stderr, flush=True)
            started = time.perf_counter()
            try:
                await asyncio.wait_for(bench(ctx), budget)
            except Exception as exc:
                failed = True
                traceback.print_exc()
                ctx.skipped.append((name, f"failed: {type(exc).__name__}: {exc}"[:2000]))
            finally:
                await procs.close()
            print(f"   {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
    return ctx, failed


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks; 0 when every selected one ran, 1 when one broke."""
    args = _parse(argv)
    settings = Settings.make(quick=args.quick, repeats=args.repeats)
    started = time.perf_counter()
    if args.work_dir is not None:
        work = args.work_dir.resolve()
        work.mkdir(parents=True, exist_ok=True)
    else:
        work = Path(tempfile.mkdtemp(prefix="neonpay-bench-"))
    try:
        ctx, failed = asyncio.run(_run(args, settings, work))
    finally:
        if args.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)
    ctx.results[:0] = ctx.floor_results()
    targets = evaluate(ctx.results, settings)
    print()
    print(format_table(ctx.results, markdown=args.markdown))
    print()
    print(format_targets(targets, markdown=args.markdown))
    for name, reason in ctx.skipped:
        print(f"\n{name}: {reason}")
    elapsed = time.perf_counter() - started
    machine = machine_facts(REPO_ROOT)
    write_json(
        args.output,
        settings={**settings.to_json(), "only": args.only},
        machine=machine,
        results=ctx.results,
        targets=targets,
        skipped=ctx.skipped,
        seconds=elapsed,
    )
    print(f"\nwrote {args.output} ({elapsed:.0f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
