"""Review: conflicts that are left unsettled come back, and pending (ASK_USER) conflicts
never undo what happened after them."""

from __future__ import annotations

from typing import Any

import pytest

from neonpay import ConflictError, ConflictResolution, NeonPay, SyncDirection, create_neonpay
from neonpay.store.base import Record
from neonpay.sync import ConflictResolver, MultiBotSyncManager, SyncStatus
from neonpay.sync.clock import Order, compare_versions
from neonpay.sync.conflicts import SyncConflict
from neonpay.sync.reopen import load_open

from .network import Network, snapshot, stage
from .test_multi import _factory, _peer


def _prices(node: NeonPay) -> dict[str, int]:
    return {k: s.price for k, s in node.list_payment_stages().items()}


async def _concurrent_edit(net: Network) -> tuple[NeonPay, NeonPay]:
    a, b = net.node("A"), net.node("B")
    a.create_payment_stage("s1", stage(price=10))
    assert (await net.sync(a, b)).status is SyncStatus.COMPLETED
    a.update_payment_stage("s1", price=20)
    b.update_payment_stage("s1", price=30)
    return a, b


class _Crashing(ConflictResolver):
    def resolve_conflict(self, conflict: SyncConflict) -> dict[str, Any] | None:
        raise RuntimeError("resolver bug")


class _Invalid(ConflictResolver):
    def resolve_conflict(self, conflict: SyncConflict) -> dict[str, Any] | None:
        return {**conflict.source_data, "price": 0}


class _Undecided(ConflictResolver):
    def resolve_conflict(self, conflict: SyncConflict) -> dict[str, Any] | None:
        return None


@pytest.mark.parametrize("broken", [_Crashing, _Invalid, _Undecided])
@pytest.mark.parametrize("direction", list(SyncDirection))
async def test_a_conflict_the_resolver_left_open_comes_back_next_sync(
    net: Network, broken: type[ConflictResolver], direction: SyncDirection
) -> None:
    """The resolver failed (or declined) once; the conflict is not forgotten: the next
    sync, with a working resolver, settles it, so the two nodes do not diverge forever.
    (Met on the pull side for BIDIRECTIONAL and PULL, on the push side for PUSH.)"""
    a, b = await _concurrent_edit(net)
    manager = net.link(a, b, direction=direction, conflict_resolution=ConflictResolution.MERGE)
    manager.conflict_resolver = broken()
    first = await manager.sync_all()
    assert len(first.conflicts) == 1
    assert _prices(a) == {"s1": 20}
    assert _prices(b) == {"s1": 30}
    pushing = direction is SyncDirection.PUSH  # the peer may not write to us: take ours
    fixed = ConflictResolution.SOURCE_WINS if pushing else ConflictResolution.TARGET_WINS
    manager.conflict_resolver = ConflictResolver(fixed)
    second = await manager.sync_all()
    assert second.status is SyncStatus.COMPLETED, second.errors
    assert [c.outcome for c in second.conflicts] == ["source" if pushing else "target"]
    assert _prices(a) == {"s1": 20 if pushing else 30}
    if direction is not SyncDirection.PULL:
        assert snapshot(a) == snapshot(b)
    third = await manager.sync_all()
    assert third.conflicts == []  # settled: not met again
    assert third.items_synced == 0


class _Meddling(ConflictResolver):
    """Edits the record locally while the engine resolves it, so every compare-and-set
    fails (a busy admin on the same stage)."""

    def __init__(self, node: NeonPay, times: int) -> None:
        super().__init__()
        self.node = node
        self.times = times
        self.written: list[Record] = []

    def resolve_conflict(self, conflict: SyncConflict) -> dict[str, Any] | None:
        if self.times > 0:
            self.times -= 1
            self.node.update_payment_stage("s1", title=f"busy {self.times}")
            state = self.node.store.get("payment_stage", "s1")
            assert state is not None
            self.written.append(state)
        return super().resolve_conflict(conflict)


async def test_a_record_that_kept_changing_is_settled_by_the_next_sync(net: Network) -> None:
    """The run gives up after max_rounds and promises that the next sync tries again:
    it must."""
    a, b = await _concurrent_edit(net)
    manager = net.link(a, b, conflict_resolution=ConflictResolution.SOURCE_WINS)
    manager.conflict_resolver = _Meddling(a, times=manager.max_rounds)
    first = await manager.sync_all()
    assert first.status is SyncStatus.PARTIAL
    assert any("next sync tries again" in e for e in first.errors)
    second = await manager.sync_all()
    assert second.status is SyncStatus.COMPLETED, second.errors
    assert snapshot(a) == snapshot(b)
    assert _prices(b) == {"s1": 20}  # SOURCE_WINS: ours
    assert b.get_payment_stage("s1").title == "busy 0"  # type: ignore[union-attr]


@pytest.mark.parametrize("strategy", list(ConflictResolution))
async def test_a_local_write_during_resolution_is_never_overwritten(
    net: Network, strategy: ConflictResolution
) -> None:
    """The compare-and-set is real: an edit made here while the engine resolved is not
    blindly overwritten; the resolution is computed again over it (it then counts as
    our side of the conflict: only TARGET_WINS replaces it, by its rule)."""
    a, b = await _concurrent_edit(net)
    manager = net.link(a, b, conflict_resolution=strategy)
    meddling = _Meddling(a, times=1)
    manager.conflict_resolver = meddling
    result = await manager.sync_all()
    assert result.status is SyncStatus.COMPLETED, result.errors
    final = a.store.get("payment_stage", "s1")
    assert final is not None
    (edit,) = meddling.written
    assert compare_versions(final.version, edit.version) in (Order.AFTER, Order.EQUAL)
    title = "Stage" if strategy is ConflictResolution.TARGET_WINS else "busy 0"
    assert final.fields["title"] == title
    if strategy is not ConflictResolution.ASK_USER:
        assert snapshot(a) == snapshot(b)
    if strategy is ConflictResolution.MERGE:
        assert _prices(a) == {"s1": 30}  # B's price edit was later; A's title edit too


async def test_a_retried_conflict_stays_with_its_peer(net: Network) -> None:
    """What is kept for the next sync is forgotten with the peer."""
    a, b = await _concurrent_edit(net)
    async with MultiBotSyncManager(a, transport_factory=_factory(net)) as multi:
        multi.add_bot(_peer("B"))
        multi.get_sync_manager("B").conflict_resolver = _Crashing()
        assert (await multi.sync_with_bot("B")).status is SyncStatus.PARTIAL
        assert load_open(a.store, "B", "B").keys() == {("payment_stage", "s1")}
        assert load_open(a.store, "B", "another node") == {}
        assert multi.remove_bot("B")
        assert load_open(a.store, "B", None) == {}
        multi.add_bot(_peer("B"))
        result = await multi.sync_with_bot("B")
    assert result.status is SyncStatus.COMPLETED, result.errors
    assert snapshot(a) == snapshot(b)


# --- ASK_USER ---------------------------------------------------------------------------
async def _pending_on_a(net: Network) -> tuple[NeonPay, NeonPay, int]:
    a, b = await _concurrent_edit(net)
    result = await net.sync(a, b, conflict_resolution=ConflictResolution.ASK_USER)
    (conflict,) = result.conflicts
    assert conflict.id is not None
    return a, b, conflict.id


@pytest.mark.parametrize("choice", ["source", "target", "merge", {"price": 99}])
async def test_a_conflict_settled_elsewhere_cannot_be_resolved_again(
    net: Network, choice: Any
) -> None:
    """B resolved the same conflict itself and A received that resolution: A's stale
    pending conflict must not override it (nor silently turn "source" into B's fields)."""
    a, b, conflict_id = await _pending_on_a(net)
    await net.sync(b, a, conflict_resolution=ConflictResolution.TARGET_WINS)  # B takes A's
    assert _prices(a) == _prices(b) == {"s1": 20}
    settled = snapshot(a)
    manager = net.link(a, b)
    if isinstance(choice, dict):
        choice = {**a.get_payment_stage("s1").to_fields(), **choice}  # type: ignore[union-attr]
    with pytest.raises(ConflictError, match="settled"):
        manager.resolve_conflict(conflict_id, choice)
    assert snapshot(a) == settled
    assert manager.list_conflicts() == []  # not offered any more
    assert a.store.get_conflict(conflict_id).status == "superseded"  # type: ignore[union-attr]


async def test_a_settled_conflict_is_not_listed(net: Network) -> None:
    a, b, conflict_id = await _pending_on_a(net)
    manager = net.link(a, b)
    assert [c.id for c in manager.list_conflicts()] == [conflict_id]
    await net.sync(b, a, conflict_resolution=ConflictResolution.SOURCE_WINS)  # B keeps its
    assert [c.id for c in manager.list_conflicts()] == []
    assert _prices(a) == _prices(b) == {"s1": 30}


async def test_resolving_after_a_local_edit_keeps_the_choice_meaningful(net: Network) -> None:
    """The record changed here since the conflict was kept (still concurrent with the
    peer's): "source" keeps our newest fields, and the resolution still dominates both."""
    a, b, conflict_id = await _pending_on_a(net)
    a.update_payment_stage("s1", price=25)
    manager = net.link(a, b, conflict_resolution=ConflictResolution.ASK_USER)
    (shown,) = manager.list_conflicts()
    assert shown.id == conflict_id
    assert (shown.source_data["price"], shown.target_data["price"]) == (25, 30)  # as it is now
    state = manager.resolve_conflict(conflict_id, "source")
    assert state.fields["price"] == 25
    result = await manager.sync_all()
    assert result.status is SyncStatus.COMPLETED, result.errors
    assert result.conflicts == []
    assert _prices(a) == _prices(b) == {"s1": 25}
    assert snapshot(a) == snapshot(b)


async def test_a_resolution_reaches_and_dominates_every_node(net: Network) -> None:
    a, b = await _concurrent_edit(net)
    c = net.node("C")
    await net.sync(c, b, conflict_resolution=ConflictResolution.ASK_USER)  # C has B's
    result = await net.sync(a, b, conflict_resolution=ConflictResolution.ASK_USER)
    (conflict,) = result.conflicts
    assert conflict.id is not None
    resolution = net.link(a, b).resolve_conflict(conflict.id, {**conflict.source_data, "price": 77})
    await net.sync(c, a, conflict_resolution=ConflictResolution.ASK_USER)  # C gets it first
    c.update_payment_stage("s1", description="C was here")  # then edits on top of it
    await net.settle("A", "B", "C", conflict_resolution=ConflictResolution.ASK_USER)
    assert _prices(a) == _prices(b) == _prices(c) == {"s1": 77}
    assert b.get_payment_stage("s1").description == "C was here"  # type: ignore[union-attr]
    assert snapshot(a) == snapshot(b) == snapshot(c)
    for node in (a, b, c):
        assert node.store.list_conflicts() == []
        final = node.store.get("payment_stage", "s1")
        assert final is not None
        assert compare_versions(final.version, resolution.version) is Order.AFTER


async def test_pending_conflict_is_kept_once_across_many_runs(net: Network) -> None:
    a, b, conflict_id = await _pending_on_a(net)
    for _ in range(3):
        await net.sync(a, b, conflict_resolution=ConflictResolution.ASK_USER)
        await net.sync(b, a, conflict_resolution=ConflictResolution.ASK_USER)
    assert [row.id for row in a.store.list_conflicts()] == [conflict_id]
    assert len(b.store.list_conflicts()) == 1
    (on_b,) = b.store.list_conflicts()
    net.link(b, a).resolve_conflict(on_b.id, "merge")
    await net.settle("A", "B", conflict_resolution=ConflictResolution.ASK_USER)
    assert snapshot(a) == snapshot(b)
    assert net.link(a, b).list_conflicts() == []  # B's resolution settled A's question


async def test_an_open_conflict_survives_a_restart_on_either_store(
    net: Network, store_url: str
) -> None:
    """What is kept for the next sync lives in the store (SQLite or PostgreSQL)."""
    a = net.node("A", storage=store_url)
    b = net.node("B")
    a.create_payment_stage("s1", stage(price=10))
    await net.sync(a, b)
    a.update_payment_stage("s1", price=20)
    b.update_payment_stage("s1", price=30)
    manager = net.link(a, b)
    manager.conflict_resolver = _Crashing()
    assert (await manager.sync_all()).status is SyncStatus.PARTIAL
    a.close()
    a = net.nodes["A"] = create_neonpay(storage=store_url)  # a new process
    result = await net.sync(a, b, conflict_resolution=ConflictResolution.TARGET_WINS)
    assert result.status is SyncStatus.COMPLETED, result.errors
    assert [c.outcome for c in result.conflicts] == ["target"]
    assert _prices(a) == _prices(b) == {"s1": 30}
    assert snapshot(a) == snapshot(b)


@pytest.mark.parametrize(
    "strategy",
    [ConflictResolution.SOURCE_WINS, ConflictResolution.TARGET_WINS, ConflictResolution.ASK_USER],
)
async def test_a_resolution_does_not_erase_an_undisputed_concurrent_edit(
    net: Network, strategy: ConflictResolution
) -> None:
    """A and B disputed the title; meanwhile C, unaware, changed only the price. The
    resolution of the title must not take C's price away when the two later MERGE: the
    price was changed on one side only."""
    a, b, c = net.node("A"), net.node("B"), net.node("C")
    a.create_payment_stage("s1", stage(price=10, title="Base"))
    await net.sync(a, b)
    await net.sync(a, c)
    a.update_payment_stage("s1", title="From A")
    b.update_payment_stage("s1", title="From B")
    c.update_payment_stage("s1", price=99)  # before the resolution, concurrent with it
    result = await net.sync(a, b, conflict_resolution=strategy)
    if strategy is ConflictResolution.ASK_USER:
        (conflict,) = result.conflicts
        assert conflict.id is not None
        net.link(a, b).resolve_conflict(conflict.id, "source")
        await net.sync(a, b, conflict_resolution=strategy)
    title = "From B" if strategy is ConflictResolution.TARGET_WINS else "From A"
    assert a.get_payment_stage("s1").title == title  # type: ignore[union-attr]
    merged = await net.sync(c, a, conflict_resolution=ConflictResolution.MERGE)
    assert [x.outcome for x in merged.conflicts] == ["merged"]
    await net.settle("A", "B", "C")
    for node in (a, b, c):
        final = node.get_payment_stage("s1")
        assert final is not None
        assert (final.title, final.price) == (title, 99)
    assert snapshot(a) == snapshot(b) == snapshot(c)
