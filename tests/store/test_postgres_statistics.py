"""PostgreSQL keeps planner statistics fresh while a first sync bulk-loads the tables."""

from __future__ import annotations

import psycopg

from neonpay.store import Outcome, Record
from neonpay.store.postgres import PostgresStore

from .records import by_version, remote


def _estimated_rows(url: str) -> float:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT reltuples FROM pg_class WHERE oid = 'neonpay_records'::regclass"
        ).fetchone()
    assert row is not None
    return float(row[0])


def _batch(start: int, stop: int) -> list[Record]:
    return [
        remote("payment_stage", f"stage-{i:05d}", {"title": f"T{i}", "price": 1 + i}, {"peer-b": 1})
        for i in range(start, stop)
    ]


def test_a_bulk_load_refreshes_the_statistics(postgres_url: str) -> None:
    store = PostgresStore(postgres_url)
    try:
        small = store.apply_batch(_batch(0, 10), by_version)
        assert [o.outcome for o in small] == [Outcome.APPLIED] * 10
        assert _estimated_rows(postgres_url) < 10  # never analyzed yet: -1 (or 0)
        outcomes = store.apply_batch(_batch(10, 1200), by_version)
        assert all(o.outcome is Outcome.APPLIED for o in outcomes)
        assert _estimated_rows(postgres_url) == 1200  # ANALYZE ran after the batch
        assert store.get("payment_stage", "stage-01199") is not None
        # the next refresh waits for a fifth more: these few do not trigger one
        store.apply_batch(_batch(1200, 1300), by_version)
        assert _estimated_rows(postgres_url) == 1200
    finally:
        store.close()
