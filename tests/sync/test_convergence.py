"""Two and three bots converge on one catalog, for all four kinds, with every strategy;
changes travel along chains; concurrent resolutions settle without ping-pong."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from neonpay import ConflictResolution, DiscountType, NeonPay, SyncDirection
from neonpay.store.base import Record
from neonpay.sync import SyncStatus
from neonpay.sync.local import LocalTransport
from neonpay.sync.manager import SyncManager
from neonpay.sync.protocol import ChangesPage, PushResult

from .network import Network, catalog, snapshot, stage, template_products

STRATEGIES = list(ConflictResolution)


def _edit_everything(node: NeonPay, tag: str, price: int) -> None:
    """Changes on all four kinds; the shared keys collide with the other nodes' edits."""
    node.update_payment_stage("shared", price=price, title=f"Title {tag}")
    node.create_payment_stage(f"own-{tag}", stage(price=price))
    node.promotions.update_promo_code("SHARED", discount_value=price % 90 + 1)
    node.promotions.record_use("SHARED", price)
    node.templates.update_template("shop", products=template_products(price, price + 1))
    node.settings.set("motto", f"motto {tag}")
    node.settings.set(f"only_{tag}", price)


def _seed(node: NeonPay) -> None:
    node.create_payment_stage("shared", stage(price=5))
    node.promotions.create_promo_code("SHARED", DiscountType.PERCENTAGE, 10)
    node.templates.create_template("shop", description="the shop")
    node.settings.set("motto", "seed")


async def _converge(net: Network, names: Sequence[str], strategy: ConflictResolution) -> None:
    nodes = [net.nodes[n] for n in names]
    if strategy is ConflictResolution.ASK_USER:
        for _ in range(3):
            for i, a in enumerate(nodes):
                for b in nodes[i + 1 :]:
                    await net.sync(a, b, conflict_resolution=strategy)
            for node in nodes:
                manager = net.link(node, nodes[0] if node is not nodes[0] else nodes[1])
                for conflict in manager.list_conflicts() + _all_pending(node, manager):
                    assert conflict.id is not None
                    manager.resolve_conflict(conflict.id, "merge")
    await net.settle(*names, conflict_resolution=strategy)


def _all_pending(node: NeonPay, manager: SyncManager) -> list:  # type: ignore[type-arg]
    from neonpay.sync.pending import conflict_from_row

    return [
        conflict_from_row(r) for r in node.store.list_conflicts() if r.peer != manager.peer_name
    ]


@pytest.mark.parametrize("strategy", STRATEGIES)
async def test_two_nodes_converge_on_all_kinds(net: Network, strategy: ConflictResolution) -> None:
    a, b = net.node("A"), net.node("B")
    _seed(a)
    await net.sync(a, b)
    _edit_everything(a, "a", 11)
    _edit_everything(b, "b", 22)
    result = await net.sync(a, b, conflict_resolution=strategy)
    assert {c.item_type for c in result.conflicts} == {
        "payment_stage",
        "promo_code",
        "template",
        "setting",
    }
    await _converge(net, ["A", "B"], strategy)
    assert snapshot(a) == snapshot(b)
    assert a.promotions.usage("SHARED") == b.promotions.usage("SHARED") == 33
    assert {"own-a", "own-b", "shared"} <= set(a.list_payment_stages())


@pytest.mark.parametrize("strategy", STRATEGIES)
async def test_three_nodes_converge_on_all_kinds(
    net: Network, strategy: ConflictResolution
) -> None:
    a, b, c = net.node("A"), net.node("B"), net.node("C")
    _seed(a)
    await net.sync(a, b)
    await net.sync(a, c)
    _edit_everything(a, "a", 11)
    _edit_everything(b, "b", 22)
    _edit_everything(c, "c", 33)
    c.remove_payment_stage("own-c")
    await net.sync(a, b, conflict_resolution=strategy)
    await net.sync(b, c, conflict_resolution=strategy)
    await net.sync(c, a, conflict_resolution=strategy)
    await _converge(net, ["A", "B", "C"], strategy)
    assert snapshot(a) == snapshot(b) == snapshot(c)
    assert catalog(a)["payment_stage"].keys() == {"own-a", "own-b", "shared"}
    for node in (a, b, c):
        assert node.promotions.usage("SHARED") == 66


async def test_changes_travel_along_a_chain(net: Network) -> None:
    a, b, c = net.node("A"), net.node("B"), net.node("C")
    a_to_b = net.link(a, b, direction=SyncDirection.PUSH)
    b_to_c = net.link(b, c, direction=SyncDirection.PUSH)
    a.create_payment_stage("s1", stage(price=10))
    a.promotions.record_use("SALE", 2)
    await a_to_b.sync_all()
    await b_to_c.sync_all()
    assert catalog(c) == catalog(a)
    a.update_payment_stage("s1", price=12)
    a.remove_payment_stage("s1")
    await a_to_b.sync_all()
    await b_to_c.sync_all()
    assert c.get_payment_stage("s1") is None
    assert snapshot(c) == snapshot(b) == snapshot(a)
    # nothing came back to A, and a second pass moves nothing
    assert (await a_to_b.sync_all()).items_synced == 0
    assert (await b_to_c.sync_all()).items_synced == 0


class _Gate:
    """Holds every pull answer until all parties have fetched theirs."""

    def __init__(self, parties: int) -> None:
        self.parties = parties
        self.arrived = 0
        self.open = asyncio.Event()

    async def wait(self) -> None:
        self.arrived += 1
        if self.arrived >= self.parties:
            self.open.set()
        await asyncio.wait_for(self.open.wait(), timeout=5)


class _GatedTransport(LocalTransport):
    """Both nodes fetch before either resolves, and resolve before either pushes: the
    two resolutions really are concurrent."""

    def __init__(self, target: NeonPay, pulled: _Gate, pushing: _Gate) -> None:
        from neonpay.sync.service import SyncService

        super().__init__(SyncService(target), name=target.node_id)
        self.pulled: _Gate | None = pulled
        self.pushing: _Gate | None = pushing

    async def pull(
        self, since: int, limit: int, kinds: Sequence[str], *, requester: str
    ) -> ChangesPage:
        page = await super().pull(since, limit, kinds, requester=requester)
        gate, self.pulled = self.pulled, None
        if gate is not None:
            await gate.wait()
        return page

    async def push(self, records: Sequence[Record], *, sender: str) -> PushResult:
        gate, self.pushing = self.pushing, None
        if gate is not None:
            await gate.wait()
        return await super().push(records, sender=sender)


@pytest.mark.parametrize(
    "strategy",
    [ConflictResolution.SOURCE_WINS, ConflictResolution.TARGET_WINS, ConflictResolution.MERGE],
)
async def test_concurrent_resolutions_converge_without_ping_pong(
    net: Network, strategy: ConflictResolution
) -> None:
    from neonpay import BotSyncConfig

    a, b = net.node("A"), net.node("B")
    a.create_payment_stage("s1", stage(price=10))
    await net.sync(a, b)
    a.update_payment_stage("s1", price=20)
    b.update_payment_stage("s1", price=30)
    pulled, pushing = _Gate(2), _Gate(2)
    config = BotSyncConfig(target_bot_name="B", conflict_resolution=strategy)
    at_a = SyncManager(a, config, _GatedTransport(b, pulled, pushing))
    config = BotSyncConfig(target_bot_name="A", conflict_resolution=strategy)
    at_b = SyncManager(b, config, _GatedTransport(a, pulled, pushing))
    net.managers += [at_a, at_b]
    first = await asyncio.gather(at_a.sync_all(), at_b.sync_all())
    assert all(r.status is SyncStatus.COMPLETED for r in first), [r.errors for r in first]
    assert all(len(r.conflicts) == 1 for r in first)  # both sides resolved it
    history: list[int] = []
    for _ in range(4):
        results = await asyncio.gather(at_a.sync_all(), at_b.sync_all())
        history.append(sum(r.items_synced + len(r.conflicts) for r in results))
    assert history[-2:] == [0, 0], history  # quiet, not alternating
    assert sum(1 for moved in history if moved) <= 1
    assert snapshot(a) == snapshot(b)
    prices = {a.get_payment_stage("s1").price, b.get_payment_stage("s1").price}  # type: ignore[union-attr]
    assert len(prices) == 1
    assert prices <= {20, 30}


async def test_records_keep_their_stamps_across_nodes(net: Network) -> None:
    a, b = net.node("A"), net.node("B")
    a.create_payment_stage("s1", stage())
    await net.sync(a, b)
    here = a.store.get("payment_stage", "s1")
    there = b.store.get("payment_stage", "s1")
    assert isinstance(here, Record)
    assert isinstance(there, Record)
    assert (here.version, here.hlc, here.field_hlcs) == (there.version, there.hlc, there.field_hlcs)
    assert there.origin == "A"
