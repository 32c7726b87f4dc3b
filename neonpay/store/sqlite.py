"""The SQLite store: the embedded default, one file in WAL mode.

One connection per store object, guarded by a lock, so the store can be used from the
event loop and from worker threads. Writers take SQLite's write lock at ``BEGIN
IMMEDIATE``; other processes that open the same file wait up to ``busy_timeout``.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from neonpay.errors import ConfigurationError, StorageError
from neonpay.store.sql import Session, SQLStore

__all__ = ["SQLiteStore"]


class _SQLiteSession(Session):
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._conn.execute(sql, tuple(params))

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._conn.executemany(sql, rows)

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._conn.execute(sql, tuple(params)).fetchall()


class SQLiteStore(SQLStore):
    """A store in one SQLite file (``sqlite:///path/to/file.db``).

    Raises:
        ConfigurationError: the path cannot be opened as a database.
        StorageError: a database operation failed.
    """

    _seq_index = " INDEXED BY neonpay_records_seq"

    def __init__(
        self,
        path: str | Path,
        *,
        node_id: str | None = None,
        busy_timeout: float = 10.0,
    ) -> None:
        self.path = Path(path)
        super().__init__(f"sqlite:///{self.path}", node_id)
        self._lock = threading.RLock()
        try:
            if str(path) != ":memory:":
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(
                str(path),
                isolation_level=None,
                check_same_thread=False,
                timeout=busy_timeout,
            )
        except (sqlite3.Error, OSError) as exc:
            raise ConfigurationError(f"cannot open SQLite database {self.path}: {exc}") from exc
        try:
            self._conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            self._enable_wal(time.monotonic() + busy_timeout)
            self._conn.execute("PRAGMA synchronous = NORMAL")
            self._conn.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error as exc:
            self._conn.close()
            raise ConfigurationError(f"cannot open SQLite database {self.path}: {exc}") from exc
        try:
            self._initialize()
        except BaseException:
            self._conn.close()
            raise

    def _enable_wal(self, deadline: float) -> None:
        # Switching a new file to WAL needs an exclusive lock and SQLite does not wait for
        # it (no busy handler), so processes opening a fresh file together retry here.
        while True:
            try:
                self._conn.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() >= deadline:
                    raise
            time.sleep(0.005)

    @contextmanager
    def _transaction(self, *, write: bool) -> Iterator[Session]:
        if self._closed:
            raise StorageError(f"the store {self.url} is closed")
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            except sqlite3.Error as exc:
                raise StorageError(f"cannot start a transaction on {self.url}: {exc}") from exc
            try:
                yield _SQLiteSession(self._conn)
            except BaseException as exc:
                self._conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise StorageError(f"SQLite error on {self.url}: {exc}") from exc
                raise
            else:
                try:
                    self._conn.execute("COMMIT")
                except sqlite3.Error as exc:
                    self._conn.execute("ROLLBACK")
                    raise StorageError(f"cannot commit to {self.url}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                self._conn.close()
            except sqlite3.Error as exc:  # pragma: no cover - closing rarely fails
                raise StorageError(f"cannot close {self.url}: {exc}") from exc
