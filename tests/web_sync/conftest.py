"""Fixtures for the web_sync tests: nodes on SQLite files and running sync servers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from neonpay import create_neonpay
from neonpay.core.neonpay import NeonPay
from neonpay.web_sync import SyncServer

from .helpers import SECRET

MakeNode = Callable[..., NeonPay]


@pytest.fixture
def make_node(tmp_path: Path) -> Iterator[MakeNode]:
    """Open a node (a NeonPay on its own SQLite file) by name; closed at the end."""
    opened: list[NeonPay] = []

    def factory(name: str, **options: Any) -> NeonPay:
        node = create_neonpay(storage=f"sqlite:///{tmp_path / name}.db", node_id=name, **options)
        opened.append(node)
        return node

    yield factory
    for node in opened:
        node.close()


@dataclass
class Served:
    """A node with its sync server running on 127.0.0.1."""

    node: NeonPay
    server: SyncServer

    @property
    def origin(self) -> str:
        """``http://127.0.0.1:PORT`` (no path)."""
        return f"http://127.0.0.1:{self.server.port}"


@pytest.fixture
async def served(make_node: MakeNode) -> AsyncIterator[Served]:
    node = make_node("node-server")
    async with SyncServer(node, port=0, webhook_secret=SECRET) as server:
        yield Served(node, server)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A plain client session (no decompression) for hand-made requests."""
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        yield session
