"""End to end: nodes on their own SQLite files, each with its own sync server on
127.0.0.1, syncing through SyncManager / MultiBotSyncManager over signed HTTP."""

from __future__ import annotations

import gc
import gzip
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from neonpay import (
    BotSyncConfig,
    ConflictResolution,
    MultiBotSyncManager,
    PaymentStage,
    SyncDirection,
    create_neonpay,
)
from neonpay.core.neonpay import NeonPay
from neonpay.core.templates import TemplateProduct
from neonpay.store.base import KINDS
from neonpay.sync.manager import SyncManager
from neonpay.sync.results import SyncResult, SyncStatus
from neonpay.web_sync import HttpTransport, RetryPolicy, SyncServer

from .helpers import SECRET, dump_store
from .proxy import Reply, running_proxy


def catalog(node: NeonPay) -> dict[str, dict[str, Any]]:
    """Every record state (tombstones too) with its fields and version, by kind and key."""
    return {
        kind: {
            r.key: (r.deleted, dict(r.fields), dict(r.version))
            for r in node.store.list(kind, include_deleted=True)
        }
        for kind in KINDS
    }


def without_history(dump: list[str]) -> list[str]:
    """A store dump without the sync history (a failed run is recorded, by design)."""
    return [line for line in dump if "neonpay_sync_runs" not in line]


def live(node: NeonPay, kind: str) -> set[str]:
    return {r.key for r in node.store.list(kind)}


class HttpNetwork:
    """Nodes with running sync servers, and the managers that sync them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.nodes: dict[str, NeonPay] = {}
        self.servers: dict[str, SyncServer] = {}
        self.ports: dict[str, int] = {}
        self.managers: list[SyncManager | MultiBotSyncManager] = []

    async def node(self, name: str, **options: Any) -> NeonPay:
        node = create_neonpay(storage=f"sqlite:///{self.root / name}.db", node_id=name, **options)
        self.nodes[name] = node
        await self.serve(name)
        return node

    async def serve(self, name: str) -> None:
        server = SyncServer(self.nodes[name], port=self.ports.get(name, 0), webhook_secret=SECRET)
        await server.start()
        self.servers[name] = server
        self.ports[name] = server.port

    async def stop(self, name: str) -> None:
        await self.servers.pop(name).close()

    async def restart(self, name: str) -> NeonPay:
        """Stop the server, close the store, open both again (same file, same port)."""
        await self.stop(name)
        self.nodes[name].close()
        self.nodes[name] = create_neonpay(storage=f"sqlite:///{self.root / name}.db")
        await self.serve(name)
        return self.nodes[name]

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}/sync"

    def config(self, target: str, **options: Any) -> BotSyncConfig:
        options.setdefault("webhook_secret", SECRET)
        return BotSyncConfig(
            target_bot_token="123456:ABCDEFGHIJKLMNOPQRSTUVWXYZ",
            target_bot_name=target,
            webhook_url=self.url(target),
            **options,
        )

    def manager(self, source: str, target: str, **options: Any) -> SyncManager:
        manager = SyncManager(self.nodes[source], self.config(target, **options))
        self.managers.append(manager)
        return manager

    async def sync(self, source: str, target: str, **options: Any) -> SyncResult:
        result = await self.manager(source, target, **options).sync_all()
        assert gc.isenabled()  # every page's pause of the collector has ended
        return result

    def multi(self, source: str, *, fast_retries: bool = False) -> MultiBotSyncManager:
        factory = None
        if fast_retries:
            policy = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.02)

            def factory(config: BotSyncConfig) -> HttpTransport:
                return HttpTransport.from_config(config, retry_policy=policy)

        multi = MultiBotSyncManager(self.nodes[source], factory)
        self.managers.append(multi)
        return multi

    async def close(self) -> None:
        for manager in self.managers:
            await manager.close()
        for server in self.servers.values():
            await server.close()
        for node in self.nodes.values():
            node.close()


@pytest.fixture
async def net(tmp_path: Path) -> AsyncIterator[HttpNetwork]:
    network = HttpNetwork(tmp_path)
    try:
        yield network
    finally:
        await network.close()


def seed(node: NeonPay, tag: str) -> None:
    """One record of every kind, named after ``tag``."""
    node.create_payment_stage(f"stage-{tag}", PaymentStage(f"Stage {tag}", "A product", 10))
    node.promotions.create_promo_code(f"CODE{tag.upper()}", "percentage", 10)
    node.templates.create_template(
        f"shop-{tag}", products=[TemplateProduct(id="p1", name="Product", price=5)]
    )
    node.settings.set(f"greeting_{tag}", f"hello from {tag}")


def keys(tag: str) -> dict[str, str]:
    return {
        "payment_stage": f"stage-{tag}",
        "promo_code": f"CODE{tag.upper()}",
        "template": f"shop-{tag}",
        "setting": f"greeting_{tag}",
    }


@pytest.mark.parametrize("direction", list(SyncDirection))
async def test_two_nodes_all_kinds_with_deletes_in_every_direction(
    net: HttpNetwork, direction: SyncDirection
) -> None:
    a, b = await net.node("node-a"), await net.node("node-b")
    seed(a, "a")
    seed(b, "b")
    result = await net.sync("node-a", "node-b", direction=direction)
    assert result.status is SyncStatus.COMPLETED, result.errors
    for kind in ("payment_stage", "promo_code", "template", "setting"):
        assert (keys("a")[kind] in live(b, kind)) is direction.pushes
        assert (keys("b")[kind] in live(a, kind)) is direction.pulls
    if direction is SyncDirection.BIDIRECTIONAL:
        assert catalog(a) == catalog(b)
    # deletes travel the same way
    a.remove_payment_stage("stage-a")
    b.settings.remove("greeting_b")
    result = await net.sync("node-a", "node-b", direction=direction)
    assert result.status is SyncStatus.COMPLETED, result.errors
    assert "stage-a" not in live(b, "payment_stage")
    assert ("greeting_b" in live(a, "setting")) is False
    if direction is SyncDirection.BIDIRECTIONAL:
        assert catalog(a) == catalog(b)
        assert a.store.get("payment_stage", "stage-a", include_deleted=True).deleted  # type: ignore[union-attr]


async def _concurrent_edit(net: HttpNetwork) -> tuple[NeonPay, NeonPay]:
    a, b = await net.node("node-a"), await net.node("node-b")
    a.create_payment_stage("s1", PaymentStage("Title", "Description", 10))
    assert (await net.sync("node-a", "node-b")).status is SyncStatus.COMPLETED
    a.update_payment_stage("s1", title="A title", price=20)
    b.update_payment_stage("s1", description="B description", price=30)
    return a, b


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        (ConflictResolution.SOURCE_WINS, ("A title", "Description", 20)),
        (ConflictResolution.TARGET_WINS, ("Title", "B description", 30)),
        (ConflictResolution.MERGE, ("A title", "B description", None)),
    ],
)
async def test_every_strategy_converges_over_http(
    net: HttpNetwork, strategy: ConflictResolution, expected: tuple[Any, ...]
) -> None:
    a, b = await _concurrent_edit(net)
    result = await net.sync("node-a", "node-b", conflict_resolution=strategy)
    assert result.status is SyncStatus.COMPLETED, result.errors
    (conflict,) = result.conflicts
    assert (conflict.item_type, conflict.item_id) == ("payment_stage", "s1")
    assert conflict.source_data["price"] == 20
    assert conflict.target_data["price"] == 30
    for node in (a, b):
        stage = node.get_payment_stage("s1")
        assert stage is not None
        got = (stage.title, stage.description, stage.price)
        assert got[:2] == expected[:2]
        assert expected[2] in (None, got[2])
    assert catalog(a) == catalog(b)
    again = await net.sync("node-a", "node-b", conflict_resolution=strategy)
    assert again.items_synced == 0
    assert again.conflicts == []


async def test_ask_user_keeps_both_then_the_resolution_syncs(net: HttpNetwork) -> None:
    a, b = await _concurrent_edit(net)
    manager = net.manager("node-a", "node-b", conflict_resolution=ConflictResolution.ASK_USER)
    result = await manager.sync_all()
    (conflict,) = result.conflicts
    assert conflict.outcome == "pending"
    assert a.get_payment_stage("s1").price == 20  # type: ignore[union-attr]
    assert b.get_payment_stage("s1").price == 30  # type: ignore[union-attr]
    (pending,) = manager.list_conflicts()
    manager.resolve_conflict(pending.id, "target")  # type: ignore[arg-type]
    result = await manager.sync_all()
    assert result.status is SyncStatus.COMPLETED, result.errors
    assert a.get_payment_stage("s1").price == b.get_payment_stage("s1").price == 30  # type: ignore[union-attr]
    assert catalog(a) == catalog(b)


async def test_three_nodes_converge_through_multi_bot_managers(net: HttpNetwork) -> None:
    a, b, c = await net.node("node-a"), await net.node("node-b"), await net.node("node-c")
    for tag, node in (("a", a), ("b", b), ("c", c)):
        seed(node, tag)
    hub = net.multi("node-a")
    hub.add_bot(net.config("node-b"))
    hub.add_bot(net.config("node-c"))
    spoke = net.multi("node-b")
    spoke.add_bot(net.config("node-c"))
    for _ in range(2):
        results = await hub.sync_all_bots()
        assert {r.status for r in results.values()} == {SyncStatus.COMPLETED}
        results = await spoke.sync_all_bots()
        assert {r.status for r in results.values()} == {SyncStatus.COMPLETED}
    assert catalog(a) == catalog(b) == catalog(c)
    assert len(live(a, "payment_stage")) == 3
    # an edit and a delete made anywhere reach everyone
    c.update_payment_stage("stage-a", price=99)
    b.promotions.remove_promo_code("CODEC")
    for _ in range(2):
        await hub.sync_all_bots()
        await spoke.sync_all_bots()
    assert catalog(a) == catalog(b) == catalog(c)
    assert a.get_payment_stage("stage-a").price == 99  # type: ignore[union-attr]
    assert "CODEC" not in live(a, "promo_code")
    stats = hub.get_all_sync_stats()
    assert stats["node-b"]["failed_syncs"] == 0
    assert stats["node-b"]["success_rate"] == 100.0


async def test_a_restart_of_either_side_between_syncs(net: HttpNetwork) -> None:
    a, b = await net.node("node-a"), await net.node("node-b")
    seed(a, "a")
    hub = net.multi("node-a")
    hub.add_bot(net.config("node-b"))
    assert (await hub.sync_with_bot("node-b")).status is SyncStatus.COMPLETED
    b = await net.restart("node-b")
    seed(b, "b")
    result = await hub.sync_with_bot("node-b")
    assert result.status is SyncStatus.COMPLETED, result.errors
    assert result.pulled == 4
    assert result.pushed == 0
    # restart the source: a new process finds its peers, cursors and secret in the store
    await hub.close()
    a = await net.restart("node-a")
    a.settings.set("after_restart", True)
    hub = net.multi("node-a")
    assert [c.target_bot_name for c in hub.list_bots()] == ["node-b"]
    result = await hub.sync_with_bot("node-b")
    assert result.status is SyncStatus.COMPLETED, result.errors
    assert (result.pushed, result.pulled) == (1, 0)
    assert catalog(a) == catalog(b)


async def test_peer_down_then_up_loses_nothing(net: HttpNetwork) -> None:
    a, b = await net.node("node-a"), await net.node("node-b")
    seed(a, "a")
    hub = net.multi("node-a", fast_retries=True)
    hub.add_bot(net.config("node-b"))
    await net.stop("node-b")
    before = dump_store(a)
    down = await hub.sync_with_bot("node-b")
    assert down.status is SyncStatus.FAILED
    assert "unreachable" in down.errors[0]
    assert SECRET not in down.errors[0]
    assert without_history(dump_store(a)) == without_history(before)
    a.create_payment_stage("late", PaymentStage("Late", "Made while B was down", 7))
    await net.serve("node-b")
    up = await hub.sync_with_bot("node-b")
    assert up.status is SyncStatus.COMPLETED, up.errors
    assert up.pushed == 5
    assert catalog(a) == catalog(b)
    stats = hub.get_all_sync_stats()["node-b"]
    assert (stats["total_syncs"], stats["failed_syncs"], stats["success_rate"]) == (2, 1, 50.0)


@pytest.mark.parametrize(
    ("direction", "requests"),
    [(SyncDirection.BIDIRECTIONAL, 1), (SyncDirection.PUSH, 1), (SyncDirection.PULL, 1)],
)
async def test_nothing_new_is_one_small_signed_round_trip(
    net: HttpNetwork, direction: SyncDirection, requests: int
) -> None:
    a, b = await net.node("node-a"), await net.node("node-b")
    for i in range(300):
        a.create_payment_stage(f"s{i}", PaymentStage(f"Stage {i}", "A product", i + 1))
    manager = net.manager("node-a", "node-b", direction=SyncDirection.BIDIRECTIONAL)
    first = await manager.sync_all()
    assert first.pushed == 300
    assert first.status is SyncStatus.COMPLETED
    assert b.store.count("payment_stage") == 300
    idle = await net.manager("node-a", "node-b", direction=direction).sync_all()
    assert idle.status is SyncStatus.COMPLETED
    assert idle.items_synced == 0
    assert idle.requests == requests
    assert idle.bytes_sent + idle.bytes_received < 300


async def test_a_tampered_answer_fails_the_sync_cleanly(net: HttpNetwork) -> None:
    a, b = await net.node("node-a"), await net.node("node-b")
    b.create_payment_stage("s1", PaymentStage("Honest", "From B", 10))

    def tamper(status: int, headers: dict[str, str], body: bytes) -> Reply:
        if headers.get("Content-Encoding") == "gzip":
            forged = gzip.compress(gzip.decompress(body).replace(b"Honest", b"Forged"))
            return Reply(status, forged, headers)
        return Reply(status, body.replace(b"Honest", b"Forged"), headers)

    before = dump_store(a)
    async with running_proxy(f"http://127.0.0.1:{net.ports['node-b']}", lambda n: tamper) as proxy:
        config = BotSyncConfig(
            target_bot_name="node-b", webhook_url=proxy.url, webhook_secret=SECRET
        )
        async with SyncManager(a, config) as manager:
            result = await manager.sync_all()
    assert result.status is SyncStatus.FAILED
    assert "failed verification" in result.errors[0]
    assert without_history(dump_store(a)) == without_history(before)
    assert a.get_payment_stage("s1") is None


async def test_a_wrong_secret_fails_with_an_actionable_error(net: HttpNetwork) -> None:
    await net.node("node-a")
    await net.node("node-b")
    result = await net.sync("node-a", "node-b", webhook_secret="not-the-secret")
    assert result.status is SyncStatus.FAILED
    assert "401" in result.errors[0]
    assert "secret" in result.errors[0]
    assert "not-the-secret" not in result.errors[0]


async def test_rejected_items_make_a_partial_sync_with_reasons(net: HttpNetwork) -> None:
    a = await net.node("node-a", max_price=100_000)
    b = await net.node("node-b")
    a.create_payment_stage("gold", PaymentStage("Gold", "Too dear for B", 50_000))
    a.create_payment_stage("tin", PaymentStage("Tin", "Fine", 5))
    result = await net.sync("node-a", "node-b")
    assert result.status is SyncStatus.PARTIAL
    assert any("gold" in error and "at most 10000" in error for error in result.errors)
    assert live(b, "payment_stage") == {"tin"}


async def test_a_large_catalog_moves_in_bounded_requests(net: HttpNetwork) -> None:
    a, b = await net.node("node-a"), await net.node("node-b")
    for i in range(1200):
        a.create_payment_stage(f"s{i:04d}", PaymentStage(f"Stage {i}", "A product", 1 + i % 100))
    result = await net.sync("node-a", "node-b", page_size=5000)
    assert result.status is SyncStatus.COMPLETED, result.errors
    assert result.pushed == 1200
    assert result.requests == 3  # one pull, then the 1200 states in batches of 1000 + 200
    assert b.store.count("payment_stage") == 1200
    assert result.bytes_sent < 1200 * 600 / 4  # gzipped well below the JSON size
