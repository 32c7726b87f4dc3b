"""Learning that a store changed, whichever process wrote to it.

A :class:`StoreWatcher` runs one thread with a connection of its own (never one of the
store's): on SQLite it reads ``PRAGMA data_version`` every :data:`SQLITE_CHECK_INTERVAL`
seconds (the number moves when another connection, in this process or any other,
commits to the file); on PostgreSQL it ``LISTEN``\\ s on :data:`CHANGE_CHANNEL`, which every
write transaction of a :class:`~neonpay.store.postgres.PostgresStore` notifies. Each time
it calls ``signal()`` (in its thread): something may have changed, go and look. Several
commits close together may give one signal; a signal may come for a commit that changed
nothing the caller cares about.

An in-memory store (or one of another type) cannot be written by anyone else, so
:func:`open_watcher` gives None for it.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from neonpay.store.postgres import CHANGE_CHANNEL

if TYPE_CHECKING:
    from neonpay.store.base import Store

__all__ = [
    "CHANGE_CHANNEL",
    "POSTGRES_WAIT",
    "SQLITE_CHECK_INTERVAL",
    "StoreWatcher",
    "open_watcher",
]

logger = logging.getLogger("neonpay.store")

#: Seconds between two reads of a SQLite file's change counter while a watcher runs.
SQLITE_CHECK_INTERVAL = 0.02
#: Seconds a PostgreSQL watcher waits for a notification before it looks whether it was
#: stopped (how long stopping it may take).
POSTGRES_WAIT = 0.1


class _Probe(Protocol):
    def wait(self, stop: threading.Event) -> bool:
        """Block until the store may have changed (True) or ``stop`` is set (False)."""

    def close(self) -> None: ...


class _SQLiteProbe:
    def __init__(self, path: str) -> None:
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        try:
            self._conn.execute("PRAGMA query_only = ON")
            self._version = self._read()
        except BaseException:
            self._conn.close()
            raise

    def _read(self) -> int:
        row = self._conn.execute("PRAGMA data_version").fetchone()
        return int(row[0])

    def wait(self, stop: threading.Event) -> bool:
        while not stop.wait(SQLITE_CHECK_INTERVAL):
            version = self._read()
            if version != self._version:
                self._version = version
                return True
        return False

    def close(self) -> None:
        self._conn.close()


class _PostgresProbe:
    def __init__(self, conn: Any) -> None:
        self._conn = conn
        try:
            conn.execute(f"LISTEN {CHANGE_CHANNEL}")
        except BaseException:
            conn.close()
            raise

    def wait(self, stop: threading.Event) -> bool:
        while not stop.is_set():
            got = False
            for _ in self._conn.notifies(timeout=POSTGRES_WAIT, stop_after=1):
                got = True
            if got:  # the ones already queued belong to the same look
                for _ in self._conn.notifies(timeout=0.0):
                    pass
                return True
        return False

    def close(self) -> None:
        self._conn.close()


class StoreWatcher:
    """A thread that calls ``signal()`` whenever ``store`` may have been written to.

    Args:
        opener: opens the watcher's own connection (called in :meth:`start`).
        signal: called in the watcher's thread after each detected commit; an exception
            it raises is logged and the watcher goes on.
        name: names the thread.
    """

    def __init__(
        self, opener: Callable[[], _Probe], signal: Callable[[], None], *, name: str
    ) -> None:
        self._opener = opener
        self._signal = signal
        self._name = name
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._probe: _Probe | None = None

    @property
    def running(self) -> bool:
        """Whether the thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Open the connection and start the thread (blocking: call it off the event
        loop). Changes committed from now on are signalled."""
        if self._thread is not None:
            return
        self._probe = self._opener()
        self._stop.clear()
        self._thread = threading.Thread(target=self._watch, name=self._name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread, wait for it and close its connection (blocking: at most
        :data:`POSTGRES_WAIT` or :data:`SQLITE_CHECK_INTERVAL`). Idempotent."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stop.set()
        thread.join()

    def _watch(self) -> None:
        probe = self._probe
        assert probe is not None, "start() opened it"
        try:
            while True:
                try:
                    if not probe.wait(self._stop):
                        return
                except Exception:  # a lost connection: nothing more to watch
                    logger.exception("watching the store for changes failed; stopped")
                    return
                try:
                    self._signal()
                except Exception:
                    logger.exception("handling a change of the store failed")
        finally:
            self._probe = None
            with contextlib.suppress(Exception):
                probe.close()


def open_watcher(store: Store, signal: Callable[[], None]) -> StoreWatcher | None:
    """A (not yet started) watcher of ``store``, or None when only this process can
    write to it (an in-memory SQLite database, a store of another type)."""
    from neonpay.store.postgres import PostgresStore
    from neonpay.store.sqlite import SQLiteStore

    opener: Callable[[], _Probe]
    if isinstance(store, SQLiteStore):
        if str(store.path) == ":memory:":
            return None
        path = str(store.path)

        def opener() -> _Probe:
            return _SQLiteProbe(path)

    elif isinstance(store, PostgresStore):
        pg = store

        def opener() -> _Probe:
            return _PostgresProbe(pg.open_listener())

    else:
        return None
    return StoreWatcher(opener, signal, name=f"neonpay-watch:{store.url}")
