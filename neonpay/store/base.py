"""The store protocol: what every NEONPAY storage backend provides.

A store keeps four families of rows:

* **records** of the syncable kinds (``payment_stage``, ``promo_code``, ``template``,
  ``setting``, and the internal ``promo_usage`` counters), each with its version vector,
  hybrid-logical-clock stamps and tombstone flag;
* the **change log**: one entry per committed change of a record, numbered by a
  gap-free per-store sequence, written in the same transaction as the record;
* the **sync state**: configured peers, per-peer cursors, the history of sync runs,
  pending conflicts and recently seen request ids;
* **payments**: successful Stars payments and refunds, recorded once per charge id.

Every method is synchronous and short (one local transaction); the async layers call
them directly. Backends translate their driver's errors into
:class:`~neonpay.errors.StorageError`.
"""

from __future__ import annotations

import builtins
import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from neonpay._frozen import build

__all__ = [
    "KINDS",
    "SYNC_KINDS",
    "ApplyOutcome",
    "ConflictRow",
    "Consume",
    "Cursor",
    "Decide",
    "FeedPage",
    "Mutation",
    "Outcome",
    "PaymentEffects",
    "PaymentRow",
    "Reader",
    "Record",
    "RecordedPayment",
    "Store",
    "SyncRunRow",
    "checked_outcome",
    "checked_record",
]

#: The record kinds a person edits, in the order the spec lists them.
SYNC_KINDS: tuple[str, ...] = ("payment_stage", "promo_code", "template", "setting")
#: Every kind a store holds: the above plus the per-node promo usage counters.
KINDS: tuple[str, ...] = (*SYNC_KINDS, "promo_usage")


@dataclass(frozen=True)
class Record:
    """One state of a record: its fields plus replication metadata.

    ``fields`` is empty for a tombstone (``deleted=True``). ``field_hlcs`` holds the
    HLC stamp of the last write of each field, which MERGE uses to decide field by
    field. ``seq`` is the local change-log sequence of this state (0 when the state
    came from elsewhere and is not stored yet).
    """

    kind: str
    key: str
    fields: Mapping[str, Any]
    version: Mapping[str, int]
    hlc: str
    field_hlcs: Mapping[str, str]
    deleted: bool = False
    origin: str = ""
    updated_at: float = 0.0
    seq: int = 0
    resolution: bool = False

    def to_wire(self) -> dict[str, Any]:
        """The JSON form exchanged between nodes (no local ``seq``)."""
        return {
            "kind": self.kind,
            "key": self.key,
            "fields": dict(self.fields),
            "version": dict(self.version),
            "hlc": self.hlc,
            "field_hlcs": dict(self.field_hlcs),
            "deleted": self.deleted,
            "origin": self.origin,
            "updated_at": self.updated_at,
            "resolution": self.resolution,
        }


def checked_record(
    kind: str,
    key: str,
    fields: dict[str, Any],
    version: dict[str, int],
    hlc: str,
    field_hlcs: dict[str, str],
    deleted: bool = False,
    origin: str = "",
    updated_at: float = 0.0,
    seq: int = 0,
    resolution: bool = False,
) -> Record:
    """A :class:`Record` from values of the right types, without the dataclass
    ``__init__`` (a frozen dataclass sets each field through ``object.__setattr__``:
    three times slower). For the hot paths that build one per record received or read
    (the wire codec, store rows); the caller has checked every value."""
    return build(
        Record,
        {
            "kind": kind,
            "key": key,
            "fields": fields,
            "version": version,
            "hlc": hlc,
            "field_hlcs": field_hlcs,
            "deleted": deleted,
            "origin": origin,
            "updated_at": updated_at,
            "seq": seq,
            "resolution": resolution,
        },
    )


@dataclass(frozen=True)
class FeedPage:
    """Latest record states changed after a cursor, in sequence order."""

    records: builtins.list[Record]
    next_cursor: int
    has_more: bool


class Outcome(enum.Enum):
    """What applying one incoming record state did."""

    APPLIED = "applied"
    KNOWN = "known"  # equal or older than what we hold: nothing to do
    CONFLICT = "conflict"
    REJECTED = "rejected"


@dataclass(frozen=True)
class ApplyOutcome:
    """A decision about one incoming record, and (after apply) its result.

    For ``APPLIED`` decisions ``state`` is what to write (the incoming state, or a merge
    of it with ours) and ``received_from`` the peer node it came from unchanged, if so.
    For ``CONFLICT``, ``local`` is our state at the time.
    """

    outcome: Outcome
    incoming: Record
    state: Record | None = None
    local: Record | None = None
    received_from: str | None = None
    reason: str = ""


def checked_outcome(
    outcome: Outcome,
    incoming: Record,
    state: Record | None = None,
    local: Record | None = None,
    received_from: str | None = None,
    reason: str = "",
) -> ApplyOutcome:
    """An :class:`ApplyOutcome` without the dataclass ``__init__`` (see
    :func:`checked_record`): one is made per record a sync receives."""
    return build(
        ApplyOutcome,
        {
            "outcome": outcome,
            "incoming": incoming,
            "state": state,
            "local": local,
            "received_from": received_from,
            "reason": reason,
        },
    )


#: Called inside the store's transaction with an incoming state and ours (or None).
Decide = Callable[[Record, "Record | None"], ApplyOutcome]
#: Called inside the store's transaction with current fields (None: absent or deleted);
#: returns the new fields, or None to delete. Raising aborts the write.
Mutation = Callable[["Mapping[str, Any] | None"], "Mapping[str, Any] | None"]


@dataclass(frozen=True)
class Cursor:
    """How far a sync with one peer has got in one direction."""

    seq: int = 0
    peer_node_id: str | None = None


@dataclass(frozen=True)
class SyncRunRow:
    """One finished sync run with one peer."""

    peer: str
    started_at: float
    finished_at: float
    status: str
    items_synced: int = 0
    conflicts: int = 0
    errors: Sequence[str] = ()
    bytes_sent: int = 0
    bytes_received: int = 0
    id: int = 0


@dataclass(frozen=True)
class ConflictRow:
    """A conflict kept for a person to resolve (ASK_USER), or already resolved."""

    id: int
    peer: str
    kind: str
    key: str
    local: Record
    remote: Record
    created_at: float
    status: str = "pending"
    resolved_at: float | None = None
    resolution: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class PaymentRow:
    """A successful Stars payment as recorded by this node."""

    charge_id: str
    user_id: int
    stage_id: str
    amount: int
    currency: str = "XTR"
    promo_code: str | None = None
    payload: str = ""
    created_at: float = 0.0
    refunded_at: float | None = None
    node_id: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)
    #: The payment used its promo code beyond ``max_uses`` (the limit was reached
    #: between pre-checkout and the payment): recorded, counted, and reported.
    promo_over_use: bool = False


#: Reads a record's current state (None: absent or deleted) inside a transaction.
Reader = Callable[[str, str], "Record | None"]


@dataclass(frozen=True)
class PaymentEffects:
    """What a new payment consumes, decided inside the transaction that records it.

    ``payment`` is the row to store (the one given, or a copy flagged, for example as a
    promo over-use); ``writes`` are local writes ``(kind, key, change)`` committed with
    it, each like :meth:`Store.mutate`.
    """

    payment: PaymentRow
    writes: Sequence[tuple[str, str, Mutation]] = ()


#: Called inside :meth:`Store.record_payment`'s transaction, under the write lock, with
#: the new payment and a :data:`Reader`; says what the payment consumes.
Consume = Callable[[PaymentRow, Reader], PaymentEffects]


@dataclass(frozen=True)
class RecordedPayment:
    """A payment recorded by :meth:`Store.record_payment`, with the record states its
    writes committed in the same transaction."""

    payment: PaymentRow
    records: tuple[Record, ...] = ()


@runtime_checkable
class Store(Protocol):
    """The storage protocol shared by the SQLite and PostgreSQL backends."""

    @property
    def url(self) -> str:
        """The store's URL with any password masked."""

    @property
    def node_id(self) -> str:
        """This store's stable identity, created once and kept in the store."""

    def close(self) -> None:
        """Release connections. Idempotent."""

    # --- records -----------------------------------------------------------------
    def get(self, kind: str, key: str, *, include_deleted: bool = False) -> Record | None:
        """One record's current state, or None."""

    def get_many(self, kind: str, keys: Sequence[str]) -> dict[str, Record]:
        """Current states (tombstones included) of the given keys that exist."""

    def list(self, kind: str, *, include_deleted: bool = False) -> builtins.list[Record]:
        """Every record of a kind, ordered by key."""

    def count(self, kind: str | None = None) -> int:
        """How many live records (of a kind, or in all)."""

    def mutate(
        self, kind: str, key: str, change: Mutation, *, max_live: int | None = None
    ) -> Record | None:
        """A local write: apply ``change`` to the current fields in one transaction.

        ``max_live`` refuses a create (ValidationError) when the kind already holds that
        many live records.

        Bumps this node's counter in the version vector, stamps changed fields with a
        new HLC and appends the change log. Returns the new state, the unchanged state
        when ``change`` returned equal fields (no log entry), or None when the record
        was absent and stays absent.
        """

    def write_many(
        self,
        items: Sequence[tuple[str, str, Mapping[str, Any] | None]],
        *,
        max_live: Mapping[str, int] | None = None,
    ) -> builtins.list[Record]:
        """Local writes of many records in one transaction (all or nothing): each item
        ``(kind, key, fields)`` sets the record's fields (None deletes it), as
        :meth:`mutate` would. Returns the new states of the records that changed, in
        order (an item equal to what is stored writes nothing).

        Raises:
            ValidationError: the creates would take a kind beyond its limit
                (``max_live`` or :meth:`set_live_limit`); nothing is written.
        """

    def set_live_limit(self, kind: str, limit: int | None) -> None:
        """Hold at most ``limit`` live records of ``kind`` (None: no limit), on local
        writes and on records that arrive by sync (:meth:`apply_batch` rejects the
        states that would create one more, with the reason). Kept by this store object,
        not in the database."""

    def apply_batch(
        self, incoming: Sequence[Record], decide: Decide, *, from_peer: bool = False
    ) -> builtins.list[ApplyOutcome]:
        """Apply remote (or resolved) states in one transaction.

        ``decide`` sees each incoming state with ours, under the write lock, and says
        what to do. The applied states and their log entries commit together. A state
        that would bring a kind beyond its :meth:`set_live_limit` is ``REJECTED``.

        ``from_peer=True``: the states come from another node and are first checked for
        counter reuse (:mod:`neonpay.sync.identity`). A state holding a counter of this
        store's node id beyond what it issued for the record is ``REJECTED`` (the store
        takes a new node id: it was restored from an older copy, or the peer forged the
        state). A pair of states that proves this store reused counters makes it take a
        new node id (unless the reused id is already retired) and re-stamp its state of
        the record as a new write, concurrent with the peer's, before ``decide`` sees
        it. A pair that proves another node reused counters is ``REJECTED``. Rejected
        outcomes carry our state in ``local``.

        Otherwise (states written here, e.g. resolutions), a state written as a node id
        this store has retired with a counter beyond ours is not written: ``KNOWN`` with
        reason ``"moved"`` (the node id changed meanwhile; compute it again).
        """

    def reconcile(self, states: Sequence[Record]) -> builtins.list[Record]:
        """Look at a peer's states of our records (e.g. the current states it answered a
        push with) for proof that this store reused counters, and act on it as
        :meth:`apply_batch` with ``from_peer=True`` does (new node id, re-stamp); the
        peer's states are not applied. Returns our re-stamped states."""

    def renew_node_id(self, reason: str) -> str:
        """Move this store to a fresh node id now (the old one is retired, with
        ``reason``, and logged at WARNING). Returns the new id."""

    def retired_node_ids(self) -> builtins.list[dict[str, Any]]:
        """The node ids this store had before, oldest first: ``node_id``, ``retired_at``
        (Unix time), ``reason`` and ``new_node_id``."""

    def feed(
        self,
        since: int,
        limit: int,
        *,
        kinds: Sequence[str] | None = None,
        exclude_received_from: str | None = None,
    ) -> FeedPage:
        """Latest states of records changed after ``since``, at most ``limit``.

        Raises:
            ValidationError: ``limit`` is below 1.
        """

    def count_feed(
        self,
        since: int,
        *,
        kinds: Sequence[str] | None = None,
        exclude_received_from: str | None = None,
    ) -> int:
        """How many records :meth:`feed` would return after ``since`` (all pages): the
        changes not yet delivered to a peer whose cursor is ``since``."""

    def changes(
        self, since: int, limit: int, *, kinds: Sequence[str] | None = None
    ) -> builtins.list[Record]:
        """Change-log entries after ``since`` in order (every committed change).

        Raises:
            ValidationError: ``limit`` is below 1.
        """

    def last_seq(self) -> int:
        """The sequence number of the newest change-log entry (0 if none)."""

    def last_hlc(self) -> str:
        """The latest clock stamp this store issued or received (``""`` if none), so that
        a stamp taken outside :meth:`mutate` can come after it."""

    # --- metadata ------------------------------------------------------------------
    def get_meta(self, name: str) -> str | None: ...
    def set_meta(self, name: str, value: str) -> None: ...
    def setdefault_meta(self, name: str, value: str) -> str:
        """Store ``value`` unless ``name`` is set; return what the store holds. Atomic, so
        replicas creating the same value at once all end up with one of them."""

    # --- sync state -----------------------------------------------------------------
    def save_peer(self, name: str, config: Mapping[str, Any]) -> None: ...
    def get_peer(self, name: str) -> dict[str, Any] | None: ...
    def list_peers(self) -> dict[str, dict[str, Any]]: ...
    def delete_peer(self, name: str) -> bool: ...
    def get_cursor(self, peer: str, direction: str) -> Cursor: ...
    def set_cursor(self, peer: str, direction: str, cursor: Cursor) -> None: ...
    def add_sync_run(self, run: SyncRunRow) -> int: ...
    def list_sync_runs(
        self, peer: str | None = None, limit: int = 100
    ) -> builtins.list[SyncRunRow]: ...
    def sync_totals(self, peer: str) -> dict[str, Any]: ...
    def add_conflict(self, peer: str, local: Record, remote: Record) -> int: ...
    def list_conflicts(self, status: str | None = "pending") -> builtins.list[ConflictRow]: ...
    def get_conflict(self, conflict_id: int) -> ConflictRow | None: ...
    def close_conflict(
        self, conflict_id: int, status: str, resolution: Mapping[str, Any] | None
    ) -> None: ...
    def remember_request_id(self, request_id: str, now: float, horizon: float) -> bool:
        """Record a request id; False when it was already seen after ``now - horizon``."""

    # --- payments ----------------------------------------------------------------------
    def add_payment(self, payment: PaymentRow) -> bool:
        """Record a payment; False (and no change) when its charge id is known."""

    def record_payment(
        self, payment: PaymentRow, consume: Consume | None = None
    ) -> RecordedPayment | None:
        """Record a payment and what it consumes in one transaction; None (and no change)
        when its charge id is known.

        ``consume`` runs under the write lock, so a limit it checks (a promo code's
        ``max_uses``) holds against every writer of this store; the payment and its
        writes commit together or not at all.
        """

    def promo_over_uses(self) -> dict[str, int]:
        """Per promo code, how many payments recorded here used it beyond its limit."""

    def get_payment(self, charge_id: str) -> PaymentRow | None: ...
    def mark_refunded(self, charge_id: str, at: float) -> bool: ...
    def list_payments(
        self,
        *,
        user_id: int | None = None,
        stage_id: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int | None = None,
    ) -> builtins.list[PaymentRow]: ...
