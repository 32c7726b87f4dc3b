"""Fixtures for the adapter tests: the Bot API emulator and a store per test."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from neonpay.testing import BotAPIEmulator


@pytest_asyncio.fixture
async def emu() -> AsyncIterator[BotAPIEmulator]:
    """A running emulator; pre-checkout answers are due within 5 s."""
    async with BotAPIEmulator(precheckout_timeout=5.0) as emulator:
        yield emulator


@pytest.fixture
def payment_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Capture NEONPAY's payment log (the flows wait on its lines)."""
    caplog.set_level(logging.INFO, logger="neonpay")
    return caplog
