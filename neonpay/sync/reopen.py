"""Conflicts a run left open, kept in the store so that the next run meets them again.

When a conflict is not settled in a run (the resolver raised, chose invalid fields or
returned None, or the record kept changing), both cursors still move past it: without a
note, neither side would ever send that record again until someone edits it, and the two
nodes would differ for good. So the peer's state is kept here, per peer, and the next run
resolves it again against our state of that moment (a state that has meanwhile been
superseded is simply found ``known`` and dropped).
"""

from __future__ import annotations

from collections.abc import Mapping

from neonpay import _json
from neonpay.errors import ValidationError
from neonpay.store.base import Record, Store
from neonpay.store.sql import record_from_wire

__all__ = ["forget_open", "has_open", "load_open", "save_open"]

OpenConflicts = dict[tuple[str, str], Record]


def _meta_name(peer: str) -> str:
    return f"sync_open_conflicts:{peer}"


def has_open(store: Store, peer: str) -> bool:
    """Whether earlier runs with ``peer`` kept any conflict open."""
    return bool(store.get_meta(_meta_name(peer)))


def load_open(store: Store, peer: str, peer_node: str | None) -> OpenConflicts:
    """The peer states kept by earlier runs with ``peer`` (empty when they were kept for
    another node id: the peer's store was replaced since)."""
    text = store.get_meta(_meta_name(peer))
    if not text:
        return {}
    try:
        data = _json.loads(text)
        if peer_node is not None and data.get("peer_node") not in (None, peer_node):
            return {}
        records = [record_from_wire(item) for item in data["records"]]
    except (ValueError, KeyError, TypeError, AttributeError, ValidationError):
        return {}  # unreadable: the conflicts are met again when the records change
    return {(r.kind, r.key): r for r in records}


def save_open(
    store: Store, peer: str, peer_node: str | None, records: Mapping[tuple[str, str], Record]
) -> None:
    """Keep ``records`` (the peer's states) for the next run with ``peer``.

    Raises:
        StorageError: the store failed.
    """
    text = ""
    if records:
        text = _json.dumps_text(
            {"peer_node": peer_node, "records": [r.to_wire() for r in records.values()]}
        )
    store.set_meta(_meta_name(peer), text)


def forget_open(store: Store, peer: str) -> None:
    """Drop what was kept for ``peer`` (it was removed).

    Raises:
        StorageError: the store failed.
    """
    if store.get_meta(_meta_name(peer)):
        store.set_meta(_meta_name(peer), "")
