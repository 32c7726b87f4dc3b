"""A failure mid-write leaves neither the record nor its change-log entry."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from neonpay.errors import StorageError
from neonpay.store import ApplyOutcome, Outcome, Record, Store
from neonpay.store.postgres import _PostgresSession
from neonpay.store.sqlite import _SQLiteSession

from .invariants import assert_log_consistent
from .records import by_version, put, remote

STAGE = "payment_stage"


class Boom(Exception):
    """Raised on purpose by a test."""


def snapshot(store: Store) -> tuple[int, list[Record], list[Record]]:
    return (
        store.last_seq(),
        store.list(STAGE, include_deleted=True),
        store.changes(0, 1000),
    )


def test_a_raising_mutation_writes_nothing(store: Store) -> None:
    put(store, STAGE, "kept", {"v": 1})
    before = snapshot(store)

    def explode(old: Mapping[str, Any] | None) -> Mapping[str, Any]:
        raise Boom

    with pytest.raises(Boom):
        store.mutate(STAGE, "new", explode)
    with pytest.raises(Boom):
        store.mutate(STAGE, "kept", explode)

    assert snapshot(store) == before
    assert store.get(STAGE, "new", include_deleted=True) is None


@pytest.fixture
def fail_log_insert(store_url: str, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Make the driver fail the change-log INSERT while armed (``armed[0] > 0``)."""
    armed = [0]
    session: type[Any]
    error: Exception
    if store_url.startswith("sqlite"):
        session, error = _SQLiteSession, sqlite3.OperationalError("disk I/O error")
    else:
        import psycopg

        session, error = _PostgresSession, psycopg.OperationalError("server closed the connection")
    original = session.executemany

    def executemany(self: Any, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if armed[0] and sql.startswith("INSERT INTO neonpay_changes"):
            armed[0] -= 1
            raise error
        original(self, sql, rows)

    monkeypatch.setattr(session, "executemany", executemany)
    return armed


def test_a_failed_log_insert_leaves_no_record(store: Store, fail_log_insert: list[int]) -> None:
    put(store, STAGE, "kept", {"v": 1})
    before = snapshot(store)
    fail_log_insert[0] = 2

    with pytest.raises(StorageError) as created:
        put(store, STAGE, "new", {"v": 1})
    with pytest.raises(StorageError):
        put(store, STAGE, "kept", {"v": 2})

    assert created.value.__cause__ is not None  # the driver's error, chained
    assert snapshot(store) == before
    assert store.get(STAGE, "new", include_deleted=True) is None
    # the next write takes the next number: no gap where the failed ones were
    after = put(store, STAGE, "new", {"v": 1})
    assert after is not None
    assert after.seq == before[0] + 1
    assert_log_consistent(store)


def test_a_failed_batch_applies_nothing(store: Store, fail_log_insert: list[int]) -> None:
    put(store, STAGE, "kept", {"v": 1})
    before = snapshot(store)
    batch = [remote(STAGE, "a", {"v": 1}, {"peer": 1}), remote(STAGE, "b", {"v": 1}, {"peer": 1})]
    fail_log_insert[0] = 1

    with pytest.raises(StorageError):
        store.apply_batch(batch, by_version)
    assert snapshot(store) == before

    calls = []

    def decide_then_fail(incoming: Record, local: Record | None) -> ApplyOutcome:
        calls.append(incoming.key)
        if len(calls) == 2:
            raise Boom
        return by_version(incoming, local)

    with pytest.raises(Boom):
        store.apply_batch(batch, decide_then_fail)
    assert snapshot(store) == before

    outcomes = store.apply_batch(batch, by_version)
    assert [o.outcome for o in outcomes] == [Outcome.APPLIED, Outcome.APPLIED]
    assert store.last_seq() == before[0] + 2
    assert_log_consistent(store)
