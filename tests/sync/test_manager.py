"""SyncManager between two bots: strategies, directions, deletes, selective kinds,
incremental cost, failures and crash recovery."""

from __future__ import annotations

from typing import Any

import pytest

from neonpay import ConflictResolution, DiscountType, NeonPay, SyncDirection
from neonpay.errors import StorageError
from neonpay.store.base import KINDS
from neonpay.sync import BotSyncConfig, ConflictResolver, SyncManager, SyncStatus
from neonpay.sync.conflicts import SyncConflict
from neonpay.sync.local import LocalTransport
from neonpay.sync.service import SyncService

from .network import Network, catalog, snapshot, stage

STRATEGIES = list(ConflictResolution)


def _prices(node: NeonPay) -> dict[str, int]:
    return {k: s.price for k, s in node.list_payment_stages().items()}


async def _two(net: Network) -> tuple[NeonPay, NeonPay]:
    a, b = net.node("A"), net.node("B")
    a.create_payment_stage("s1", stage(price=10))
    assert (await net.sync(a, b)).status is SyncStatus.COMPLETED
    assert _prices(b) == {"s1": 10}
    return a, b


async def test_first_sync_moves_all_four_kinds_both_ways(net: Network) -> None:
    a, b = net.node("A"), net.node("B")
    a.create_payment_stage("s1", stage(price=10))
    a.promotions.create_promo_code("SALE", DiscountType.PERCENTAGE, 20, max_uses=100)
    a.promotions.record_use("SALE")
    b.templates.create_template("shop", description="Main shop")
    b.settings.set("thank_you_message", "Thanks!")
    b.promotions.record_use("SALE", 2)
    result = await net.sync(a, b)
    assert result.status is SyncStatus.COMPLETED, result.errors
    assert result.pushed == 3
    assert result.pulled == 3
    assert result.items_synced == 6
    assert result.conflicts == []
    assert result.errors == []
    assert result.bytes_sent > 0
    assert result.bytes_received > 0
    assert result.finished_at >= result.started_at
    assert catalog(a) == catalog(b)
    assert a.promotions.usage("SALE") == b.promotions.usage("SALE") == 3
    assert b.thank_you_message == a.thank_you_message == "Thanks!"


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("edited_on", ["A", "B"])
async def test_a_one_sided_change_is_never_a_conflict(
    net: Network, strategy: ConflictResolution, edited_on: str
) -> None:
    a, b = await _two(net)
    (a if edited_on == "A" else b).update_payment_stage("s1", price=25, title="Renamed")
    result = await net.sync(a, b, conflict_resolution=strategy)
    assert result.conflicts == []
    assert result.status is SyncStatus.COMPLETED
    assert _prices(a) == _prices(b) == {"s1": 25}
    assert a.store.list_conflicts() == []


async def _concurrent_edit(net: Network) -> tuple[NeonPay, NeonPay]:
    a, b = await _two(net)
    a.update_payment_stage("s1", price=20, title="A title")
    b.update_payment_stage("s1", price=30, description="B description")
    return a, b


async def test_merge_goes_field_by_field(net: Network) -> None:
    a, b = await _concurrent_edit(net)
    result = await net.sync(a, b, conflict_resolution=ConflictResolution.MERGE)
    (conflict,) = result.conflicts
    assert conflict.outcome == "merged"
    for node in (a, b):
        s = node.get_payment_stage("s1")
        assert s is not None
        assert (s.title, s.description, s.price) == ("A title", "B description", 30)
    assert snapshot(a) == snapshot(b)
    again = await net.sync(a, b, conflict_resolution=ConflictResolution.MERGE)
    assert again.items_synced == 0
    assert again.conflicts == []


@pytest.mark.parametrize(
    ("strategy", "winner"),
    [(ConflictResolution.SOURCE_WINS, 20), (ConflictResolution.TARGET_WINS, 30)],
)
async def test_source_and_target_wins(
    net: Network, strategy: ConflictResolution, winner: int
) -> None:
    a, b = await _concurrent_edit(net)
    result = await net.sync(a, b, conflict_resolution=strategy)
    (conflict,) = result.conflicts
    assert conflict.item_type == "payment_stage"
    assert conflict.item_id == "s1"
    assert conflict.source_data["price"] == 20
    assert conflict.target_data["price"] == 30
    assert conflict.source_version == {"A": 2}
    assert conflict.target_version == {"A": 1, "B": 1}
    assert _prices(a) == _prices(b) == {"s1": winner}
    assert snapshot(a) == snapshot(b)
    assert (await net.sync(a, b, conflict_resolution=strategy)).items_synced == 0


async def test_ask_user_keeps_both_and_stores_the_conflict_once(net: Network) -> None:
    a, b = await _concurrent_edit(net)
    result = await net.sync(a, b, conflict_resolution=ConflictResolution.ASK_USER)
    (conflict,) = result.conflicts
    assert conflict.outcome == "pending"
    assert conflict.id is not None
    assert result.status is SyncStatus.COMPLETED
    assert _prices(a) == {"s1": 20}
    assert _prices(b) == {"s1": 30}
    await net.sync(a, b, conflict_resolution=ConflictResolution.ASK_USER)
    (row,) = a.store.list_conflicts()
    assert row.id == conflict.id
    assert row.local.fields["price"] == 20
    assert row.remote.fields["price"] == 30


async def test_custom_resolver_of_the_spec(net: Network) -> None:
    class CustomConflictResolver(ConflictResolver):
        def resolve_conflict(self, conflict: SyncConflict) -> dict[str, Any] | None:
            if conflict.item_type == "payment_stage":
                if conflict.source_data.get("price", 0) > conflict.target_data.get("price", 0):
                    return conflict.source_data
                return conflict.target_data
            return super().resolve_conflict(conflict)

    a, b = await _concurrent_edit(net)
    a.settings.set("motto", "from A")
    b.settings.set("motto", "from B")
    sync_manager = net.link(a, b, conflict_resolution=ConflictResolution.SOURCE_WINS)
    sync_manager.conflict_resolver = CustomConflictResolver()
    result = await sync_manager.sync_all()
    outcomes = {c.item_type: c.outcome for c in result.conflicts}
    assert outcomes == {"payment_stage": "custom", "setting": "source"}
    assert _prices(a) == _prices(b) == {"s1": 30}  # the higher price
    assert a.settings.get("motto") == b.settings.get("motto") == "from A"  # configured
    assert snapshot(a) == snapshot(b)


async def test_resolver_returning_none_leaves_both_unresolved(net: Network) -> None:
    class Undecided(ConflictResolver):
        def resolve_conflict(self, conflict: SyncConflict) -> dict[str, Any] | None:
            return None

    a, b = await _concurrent_edit(net)
    before_a, before_b = snapshot(a), snapshot(b)
    manager = net.link(a, b)
    manager.conflict_resolver = Undecided()
    result = await manager.sync_all()
    assert [c.outcome for c in result.conflicts] == ["unresolved"]
    assert result.status is SyncStatus.COMPLETED
    assert snapshot(a) == before_a
    assert snapshot(b) == before_b


async def test_resolver_choosing_invalid_fields_writes_nothing(net: Network) -> None:
    class Broken(ConflictResolver):
        def resolve_conflict(self, conflict: SyncConflict) -> dict[str, Any] | None:
            return {**conflict.source_data, "price": -5}

    a, b = await _concurrent_edit(net)
    before_a, before_b = snapshot(a), snapshot(b)
    manager = net.link(a, b)
    manager.conflict_resolver = Broken()
    result = await manager.sync_all()
    assert result.status is SyncStatus.PARTIAL
    assert "price" in result.errors[0]
    assert snapshot(a) == before_a
    assert snapshot(b) == before_b


async def test_resolver_that_raises_does_not_break_the_run(net: Network) -> None:
    class Crashing(ConflictResolver):
        def resolve_conflict(self, conflict: SyncConflict) -> dict[str, Any] | None:
            raise RuntimeError("boom")

    a, b = await _concurrent_edit(net)
    b.create_payment_stage("s2", stage(price=3))
    manager = net.link(a, b)
    manager.conflict_resolver = Crashing()
    result = await manager.sync_all()
    assert result.status is SyncStatus.PARTIAL
    assert "boom" in result.errors[0]
    assert _prices(a) == {"s1": 20, "s2": 3}


async def test_resolver_with_its_own_strategy(net: Network) -> None:
    a, b = await _concurrent_edit(net)
    manager = net.link(a, b, conflict_resolution=ConflictResolution.MERGE)
    manager.conflict_resolver = ConflictResolver(ConflictResolution.TARGET_WINS)
    result = await manager.sync_all()
    assert [c.outcome for c in result.conflicts] == ["target"]
    assert _prices(a) == _prices(b) == {"s1": 30}


# --- deletes ------------------------------------------------------------------------------
async def test_deletes_replicate_and_a_stale_peer_cannot_resurrect(net: Network) -> None:
    a, b, c = net.node("A"), net.node("B"), net.node("C")
    a.create_payment_stage("s1", stage(price=10))
    await net.sync(a, b)
    await net.sync(a, c)
    assert a.remove_payment_stage("s1")
    await net.sync(a, b)
    assert b.get_payment_stage("s1") is None
    for strategy in STRATEGIES:  # C still holds the old live state
        result = await net.sync(c, b, conflict_resolution=strategy)
        assert result.conflicts == []
    assert b.get_payment_stage("s1") is None
    assert c.get_payment_stage("s1") is None
    await net.sync(c, a)
    assert a.get_payment_stage("s1") is None
    a.create_payment_stage("s1", stage(price=44))  # re-created on purpose: it comes back
    await net.sync(a, c)
    assert _prices(c) == {"s1": 44}


@pytest.mark.parametrize("strategy", STRATEGIES)
async def test_delete_against_a_concurrent_edit_converges(
    net: Network, strategy: ConflictResolution
) -> None:
    a, b = await _two(net)
    a.remove_payment_stage("s1")
    b.update_payment_stage("s1", price=77)
    result = await net.sync(a, b, conflict_resolution=strategy)
    assert len(result.conflicts) == 1
    if strategy is ConflictResolution.ASK_USER:
        (pending,) = a.store.list_conflicts()
        a_sync = net.link(a, b)
        a_sync.resolve_conflict(pending.id, "target")
        await a_sync.sync_all()
    assert snapshot(a) == snapshot(b)
    if strategy is ConflictResolution.SOURCE_WINS:
        assert a.get_payment_stage("s1") is None
    if strategy in (ConflictResolution.TARGET_WINS, ConflictResolution.ASK_USER):
        assert _prices(a) == {"s1": 77}


# --- selective sync and directions --------------------------------------------------------
async def test_selective_sync_limits_kinds_both_ways(net: Network) -> None:
    a, b = net.node("A"), net.node("B")
    a.create_payment_stage("s1", stage())
    a.promotions.create_promo_code("SALE", DiscountType.FIXED_AMOUNT, 2)
    a.promotions.record_use("SALE")
    b.settings.set("motto", "B")
    b.templates.create_template("shop")
    result = await net.sync(a, b, sync_promo_codes=False, sync_settings=False, sync_analytics=False)
    assert result.status is SyncStatus.COMPLETED
    assert b.list_payment_stages().keys() == {"s1"}
    assert b.promotions.list_promo_codes() == []
    assert b.promotions.usage("SALE") == 0
    assert a.templates.list_templates().keys() == {"shop"}
    assert a.settings.get("motto") is None


async def test_push_peer_never_writes_to_us(net: Network) -> None:
    a, b = net.node("A"), net.node("B")
    a.create_payment_stage("mine", stage(price=1))
    b.create_payment_stage("theirs", stage(price=2))
    result = await net.sync(a, b, direction=SyncDirection.PUSH)
    assert result.status is SyncStatus.COMPLETED
    assert result.pulled == 0
    assert _prices(a) == {"mine": 1}
    assert _prices(b) == {"mine": 1, "theirs": 2}


async def test_pull_peer_never_receives_from_us(net: Network) -> None:
    a, b = net.node("A"), net.node("B")
    a.create_payment_stage("mine", stage(price=1))
    b.create_payment_stage("theirs", stage(price=2))
    result = await net.sync(a, b, direction=SyncDirection.PULL)
    assert result.status is SyncStatus.COMPLETED
    assert result.pushed == 0
    assert _prices(a) == {"mine": 1, "theirs": 2}
    assert _prices(b) == {"theirs": 2}


@pytest.mark.parametrize(
    ("direction", "strategy", "price_a", "price_b"),
    [
        (SyncDirection.PUSH, ConflictResolution.MERGE, 20, 30),  # the merge needs B's fields
        (SyncDirection.PUSH, ConflictResolution.SOURCE_WINS, 20, 20),
        (SyncDirection.PUSH, ConflictResolution.TARGET_WINS, 20, 30),  # both left
        (SyncDirection.PUSH, ConflictResolution.ASK_USER, 20, 30),
        (SyncDirection.PULL, ConflictResolution.MERGE, 30, 30),
        (SyncDirection.PULL, ConflictResolution.SOURCE_WINS, 20, 30),  # both left
        (SyncDirection.PULL, ConflictResolution.TARGET_WINS, 30, 30),
        (SyncDirection.PULL, ConflictResolution.ASK_USER, 20, 30),
    ],
)
async def test_conflicts_respect_the_direction(
    net: Network,
    direction: SyncDirection,
    strategy: ConflictResolution,
    price_a: int,
    price_b: int,
) -> None:
    a, b = await _concurrent_edit(net)
    before_a, before_b = snapshot(a), snapshot(b)
    result = await net.sync(a, b, direction=direction, conflict_resolution=strategy)
    assert len(result.conflicts) == 1
    assert _prices(a) == {"s1": price_a}
    assert _prices(b) == {"s1": price_b}
    if direction is SyncDirection.PUSH and strategy is not ConflictResolution.SOURCE_WINS:
        assert snapshot(a) == before_a  # nothing written here
    if direction is SyncDirection.PULL:
        assert snapshot(b) == before_b  # the peer never receives
    if strategy is ConflictResolution.MERGE and direction is SyncDirection.PUSH:
        # The merge takes B's description, which a PUSH link may not write on A; pushing
        # it to B alone would leave B with a state A never stored. Both stay as they are.
        assert snapshot(b) == before_b
        assert result.conflicts[0].outcome == "kept_local"
    elif strategy is ConflictResolution.MERGE:
        merged = (a if direction is SyncDirection.PULL else b).get_payment_stage("s1")
        assert merged is not None
        assert (merged.title, merged.description) == ("A title", "B description")


# --- incremental cost ---------------------------------------------------------------------
async def test_a_sync_with_nothing_new_is_one_small_exchange(net: Network) -> None:
    a, b = net.node("A"), net.node("B")
    for i in range(300):
        a.create_payment_stage(f"s{i}", stage(price=i + 1))
    first = await net.sync(a, b)
    assert first.pushed == 300
    manager = net.link(a, b)
    idle = await manager.sync_all()
    assert idle.status is SyncStatus.COMPLETED
    assert idle.items_synced == 0
    assert idle.requests == 1  # one pull; nothing to push
    assert idle.bytes_sent + idle.bytes_received < 400
    push_only = await net.sync(a, b, direction=SyncDirection.PUSH)
    assert push_only.requests == 1
    a.update_payment_stage("s7", price=999)
    one = await net.sync(a, b)
    assert one.pushed == 1
    assert one.requests == 2
    assert one.bytes_sent < 1200


async def test_pages_are_bounded(net: Network) -> None:
    a, b = net.node("A"), net.node("B")
    for i in range(25):
        a.create_payment_stage(f"s{i}", stage(price=i + 1))
        b.create_payment_stage(f"t{i}", stage(price=i + 1))
    result = await net.sync(a, b, page_size=10)
    assert result.pushed == 25
    assert result.pulled == 25
    assert result.requests == 3 + 3  # 3 pages each way
    assert catalog(a) == catalog(b)


# --- failures -----------------------------------------------------------------------------
async def test_unreachable_peer_fails_honestly_and_nothing_is_lost(net: Network) -> None:
    a, b = net.node("A"), net.node("B")
    a.create_payment_stage("s1", stage())
    manager = net.link(a, b)
    transport = manager.transport
    assert isinstance(transport, LocalTransport)
    transport.online = False
    result = await manager.sync_all()
    assert result.status is SyncStatus.FAILED
    assert "unreachable" in result.errors[0]
    assert "'B'" in result.errors[0]
    (run,) = a.store.list_sync_runs("B")
    assert run.status == "failed"
    transport.online = True
    result = await manager.sync_all()
    assert result.status is SyncStatus.COMPLETED
    assert result.pushed == 1
    assert _prices(b) == {"s1": 10}


async def test_rejected_items_make_a_partial_sync(net: Network) -> None:
    a = net.node("A")
    b = net.node("B")
    b.stages.max_price = 50  # B sells nothing above 50 Stars
    a.create_payment_stage("cheap", stage(price=10))
    a.create_payment_stage("dear", stage(price=500))
    result = await net.sync(a, b)
    assert result.status is SyncStatus.PARTIAL
    assert any("dear" in e and "price" in e for e in result.errors)
    assert _prices(b) == {"cheap": 10}
    assert (await net.sync(a, b)).status is SyncStatus.COMPLETED  # not sent again


async def test_garbage_pulled_from_a_peer_is_refused(net: Network) -> None:
    a, b = net.node("A"), net.node("B")
    b.create_payment_stage("s1", stage(price=10))
    b.stages.max_price = 100_000
    b.create_payment_stage("dear", stage(price=50_000))  # valid there, not here
    result = await net.sync(a, b)
    assert result.status is SyncStatus.PARTIAL
    assert any("'dear'" in e for e in result.errors)
    assert _prices(a) == {"s1": 10}


async def test_crash_after_applying_before_the_cursor_repeats_harmlessly(
    net: Network, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = net.node("A"), net.node("B")
    for i in range(3):
        b.create_payment_stage(f"s{i}", stage(price=i + 1))
    b.promotions.record_use("SALE", 4)
    original = a.store.set_cursor
    calls = {"n": 0}

    def crash_once(*args: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise StorageError("disk gone (injected)")
        original(*args)

    monkeypatch.setattr(a.store, "set_cursor", crash_once)
    failed = await net.sync(a, b)
    assert failed.status is SyncStatus.FAILED
    assert "injected" in failed.errors[0]
    assert a.store.get_cursor("B", "pull").seq == 0
    applied = snapshot(a)
    seq = a.store.last_seq()
    assert _prices(a) == {"s0": 1, "s1": 2, "s2": 3}  # the batch was applied
    again = await net.sync(a, b)
    assert again.status is SyncStatus.COMPLETED
    assert again.pulled == 0
    assert snapshot(a) == applied
    assert a.store.last_seq() == seq
    assert a.promotions.usage("SALE") == 4
    assert a.store.get_cursor("B", "pull").seq == b.store.last_seq()


async def test_a_peer_whose_store_was_replaced_gets_everything_again(net: Network) -> None:
    a, b = net.node("A"), net.node("B")
    a.create_payment_stage("s1", stage())
    await net.sync(a, b, target_bot_name="peer")
    b.close()
    (net.root / "B.db").unlink()
    fresh = net.node("B2", storage=f"sqlite:///{net.root / 'B.db'}")
    result = await net.sync(a, fresh, target_bot_name="peer")
    assert result.status is SyncStatus.COMPLETED, result.errors
    assert _prices(fresh) == {"s1": 10}
    assert a.store.get_cursor("peer", "push").peer_node_id == "B2"


async def test_a_peer_that_is_this_node_is_refused(net: Network) -> None:
    a = net.node("A")
    result = await net.sync(a, a, target_bot_name="me")
    assert result.status is SyncStatus.FAILED
    assert "this very node" in result.errors[0]


async def test_closed_manager_refuses_to_sync(net: Network) -> None:
    a, b = net.node("A"), net.node("B")
    manager = net.link(a, b)
    async with manager:
        pass
    await manager.close()
    with pytest.raises(Exception, match="closed"):
        await manager.sync_all()


async def test_http_transport_is_created_lazily(net: Network) -> None:
    from neonpay import ConfigurationError

    a = net.node("A")
    manager = SyncManager(a, BotSyncConfig(target_bot_name="nowhere"))
    assert manager.transport is None
    result = await manager.sync_all()  # no URL: a clear failure, recorded
    assert result.status is SyncStatus.FAILED
    assert "webhook_url" in result.errors[0]
    with pytest.raises(ConfigurationError):
        await SyncManager(a, BotSyncConfig()).sync_all()
    await manager.close()


async def test_kinds_not_asked_for_are_refused(net: Network) -> None:
    a, b = net.node("A"), net.node("B")
    b.create_payment_stage("s1", stage())
    b.settings.set("motto", "B")

    class Careless(LocalTransport):
        async def pull(self, since: int, limit: int, kinds: Any, *, requester: str) -> Any:
            return await super().pull(since, limit, list(KINDS), requester=requester)

    manager = SyncManager(
        a, BotSyncConfig(target_bot_name="B", sync_settings=False), Careless(SyncService(b))
    )
    net.managers.append(manager)
    result = await manager.sync_all()
    assert result.status is SyncStatus.PARTIAL
    assert any("setting 'motto'" in e for e in result.errors)
    assert a.settings.get("motto") is None
    assert a.get_payment_stage("s1") is not None
