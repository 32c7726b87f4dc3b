"""The check that a rejected call left the store as it was."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from neonpay import NeonPay
from neonpay.store import KINDS


@contextmanager
def nothing_changes(np: NeonPay) -> Iterator[None]:
    """The block must leave the change log and every record as they were."""

    def state() -> tuple[int, dict[str, Any]]:
        return np.store.last_seq(), {k: np.store.list(k, include_deleted=True) for k in KINDS}

    before = state()
    yield
    assert state() == before
