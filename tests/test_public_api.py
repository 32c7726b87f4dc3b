"""The public surface: ``neonpay.__all__``, the spec's imports and the console script."""

from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path

import pytest

import neonpay

SYNC_MODULES = ("neonpay.sync.multi", "neonpay.sync.config")
SYNC_NAMES = {"MultiBotSyncManager", "BotSyncConfig", "SyncDirection", "ConflictResolution"}
# Sync names neonpay 2.x also exported from the package (BotSyncManager is SyncManager).
COMPAT_SYNC_NAMES = {"BotSyncManager", "SyncConflict", "SyncResult", "SyncStatus"}
# The 2.x adapter classes, loaded lazily because each imports its framework.
ADAPTER_NAMES = {
    "AiogramAdapter",
    "BotAPIAdapter",
    "PyrogramAdapter",
    "PythonTelegramBotAdapter",
    "RawAPIAdapter",
    "TelebotAdapter",
}


def test_the_spec_imports() -> None:
    from neonpay import (
        BotSyncConfig,
        ConflictResolution,
        MultiBotSyncManager,
        SyncDirection,
        create_neonpay,
    )

    assert callable(create_neonpay)
    assert isinstance(MultiBotSyncManager, type)
    assert isinstance(BotSyncConfig, type)
    assert {d.name for d in SyncDirection} >= {"PUSH", "PULL", "BIDIRECTIONAL"}
    assert {c.name for c in ConflictResolution} >= {
        "SOURCE_WINS",
        "TARGET_WINS",
        "MERGE",
        "ASK_USER",
    }


def test_every_name_in_all_imports() -> None:
    namespace: dict[str, object] = {}
    exec("from neonpay import *", namespace)  # noqa: S102 - the star import is the test
    assert set(neonpay.__all__) <= set(namespace)
    for name in neonpay.__all__:
        assert getattr(neonpay, name) is namespace[name]


def test_every_core_name_in_all_imports() -> None:
    for name in set(neonpay.__all__) - SYNC_NAMES:
        assert getattr(neonpay, name) is not None, name


def test_all_matches_what_the_package_exposes() -> None:
    assert neonpay.__all__ == sorted(neonpay.__all__)
    assert len(set(neonpay.__all__)) == len(neonpay.__all__)
    own = {
        name
        for name, value in vars(neonpay).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and getattr(value, "__module__", "").startswith("neonpay")
    }
    lazy = SYNC_NAMES | COMPAT_SYNC_NAMES
    assert own | lazy | {"__version__"} == set(neonpay.__all__)
    assert not ADAPTER_NAMES & set(neonpay.__all__)  # star-imports need no framework
    assert dir(neonpay) == sorted(neonpay.__all__)
    for name in ADAPTER_NAMES:  # the 2.x adapter names still resolve, lazily
        assert getattr(neonpay, name).__module__.startswith("neonpay.adapters")
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        neonpay.Nope  # noqa: B018 - the lookup is the test


def test_the_sync_names_load_lazily() -> None:
    code = "import sys, neonpay; print(' '.join(sorted(sys.modules)))"
    done = subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    loaded = set(done.stdout.split())
    assert "neonpay.core" in loaded
    assert not loaded & set(SYNC_MODULES)  # a catalog-only program does not load the engine


def test_the_package_is_typed() -> None:
    assert (Path(neonpay.__file__).parent / "py.typed").is_file()
    assert isinstance(neonpay.__version__, str)
    assert neonpay.__version__[0].isdigit()


CONSOLE_SCRIPT = Path(sys.executable).parent / "neonpay"


@pytest.mark.skipif(not CONSOLE_SCRIPT.exists(), reason="the package is not installed")
@pytest.mark.parametrize(("flag", "expected"), [("--version", "neonpay "), ("--help", "usage")])
def test_the_console_script(flag: str, expected: str) -> None:
    done = subprocess.run(  # noqa: S603 - the installed console script
        [str(CONSOLE_SCRIPT), flag], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert expected in done.stdout
    if flag == "--version":
        assert done.stdout.strip() == f"neonpay {neonpay.__version__}"
