"""The world a documentation page's snippets run in, and the runner of its blocks.

One :class:`PageRun` per page: a temporary working directory with the page's default
store (``NEONPAY_STORAGE``), the sync secret every node of the page shares
(``NEONPAY_SYNC_SECRET``), a Bot API emulator with ``your_bot`` pointed at it, and a real
sync server on 127.0.0.1 for every remote host the page names in a sync URL. The page's
blocks run in order in one namespace, as a reader would type them into one
``python -m asyncio`` session: top-level ``await`` works, names carry over from block to
block.

The namespace starts with the few things a page leaves to the reader (see
:func:`prelude`). Nothing else is provided: a snippet that uses a name it never defines or
imports fails.
"""

from __future__ import annotations

import ast
import asyncio
import builtins
import contextlib
import inspect
import io
import linecache
import logging
import os
import socket
import types
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest

from neonpay import NeonPay, create_neonpay
from neonpay.testing import BotAPIEmulator
from neonpay.web_sync import SyncConnector, SyncServer

from .markdown import Snippet
from .shell import CommandRun, run_bash
from .substitution import Substitutions, environment_names, fake_token

__all__ = ["BlockRun", "PageRun", "PeerNode", "free_port"]

#: The secret every node of a page shares (in ``NEONPAY_SYNC_SECRET``).
PAGE_SECRET = "docs-page-secret-0123456789abcdef"
#: The longest a block may run before the runner gives up on it.
BLOCK_TIMEOUT = 60.0
#: How long a server block (``await run_sync_server(...)``) has to answer /health.
SERVER_TIMEOUT = 15.0
#: How long a loop a snippet started (``asyncio.create_task(...)``) runs before the runner
#: checks it is still alive and cancels it.
LOOP_GRACE = 1.0
#: The host of the peer that the prelude's ``connector`` talks to.
CONNECTOR_HOST = "webhook-peer.example.com"
_SECRET_LITERAL = "webhook_secret"
_PG_ENV = "NEONPAY_TEST_POSTGRES"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class PeerNode:
    """A stand-in for a remote bot: its own store and a real sync server on loopback."""

    host: str
    neonpay: NeonPay
    server: SyncServer

    @property
    def url(self) -> str:
        """The sync base URL (``http://127.0.0.1:PORT/sync``)."""
        return self.server.url

    async def close(self) -> None:
        await self.server.close()
        self.neonpay.close()


@dataclass
class BlockRun:
    """What one block did."""

    snippet: Snippet
    source: str  # after substitution
    stdout: str = ""
    commands: list[CommandRun] = field(default_factory=list)
    served_port: int | None = None
    loops: list[str] = field(default_factory=list)  # loops it started (cancelled)


class RecordingNotifications:
    """The ``notifications`` object a page leaves to the reader: records each call."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    async def send_template_notification(
        self, template: str, *, recipient: str, variables: dict[str, Any]
    ) -> bool:
        self.sent.append({"template": template, "recipient": recipient, "variables": variables})
        return True


class RecordingHandler(logging.Handler):
    """Keeps the records of the prelude's ``logger``."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def messages(self, level: int) -> list[str]:
        return [r.getMessage() for r in self.records if r.levelno == level]


def stage_item(stage_id: str, price: int) -> dict[str, Any]:
    """A plain payment stage item, as the spec's batch snippets send them."""
    return {
        "stage_id": stage_id,
        "title": f"Bulk {stage_id}"[:32],
        "description": "A product sent by a batch sync",
        "price": price,
    }


class PageRun:
    """Runs the blocks of one page, in order, in one namespace."""

    def __init__(
        self,
        doc: str,
        snippets: list[Snippet],
        root: Path,
        *,
        setup: Callable[[PageRun], None] | None = None,
    ) -> None:
        self.doc = doc
        self.setup = setup
        self.snippets = snippets
        self.root = root
        self.cwd = root / "work"
        self.namespace: dict[str, Any] = {}
        self.peers: dict[str, PeerNode] = {}
        self.emulator: BotAPIEmulator | None = None
        self.bot: Any = None
        self.connector: SyncConnector | None = None
        self.logs = RecordingHandler()
        self.notifications = RecordingNotifications()
        self.runs: list[BlockRun] = []
        self.failed: list[str] = []
        self.storage_url = f"sqlite:///{self.cwd / 'neonpay.db'}"
        self.postgres_url: str | None = None
        self._postgres_schema: str | None = None
        self._patch = pytest.MonkeyPatch()
        self._owned: list[Any] = []
        self._owned_ids: set[int] = set()
        self._loops: list[asyncio.Task[Any]] = []
        self._tasks_before: set[asyncio.Task[Any]] = set()
        self._started = False
        self._skip_reason: str | None = None
        self.subs = Substitutions(sync_base=self._sync_base, free_port=free_port)

    # --- set up and tear down ---------------------------------------------------------------
    @property
    def text(self) -> str:
        return "\n".join(s.source for s in self.snippets)

    def needs_postgres(self) -> bool:
        return any("@db.example.com" in s.source and "postgres" in s.source for s in self.snippets)

    async def start(self) -> None:
        """Create the page's world. Idempotent.

        A page that needs PostgreSQL where none is configured skips, and so does every
        later block of it (the page is never started without its database).
        """
        if self._skip_reason is not None:
            pytest.skip(self._skip_reason)
        if self._started:
            return
        if self.needs_postgres() and not os.environ.get(_PG_ENV):
            if os.environ.get("NEONPAY_REQUIRE_POSTGRES"):
                pytest.fail(f"{_PG_ENV} is not set but NEONPAY_REQUIRE_POSTGRES is")
            self._skip_reason = f"{self.doc} needs PostgreSQL: set {_PG_ENV}"
            pytest.skip(self._skip_reason)
        self._started = True
        self._tasks_before = asyncio.all_tasks()
        self.cwd.mkdir(parents=True, exist_ok=True)
        self._patch.setenv("NEONPAY_STORAGE", self.storage_url)
        # The reader's bot has already created its store; read-only CLI commands in a page
        # (e.g. `neonpay export`) refuse a store that does not exist.
        create_neonpay(storage=self.storage_url).close()
        self._patch.setenv("NEONPAY_SYNC_SECRET", PAGE_SECRET)
        self._patch.setenv("NO_COLOR", "1")
        for name in environment_names(self.text):
            if name.endswith("TOKEN"):
                self._patch.setenv(name, self.subs.token(name))
        if self.needs_postgres():
            self._open_postgres()
        self.emulator = BotAPIEmulator()
        await self.emulator.start()
        self.bot = _aiogram_bot(self.emulator)
        self.logs.setLevel(logging.DEBUG)
        logger = logging.getLogger(f"docs.{uuid.uuid4().hex[:6]}")
        logger.addHandler(self.logs)
        logger.setLevel(logging.DEBUG)
        logger.propagate = False
        for host in sorted({*self._sync_hosts(), CONNECTOR_HOST}):
            await self._start_peer(host)
        self.connector = SyncConnector(self.peers[CONNECTOR_HOST].url)
        self.namespace = prelude(self, logger)
        if self.setup is not None:
            self.setup(self)

    def setenv(self, name: str, value: str) -> None:
        """Set an environment variable as the reader's shell would have it (for example a
        secret the page tells them to export); undone when the page closes."""
        self._patch.setenv(name, value)

    def peer(self, host: str) -> NeonPay:
        """The store of the stand-in for ``host``."""
        return self.peers[host].neonpay

    def _sync_hosts(self) -> set[str]:
        from .substitution import _SYNC_URL, LOOPBACK

        return {
            m["host"]
            for m in _SYNC_URL.finditer(self.text)
            if m["host"] not in LOOPBACK and m["host"] != "0.0.0.0"  # noqa: S104
        }

    def _secrets(self) -> list[str]:
        """The literal webhook secrets the page configures, which its peers accept too."""
        found: list[str] = []
        for snippet in self.snippets:
            if snippet.lang != "python":
                continue
            for node in ast.walk(parse(snippet.source)):
                if (
                    isinstance(node, ast.keyword)
                    and node.arg == _SECRET_LITERAL
                    and isinstance(node.value, ast.Constant)
                    and isinstance(node.value.value, str)
                ):
                    found.append(node.value.value)
        return sorted(set(found))

    async def _start_peer(self, host: str) -> None:
        name = host.split(".")[0]
        neonpay = create_neonpay(storage=f"sqlite:///{self.root / f'peer-{name}.db'}")
        server = SyncServer(neonpay, "127.0.0.1", 0, PAGE_SECRET, secrets=self._secrets())
        await server.start()
        self.peers[host] = PeerNode(host, neonpay, server)

    def _sync_base(self, host: str) -> str:
        peer = self.peers.get(host)
        if peer is None:
            raise AssertionError(f"no stand-in sync server for {host}")
        return peer.url

    def _open_postgres(self) -> None:
        base = os.environ.get(_PG_ENV)
        if not base:
            if os.environ.get("NEONPAY_REQUIRE_POSTGRES"):
                pytest.fail(f"{_PG_ENV} is not set but NEONPAY_REQUIRE_POSTGRES is")
            pytest.skip(f"{self.doc} needs PostgreSQL: set {_PG_ENV}")
        import psycopg

        schema = f"docs_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        self._postgres_schema = schema
        sep = "&" if "?" in base else "?"
        self.postgres_url = f"{base}{sep}options={quote(f'-csearch_path={schema}')}"
        self.subs.postgres_url = self.postgres_url

    async def close(self) -> None:
        """Stop everything the page started, close everything it opened. Idempotent."""
        if not self._started:
            return
        self._started = False
        try:
            await self._cancel_loops()
            await self._close_owned()
            leftover = asyncio.all_tasks() - self._tasks_before - {asyncio.current_task()}
            for task in leftover:
                task.cancel()
            if leftover:
                await asyncio.wait(leftover, timeout=BLOCK_TIMEOUT)
            if self.connector is not None:
                await self.connector.close()
            if self.bot is not None:
                await self.bot.session.close()
            for peer in self.peers.values():
                await peer.close()
            if self.emulator is not None:
                await self.emulator.close()
        finally:
            self._drop_postgres()
            self._patch.undo()

    def _drop_postgres(self) -> None:
        base = os.environ.get(_PG_ENV)
        if self._postgres_schema is None or not base:
            return
        import psycopg

        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {self._postgres_schema} CASCADE")

    def _track(self) -> None:
        """Remember every object the snippets made that must be closed at the end."""
        provided = {id(self.bot), id(self.connector), id(self.notifications)}
        for value in list(self.namespace.values()):
            if isinstance(value, types.ModuleType) or callable(value):
                continue
            if id(value) in provided or id(value) in self._owned_ids:
                continue
            if callable(getattr(value, "close", None)):
                self._owned.append(value)
                self._owned_ids.add(id(value))

    async def _close_owned(self) -> None:
        owned = list(reversed(self._owned))
        for value in owned:  # auto sync first: its loops use the stores
            stop = getattr(value, "stop_auto_sync_all", None)
            if stop is not None:
                await stop()
        async_first = sorted(owned, key=lambda v: not inspect.iscoroutinefunction(v.close))
        for value in async_first:
            result = value.close()
            if inspect.isawaitable(result):
                await result

    async def _cancel_loops(self) -> None:
        loops, self._loops = self._loops, []
        for task in loops:
            task.cancel()
        if loops:
            await asyncio.wait(loops, timeout=BLOCK_TIMEOUT)

    # --- running blocks ---------------------------------------------------------------------
    async def run(self, snippet: Snippet) -> BlockRun:
        """Run one block (after substitution); raises what the block raised."""
        await self.start()
        source = self.subs.apply(snippet.source, snippet.lang)
        block = BlockRun(snippet, source)
        self.runs.append(block)
        try:
            if snippet.lang == "bash":
                block.commands = await asyncio.to_thread(
                    run_bash, source, cwd=self.cwd, env=self.subprocess_env()
                )
            else:
                await self._run_python(block)
        except BaseException:
            self.failed.append(snippet.test_id)
            raise
        finally:
            self._track()
        return block

    def subprocess_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONWARNINGS"] = "error"
        return env

    async def _run_python(self, block: BlockRun) -> None:
        snippet = block.snippet
        linecache.cache[snippet.filename] = (
            len(block.source),
            None,
            block.source.splitlines(keepends=True),
            snippet.filename,
        )
        code = compile(
            block.source,
            snippet.filename,
            "exec",
            flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT,
            dont_inherit=True,
        )
        server_port = _served_port(block.source)
        before = asyncio.all_tasks()
        out = io.StringIO()
        with contextlib.redirect_stdout(out), _working_directory(self.cwd):
            result = eval(code, self.namespace)  # noqa: S307 - the page's own snippet
            if inspect.iscoroutine(result):
                task = asyncio.ensure_future(result)
                if server_port is not None:
                    await _serve_then_stop(task, server_port)
                    block.served_port = server_port
                else:
                    await _finish(task, snippet)
            block.stdout = out.getvalue()
        await self._stop_loops(block, asyncio.all_tasks() - before)

    async def _stop_loops(self, block: BlockRun, new: set[asyncio.Task[Any]]) -> None:
        """Let the loops a block started (``asyncio.create_task(f())`` of a coroutine
        function it defines) run for a while, check they are alive, then cancel them."""
        started = [t for t in new if _defined_in(t, block.snippet.filename)]
        if not started:
            return
        await asyncio.sleep(LOOP_GRACE)
        running = []
        for task in started:
            if not task.done():
                running.append(task)
            elif not task.cancelled():  # the snippet may have cancelled it itself
                task.result()  # re-raises what the task died of
        block.loops = sorted(_coroutine_name(task) for task in running)
        self._loops += running
        await self._cancel_loops()
        for task in running:
            assert task.cancelled(), f"{task!r} did not stop when cancelled"


def prelude(page: PageRun, logger: logging.Logger) -> dict[str, Any]:
    """What a page leaves to the reader: their bot, a logger, a notification service, a
    connector to a peer and the data the batch snippets send."""
    assert page.connector is not None
    return {
        "__name__": "__docs__",
        "__builtins__": builtins,
        "your_bot": page.bot,
        "logger": logger,
        "notifications": page.notifications,
        "connector": page.connector,
        "endpoint": "/sync/payment_stages",
        "data": {"data": [stage_item("webhook-demo", 42)]},
        "stages_data": [stage_item(f"bulk-{i:02d}", 10 + i) for i in range(25)],
    }


def _aiogram_bot(emulator: BotAPIEmulator) -> Any:
    """``your_bot``: an aiogram ``Bot`` whose API server is the emulator."""
    from aiogram import Bot
    from aiogram.client.session.aiohttp import AiohttpSession

    session = AiohttpSession(api=emulator.aiogram_server())
    return Bot(fake_token("YOUR_BOT", 0), session=session)


@contextlib.contextmanager
def _working_directory(path: Path) -> Iterator[None]:
    old = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def _served_port(source: str) -> int | None:
    """The port of a top-level ``await run_sync_server(..., port=N)``, or None."""
    for node in ast.walk(parse(source)):
        if (
            isinstance(node, ast.Await)
            and isinstance(node.value, ast.Call)
            and getattr(node.value.func, "id", getattr(node.value.func, "attr", None))
            == "run_sync_server"
        ):
            for keyword in node.value.keywords:
                if keyword.arg == "port" and isinstance(keyword.value, ast.Constant):
                    port = keyword.value.value
                    assert isinstance(port, int)
                    return port
            return 8080
    return None


def parse(source: str) -> ast.Module:
    """The syntax tree of a snippet (top-level ``await`` allowed)."""
    tree = compile(
        source,
        "<snippet>",
        "exec",
        flags=ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT,
        dont_inherit=True,
    )
    assert isinstance(tree, ast.Module)
    return tree


async def _finish(task: asyncio.Future[Any], snippet: Snippet) -> None:
    done, _ = await asyncio.wait({task}, timeout=BLOCK_TIMEOUT)
    if not done:
        task.cancel()
        await asyncio.wait({task}, timeout=BLOCK_TIMEOUT)
        raise AssertionError(f"{snippet.test_id} did not finish within {BLOCK_TIMEOUT} s")
    task.result()


async def _serve_then_stop(task: asyncio.Future[Any], port: int) -> None:
    """A block that serves until cancelled: check it serves, then cancel it."""
    deadline = asyncio.get_running_loop().time() + SERVER_TIMEOUT
    async with aiohttp.ClientSession() as session:
        while True:
            if task.done():
                task.result()
                raise AssertionError("the server block returned instead of serving")
            try:
                async with session.get(f"http://127.0.0.1:{port}/health") as response:
                    if response.status == 200:
                        break
            except aiohttp.ClientError:
                pass
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"nothing answered /health on port {port}")
            await asyncio.sleep(0.05)
    task.cancel()
    await asyncio.wait({task}, timeout=BLOCK_TIMEOUT)
    assert task.cancelled(), "the server did not stop when cancelled"


def _defined_in(task: asyncio.Task[Any], filename: str) -> bool:
    code = getattr(task.get_coro(), "cr_code", None)
    return code is not None and code.co_filename == filename


def _coroutine_name(task: asyncio.Task[Any]) -> str:
    code = getattr(task.get_coro(), "cr_code", None)
    return code.co_name if code is not None else task.get_name()


Check = Callable[[PageRun, BlockRun], Awaitable[None]]
