"""Pipelined pages: a push keeps at most two pages in flight and a pull asks for one page
ahead, yet cursors move only past pages fully handled, in order."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from neonpay import NeonPay
from neonpay.errors import PeerUnreachable
from neonpay.store.base import Record
from neonpay.sync.config import BotSyncConfig, SyncDirection
from neonpay.sync.local import LocalTransport
from neonpay.sync.manager import SyncManager
from neonpay.sync.protocol import ChangesPage, PushResult
from neonpay.sync.results import SyncStatus
from neonpay.sync.service import SyncService

from .network import Network, catalog, stage

PAGE = 10


class _Slow(LocalTransport):
    """A peer that answers after a pause (so pages overlap) and can fail call ``fail_at``."""

    def __init__(self, target: NeonPay, *, fail_at: int | None = None) -> None:
        super().__init__(SyncService(target), name=target.node_id)
        self.fail_at = fail_at
        self.calls = 0
        self.in_flight = 0
        self.most_in_flight = 0
        self.pull_cursors: list[int] = []  # the puller's stored cursor at each pull asked
        self.puller: NeonPay | None = None

    async def _gate(self) -> None:
        self.calls += 1
        call = self.calls
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0.01)
            if call == self.fail_at:
                raise PeerUnreachable("the peer went away")
        finally:
            self.in_flight -= 1

    async def push(self, records: Sequence[Record], *, sender: str) -> PushResult:
        await self._gate()
        return await super().push(records, sender=sender)

    async def pull(self, *args: Any, **kwargs: Any) -> ChangesPage:
        if self.puller is not None:
            self.pull_cursors.append(self.puller.store.get_cursor(self.name, "pull").seq)
        await self._gate()
        return await super().pull(*args, **kwargs)


def _seed(node: NeonPay, count: int) -> None:
    for i in range(count):
        node.create_payment_stage(f"s{i:03d}", stage(price=1 + i))


def _manager(
    source: NeonPay, target: NeonPay, transport: _Slow, direction: SyncDirection
) -> SyncManager:
    config = BotSyncConfig(target_bot_name=target.node_id, direction=direction, page_size=PAGE)
    return SyncManager(source, config, transport)


async def test_a_push_overlaps_pages_and_delivers_all(net: Network) -> None:
    a, b = net.node("A"), net.node("B")
    _seed(a, 45)
    transport = _Slow(b)
    async with _manager(a, b, transport, SyncDirection.PUSH) as manager:
        result = await manager.sync_all()
    assert result.status is SyncStatus.COMPLETED
    assert result.pushed == 45
    assert transport.most_in_flight == 2  # never more than two pages in flight
    assert catalog(b) == catalog(a)
    assert a.store.get_cursor("B", "push").seq == a.store.last_seq()


async def test_a_failed_push_page_keeps_the_cursor_at_the_last_acknowledged(
    net: Network,
) -> None:
    a, b = net.node("A"), net.node("B")
    _seed(a, 45)
    first = _Slow(b, fail_at=3)  # the third page fails while the fourth is in flight
    async with _manager(a, b, first, SyncDirection.PUSH) as manager:
        result = await manager.sync_all()
    assert result.status is SyncStatus.FAILED
    cursor = a.store.get_cursor("B", "push").seq
    assert cursor == 2 * PAGE  # two pages acknowledged, nothing past the failed one
    assert len(b.store.list("payment_stage")) >= cursor
    again = _Slow(b)
    async with _manager(a, b, again, SyncDirection.PUSH) as manager:
        result = await manager.sync_all()
    assert result.status is SyncStatus.COMPLETED
    assert catalog(b) == catalog(a)
    assert a.store.get_cursor("B", "push").seq == a.store.last_seq()


async def test_a_pull_asks_ahead_and_a_failure_keeps_the_applied_pages(net: Network) -> None:
    a, b = net.node("A"), net.node("B")
    _seed(b, 45)
    failing = _Slow(b, fail_at=3)  # the third page fails after two were applied
    async with _manager(a, b, failing, SyncDirection.PULL) as manager:
        result = await manager.sync_all()
    assert result.status is SyncStatus.FAILED
    assert a.store.get_cursor("B", "pull").seq == 2 * PAGE
    assert len(a.store.list("payment_stage")) == 2 * PAGE
    transport = _Slow(b)
    transport.puller = a
    async with _manager(a, b, transport, SyncDirection.PULL) as manager:
        result = await manager.sync_all()
    assert result.status is SyncStatus.COMPLETED
    # each next page was asked for before the page before it was stored
    assert transport.pull_cursors == [20, 20, 30]
    assert transport.most_in_flight == 1
    assert catalog(a) == catalog(b)
    assert a.store.get_cursor("B", "pull").seq == b.store.last_seq()
