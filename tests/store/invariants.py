"""Checks every store test relies on: the change log and the records table agree."""

from __future__ import annotations

import itertools

from neonpay.store import Record, Store
from neonpay.sync.clock import HLC

__all__ = ["all_changes", "assert_log_consistent"]

_PAGE = 10_000


def all_changes(store: Store) -> list[Record]:
    """The whole change log, paged."""
    out: list[Record] = []
    while True:
        page = store.changes(out[-1].seq if out else 0, _PAGE)
        out.extend(page)
        if len(page) < _PAGE:
            return out


def assert_log_consistent(store: Store) -> list[Record]:
    """One log entry per change, seqs 1..N without gaps, consistent with the records.

    Also checks, for the changes this node wrote, that each record's version counter
    grew by exactly one per change and that HLC stamps grew with the sequence. Returns
    the change log.
    """
    log = all_changes(store)
    assert [c.seq for c in log] == list(range(1, len(log) + 1))
    assert store.last_seq() == len(log)
    # this node's own stamps grow with the sequence (received ones keep their stamps)
    stamps = [HLC.decode(c.hlc) for c in log if c.origin == store.node_id]
    assert all(a < b for a, b in itertools.pairwise(stamps))
    last: dict[tuple[str, str], Record] = {}
    counts: dict[tuple[str, str], int] = {}
    for change in log:
        ident = (change.kind, change.key)
        counts[ident] = counts.get(ident, 0) + 1
        if change.origin == store.node_id and set(change.version) == {store.node_id}:
            assert change.version[store.node_id] == counts[ident], change
        last[ident] = change
    kinds = {kind for kind, _ in last}
    live = 0
    for kind in kinds:
        records = store.list(kind, include_deleted=True)
        # the live count kept as data agrees with the records
        assert store.count(kind) == sum(not r.deleted for r in records), kind
        assert {r.key for r in records} == {key for k, key in last if k == kind}
        for record in records:
            newest = last[(kind, record.key)]
            assert record.seq == newest.seq
            assert dict(record.fields) == dict(newest.fields)
            assert dict(record.version) == dict(newest.version)
            assert record.hlc == newest.hlc
            assert dict(record.field_hlcs) == dict(newest.field_hlcs)
            assert record.deleted == newest.deleted
            live += not record.deleted
    assert store.count() == live
    return log
