"""Following a store while automatic sync runs: writes and peer changes made by any
process (another bot process, the ``neonpay`` CLI, a replica) reach the running loops.

A :class:`~neonpay.store.watch.StoreWatcher` signals that the store may have changed; one
task then looks, in a worker thread, at the change-log head and at the saved peers, and
hands what it found to the callbacks on the event loop's thread: the kinds written since
the last look (None: too many to tell, wake every push peer) and the saved peers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from neonpay.store.base import Store
from neonpay.store.watch import StoreWatcher, open_watcher

__all__ = ["KINDS_LOOKUP_LIMIT", "LiveStore"]

logger = logging.getLogger("neonpay.sync")

#: At most this many changes are read to learn which kinds a write from elsewhere
#: touched; past that every push peer is woken.
KINDS_LOOKUP_LIMIT = 200

#: Wakes the loops of the peers that sync any of these kinds (None: every push peer).
KindsCallback = Callable[["set[str] | None"], None]
#: Receives the peers saved in the store (name -> config as saved).
PeersCallback = Callable[[dict[str, dict[str, Any]]], None]


class LiveStore:
    """Follows ``store`` for writes and peer changes made by any process.

    Args:
        store: the bot's store.
        on_kinds: called with the kinds written since the last look.
        on_peers: called with the saved peers after every look.
        edits: a counter this process bumps on each of its own peer edits; saved peers
            read while it moved are read again, never applied.
    """

    def __init__(
        self,
        store: Store,
        *,
        on_kinds: KindsCallback,
        on_peers: PeersCallback,
        edits: Callable[[], int],
    ) -> None:
        self._store = store
        self._on_kinds = on_kinds
        self._on_peers = on_peers
        self._edits = edits
        self._seen = 0
        self._watcher: StoreWatcher | None = None
        self._task: asyncio.Task[None] | None = None
        self._event: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def running(self) -> bool:
        """Whether it follows the store."""
        return self._task is not None

    async def start(self) -> None:
        """Start following (idempotent). The saved peers are looked at once at once."""
        if self._task is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._event = asyncio.Event()
        self._seen = await asyncio.to_thread(self._store.last_seq)
        watcher = open_watcher(self._store, self._signal)
        if watcher is not None:
            await asyncio.to_thread(watcher.start)
        self._watcher = watcher
        self._task = asyncio.create_task(self._follow(), name="neonpay-sync-live")
        self._event.set()

    async def stop(self) -> None:
        """Stop following and release the watcher's thread and connection. Idempotent."""
        task, self._task = self._task, None
        watcher, self._watcher = self._watcher, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if watcher is not None:
            await asyncio.to_thread(watcher.stop)

    def _signal(self) -> None:
        """The watcher's callback (in its thread): look again."""
        loop, event = self._loop, self._event
        if loop is None or event is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(event.set)

    async def _follow(self) -> None:
        event = self._event
        assert event is not None, "start() made it"
        while True:
            await event.wait()
            event.clear()
            edits = self._edits()
            try:
                kinds, peers = await asyncio.to_thread(self._look)
            except asyncio.CancelledError:
                raise
            except Exception:  # a store error: logged; the next signal looks again
                logger.exception("reading the changes of %s failed", self._store.url)
                continue
            if kinds is None or kinds:
                self._on_kinds(kinds)
            if self._edits() != edits:  # this process changed its peers meanwhile
                event.set()
                continue
            self._on_peers(peers)

    def _look(self) -> tuple[set[str] | None, dict[str, dict[str, Any]]]:
        """In a worker thread: the kinds written since the last look, and the peers."""
        head = self._store.last_seq()
        kinds: set[str] | None = set()
        if head > self._seen:
            changes = self._store.changes(self._seen, KINDS_LOOKUP_LIMIT)
            if len(changes) < KINDS_LOOKUP_LIMIT:
                kinds = {record.kind for record in changes}
            else:
                kinds = None
            self._seen = head
        return kinds, self._store.list_peers()
