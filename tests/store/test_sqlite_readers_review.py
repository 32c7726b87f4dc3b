"""SQLite read connections (one per thread): closing the store while other threads read
never crashes the process, and threads that end do not leave their connections open."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from neonpay.store.sqlite import SQLiteStore

BOUND = 120.0


def _open_files_under(folder: Path) -> int:
    """How many file descriptors of this process point into ``folder``."""
    fds = Path("/proc/self/fd")
    count = 0
    for fd in fds.iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith(str(folder)):
            count += 1
    return count


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc (Linux)")
def test_threads_that_end_do_not_keep_read_connections_open(tmp_path: Path) -> None:
    folder = tmp_path / "db"
    store = SQLiteStore(folder / "neonpay.db", node_id="reader-leak")
    try:
        store.mutate("setting", "greeting", lambda old: {"value": "hi"})
        base = _open_files_under(folder)
        for _ in range(40):  # a thread per request, as a threaded web server does
            reader = threading.Thread(target=lambda: store.get("setting", "greeting"))
            reader.start()
            reader.join(BOUND)
            assert not reader.is_alive()
        # at most the connection of the last thread stays open (its database, WAL and
        # shared-memory files); 40 threads left 80 files open before the fix
        assert _open_files_under(folder) <= base + 3
        assert store.get("setting", "greeting") is not None
    finally:
        store.close()
    assert _open_files_under(folder) == 0


_CLOSE_WHILE_READING = textwrap.dedent(
    """
    import sys, threading
    from neonpay.errors import StorageError
    from neonpay.store.sqlite import SQLiteStore

    folder = sys.argv[1]
    for trial in range(25):
        store = SQLiteStore(f"{folder}/t{trial}.db", node_id="closing")
        for i in range(200):
            store.mutate("setting", f"k{i}", lambda old: {"value": "x" * 200})
        started = threading.Event()
        failures = []

        def read():
            started.set()
            try:
                for _ in range(500):
                    store.feed(0, 300)
            except StorageError:
                return  # the store was closed: a clear error
            except BaseException as exc:
                failures.append(repr(exc))

        readers = [threading.Thread(target=read) for _ in range(3)]
        for reader in readers:
            reader.start()
        started.wait(60)
        store.close()
        for reader in readers:
            reader.join(60)
            assert not reader.is_alive()
        assert not failures, failures
    print("ok")
    """
)


def test_closing_the_store_while_threads_read_never_crashes(tmp_path: Path) -> None:
    """Run in a child process: closing a read connection that another thread is using
    crashed the interpreter (SIGSEGV). Reads either finish or fail with StorageError."""
    done = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", _CLOSE_WHILE_READING, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=BOUND,
        check=False,
    )
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    assert done.stdout.strip() == "ok"
