"""Run Python in child processes (``sys.executable -c``) with bounded waits."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

__all__ = ["Child", "run_python", "start_all", "start_python"]

_ROOT = Path(__file__).resolve().parents[2]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("NEONPAY_STORAGE", None)
    env["PYTHONPATH"] = str(_ROOT)
    return env


def run_python(code: str, *args: str, timeout: float = 60.0) -> str:
    """Run ``code`` with ``args`` in a child process; return its stdout (it must exit 0)."""
    done = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=_env(),
        check=False,
    )
    assert done.returncode == 0, f"child failed ({done.returncode}):\n{done.stderr}"
    return done.stdout


class Child:
    """A running child process whose stdout lines are read by a thread."""

    def __init__(self, code: str, *args: str) -> None:
        self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and code
            [sys.executable, "-c", code, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def readline(self, timeout: float = 30.0) -> str:
        """The next stdout line; fails on timeout or when the child ended first."""
        try:
            line = self._queue.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no output from the child within {timeout} s") from None
        if line is None:
            self._queue.put(None)
            raise AssertionError(f"the child ended early:\n{self.stderr()}")
        self.lines.append(line)
        return line

    def send(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text)
        self.proc.stdin.flush()

    def kill(self) -> list[str]:
        """SIGKILL the child; return every line it printed, including unread ones."""
        self.proc.kill()
        self.proc.wait(timeout=30)
        self._reader.join(timeout=30)
        while True:
            line = self._queue.get(timeout=5)
            if line is None:
                break
            self.lines.append(line)
        self._close_pipes()
        return self.lines

    def finish(self, timeout: float = 60.0) -> list[str]:
        """Wait for a clean exit (0); return every line it printed."""
        deadline = time.monotonic() + timeout
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=30)
            raise AssertionError(f"the child did not finish within {timeout} s") from None
        self._reader.join(timeout=max(1.0, deadline - time.monotonic()))
        while True:
            line = self._queue.get(timeout=5)
            if line is None:
                break
            self.lines.append(line)
        code = self.proc.returncode
        err = self.stderr()
        self._close_pipes()
        assert code == 0, f"child failed ({code}):\n{err}"
        return self.lines

    def stderr(self) -> str:
        if self.proc.poll() is None or self.proc.stderr is None or self.proc.stderr.closed:
            return ""
        return self.proc.stderr.read()

    def _close_pipes(self) -> None:
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if pipe is not None and not pipe.closed:
                pipe.close()

    def ensure_dead(self) -> None:
        """Kill the child if it still runs (test cleanup)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        self._reader.join(timeout=30)
        self._close_pipes()


def start_python(code: str, *args: str) -> Child:
    """Start ``code`` in a child process."""
    return Child(code, *args)


def start_all(code: str, arg_lists: Sequence[Sequence[str]]) -> list[Child]:
    """Start one child per argument list."""
    return [Child(code, *args) for args in arg_lists]
