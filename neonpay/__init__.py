"""NEONPAY: Telegram Stars payments for bots, with durable storage and multi-bot sync.

The public API (the names promised by the multi-bot sync specification)::

    from neonpay import create_neonpay, MultiBotSyncManager, BotSyncConfig
    from neonpay import SyncDirection, ConflictResolution
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from neonpay._version import __version__
from neonpay.core import (
    BotAPIError,
    BotLibrary,
    DiscountType,
    NeonPay,
    NeonPayCore,
    Payment,
    PaymentHistory,
    PaymentResult,
    PaymentStage,
    PaymentStatus,
    PaymentTotal,
    PromoCode,
    PromoSystem,
    Template,
    TemplateCategory,
    TemplateManager,
    TemplateProduct,
    create_neonpay,
)
from neonpay.errors import (
    ConfigurationError,
    ConflictError,
    NeonPayError,
    NotFoundError,
    PaymentError,
    PeerRejected,
    PeerUnreachable,
    SignatureError,
    StarsPaymentError,
    StorageError,
    SyncError,
    ValidationError,
)

if TYPE_CHECKING:  # type checkers see the real names; at run time they load lazily
    from neonpay.sync.config import BotSyncConfig, ConflictResolution, SyncDirection
    from neonpay.sync.conflicts import SyncConflict
    from neonpay.sync.manager import SyncManager as BotSyncManager
    from neonpay.sync.multi import MultiBotSyncManager
    from neonpay.sync.results import SyncResult, SyncStatus

__all__ = [
    "BotAPIError",
    "BotLibrary",
    "BotSyncConfig",
    "BotSyncManager",
    "ConfigurationError",
    "ConflictError",
    "ConflictResolution",
    "DiscountType",
    "MultiBotSyncManager",
    "NeonPay",
    "NeonPayCore",
    "NeonPayError",
    "NotFoundError",
    "Payment",
    "PaymentError",
    "PaymentHistory",
    "PaymentResult",
    "PaymentStage",
    "PaymentStatus",
    "PaymentTotal",
    "PeerRejected",
    "PeerUnreachable",
    "PromoCode",
    "PromoSystem",
    "SignatureError",
    "StarsPaymentError",
    "StorageError",
    "SyncConflict",
    "SyncDirection",
    "SyncError",
    "SyncResult",
    "SyncStatus",
    "Template",
    "TemplateCategory",
    "TemplateManager",
    "TemplateProduct",
    "ValidationError",
    "__version__",
    "create_neonpay",
]

# The sync names load on first use, so that a catalog-only program does not import the
# engine (and the engine can import the core without a cycle).
_LAZY = {
    "MultiBotSyncManager": "neonpay.sync.multi",
    "BotSyncConfig": "neonpay.sync.config",
    "SyncDirection": "neonpay.sync.config",
    "ConflictResolution": "neonpay.sync.config",
    "SyncConflict": "neonpay.sync.conflicts",
    "SyncResult": "neonpay.sync.results",
    "SyncStatus": "neonpay.sync.results",
}
# The 2.x adapter classes, loaded only when asked for (they import their framework), and
# left out of __all__ so that ``from neonpay import *`` works without every framework.
_LAZY.update(
    dict.fromkeys(
        (
            "AiogramAdapter",
            "BotAPIAdapter",
            "PyrogramAdapter",
            "PythonTelegramBotAdapter",
            "RawAPIAdapter",
            "TelebotAdapter",
        ),
        "neonpay.adapters",
    )
)
# Names neonpay 2.x exported under another name.
_RENAMED = {"BotSyncManager": ("neonpay.sync.manager", "SyncManager")}


def __getattr__(name: str) -> Any:
    if name in _RENAMED:
        module_name, attribute = _RENAMED[name]
        return getattr(importlib.import_module(module_name), attribute)
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'neonpay' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(__all__)
