"""Replication between bots: clocks, change feeds, conflicts and the sync managers.

The public names (``SyncManager``, ``ConflictResolver``, ``SyncStatus`` ...) load lazily,
so that the store can use :mod:`neonpay.sync.clock` without importing the engine.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # type checkers see the real names; at run time they load lazily
    from neonpay.sync.config import BotSyncConfig, ConflictResolution, SyncDirection
    from neonpay.sync.conflicts import ConflictResolver, SyncConflict
    from neonpay.sync.manager import SyncManager
    from neonpay.sync.multi import MultiBotSyncManager
    from neonpay.sync.results import SyncResult, SyncStatus

# The names of the spec: ``from neonpay.sync import SyncManager, ConflictResolver,
# SyncStatus``, and the sync names it exports from ``neonpay`` itself. The rest of the
# engine is imported from its modules (``neonpay.sync.results.SyncResult``,
# ``neonpay.sync.local.LocalTransport``, ``neonpay.sync.service.SyncService`` ...).
__all__ = [
    "BotSyncConfig",
    "ConflictResolution",
    "ConflictResolver",
    "MultiBotSyncManager",
    "SyncConflict",
    "SyncDirection",
    "SyncManager",
    "SyncResult",
    "SyncStatus",
]

_LAZY: dict[str, str] = {
    "BotSyncConfig": "neonpay.sync.config",
    "ConflictResolution": "neonpay.sync.config",
    "ConflictResolver": "neonpay.sync.conflicts",
    "MultiBotSyncManager": "neonpay.sync.multi",
    "SyncDirection": "neonpay.sync.config",
    "SyncManager": "neonpay.sync.manager",
    "SyncStatus": "neonpay.sync.results",
    "SyncResult": "neonpay.sync.results",
    "SyncConflict": "neonpay.sync.conflicts",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'neonpay.sync' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(__all__)
