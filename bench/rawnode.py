"""The process of the raw references (floor and naive baseline), one end per process.

``python -m bench.rawnode serve --db PATH`` runs the receiving end on 127.0.0.1 (its
port is in the ready line); ``python -m bench.rawnode client`` runs the sending end.
Both are driven by JSON-line commands (see :mod:`bench.procs`).
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from aiohttp import web

from bench import floor, naive
from bench.procs import Handler, serve_commands

__all__ = ["main"]


async def _serve(db: Path) -> None:
    floor_end = floor.FloorReceiver(db)
    naive_end = naive.NaiveReceiver(db)
    app = web.Application(client_max_size=1024**3)
    app.add_routes(floor_end.routes() + naive_end.routes())
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = int(runner.addresses[0][1])

    async def count() -> dict[str, int]:
        return {"floor": floor_end.count(), "naive": naive_end.count()}

    try:
        await serve_commands({"count": count}, {"port": port})
    finally:
        await runner.cleanup()
        floor_end.close()
        naive_end.close()


async def _client() -> None:
    async def floor_send(source: str, url: str) -> dict[str, Any]:
        return await floor.send_all(Path(source), url)

    async def round_trips(url: str, count: int) -> dict[str, Any]:
        return await floor.round_trips(url, count)

    async def naive_send(source: str, url: str) -> dict[str, Any]:
        return await naive.send_dump(Path(source), url)

    async def naive_edit(source: str, key: str, revision: int) -> None:
        naive.edit_source(Path(source), key, revision)

    handlers: dict[str, Handler] = {
        "floor_send": floor_send,
        "round_trips": round_trips,
        "naive_send": naive_send,
        "naive_edit": naive_edit,
    }
    await serve_commands(handlers, {})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.rawnode")
    parser.add_argument("role", choices=["serve", "client"])
    parser.add_argument("--db", type=Path)
    args = parser.parse_args(argv)
    if args.role == "serve":
        if args.db is None:
            parser.error("serve needs --db")
        asyncio.run(_serve(args.db))
    else:
        asyncio.run(_client())


if __name__ == "__main__":
    main()
