"""Fixtures of the core tests: a NEONPAY on a fresh SQLite file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from neonpay import NeonPay, create_neonpay


@pytest.fixture
def np(tmp_path: Path) -> Iterator[NeonPay]:
    with create_neonpay(storage=f"sqlite:///{tmp_path / 'neonpay.db'}") as neonpay:
        yield neonpay
