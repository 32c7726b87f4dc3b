"""MultiBotSyncManager: peers kept in the store, concurrent syncs, honest statistics,
pending conflicts, and automatic (timed and real-time) sync."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from neonpay import ConfigurationError, ConflictError, NeonPay, NotFoundError, ValidationError
from neonpay.sync import (
    BotSyncConfig,
    ConflictResolution,
    MultiBotSyncManager,
    SyncDirection,
    SyncStatus,
)
from neonpay.sync.local import LocalTransport
from neonpay.sync.service import SyncService

from .network import Network, snapshot, stage
from .network import wait_until as _wait_for

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"


def _factory(net: Network) -> Callable[[BotSyncConfig], LocalTransport]:
    def build(config: BotSyncConfig) -> LocalTransport:
        return LocalTransport(SyncService(net.nodes[config.name]), name=config.name)

    return build


def _peer(name: str, **options: Any) -> BotSyncConfig:
    return BotSyncConfig(target_bot_token=TOKEN, target_bot_name=name, **options)


def _running(multi: MultiBotSyncManager) -> bool:
    return multi.auto_sync_running


async def test_spec_setup_without_network_io(net: Network) -> None:
    neonpay = net.node("main")
    multi_sync = MultiBotSyncManager(neonpay)
    store_config = BotSyncConfig(
        target_bot_token="STORE_BOT_TOKEN",
        target_bot_name="Main Store Bot",
        direction=SyncDirection.BIDIRECTIONAL,
        auto_sync=True,
        sync_interval_minutes=30,
        webhook_url="https://store-bot.example.com/sync",
    )
    support_config = BotSyncConfig(
        target_bot_token="SUPPORT_BOT_TOKEN",
        target_bot_name="Support Bot",
        sync_payment_stages=False,
        direction=SyncDirection.PUSH,
        webhook_url="https://support-bot.example.com/sync",
    )
    multi_sync.add_bot(store_config)
    multi_sync.add_bot(support_config)
    assert [c.name for c in multi_sync.list_bots()] == ["Main Store Bot", "Support Bot"]
    stats = multi_sync.get_all_sync_stats()
    assert stats["Support Bot"]["total_syncs"] == 0
    assert stats["Support Bot"]["success_rate"] == 0.0
    await multi_sync.close()


async def test_adding_needs_a_name_and_a_url(net: Network) -> None:
    a = net.node("A")
    async with MultiBotSyncManager(a) as multi:
        with pytest.raises(ConfigurationError, match="target_bot_name"):
            multi.add_bot(BotSyncConfig(webhook_url="https://x.example.com"))
        with pytest.raises(ConfigurationError, match="webhook_url"):
            multi.add_bot(BotSyncConfig(target_bot_name="No URL"))
        assert multi.list_bots() == []
        assert a.store.list_peers() == {}


async def test_peers_are_kept_in_the_store_and_replaced_by_name(net: Network) -> None:
    a = net.node("A")
    url = "https://b.example.com/sync"
    async with MultiBotSyncManager(a) as multi:
        multi.add_bot(_peer("B", webhook_url=url, webhook_secret="s3cr3t-value"))
        multi.add_bot(_peer("B", webhook_url=url, webhook_secret="s3cr3t-value"))  # again
        assert len(multi.list_bots()) == 1
        multi.add_bot(_peer("B", webhook_url=url, direction=SyncDirection.PULL))
        (config,) = multi.list_bots()
        assert config.direction is SyncDirection.PULL
    async with MultiBotSyncManager(a) as again:
        (config,) = again.list_bots()
        assert config.direction is SyncDirection.PULL
        assert config.webhook_url == url
        assert again.remove_bot("B") is True
        assert again.remove_bot("B") is False
        assert again.list_bots() == []
    assert a.store.list_peers() == {}


async def test_sync_all_bots_runs_concurrently_and_one_failure_stops_nothing(
    net: Network,
) -> None:
    a, b, c, d = (net.node(n) for n in "ABCD")
    a.create_payment_stage("s1", stage())
    transports: dict[str, LocalTransport] = {}

    def build(config: BotSyncConfig) -> LocalTransport:
        transports[config.name] = LocalTransport(SyncService(net.nodes[config.name]))
        return transports[config.name]

    async with MultiBotSyncManager(a, transport_factory=build) as multi:
        for name in "BCD":
            multi.add_bot(_peer(name))
        multi.get_sync_manager("C")
        transports["C"].online = False
        results = await multi.sync_all_bots()
        assert set(results) == {"B", "C", "D"}
        assert results["B"].status is SyncStatus.COMPLETED
        assert results["D"].status is SyncStatus.COMPLETED
        assert results["C"].status is SyncStatus.FAILED
        assert "unreachable" in results["C"].errors[0]
        assert b.get_payment_stage("s1")
        assert d.get_payment_stage("s1")
        assert c.get_payment_stage("s1") is None
        with pytest.raises(NotFoundError):
            await multi.sync_with_bot("nobody")


async def test_statistics_count_failures_honestly(net: Network) -> None:
    a, b = net.node("A"), net.node("B")
    transports: list[LocalTransport] = []

    def build(config: BotSyncConfig) -> LocalTransport:
        transports.append(LocalTransport(SyncService(b)))
        return transports[-1]

    async with MultiBotSyncManager(a, transport_factory=build) as multi:
        multi.add_bot(_peer("B"))
        a.create_payment_stage("s1", stage())
        assert (await multi.sync_with_bot("B")).status is SyncStatus.COMPLETED
        a.create_payment_stage("s2", stage())
        a.create_payment_stage("s3", stage())
        transports[0].online = False
        assert (await multi.sync_with_bot("B")).status is SyncStatus.FAILED
        stats = multi.get_sync_stats("B")
        assert stats["lag"] == 2  # s2 and s3 wait for B
        transports[0].online = True
        assert (await multi.sync_with_bot("B")).status is SyncStatus.COMPLETED
        b.stages.max_price = 5
        a.create_payment_stage("dear", stage(price=50))
        assert (await multi.sync_with_bot("B")).status is SyncStatus.PARTIAL
        stats = multi.get_all_sync_stats()["B"]
    assert stats["total_syncs"] == 4
    assert stats["successful_syncs"] == 2
    assert stats["failed_syncs"] == 1
    assert stats["partial_syncs"] == 1
    assert stats["success_rate"] == 50.0
    assert stats["total_items_synced"] == 3
    assert stats["lag"] == 0
    assert stats["last_status"] == "partial"
    assert "dear" in stats["last_error"]
    assert stats["last_sync_at"] is not None


async def test_success_rate_is_exact(net: Network) -> None:
    a, b = net.node("A"), net.node("B")
    transport = LocalTransport(SyncService(b))
    async with MultiBotSyncManager(a, transport_factory=lambda config: transport) as multi:
        multi.add_bot(_peer("B"))
        for online in (True, True, False):
            transport.online = online
            await multi.sync_with_bot("B")
        stats = multi.get_sync_stats("B")
    assert stats["success_rate"] == 200 / 3  # one rounding: 66.66666666666667
    assert 0.0 <= stats["success_rate"] <= 100.0


async def test_everything_survives_a_restart(net: Network) -> None:
    a, b = net.node("A"), net.node("B")
    a.create_payment_stage("s1", stage(price=10))
    async with MultiBotSyncManager(a, transport_factory=_factory(net)) as multi:
        multi.add_bot(_peer("B", conflict_resolution=ConflictResolution.ASK_USER))
        await multi.sync_with_bot("B")
        a.update_payment_stage("s1", price=20)
        b.update_payment_stage("s1", price=30)
        await multi.sync_with_bot("B")
        (pending,) = multi.list_conflicts()
        cursors = (a.store.get_cursor("B", "pull"), a.store.get_cursor("B", "push"))
    a = net.reopen("A")
    async with MultiBotSyncManager(a, transport_factory=_factory(net)) as multi:
        (config,) = multi.list_bots()
        assert config.conflict_resolution is ConflictResolution.ASK_USER
        assert config.target_bot_token == TOKEN
        assert (a.store.get_cursor("B", "pull"), a.store.get_cursor("B", "push")) == cursors
        assert multi.get_sync_stats("B")["total_syncs"] == 2
        (again,) = multi.list_conflicts()
        assert again.id == pending.id
        assert again.source_data["price"] == 20
        idle = await multi.sync_with_bot("B")
        assert idle.items_synced == 0
        assert idle.requests == 1


async def test_pending_conflicts_are_resolved_through_the_api(net: Network) -> None:
    a, b = net.node("A"), net.node("B")
    a.create_payment_stage("s1", stage(price=10))
    a.settings.set("motto", "old")
    async with MultiBotSyncManager(a, transport_factory=_factory(net)) as multi:
        multi.add_bot(_peer("B", conflict_resolution=ConflictResolution.ASK_USER))
        await multi.sync_with_bot("B")
        a.update_payment_stage("s1", price=20, title="Ours")
        b.update_payment_stage("s1", price=30, description="Theirs")
        a.settings.set("motto", "A")
        b.settings.set("motto", "B")
        await multi.sync_with_bot("B")
        conflicts = {c.item_type: c for c in multi.list_conflicts("B")}
        assert set(conflicts) == {"payment_stage", "setting"}
        before = snapshot(a)
        with pytest.raises(ValidationError):
            multi.resolve_conflict(conflicts["payment_stage"].id or 0, "coin")
        with pytest.raises(ValidationError):
            multi.resolve_conflict(conflicts["payment_stage"].id or 0, {"title": "no price"})
        with pytest.raises(NotFoundError):
            multi.resolve_conflict(9999, "source")
        assert snapshot(a) == before
        state = multi.resolve_conflict(conflicts["payment_stage"].id or 0, "merge")
        assert (state.fields["title"], state.fields["price"]) == ("Ours", 30)
        multi.resolve_conflict(conflicts["setting"].id or 0, {"value": "agreed"})
        with pytest.raises(ConflictError):
            multi.resolve_conflict(conflicts["setting"].id or 0, "target")
        assert multi.list_conflicts() == []
        result = await multi.sync_with_bot("B")
        assert result.conflicts == []
        assert result.pushed == 2
    assert snapshot(a) == snapshot(b)
    assert b.settings.get("motto") == "agreed"
    resolved = a.store.list_conflicts("resolved")
    assert {r.resolution["choice"] for r in resolved if r.resolution} == {"merge", "fields"}


async def test_resolving_with_target_takes_their_side(net: Network) -> None:
    a, b = net.node("A"), net.node("B")
    a.create_payment_stage("s1", stage(price=10))
    async with MultiBotSyncManager(a, transport_factory=_factory(net)) as multi:
        multi.add_bot(_peer("B", conflict_resolution="ask_user"))
        await multi.sync_with_bot("B")
        a.remove_payment_stage("s1")
        b.update_payment_stage("s1", price=30)
        await multi.sync_with_bot("B")
        (conflict,) = multi.list_conflicts()
        assert conflict.source_deleted
        assert not conflict.target_deleted
        multi.resolve_conflict(conflict.id or 0, "target")
        assert a.get_payment_stage("s1") is not None
        await multi.sync_with_bot("B")
    assert snapshot(a) == snapshot(b)


# --- automatic sync -------------------------------------------------------------------
async def test_a_local_write_reaches_the_peer_in_real_time(net: Network) -> None:
    a, b = net.node("A"), net.node("B")
    async with MultiBotSyncManager(a, transport_factory=_factory(net), debounce=0.01) as multi:
        multi.add_bot(_peer("B", auto_sync=True, sync_interval_minutes=60))
        multi.add_bot(_peer("quiet", webhook_url="https://quiet.example.com"))  # not auto
        await multi.start_auto_sync_all()
        assert _running(multi)
        await _wait_for(lambda: multi.get_sync_stats("B")["total_syncs"] >= 1)
        a.create_payment_stage("fresh", stage(price=42))
        await _wait_for(lambda: b.get_payment_stage("fresh") is not None)
        await multi.stop_auto_sync_all()
        assert not _running(multi)
        assert multi.get_sync_stats("quiet")["total_syncs"] == 0
        a.create_payment_stage("later", stage(price=1))
        await asyncio.sleep(0.05)
        assert b.get_payment_stage("later") is None  # stopped means stopped


async def test_the_interval_pulls_what_the_peer_changed(net: Network) -> None:
    a, b = net.node("A"), net.node("B")
    async with MultiBotSyncManager(a, transport_factory=_factory(net)) as multi:
        multi.add_bot(
            _peer("B", auto_sync=True, sync_interval_minutes=0.01, direction=SyncDirection.PULL)
        )
        await multi.start_auto_sync_all()
        await _wait_for(lambda: multi.get_sync_stats("B")["total_syncs"] >= 1)
        b.create_payment_stage("theirs", stage(price=3))
        await _wait_for(lambda: a.get_payment_stage("theirs") is not None)
        await multi.stop_auto_sync_all()


async def test_real_time_changes_travel_along_a_chain(net: Network) -> None:
    a, b, c = net.node("A"), net.node("B"), net.node("C")
    factory = _factory(net)
    async with (
        MultiBotSyncManager(a, transport_factory=factory, debounce=0.01) as at_a,
        MultiBotSyncManager(b, transport_factory=factory, debounce=0.01) as at_b,
    ):
        at_a.add_bot(_peer("B", auto_sync=True, direction=SyncDirection.PUSH))
        at_b.add_bot(_peer("C", auto_sync=True, direction=SyncDirection.PUSH))
        await at_a.start_auto_sync_all()
        await at_b.start_auto_sync_all()
        a.create_payment_stage("s1", stage(price=5))
        await _wait_for(lambda: c.get_payment_stage("s1") is not None)
        a.remove_payment_stage("s1")
        await _wait_for(lambda: c.store.get("payment_stage", "s1") is None)
    assert snapshot(a) == snapshot(b) == snapshot(c)


async def test_a_failing_peer_does_not_end_the_loop(net: Network) -> None:
    a, b = net.node("A"), net.node("B")
    transport = LocalTransport(SyncService(b))
    transport.online = False
    async with MultiBotSyncManager(
        a, transport_factory=lambda config: transport, debounce=0.01
    ) as multi:
        multi.add_bot(_peer("B", auto_sync=True))
        await multi.start_auto_sync_all()
        a.create_payment_stage("s1", stage())
        await _wait_for(lambda: multi.get_sync_stats("B")["failed_syncs"] >= 2)
        transport.online = True
        a.create_payment_stage("s2", stage())
        await _wait_for(lambda: b.get_payment_stage("s2") is not None)
        assert b.get_payment_stage("s1") is not None  # the missed change came too
        assert multi.auto_sync_running


async def test_removing_a_peer_stops_its_loop(net: Network) -> None:
    a, b = net.node("A"), net.node("B")
    async with MultiBotSyncManager(a, transport_factory=_factory(net), debounce=0.01) as multi:
        multi.add_bot(_peer("B", auto_sync=True))
        await multi.start_auto_sync_all()
        await _wait_for(lambda: multi.get_sync_stats("B")["total_syncs"] >= 1)
        multi.remove_bot("B")
        a.create_payment_stage("s1", stage())
        await asyncio.sleep(0.05)
        assert b.get_payment_stage("s1") is None


def test_nodes_fixture_types(net: Network) -> None:
    assert isinstance(net.node("solo"), NeonPay)


async def test_a_write_from_another_thread_wakes_the_loop(net: Network) -> None:
    a, b = net.node("A"), net.node("B")
    async with MultiBotSyncManager(a, transport_factory=_factory(net), debounce=0.01) as multi:
        multi.add_bot(_peer("B", auto_sync=True))
        await multi.start_auto_sync_all()
        await _wait_for(lambda: multi.get_sync_stats("B")["total_syncs"] >= 1)
        await asyncio.to_thread(a.create_payment_stage, "threaded", stage(price=8))
        await _wait_for(lambda: b.get_payment_stage("threaded") is not None)


class _Exploding(LocalTransport):
    async def info(self) -> Any:
        raise RuntimeError("a bug in a transport")

    async def pull(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug in a transport")


async def test_an_unexpected_error_fails_one_peer_only(net: Network) -> None:
    a, b, c = net.node("A"), net.node("B"), net.node("C")
    a.create_payment_stage("s1", stage())

    def build(config: BotSyncConfig) -> LocalTransport:
        kind = _Exploding if config.name == "B" else LocalTransport
        return kind(SyncService(net.nodes[config.name]))

    async with MultiBotSyncManager(a, transport_factory=build) as multi:
        multi.add_bot(_peer("B"))
        multi.add_bot(_peer("C"))
        results = await multi.sync_all_bots()
        assert results["B"].status is SyncStatus.FAILED
        assert "internal error" in results["B"].errors[0]
        assert results["C"].status is SyncStatus.COMPLETED
        assert multi.get_sync_stats("B")["failed_syncs"] == 1
    assert c.get_payment_stage("s1") is not None
    assert b.get_payment_stage("s1") is None


async def test_selecting_more_kinds_later_brings_them_whole(net: Network) -> None:
    a, b = net.node("A"), net.node("B")
    b.templates.create_template("shop", description="old")
    b.create_payment_stage("s1", stage())
    async with MultiBotSyncManager(a, transport_factory=_factory(net)) as multi:
        multi.add_bot(_peer("B", sync_templates=False))
        await multi.sync_with_bot("B")
        assert a.templates.list_templates() == {}
        multi.add_bot(_peer("B", sync_templates=True))
        result = await multi.sync_with_bot("B")
        assert result.status is SyncStatus.COMPLETED
    assert a.templates.list_templates().keys() == {"shop"}
