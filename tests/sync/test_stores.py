"""The engine on both stores: one bot on ``store_url`` (a SQLite file, then PostgreSQL)
syncing with a bot on SQLite, and its sync state surviving a restart."""

from __future__ import annotations

from neonpay import DiscountType, create_neonpay
from neonpay.sync import BotSyncConfig, ConflictResolution, MultiBotSyncManager, SyncStatus
from neonpay.sync.local import LocalTransport
from neonpay.sync.service import SyncService

from .network import Network, snapshot, stage


async def test_all_kinds_converge_across_stores(net: Network, store_url: str) -> None:
    a = net.node("A", storage=store_url)
    b = net.node("B")
    a.create_payment_stage("s1", stage(price=10))
    a.promotions.create_promo_code("SALE", DiscountType.PERCENTAGE, 15)
    b.templates.create_template("shop", description="B's shop")
    b.settings.set("motto", "B")
    first = await net.sync(a, b)
    assert first.status is SyncStatus.COMPLETED
    a.update_payment_stage("s1", price=20)
    b.update_payment_stage("s1", description="Changed on B")
    a.promotions.record_use("SALE", 2)
    b.promotions.record_use("SALE", 3)
    a.settings.set("motto", "A")
    result = await net.sync(a, b, conflict_resolution=ConflictResolution.MERGE)
    assert result.status is SyncStatus.COMPLETED
    assert [c.item_type for c in result.conflicts] == ["payment_stage"]
    assert snapshot(a) == snapshot(b)
    merged = a.get_payment_stage("s1")
    assert merged is not None
    assert (merged.price, merged.description) == (20, "Changed on B")
    assert a.promotions.usage("SALE") == b.promotions.usage("SALE") == 5


async def test_lag_counts_every_page(net: Network, store_url: str) -> None:
    a = net.node("A", storage=store_url)
    for i in range(12):
        a.create_payment_stage(f"s{i}", stage(price=i + 1))
    a.settings.set("motto", "x")
    assert a.store.count_feed(0) == 13
    assert a.store.count_feed(0, kinds=["setting"]) == 1
    assert a.store.count_feed(0, kinds=[]) == 0
    assert a.store.count_feed(a.store.last_seq()) == 0
    pages, since = 0, 0
    while True:
        page = a.store.feed(since, 5)
        pages += len(page.records)
        since = page.next_cursor
        if not page.has_more:
            break
    assert pages == 13


async def test_sync_state_survives_a_restart(net: Network, store_url: str) -> None:
    b = net.node("B")

    def factory(config: BotSyncConfig) -> LocalTransport:
        return LocalTransport(SyncService(b))

    a = create_neonpay(storage=store_url, node_id="A")
    a.create_payment_stage("s1", stage(price=10))
    async with MultiBotSyncManager(a, transport_factory=factory) as multi:
        multi.add_bot(
            BotSyncConfig(
                target_bot_name="B",
                conflict_resolution=ConflictResolution.ASK_USER,
                webhook_secret="kept-in-the-store",
            )
        )
        await multi.sync_with_bot("B")
        a.update_payment_stage("s1", price=20)
        b.update_payment_stage("s1", price=30)
        await multi.sync_with_bot("B")
        (pending,) = multi.list_conflicts()
    cursors = (a.store.get_cursor("B", "pull"), a.store.get_cursor("B", "push"))
    a.close()

    a = create_neonpay(storage=store_url)
    try:
        assert a.node_id == "A"
        async with MultiBotSyncManager(a, transport_factory=factory) as multi:
            (config,) = multi.list_bots()
            assert config.webhook_secret == "kept-in-the-store"
            assert (a.store.get_cursor("B", "pull"), a.store.get_cursor("B", "push")) == cursors
            stats = multi.get_sync_stats("B")
            assert stats["total_syncs"] == 2
            assert stats["total_conflicts"] == 1
            (again,) = multi.list_conflicts()
            assert again.id == pending.id
            multi.resolve_conflict(again.id or 0, "target")
            result = await multi.sync_with_bot("B")
            assert result.status is SyncStatus.COMPLETED
        assert snapshot(a) == snapshot(b)
    finally:
        a.close()
