"""Automatic sync: one loop per peer with ``auto_sync=True``.

Each loop syncs at once, then every ``sync_interval_minutes``; a change (a change
listener on the bot, or :meth:`AutoSyncScheduler.wake_kinds` for a write another process
made) wakes the loops of push-capable peers. A woken loop that has nothing in flight
pushes at once; writes that come while its push is in flight, or within
:data:`BURST_WINDOW` seconds after it, are a burst: they are coalesced into the next push,
which goes :data:`BURST_HOLD_FIRST` seconds after the previous one ended, a hold that
doubles (up to :data:`BURST_HOLD_MAX`) while the burst goes on. So a burst of writes
travels in a few requests, and a lone write at once.
A push run with nothing to send is skipped. A failed sync is logged and recorded like any
other and never ends its loop. Loops are tasks kept in a set, cancelled and awaited on
:meth:`AutoSyncScheduler.stop`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from neonpay.store.base import Record
from neonpay.sync.config import BotSyncConfig
from neonpay.sync.propagation import current_sender
from neonpay.sync.results import SyncResult

if TYPE_CHECKING:
    from neonpay.core.neonpay import NeonPay

__all__ = [
    "BURST_HOLD_FIRST",
    "BURST_HOLD_MAX",
    "BURST_WINDOW",
    "DEFAULT_DEBOUNCE",
    "AutoSyncScheduler",
]

logger = logging.getLogger("neonpay.sync")

#: Seconds a woken loop waits at least before it pushes (0: at once).
DEFAULT_DEBOUNCE = 0.0
#: A write that comes while a push is in flight, or this many seconds after it ended,
#: belongs to a burst...
BURST_WINDOW = 0.02
#: ... and goes this many seconds after the push before it ended...
BURST_HOLD_FIRST = 0.01
#: ... a hold that doubles while a burst goes on, up to this many seconds.
BURST_HOLD_MAX = 0.2

#: Runs one sync with the named peer: ``full=True`` both ways, else a push only.
SyncRunner = Callable[[str, bool], Awaitable[SyncResult]]
#: The node id of a named peer, when known.
NodeLookup = Callable[[str], "str | None"]
#: Whether a push to the named peer has anything to send (called in a worker thread).
WorkCheck = Callable[[str], bool]


@dataclass
class _Loop:
    config: BotSyncConfig
    wake: asyncio.Event
    task: asyncio.Task[None] | None = None
    hold: float = 0.0  # seconds the next push of a burst waits (0: no burst)

    def poke(self) -> None:
        """Wake the loop (on the event loop's thread)."""
        self.wake.set()


class AutoSyncScheduler:
    """Runs the automatic sync loops of a set of peers.

    Args:
        neonpay: the bot whose local changes wake the loops.
        run: runs one sync with a peer (see ``SyncRunner``).
        peer_node: the node id of a peer, so a change that came from that peer does not
            wake its own loop.
        debounce: the least number of seconds between a wake-up and the push (default
            0: at once; kept for compatibility).
        has_work: whether a push to a peer has anything to send; a woken loop skips a
            push run that has not (default: never skips).
    """

    def __init__(
        self,
        neonpay: NeonPay,
        run: SyncRunner,
        *,
        peer_node: NodeLookup | None = None,
        debounce: float = DEFAULT_DEBOUNCE,
        has_work: WorkCheck | None = None,
    ) -> None:
        self._neonpay = neonpay
        self._run = run
        self._peer_node = peer_node
        self._has_work = has_work
        self.debounce = debounce
        self._loops: dict[str, _Loop] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started = False

    @property
    def running(self) -> bool:
        """Whether any loop is running."""
        return bool(self._tasks)

    @property
    def peers(self) -> list[str]:
        """The names of the peers with a running loop."""
        return sorted(self._loops)

    async def start(self, configs: Iterable[BotSyncConfig]) -> None:
        """Start a loop for each config with ``auto_sync=True`` (others are ignored);
        peers that already have a loop keep it."""
        self._loop = asyncio.get_running_loop()
        self._started = True
        self._neonpay.add_change_listener(self._on_change)
        for config in configs:
            if config.auto_sync and config.name not in self._loops:
                self._spawn(config)

    def _spawn(self, config: BotSyncConfig) -> None:
        loop = _Loop(config, asyncio.Event())
        task = asyncio.create_task(self._forever(loop), name=f"neonpay-sync:{config.name}")
        loop.task = task
        self._loops[config.name] = loop
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def cancel_peer(self, name: str) -> None:
        """Cancel the loop of one peer, if it runs (:meth:`stop` waits for it to end)."""
        loop = self._loops.pop(name, None)
        if loop is not None and loop.task is not None:
            loop.task.cancel()

    def update_peer(self, config: BotSyncConfig) -> None:
        """Restart the loop of a peer whose config changed (or start it, or stop it, as
        ``auto_sync`` now says), when the scheduler runs inside a running event loop."""
        if not self._started:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            return
        if running is not self._loop:
            return
        self.cancel_peer(config.name)
        if config.auto_sync:
            self._spawn(config)

    async def stop(self) -> None:
        """Cancel every loop and wait for them to end. Idempotent."""
        self._started = False
        self._neonpay.remove_change_listener(self._on_change)
        self._loops.clear()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def wake(self, name: str) -> None:
        """Ask the loop of ``name`` to push now. Thread-safe."""
        loop = self._loops.get(name)
        if loop is None or self._loop is None or self._loop.is_closed():
            return
        self._loop.call_soon_threadsafe(loop.poke)

    def wake_kinds(self, kinds: Iterable[str] | None) -> None:
        """Wake the push-capable loops that sync any of ``kinds`` (None: all of them),
        for changes written by another process. Call it on the event loop's thread."""
        wanted = None if kinds is None else set(kinds)
        for loop in list(self._loops.values()):
            config = loop.config
            if not config.direction.pushes:
                continue
            if wanted is None or not wanted.isdisjoint(config.kinds):
                loop.poke()

    def _on_change(self, record: Record) -> None:
        """A change listener: wake the push-capable peers that want this kind."""
        sender = current_sender()
        for name, loop in list(self._loops.items()):
            config = loop.config
            if not config.direction.pushes or record.kind not in config.kinds:
                continue
            if (
                sender is not None
                and self._peer_node is not None
                and (self._peer_node(name) == sender)
            ):
                continue
            self.wake(name)

    async def _forever(self, loop: _Loop) -> None:
        config = loop.config
        interval = config.sync_interval_seconds
        clock = asyncio.get_running_loop().time
        next_full = clock()
        while True:
            loop.wake.clear()
            started = clock()
            full = started >= next_full or not config.direction.pushes
            if full:
                next_full = started + interval
            try:
                if full or await self._worth_a_push(config.name):
                    await self._run(config.name, full)
            except asyncio.CancelledError:
                raise
            except Exception:  # a failed sync never ends the loop
                logger.exception("automatic sync with %r failed", config.name)
            ended = clock()
            if not await _woken(loop.wake, max(0.0, next_full - ended)):
                continue
            if self.debounce > 0:
                await asyncio.sleep(self.debounce)
            if clock() - ended < BURST_WINDOW:  # a burst: hold the next push a bit longer
                loop.hold = min(BURST_HOLD_MAX, max(BURST_HOLD_FIRST, 2 * loop.hold))
                await asyncio.sleep(max(0.0, ended + loop.hold - clock()))
            else:
                loop.hold = 0.0

    async def _worth_a_push(self, name: str) -> bool:
        if self._has_work is None:
            return True
        return await asyncio.to_thread(self._has_work, name)


async def _woken(event: asyncio.Event, timeout: float) -> bool:
    """Wait until ``event`` is set (True) or ``timeout`` seconds pass (False).

    Unlike ``asyncio.wait_for`` on Python 3.10/3.11, this never swallows a cancellation
    that arrives just as the event is set, so stopping a loop always stops it.
    """
    timed_out = False

    def expire() -> None:
        nonlocal timed_out
        timed_out = True
        event.set()

    handle = asyncio.get_running_loop().call_later(timeout, expire)
    try:
        await event.wait()
    finally:
        handle.cancel()
    return not timed_out
