"""Fixtures of the sync tests: a network of bots on SQLite files in ``tmp_path``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from .network import Network


@pytest.fixture
async def net(tmp_path: Path) -> AsyncIterator[Network]:
    network = Network(tmp_path)
    yield network
    await network.close()
