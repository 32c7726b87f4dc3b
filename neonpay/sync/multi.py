"""Syncing one bot with many: :class:`MultiBotSyncManager`.

Peers are kept in the bot's store, so a restarted process, or the ``neonpay`` CLI in
another process, sees them; so are the cursors, the history behind the statistics and
the pending conflicts. While automatic sync runs, peers added, changed or removed by
another process take effect here, and writes made by another process are pushed like
local ones (:mod:`neonpay.sync.live`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from neonpay.errors import ConfigurationError, NeonPayError, NotFoundError
from neonpay.store.base import Cursor, Record
from neonpay.sync.config import BotSyncConfig
from neonpay.sync.conflicts import SyncConflict
from neonpay.sync.live import LiveStore
from neonpay.sync.manager import SyncManager
from neonpay.sync.pending import conflict_from_row, pending_conflicts, resolve_pending
from neonpay.sync.protocol import Transport
from neonpay.sync.reopen import forget_open
from neonpay.sync.results import SyncResult, SyncStatus
from neonpay.sync.scheduler import DEFAULT_DEBOUNCE, AutoSyncScheduler
from neonpay.sync.stats import peer_stats

if TYPE_CHECKING:
    from types import TracebackType

    from neonpay.core.neonpay import NeonPay

__all__ = ["MultiBotSyncManager", "TransportFactory"]

logger = logging.getLogger("neonpay.sync")

#: Builds the transport to one peer (default: HTTP from ``config.webhook_url``).
TransportFactory = Callable[[BotSyncConfig], Transport]

_CURSOR_KEYS = (
    "webhook_url",
    "sync_payment_stages",
    "sync_promo_codes",
    "sync_templates",
    "sync_settings",
)


class MultiBotSyncManager:
    """Syncs ``neonpay``'s catalog with every configured peer bot.

    Creating it loads the peers saved in the store; it does no network I/O.

    Args:
        neonpay: this bot.
        transport_factory: builds the transport to a peer; default: the HTTP transport
            of :mod:`neonpay.web_sync` (needs ``neonpay[sync]``).
        debounce: the least number of seconds real-time sync waits after a change
            before pushing (default 0: at once; kept for compatibility).

    Use it as an async context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        neonpay: NeonPay,
        transport_factory: TransportFactory | None = None,
        *,
        debounce: float = DEFAULT_DEBOUNCE,
    ) -> None:
        self.neonpay = neonpay
        self._factory = transport_factory
        self._configs: dict[str, BotSyncConfig] = {}
        self._managers: dict[str, SyncManager] = {}
        self._retired: list[SyncManager] = []
        self._closed = False
        self._scheduler = AutoSyncScheduler(
            neonpay,
            self._run_for_scheduler,
            peer_node=self._peer_node,
            debounce=debounce,
            has_work=self._has_work,
        )
        self._edits = 0  # peer edits made by this object (see LiveStore)
        self._unreadable: dict[str, dict[str, Any]] = {}  # stored peers already logged
        self._live = LiveStore(
            neonpay.store,
            on_kinds=self._scheduler.wake_kinds,
            on_peers=self._adopt_stored_peers,
            edits=lambda: self._edits,
        )
        for name, data in neonpay.store.list_peers().items():
            try:
                self._configs[name] = BotSyncConfig.from_dict(data)
            except ConfigurationError as exc:
                logger.error("ignoring the stored sync peer %r: %s", name, exc)

    # --- peers -------------------------------------------------------------------------
    def add_bot(self, config: BotSyncConfig) -> None:
        """Add a peer, or replace the config of the peer with the same name, and save it
        in the store. Adding the same config again changes nothing (so start-up code may
        add its peers every time). Changing the URL or the kinds synced starts that
        peer's cursors again from 0.

        Raises:
            ConfigurationError: no name, or no ``webhook_url`` (and no transport factory).
        """
        if not isinstance(config, BotSyncConfig):
            raise ConfigurationError("add_bot() takes a BotSyncConfig")
        name = config.require_name()
        if config.webhook_url is None and self._factory is None:
            raise ConfigurationError(
                f"peer {name!r} needs webhook_url, the peer's sync URL (https://host/sync)"
            )
        old = self._configs.get(name)
        stored = self.neonpay.store.get_peer(name)
        if old == config and stored == config.to_dict():
            return
        self._edits += 1
        self.neonpay.store.save_peer(name, config.to_dict())
        if old is not None and any(
            getattr(old, key) != getattr(config, key) for key in _CURSOR_KEYS
        ):
            self.neonpay.store.set_cursor(name, "pull", Cursor())
            self.neonpay.store.set_cursor(name, "push", Cursor())
        self._configs[name] = config
        manager = self._managers.pop(name, None)
        if manager is not None:
            self._retired.append(manager)
        self._scheduler.update_peer(config)

    def remove_bot(self, name: str) -> bool:
        """Forget a peer (its config, cursors and the conflicts kept open for its next
        sync; its history stays); False when unknown.
        Its automatic sync loop is cancelled; its connection is released by
        :meth:`close`."""
        self._edits += 1
        known = self._configs.pop(name, None) is not None
        removed = self.neonpay.store.delete_peer(name)
        forget_open(self.neonpay.store, name)
        self._scheduler.cancel_peer(name)
        manager = self._managers.pop(name, None)
        if manager is not None:
            self._retired.append(manager)
        return known or removed

    def get_bot(self, name: str) -> BotSyncConfig | None:
        """The config of one peer, or None."""
        return self._configs.get(name)

    def list_bots(self) -> list[BotSyncConfig]:
        """Every configured peer, in the order they were added."""
        return list(self._configs.values())

    def get_sync_manager(self, name: str) -> SyncManager:
        """The :class:`SyncManager` of one peer (created on first use).

        Raises:
            NotFoundError: no peer of that name.
        """
        if self._closed:
            raise ConfigurationError("the MultiBotSyncManager is closed")
        manager = self._managers.get(name)
        if manager is None:
            config = self._configs.get(name)
            if config is None:
                raise NotFoundError(f"no sync peer named {name!r}; add it with add_bot()")
            transport = self._factory(config) if self._factory is not None else None
            manager = SyncManager(self.neonpay, config, transport)
            self._managers[name] = manager
        return manager

    # --- syncing ----------------------------------------------------------------------------
    async def sync_with_bot(self, name: str) -> SyncResult:
        """One full sync with the named peer.

        Raises:
            NotFoundError: no peer of that name.
        """
        manager = self.get_sync_manager(name)
        return await manager.sync_all()

    async def sync_all_bots(self) -> dict[str, SyncResult]:
        """Sync with every peer concurrently; one failing peer never stops the others (its
        result is ``FAILED``)."""
        names = list(self._configs)
        outcomes = await asyncio.gather(
            *(self.sync_with_bot(name) for name in names), return_exceptions=True
        )
        results: dict[str, SyncResult] = {}
        for name, outcome in zip(names, outcomes, strict=True):
            if isinstance(outcome, SyncResult):
                results[name] = outcome
            elif isinstance(outcome, Exception):
                if not isinstance(outcome, NeonPayError):
                    logger.error("sync with %r failed", name, exc_info=outcome)
                results[name] = SyncResult(
                    peer=name, status=SyncStatus.FAILED, errors=[f"sync with {name!r}: {outcome}"]
                )
            else:  # a BaseException such as CancelledError
                raise outcome
        return results

    async def _run_for_scheduler(self, name: str, full: bool) -> SyncResult:
        manager = self.get_sync_manager(name)
        if full:
            return await manager.sync_all()
        return await manager.push_changes()

    def _has_work(self, name: str) -> bool:
        """Whether a push to ``name`` has anything to do (in a worker thread)."""
        manager = self._managers.get(name)
        if manager is None:
            return True
        return manager.has_changes_to_push()

    def _adopt_stored_peers(self, stored: dict[str, dict[str, Any]]) -> None:
        """Take the peers saved in the store as they are now (another process may have
        added, changed or removed some): a removed peer's loop stops (its run in flight
        is cancelled), a new or changed one starts as its config says."""
        for name in [n for n in self._configs if n not in stored]:
            del self._configs[name]
            self._scheduler.cancel_peer(name)
            self._retire(name)
            logger.info("sync peer %r was removed from the store: no more syncs with it", name)
        for name, data in stored.items():
            try:
                config = BotSyncConfig.from_dict(data)
            except ConfigurationError as exc:
                if self._unreadable.get(name) != data:
                    self._unreadable[name] = data
                    logger.error("ignoring the stored sync peer %r: %s", name, exc)
                continue
            self._unreadable.pop(name, None)
            if self._configs.get(name) == config:
                continue
            verb = "changed" if name in self._configs else "added"
            self._configs[name] = config
            self._retire(name)
            self._scheduler.update_peer(config)
            logger.info("sync peer %r was %s in the store: using its new config", name, verb)

    def _retire(self, name: str) -> None:
        manager = self._managers.pop(name, None)
        if manager is not None:
            self._retired.append(manager)

    def _peer_node(self, name: str) -> str | None:
        store = self.neonpay.store
        return (
            store.get_cursor(name, "pull").peer_node_id
            or store.get_cursor(name, "push").peer_node_id
        )

    # --- automatic sync ------------------------------------------------------------------------
    async def start_auto_sync_all(self) -> None:
        """Start automatic sync with every peer that has ``auto_sync=True``: at once,
        then every ``sync_interval_minutes``, and at once after a write to this store
        (push-capable peers), made by this process or by any other (another bot process,
        the ``neonpay`` CLI, a replica). Peers added, changed or removed in the store by
        another process take effect while it runs. Calling it again starts loops for
        peers added since."""
        if self._closed:
            raise ConfigurationError("the MultiBotSyncManager is closed")
        await self._scheduler.start(list(self._configs.values()))
        await self._live.start()

    async def stop_auto_sync_all(self) -> None:
        """Stop every automatic sync loop and wait for them to end. Idempotent."""
        await self._live.stop()
        await self._scheduler.stop()

    @property
    def auto_sync_running(self) -> bool:
        """Whether automatic sync loops are running."""
        return self._scheduler.running

    # --- statistics -------------------------------------------------------------------------------
    def get_sync_stats(self, name: str) -> dict[str, Any]:
        """The statistics of one peer (see :mod:`neonpay.sync.stats`).

        Raises:
            NotFoundError: no peer of that name.
        """
        config = self._configs.get(name)
        if config is None:
            raise NotFoundError(f"no sync peer named {name!r}; add it with add_bot()")
        return peer_stats(self.neonpay.store, config)

    def get_all_sync_stats(self) -> dict[str, dict[str, Any]]:
        """Statistics per peer: ``total_syncs``, ``successful_syncs``, ``failed_syncs``,
        ``partial_syncs``, ``success_rate`` (0.0-100.0), ``total_items_synced``,
        ``total_conflicts``, ``bytes_sent``, ``bytes_received``, ``last_sync_at``,
        ``last_status``, ``last_error`` and ``lag``."""
        return {name: peer_stats(self.neonpay.store, c) for name, c in self._configs.items()}

    # --- conflicts (ASK_USER) -----------------------------------------------------------
    def list_conflicts(self, peer: str | None = None) -> list[SyncConflict]:
        """Pending conflicts (of one peer, or all), oldest first. A conflict that a later
        state settled meanwhile (say the peer's own resolution arrived) is closed as
        ``superseded`` and not listed."""
        return [conflict_from_row(row) for row in pending_conflicts(self.neonpay.store, peer)]

    def resolve_conflict(self, conflict_id: int, choice: str | Mapping[str, Any]) -> Record:
        """Resolve a pending conflict with ``"source"`` (keep ours), ``"target"`` (take the
        peer's), ``"merge"`` or a dict of fields; the resolution syncs like any write.

        Raises:
            NotFoundError: no such conflict.
            ConflictError: it is not pending any more, or a later state already settled it.
            ValidationError: an unknown choice, or fields that break a rule.
        """
        return resolve_pending(self.neonpay, conflict_id, choice)

    # --- lifecycle ---------------------------------------------------------------------
    async def close(self) -> None:
        """Stop automatic sync and close every peer's transport. Idempotent."""
        if self._closed:
            return
        self._closed = True
        await self._live.stop()
        await self._scheduler.stop()
        managers = [*self._managers.values(), *self._retired]
        self._managers.clear()
        self._retired.clear()
        for manager in managers:
            try:
                await manager.close()
            except Exception:  # closing one peer must not keep the others open
                logger.exception("closing the sync manager of %r failed", manager.config.name)

    async def __aenter__(self) -> MultiBotSyncManager:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<MultiBotSyncManager node={self.neonpay.node_id} peers={list(self._configs)}>"
