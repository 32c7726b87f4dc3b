"""Syncing this bot (the *source*) with one peer (the *target*): :class:`SyncManager`.

A run pulls the peer's changes after our pull cursor, then pushes ours after the push
cursor, page by page. Cursors live in the store and move only once a page is applied
(pull) or acknowledged (push), so a crash repeats a page, which is harmless. Conflicts are
resolved here, on the source, and the resolution is written and pushed in the same run.

How a conflict is resolved depends on the strategy and on the direction, because data
may only flow where the direction allows (a PUSH peer never writes to us, a PULL peer
never receives from us):

* MERGE: the field-by-field merge (no counter goes up). BIDIRECTIONAL: written here and
  pushed. PULL: written here. PUSH: written here and pushed when it keeps only our
  fields; both sides left as they are when it needs the peer's.
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
import functools
import importlib
import importlib.util
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar, cast

from neonpay._gcpause import collection_paused
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
from neonpay.sync.identity import reuser
from neonpay.sync.merge import merge_states, resolution_write, state_equal
from neonpay.sync.pending import (
    conflict_from_row,
    pending_conflicts,
    record_pending,
    resolve_pending,
)
from neonpay.sync.propagation import notify_applied
from neonpay.sync.protocol import ChangesPage, PushResult, Transport
from neonpay.sync.reopen import has_open, load_open, save_open
from neonpay.sync.results import SyncResult, SyncStatus
from neonpay.sync.validation import MAX_CLOCK_AHEAD, RecordCheck

if TYPE_CHECKING:
    from types import TracebackType

    from neonpay.core.neonpay import NeonPay

__all__ = ["SyncManager"]

logger = logging.getLogger("neonpay.sync")
_T = TypeVar("_T")

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
    #: the peer's states of conflicts left open, to be met again by the next run
    reopen: dict[tuple[str, str], Record] = field(default_factory=dict)
    #: push with no echo suppression until the push cursor reaches this sequence
    resend_until: int = 0
    #: records refused by the peer and sent once more in this run
    retried: set[tuple[str, str]] = field(default_factory=set)
    #: this run wrote states (resolutions, re-stamps) that its push must still carry
    wrote: bool = False

    def leave_open(self, remote: Record) -> None:
        """Skip this record for the rest of the run, and meet it again next run."""
        key = (remote.kind, remote.key)
        self.unsettled.add(key)
        self.reopen[key] = remote

    def note(self, conflict: SyncConflict) -> None:
        """Report one conflict per record per run (the latest round of it)."""
        key = (conflict.item_type, conflict.item_id)
        conflicts = self.result.conflicts
        for index, known in enumerate(conflicts):
            if (known.item_type, known.item_id) == key:
                conflicts[index] = conflict
                return
        conflicts.append(conflict)


@dataclass
class _InFlight:
    """A page pushed whose answer has not been handled yet."""

    task: asyncio.Future[PushResult]
    records: list[Record]
    next_cursor: int  # the push cursor once the page is acknowledged

    async def discard(self) -> None:
        """Stop waiting for the answer (the peer may still apply the page: harmless, a
        page sent again is answered ``known``)."""
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


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
            self._transport = cast(
                Transport,
                client.HttpTransport.from_config(self.config, node_id=self.neonpay.node_id),
            )
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
        """The pending (ASK_USER) conflicts with this peer (those a later state settled
        meanwhile are closed, not listed)."""
        return [
            conflict_from_row(row) for row in pending_conflicts(self.neonpay.store, self.peer_name)
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
            kept: dict[tuple[str, str], Record] = {}
            sent = received = requests = 0
            try:
                transport = self._get_transport()
                # a stamp may be as far ahead as the link's signature tolerance allows
                self._check.max_clock_ahead = float(
                    getattr(transport, "tolerance", MAX_CLOCK_AHEAD)
                )
                stats = transport.stats
                sent, received, requests = stats.bytes_sent, stats.bytes_received, stats.requests
                run = _Run(result, transport, peer_node=await _off_loop(self._known_peer_node))
                run.resend_until = await _off_loop(self._load_resend)
                kept = await _off_loop(load_open, self.neonpay.store, name, run.peer_node)
                run.reopen.update(kept)
                if pull:
                    try:
                        await self._pull(run)
                    except PeerRejected as exc:
                        # The peer's grant rules out our reading (403): what we may
                        # send it still goes; the refusal is reported.
                        if exc.status != 403 or not push:
                            raise
                        result.errors.append(self._describe(exc))
                await self._reopen(run, kept)
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
                    await _off_loop(self._keep_open, run, kept)
                    stats = run.transport.stats
                    result.bytes_sent = stats.bytes_sent - sent
                    result.bytes_received = stats.bytes_received - received
                    result.requests = stats.requests - requests
                await _off_loop(self._finish, result)
        return result

    def _keep_open(self, run: _Run, kept: Mapping[tuple[str, str], Record]) -> None:
        """Save the conflicts this run left open (and those it did not get to)."""
        if not kept and not run.reopen:
            return
        try:
            save_open(self.neonpay.store, self.peer_name, run.peer_node, run.reopen)
        except StorageError as exc:
            run.result.errors.append(
                f"could not keep the open conflicts with {self.peer_name!r} for the next "
                f"sync: {exc}"
            )

    async def _reopen(self, run: _Run, kept: Mapping[tuple[str, str], Record]) -> None:
        """Meet again the conflicts earlier runs left open (unless this run's pull already
        met a newer state of the record)."""
        kinds = set(self.config.kinds)
        for key, remote in list(kept.items()):
            if key in run.unsettled or run.reopen.get(key) is not remote:
                continue
            del run.reopen[key]
            if remote.kind in kinds:
                await self._resolve(run, remote)

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
        # The HTTP transport's messages already name the peer, its URL and what to check:
        # they are passed on as they are, not wrapped in the same words again.
        if isinstance(exc, (PeerUnreachable, PeerRejected)) and repr(name) in str(exc):
            return str(exc)
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
    def has_changes_to_push(self) -> bool:
        """Whether a push now would have anything to do: states past the push cursor
        that the peer wants (and did not send us), states to send again to a peer that
        lost them, conflicts kept open, or a peer never contacted. Blocking (store
        reads): automatic sync calls it in a worker thread before a push run."""
        store = self.neonpay.store
        name = self.peer_name
        peer_node = self._known_peer_node()
        if peer_node is None:
            return True
        since = store.get_cursor(name, "push").seq
        if since < self._load_resend() or has_open(store, name):
            return True
        kinds = list(self.config.kinds)
        return store.count_feed(since, kinds=kinds, exclude_received_from=peer_node) > 0

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
        run.reopen.clear()  # they were the old store's states
        return True

    def _peer_restored(self, run: _Run, node_id: str) -> None:
        """The peer kept its node id but its change log is shorter than our cursor: its
        store was put back to an older copy. Whatever we sent it since may be gone,
        including the states it had sent us itself: both cursors start again from 0, and
        until the push has caught up with our log as it is now, states received from the
        peer are sent back too."""
        logger.warning(
            "peer %r (%s) has a shorter change log than before: its store was restored "
            "from an older copy; sending everything again",
            self.peer_name,
            node_id,
        )
        store = self.neonpay.store
        run.resend_until = store.last_seq()
        store.set_meta(self._resend_meta, str(run.resend_until))
        store.set_cursor(self.peer_name, "pull", Cursor(0, node_id))
        store.set_cursor(self.peer_name, "push", Cursor(0, node_id))

    @property
    def _resend_meta(self) -> str:
        return f"sync_resend_until:{self.peer_name}"

    def _load_resend(self) -> int:
        text = self.neonpay.store.get_meta(self._resend_meta)
        return int(text) if text and text.isdigit() else 0

    # --- pull -------------------------------------------------------------------------------------
    async def _pull(self, run: _Run) -> None:
        store = self.neonpay.store
        name = self.peer_name
        kinds = list(self.config.kinds)
        since = (await _off_loop(store.get_cursor, name, "pull")).seq
        restarted = False
        # The next page is asked for while this one is applied (one request ahead); its
        # answer, or its failure, is taken only after this page's cursor is stored.
        ahead: asyncio.Future[ChangesPage] | None = None
        try:
            while True:
                try:
                    if ahead is not None:
                        asked, ahead = ahead, None
                        page = await asked
                    else:
                        page = await run.transport.pull(
                            since, self.config.page_size, kinds, requester=self.neonpay.node_id
                        )
                except PeerRejected as exc:
                    if since == 0 or restarted or not _may_be_stale_cursor(exc):
                        raise
                    # A cursor beyond the peer's head: was its store replaced?
                    info = await run.transport.info()
                    replaced = await _off_loop(self._learn_peer_node, run, info.node_id)
                    if not replaced and info.last_seq >= since:
                        raise
                    if not replaced:
                        await _off_loop(self._peer_restored, run, info.node_id)
                    since, restarted = 0, True
                    continue
                run.contacted = True
                if await _off_loop(self._learn_peer_node, run, page.node_id):
                    if restarted:
                        raise SyncError(f"peer {name!r} changed its node id during the sync")
                    since, restarted = 0, True
                    continue
                if page.has_more and page.next_cursor <= since:
                    raise SyncError(
                        f"peer {name!r} said more changes follow but its cursor did not move "
                        f"past {since}; the peer is misbehaving"
                    )
                if page.has_more:
                    ahead = asyncio.ensure_future(
                        run.transport.pull(
                            page.next_cursor,
                            self.config.page_size,
                            kinds,
                            requester=self.neonpay.node_id,
                        )
                    )
                    await asyncio.sleep(0)  # let it go out before the page is applied
                await self._apply_pulled(run, page.records)
                await _off_loop(
                    store.set_cursor, name, "pull", Cursor(page.next_cursor, page.node_id)
                )
                since = page.next_cursor
                if not page.has_more:
                    return
        finally:
            if ahead is not None:  # not needed after a failure: stop waiting for it
                ahead.cancel()
                await asyncio.gather(ahead, return_exceptions=True)

    async def _apply_pulled(self, run: _Run, records: Sequence[Record]) -> None:
        conflicts = await _off_loop(self._store_pulled_paused, run, records)
        for remote in conflicts:
            await self._resolve(run, remote)

    def _store_pulled_paused(self, run: _Run, records: Sequence[Record]) -> list[Record]:
        """:meth:`_store_pulled` in a worker thread, the collector paused: the page's
        objects die together (see :mod:`neonpay._gcpause`)."""
        with collection_paused():
            return self._store_pulled(run, records)

    def _store_pulled(self, run: _Run, records: Sequence[Record]) -> list[Record]:
        """Check and apply a pulled page; the peer's states that conflict with ours."""
        kinds = set(self.config.kinds)
        valid: list[Record] = []
        # the HTTP transport's pages come from the wire codec (see RecordCheck.check)
        wire_checked = getattr(type(run.transport), "wire_checked", False) is True
        for record in records:
            try:
                if record.kind not in kinds:
                    raise ValidationError("kind", f"{record.kind!r} was not asked for")
                valid.append(self._check.check(record, wire_checked=wire_checked))
            except ValidationError as exc:
                run.result.errors.append(
                    f"refused {_describe_record(record)} from peer {self.peer_name!r}: {exc}"
                )
        if not valid:
            return []
        outcomes = self.neonpay.store.apply_batch(valid, make_decide(run.peer_node), from_peer=True)
        applied = [
            o.state for o in outcomes if o.outcome is Outcome.APPLIED and o.state is not None
        ]
        run.result.pulled += len(applied)
        if applied:
            notify_applied(self.neonpay, applied, sender=run.peer_node)
        for outcome in outcomes:
            # counter reuse (neonpay.sync.identity), or a stage beyond max_stages
            if outcome.outcome is Outcome.REJECTED:
                self._refused(run, outcome.incoming, outcome.local, outcome.reason)
        return [o.incoming for o in outcomes if o.outcome is Outcome.CONFLICT]

    def _refused(self, run: _Run, remote: Record, local: Record | None, reason: str) -> None:
        """The store refused a pulled state: counter reuse (neonpay.sync.identity), or a
        create beyond a catalog limit (``max_stages``).

        When the peer itself reused the counters (its store was restored), our state
        goes to it in this run: the peer finds out from it, takes a new node id and
        answers with its re-stamped state. Otherwise (this store took a new node id, or
        a third node reused them) it is reported and met again by the next run."""
        key = (remote.kind, remote.key)
        if (
            local is not None
            and self.config.direction.pushes
            and key not in run.retried
            and reuser(remote, local) == run.peer_node
        ):
            run.retried.add(key)
            run.outbox.append(local)
            return
        run.leave_open(remote)
        run.result.errors.append(
            f"refused {_describe_record(remote)} from peer {self.peer_name!r}: {reason}"
        )

    # --- push -------------------------------------------------------------------------------------
    async def _push(self, run: _Run) -> None:
        store = self.neonpay.store
        name = self.peer_name
        if run.peer_node is None:
            info = await run.transport.info()
            run.contacted = True
            await _off_loop(self._learn_peer_node, run, info.node_id)
        since = (await _off_loop(store.get_cursor, name, "push")).seq
        # A run sends what was written when it began: writes that come meanwhile go in
        # the next run (real-time sync coalesces a burst instead of chasing it page by page).
        stop_at = await _off_loop(store.last_seq)
        kinds = list(self.config.kinds)
        restarted = False
        # Pipelined: page k+1 is read and sent while the peer applies page k (at most two
        # in flight). Answers are handled, and the cursor moved, strictly in page order;
        # after a failure the cursor stays at the last page fully acknowledged.
        inflight: _InFlight | None = None
        try:
            while True:
                if inflight is not None and (run.outbox or inflight.task.done()):
                    done, inflight = inflight, None
                    if await self._acknowledge(run, done):
                        if restarted:
                            raise SyncError(f"peer {name!r} changed its node id during the sync")
                        since, restarted = 0, True
                    continue
                if run.outbox:
                    batch, run.outbox = run.outbox, []
                    result = await run.transport.push(batch, sender=self.neonpay.node_id)
                    run.contacted = True
                    await self._handle_pushed(run, batch, result)
                    continue
                if since >= stop_at and (run.contacted or inflight is not None) and not run.outbox:
                    if run.wrote:  # what this run wrote itself goes in this run
                        run.wrote = False
                        stop_at = await _off_loop(store.last_seq)
                        continue
                    if inflight is not None:  # settle what is in flight, then stop
                        done, inflight = inflight, None
                        if await self._acknowledge(run, done):
                            if restarted:
                                raise SyncError(
                                    f"peer {name!r} changed its node id during the sync"
                                )
                            since, restarted = 0, True
                        continue
                    return
                echo = since < run.resend_until  # the peer lost what it had: its own states too
                page = await _off_loop(
                    functools.partial(
                        store.feed,
                        since,
                        self.config.page_size,
                        kinds=kinds,
                        exclude_received_from=None if echo else run.peer_node,
                    )
                )
                records = [r for r in page.records if (r.kind, r.key) not in run.unsettled]
                if not records:
                    if inflight is not None:  # settle what is in flight first, then look again
                        done, inflight = inflight, None
                        if await self._acknowledge(run, done):
                            if restarted:
                                raise SyncError(
                                    f"peer {name!r} changed its node id during the sync"
                                )
                            since, restarted = 0, True
                        continue
                    if page.next_cursor != since:
                        await _off_loop(
                            store.set_cursor, name, "push", Cursor(page.next_cursor, run.peer_node)
                        )
                    if page.records:  # all of them left unsettled in this run: skip them
                        since = page.next_cursor
                        continue
                    if run.contacted:
                        if run.resend_until and since >= run.resend_until:
                            await _off_loop(store.set_meta, self._resend_meta, "")  # caught up
                            run.resend_until = 0
                        return
                    # nothing to send and no word from the peer yet: an empty push checks it
                sending = _InFlight(
                    asyncio.ensure_future(run.transport.push(records, sender=self.neonpay.node_id)),
                    records,
                    page.next_cursor,
                )
                if inflight is not None:
                    done, inflight = inflight, sending
                    if await self._acknowledge(run, done):
                        if restarted:
                            raise SyncError(f"peer {name!r} changed its node id during the sync")
                        await inflight.discard()  # it went to the replaced store
                        since, restarted, inflight = 0, True, None
                        continue
                else:
                    inflight = sending
                since = page.next_cursor
        finally:
            if inflight is not None:
                await inflight.discard()

    async def _acknowledge(self, run: _Run, sent: _InFlight) -> bool:
        """Handle the answer to a pushed page and move the push cursor past it; True when
        the peer turned out to have a new node id (nothing handled then)."""
        result = await sent.task
        run.contacted = True
        if await _off_loop(self._learn_peer_node, run, result.node_id):
            return True
        await self._handle_pushed(run, sent.records, result)
        await _off_loop(
            self.neonpay.store.set_cursor,
            self.peer_name,
            "push",
            Cursor(sent.next_cursor, run.peer_node),
        )
        return False

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
                if item.current is not None and await _off_loop(
                    self._reused_here, run, record, item.current
                ):
                    continue  # re-stamped: the push carries it again
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
                # did we reuse counters?
                restamped = await _off_loop(self.neonpay.store.reconcile, [current])
                if restamped:
                    run.wrote = True
                    notify_applied(self.neonpay, restamped, sender=None)
                await self._resolve(run, current)

    def _reused_here(self, run: _Run, sent: Record, current: Any) -> bool:
        """The peer refused ``sent`` and answered its own state ``current``: when the two
        prove that this store reused counters (it was restored from an older copy), the
        store takes a new node id and re-stamps its state, which the push then carries.
        When the peer refused a counter of its own node id that it never issued, and has
        taken a new id since, ``sent`` goes once more in this run."""
        try:
            state = self._check.check(current)
        except ValidationError:
            return False
        store = self.neonpay.store
        restamped = store.reconcile([state])
        if restamped:
            run.wrote = True
            notify_applied(self.neonpay, restamped, sender=None)
            return True
        key = (sent.kind, sent.key)
        if key in run.retried:
            return False
        run.retried.add(key)
        mine = store.get(sent.kind, sent.key, include_deleted=True)
        if mine is None:
            return False
        run.outbox.append(mine)
        return True

    # --- conflicts ------------------------------------------------------------------------
    async def _resolve(self, run: _Run, remote: Record) -> None:
        """Resolve the conflict between our current state and the peer's ``remote``."""
        store = self.neonpay.store
        name = self.peer_name
        key = (remote.kind, remote.key)
        attempts = run.attempts.get(key, 0) + 1
        run.attempts[key] = attempts
        if attempts > self.max_rounds:
            run.leave_open(remote)
            run.result.errors.append(
                f"{_describe_record(remote)} kept changing on both sides with peer {name!r}; "
                f"gave up after {self.max_rounds} rounds, the next sync tries again"
            )
            return
        local = await _off_loop(
            functools.partial(store.get, remote.kind, remote.key, include_deleted=True)
        )
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
            run.leave_open(remote)
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
            run.leave_open(remote)
            return
        try:
            fields = (
                self._check.normalized_fields(remote.kind, remote.key, answer) if answer else None
            )
        except ValidationError as exc:
            conflict.outcome = "unresolved"
            run.leave_open(remote)
            run.result.errors.append(
                f"the conflict resolver chose invalid fields for {_describe_record(remote)}: {exc}"
            )
            return
        conflict.outcome = "custom"
        state = await _off_loop(self._new_write, local, remote, fields)
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
            conflict.id = await _off_loop(
                record_pending, self.neonpay.store, self.peer_name, local, remote
            )
            conflict.outcome = "pending"
        elif strategy is ConflictResolution.MERGE:
            assert conflict.merged is not None
            conflict.outcome = "merged"
            merged = conflict.merged
            takes_nothing_from_peer = merged.deleted == local.deleted and dict(
                merged.fields
            ) == dict(local.fields)
            if direction is SyncDirection.PUSH and not takes_nothing_from_peer:
                # The merge needs the peer's fields, which a PUSH link may not write here.
                # Pushing it alone would leave the peer holding a state we never stored,
                # marked as received from us, so it would never come back: both sides stay
                # as they are until a link that may carry the merge both ways settles it.
                conflict.outcome = "kept_local"
            else:
                # Also on a PUSH link when the merge keeps our fields: only the version
                # changes here, and storing it keeps the peer from holding a state we never
                # stored (it would mark it as received from us and never send it back).
                await self._write(run, local, merged, remote)
        elif strategy is ConflictResolution.SOURCE_WINS:
            if direction is SyncDirection.PULL:
                conflict.outcome = "kept_local"
                return
            conflict.outcome = "source"
            fields = None if local.deleted else local.fields
            state = await _off_loop(self._new_write, local, remote, fields)
            await self._write(run, local, state, remote)
        elif direction is SyncDirection.PUSH:  # TARGET_WINS, but the peer may not write to us
            conflict.outcome = "kept_local"
        else:
            conflict.outcome = "target"
            fields = None if remote.deleted else remote.fields
            state = await _off_loop(self._new_write, local, remote, fields)
            await self._write(run, local, state, remote)

    def _new_write(self, local: Record, remote: Record, fields: Mapping[str, Any] | None) -> Record:
        """A resolution written by this node, dominating both sides."""
        store = self.neonpay.store
        return resolution_write(local, remote, fields, node_id=store.node_id, last=store.last_hlc())

    async def _write(self, run: _Run, local: Record, state: Record, remote: Record) -> None:
        """Write a resolution computed against ``local``; if our state moved meanwhile,
        resolve again (bounded by ``max_rounds``)."""
        sender = run.peer_node if state_equal(state, remote) else None
        outcome = (
            await _off_loop(
                self.neonpay.store.apply_batch,
                [state],
                expecting({(state.kind, state.key): local}, sender=sender),
            )
        )[0]
        if outcome.outcome is Outcome.APPLIED and outcome.state is not None:
            run.wrote = True
            notify_applied(self.neonpay, [outcome.state], sender=run.peer_node)
            return
        await self._resolve(run, remote)

    async def _take(self, run: _Run, remote: Record) -> None:
        outcome = (
            await _off_loop(
                functools.partial(
                    self.neonpay.store.apply_batch,
                    [remote],
                    make_decide(run.peer_node),
                    from_peer=True,
                )
            )
        )[0]
        if outcome.outcome is Outcome.APPLIED and outcome.state is not None:
            run.result.pulled += 1
            notify_applied(self.neonpay, [outcome.state], sender=run.peer_node)
        elif outcome.outcome is Outcome.CONFLICT:
            await self._resolve(run, remote)
        elif outcome.outcome is Outcome.REJECTED:
            self._refused(run, remote, outcome.local, outcome.reason)


async def _off_loop(fn: Callable[..., _T], /, *args: Any) -> _T:
    """``fn(*args)`` in a worker thread, so the store never stalls the event loop. A run
    cancelled meanwhile waits for the call to end before it goes on cancelling, so that
    nothing of the run (its state, its result, its per-peer lock) is touched by a thread
    after the run has ended."""
    task = asyncio.ensure_future(asyncio.to_thread(fn, *args))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await asyncio.wait({task})
        raise


def _may_be_stale_cursor(exc: PeerRejected) -> bool:
    """Whether a refused pull may mean our cursor is beyond the peer's head."""
    return 400 <= exc.status < 500 and exc.status not in (401, 403, 404, 408, 413, 429)


def _describe_record(record: Any) -> str:
    kind = getattr(record, "kind", "?")
    key = getattr(record, "key", "?")
    return f"{kind} {key!r}"
