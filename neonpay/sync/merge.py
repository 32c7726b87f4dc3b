"""The algebra of record states: pure functions, no I/O.

Two kinds of result come out of here:

* **merges** (:func:`merge_states`, :func:`settle`): deterministic and symmetric, so
  both sides of a conflict compute the same state. Their version vector is the pointwise
  maximum of the two (no counter goes up), which is why a merge can be written on either
  node, or on both, without creating a new conflict.
* **new writes** (:func:`resolution_write`): SOURCE_WINS, TARGET_WINS, a custom resolver
  or a person chose the fields. The version covers both sides plus one write of the
  resolving node, a fresh clock stamp marks every field that was in dispute (fields
  both sides agree on keep their stamps), and ``resolution=True`` lets two nodes that
  resolved the same conflict at the same time converge by the later stamp.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from neonpay import _json
from neonpay.store.base import Record
from neonpay.sync.clock import HLC, merge_versions, next_hlc

__all__ = [
    "content_equal",
    "merge_states",
    "order_key",
    "resolution_write",
    "settle",
    "state_equal",
    "with_version",
]

#: Validates merged fields of a kind; raises ValidationError when they break a rule.
FieldCheck = Callable[[str, str, Mapping[str, Any]], Any]


def _canon(value: Any) -> str:
    return _json.dumps_text(value)


def order_key(record: Record) -> tuple[str, bool, str, str, bool]:
    """A total order on states of one record: the later clock stamp first, then a
    deterministic tie-break on the content. Used wherever a whole state must win."""
    return (
        record.hlc,
        record.deleted,
        _canon(dict(record.fields)),
        _canon(dict(record.field_hlcs)),
        record.resolution,
    )


def content_equal(a: Record, b: Record) -> bool:
    """Same fields, tombstone flag, stamps and resolution flag (versions not compared)."""
    return (
        a.deleted == b.deleted
        and a.hlc == b.hlc
        and a.resolution == b.resolution
        and dict(a.fields) == dict(b.fields)
        and dict(a.field_hlcs) == dict(b.field_hlcs)
    )


def state_equal(a: Record, b: Record) -> bool:
    """Same content and same version vector."""
    return dict(a.version) == dict(b.version) and content_equal(a, b)


def with_version(record: Record, version: Mapping[str, int], **changes: Any) -> Record:
    """A copy of ``record`` with another version (and other fields), no local ``seq``."""
    data: dict[str, Any] = {
        "kind": record.kind,
        "key": record.key,
        "fields": dict(record.fields),
        "version": dict(version),
        "hlc": record.hlc,
        "field_hlcs": dict(record.field_hlcs),
        "deleted": record.deleted,
        "origin": record.origin,
        "updated_at": record.updated_at,
        "resolution": record.resolution,
    }
    data.update(changes)
    return Record(**data)


def _join_stamps(a: Mapping[str, str], b: Mapping[str, str]) -> dict[str, str]:
    stamps = dict(a)
    for name, stamp in b.items():
        if stamp > stamps.get(name, ""):
            stamps[name] = stamp
    return dict(sorted(stamps.items()))


def _pick(a: Record, b: Record) -> Record:
    return a if order_key(a) >= order_key(b) else b


def _whole(a: Record, b: Record, *, resolution: bool | None = None) -> Record:
    """The later state whole, with the version covering both."""
    winner = _pick(a, b)
    return with_version(
        winner,
        merge_versions(a.version, b.version),
        updated_at=max(a.updated_at, b.updated_at),
        resolution=winner.resolution if resolution is None else resolution,
    )


def settle(incoming: Record, local: Record) -> Record | None:
    """The deterministic merge of two concurrent states, when one exists without a
    strategy; None when it is a real conflict.

    Settled without asking: promo usage counters (each node's maximum), two tombstones,
    two states with the same fields, and two conflict resolutions (the later stamp wins).
    """
    version = merge_versions(incoming.version, local.version)
    if incoming.kind == "promo_usage":
        counts: dict[str, int] = {}
        for source in (local.fields, incoming.fields):
            for node, count in source.items():
                counts[node] = max(counts.get(node, 0), int(count))
        winner = _pick(incoming, local)
        return with_version(
            winner,
            version,
            fields=dict(sorted(counts.items())),
            deleted=False,
            field_hlcs=_join_stamps(incoming.field_hlcs, local.field_hlcs),
            updated_at=max(incoming.updated_at, local.updated_at),
            resolution=False,
        )
    if incoming.resolution and local.resolution:
        return _whole(incoming, local, resolution=True)
    if incoming.deleted == local.deleted and dict(incoming.fields) == dict(local.fields):
        winner = _pick(incoming, local)
        return with_version(
            winner,
            version,
            field_hlcs=_join_stamps(incoming.field_hlcs, local.field_hlcs),
            updated_at=max(incoming.updated_at, local.updated_at),
            resolution=False,
        )
    return None


def merge_states(local: Record, remote: Record, check: FieldCheck | None = None) -> Record:
    """MERGE: field by field, the later stamp wins; deterministic and symmetric.

    A field changed on one side only keeps that change (its stamp is later than the
    common ancestor's); a field changed on both sides takes the later stamp, ties broken
    by the value's canonical JSON. A tombstone against a live state: the later record
    stamp wins whole. When the field-by-field result breaks a rule of the kind (``check``
    raises), the later state wins whole instead. The version is the pointwise maximum.
    """
    settled = settle(remote, local)
    if settled is not None:
        return settled
    if local.deleted or remote.deleted:
        return _whole(local, remote, resolution=False)
    fields: dict[str, Any] = {}
    stamps: dict[str, str] = {}
    for name in sorted(
        local.fields.keys()
        | remote.fields.keys()
        | local.field_hlcs.keys()
        | remote.field_hlcs.keys()
    ):
        candidates = []
        for side in (local, remote):
            present = name in side.fields
            value = side.fields.get(name)
            candidates.append(
                (side.field_hlcs.get(name, ""), present, _canon(value) if present else "", side)
            )
        stamp, present, _, side = max(candidates, key=lambda c: (c[0], c[1], c[2]))
        if stamp:
            stamps[name] = stamp
        if present:
            fields[name] = side.fields[name]
    merged = with_version(
        _pick(local, remote),
        merge_versions(local.version, remote.version),
        fields=fields,
        field_hlcs=stamps,
        hlc=max(local.hlc, remote.hlc),
        updated_at=max(local.updated_at, remote.updated_at),
        resolution=False,
    )
    if check is not None:
        try:
            check(merged.kind, merged.key, merged.fields)
        except ValueError:  # ValidationError: the mix breaks a cross-field rule
            return _whole(local, remote, resolution=False)
    return merged


def _field(fields: Mapping[str, Any], name: str) -> str | None:
    """A field's value in canonical JSON, None when absent (for exact comparison)."""
    return _canon(fields[name]) if name in fields else None


def resolution_write(
    local: Record,
    remote: Record,
    fields: Mapping[str, Any] | None,
    *,
    node_id: str,
    last: str = "",
    now_ms: Callable[[], int] | None = None,
) -> Record:
    """A new write by ``node_id`` that dominates both states: ``fields`` (None deletes).

    Its version is the pointwise maximum plus one write of ``node_id``; its stamp comes
    after both states' stamps and after ``last`` (the node's latest stamp, see
    :meth:`~neonpay.store.base.Store.last_hlc`), and marks every field that was in
    dispute (a field both live sides agree on and the resolution keeps keeps its stamp).
    """
    version = merge_versions(local.version, remote.version)
    version[node_id] = version.get(node_id, 0) + 1
    seen = HLC.decode(max(local.hlc, remote.hlc))
    previous = HLC.decode(last) if last else None
    stamp = (
        next_hlc(previous, node_id, seen=seen)
        if now_ms is None
        else next_hlc(previous, node_id, seen=seen, now_ms=now_ms)
    ).encode()
    names = set(local.field_hlcs) | set(remote.field_hlcs) | set(fields or {})
    stamps = dict.fromkeys(sorted(names), stamp)
    if fields is not None and not local.deleted and not remote.deleted:
        # A field both sides agree on, and the resolution keeps, was not in dispute: it
        # keeps its stamp, so that a concurrent edit of it elsewhere still wins a later
        # MERGE ("a field changed on one side only keeps that change").
        for name in names:
            value = _field(fields, name)
            if value == _field(local.fields, name) == _field(remote.fields, name):
                kept = max(local.field_hlcs.get(name, ""), remote.field_hlcs.get(name, ""))
                stamps[name] = kept or stamp
    return Record(
        kind=local.kind,
        key=local.key,
        fields=dict(fields) if fields is not None else {},
        version=dict(sorted(version.items())),
        hlc=stamp,
        field_hlcs=stamps,
        deleted=fields is None,
        origin=node_id,
        updated_at=time.time(),
        resolution=True,
    )
