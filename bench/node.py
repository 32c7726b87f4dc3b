"""A NEONPAY bot process for the scenarios: one store on disk, optionally a sync server,
and sync managers for its peers, driven by JSON-line commands (see :mod:`bench.procs`).

``python -m bench.node --storage URL [--serve]``: the webhook secret comes in
``$BENCH_SYNC_SECRET``; the ready line carries the node id and, when serving, the port of
its sync server (``run_sync_server`` on 127.0.0.1). Commands: ``add_peer``, ``sync``,
``start_auto``, ``edit``, ``update``, ``count``, ``digest``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import os
import socket
import time
from typing import Any

import aiohttp
import orjson

from bench.catalog import KIND, stage_id
from bench.procs import Handler, serve_commands
from neonpay import create_neonpay
from neonpay.core.neonpay import NeonPay
from neonpay.sync.config import BotSyncConfig
from neonpay.sync.manager import SyncManager
from neonpay.sync.multi import MultiBotSyncManager
from neonpay.web_sync import run_sync_server  # imported up front: not part of a sync's time

__all__ = ["main"]

_START_TIMEOUT = 15.0
#: The environment variable that hands a node the run's webhook secret.
SECRET_ENV = "BENCH_SYNC_SECRET"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def edited_title(i: int, tag: str, revision: int) -> str:
    """The title a benchmark edit gives stage ``i``."""
    return f"Product {i:06d} {tag}{revision}"


def edited_price(i: int, salt: int, revision: int) -> int:
    """The price a benchmark edit gives stage ``i``."""
    return 1 + (i * 31 + revision * 7 + salt * 101) % 9000


class Node:
    """One bot: its catalog, its sync server (if any), and its sync managers."""

    def __init__(self, storage: str) -> None:
        self.neonpay: NeonPay = create_neonpay(storage=storage)
        self.configs: dict[str, BotSyncConfig] = {}
        self.managers: dict[str, SyncManager] = {}
        self.multi: MultiBotSyncManager | None = None
        self._server: asyncio.Task[None] | None = None

    # --- serving ---------------------------------------------------------------------
    async def serve(self, secret: str) -> int:
        """Start ``run_sync_server`` on a free loopback port; the port, once it answers."""
        for _ in range(5):
            port = _free_port()
            task = asyncio.create_task(
                run_sync_server(self.neonpay, "127.0.0.1", port, webhook_secret=secret)
            )
            if await self._answers(port, task):
                self._server = task
                return port
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        raise RuntimeError("the sync server did not start")

    @staticmethod
    async def _answers(port: int, task: asyncio.Task[None]) -> bool:
        deadline = time.monotonic() + _START_TIMEOUT
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline and not task.done():
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(f"http://127.0.0.1:{port}/health") as resp:
                        if resp.status == 200:
                            return True
                await asyncio.sleep(0.02)
        return False

    # --- commands ---------------------------------------------------------------------
    async def add_peer(
        self,
        name: str,
        url: str,
        direction: str,
        secret: str,
        resolution: str = "merge",
        auto: bool = False,
        interval_minutes: float = 60.0,
    ) -> None:
        config = BotSyncConfig(
            target_bot_name=name,
            webhook_url=url,
            webhook_secret=secret,
            direction=direction,  # type: ignore[arg-type]  # the config parses the value
            conflict_resolution=resolution,  # type: ignore[arg-type]
            auto_sync=auto,
            sync_interval_minutes=interval_minutes,
        )
        self.configs[name] = config
        self.managers[name] = SyncManager(self.neonpay, config)

    async def sync(self, name: str) -> dict[str, Any]:
        manager = self.managers[name]
        started = time.perf_counter()
        result = await manager.sync_all()
        seconds = time.perf_counter() - started
        return {
            "seconds": seconds,
            "status": result.status.value,
            "pushed": result.pushed,
            "pulled": result.pulled,
            "conflicts": len(result.conflicts),
            "errors": list(result.errors)[:5],
            "requests": result.requests,
            "bytes_sent": result.bytes_sent,
            "bytes_received": result.bytes_received,
        }

    async def start_auto(self) -> None:
        self.multi = MultiBotSyncManager(self.neonpay)
        for config in self.configs.values():
            self.multi.add_bot(config)
        await self.multi.start_auto_sync_all()

    async def edit(self, indices: list[int], field: str, tag: str, revision: int) -> int:
        """Change ``field`` (title or price) of the given stages, one write each."""
        for i in indices:
            if field == "title":
                self.neonpay.update_payment_stage(stage_id(i), title=edited_title(i, tag, revision))
            else:
                self.neonpay.update_payment_stage(
                    stage_id(i), price=edited_price(i, len(tag), revision)
                )
        return len(indices)

    async def update(self, index: int, title: str) -> dict[str, float]:
        """Retitle one stage; the monotonic time just before the write."""
        started = time.monotonic()
        self.neonpay.update_payment_stage(stage_id(index), title=title)
        return {"t_write": started}

    async def burst(self, count: int, tag: str) -> int:
        """Retitle stages 0..count-1, one write each, from a worker thread (so that the
        auto sync pushes while the burst goes on, as with a busy bot)."""

        def write() -> None:
            for i in range(count):
                self.neonpay.update_payment_stage(stage_id(i), title=edited_title(i, tag, 1))

        await asyncio.to_thread(write)
        return count

    async def count(self) -> int:
        return self.neonpay.store.count(KIND)

    async def digest(self) -> str:
        """A hash of every live stage's id and fields (equal catalogs, equal digests).

        Read page by page and combined without order, so it costs no memory to speak of
        (the nodes' peak memory is a figure of the benchmark).
        """
        total = 0
        since = 0
        while True:
            page = self.neonpay.store.feed(since, 500, kinds=[KIND])
            for record in page.records:
                if not record.deleted:
                    item = orjson.dumps([record.key, record.fields], option=orjson.OPT_SORT_KEYS)
                    total += int.from_bytes(hashlib.sha256(item).digest(), "big")
            since = page.next_cursor
            if not page.has_more:
                return f"{total % 2**256:064x}"

    def handlers(self) -> dict[str, Handler]:
        return {
            "add_peer": self.add_peer,
            "sync": self.sync,
            "start_auto": self.start_auto,
            "edit": self.edit,
            "update": self.update,
            "burst": self.burst,
            "count": self.count,
            "digest": self.digest,
        }

    async def close(self) -> None:
        if self.multi is not None:
            await self.multi.close()
        for manager in self.managers.values():
            await manager.close()
        if self._server is not None:
            self._server.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._server
        self.neonpay.close()


async def _main(args: argparse.Namespace) -> None:
    node = Node(args.storage)
    try:
        ready: dict[str, Any] = {"node_id": node.neonpay.node_id}
        if args.serve:
            ready["port"] = await node.serve(args.secret)
        await serve_commands(node.handlers(), ready)
    finally:
        await node.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.node")
    parser.add_argument("--storage", required=True, help="the store URL")
    parser.add_argument("--serve", action="store_true", help="run the sync server")
    args = parser.parse_args(argv)
    args.secret = os.environ.get(SECRET_ENV) or "bench-secret"
    asyncio.run(_main(args))


if __name__ == "__main__":
    main()
