"""The SQLite store: the embedded default, one file in WAL mode.

Writes go through one connection per store object, guarded by a lock, and take SQLite's
write lock at ``BEGIN IMMEDIATE``; other processes that open the same file wait up to
``busy_timeout``. Reads use a connection of their own per thread: in WAL mode a reader
sees the last committed state and never waits for a writer, so a read (a pre-checkout
review, a feed page) is not held up by a write that waits for another process.
"""

from __future__ import annotations

import contextlib
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
        self._busy_timeout = busy_timeout
        self._local = threading.local()
        self._readers: list[_Reader] = []
        self._readers_lock = threading.Lock()
        self._shared_reads = str(path) == ":memory:"  # one private database: one connection
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

    def _reader(self) -> _Reader | None:
        """This thread's read connection (None: read on the writer's connection, as
        inside a write transaction of this thread, or for an in-memory database)."""
        if self._shared_reads or getattr(self._local, "writing", False):
            return None
        reader: _Reader | None = getattr(self._local, "reader", None)
        if reader is None:
            try:
                conn = sqlite3.connect(
                    str(self.path),
                    isolation_level=None,
                    check_same_thread=False,
                    timeout=self._busy_timeout,
                )
                conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")
                conn.execute("PRAGMA query_only = ON")
            except sqlite3.Error as exc:
                raise StorageError(f"cannot open {self.url} for reading: {exc}") from exc
            reader = _Reader(conn, threading.current_thread())
            with self._readers_lock:  # not the writer's lock: that may wait for minutes
                if self._closed:
                    conn.close()
                    raise StorageError(f"the store {self.url} is closed")
                # the connections of threads that ended are closed here, so a thread per
                # request does not leave one open file per request behind
                ended = [r for r in self._readers if not r.thread.is_alive()]
                self._readers = [r for r in self._readers if r.thread.is_alive()]
                self._readers.append(reader)
            for old in ended:
                old.close()
            self._local.reader = reader
        return reader

    @contextmanager
    def _transaction(self, *, write: bool) -> Iterator[Session]:
        if self._closed:
            raise StorageError(f"the store {self.url} is closed")
        reader = None if write else self._reader()
        if reader is not None:
            with self._read(reader) as session:
                yield session
            return
        with self._lock, self._writing():
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

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """Mark this thread as inside a transaction on the writer's connection (its
        reads then use that connection and see its own writes)."""
        outer = getattr(self._local, "writing", False)
        self._local.writing = True
        try:
            yield
        finally:
            self._local.writing = outer

    @contextmanager
    def _read(self, reader: _Reader) -> Iterator[Session]:
        # held for the whole read: close() waits for it instead of closing a connection
        # in use by this thread (which crashes the interpreter)
        with reader.lock:
            conn = reader.conn
            try:
                conn.execute("BEGIN")
            except sqlite3.Error as exc:  # closed meanwhile: ProgrammingError
                raise StorageError(f"cannot start a transaction on {self.url}: {exc}") from exc
            try:
                yield _SQLiteSession(conn)
            except BaseException as exc:
                conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise StorageError(f"SQLite error on {self.url}: {exc}") from exc
                raise
            else:
                conn.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            with self._readers_lock:
                readers, self._readers = self._readers, []
            for reader in readers:  # each waits for a read in progress on it
                reader.close()
            try:
                self._conn.close()
            except sqlite3.Error as exc:  # pragma: no cover - closing rarely fails
                raise StorageError(f"cannot close {self.url}: {exc}") from exc


class _Reader:
    """A thread's read connection, and the lock held while a read uses it."""

    def __init__(self, conn: sqlite3.Connection, thread: threading.Thread) -> None:
        self.conn = conn
        self.thread = thread
        self.lock = threading.RLock()

    def close(self) -> None:
        """Close the connection once no read uses it."""
        with self.lock, contextlib.suppress(sqlite3.Error):  # closing rarely fails
            self.conn.close()
