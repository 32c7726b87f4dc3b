"""Test helpers: bots on real SQLite (or PostgreSQL) stores, linked in-process."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from neonpay import NeonPay, PaymentStage, create_neonpay
from neonpay.core.templates import TemplateProduct
from neonpay.store.base import KINDS
from neonpay.sync.config import BotSyncConfig
from neonpay.sync.local import LocalTransport
from neonpay.sync.manager import SyncManager
from neonpay.sync.results import SyncResult, SyncStatus
from neonpay.sync.service import SyncService

__all__ = ["Network", "catalog", "snapshot", "stage"]


def stage(price: int = 10, title: str = "Stage", description: str = "A product") -> PaymentStage:
    return PaymentStage(title=title, description=description, price=price)


def catalog(node: NeonPay) -> dict[str, dict[str, Any]]:
    """Every live record's fields, by kind and key."""
    return {kind: {r.key: dict(r.fields) for r in node.store.list(kind)} for kind in KINDS}


def snapshot(node: NeonPay) -> dict[str, dict[str, tuple[bool, dict[str, Any], dict[str, int]]]]:
    """Every record state, tombstones included, with its version."""
    return {
        kind: {
            r.key: (r.deleted, dict(r.fields), dict(r.version))
            for r in node.store.list(kind, include_deleted=True)
        }
        for kind in KINDS
    }


class Network:
    """Nodes (bots) and the in-process links between them."""

    def __init__(self, root: Path, store_url: str | None = None) -> None:
        self.root = root
        self.store_url = store_url
        self.nodes: dict[str, NeonPay] = {}
        self.managers: list[SyncManager] = []

    def node(self, name: str, *, storage: str | None = None) -> NeonPay:
        """A new bot with node id ``name`` on its own SQLite file (or ``storage``)."""
        url = storage or f"sqlite:///{self.root / f'{name}.db'}"
        bot = create_neonpay(storage=url, node_id=name)
        self.nodes[name] = bot
        return bot

    def reopen(self, name: str) -> NeonPay:
        """Close ``name`` and open its store again (a restart)."""
        self.nodes[name].close()
        bot = create_neonpay(storage=f"sqlite:///{self.root / f'{name}.db'}")
        self.nodes[name] = bot
        return bot

    def transport(self, target: NeonPay) -> LocalTransport:
        return LocalTransport(SyncService(target), name=target.node_id)

    def link(self, source: NeonPay, target: NeonPay, **options: Any) -> SyncManager:
        """A SyncManager on ``source`` for the peer ``target`` (named by its node id)."""
        options.setdefault("target_bot_name", target.node_id)
        config = BotSyncConfig(**options)
        manager = SyncManager(source, config, self.transport(target))
        self.managers.append(manager)
        return manager

    async def sync(self, source: NeonPay, target: NeonPay, **options: Any) -> SyncResult:
        """One sync run from ``source`` with ``target`` (a fresh manager each time)."""
        manager = self.link(source, target, **options)
        return await manager.sync_all()

    async def settle(self, *names: str, rounds: int = 6, **options: Any) -> int:
        """Bidirectional syncs between every pair until a round changes nothing.

        Returns the number of rounds it took; fails when it does not settle.
        """
        bots = [self.nodes[n] for n in names] if names else list(self.nodes.values())
        for round_no in range(1, rounds + 1):
            moved = 0
            for i, a in enumerate(bots):
                for b in bots[i + 1 :]:
                    result = await self.sync(a, b, **options)
                    assert result.status is SyncStatus.COMPLETED, result.errors
                    moved += result.items_synced + len(result.conflicts)
            if moved == 0:
                return round_no
        raise AssertionError(f"no quiescence after {rounds} rounds")

    async def close(self) -> None:
        for manager in self.managers:
            await manager.close()
        for bot in self.nodes.values():
            bot.close()


def template_products(*prices: int) -> list[TemplateProduct]:
    return [TemplateProduct(id=f"p{i}", name=f"Product {i}", price=p) for i, p in enumerate(prices)]


async def wait_until(
    condition: Callable[[], bool], what: str = "the condition", timeout: float = 30.0
) -> None:
    """Poll ``condition`` (store reads of other bots or processes) until it holds; fail
    after ``timeout`` seconds naming ``what``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, f"not within {timeout:.0f} s: {what}"
        await asyncio.sleep(0.01)
