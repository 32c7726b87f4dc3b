"""The write path of the catalog: every local change goes through :class:`Catalog`.

It runs the store's transactional write and then tells listeners (the sync managers)
that a record changed, so real-time sync can push it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from neonpay import _json
from neonpay.store.base import Mutation, Record, Store

__all__ = ["Catalog", "ChangeListener"]

logger = logging.getLogger("neonpay.catalog")

#: Called with the new state after every committed local change.
ChangeListener = Callable[[Record], None]


class Catalog:
    """The store plus change notification."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._listeners: list[ChangeListener] = []

    def add_listener(self, listener: ChangeListener) -> None:
        if listener not in self._listeners:
            self._listeners.append(listener)

    def remove_listener(self, listener: ChangeListener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def notify(self, record: Record) -> None:
        """Tell every listener about ``record``; a failing listener is logged, not raised."""
        self.notify_all((record,))

    def notify_all(self, records: Iterable[Record]) -> None:
        """:meth:`notify` for each of ``records``, in order (no listener: nothing to do)."""
        listeners = list(self._listeners)
        if not listeners:
            return
        for record in records:
            for listener in listeners:
                try:
                    listener(record)
                except Exception:
                    logger.exception("a change listener failed on %s %r", record.kind, record.key)

    def write(
        self, kind: str, key: str, change: Mutation, *, max_live: int | None = None
    ) -> Record | None:
        """Apply ``change`` in one transaction; notify when something changed."""
        changed = False

        def tracked(old: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
            nonlocal changed
            new = change(old)
            if new is not None:  # compare as stored: a tuple is a list once written
                new = _json.loads(_json.dumps(dict(new)))
            changed = (new is None) != (old is None) or (
                new is not None and old is not None and dict(new) != dict(old)
            )
            return new

        record = self.store.mutate(kind, key, tracked, max_live=max_live)
        if changed and record is not None:
            self.notify(record)
        return record

    def write_many(
        self,
        items: Sequence[tuple[str, str, Mapping[str, Any] | None]],
        *,
        max_live: Mapping[str, int] | None = None,
    ) -> list[Record]:
        """Write many records in one transaction (all or nothing); notify the changes."""
        records = self.store.write_many(items, max_live=max_live)
        self.notify_all(records)
        return records

    def delete(self, kind: str, key: str) -> bool:
        """Delete (tombstone) a record; False when it did not exist."""
        existed = False

        def remove(old: Mapping[str, Any] | None) -> None:
            nonlocal existed
            existed = old is not None

        record = self.store.mutate(kind, key, remove)
        if existed and record is not None:
            self.notify(record)
        return existed
