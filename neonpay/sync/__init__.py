"""Replication between bots: clocks, change feeds, conflicts and the sync managers.

The public names (``SyncManager``, ``ConflictResolver``, ``SyncStatus`` ...) load lazily,
so that the store can use :mod:`neonpay.sync.clock` without importing the engine.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__: list[str] = []

_LAZY: dict[str, str] = {}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'neonpay.sync' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(__all__)
