"""Helpers for the web_sync tests: store dumps, signed raw requests, gzip bombs."""

from __future__ import annotations

import functools
import io
import sqlite3
import struct
import time
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiohttp

from neonpay.core.neonpay import NeonPay
from neonpay.store.sqlite import SQLiteStore
from neonpay.web_sync.signing import (
    NODE_HEADER,
    new_message_id,
    request_payload,
    signed_headers,
)

__all__ = [
    "SECRET",
    "dump_store",
    "gzip_bomb",
    "send",
    "signed",
    "signed_call",
]

SECRET = "test-sync-secret-0123456789"
#: The replay log records every authenticated request by design; it is the one table a
#: refused request may touch (and only after its signature checked out).
_REPLAY_TABLE = "neonpay_request_ids"


def dump_store(neonpay: NeonPay, *, include_replay_log: bool = False) -> list[str]:
    """Every row of every table of the node's SQLite file, as SQL text, in a fixed order."""
    store = neonpay.store
    assert isinstance(store, SQLiteStore)
    conn = sqlite3.connect(store.path)
    try:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
            )
        ]
        lines: list[str] = []
        for table in tables:
            if table == _REPLAY_TABLE and not include_replay_log:
                continue
            for row in conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2"):  # noqa: S608
                lines.append(f"{table}: {row!r}")
        return lines
    finally:
        conn.close()


def signed(
    method: str,
    target: str,
    body: bytes = b"",
    *,
    node: str | None = "node-client",
    secret: str = SECRET,
    msg_id: str | None = None,
    timestamp: int | None = None,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Headers of a correctly signed request for ``target`` (path and query)."""
    headers = signed_headers(
        secret,
        msg_id or new_message_id(),
        int(time.time()) if timestamp is None else timestamp,
        request_payload(method, target, node or "", body),
    )
    if node is not None:
        headers[NODE_HEADER] = node
    if method == "POST":
        headers["Content-Type"] = "application/json"
    headers.update(extra or {})
    return headers


async def send(
    session: aiohttp.ClientSession,
    base: str,
    method: str,
    target: str,
    body: bytes = b"",
    headers: Mapping[str, str] | None = None,
) -> tuple[int, dict[str, Any], Mapping[str, str], bytes]:
    """Send a raw request to ``base`` (``http://host:port``); return status, JSON body
    (or ``{}``), headers and raw body."""
    url = base + target
    async with session.request(
        method,
        url,
        data=io.BytesIO(body) if method in ("POST", "PUT") else None,
        headers=dict(headers or {}),
        allow_redirects=False,
    ) as response:
        raw = await response.read()
        try:
            data = await response.json(content_type=None)
        except (ValueError, aiohttp.ContentTypeError):
            data = {}
        return response.status, data if isinstance(data, dict) else {}, response.headers, raw


@functools.cache
def gzip_bomb(total: int) -> bytes:
    """A valid gzip stream of ``total`` zero bytes (a multiple of 1 MiB), about 1000x
    smaller, built without compressing ``total`` bytes.

    After a full flush a deflate stream is byte-aligned and refers to nothing before, so
    one compressed MiB of zeros can be repeated; a final empty block and the gzip trailer
    (CRC-32 and length) close it.
    """
    mib = 1 << 20
    assert total % mib == 0
    assert total >= 2 * mib
    zeros = bytes(mib)
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = deflate.compress(zeros) + deflate.flush(zlib.Z_FULL_FLUSH)
    block = deflate.compress(zeros) + deflate.flush(zlib.Z_FULL_FLUSH)
    again = deflate.compress(zeros) + deflate.flush(zlib.Z_FULL_FLUSH)
    assert block == again
    final = zlib.compressobj(9, zlib.DEFLATED, -15).flush()  # one empty final block
    crc = 0
    for _ in range(total // mib):
        crc = zlib.crc32(zeros, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    trailer = struct.pack("<II", crc, total & 0xFFFFFFFF)
    return header + first + block * (total // mib - 1) + final + trailer


def sqlite_file(neonpay: NeonPay) -> Path:
    """The SQLite file of a node."""
    store = neonpay.store
    assert isinstance(store, SQLiteStore)
    return store.path


async def signed_call(
    http: aiohttp.ClientSession,
    origin: str,
    method: str,
    target: str,
    *,
    secret: str,
    node: str | None,
    records: list[dict[str, Any]] | None = None,
) -> tuple[int, dict[str, Any]]:
    """A request signed with ``secret`` as ``node`` (a push of ``records`` for a POST),
    answered uncompressed; the status and the JSON body."""
    from neonpay.web_sync import codec

    body = codec.dump({"records": records or []}) if method == "POST" else b""
    headers = signed(
        method, target, body, node=node, secret=secret, extra={"Accept-Encoding": "identity"}
    )
    status, data, _, _ = await send(http, origin, method, target, body, headers)
    return status, data
