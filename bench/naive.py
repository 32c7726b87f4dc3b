"""The naive baseline: a full dump of the catalog on every sync, as neonpay 2.x does.

The sender reads every stage and POSTs them all as one JSON body (stdlib ``json`` with
its default separators, about 217 bytes a stage); the receiver parses the body and
writes every stage, changed or not. Nothing is incremental: a sync after no change costs
what a sync after every change costs.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bench.floor import open_db

__all__ = ["NaiveReceiver", "edit_source", "send_dump"]


class NaiveReceiver:
    """The receiving end: ``POST /naive/sync`` replaces the catalog with the dump."""

    def __init__(self, path: Path) -> None:
        self.conn: sqlite3.Connection = open_db(path)
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS naive_stages (key TEXT PRIMARY KEY, fields TEXT NOT NULL)"
        )

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/naive/sync", self.post_sync)]

    async def post_sync(self, request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        rows = []
        for item in body["data"]:
            key = item.pop("stage_id")
            rows.append((key, json.dumps(item)))
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(
                "INSERT INTO naive_stages (key, fields) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET fields = excluded.fields",
                rows,
            )
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return web.json_response({"success": True, "synced": len(rows)})

    def count(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM naive_stages").fetchone()[0])

    def close(self) -> None:
        self.conn.close()


async def send_dump(source: Path, url: str) -> dict[str, Any]:
    """One full-dump sync of ``source`` to ``url``; its time and body size."""
    conn = open_db(source)
    try:
        started = time.perf_counter()
        rows = conn.execute("SELECT key, fields FROM source ORDER BY key").fetchall()
        data = [{"stage_id": key, **json.loads(fields)} for key, fields in rows]
        body = json.dumps({"data": data}).encode()
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"{url}/naive/sync", data=body, headers={"Content-Type": "application/json"}
            ) as resp,
        ):
            resp.raise_for_status()
            answer = await resp.json()
        seconds = time.perf_counter() - started
    finally:
        conn.close()
    return {"seconds": seconds, "records": int(answer["synced"]), "body_bytes": len(body)}


def edit_source(source: Path, key: str, revision: int) -> None:
    """Change one stage's title in the source table (a one-stage edit)."""
    conn = open_db(source)
    try:
        row = conn.execute("SELECT fields FROM source WHERE key = ?", (key,)).fetchone()
        fields = json.loads(row[0])
        fields["title"] = f"{fields['title'].split(' r')[0]} r{revision}"
        conn.execute("UPDATE source SET fields = ? WHERE key = ?", (json.dumps(fields), key))
    finally:
        conn.close()
