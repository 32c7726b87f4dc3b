"""SQLite: a read never waits for a write, not even one of this store that waits for
another process's write lock (each thread reads on a connection of its own)."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from neonpay.store.base import Record
from neonpay.store.sqlite import SQLiteStore

BOUND = 30.0


def test_a_fresh_thread_reads_while_a_write_waits_for_the_lock(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "neonpay.db", node_id="reader-test")
    try:
        store.mutate("setting", "greeting", lambda old: {"value": "hi"})
        other = sqlite3.connect(store.path, isolation_level=None, timeout=BOUND)
        other.execute("BEGIN IMMEDIATE")  # another process's writer, in effect
        other.execute("UPDATE neonpay_meta SET value = value WHERE name = 'schema_version'")
        wrote = threading.Event()

        def write() -> None:
            store.mutate("setting", "greeting", lambda old: {"value": "bye"})
            wrote.set()

        writer = threading.Thread(target=write)
        writer.start()
        read: list[Record | None] = []
        # a thread that has never read before: its connection is made now
        reader = threading.Thread(target=lambda: read.append(store.get("setting", "greeting")))
        reader.start()
        reader.join(BOUND)
        assert not reader.is_alive()
        assert not wrote.is_set()  # the write is still waiting for the lock
        [state] = read
        assert state is not None
        assert state.fields == {"value": "hi"}  # the last committed state
        other.execute("ROLLBACK")
        other.close()
        assert wrote.wait(BOUND)
        writer.join(BOUND)
        after = store.get("setting", "greeting")
        assert after is not None
        assert after.fields == {"value": "bye"}
    finally:
        store.close()
