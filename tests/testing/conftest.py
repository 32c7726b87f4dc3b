"""Fixtures for the Bot API emulator tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest_asyncio

from neonpay.testing import BotAPIEmulator


@pytest_asyncio.fixture
async def emu() -> AsyncIterator[BotAPIEmulator]:
    """A running emulator with a short pre-checkout deadline."""
    async with BotAPIEmulator(precheckout_timeout=3.0) as emulator:
        yield emulator


@pytest_asyncio.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A plain HTTP client for raw Bot API calls."""
    async with aiohttp.ClientSession() as session:
        yield session
