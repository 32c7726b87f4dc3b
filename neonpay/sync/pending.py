"""Conflicts kept for a person (ASK_USER): recording them once, and resolving them.

A resolution is a new write whose version dominates both sides, so it syncs like any
other change and every node converges on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from neonpay.errors import ConflictError, NotFoundError, ValidationError
from neonpay.store.base import ConflictRow, Outcome, Record, Store
from neonpay.sync.clock import Order, compare_versions
from neonpay.sync.config import ConflictResolution
from neonpay.sync.conflicts import SyncConflict
from neonpay.sync.decide import expecting
from neonpay.sync.merge import merge_states, resolution_write
from neonpay.sync.propagation import notify_applied
from neonpay.sync.validation import RecordCheck

if TYPE_CHECKING:
    from neonpay.core.neonpay import NeonPay

__all__ = [
    "CHOICES",
    "conflict_from_row",
    "pending_conflicts",
    "record_pending",
    "resolve_pending",
]

#: The named choices of :func:`resolve_pending` (or pass a dict of fields).
CHOICES = ("source", "target", "merge")
_ATTEMPTS = 5


def record_pending(store: Store, peer: str, local: Record, remote: Record) -> int:
    """Keep the conflict between ``local`` and ``remote`` as pending; returns its id.

    The same conflict (same peer, record and versions) is kept once; an older pending
    conflict on the same record with that peer is closed as ``superseded``.
    """
    for row in store.list_conflicts("pending"):
        if row.peer != peer or row.kind != local.kind or row.key != local.key:
            continue
        if dict(row.local.version) == dict(local.version) and dict(row.remote.version) == dict(
            remote.version
        ):
            return row.id
        store.close_conflict(row.id, "superseded", None)
    return store.add_conflict(peer, local, remote)


def _settled(row: ConflictRow, current: Record | None) -> bool:
    """Whether our ``current`` state already holds the peer's side of ``row``: a later
    state (the peer's own resolution, a merge, a newer write) settled the question."""
    if current is None:
        return False
    return compare_versions(current.version, row.remote.version) in (Order.AFTER, Order.EQUAL)


def pending_conflicts(
    store: Store, peer: str | None = None, *, close_settled: bool = True
) -> list[ConflictRow]:
    """The conflicts still waiting for a person (of one peer, or all), oldest first.

    Each shows our state as it is now (a local edit since the conflict was kept is what
    ``"source"`` keeps). A pending conflict that a later state has settled meanwhile (our
    state now covers the peer's side) is not offered, and is closed as ``superseded``
    unless ``close_settled`` is False.

    Raises:
        StorageError: the store failed.
    """
    rows: list[ConflictRow] = []
    for row in store.list_conflicts("pending"):
        if peer is not None and row.peer != peer:
            continue
        current = store.get(row.kind, row.key, include_deleted=True)
        if _settled(row, current):
            if close_settled:
                store.close_conflict(row.id, "superseded", None)
            continue
        rows.append(row if current is None else replace(row, local=current))
    return rows


def conflict_from_row(row: ConflictRow) -> SyncConflict:
    """A stored conflict as the :class:`SyncConflict` the API shows."""
    conflict = SyncConflict.between(
        row.local,
        row.remote,
        strategy=ConflictResolution.ASK_USER,
        peer=row.peer,
        conflict_id=row.id,
    )
    conflict.outcome = row.status
    return conflict


def resolve_pending(neonpay: NeonPay, conflict_id: int, choice: str | Mapping[str, Any]) -> Record:
    """Resolve a pending conflict and write the resolution; returns the new state.

    ``choice`` is ``"source"`` (keep ours), ``"target"`` (take the peer's), ``"merge"``
    (field by field, the later stamp wins) or a dict of the fields to keep (``{}``
    deletes the record).

    When our state changed since the conflict was kept (a local edit, still concurrent
    with the peer's), ``"source"`` and ``"merge"`` start from our current state.

    Raises:
        NotFoundError: no conflict with that id.
        ConflictError: it is no longer pending; or a later state already settled it (our
            state now includes the peer's side: it is closed as ``superseded`` and
            nothing is written); or the record kept changing.
        ValidationError: the choice is unknown, or the fields break a rule (nothing
            changes).
    """
    store = neonpay.store
    row = store.get_conflict(conflict_id)
    if row is None:
        raise NotFoundError(f"no conflict with id {conflict_id}")
    if row.status != "pending":
        raise ConflictError(f"conflict {conflict_id} is already {row.status}")
    check = RecordCheck(neonpay)
    given: Mapping[str, Any] | None = None
    if isinstance(choice, str):
        if choice not in CHOICES:
            raise ValidationError("choice", f"must be one of {', '.join(CHOICES)} or a dict")
    elif isinstance(choice, Mapping):
        given = check.normalized_fields(row.kind, row.key, choice) if choice else None
    else:
        raise ValidationError("choice", f"must be one of {', '.join(CHOICES)} or a dict")
    for _ in range(_ATTEMPTS):
        current = store.get(row.kind, row.key, include_deleted=True)
        if _settled(row, current):
            latest = store.get_conflict(conflict_id)
            if latest is not None and latest.status != "pending":  # resolved meanwhile
                raise ConflictError(f"conflict {conflict_id} is already {latest.status}")
            store.close_conflict(conflict_id, "superseded", None)
            raise ConflictError(
                f"conflict {conflict_id} on {row.kind} {row.key!r} was already settled by a "
                "later change that includes the peer's side; nothing was written"
            )
        base = current or row.local
        if choice == "source":
            fields = None if base.deleted else base.fields
        elif choice == "target":
            fields = None if row.remote.deleted else row.remote.fields
        elif choice == "merge":
            merged = merge_states(base, row.remote, check.check_fields)
            fields = None if merged.deleted else merged.fields
        else:
            fields = given
        state = resolution_write(
            base, row.remote, fields, node_id=store.node_id, last=store.last_hlc()
        )
        outcome = store.apply_batch([state], expecting({(row.kind, row.key): current}))[0]
        if outcome.outcome is Outcome.APPLIED and outcome.state is not None:
            store.close_conflict(
                conflict_id,
                "resolved",
                {
                    "choice": choice if isinstance(choice, str) else "fields",
                    "deleted": state.deleted,
                    "fields": dict(state.fields),
                },
            )
            notify_applied(neonpay, [outcome.state], sender=None)
            return outcome.state
    raise ConflictError(
        f"{row.kind} {row.key!r} kept changing while conflict {conflict_id} was being "
        "resolved; try again"
    )
