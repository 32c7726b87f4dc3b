"""The benchmark catalog: deterministic payment stages, and fast loading of them.

Every benchmark moves the same stages, so the floor, the naive baseline and NEONPAY
carry the same data. Loading (not measured) writes a NEONPAY store in large
transactions through :meth:`Store.apply_batch`, with each record stamped exactly as a
local write of the store's own node would be, or a plain SQLite table for the raw
references.
"""

from __future__ import annotations

import shutil
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from neonpay.core.stages import PaymentStage
from neonpay.store import ApplyOutcome, Outcome, Record, open_store
from neonpay.sync.clock import HLC, next_hlc

__all__ = [
    "KIND",
    "copy_sqlite",
    "remove_sqlite",
    "seed_plain",
    "seed_store",
    "stage_fields",
    "stage_id",
]

KIND = "payment_stage"
_BATCH = 5000


def stage_id(i: int) -> str:
    """The id of the ``i``-th benchmark stage."""
    return f"stage-{i:06d}"


def stage_fields(i: int, revision: int = 0) -> dict[str, Any]:
    """The stored fields of the ``i``-th stage; ``revision`` > 0 gives an edited version.

    The shape (and, in the naive full dump, about 217 bytes a stage) follows a typical
    catalog entry of the published neonpay 2.x.
    """
    title = f"Product {i:06d}" if revision == 0 else f"Product {i:06d} r{revision}"
    stage = PaymentStage(
        title=title,
        description=f"Item {i:06d} of the benchmark catalog.",
        price=1 + (i * 7919 + revision * 13) % 5000,
        payload={"sku": i},
    )
    return stage.to_fields()


def _local_records(node_id: str, start: int, stop: int, last: HLC | None) -> list[Record]:
    records: list[Record] = []
    now = time.time()
    for i in range(start, stop):
        last = next_hlc(last, node_id)
        stamp = last.encode()
        fields = stage_fields(i)
        records.append(
            Record(
                kind=KIND,
                key=stage_id(i),
                fields=fields,
                version={node_id: 1},
                hlc=stamp,
                field_hlcs=dict.fromkeys(sorted(fields), stamp),
                origin=node_id,
                updated_at=now,
            )
        )
    return records


def _apply_as_is(incoming: Record, local: Record | None) -> ApplyOutcome:
    return ApplyOutcome(Outcome.APPLIED, incoming, incoming)


def seed_store(url: str, n: int, *, node_id: str | None = None) -> str:
    """Fill the NEONPAY store at ``url`` with stages 0..n-1 as local writes; its node id."""
    store = open_store(url, node_id=node_id)
    try:
        last: HLC | None = None
        for start in range(0, n, _BATCH):
            records = _local_records(store.node_id, start, min(n, start + _BATCH), last)
            last = HLC.decode(records[-1].hlc)
            store.apply_batch(records, _apply_as_is)
        return store.node_id
    finally:
        store.close()


def plain_rows(n: int) -> Iterator[tuple[str, str, str, str, float]]:
    """Rows (key, fields, version, hlc, updated_at) of the plain source table."""
    last: HLC | None = None
    now = time.time()
    for i in range(n):
        last = next_hlc(last, "floor-source")
        yield (
            stage_id(i),
            orjson.dumps(stage_fields(i), option=orjson.OPT_SORT_KEYS).decode(),
            '{"floor-source":1}',
            last.encode(),
            now,
        )


def seed_plain(path: Path, n: int) -> None:
    """Write stages 0..n-1 into a plain SQLite table ``source`` (the raw references)."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS source (key TEXT PRIMARY KEY, fields TEXT NOT NULL, "
            "version TEXT NOT NULL, hlc TEXT NOT NULL, updated_at REAL NOT NULL)"
        )
        conn.execute("BEGIN")
        conn.executemany("INSERT OR REPLACE INTO source VALUES (?, ?, ?, ?, ?)", plain_rows(n))
        conn.execute("COMMIT")
    finally:
        conn.close()


def copy_sqlite(source: Path, target: Path) -> None:
    """Copy a closed SQLite database file (and its WAL, if any) to ``target``."""
    for suffix in ("-wal", "-shm"):
        Path(str(target) + suffix).unlink(missing_ok=True)
    shutil.copyfile(source, target)
    wal = Path(str(source) + "-wal")
    if wal.exists():
        shutil.copyfile(wal, Path(str(target) + "-wal"))


def remove_sqlite(path: Path) -> None:
    """Delete a SQLite database file and its WAL and shared-memory files."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(str(path) + suffix).unlink(missing_ok=True)
