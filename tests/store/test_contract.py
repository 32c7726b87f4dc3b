"""The store contract: every test runs on a SQLite file and on PostgreSQL (``store_url``)."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from neonpay.errors import NotFoundError, StorageError, ValidationError
from neonpay.store import (
    ApplyOutcome,
    Cursor,
    Outcome,
    PaymentRow,
    Store,
    SyncRunRow,
)
from neonpay.sync.clock import HLC

from .invariants import assert_log_consistent
from .records import PEER, by_version, put, remote, remove

STAGE = "payment_stage"
PROMO = "promo_code"


# --- mutate -----------------------------------------------------------------------------


def test_create_writes_the_record_and_one_log_entry(store: Store) -> None:
    state = put(store, STAGE, "basic", {"title": "Basic", "price": 10})

    assert state is not None
    assert state.seq == 1
    assert state.version == {store.node_id: 1}
    assert state.origin == store.node_id
    assert not state.deleted
    assert state.field_hlcs == {"price": state.hlc, "title": state.hlc}
    stored = store.get(STAGE, "basic")
    assert stored == state
    (change,) = store.changes(0, 10)
    assert (change.seq, change.key, change.kind, change.hlc) == (1, "basic", STAGE, state.hlc)
    assert change.fields == {"title": "Basic", "price": 10}
    assert store.last_seq() == 1


def test_mutation_sees_the_current_fields(store: Store) -> None:
    seen: list[Mapping[str, Any] | None] = []

    def record(fields: dict[str, Any] | None) -> Callable[[Mapping[str, Any] | None], Any]:
        def change(old: Mapping[str, Any] | None) -> Any:
            seen.append(None if old is None else dict(old))
            return fields

        return change

    store.mutate(STAGE, "a", record({"n": 1}))
    store.mutate(STAGE, "a", record({"n": 2}))
    store.mutate(STAGE, "a", record(None))
    store.mutate(STAGE, "a", record({"n": 3}))
    assert seen == [None, {"n": 1}, {"n": 2}, None]


def test_update_bumps_the_version_and_stamps_only_changed_fields(store: Store) -> None:
    first = put(store, STAGE, "s", {"title": "A", "price": 5, "label": "x"})
    second = put(store, STAGE, "s", {"title": "A", "price": 6, "label": "x"})
    third = put(store, STAGE, "s", {"title": "A", "price": 6, "extra": True})
    assert first is not None
    assert second is not None
    assert third is not None

    assert second.version == {store.node_id: 2}
    assert third.version == {store.node_id: 3}
    assert HLC.decode(first.hlc) < HLC.decode(second.hlc) < HLC.decode(third.hlc)
    assert second.field_hlcs == {"label": first.hlc, "price": second.hlc, "title": first.hlc}
    # a removed field and an added one both take the new stamp; the rest keep theirs
    assert third.field_hlcs == {
        "extra": third.hlc,
        "label": third.hlc,
        "price": second.hlc,
        "title": first.hlc,
    }
    assert [c.seq for c in store.changes(0, 10)] == [1, 2, 3]
    assert_log_consistent(store)


def test_writing_the_same_fields_again_is_a_no_op(store: Store) -> None:
    first = put(store, STAGE, "s", {"title": "A", "tags": ["x", "y"]})
    again = put(store, STAGE, "s", {"tags": ["x", "y"], "title": "A"})
    # a tuple is stored as a JSON list: writing it again is the same state
    as_tuple = put(store, STAGE, "s", {"title": "A", "tags": ("x", "y")})

    assert again == first
    assert as_tuple == first
    assert store.last_seq() == 1
    assert len(store.changes(0, 10)) == 1


def test_returned_state_holds_the_fields_as_stored(store: Store) -> None:
    state = put(store, STAGE, "s", {"pair": (1, 2), "nested": {"b": 1, "a": (3,)}})
    assert state is not None
    assert state.fields == {"pair": [1, 2], "nested": {"a": [3], "b": 1}}
    assert state == store.get(STAGE, "s")


def test_delete_writes_a_tombstone(store: Store) -> None:
    created = put(store, STAGE, "gone", {"title": "A"})
    put(store, STAGE, "kept", {"title": "B"})
    tombstone = remove(store, STAGE, "gone")
    assert created is not None
    assert tombstone is not None

    assert tombstone.deleted
    assert tombstone.fields == {}
    assert tombstone.version == {store.node_id: 2}
    assert tombstone.field_hlcs == {"title": tombstone.hlc}
    assert store.get(STAGE, "gone") is None
    assert store.get(STAGE, "gone", include_deleted=True) == tombstone
    assert [r.key for r in store.list(STAGE)] == ["kept"]
    assert [r.key for r in store.list(STAGE, include_deleted=True)] == ["gone", "kept"]
    assert store.count(STAGE) == 1
    assert store.changes(2, 10)[0].deleted
    assert store.last_seq() == 3


def test_deleting_a_missing_or_deleted_record_writes_nothing(store: Store) -> None:
    assert remove(store, STAGE, "never") is None
    put(store, STAGE, "gone", {"title": "A"})
    remove(store, STAGE, "gone")
    before = store.last_seq()

    assert remove(store, STAGE, "gone") is None
    assert remove(store, STAGE, "never") is None
    assert store.last_seq() == before == 2
    assert store.get(STAGE, "never", include_deleted=True) is None


def test_recreating_after_a_delete_continues_the_version(store: Store) -> None:
    put(store, STAGE, "s", {"title": "A"})
    remove(store, STAGE, "s")
    again = put(store, STAGE, "s", {"title": "A"})

    assert again is not None
    assert not again.deleted
    assert again.version == {store.node_id: 3}
    assert store.get(STAGE, "s") == again
    assert_log_consistent(store)


def test_hlc_stamps_and_seqs_strictly_increase(store: Store) -> None:
    states = []
    for i in range(40):
        state = put(store, STAGE if i % 3 else PROMO, f"k{i % 7}", {"i": i})
        assert state is not None
        states.append(state)
    stamps = [HLC.decode(s.hlc) for s in states]
    assert all(a < b for a, b in itertools.pairwise(stamps))
    assert [s.hlc for s in states] == sorted(s.hlc for s in states)  # text sorts the same
    assert [s.seq for s in states] == list(range(1, 41))
    assert all(stamp.node_id == store.node_id for stamp in stamps)
    assert_log_consistent(store)


def test_max_live_refuses_a_create_beyond_capacity(store: Store) -> None:
    put(store, STAGE, "a", {"n": 1})
    store.mutate(STAGE, "b", lambda old: {"n": 1}, max_live=2)
    before = store.last_seq()

    with pytest.raises(ValidationError) as info:
        store.mutate(STAGE, "c", lambda old: {"n": 1}, max_live=2)
    assert "2" in str(info.value)
    assert store.get(STAGE, "c", include_deleted=True) is None
    assert store.last_seq() == before

    # at capacity an update still works, and a delete makes room
    assert store.mutate(STAGE, "a", lambda old: {"n": 2}, max_live=2) is not None
    remove(store, STAGE, "b")
    assert store.mutate(STAGE, "c", lambda old: {"n": 1}, max_live=2) is not None
    # other kinds do not count
    assert store.mutate(PROMO, "P1", lambda old: {"n": 1}, max_live=2) is not None
    assert store.count(STAGE) == 2
    assert_log_consistent(store)


# --- reads ------------------------------------------------------------------------------


def test_get_many_returns_existing_states_with_tombstones(store: Store) -> None:
    put(store, STAGE, "a", {"n": 1})
    put(store, STAGE, "b", {"n": 2})
    remove(store, STAGE, "b")
    put(store, PROMO, "a", {"n": 3})
    keys = ["a", "b", "missing", "a"] + [f"x{i}" for i in range(700)]  # past one IN chunk

    found = store.get_many(STAGE, keys)

    assert set(found) == {"a", "b"}
    assert found["a"].fields == {"n": 1}
    assert found["b"].deleted
    assert store.get_many(STAGE, []) == {}


def test_list_orders_by_key_code_point_and_count_counts_live(store: Store) -> None:
    keys = ["b", "B", "a", "a-1", "a_1", "A1", "10", "9", "Z", "aa"]
    for key in keys:
        put(store, STAGE, key, {"k": key})
    put(store, PROMO, "P", {"k": 1})
    remove(store, STAGE, "Z")

    assert [r.key for r in store.list(STAGE)] == sorted(set(keys) - {"Z"})
    assert [r.key for r in store.list(STAGE, include_deleted=True)] == sorted(keys)
    assert store.count(STAGE) == len(keys) - 1
    assert store.count(PROMO) == 1
    assert store.count() == len(keys)
    assert store.count("template") == 0
    assert store.list("template") == []


# --- feed -------------------------------------------------------------------------------


def test_feed_returns_each_record_once_in_its_latest_state(store: Store) -> None:
    put(store, STAGE, "a", {"v": 1})  # 1
    put(store, STAGE, "b", {"v": 1})  # 2
    put(store, STAGE, "a", {"v": 2})  # 3
    remove(store, STAGE, "b")  # 4

    page = store.feed(0, 10)

    assert [(r.key, r.seq) for r in page.records] == [("a", 3), ("b", 4)]
    assert page.records[0].fields == {"v": 2}
    assert page.records[1].deleted
    assert (page.next_cursor, page.has_more) == (4, False)
    later = store.feed(3, 10)
    assert [r.key for r in later.records] == ["b"]


def test_feed_pages_with_cursor_and_has_more(store: Store) -> None:
    for i in range(7):
        put(store, STAGE, f"s{i}", {"i": i})
    put(store, STAGE, "s0", {"i": 100})  # s0 moves to the end

    seen: list[str] = []
    cursor, pages = 0, 0
    while True:
        page = store.feed(cursor, 3)
        pages += 1
        seen.extend(r.key for r in page.records)
        assert len(page.records) <= 3
        if not page.has_more:
            break
        assert page.next_cursor == page.records[-1].seq
        cursor = page.next_cursor
    assert seen == ["s1", "s2", "s3", "s4", "s5", "s6", "s0"]
    assert pages == 3
    assert page.next_cursor == store.last_seq() == 8


def test_feed_exactly_full_page_then_empty(store: Store) -> None:
    for i in range(3):
        put(store, STAGE, f"s{i}", {"i": i})
    page = store.feed(0, 3)
    assert len(page.records) == 3
    assert (page.next_cursor, page.has_more) == (3, False)
    empty = store.feed(3, 3)
    assert (empty.records, empty.next_cursor, empty.has_more) == ([], 3, False)


def test_feed_filters_kinds_and_moves_the_cursor_to_the_head(store: Store) -> None:
    put(store, PROMO, "P1", {"v": 1})  # 1
    for i in range(5):
        put(store, STAGE, f"s{i}", {"i": i})  # 2..6
    put(store, PROMO, "P2", {"v": 1})  # 7
    put(store, STAGE, "s9", {"i": 9})  # 8

    page = store.feed(0, 10, kinds=["promo_code"])
    assert [r.key for r in page.records] == ["P1", "P2"]
    assert (page.next_cursor, page.has_more) == (8, False)  # the head, not the last returned

    first = store.feed(0, 1, kinds=["promo_code"])
    assert [r.key for r in first.records] == ["P1"]
    assert (first.next_cursor, first.has_more) == (1, True)

    none = store.feed(0, 10, kinds=[])
    assert (none.records, none.next_cursor, none.has_more) == ([], 8, False)
    both = store.feed(0, 20, kinds=["promo_code", "payment_stage"])
    assert len(both.records) == 8


def test_feed_excludes_states_received_from_a_peer(store: Store) -> None:
    put(store, STAGE, "local", {"v": 1})
    store.apply_batch([remote(STAGE, "theirs", {"v": 1}, {PEER: 1})], by_version)
    store.apply_batch([remote(STAGE, "edited", {"v": 1}, {PEER: 1})], by_version)
    put(store, STAGE, "edited", {"v": 2})  # a local edit on top goes back to the peer

    page = store.feed(0, 10, exclude_received_from=PEER)
    assert [r.key for r in page.records] == ["local", "edited"]
    assert page.next_cursor == store.last_seq()
    assert [r.key for r in store.feed(0, 10).records] == ["local", "theirs", "edited"]
    assert [r.key for r in store.feed(0, 10, exclude_received_from="other").records] == [
        "local",
        "theirs",
        "edited",
    ]


def test_feed_at_or_past_the_head_is_empty(store: Store) -> None:
    empty = store.feed(0, 10)
    assert (empty.records, empty.next_cursor, empty.has_more) == ([], 0, False)
    put(store, STAGE, "a", {"v": 1})
    past = store.feed(5, 10)
    assert (past.records, past.next_cursor, past.has_more) == ([], 5, False)


@pytest.mark.parametrize("limit", [0, -1, True])
def test_feed_and_changes_refuse_a_limit_below_one(store: Store, limit: int) -> None:
    put(store, STAGE, "a", {"v": 1})
    with pytest.raises(ValidationError) as info:
        store.feed(0, limit)
    assert info.value.field == "limit"
    with pytest.raises(ValidationError):
        store.changes(0, limit)
    assert store.last_seq() == 1


# --- changes ----------------------------------------------------------------------------


def test_changes_hold_every_change_in_order_without_gaps(store: Store) -> None:
    expected: list[tuple[str, str, dict[str, Any], bool]] = []
    for i in range(12):
        kind = STAGE if i % 2 else PROMO
        key = f"k{i % 4}"
        if i % 5 == 4:
            if remove(store, kind, key) is not None:
                expected.append((kind, key, {}, True))
        else:
            put(store, kind, key, {"i": i})
            expected.append((kind, key, {"i": i}, False))

    log = assert_log_consistent(store)
    assert [(c.kind, c.key, dict(c.fields), c.deleted) for c in log] == expected
    assert [c.seq for c in store.changes(3, 4)] == [4, 5, 6, 7]
    assert store.changes(len(log), 10) == []
    only_stages = store.changes(0, 100, kinds=[STAGE])
    assert [c.seq for c in only_stages] == [c.seq for c in log if c.kind == STAGE]
    assert store.changes(0, 100, kinds=[]) == []


# --- apply_batch ------------------------------------------------------------------------


def test_apply_batch_outcomes_and_log(store: Store) -> None:
    mine = put(store, STAGE, "mine", {"v": 1})
    put(store, STAGE, "both", {"v": 1})
    assert mine is not None
    start = store.last_seq()
    node = store.node_id
    batch = [
        remote(STAGE, "new", {"v": 9}, {PEER: 1}),  # applied
        remote(STAGE, "mine", {"v": 0}, {node: 1}),  # known: equal version
        remote(STAGE, "both", {"v": 7}, {node: 1, PEER: 1}),  # applied: dominates ours
        remote(STAGE, "mine", {"v": 5}, {PEER: 1}),  # conflict: concurrent
    ]

    outcomes = store.apply_batch(batch, by_version)

    assert [o.outcome for o in outcomes] == [
        Outcome.APPLIED,
        Outcome.KNOWN,
        Outcome.APPLIED,
        Outcome.CONFLICT,
    ]
    assert [o.incoming for o in outcomes] == batch
    applied = [o.state for o in outcomes if o.outcome is Outcome.APPLIED]
    assert [s.seq for s in applied if s is not None] == [start + 1, start + 2]
    assert outcomes[3].local == mine
    new = store.get(STAGE, "new")
    assert new is not None
    assert (new.fields, new.version, new.hlc, new.origin) == (
        {"v": 9},
        {PEER: 1},
        batch[0].hlc,
        PEER,
    )
    assert store.get(STAGE, "mine") == mine
    log = store.changes(start, 10)
    assert [(c.key, c.seq) for c in log] == [("new", start + 1), ("both", start + 2)]
    assert store.last_seq() == start + 2
    assert_log_consistent(store)


def test_apply_batch_decides_against_earlier_items_of_the_same_batch(store: Store) -> None:
    first = remote(STAGE, "k", {"v": 1}, {PEER: 1})
    second = remote(STAGE, "k", {"v": 2}, {PEER: 2})
    stale = remote(STAGE, "k", {"v": 0}, {PEER: 1})

    outcomes = store.apply_batch([first, second, stale], by_version)

    assert [o.outcome for o in outcomes] == [Outcome.APPLIED, Outcome.APPLIED, Outcome.KNOWN]
    assert outcomes[2].local is not None
    assert outcomes[2].local.fields == {"v": 2}
    current = store.get(STAGE, "k")
    assert current is not None
    assert current.fields == {"v": 2}
    assert store.last_seq() == 2


def test_apply_batch_applies_tombstones(store: Store) -> None:
    put(store, STAGE, "k", {"v": 1})
    node = store.node_id
    outcomes = store.apply_batch(
        [remote(STAGE, "k", {}, {node: 1, PEER: 1}, deleted=True)], by_version
    )
    assert outcomes[0].outcome is Outcome.APPLIED
    assert store.get(STAGE, "k") is None
    tombstone = store.get(STAGE, "k", include_deleted=True)
    assert tombstone is not None
    assert tombstone.deleted
    assert store.count(STAGE) == 0


def test_apply_batch_with_nothing_applied_writes_no_log(store: Store) -> None:
    put(store, STAGE, "k", {"v": 1})
    node = store.node_id
    outcomes = store.apply_batch([remote(STAGE, "k", {"v": 1}, {node: 1})], by_version)
    assert [o.outcome for o in outcomes] == [Outcome.KNOWN]
    assert store.apply_batch([], by_version) == []
    assert store.last_seq() == 1


def test_local_stamps_follow_applied_remote_stamps(store: Store) -> None:
    put(store, STAGE, "k", {"v": 1})
    future = int(time.time() * 1000) + 3_600_000  # a peer whose clock is an hour ahead
    incoming = remote(STAGE, "r", {"v": 1}, {PEER: 1}, wall_ms=future)
    store.apply_batch([incoming], by_version)

    local = put(store, STAGE, "k", {"v": 2})

    assert local is not None
    assert HLC.decode(local.hlc) > HLC.decode(incoming.hlc)
    assert local.hlc > incoming.hlc


@pytest.mark.parametrize("outcome", [Outcome.KNOWN, Outcome.CONFLICT])
def test_local_stamps_follow_received_stamps_that_were_not_applied(
    store: Store, outcome: Outcome
) -> None:
    mine = put(store, STAGE, "k", {"v": 1})
    assert mine is not None
    future = int(time.time() * 1000) + 3_600_000
    incoming = remote(STAGE, "k", {"v": 5}, {PEER: 1}, wall_ms=future)
    outcomes = store.apply_batch(
        [incoming], lambda rec, local: ApplyOutcome(outcome, rec, local=local)
    )
    assert outcomes[0].outcome is outcome
    assert store.last_seq() == 1

    later = put(store, STAGE, "k", {"v": 2})
    assert later is not None
    assert HLC.decode(later.hlc) > HLC.decode(incoming.hlc)


def test_rejected_incoming_does_not_move_the_clock(store: Store) -> None:
    put(store, STAGE, "k", {"v": 1})
    future = int(time.time() * 1000) + 3_600_000
    incoming = remote(STAGE, "k", {"v": 5}, {PEER: 1}, wall_ms=future)
    store.apply_batch(
        [incoming], lambda rec, local: ApplyOutcome(Outcome.REJECTED, rec, reason="bad")
    )
    later = put(store, STAGE, "k", {"v": 2})
    assert later is not None
    assert HLC.decode(later.hlc) < HLC.decode(incoming.hlc)


# --- metadata, peers, cursors -------------------------------------------------------------


def test_meta(store: Store) -> None:
    assert store.get_meta("missing") is None
    store.set_meta("greeting", "hello")
    store.set_meta("greeting", "hello again")
    assert store.get_meta("greeting") == "hello again"
    assert store.get_meta("node_id") == store.node_id
    assert store.last_seq() == 0  # metadata is not a record


def test_setdefault_meta_keeps_the_first_value(make_store: Callable[..., Store]) -> None:
    first, second = make_store(), make_store()  # two replicas of one store
    assert first.setdefault_meta("invoice_secret", "aaaa") == "aaaa"
    assert second.setdefault_meta("invoice_secret", "bbbb") == "aaaa"
    assert second.get_meta("invoice_secret") == "aaaa"


def test_peers_and_their_cursors(store: Store) -> None:
    assert store.list_peers() == {}
    store.save_peer("store", {"url": "https://a.example/sync", "interval": 30})
    store.save_peer("support", {"url": "https://b.example/sync"})
    store.save_peer("store", {"url": "https://a.example/sync", "interval": 5})
    store.set_cursor("store", "pull", Cursor(17, "node-abc"))
    store.set_cursor("store", "push", Cursor(3))
    store.set_cursor("support", "pull", Cursor(9, "node-def"))

    assert store.get_peer("store") == {"url": "https://a.example/sync", "interval": 5}
    assert list(store.list_peers()) == ["store", "support"]  # in order of creation
    assert store.get_peer("nobody") is None

    assert store.delete_peer("store") is True
    assert store.delete_peer("store") is False
    assert store.get_peer("store") is None
    assert store.get_cursor("store", "pull") == Cursor()
    assert store.get_cursor("store", "push") == Cursor()
    assert store.get_cursor("support", "pull") == Cursor(9, "node-def")
    assert list(store.list_peers()) == ["support"]


def test_cursors(store: Store) -> None:
    assert store.get_cursor("p", "pull") == Cursor(0, None)
    store.set_cursor("p", "pull", Cursor(5, "n1"))
    store.set_cursor("p", "pull", Cursor(8, "n1"))
    store.set_cursor("p", "push", Cursor(2))
    assert store.get_cursor("p", "pull") == Cursor(8, "n1")
    assert store.get_cursor("p", "push") == Cursor(2, None)
    assert store.get_cursor("q", "pull") == Cursor()


# --- sync history ---------------------------------------------------------------------------


def test_sync_runs_and_totals(store: Store) -> None:
    t = 1_700_000_000.0
    runs = [
        SyncRunRow("a", t, t + 1, "completed", items_synced=5, bytes_sent=100),
        SyncRunRow("a", t + 2, t + 3, "failed", errors=("timeout", "retry"), bytes_received=7),
        SyncRunRow("a", t + 4, t + 5, "partial", items_synced=2, conflicts=1),
        SyncRunRow("b", t + 6, t + 7, "completed", items_synced=1),
        SyncRunRow("a", t + 8, t + 9, "completed", items_synced=3, conflicts=2),
    ]
    ids = [store.add_sync_run(run) for run in runs]
    assert ids == sorted(ids)
    assert len(set(ids)) == 5

    listed = store.list_sync_runs("a")
    assert [r.id for r in listed] == [ids[4], ids[2], ids[1], ids[0]]  # newest first
    assert listed[2].errors == ("timeout", "retry")
    assert listed[2].status == "failed"
    assert listed[2].bytes_received == 7
    assert [r.id for r in store.list_sync_runs("a", limit=2)] == [ids[4], ids[2]]
    assert len(store.list_sync_runs()) == 5

    totals = store.sync_totals("a")
    assert totals == {
        "total": 4,
        "completed": 2,
        "failed": 1,
        "partial": 1,
        "items": 10,
        "conflicts": 3,
        "bytes_sent": 100,
        "bytes_received": 7,
        "last_error": None,  # the last unsuccessful run (partial) had no error text
    }
    store.add_sync_run(SyncRunRow("b", t + 10, t + 11, "failed", errors=("refused",)))
    assert store.sync_totals("b")["last_error"] == "refused"
    empty = store.sync_totals("nobody")
    assert empty["total"] == 0
    assert empty["items"] == 0
    assert empty["last_error"] is None


# --- conflicts ----------------------------------------------------------------------------


def test_conflicts_are_kept_listed_and_closed(store: Store) -> None:
    local = put(store, STAGE, "k", {"price": 5})
    assert local is not None
    theirs = remote(STAGE, "k", {"price": 7}, {PEER: 1})
    first = store.add_conflict("peer", local, theirs)
    second = store.add_conflict("peer", local, remote(STAGE, "k", {"price": 8}, {PEER: 2}))

    pending = store.list_conflicts()
    assert [c.id for c in pending] == [first, second]
    row = store.get_conflict(first)
    assert row is not None
    assert (row.peer, row.kind, row.key, row.status) == ("peer", STAGE, "k", "pending")
    assert row.local.to_wire() == local.to_wire()
    assert row.remote.to_wire() == theirs.to_wire()
    assert row.resolved_at is None
    assert row.resolution is None

    store.close_conflict(first, "resolved", {"price": 7})
    closed = store.get_conflict(first)
    assert closed is not None
    assert closed.status == "resolved"
    assert closed.resolution == {"price": 7}
    assert closed.resolved_at is not None
    assert [c.id for c in store.list_conflicts()] == [second]
    assert [c.id for c in store.list_conflicts("resolved")] == [first]
    assert [c.id for c in store.list_conflicts(None)] == [first, second]
    store.close_conflict(second, "dismissed", None)
    assert store.list_conflicts() == []

    assert store.get_conflict(999_999) is None
    with pytest.raises(NotFoundError):
        store.close_conflict(999_999, "resolved", None)
    assert store.last_seq() == 1  # conflicts are not records


# --- replay protection ------------------------------------------------------------------------


def test_remember_request_id(store: Store) -> None:
    now = 1_700_000_000.0
    assert store.remember_request_id("msg_1", now, 300) is True
    assert store.remember_request_id("msg_1", now + 10, 300) is False
    assert store.remember_request_id("msg_2", now + 10, 300) is True
    # past the horizon the old id is purged and may be seen again
    assert store.remember_request_id("msg_1", now + 301, 300) is True
    assert store.remember_request_id("msg_1", now + 302, 300) is False


# --- payments ---------------------------------------------------------------------------------


def test_payments_are_recorded_once_per_charge(store: Store) -> None:
    t = 1_700_000_000.0
    payment = PaymentRow("ch_1", 42, "basic", 50, promo_code="SAVE", payload="p", created_at=t)
    assert store.add_payment(payment) is True
    duplicate = PaymentRow("ch_1", 43, "other", 99, created_at=t + 5)
    assert store.add_payment(duplicate) is False

    stored = store.get_payment("ch_1")
    assert stored is not None
    assert (stored.user_id, stored.stage_id, stored.amount, stored.promo_code) == (
        42,
        "basic",
        50,
        "SAVE",
    )
    assert stored.node_id == store.node_id
    assert stored.currency == "XTR"
    assert stored.refunded_at is None
    assert len(store.list_payments()) == 1
    assert store.get_payment("nope") is None
    assert store.last_seq() == 0


def test_refund_is_marked_once(store: Store) -> None:
    store.add_payment(PaymentRow("ch_1", 1, "s", 5, created_at=100.0))
    assert store.mark_refunded("ch_1", 200.0) is True
    assert store.mark_refunded("ch_1", 300.0) is False
    assert store.mark_refunded("unknown", 300.0) is False
    stored = store.get_payment("ch_1")
    assert stored is not None
    assert stored.refunded_at == 200.0


def test_list_payments_filters(store: Store) -> None:
    rows = [
        PaymentRow("c1", 1, "basic", 10, created_at=100.0),
        PaymentRow("c2", 2, "basic", 10, created_at=200.0, extra={"k": [1]}),
        PaymentRow("c3", 1, "pro", 30, created_at=300.0),
        PaymentRow("c4", 1, "basic", 10, created_at=400.0),
    ]
    for row in rows:
        store.add_payment(row)

    def ids(**filters: Any) -> list[str]:
        return [p.charge_id for p in store.list_payments(**filters)]

    assert ids() == ["c1", "c2", "c3", "c4"]
    assert ids(user_id=1) == ["c1", "c3", "c4"]
    assert ids(stage_id="basic") == ["c1", "c2", "c4"]
    assert ids(user_id=1, stage_id="basic") == ["c1", "c4"]
    assert ids(since=200.0) == ["c2", "c3", "c4"]
    assert ids(until=300.0) == ["c1", "c2"]  # until is exclusive
    assert ids(since=200.0, until=400.0, user_id=1) == ["c3"]
    assert ids(limit=2) == ["c1", "c2"]
    assert store.list_payments(user_id=2)[0].extra == {"k": [1]}


# --- identity and lifecycle --------------------------------------------------------------------


def test_node_id_is_stable_and_well_formed(store: Store) -> None:
    assert store.node_id.startswith("node-")
    assert len(store.node_id) == len("node-") + 12
    assert store.get_meta("node_id") == store.node_id


def test_closed_store_refuses_work_and_close_is_idempotent(
    make_store: Callable[..., Store],
) -> None:
    store = make_store()
    put(store, STAGE, "a", {"v": 1})
    store.close()
    store.close()
    with pytest.raises(StorageError, match="closed"):
        store.get(STAGE, "a")
    with pytest.raises(StorageError):
        put(store, STAGE, "b", {"v": 1})


def test_count_feed_counts_what_feed_would_return(store: Store) -> None:
    put(store, PROMO, "P1", {"v": 1})
    for i in range(5):
        put(store, STAGE, f"s{i}", {"i": i})
    put(store, STAGE, "s0", {"i": 10})
    store.apply_batch([remote(STAGE, "theirs", {"v": 1}, {PEER: 1})], by_version)

    def fed(since: int, **filters: Any) -> int:
        total, cursor = 0, since
        while True:
            page = store.feed(cursor, 2, **filters)
            total += len(page.records)
            if not page.has_more:
                return total
            cursor = page.next_cursor

    all_filters: list[dict[str, Any]] = [
        {},
        {"kinds": [STAGE]},
        {"kinds": []},
        {"exclude_received_from": PEER},
        {"kinds": [PROMO], "exclude_received_from": PEER},
    ]
    for since in (0, 3, 7, 8):
        for filters in all_filters:
            assert store.count_feed(since, **filters) == fed(since, **filters), (since, filters)
    assert store.count_feed(0) == 7
