"""The SQLite store: the embedded default, one file in WAL mode.

One connection per store object, guarded by a lock, so the store can be used from the
event loop and from worker threads. Writers take SQLite's write lock at ``BEGIN
IMMEDIATE``; other processes that open the same file wait up to ``busy_timeout``.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from neonpay.errors import ConfigurationError, StorageError
from neonpay.store.sql import Session, SQLStore

__all__ = ["FILE_MODE", "SQLiteStore"]

logger = logging.getLogger("neonpay.store")


#: The mode of a new store file: it holds bot tokens and peer secrets, so only its owner
#: may read it. SQLite gives the -wal and -shm files the mode of the database file.
FILE_MODE = 0o600
_warned: set[str] = set()


def _private_file(path: Path) -> None:
    """Create ``path`` with :data:`FILE_MODE` if it does not exist; warn (once per path)
    when an existing store can be read by other users."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, FILE_MODE)
    except FileExistsError:
        mode = path.stat().st_mode
        if mode & 0o077 and str(path) not in _warned and stat.S_ISREG(mode):
            _warned.add(str(path))
            logger.warning(
                "the store %s can be read by other users (mode %s) although it holds bot "
                "tokens and sync secrets: chmod 600 it (and its -wal and -shm files)",
                path,
                oct(mode & 0o777),
            )
        return
    os.close(fd)


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
                _private_file(self.path)
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
