"""The names the spec promises import as written."""

from __future__ import annotations

import neonpay
import neonpay.sync


def test_spec_imports() -> None:
    from neonpay import BotSyncConfig, ConflictResolution, MultiBotSyncManager, SyncDirection
    from neonpay.sync import ConflictResolver, SyncManager, SyncStatus

    assert MultiBotSyncManager.__module__ == "neonpay.sync.multi"
    assert BotSyncConfig.__module__ == "neonpay.sync.config"
    assert SyncDirection.PUSH.value == "push"
    assert ConflictResolution.ASK_USER.value == "ask_user"
    assert SyncManager.__module__ == "neonpay.sync.manager"
    assert ConflictResolver.__module__ == "neonpay.sync.conflicts"
    assert {s.value for s in SyncStatus} >= {"completed", "failed", "partial"}


def test_every_name_in_all_resolves() -> None:
    for name in neonpay.sync.__all__:
        assert getattr(neonpay.sync, name) is not None
    assert sorted(neonpay.sync.__all__) == dir(neonpay.sync)
