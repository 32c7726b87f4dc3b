"""Both example store bots run end to end against the emulator, each with one command.

``python examples/aiogram_store_bot.py --emulator`` (and the python-telegram-bot one)
starts a Bot API emulator, the two bots with their sync servers, and simulated customers;
it exits 0 only when the catalogs converged, both sales went through with the promo code
and both bots know both uses of it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 120.0


def run_example(
    name: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONWARNINGS": "error", **(env or {})}
    environment.pop("BOT_TOKEN", None)
    return subprocess.run(  # noqa: S603 - our own example with this interpreter
        [sys.executable, str(REPO / "examples" / name), *args],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


@pytest.mark.parametrize(
    ("example", "this", "peer"),
    [
        ("aiogram_store_bot.py", "aiogram-store", "ptb-store"),
        ("ptb_store_bot.py", "ptb-store", "aiogram-store"),
    ],
)
def test_example_runs_against_the_emulator(example: str, this: str, peer: str) -> None:
    done = run_example(example, "--emulator")
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    # Each bot sold once, with the promo code created on the aiogram bot.
    assert f"[{this}] sold premium to user 1001 for 45 Stars with WELCOME10" in out
    assert f"[{peer}] sold stickers to user 1002 for 11 Stars with WELCOME10" in out
    # The catalogs converged, including the price change made on the peer.
    for store in (this, peer):
        assert f"{store:<14} gift-card 90, premium 50, stickers 12" in out
        assert f"{store:<14} WELCOME10 used 2x, 1 sale(s)" in out
    assert "(100% successful)" in out
    assert done.stderr == ""


@pytest.mark.parametrize("example", ["aiogram_store_bot.py", "ptb_store_bot.py"])
def test_example_without_a_token_says_what_to_set(example: str) -> None:
    done = run_example(example, "--storage", "sqlite:///unused.db")
    assert done.returncode == 2
    assert "BOT_TOKEN" in done.stderr
    assert not (REPO / "unused.db").exists()
