"""Building blocks for store tests: local writes and states as a peer would send them."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from neonpay.store import ApplyOutcome, Outcome, Record, Store
from neonpay.sync.clock import HLC, Order, compare_versions

__all__ = ["PEER", "by_version", "put", "remote", "remove"]

#: The node id of the pretend peer.
PEER = "peer-b"


def put(store: Store, kind: str, key: str, fields: dict[str, object]) -> Record | None:
    """Write ``fields`` as the whole new state of a record."""
    return store.mutate(kind, key, lambda old: fields)


def remove(store: Store, kind: str, key: str) -> Record | None:
    """Delete a record (a tombstone when it existed)."""
    return store.mutate(kind, key, lambda old: None)


def remote(
    kind: str,
    key: str,
    fields: Mapping[str, Any],
    version: Mapping[str, int],
    *,
    wall_ms: int | None = None,
    node: str = PEER,
    deleted: bool = False,
) -> Record:
    """A record state as another node would send it."""
    stamp = HLC(wall_ms if wall_ms is not None else int(time.time() * 1000), 0, node).encode()
    return Record(
        kind=kind,
        key=key,
        fields=dict(fields),
        version=dict(version),
        hlc=stamp,
        field_hlcs=dict.fromkeys(fields, stamp),
        deleted=deleted,
        origin=node,
        updated_at=time.time(),
    )


def by_version(incoming: Record, local: Record | None) -> ApplyOutcome:
    """The sync engine's rule: dominating -> apply, dominated or equal -> known, else conflict."""
    order = Order.AFTER if local is None else compare_versions(incoming.version, local.version)
    if order is Order.AFTER:
        return ApplyOutcome(
            Outcome.APPLIED, incoming, state=incoming, local=local, received_from=incoming.origin
        )
    if order is Order.CONCURRENT:
        return ApplyOutcome(Outcome.CONFLICT, incoming, local=local)
    return ApplyOutcome(Outcome.KNOWN, incoming, local=local)
