"""The floor: the least work that moves records from one SQLite database to another.

Two processes on 127.0.0.1 and nothing else: the sender reads its table in pages of
500, encodes each page with orjson and POSTs it with raw aiohttp; the receiver decodes
it and writes it with ``executemany`` into a WAL table plus a log table, one transaction
a page. No signing, no version checks, no compression. Every NEONPAY figure is reported
as a ratio to this, measured in the same run on the same machine.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiohttp import web

__all__ = ["PAGE", "FloorReceiver", "round_trips", "send_all"]

#: Records a page.
PAGE = 500
_JSON = {"Content-Type": "application/json"}


def open_db(path: Path) -> sqlite3.Connection:
    """A SQLite connection tuned as NEONPAY's store is (WAL, synchronous=NORMAL)."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    return conn


class FloorReceiver:
    """The receiving end: ``POST /floor/records`` writes a page, ``GET /floor/changes``
    answers a no-change poll."""

    def __init__(self, path: Path) -> None:
        self.conn = open_db(path)
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS records (key TEXT PRIMARY KEY, fields TEXT NOT NULL, "
            "version TEXT NOT NULL, hlc TEXT NOT NULL, updated_at REAL NOT NULL, "
            "seq INTEGER NOT NULL)"
        )
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS log (seq INTEGER PRIMARY KEY, key TEXT NOT NULL, "
            "fields TEXT NOT NULL, version TEXT NOT NULL, hlc TEXT NOT NULL, "
            "updated_at REAL NOT NULL)"
        )
        row = self.conn.execute("SELECT COALESCE(MAX(seq), 0) FROM log").fetchone()
        self.head = int(row[0])

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/floor/records", self.post_records),
            web.get("/floor/changes", self.get_changes),
        ]

    async def post_records(self, request: web.Request) -> web.Response:
        page = orjson.loads(await request.read())
        seq = self.head
        rows: list[tuple[Any, ...]] = []
        for key, fields, version, hlc, updated_at in page["records"]:
            seq += 1
            rows.append(
                (
                    key,
                    orjson.dumps(fields).decode(),
                    orjson.dumps(version).decode(),
                    hlc,
                    updated_at,
                    seq,
                )
            )
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(
                "INSERT INTO records (key, fields, version, hlc, updated_at, seq) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET "
                "fields = excluded.fields, version = excluded.version, hlc = excluded.hlc, "
                "updated_at = excluded.updated_at, seq = excluded.seq",
                rows,
            )
            conn.executemany(
                "INSERT INTO log (key, fields, version, hlc, updated_at, seq) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        self.head = seq
        return web.Response(body=orjson.dumps({"applied": len(rows), "head": seq}), headers=_JSON)

    async def get_changes(self, request: web.Request) -> web.Response:
        since = int(request.query.get("since", "0"))
        row = self.conn.execute("SELECT COALESCE(MAX(seq), 0) FROM log").fetchone()
        head = int(row[0])
        records: list[Any] = []
        if head > since:
            records = self.conn.execute(
                "SELECT key, fields, version, hlc, updated_at FROM log WHERE seq > ? "
                "ORDER BY seq LIMIT ?",
                (since, PAGE),
            ).fetchall()
        return web.Response(body=orjson.dumps({"records": records, "cursor": head}), headers=_JSON)

    def count(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM records").fetchone()[0])

    def close(self) -> None:
        self.conn.close()


async def send_all(source: Path, url: str) -> dict[str, Any]:
    """Move every row of ``source`` to the receiver at ``url``; the time it took."""
    conn = open_db(source)
    try:
        started = time.perf_counter()
        pages = records = 0
        async with aiohttp.ClientSession() as session:
            last = 0
            while True:
                rows = conn.execute(
                    "SELECT rowid, key, fields, version, hlc, updated_at FROM source "
                    "WHERE rowid > ? ORDER BY rowid LIMIT ?",
                    (last, PAGE),
                ).fetchall()
                if not rows:
                    break
                last = rows[-1][0]
                body = orjson.dumps(
                    {
                        "records": [
                            [key, orjson.loads(fields), orjson.loads(version), hlc, updated]
                            for _, key, fields, version, hlc, updated in rows
                        ]
                    }
                )
                async with session.post(f"{url}/floor/records", data=body, headers=_JSON) as resp:
                    resp.raise_for_status()
                    answer = orjson.loads(await resp.read())
                records += int(answer["applied"])
                pages += 1
        seconds = time.perf_counter() - started
    finally:
        conn.close()
    return {"seconds": seconds, "records": records, "pages": pages}


async def round_trips(url: str, count: int) -> dict[str, Any]:
    """``count`` no-change polls on one warm connection; the seconds of each."""
    samples: list[float] = []
    async with aiohttp.ClientSession() as session:
        cursor = 0
        for i in range(count + 1):
            started = time.perf_counter()
            async with session.get(f"{url}/floor/changes", params={"since": str(cursor)}) as resp:
                resp.raise_for_status()
                answer = orjson.loads(await resp.read())
            if answer["records"]:
                raise RuntimeError("the floor's no-change poll found changes")
            cursor = int(answer["cursor"])
            if i:  # the first one opens the connection
                samples.append(time.perf_counter() - started)
    return {"samples": samples}
