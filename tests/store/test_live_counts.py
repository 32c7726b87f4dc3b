"""Live counts kept as data: every write path moves them in its own transaction, a
migration initialises them from the rows already there, and the catalog limit holds on
local creates, bulk writes and records that arrive by sync, also under concurrency."""

from __future__ import annotations

import threading

import pytest

from neonpay import PaymentStage, create_neonpay
from neonpay.errors import ValidationError
from neonpay.store import Outcome, Record, Store, open_store
from neonpay.store import sql as sql_module
from neonpay.store.schema import SCHEMA_VERSION
from neonpay.sync.decide import make_decide

from .invariants import assert_log_consistent
from .processes import start_all
from .records import PEER, put, remote, remove

STAGE = "payment_stage"


def live_keys(store: Store, kind: str = STAGE) -> set[str]:
    return {r.key for r in store.list(kind)}


def test_every_write_path_moves_the_count(store: Store) -> None:
    put(store, STAGE, "a", {"title": "A"})
    put(store, STAGE, "b", {"title": "B"})
    put(store, STAGE, "a", {"title": "A2"})  # an update: no change in the count
    remove(store, STAGE, "b")
    remove(store, STAGE, "b")  # already gone
    put(store, STAGE, "b", {"title": "B again"})  # revived
    assert store.count(STAGE) == 2
    decide = make_decide(PEER)
    store.apply_batch(
        [
            remote(STAGE, "c", {"title": "C"}, {PEER: 1}),
            remote(STAGE, "d", {"title": "D"}, {PEER: 1}),
            remote(STAGE, "d", {}, {PEER: 2}, deleted=True),  # created and deleted at once
            remote(STAGE, "e", {}, {PEER: 1}, deleted=True),  # a tombstone of nothing
        ],
        decide,
    )
    assert store.count(STAGE) == 3
    written = store.write_many(
        [(STAGE, "f", {"title": "F"}), (STAGE, "a", None), ("promo_code", "X1", {"v": 1})]
    )
    assert [r.key for r in written] == ["f", "a", "X1"]
    assert store.count(STAGE) == 3  # +f -a
    assert store.count("promo_code") == 1
    assert store.count() == 4
    assert live_keys(store) == {"b", "c", "f"}
    assert_log_consistent(store)  # which also checks count(kind) against the records


def test_write_many_writes_nothing_when_the_limit_would_be_passed(store: Store) -> None:
    store.write_many([(STAGE, f"s{i}", {"n": i}) for i in range(3)])
    before = store.last_seq()
    with pytest.raises(ValidationError, match="maximum of 4"):
        store.write_many(
            [(STAGE, "s0", {"n": 100}), (STAGE, "new-1", {"n": 1}), (STAGE, "new-2", {"n": 2})],
            max_live={STAGE: 4},
        )
    assert store.last_seq() == before  # all or nothing: not even the update of s0
    assert store.count(STAGE) == 3
    got = store.get(STAGE, "s0")
    assert got is not None
    assert dict(got.fields) == {"n": 0}
    # a delete in the same batch makes room
    store.write_many([(STAGE, "s0", None), (STAGE, "new-1", {"n": 1})], max_live={STAGE: 3})
    assert live_keys(store) == {"s1", "s2", "new-1"}
    assert_log_consistent(store)


def test_synced_records_beyond_the_limit_are_rejected_with_the_reason(store: Store) -> None:
    store.set_live_limit(STAGE, 3)
    put(store, STAGE, "mine", {"title": "M"})
    incoming = [remote(STAGE, f"r{i}", {"title": f"R{i}"}, {PEER: 1}) for i in range(4)]
    outcomes = store.apply_batch(incoming, make_decide(PEER))
    assert [o.outcome for o in outcomes] == [
        Outcome.APPLIED,
        Outcome.APPLIED,
        Outcome.REJECTED,
        Outcome.REJECTED,
    ]
    assert "maximum of 3 payment_stage records" in outcomes[2].reason
    assert live_keys(store) == {"mine", "r0", "r1"}
    # an update of a held record and a delete are not creates: both go through, and the
    # delete makes room for one more
    outcomes = store.apply_batch(
        [
            remote(STAGE, "r0", {"title": "R0 new"}, {PEER: 2}),
            remote(STAGE, "r1", {}, {PEER: 2}, deleted=True),
            remote(STAGE, "r2", {"title": "R2"}, {PEER: 1}),
            remote(STAGE, "r3", {"title": "R3"}, {PEER: 1}),
        ],
        make_decide(PEER),
    )
    assert [o.outcome for o in outcomes] == [
        Outcome.APPLIED,
        Outcome.APPLIED,
        Outcome.APPLIED,
        Outcome.REJECTED,
    ]
    assert live_keys(store) == {"mine", "r0", "r2"}
    assert store.count(STAGE) == 3
    # other kinds have no limit
    assert (
        store.apply_batch([remote("promo_code", "P1", {"v": 1}, {PEER: 1})], make_decide(PEER))[
            0
        ].outcome
        is Outcome.APPLIED
    )
    assert_log_consistent(store)


def test_the_limit_is_a_positive_whole_number(store: Store) -> None:
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValidationError):
            store.set_live_limit(STAGE, bad)  # type: ignore[arg-type]
    store.set_live_limit(STAGE, 1)
    store.set_live_limit(STAGE, None)  # no limit again
    store.write_many([(STAGE, "a", {"v": 1}), (STAGE, "b", {"v": 1})])
    assert store.count(STAGE) == 2


def test_the_migration_counts_the_rows_already_there(store_url: str) -> None:
    """A store of schema version 1 (no counts table) gets its counts from its rows."""
    first = open_store(store_url)
    try:
        for i in range(5):
            put(first, STAGE, f"s{i}", {"n": i})
        remove(first, STAGE, "s4")
        put(first, "promo_code", "CODE1", {"v": 1})
        assert isinstance(first, sql_module.SQLStore)
        with first._transaction(write=True) as s:  # back to version 1
            s.execute("DROP TABLE neonpay_live")
            s.execute("DROP INDEX neonpay_payments_over_use")
            s.execute("ALTER TABLE neonpay_payments DROP COLUMN promo_over_use")
            s.execute("ALTER TABLE neonpay_clock DROP COLUMN node_id")
            s.execute("UPDATE neonpay_meta SET value = '1' WHERE name = 'schema_version'")
    finally:
        first.close()
    again = open_store(store_url)
    try:
        assert again.get_meta("schema_version") == str(SCHEMA_VERSION)
        assert again.count(STAGE) == 4
        assert again.count("promo_code") == 1
        assert again.count() == 5
        assert_log_consistent(again)
    finally:
        again.close()


# --- the catalog limit under concurrency ------------------------------------------------
LIMIT = 12


def test_threads_racing_creates_at_the_limit(store_url: str) -> None:
    """Threads, each with its own store object (replicas), create stages at once:
    exactly LIMIT are live, every other create is refused."""
    workers, each = 4, 6
    start = threading.Barrier(workers)
    created: list[str] = []
    refused: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run(worker: int) -> None:
        try:
            with create_neonpay(storage=store_url, max_stages=LIMIT) as np:
                start.wait(timeout=30)
                for i in range(each):
                    stage_id = f"w{worker}-{i}"
                    try:
                        np.create_payment_stage(stage_id, PaymentStage("T", "D", 1 + i))
                    except ValidationError:
                        with lock:
                            refused.append(stage_id)
                    else:
                        with lock:
                            created.append(stage_id)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(w,)) for w in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    assert len(created) == LIMIT
    assert len(refused) == workers * each - LIMIT
    with create_neonpay(storage=store_url) as np:
        assert set(np.list_payment_stages()) == set(created)
        assert np.store.count(STAGE) == LIMIT
        assert_log_consistent(np.store)


RACER = """
import sys
from neonpay import PaymentStage, create_neonpay
from neonpay.errors import ValidationError

url, worker, each, limit = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
np = create_neonpay(storage=url, max_stages=limit)
print("ready", flush=True)
sys.stdin.readline()
for i in range(each):
    stage_id = f"p{worker}-{i}"
    try:
        np.create_payment_stage(stage_id, PaymentStage("T", "D", 1 + i))
    except ValidationError:
        print("refused", stage_id, flush=True)
    else:
        print("created", stage_id, flush=True)
# a bulk create too: refused as a whole once the catalog is full
try:
    np.create_payment_stages({f"bulk{worker}-{i}": PaymentStage("T", "D", 1) for i in range(3)})
except ValidationError:
    print("refused bulk", flush=True)
else:
    print("created bulk", flush=True)
np.close()
print("done", flush=True)
"""


def test_processes_racing_creates_at_the_limit(store_url: str) -> None:
    workers, each = 3, 6
    children = start_all(
        RACER, [(store_url, str(w), str(each), str(LIMIT)) for w in range(workers)]
    )
    try:
        for child in children:
            assert child.readline() == "ready"
        for child in children:
            child.send("go\n")
        lines = [line for child in children for line in child.finish()]
    finally:
        for child in children:
            child.ensure_dead()
    created = {line.split()[1] for line in lines if line.startswith("created p")}
    bulks = [line for line in lines if line.endswith("bulk")]
    assert len(bulks) == workers
    bulk_created = sum(1 for line in bulks if line == "created bulk")
    assert len(created) + 3 * bulk_created == LIMIT
    with create_neonpay(storage=store_url) as np:
        stages = set(np.list_payment_stages())
        assert len(stages) == LIMIT
        assert created <= stages
        assert np.store.count(STAGE) == LIMIT
        assert_log_consistent(np.store)


def test_the_bulk_call_is_checked_like_single_creates(store_url: str) -> None:
    with create_neonpay(storage=store_url, max_stages=5, max_price=500) as np:
        seen: list[Record] = []
        np.add_change_listener(seen.append)
        np.create_payment_stage("old", PaymentStage("Old", "kept", 3))
        before = np.store.last_seq()
        bad_price = {"a": PaymentStage("A", "D", 1), "b": PaymentStage("B", "D", 501)}
        with pytest.raises(ValidationError, match="stage 'b'"):
            np.create_payment_stages(bad_price)
        with pytest.raises(ValidationError, match="stage_id"):
            np.create_payment_stages(
                [("ok", PaymentStage("A", "D", 1)), ("bad id!", PaymentStage("A", "D", 1))]
            )
        with pytest.raises(ValidationError, match="PaymentStage"):
            np.create_payment_stages([("a", {"title": "A"})])  # type: ignore[list-item]
        with pytest.raises(ValidationError, match="maximum of 5"):
            np.create_payment_stages({f"s{i}": PaymentStage("S", "D", 1) for i in range(5)})
        assert np.store.last_seq() == before  # nothing written by any of them
        assert set(np.list_payment_stages()) == {"old"}
        assert len(seen) == 1
        count = np.create_payment_stages(
            [("old", PaymentStage("Old", "kept", 3)), ("n1", PaymentStage("N", "D", 2))]
        )
        assert count == 1  # "old" is unchanged
        assert [r.key for r in seen[1:]] == ["n1"]
        assert np.get_payment_stage("n1") == PaymentStage("N", "D", 2)
        assert_log_consistent(np.store)


def test_a_large_bulk_write_with_repeated_keys(store: Store) -> None:
    """Large enough for PostgreSQL's COPY path: every change logged, the last state kept."""
    put(store, STAGE, "s00001", {"n": -1})
    items: list[tuple[str, str, dict[str, object] | None]] = [
        (STAGE, f"s{i:05d}", {"n": i}) for i in range(2500)
    ]
    items += [(STAGE, "s00002", {"n": "again"}), (STAGE, "s00003", None)]
    written = store.write_many(items)
    assert len(written) == 2502
    assert store.count(STAGE) == 2499
    again = store.get(STAGE, "s00002")
    assert again is not None
    assert dict(again.fields) == {"n": "again"}
    assert again.version == {store.node_id: 2}
    first = store.get(STAGE, "s00001")
    assert first is not None
    assert first.version == {store.node_id: 2}
    assert store.get(STAGE, "s00003") is None
    assert len(assert_log_consistent(store)) == 1 + 2502
