"""Schema migrations: applied once, in order, safely when replicas start together."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from neonpay.store import Store, open_store
from neonpay.store import sql as sql_module
from neonpay.store.schema import MIGRATIONS, SCHEMA_VERSION

from .invariants import assert_log_consistent
from .processes import start_all
from .records import put

NEXT = SCHEMA_VERSION + 1
#: A test migration that counts how often it runs.
MARKER = [
    "CREATE TABLE neonpay_test_marker (n INTEGER NOT NULL)",
    "INSERT INTO neonpay_test_marker (n) VALUES (1)",
]


@pytest.fixture
def opened() -> Iterator[list[Store]]:
    stores: list[Store] = []
    yield stores
    for store in stores:
        store.close()


def test_a_fresh_store_is_at_the_schema_version(store: Store) -> None:
    assert store.get_meta("schema_version") == str(SCHEMA_VERSION)
    assert [v for v, _ in MIGRATIONS] == list(range(1, SCHEMA_VERSION + 1))


def test_reopening_does_not_rerun_migrations(
    store_url: str, opened: list[Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    first = open_store(store_url)
    opened.append(first)
    put(first, "payment_stage", "a", {"v": 1})
    first.close()
    monkeypatch.setattr(sql_module, "MIGRATIONS", [*MIGRATIONS, (NEXT, MARKER)])

    for _ in range(3):  # the first reopen upgrades, the others find nothing to do
        store = open_store(store_url)
        opened.append(store)
        assert store.get_meta("schema_version") == str(NEXT)
        store.close()

    store = open_store(store_url)
    opened.append(store)
    assert isinstance(store, sql_module.SQLStore)
    with store._transaction(write=False) as s:
        assert s.fetchall("SELECT n FROM neonpay_test_marker") == [(1,)]
        assert s.fetchall("SELECT COUNT(*) FROM neonpay_clock") == [(1,)]
    # the data written before the upgrade is intact
    assert assert_log_consistent(store)[0].key == "a"


def test_a_failing_migration_changes_nothing(
    store_url: str, opened: list[Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    first = open_store(store_url)
    opened.append(first)
    put(first, "payment_stage", "a", {"v": 1})
    node_id = first.node_id
    first.close()
    broken = [MARKER[0], "THIS IS NOT SQL"]
    monkeypatch.setattr(sql_module, "MIGRATIONS", [*MIGRATIONS, (NEXT, broken)])

    with pytest.raises(Exception) as info:  # noqa: PT011 - the translated error is checked
        opened.append(open_store(store_url))
    assert type(info.value).__name__ == "StorageError"

    monkeypatch.setattr(sql_module, "MIGRATIONS", MIGRATIONS)
    again = open_store(store_url)
    opened.append(again)
    assert again.get_meta("schema_version") == str(SCHEMA_VERSION)
    assert again.node_id == node_id
    assert again.last_seq() == 1
    assert isinstance(again, sql_module.SQLStore)
    with again._transaction(write=False) as s:  # the marker table was rolled back too
        tables = {
            row[0]
            for row in s.fetchall(
                "SELECT name FROM sqlite_master WHERE type = 'table'"
                if store_url.startswith("sqlite")
                else "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = current_schema()"
            )
        }
    assert "neonpay_test_marker" not in tables
    assert "neonpay_records" in tables


OPEN_AT_ONCE = """
import sys
from neonpay.store import open_store

print("ready", flush=True)
sys.stdin.readline()
store = open_store(sys.argv[1])
print(store.node_id, store.get_meta("schema_version"), store.last_seq(), flush=True)
store.close()
"""


def test_processes_opening_a_fresh_store_at_once_all_succeed(store_url: str) -> None:
    children = start_all(OPEN_AT_ONCE, [(store_url,)] * 3)
    try:
        for child in children:
            assert child.readline() == "ready"
        for child in children:
            child.send("go\n")
        results = [child.finish()[-1].split() for child in children]
    finally:
        for child in children:
            child.ensure_dead()

    node_ids = {r[0] for r in results}
    assert len(node_ids) == 1  # one identity, created once
    assert all(r[1:] == [str(SCHEMA_VERSION), "0"] for r in results)
    store = open_store(store_url)
    try:
        assert store.node_id in node_ids
    finally:
        store.close()
