"""Helpers of the command-line tests: the console script, its results, free ports."""

from __future__ import annotations

import json
import shutil
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Seconds any one command may take before the test fails.
COMMAND_TIMEOUT = 60.0


def neonpay_command() -> list[str]:
    """The installed console script, or ``python -m neonpay``."""
    script = shutil.which("neonpay")
    if script is None:
        candidate = Path(sys.executable).with_name("neonpay")
        script = str(candidate) if candidate.exists() else None
    return [script] if script else [sys.executable, "-m", "neonpay"]


@dataclass(frozen=True)
class Run:
    """A finished command: exit code and output."""

    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


CLI = Callable[..., Run]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
