"""Review: replication under stress. Echo suppression in chains and triangles, stale and
restored peers, hostile counters, selective kinds on the serving side, garbage from a
peer, and local writes racing the engine."""

from __future__ import annotations

import asyncio
import shutil
import threading
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import pytest

from neonpay import ConflictResolution, DiscountType, NeonPay, SyncDirection
from neonpay.store.base import Outcome, Record
from neonpay.sync import BotSyncConfig, MultiBotSyncManager, SyncManager, SyncStatus
from neonpay.sync.clock import HLC, Order, compare_versions
from neonpay.sync.local import LocalTransport
from neonpay.sync.protocol import ChangesPage
from neonpay.sync.service import SyncService

from .network import Network, catalog, snapshot, stage
from .test_multi import _factory, _peer

STRATEGIES = list(ConflictResolution)


def _content(state: dict[str, dict[str, tuple[bool, dict[str, Any], dict[str, int]]]]) -> Any:
    """A snapshot without the version vectors: what a person sees."""
    return {kind: {key: v[:2] for key, v in keys.items()} for kind, keys in state.items()}


def _prices(node: NeonPay) -> dict[str, int]:
    return {k: s.price for k, s in node.list_payment_stages().items()}


# --- echo suppression -------------------------------------------------------------------
async def test_a_change_relayed_through_a_node_reaches_the_original_sender(
    net: Network,
) -> None:
    """B received X from A (marked as from A); C's later change to X reaches B from C and
    must still go on to A, though A and C never talk."""
    a, b, c = net.node("A"), net.node("B"), net.node("C")
    a.create_payment_stage("x", stage(price=10))
    await net.sync(b, a)  # B pulls X from A
    await net.sync(b, c)  # B passes it on to C
    c.update_payment_stage("x", price=33)
    await net.sync(b, c)  # C's change arrives at B from C
    await net.sync(b, a)  # ... and goes on to A
    assert _prices(a) == _prices(b) == _prices(c) == {"x": 33}
    assert snapshot(a) == snapshot(b) == snapshot(c)


@pytest.mark.parametrize("strategy", STRATEGIES)
async def test_triangle_with_deletes_and_re_creates_converges(
    net: Network, strategy: ConflictResolution
) -> None:
    """A<->B, B<->C, A<->C: deletes and re-creates travel every way round and nothing
    deleted comes back unless it was re-created after the delete."""
    a, b, c = net.node("A"), net.node("B"), net.node("C")
    pairs = [(a, b), (b, c), (a, c)]

    async def round_trip() -> None:
        for x, y in pairs:
            result = await net.sync(x, y, conflict_resolution=strategy)
            assert result.status is SyncStatus.COMPLETED, result.errors

    a.create_payment_stage("x", stage(price=1))
    a.create_payment_stage("y", stage(price=2))
    await round_trip()
    c.remove_payment_stage("x")
    await net.sync(b, c, conflict_resolution=strategy)  # B learns of the delete
    b.create_payment_stage("x", stage(price=5))  # ... and re-creates it after it
    a.remove_payment_stage("y")
    await round_trip()
    await round_trip()
    assert _prices(a) == _prices(b) == _prices(c) == {"x": 5}
    c.remove_payment_stage("x")
    a.create_payment_stage("y", stage(price=7))
    await round_trip()
    await round_trip()
    assert _prices(a) == _prices(b) == _prices(c) == {"y": 7}
    assert snapshot(a) == snapshot(b) == snapshot(c)
    for x, y in pairs:  # quiet: nothing echoes round the triangle
        assert (await net.sync(x, y, conflict_resolution=strategy)).items_synced == 0


# --- stale peers --------------------------------------------------------------------------
@pytest.mark.parametrize("strategy", STRATEGIES)
async def test_a_stale_peer_cannot_roll_back_a_price(
    net: Network, strategy: ConflictResolution
) -> None:
    a, b, c = net.node("A"), net.node("B"), net.node("C")
    a.create_payment_stage("s1", stage(price=10))
    await net.sync(a, b)
    await net.sync(a, c)  # C keeps the old price from now on
    a.update_payment_stage("s1", price=20)
    await net.sync(a, b)
    for direction in SyncDirection:
        result = await net.sync(c, b, direction=direction, conflict_resolution=strategy)
        assert result.conflicts == []
        assert _prices(b) == {"s1": 20}
    assert _prices(c) == {"s1": 20}


def _restart_from_backup(net: Network, name: str, backup: str) -> NeonPay:
    """Close ``name`` and put its store back as it was when ``backup`` was taken."""
    net.nodes[name].close()
    path = net.root / f"{name}.db"
    for suffix in ("-wal", "-shm"):
        (net.root / f"{name}.db{suffix}").unlink(missing_ok=True)
    shutil.copyfile(backup, path)
    return net.reopen(name)


async def test_a_peer_restored_from_an_old_backup_gets_everything_again(net: Network) -> None:
    """A's store is put back to an old backup (same node id). What B had already sent to
    A, and what A had sent to B since the backup, must reach A again; nothing old comes
    back to B."""
    a, b = net.node("A"), net.node("B")
    a.create_payment_stage("s1", stage(price=10))
    a.create_payment_stage("gone", stage(price=9))
    await net.sync(b, a)
    a.close()
    backup = str(net.root / "A.backup")
    shutil.copyfile(net.root / "A.db", backup)
    a = net.reopen("A")
    b.update_payment_stage("s1", price=20)
    b.create_payment_stage("s2", stage(price=2))
    assert b.remove_payment_stage("gone")
    a.create_payment_stage("s3", stage(price=3))
    await net.sync(b, a)
    assert _prices(a) == _prices(b) == {"s1": 20, "s2": 2, "s3": 3}
    a = _restart_from_backup(net, "A", backup)
    assert _prices(a) == {"s1": 10, "gone": 9}
    result = await net.sync(b, a)
    assert result.status is SyncStatus.COMPLETED, result.errors
    assert _prices(b) == {"s1": 20, "s2": 2, "s3": 3}  # nothing rolled back
    assert _prices(a) == _prices(b)
    assert snapshot(a) == snapshot(b)
    a.update_payment_stage("s3", price=4)  # A's next write is not lost either
    await net.sync(b, a)
    assert _prices(b)["s3"] == 4


@pytest.mark.parametrize("direction", list(SyncDirection))
@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("deleted_on", ["A", "B"])
async def test_tombstone_against_a_concurrent_edit_in_every_direction(
    net: Network, direction: SyncDirection, strategy: ConflictResolution, deleted_on: str
) -> None:
    a, b = net.node("A"), net.node("B")
    a.create_payment_stage("s1", stage(price=10))
    await net.sync(a, b)
    deleter, editor = (a, b) if deleted_on == "A" else (b, a)
    deleter.remove_payment_stage("s1")
    editor.update_payment_stage("s1", price=55)
    before_a, before_b = snapshot(a), snapshot(b)
    result = await net.sync(a, b, direction=direction, conflict_resolution=strategy)
    assert result.status is SyncStatus.COMPLETED, result.errors
    assert len(result.conflicts) == 1
    if direction is SyncDirection.PULL:
        assert snapshot(b) == before_b  # a PULL peer never receives from us
    if direction is SyncDirection.PUSH:  # a PUSH peer never writes its fields to us
        assert _content(snapshot(a)) == _content(before_a)
    if direction is SyncDirection.BIDIRECTIONAL and strategy is not ConflictResolution.ASK_USER:
        assert snapshot(a) == snapshot(b)
    for _ in range(2):  # a second and third run change nothing and bring nothing back
        again = await net.sync(a, b, direction=direction, conflict_resolution=strategy)
        assert again.items_synced == 0
    if strategy is ConflictResolution.ASK_USER:
        assert snapshot(a) == before_a


# --- promo usage ---------------------------------------------------------------------------
def _usage_state(node: NeonPay, counts: dict[str, int], version: dict[str, int]) -> Record:
    current = node.store.get("promo_usage", "SALE")
    assert current is not None
    later = HLC.decode(current.hlc)
    stamp = HLC(later.wall_ms + 1, 0, "EVIL").encode()
    return Record(
        kind="promo_usage",
        key="SALE",
        fields=counts,
        version=version,
        hlc=stamp,
        field_hlcs=dict.fromkeys(sorted(counts), stamp),
        origin="EVIL",
        updated_at=0.0,
    )


@pytest.mark.parametrize("how", ["dominating", "equal"])
async def test_a_hostile_peer_cannot_lower_a_usage_counter(net: Network, how: str) -> None:
    a = net.node("A")
    a.promotions.create_promo_code("SALE", DiscountType.PERCENTAGE, 10, max_uses=5)
    a.promotions.record_use("SALE", 4)
    mine = a.store.get("promo_usage", "SALE")
    assert mine is not None
    version = dict(mine.version)
    if how == "dominating":
        version["EVIL"] = 1
    evil = _usage_state(a, {"A": 0, "EVIL": 1}, version)
    result = SyncService(a).apply([evil], sender="EVIL")
    # equal versions with another stamp: two writes under one counter (neonpay.sync.identity)
    refused = Outcome.REJECTED if how == "equal" else None
    assert (result.results[0].outcome is Outcome.REJECTED) is (refused is not None)
    assert a.store.get("promo_usage", "SALE").fields["A"] == 4  # type: ignore[union-attr]
    assert a.promotions.usage("SALE") >= 4
    ok, _, _ = a.promotions.validate("SALE", 1, 100)
    assert a.promotions.usage("SALE") < 5 or not ok


@pytest.mark.parametrize("strategy", STRATEGIES)
async def test_usage_totals_are_exact_under_concurrent_uses_everywhere(
    net: Network, strategy: ConflictResolution
) -> None:
    nodes = [net.node(n) for n in "ABCD"]
    nodes[0].promotions.create_promo_code("SALE", DiscountType.PERCENTAGE, 10)
    await net.settle(conflict_resolution=strategy)
    expected = 0
    for step in range(3):
        for i, node in enumerate(nodes):
            node.promotions.record_use("SALE", i + step + 1)
            expected += i + step + 1
        for i, node in enumerate(nodes):  # a partial round in a ring
            await net.sync(node, nodes[(i + 1) % 4], conflict_resolution=strategy)
    await net.settle(conflict_resolution=strategy)
    assert [n.promotions.usage("SALE") for n in nodes] == [expected] * 4
    assert all(n.store.list_conflicts() == [] for n in nodes)


# --- selective kinds and direction on the serving side ------------------------------------
async def test_kinds_a_node_does_not_exchange_with_a_peer_are_refused_when_served(
    net: Network,
) -> None:
    """B syncs no settings and no promo codes (hence no usage) with A. A, configured for
    everything, pushes and pulls: B neither takes those from A nor hands out its own."""
    a, b = net.node("A"), net.node("B")
    b.settings.set("motto", "B's")
    b.promotions.record_use("BSALE", 2)
    async with MultiBotSyncManager(b, transport_factory=_factory(net)) as at_b:
        at_b.add_bot(_peer("A", sync_settings=False, sync_promo_codes=False))
        first = await at_b.sync_with_bot("A")  # B now knows A's node id
        assert first.status is SyncStatus.COMPLETED
    a.settings.set("motto", "A's")
    a.settings.set("only_a", 1)
    a.create_payment_stage("s1", stage())
    a.promotions.create_promo_code("ASALE", DiscountType.PERCENTAGE, 10)
    a.promotions.record_use("ASALE", 3)
    kinds = ("setting", "promo_code", "promo_usage")
    before = {k: b.store.list(k, include_deleted=True) for k in kinds}
    result = await net.sync(a, b)
    assert {k: b.store.list(k, include_deleted=True) for k in kinds} == before
    assert b.get_payment_stage("s1") is not None
    assert a.settings.get("motto") == "A's"
    assert a.promotions.usage("BSALE") == 0
    assert result.status is SyncStatus.PARTIAL  # told, not silent
    assert any("setting" in e for e in result.errors)


# --- garbage from a peer -------------------------------------------------------------------
def _forged(record: Record, **fields: Any) -> Record:
    return replace(record, fields={**record.fields, **fields})


class _Forging(LocalTransport):
    """A peer that sends some of its states with other fields."""

    def __init__(self, service: SyncService, forge: dict[str, dict[str, Any]]) -> None:
        super().__init__(service)
        self.forge = forge

    async def pull(
        self, since: int, limit: int, kinds: Sequence[str], *, requester: str
    ) -> ChangesPage:
        page = await super().pull(since, limit, kinds, requester=requester)
        records = [
            _forged(r, **self.forge[r.key]) if r.key in self.forge else r for r in page.records
        ]
        return ChangesPage(page.node_id, records, page.next_cursor, page.has_more)


@pytest.mark.parametrize(
    "forge", [{"price": 0}, {"title": "x" * 1_000_000}, {"price": "10"}, {"extra": 1}]
)
async def test_a_pulled_invalid_state_is_refused_item_wise_and_reported(
    net: Network, forge: dict[str, Any]
) -> None:
    a, b = net.node("A"), net.node("B")
    a.create_payment_stage("bad", stage(price=5))
    await net.sync(a, b)
    b.update_payment_stage("bad", price=6)
    b.create_payment_stage("good", stage(price=7))
    before = a.store.get("payment_stage", "bad")
    manager = SyncManager(
        a, BotSyncConfig(target_bot_name="B"), _Forging(SyncService(b), {"bad": forge})
    )
    net.managers.append(manager)
    result = await manager.sync_all()
    assert result.status is SyncStatus.PARTIAL
    assert any("'bad'" in e and "'B'" in e for e in result.errors)
    assert a.store.get("payment_stage", "bad") == before  # nothing changed here
    assert _prices(a) == {"bad": 5, "good": 7}


async def test_a_page_of_nothing_but_garbage_is_not_a_success(net: Network) -> None:
    a, b = net.node("A"), net.node("B")
    b.create_payment_stage("bad", stage(price=5))
    seq = a.store.last_seq()
    manager = SyncManager(
        a, BotSyncConfig(target_bot_name="B"), _Forging(SyncService(b), {"bad": {"price": 0}})
    )
    net.managers.append(manager)
    result = await manager.sync_all()
    assert result.status is SyncStatus.PARTIAL
    assert result.pulled == 0
    assert a.store.last_seq() == seq
    assert a.get_payment_stage("bad") is None


async def test_a_clock_stamp_from_the_far_future_is_refused(net: Network) -> None:
    """A peer whose clock (or intent) is a century ahead would otherwise win every
    last-writer-wins decision forever and drag every node's clock along."""
    a = net.node("A")
    a.create_payment_stage("s1", stage(price=10))
    mine = a.store.get("payment_stage", "s1")
    assert mine is not None
    future = HLC(HLC.decode(mine.hlc).wall_ms + 100 * 365 * 86_400_000, 0, "EVIL").encode()
    evil = replace(
        mine,
        fields={**mine.fields, "price": 1},
        version={**mine.version, "EVIL": 1},
        hlc=future,
        field_hlcs=dict.fromkeys(mine.field_hlcs, future),
        origin="EVIL",
    )
    before, clock = snapshot(a), a.store.last_hlc()
    (item,) = SyncService(a).apply([evil], sender="EVIL").results
    assert item.outcome is Outcome.REJECTED
    assert "future" in item.reason
    assert snapshot(a) == before
    assert a.store.last_hlc() == clock


class _Stuck(LocalTransport):
    """A broken peer that says there is more without moving its cursor (for a while:
    the test must end even when the engine keeps asking)."""

    async def pull(
        self, since: int, limit: int, kinds: Sequence[str], *, requester: str
    ) -> ChangesPage:
        await super().pull(since, limit, kinds, requester=requester)
        return ChangesPage(self.service.node_id, [], since, self.stats.requests < 100)


async def test_a_peer_whose_cursor_does_not_move_fails_the_sync_instead_of_spinning(
    net: Network,
) -> None:
    a, b = net.node("A"), net.node("B")
    transport = _Stuck(SyncService(b))
    manager = SyncManager(a, BotSyncConfig(target_bot_name="B"), transport)
    net.managers.append(manager)
    result = await manager.sync_all()
    assert result.status is SyncStatus.FAILED
    assert "cursor" in result.errors[0]
    assert transport.stats.requests < 5


# --- local writes racing the engine -----------------------------------------------------------
async def test_local_writes_during_syncs_are_never_dropped(net: Network) -> None:
    """A thread keeps editing a stage on A while A syncs with B, who edits it too: every
    write A made is included (causally) in the state both end with."""
    a, b = net.node("A"), net.node("B")
    a.create_payment_stage("s1", stage(price=1))
    await net.sync(a, b)
    written: list[Record] = []
    stop = threading.Event()

    def busy_admin() -> None:
        n = 0
        while not stop.is_set() and n < 300:
            n += 1
            a.update_payment_stage("s1", description=f"A edit {n}")
            state = a.store.get("payment_stage", "s1")
            assert state is not None
            written.append(state)

    writer = asyncio.create_task(asyncio.to_thread(busy_admin))
    try:
        for i in range(8):
            b.update_payment_stage("s1", price=i + 2)
            result = await net.sync(a, b)
            assert result.status in (SyncStatus.COMPLETED, SyncStatus.PARTIAL), result.errors
            await asyncio.sleep(0)
    finally:
        stop.set()
        await asyncio.wait_for(writer, timeout=10)
    await net.settle("A", "B")
    final = a.store.get("payment_stage", "s1")
    assert final is not None
    assert snapshot(a) == snapshot(b)
    for state in written:
        assert compare_versions(final.version, state.version) in (Order.AFTER, Order.EQUAL)
    assert catalog(a) == catalog(b)
