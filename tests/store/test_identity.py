"""A store's node id: renewed on proof of counter reuse, followed by every replica, kept
in the retired list; counters of ours we never issued are refused (SQLite and PostgreSQL)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from neonpay.store import Store, open_store
from neonpay.store.base import ApplyOutcome, Outcome, Record
from neonpay.sync.clock import HLC


@pytest.fixture
def pair(store_url: str) -> Iterator[tuple[Store, Store]]:
    """Two store objects on one database: two replicas of one bot."""
    first = open_store(store_url, node_id="A")
    second = open_store(store_url)
    yield first, second
    first.close()
    second.close()


def _take(incoming: Record, local: Record | None) -> ApplyOutcome:
    return ApplyOutcome(Outcome.APPLIED, incoming, incoming, local)


def _rows(store: Store) -> list[Record]:
    return [*store.list("payment_stage", include_deleted=True), *store.changes(0, 1000)]


def test_a_renewed_node_id_is_used_by_every_replica(pair: tuple[Store, Store]) -> None:
    first, second = pair
    new = first.renew_node_id("restored in a test")
    assert second.node_id == "A"  # read by its next write
    state = second.mutate("payment_stage", "k", lambda _: {"v": 1})
    assert state is not None
    assert state.version == {new: 1}
    assert second.node_id == new
    (entry,) = second.retired_node_ids()
    assert (entry["node_id"], entry["new_node_id"], entry["reason"]) == (
        "A",
        new,
        "restored in a test",
    )


def test_a_counter_of_ours_never_issued_is_refused(pair: tuple[Store, Store]) -> None:
    store, _ = pair
    mine = store.mutate("payment_stage", "k", lambda _: {"v": 1})
    assert mine is not None
    stamp = HLC(int(time.time() * 1000), 0, "B").encode()
    forged = Record(
        kind="payment_stage",
        key="k",
        fields={"v": 2},
        version={"A": 2**53 - 1, "B": 1},
        hlc=stamp,
        field_hlcs={"v": stamp},
        origin="B",
    )
    before = _rows(store)
    (outcome,) = store.apply_batch([forged], _take, from_peer=True)
    assert outcome.outcome is Outcome.REJECTED
    assert outcome.local == mine
    assert _rows(store) == before
    assert store.node_id != "A"
