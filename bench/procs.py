"""Node processes for the benchmarks: spawned, driven by JSON lines, always ended.

The parent starts each node with ``python -m <module> ...``. A node answers one JSON
line on stdout when it is ready, then reads commands (``{"op": ..., "args": {...}}``)
from stdin and answers each with one line (``{"ok": true, "result": ...}`` or
``{"ok": false, "error": ...}``). A node exits on the ``exit`` command or when its stdin
closes, so a node whose parent died goes away too. :class:`ProcessGroup` kills whatever
is still running when it exits, also after an error. With ``profile=True`` every NEONPAY
node runs under ``py-spy record`` (collapsed stacks next to its log; memory figures then
describe py-spy, not the node).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sys
import time
import traceback
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import orjson

from bench.measure import peak_rss

__all__ = ["Child", "NodeError", "ProcessGroup", "serve_commands"]

REPO_ROOT = Path(__file__).resolve().parent.parent
_LINE_LIMIT = 64 * 1024 * 1024
_STOP_TIMEOUT = 5.0

Handler = Callable[..., Awaitable[Any]]


class NodeError(RuntimeError):
    """A node process failed: it did not start, answered with an error, or timed out."""


class Child:
    """One running node process and its command channel."""

    def __init__(self, name: str, proc: asyncio.subprocess.Process, log_path: Path) -> None:
        self.name = name
        self.proc = proc
        self.log_path = log_path
        self.ready: dict[str, Any] = {}
        self._lock = asyncio.Lock()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_tail(self, lines: int = 20) -> str:
        """The last lines the node wrote to stderr."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    async def _read_line(self, timeout: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = await asyncio.wait_for(
                    self.proc.stdout.readline(), max(0.0, deadline - time.monotonic())
                )
            except asyncio.TimeoutError as exc:
                raise NodeError(
                    f"node {self.name} did not answer within {timeout:.0f} s\n{self.log_tail()}"
                ) from exc
            if not line:
                raise NodeError(f"node {self.name} exited\n{self.log_tail()}")
            if line.startswith(b"{"):
                break
            # not ours (a profiler's chatter): keep it with the node's log
            with self.log_path.open("ab") as log:
                log.write(line)
        message = orjson.loads(line)
        if not isinstance(message, dict):
            raise NodeError(f"node {self.name} sent {message!r}")
        return message

    async def wait_ready(self, timeout: float) -> None:
        self.ready = await self._read_line(timeout)

    async def call(self, op: str, *, timeout: float = 300.0, **args: Any) -> Any:
        """Run ``op`` on the node and return its result.

        Raises:
            NodeError: the node answered with an error, exited, or took over ``timeout``.
        """
        async with self._lock:
            assert self.proc.stdin is not None
            self.proc.stdin.write(orjson.dumps({"op": op, "args": args}) + b"\n")
            await self.proc.stdin.drain()
            reply = await self._read_line(timeout)
        if not reply.get("ok"):
            raise NodeError(f"node {self.name}: {op} failed: {reply.get('error')}")
        return reply.get("result")

    def peak_rss(self) -> int:
        """Peak resident memory of the node so far, in bytes."""
        return peak_rss(self.pid)

    async def stop(self, timeout: float = _STOP_TIMEOUT) -> None:
        """Ask the node to exit; kill it when it does not within ``timeout``."""
        if self.proc.returncode is None:
            with contextlib.suppress(Exception):
                assert self.proc.stdin is not None
                self.proc.stdin.write(b'{"op": "exit", "args": {}}\n')
                await self.proc.stdin.drain()
                self.proc.stdin.close()
            try:
                await asyncio.wait_for(self.proc.wait(), timeout)
            except asyncio.TimeoutError:
                self.kill()
                await asyncio.wait_for(self.proc.wait(), timeout)
        if self.proc.stdin is not None:
            self.proc.stdin.close()

    def kill(self) -> None:
        """Kill the node at once (SIGKILL) if it is still running."""
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGKILL)


class ProcessGroup:
    """Spawns node processes and ends every one of them on exit, even after an error."""

    def __init__(self, log_dir: Path, *, profile: bool = False) -> None:
        self.log_dir = log_dir
        self.profile = profile
        self._children: list[Child] = []
        self._count = 0

    def _command(self, name: str, module: str, args: tuple[str, ...]) -> list[str]:
        command = [sys.executable, "-m", module, *args]
        if not self.profile or module != "bench.node":
            return command
        py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        out = self.log_dir / f"{self._count:03d}-{name}.profile.txt"
        return [
            py_spy,
            "record",
            "--rate",
            "1000",
            "--format",
            "raw",
            "-o",
            str(out),
            "--",
            *command,
        ]

    async def spawn(
        self,
        name: str,
        module: str,
        *args: str,
        env: Mapping[str, str] | None = None,
        ready_timeout: float = 60.0,
    ) -> Child:
        """Start ``python -m module *args`` and wait for its ready line.

        Raises:
            NodeError: the node did not become ready.
        """
        self._count += 1
        log_path = self.log_dir / f"{self._count:03d}-{name}.log"
        full_env = dict(os.environ)
        full_env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(REPO_ROOT), full_env.get("PYTHONPATH", "")) if p
        )
        full_env.update(env or {})
        with log_path.open("wb") as log:
            proc = await asyncio.create_subprocess_exec(
                *self._command(name, module, args),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
                cwd=str(REPO_ROOT),
                env=full_env,
                limit=_LINE_LIMIT,
            )
        child = Child(name, proc, log_path)
        self._children.append(child)
        try:
            await child.wait_ready(ready_timeout)
        except BaseException:
            child.kill()
            raise
        return child

    async def stop(self, child: Child) -> None:
        """End one node (politely, then by force)."""
        try:
            await child.stop()
        finally:
            child.kill()
            if child in self._children:
                self._children.remove(child)

    async def close(self) -> None:
        """End every node still running."""
        children, self._children = self._children, []
        results = await asyncio.gather(*(c.stop() for c in children), return_exceptions=True)
        for child, result in zip(children, results, strict=True):
            child.kill()
            if isinstance(result, BaseException):
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(child.proc.wait(), _STOP_TIMEOUT)

    async def __aenter__(self) -> ProcessGroup:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


# --- the node side -------------------------------------------------------------------------
def _emit(message: Mapping[str, Any]) -> None:
    sys.stdout.buffer.write(orjson.dumps(message) + b"\n")
    sys.stdout.buffer.flush()


async def serve_commands(handlers: Mapping[str, Handler], ready: Mapping[str, Any]) -> None:
    """In a node: announce ``ready``, then run commands from stdin until ``exit`` or EOF.

    A handler's exception becomes an error answer; the node keeps serving.
    """
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=_LINE_LIMIT)
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), sys.stdin
    )
    try:
        _emit({"ready": True, **ready})
        while True:
            line = await reader.readline()
            if not line:
                return
            message = orjson.loads(line)
            op = str(message.get("op"))
            if op == "exit":
                return
            handler = handlers.get(op)
            if handler is None:
                _emit({"ok": False, "error": f"unknown op {op!r}"})
                continue
            try:
                result = await handler(**message.get("args", {}))
            except Exception as exc:
                traceback.print_exc()
                _emit({"ok": False, "error": f"{type(exc).__name__}: {exc}"})
            else:
                _emit({"ok": True, "result": result})
    finally:
        transport.close()
