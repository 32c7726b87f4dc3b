"""Fixtures for the command-line tests: the real ``neonpay`` console script in subprocesses."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from .helpers import CLI, COMMAND_TIMEOUT, Run, neonpay_command


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    """The environment of the subprocesses: a store in tmp_path, no colours."""
    env = dict(os.environ)
    env.pop("NEONPAY_SYNC_SECRET", None)
    env["NEONPAY_STORAGE"] = f"sqlite:///{tmp_path / 'neonpay.db'}"
    env["NO_COLOR"] = "1"
    env["PYTHONWARNINGS"] = "error"
    return env


@pytest.fixture
def cli(tmp_path: Path, cli_env: dict[str, str]) -> CLI:
    """``cli("stages", "list", env={...}, input="...")`` runs the console script."""

    def run(*args: str, env: dict[str, str] | None = None, input: str | None = None) -> Run:
        merged = {**cli_env, **(env or {})}
        done = subprocess.run(  # noqa: S603 - our own console script
            [*neonpay_command(), *args],
            cwd=tmp_path,
            env=merged,
            input=input,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
        return Run(done.returncode, done.stdout, done.stderr)

    return run
