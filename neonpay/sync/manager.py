"""Syncing this bot (the *source*) with one peer (the *target*): :class:`SyncManager`.

A run pulls the peer's changes after our pull cursor, then pushes ours after the push
cursor, page by page. Cursors live in the store and move only once a page is applied
(pull) or acknowledged (push), so a crash repeats a page, which is harmless. Conflicts are
resolved here, on the source, and the resolution is written and pushed in the same run.

How a conflict is resolved depends on the strategy and on the direction, because data
may only flow where the direction allows (a PUSH peer never writes to us, a PULL peer
never receives from us):

* MERGE: the field-by-field merge (no counter goes up). BIDIRECTIONAL: written here and
  pushed. PULL: written here. PUSH: pushed to the peer, not written here.
* SOURCE_WINS: our fields as a new write that dominates both sides. BIDIRECTIONAL and
  PUSH: written here and pushed. PULL: ours kept, nothing written.
* TARGET_WINS: the peer's fields as a new write. BIDIRECTIONAL: written here and pushed.
  PULL: written here. PUSH: both sides left as they are (the conflict is reported).
* ASK_USER: ours kept; the conflict is stored as pending until a person resolves it.
* A custom resolver's fields: a new write, written here (and pushed unless PULL); None
  keeps ours, unresolved.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from neonpay.errors import (
    ConfigurationError,
    MissingExtraError,
    NeonPayError,
    PeerRejected,
    PeerUnreachable,
    SignatureError,
    StorageError,
    SyncError,
    ValidationError,
)
from neonpay.store.base import Cursor, Outcome, Record
from neonpay.sync.config import BotSyncConfig, ConflictResolution, SyncDirection
from neonpay.sync.conflicts import ConflictResolver, SyncConflict
from neonpay.sync.decide import decide, expecting, make_decide
from neonpay.sync.merge import merge_states, resolution_write, state_equal
from neonpay.sync.pending import conflict_from_row, record_pending, resolve_pending
from neonpay.sync.propagation import notify_applied
from neonpay.sync.protocol import PushResult, Transport
from neonpay.sync.results import SyncResult, SyncStatus
from neonpay.sync.validation import RecordCheck

if TYPE_CHECKING:
    from types import TracebackType

    from neonpay.core.neonpay import NeonPay

__all__ = ["SyncManager"]

logger = logging.getLogger("neonpay.sync")

#: How often one record may be re-resolved in one run before the run gives up on it.
DEFAULT_MAX_ROUNDS = 3


@dataclass
class _Run:
    """The state of one run."""

    result: SyncResult
    transport: Transport
    peer_node: str | None = None
    contacted: bool = False
    attempts: dict[tuple[str, str], int] = field(default_factory=dict)
    outbox: list[Record] = field(default_factory=list)
    #: records whose conflict was left as it is in this run (pending, unresolved, kept)
    unsettled: set[tuple[str, str]] = field(default_factory=set)

    def note(self, conflict: SyncConflict) -> None:
        """Report one conflict per record per run (the latest round of it)."""
        key = (conflict.item_type, conflict.item_id)
        conflicts = self.result.conflicts
        for index, known in enumerate(conflicts):
            if (known.item_type, known.item_id) == key:
                conflicts[index] = conflict
                return
        conflicts.append(conflict)


class SyncManager:
    """Syncs ``neonpay``'s catalog with one peer.

    Args:
        neonpay: this bot.
        config: the peer and how to sync with it.
        transport: how to reach the peer; None creates the HTTP transport of
            :mod:`neonpay.web_sync` on first use (needs ``neonpay[sync]``).
        conflict_resolver: resolves conflicts; default: the configured strategy.
        max_rounds: how often one record may be re-resolved in one run.

    Attributes:
        conflict_resolver: assignable; a :class:`ConflictResolver` (subclass).

    Use it as an async context manager, or call :meth:`close`, to release the transport.
    """

    def __init__(
        self,
        neonpay: NeonPay,
        config: BotSyncConfig,
        transport: Transport | None = None,
        *,
        conflict_resolver: ConflictResolver | None = None,
        max_rounds: int = DEFAULT_MAX_ROUNDS,
    ) -> None:
        if not isinstance(config, BotSyncConfig):
            raise ConfigurationError("config must be a BotSyncConfig")
        self.neonpay = neonpay
        self.config = config
        self.conflict_resolver = conflict_resolver or ConflictResolver()
        self.max_rounds = max_rounds
        self._transport = transport
        self._check = RecordCheck(neonpay)
        self._lock = asyncio.Lock()
        self._closed = False

    # --- identity -----------------------------------------------------------------------
    @property
    def peer_name(self) -> str:
        """The key of this peer's cursors and history: its name, else its URL.

        Raises:
            ConfigurationError: the config has neither.
        """
        name = self.config.target_bot_name or self.config.webhook_url
        if not name:
            raise ConfigurationError(
                "the sync config needs target_bot_name (or webhook_url) to keep cursors"
            )
        return name

    @property
    def transport(self) -> Transport | None:
        """The transport, once created."""
        return self._transport

    def _get_transport(self) -> Transport:
        if self._transport is None:
            if not self.config.webhook_url:
                raise ConfigurationError(
                    f"peer {self.peer_name!r} has no webhook_url; set it to the peer's sync "
                    "URL (https://host/sync), or pass a transport"
                )
            if importlib.util.find_spec("aiohttp") is None:
                raise MissingExtraError("sync", "syncing over HTTP")
            client = importlib.import_module("neonpay.web_sync.client")
            self._transport = cast(Transport, client.HttpTransport.from_config(self.config))
        return self._transport

    # --- lifecycle ------------------------------------------------------------------------
    async def close(self) -> None:
        """Close the transport. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._transport is not None:
            await self._transport.close()

    async def __aenter__(self) -> SyncManager:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<SyncManager {self.config!r}>"

    # --- the API -------------------------------------------------------------------------------
    async def sync_all(self) -> SyncResult:
        """One full sync with the peer, in the configured direction.

        Never raises for a sync that fails: the result is ``FAILED`` with the reason in
        ``errors`` (and the run is recorded in the history).

        Raises:
            ConfigurationError: the config has no name or URL to identify the peer.
            SyncError: the manager is closed.
        """
        direction = self.config.direction
        return await self._run(pull=direction.pulls, push=direction.pushes)

    async def push_changes(self) -> SyncResult:
        """Only send our changes (what real-time sync does after a local write).

        Raises:
            ConfigurationError: the peer is PULL-only.
        """
        if not self.config.direction.pushes:
            raise ConfigurationError(f"peer {self.peer_name!r} is pull-only: nothing is pushed")
        return await self._run(pull=False, push=True)

    async def pull_changes(self) -> SyncResult:
        """Only fetch the peer's changes.

        Raises:
            ConfigurationError: the peer is PUSH-only.
        """
        if not self.config.direction.pulls:
            raise ConfigurationError(f"peer {self.peer_name!r} is push-only: nothing is pulled")
        return await self._run(pull=True, push=False)

    def list_conflicts(self) -> list[SyncConflict]:
        """The pending (ASK_USER) conflicts with this peer."""
        name = self.peer_name
        return [
            conflict_from_row(row)
            for row in self.neonpay.store.list_conflicts("pending")
            if row.peer == name
        ]

    def resolve_conflict(self, conflict_id: int, choice: Any) -> Record:
        """Resolve a pending conflict: ``"source"``, ``"target"``, ``"merge"`` or a dict
        of fields. See :func:`neonpay.sync.pending.resolve_pending`."""
        return resolve_pending(self.neonpay, conflict_id, choice)

    # --- a run ------------------------------------------------------------------------------
    async def _run(self, *, pull: bool, push: bool) -> SyncResult:
        if self._closed:
            raise SyncError(f"the sync manager for {self.config.target_bot_name!r} is closed")
        name = self.peer_name
        async with self._lock:
            result = SyncResult(peer=name, status=SyncStatus.IN_PROGRESS, started_at=time.time())
            run: _Run | None = None
            sent = received = requests = 0
            try:
                transport = self._get_transport()
                stats = transport.stats
                sent, received, requests = stats.bytes_sent, stats.bytes_received, stats.requests
                run = _Run(result, transport, peer_node=self._known_peer_node())
                if pull:
                    await self._pull(run)
                if push:
                    await self._push(run)
            except asyncio.CancelledError:
                self._fail(result, "the sync was cancelled before it finished")
                raise
            except Exception as exc:  # every failure becomes a FAILED result, never a crash
                self._fail(result, self._describe(exc))
                if not isinstance(exc, NeonPayError):
                    logger.exception("sync with %r failed unexpectedly", name)
            finally:
                if run is not None:
                    stats = run.transport.stats
                    result.bytes_sent = stats.bytes_sent - sent
                    result.bytes_received = stats.bytes_received - received
                    result.requests = stats.requests - requests
                self._finish(result)
        return result

    def _fail(self, result: SyncResult, message: str) -> None:
        result.status = SyncStatus.FAILED
        result.errors.append(message)

    def _finish(self, result: SyncResult) -> None:
        result.finished_at = time.time()
        result.items_synced = result.pushed + result.pulled
        if result.status is not SyncStatus.FAILED:
            result.status = SyncStatus.PARTIAL if result.errors else SyncStatus.COMPLETED
        try:
            self.neonpay.store.add_sync_run(result.to_row())
        except StorageError:
            logger.exception("could not record the sync run with %r", result.peer)
        level = logging.WARNING if result.status is not SyncStatus.COMPLETED else logging.DEBUG
        logger.log(
            level,
            "sync with %r %s: %d pushed, %d pulled, %d conflicts%s",
            result.peer,
            result.status.value,
            result.pushed,
            result.pulled,
            len(result.conflicts),
            f"; {'; '.join(result.errors)}" if result.errors else "",
        )

    def _describe(self, exc: BaseException) -> str:
        name = self.peer_name
        where = f" at {self.config.webhook_url}" if self.config.webhook_url else ""
        if isinstance(exc, PeerUnreachable):
            return (
                f"peer {name!r}{where} is unreachable ({exc}); check that its sync server runs; "
                "nothing is lost, the next sync sends what is pending"
            )
        if isinstance(exc, PeerRejected):
            hint = ""
            if exc.status in (401, 403):
                hint = "; check that both sides use the same webhook secret"
            return f"peer {name!r}{where} refused the sync (HTTP {exc.status}): {exc}{hint}"
        if isinstance(exc, SignatureError):
            return (
                f"the answer of peer {name!r}{where} failed verification ({exc}); check the "
                "webhook secret on both sides"
            )
        if isinstance(exc, StorageError):
            return f"the local store failed during the sync with {name!r}: {exc}"
        if isinstance(exc, NeonPayError):
            return f"sync with {name!r} failed: {exc}"
        return f"sync with {name!r} failed with an internal error: {exc!r}"

    # --- peer identity ---------------------------------------------------------------------------
    def _known_peer_node(self) -> str | None:
        store = self.neonpay.store
        name = self.peer_name
        return (
            store.get_cursor(name, "pull").peer_node_id
            or store.get_cursor(name, "push").peer_node_id
        )

    def _learn_peer_node(self, run: _Run, node_id: str) -> bool:
        """Note the peer's node id; True when it changed (its store was replaced), in which
        case both cursors start again from 0."""
        if node_id == self.neonpay.node_id:
            raise SyncError(
                f"peer {self.peer_name!r} is this very node ({node_id}); check its webhook_url"
            )
        known = run.peer_node
        run.peer_node = node_id
        if known is None or known == node_id:
            return False
        logger.warning(
            "peer %r now has node id %s (was %s): its store was replaced; syncing everything again",
            self.peer_name,
            node_id,
            known,
        )
        store = self.neonpay.store
        store.set_cursor(self.peer_name, "pull", Cursor(0, node_id))
        store.set_cursor(self.peer_name, "push", Cursor(0, node_id))
        return True

    # --- pull -------------------------------------------------------------------------------------
    async def _pull(self, run: _Run) -> None:
        store = self.neonpay.store
        name = self.peer_name
        kinds = list(self.config.kinds)
        since = store.get_cursor(name, "pull").seq
        restarted = False
        while True:
            try:
                page = await run.transport.pull(
                    since, self.config.page_size, kinds, requester=self.neonpay.node_id
                )
            except PeerRejected as exc:
                if since == 0 or restarted or not _may_be_stale_cursor(exc):
                    raise
                # A cursor beyond the peer's head: was its store replaced?
                info = await run.transport.info()
                replaced = self._learn_peer_node(run, info.node_id)
                if not replaced and info.last_seq >= since:
                    raise
                if not replaced:
                    store.set_cursor(name, "pull", Cursor(0, info.node_id))
                since, restarted = 0, True
                continue
            run.contacted = True
            if self._learn_peer_node(run, page.node_id):
                if restarted:
                    raise SyncError(f"peer {name!r} changed its node id during the sync")
                since, restarted = 0, True
                continue
            await self._apply_pulled(run, page.records)
            store.set_cursor(name, "pull", Cursor(page.next_cursor, page.node_id))
            since = page.next_cursor
            if not page.has_more:
                return

    async def _apply_pulled(self, run: _Run, records: Sequence[Record]) -> None:
        kinds = set(self.config.kinds)
        valid: list[Record] = []
        for record in records:
            try:
                if record.kind not in kinds:
                    raise ValidationError("kind", f"{record.kind!r} was not asked for")
                valid.append(self._check.check(record))
            except ValidationError as exc:
                run.result.errors.append(
                    f"refused {_describe_record(record)} from peer {self.peer_name!r}: {exc}"
                )
        if not valid:
            return
        outcomes = self.neonpay.store.apply_batch(valid, make_decide(run.peer_node))
        applied = [
            o.state for o in outcomes if o.outcome is Outcome.APPLIED and o.state is not None
        ]
        run.result.pulled += len(applied)
        if applied:
            notify_applied(self.neonpay, applied, sender=run.peer_node)
        for outcome in outcomes:
            if outcome.outcome is Outcome.CONFLICT:
                await self._resolve(run, outcome.incoming)

    # --- push -------------------------------------------------------------------------------------
    async def _push(self, run: _Run) -> None:
        store = self.neonpay.store
        name = self.peer_name
        if run.peer_node is None:
            info = await run.transport.info()
            run.contacted = True
            self._learn_peer_node(run, info.node_id)
        since = store.get_cursor(name, "push").seq
        kinds = list(self.config.kinds)
        restarted = False
        while True:
            if run.outbox:
                batch, run.outbox = run.outbox, []
                result = await run.transport.push(batch, sender=self.neonpay.node_id)
                run.contacted = True
                await self._handle_pushed(run, batch, result)
                continue
            page = store.feed(
                since, self.config.page_size, kinds=kinds, exclude_received_from=run.peer_node
            )
            records = [r for r in page.records if (r.kind, r.key) not in run.unsettled]
            if not records:
                if page.next_cursor != since:
                    store.set_cursor(name, "push", Cursor(page.next_cursor, run.peer_node))
                if page.records:  # all of them left unsettled in this run: skip them
                    since = page.next_cursor
                    continue
                if run.contacted:
                    return
                # nothing to send and no word from the peer yet: an empty push checks it
            result = await run.transport.push(records, sender=self.neonpay.node_id)
            run.contacted = True
            if self._learn_peer_node(run, result.node_id):
                if restarted:
                    raise SyncError(f"peer {name!r} changed its node id during the sync")
                since, restarted = 0, True
                continue
            await self._handle_pushed(run, records, result)
            store.set_cursor(name, "push", Cursor(page.next_cursor, run.peer_node))
            since = page.next_cursor

    async def _handle_pushed(self, run: _Run, batch: Sequence[Record], result: PushResult) -> None:
        name = self.peer_name
        if len(result.results) != len(batch):
            raise SyncError(
                f"peer {name!r} answered {len(result.results)} results for {len(batch)} records"
            )
        for record, item in zip(batch, result.results, strict=True):
            if (item.kind, item.key) != (record.kind, record.key):
                raise SyncError(f"peer {name!r} answered for other records than those sent")
            if item.outcome is Outcome.APPLIED:
                run.result.pushed += 1
            elif item.outcome is Outcome.REJECTED:
                run.result.errors.append(
                    f"peer {name!r} rejected {_describe_record(record)}: "
                    f"{item.reason or 'no reason given'}"
                )
            elif item.outcome is Outcome.CONFLICT:
                if item.current is None:
                    run.result.errors.append(
                        f"peer {name!r} reported a conflict on {_describe_record(record)} "
                        "without its state"
                    )
                    continue
                try:
                    current = self._check.check(item.current)
                except ValidationError as exc:
                    run.result.errors.append(
                        f"peer {name!r} sent an invalid state of {_describe_record(record)}: {exc}"
                    )
                    continue
                await self._resolve(run, current)

    # --- conflicts ------------------------------------------------------------------------
    async def _resolve(self, run: _Run, remote: Record) -> None:
        """Resolve the conflict between our current state and the peer's ``remote``."""
        store = self.neonpay.store
        name = self.peer_name
        key = (remote.kind, remote.key)
        attempts = run.attempts.get(key, 0) + 1
        run.attempts[key] = attempts
        if attempts > self.max_rounds:
            run.unsettled.add(key)
            run.result.errors.append(
                f"{_describe_record(remote)} kept changing on both sides with peer {name!r}; "
                f"gave up after {self.max_rounds} rounds, the next sync tries again"
            )
            return
        local = store.get(remote.kind, remote.key, include_deleted=True)
        direction = self.config.direction
        if local is None:
            if direction.pulls:
                await self._take(run, remote)
            return
        outcome = decide(remote, local, sender=run.peer_node)
        if outcome.outcome is not Outcome.CONFLICT:  # it moved meanwhile
            if outcome.outcome is Outcome.APPLIED and direction.pulls:
                await self._take(run, remote)
            return
        merged = merge_states(local, remote, self._check.check_fields)
        conflict = SyncConflict.between(
            local, remote, strategy=self.config.conflict_resolution, peer=name, merged=merged
        )
        run.note(conflict)
        try:
            answer = self.conflict_resolver.resolve_conflict(conflict)
        except Exception as exc:  # a user's resolver must not break the run
            run.unsettled.add(key)
            logger.exception("the conflict resolver failed on %s", _describe_record(remote))
            run.result.errors.append(
                f"the conflict resolver failed on {_describe_record(remote)}: {exc!r}"
            )
            return
        if conflict.applied_strategy is not None and answer is conflict.strategy_result:
            await self._apply_strategy(run, conflict, conflict.applied_strategy, local, remote)
            if conflict.outcome in ("pending", "kept_local"):
                run.unsettled.add(key)
            return
        if answer is None:
            conflict.outcome = "unresolved"
            run.unsettled.add(key)
            return
        try:
            fields = (
                self._check.normalized_fields(remote.kind, remote.key, answer) if answer else None
            )
        except ValidationError as exc:
            conflict.outcome = "unresolved"
            run.unsettled.add(key)
            run.result.errors.append(
                f"the conflict resolver chose invalid fields for {_describe_record(remote)}: {exc}"
            )
            return
        conflict.outcome = "custom"
        state = self._new_write(local, remote, fields)
        await self._write(run, local, state, remote)

    async def _apply_strategy(
        self,
        run: _Run,
        conflict: SyncConflict,
        strategy: ConflictResolution,
        local: Record,
        remote: Record,
    ) -> None:
        direction = self.config.direction
        if strategy is ConflictResolution.ASK_USER:
            conflict.id = record_pending(self.neonpay.store, self.peer_name, local, remote)
            conflict.outcome = "pending"
        elif strategy is ConflictResolution.MERGE:
            assert conflict.merged is not None
            conflict.outcome = "merged"
            if direction is SyncDirection.PUSH:
                run.outbox.append(conflict.merged)
            else:
                await self._write(run, local, conflict.merged, remote)
        elif strategy is ConflictResolution.SOURCE_WINS:
            if direction is SyncDirection.PULL:
                conflict.outcome = "kept_local"
                return
            conflict.outcome = "source"
            fields = None if local.deleted else local.fields
            await self._write(run, local, self._new_write(local, remote, fields), remote)
        elif direction is SyncDirection.PUSH:  # TARGET_WINS, but the peer may not write to us
            conflict.outcome = "kept_local"
        else:
            conflict.outcome = "target"
            fields = None if remote.deleted else remote.fields
            await self._write(run, local, self._new_write(local, remote, fields), remote)

    def _new_write(self, local: Record, remote: Record, fields: Mapping[str, Any] | None) -> Record:
        """A resolution written by this node, dominating both sides."""
        store = self.neonpay.store
        return resolution_write(local, remote, fields, node_id=store.node_id, last=store.last_hlc())

    async def _write(self, run: _Run, local: Record, state: Record, remote: Record) -> None:
        """Write a resolution computed against ``local``; if our state moved meanwhile,
        resolve again (bounded by ``max_rounds``)."""
        sender = run.peer_node if state_equal(state, remote) else None
        outcome = self.neonpay.store.apply_batch(
            [state], expecting({(state.kind, state.key): local}, sender=sender)
        )[0]
        if outcome.outcome is Outcome.APPLIED and outcome.state is not None:
            notify_applied(self.neonpay, [outcome.state], sender=run.peer_node)
            return
        await self._resolve(run, remote)

    async def _take(self, run: _Run, remote: Record) -> None:
        outcome = self.neonpay.store.apply_batch([remote], make_decide(run.peer_node))[0]
        if outcome.outcome is Outcome.APPLIED and outcome.state is not None:
            run.result.pulled += 1
            notify_applied(self.neonpay, [outcome.state], sender=run.peer_node)
        elif outcome.outcome is Outcome.CONFLICT:
            await self._resolve(run, remote)


def _may_be_stale_cursor(exc: PeerRejected) -> bool:
    """Whether a refused pull may mean our cursor is beyond the peer's head."""
    return 400 <= exc.status < 500 and exc.status not in (401, 403, 404, 408, 413, 429)


def _describe_record(record: Any) -> str:
    kind = getattr(record, "kind", "?")
    key = getattr(record, "key", "?")
    return f"{kind} {key!r}"
