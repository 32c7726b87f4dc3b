"""A store put back from a backup never reuses its identity (issue 13, item 5).

A syncs stage s1 to B, B edits s1's price, A's store file is put back from a backup
taken earlier, and A edits s1's title: A's title is a write under a version counter that
B already holds for another write. Both sides must end with the same state, holding A's
post-restore title, A under a new node id (logged at WARNING, listed by the store).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from neonpay import ConflictResolution, NeonPay, SyncDirection
from neonpay.store.base import Record
from neonpay.sync.identity import counter_beyond, reuser
from neonpay.sync.merge import merge_states
from neonpay.sync.results import SyncStatus

from .network import Network, snapshot, stage


def _backup(net: Network, name: str) -> Path:
    """Close ``name``, copy its SQLite file, open it again."""
    net.nodes[name].close()
    copy = net.root / f"{name}.backup"
    shutil.copyfile(net.root / f"{name}.db", copy)
    net.reopen(name)
    return copy


def _restore(net: Network, name: str, copy: Path) -> NeonPay:
    """Close ``name`` and put its store file back from ``copy``."""
    net.nodes[name].close()
    for suffix in ("-wal", "-shm"):
        (net.root / f"{name}.db{suffix}").unlink(missing_ok=True)
    shutil.copyfile(copy, net.root / f"{name}.db")
    return net.reopen(name)


async def _restored_scenario(
    net: Network, direction: SyncDirection, strategy: ConflictResolution
) -> tuple[NeonPay, NeonPay]:
    a, b = net.node("A"), net.node("B")
    a.create_payment_stage("s1", stage(price=10, title="First"))
    copy = _backup(net, "A")  # the backup holds s1 as created
    a = net.nodes["A"]
    a.update_payment_stage("s1", title="Second")
    first = await net.sync(a, b, direction=direction, conflict_resolution=strategy)
    assert first.status is SyncStatus.COMPLETED, first.errors
    b.update_payment_stage("s1", price=25)
    a = _restore(net, "A", copy)
    assert a.get_payment_stage("s1").title == "First"  # type: ignore[union-attr]
    a.update_payment_stage("s1", title="After restore")  # reuses counter A:2
    return a, b


@pytest.mark.parametrize(
    ("direction", "strategy", "price"),
    [
        # a PUSH peer never writes to A: A's fields win whole, B gets them
        (SyncDirection.PUSH, ConflictResolution.SOURCE_WINS, 10),
        # both ways, field by field: A's new title and B's price
        (SyncDirection.BIDIRECTIONAL, ConflictResolution.MERGE, 25),
        (SyncDirection.BIDIRECTIONAL, ConflictResolution.SOURCE_WINS, 10),
    ],
)
async def test_a_write_after_a_restore_is_neither_lost_nor_hidden(
    net: Network,
    direction: SyncDirection,
    strategy: ConflictResolution,
    price: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    a, b = await _restored_scenario(net, direction, strategy)
    with caplog.at_level(logging.WARNING, logger="neonpay.store"):
        for _ in range(3):
            result = await net.sync(a, b, direction=direction, conflict_resolution=strategy)
            assert result.status is SyncStatus.COMPLETED, result.errors
    assert snapshot(a) == snapshot(b)
    s1 = b.get_payment_stage("s1")
    assert s1 is not None
    assert (s1.title, s1.price) == ("After restore", price)
    # A moved to a fresh node id, said so, and keeps a record of it
    assert a.node_id != "A"
    retired = a.store.retired_node_ids()
    assert [(e["node_id"], e["new_node_id"]) for e in retired] == [("A", a.node_id)]
    assert "restored" in retired[0]["reason"]
    assert any(
        r.levelno == logging.WARNING and "takes the new node id" in r.getMessage()
        for r in caplog.records
    )
    # settled: nothing moves any more, and A's next write travels normally
    again = await net.sync(a, b, direction=direction, conflict_resolution=strategy)
    assert again.items_synced == 0
    assert again.conflicts == []
    a.update_payment_stage("s1", description="Later")
    await net.sync(a, b, direction=direction, conflict_resolution=strategy)
    assert b.get_payment_stage("s1").description == "Later"  # type: ignore[union-attr]
    assert snapshot(a) == snapshot(b)


async def test_the_restored_store_is_found_out_when_the_peer_pushes_to_it(
    net: Network,
) -> None:
    """B runs the sync (A only serves): A, the receiver, finds that it reused its own
    counters, takes a new id, and the conflict is settled by B."""
    a, b = await _restored_scenario(net, SyncDirection.BIDIRECTIONAL, ConflictResolution.MERGE)
    for _ in range(3):
        result = await net.sync(b, a)
        assert result.status is SyncStatus.COMPLETED, result.errors
    assert snapshot(a) == snapshot(b)
    s1 = a.get_payment_stage("s1")
    assert s1 is not None
    assert (s1.title, s1.price) == ("After restore", 25)
    assert a.node_id != "A"


async def test_a_restored_store_recovers_the_writes_its_backup_lacks(net: Network) -> None:
    """Writes A made after the backup, which B holds, come back to A: when A finds out
    that it was restored (here: its own s1 edit meets B's), it takes a new id and pulls
    everything again, including what B received from A's old id."""
    a, b = net.node("A"), net.node("B")
    a.create_payment_stage("s1", stage(price=10))
    copy = _backup(net, "A")
    a = net.nodes["A"]
    a.update_payment_stage("s1", price=11)
    a.create_payment_stage("s2", stage(price=2))
    await net.sync(a, b)
    a = _restore(net, "A", copy)
    a.update_payment_stage("s1", title="Restored")
    for _ in range(3):
        result = await net.sync(a, b)
        assert result.status is SyncStatus.COMPLETED, result.errors
    assert a.node_id != "A"
    assert snapshot(a) == snapshot(b)
    s1 = a.get_payment_stage("s1")
    assert s1 is not None
    assert (s1.title, s1.price) == ("Restored", 11)
    assert {k: s.price for k, s in a.list_payment_stages().items()} == {"s1": 11, "s2": 2}
    a.update_payment_stage("s2", price=3)
    await net.sync(a, b)
    assert b.get_payment_stage("s2").price == 3  # type: ignore[union-attr]


async def test_promo_usage_counted_after_a_restore_is_under_the_new_id(net: Network) -> None:
    a, b = net.node("A"), net.node("B")
    a.promotions.create_promo_code("SALE", "percentage", 10)
    a.promotions.record_use("SALE")
    copy = _backup(net, "A")
    a = net.nodes["A"]
    a.promotions.record_use("SALE", 2)
    await net.sync(a, b)
    b.promotions.record_use("SALE", 4)
    a = _restore(net, "A", copy)
    a.promotions.record_use("SALE")  # reuses A's counter of the usage record
    for _ in range(3):
        result = await net.sync(a, b)
        assert result.status is SyncStatus.COMPLETED, result.errors
    assert snapshot(a) == snapshot(b)
    assert a.node_id != "A"
    # A's forgotten 2 uses are known again; nothing counted twice
    assert a.promotions.usage("SALE") == b.promotions.usage("SALE") >= 1 + 2 + 4
    a.promotions.record_use("SALE")
    await net.sync(a, b)
    usage = b.store.get("promo_usage", "SALE")
    assert usage is not None
    assert usage.fields.get(a.node_id) == 1


async def test_a_store_opened_with_its_retired_node_id_uses_the_new_one(
    net: Network,
) -> None:
    a = net.node("A")
    new = a.store.renew_node_id("test")
    a.close()
    from neonpay import create_neonpay

    again = create_neonpay(storage=f"sqlite:///{net.root / 'A.db'}", node_id="A")
    try:
        assert again.node_id == new
    finally:
        again.close()


def test_a_replica_in_another_process_writes_with_the_renewed_id(tmp_path: Path) -> None:
    """Two store objects on one file (two replicas): after one renews, the other's next
    write uses the new id, read under the clock-row lock."""
    from neonpay.store import open_store

    url = f"sqlite:///{tmp_path / 'shared.db'}"
    first, second = open_store(url, node_id="A"), open_store(url)
    try:
        new = first.renew_node_id("test")
        assert second.node_id == "A"  # not read yet
        state = second.mutate("payment_stage", "k", lambda _: {"v": 1})
        assert state is not None
        assert state.version == {new: 1}
        assert state.origin == new
        assert second.node_id == new
    finally:
        first.close()
        second.close()


# --- the detection rule ----------------------------------------------------------------
def _state(version: dict[str, int], hlc: str, **fields: object) -> Record:
    return Record(
        kind="payment_stage",
        key="s1",
        fields=dict(fields),
        version=version,
        hlc=hlc,
        field_hlcs=dict.fromkeys(fields, hlc),
    )


def _stamp(ms: int, node: str) -> str:
    return f"{ms:015d}.000000.{node}"


def test_the_rule_names_the_node_that_reused_counters() -> None:
    before = _state({"A": 1}, _stamp(100, "A"), title="x")
    peer = _state({"A": 2, "B": 1}, _stamp(300, "B"), title="y")  # A:2 at 200, then B
    restored = _state({"A": 2}, _stamp(400, "A"), title="z")  # A:2 again, after restore
    assert reuser(peer, before) is None
    assert reuser(before, peer) is None
    assert reuser(peer, restored) == "A"
    assert reuser(restored, peer) == "A"
    assert reuser(_state({"A": 2}, _stamp(200, "A")), restored) == "A"  # equal versions
    concurrent = _state({"A": 1, "C": 1}, _stamp(500, "C"))
    assert reuser(concurrent, peer) is None
    assert counter_beyond(peer, before, "A") == 2
    assert counter_beyond(before, peer, "A") == 0
    assert counter_beyond(peer, None, "B") == 1


def test_a_merge_keeps_the_clock_invariant() -> None:
    base = _state({"A": 1}, _stamp(100, "A"), title="x", price=1)
    left = Record(
        kind="payment_stage",
        key="s1",
        fields={"title": "y", "price": 1},
        version={"A": 2},
        hlc=_stamp(200, "A"),
        field_hlcs={"title": _stamp(200, "A"), "price": _stamp(100, "A")},
    )
    right = Record(
        kind="payment_stage",
        key="s1",
        fields={"title": "x", "price": 2},
        version={"A": 1, "B": 1},
        hlc=_stamp(150, "B"),
        field_hlcs={"title": _stamp(100, "A"), "price": _stamp(150, "B")},
    )
    merged = merge_states(left, right)
    for side in (base, left, right):
        assert reuser(merged, side) is None
        assert reuser(side, merged) is None
