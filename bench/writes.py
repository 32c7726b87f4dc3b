"""Local write cost and bulk import, next to raw transactions of the same rows.

* ``local_writes``: ``create_payment_stage``, ``update_payment_stage`` and
  ``remove_payment_stage`` through the public API on a SQLite store already holding 0,
  10,000 and 100,000 stages, each timed one call at a time; next to a raw ``sqlite3``
  transaction (``BEGIN IMMEDIATE``, the record row upserted, a log row inserted,
  ``COMMIT``) on tables of the same shape and size. The ratio is NEONPAY's median over
  the raw median at the same size.
* ``bulk_import``: ``NeonPay.create_payment_stages`` of 100,000 stages into an empty
  store (one transaction, every stage checked), and ``neonpay import`` of an export file
  of 100,000 stages (a whole CLI process, start-up included).
* ``postgres_writes``: the same on PostgreSQL (a fresh schema per size) next to a raw
  psycopg transaction; needs ``NEONPAY_TEST_POSTGRES``.

Everything runs in the benchmark's own process (no sync, no network); seeding is not
measured.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from bench.catalog import KIND, stage_fields, stage_id
from bench.context import Context
from bench.procs import REPO_ROOT
from bench.report import Result
from neonpay import NeonPay, PaymentStage, create_neonpay

__all__ = ["bench_bulk_import", "bench_local_writes", "bench_postgres_writes"]

_OPS = ("create", "update", "delete")


def _sizes(ctx: Context) -> tuple[int, ...]:
    return (0, 1000) if ctx.settings.quick else (0, 10_000, 100_000)


def _calls(ctx: Context) -> int:
    """Calls timed per operation and size."""
    return 50 if ctx.settings.quick else 300


def _bulk_size(ctx: Context) -> int:
    return 2000 if ctx.settings.quick else 100_000


def _stage(i: int) -> PaymentStage:
    return PaymentStage.from_fields(stage_fields(i))


# --- the raw references -------------------------------------------------------------------
_RAW_TABLES = [
    "CREATE TABLE IF NOT EXISTS records (kind TEXT NOT NULL, key TEXT NOT NULL, "
    "fields TEXT NOT NULL, version TEXT NOT NULL, hlc TEXT NOT NULL, deleted INTEGER NOT NULL, "
    "updated_at DOUBLE PRECISION NOT NULL, seq BIGINT NOT NULL, PRIMARY KEY (kind, key))",
    "CREATE INDEX IF NOT EXISTS records_seq ON records (seq)",
    "CREATE TABLE IF NOT EXISTS changes (seq BIGINT PRIMARY KEY, kind TEXT NOT NULL, "
    "key TEXT NOT NULL, fields TEXT NOT NULL, version TEXT NOT NULL, hlc TEXT NOT NULL, "
    "deleted INTEGER NOT NULL, updated_at DOUBLE PRECISION NOT NULL)",
]
_UPSERT = (
    "INSERT INTO records (kind, key, fields, version, hlc, deleted, updated_at, seq) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (kind, key) DO UPDATE SET "
    "fields = excluded.fields, version = excluded.version, hlc = excluded.hlc, "
    "deleted = excluded.deleted, updated_at = excluded.updated_at, seq = excluded.seq"
)
_LOG = (
    "INSERT INTO changes (seq, kind, key, fields, version, hlc, deleted, updated_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


def _raw_row(i: int, key: str, seq: int, *, deleted: bool = False) -> tuple[Any, ...]:
    fields = "{}" if deleted else json.dumps(stage_fields(i), sort_keys=True)
    stamp = f"{1_700_000_000_000 + seq:015d}.000000.raw"
    return (KIND, key, fields, '{"raw":1}', stamp, int(deleted), time.time(), seq)


def _log_row(row: tuple[Any, ...]) -> tuple[Any, ...]:
    kind, key, fields, version, stamp, deleted, updated_at, seq = row
    return (seq, kind, key, fields, version, stamp, deleted, updated_at)


def _seed_rows(n: int) -> Iterator[tuple[Any, ...]]:
    for i in range(n):
        yield _raw_row(i, stage_id(i), i + 1)


Begin = Callable[[], AbstractContextManager[Callable[[str, tuple[Any, ...]], Any]]]


def _time_pairs(
    np: NeonPay, begin: Begin, n: int, calls: int
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Seconds of each NEONPAY create, update and delete call on a catalog of ``n``
    stages, and of each raw transaction writing one record row and one log row, taken in
    turns (one NEONPAY call, one raw transaction) so both see the same machine load.
    New stages are created, updated, then deleted: the catalog stays at ``n``."""
    mine: dict[str, list[float]] = {op: [] for op in _OPS}
    raw: dict[str, list[float]] = {op: [] for op in _OPS}
    keys = [f"new-{i:06d}" for i in range(calls)]
    seq = n
    clock = time.perf_counter
    for op in _OPS:
        for i, key in enumerate(keys):
            seq += 1
            row = _raw_row(n + i + (7 if op == "update" else 0), key, seq, deleted=op == "delete")
            started = clock()
            with begin() as execute:
                execute(_UPSERT, row)
                execute(_LOG, _log_row(row))
            raw[op].append(clock() - started)
            started = clock()
            if op == "create":
                np.create_payment_stage(key, _stage(n + i))
            elif op == "update":
                np.update_payment_stage(key, price=1 + (i * 31) % 5000, title=f"Edited {i}")
            else:
                np.remove_payment_stage(key)
            mine[op].append(clock() - started)
    if np.store.count(KIND) != n:
        raise RuntimeError(f"the catalog holds {np.store.count(KIND)} stages, not {n}")
    return mine, raw


class _RawSQLite:
    """A plain ``sqlite3`` database with the two tables, WAL and ``synchronous=NORMAL``
    like NEONPAY's store."""

    def __init__(self, path: Path, n: int) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("PRAGMA synchronous = NORMAL")
        for sql in _RAW_TABLES:
            self.conn.execute(sql)
        self.conn.execute("BEGIN")
        rows = list(_seed_rows(n))
        self.conn.executemany(_UPSERT, rows)
        self.conn.executemany(_LOG, [_log_row(r) for r in rows])
        self.conn.execute("COMMIT")

    def begin(self) -> AbstractContextManager[Callable[[str, tuple[Any, ...]], Any]]:
        conn = self.conn

        class _Tx:
            def __enter__(self) -> Callable[[str, tuple[Any, ...]], Any]:
                conn.execute("BEGIN IMMEDIATE")
                return conn.execute

            def __exit__(self, *exc: object) -> None:
                conn.execute("COMMIT")

        return _Tx()

    def close(self) -> None:
        self.conn.close()


# --- results --------------------------------------------------------------------------------
def _results(
    ctx: Context,
    bench: str,
    n: int,
    mine: dict[str, list[float]],
    raw: dict[str, list[float]],
    reference: str,
) -> None:
    for op in _OPS:
        result = Result(bench, f"{op}, {n} live stages", params={"n": n, "op": op})
        result.put("time_s", mine[op])
        ref = Result(bench, f"{op}, {n} rows: {reference}", params={"n": n, "op": op, "raw": True})
        ref.put("time_s", raw[op])
        a, b = result.median("time_s"), ref.median("time_s")
        if a is not None and b:
            result.ratio = a / b
            result.ratio_to = f"{reference}, median over median"
        ctx.add(result)
        ctx.add(ref)


def _sqlite_writes(ctx: Context, store_path: Path, raw_path: Path, n: int) -> None:
    raw = _RawSQLite(raw_path, n)
    try:
        # the catalog limit just above what the case holds: every create is checked
        limit = n + _calls(ctx)
        with create_neonpay(storage=f"sqlite:///{store_path}", max_stages=limit) as np:
            mine, raw_samples = _time_pairs(np, raw.begin, n, _calls(ctx))
    finally:
        raw.close()
    _results(ctx, "local_writes", n, mine, raw_samples, "raw sqlite3 transaction")


async def bench_local_writes(ctx: Context) -> None:
    """Create, update and delete cost at each catalog size, next to raw SQLite."""
    for n in _sizes(ctx):
        store = await ctx.store_copy(n, f"writes-{n}.db")
        raw = ctx.fresh(f"raw-writes-{n}.db")
        await asyncio.to_thread(_sqlite_writes, ctx, store, raw, n)


# --- bulk import ---------------------------------------------------------------------------
def _bulk_python(url: str, n: int) -> float:
    stages = [(stage_id(i), _stage(i)) for i in range(n)]
    with create_neonpay(storage=url) as np:
        started = time.perf_counter()
        written = np.create_payment_stages(stages)
        seconds = time.perf_counter() - started
        if written != n or np.store.count(KIND) != n:
            raise RuntimeError(f"the bulk call wrote {written} of {n} stages")
    return seconds


def _bulk_cli(url: str, document: Path, n: int) -> float:
    env = dict(os.environ)
    env["NEONPAY_STORAGE"] = url
    env["PYTHONPATH"] = str(REPO_ROOT)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "neonpay", "import", str(document)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0 or f"{n} new" not in done.stdout:
        raise RuntimeError(f"neonpay import failed: {done.stdout[-500:]} {done.stderr[-2000:]}")
    return seconds


def _export_file(path: Path, n: int) -> None:
    document = {
        "format": "neonpay-catalog",
        "version": 1,
        "payment_stages": {stage_id(i): stage_fields(i) for i in range(n)},
    }
    path.write_text(json.dumps(document), encoding="utf-8")


def _bulk_result(ctx: Context, bench: str, case: str, n: int, seconds: list[float]) -> None:
    result = Result(bench, case, params={"n": n, "bulk": case.split()[0]})
    result.put("time_s", seconds)
    result.put("stages_per_s", [n / s for s in seconds if s > 0])
    ctx.add(result)


async def bench_bulk_import(ctx: Context) -> None:
    """``create_payment_stages`` and ``neonpay import`` of a large catalog (SQLite)."""
    n = _bulk_size(ctx)
    document = ctx.fresh(f"export-{n}.json")
    await asyncio.to_thread(_export_file, document, n)
    python: list[float] = []
    cli: list[float] = []
    for _ in range(ctx.repeats(n)):
        python.append(await asyncio.to_thread(_bulk_python, f"sqlite:///{ctx.fresh('bulk.db')}", n))
        cli.append(
            await asyncio.to_thread(_bulk_cli, f"sqlite:///{ctx.fresh('import.db')}", document, n)
        )
    _bulk_result(ctx, "bulk_import", f"create_payment_stages {n}", n, python)
    _bulk_result(ctx, "bulk_import", f"neonpay import {n} (a whole process)", n, cli)


# --- PostgreSQL -----------------------------------------------------------------------------
class _RawPostgres:
    """The two tables in a PostgreSQL schema, written with plain psycopg."""

    def __init__(self, url: str, n: int) -> None:
        import psycopg

        self.conn = psycopg.connect(url, autocommit=True)
        for sql in _RAW_TABLES:
            self.conn.execute(sql)
        rows = list(_seed_rows(n))
        with self.conn.transaction(), self.conn.cursor() as cur:
            cur.executemany(_UPSERT.replace("?", "%s"), rows)
            cur.executemany(_LOG.replace("?", "%s"), [_log_row(r) for r in rows])
        self.conn.execute("ANALYZE records, changes")

    def begin(self) -> AbstractContextManager[Callable[[str, tuple[Any, ...]], Any]]:
        conn = self.conn

        class _Tx:
            def __enter__(self) -> Callable[[str, tuple[Any, ...]], Any]:
                self.tx = conn.transaction()
                self.tx.__enter__()
                return lambda sql, params: conn.execute(sql.replace("?", "%s"), params)

            def __exit__(self, *exc: object) -> None:
                self.tx.__exit__(None, None, None)

        return _Tx()

    def close(self) -> None:
        self.conn.close()


def _seed_postgres(url: str, n: int) -> None:
    from bench.catalog import seed_store

    seed_store(url, n)
    with create_neonpay(storage=url) as np:  # fresh planner statistics, as a bot would
        np.store._analyze()  # type: ignore[attr-defined]


def _postgres_writes(ctx: Context, url: str, raw_url: str, n: int) -> None:
    _seed_postgres(url, n)
    raw = _RawPostgres(raw_url, n)
    try:
        with create_neonpay(storage=url, max_stages=n + _calls(ctx)) as np:
            mine, raw_samples = _time_pairs(np, raw.begin, n, _calls(ctx))
    finally:
        raw.close()
    _results(ctx, "postgres_writes", n, mine, raw_samples, "raw psycopg transaction")


async def bench_postgres_writes(ctx: Context) -> None:
    """Local write cost and bulk import with a PostgreSQL store."""
    if not ctx.settings.postgres_url:
        ctx.skipped.append(
            ("postgres_writes", "set NEONPAY_TEST_POSTGRES=postgresql://... to run it")
        )
        return
    from bench.scenarios import _postgres_schema

    for n in _sizes(ctx):
        async with _postgres_schema(ctx) as url, _postgres_schema(ctx) as raw_url:
            await asyncio.to_thread(_postgres_writes, ctx, url, raw_url, n)
    n = _bulk_size(ctx)
    seconds: list[float] = []
    for _ in range(ctx.repeats(n)):
        async with _postgres_schema(ctx) as url:
            seconds.append(await asyncio.to_thread(_bulk_python, url, n))
    _bulk_result(ctx, "postgres_writes", f"create_payment_stages {n}", n, seconds)
