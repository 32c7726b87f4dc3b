"""The bad-input battery: every refused request gets its 4xx and a JSON error body, and
the store is byte-for-byte unchanged afterwards (every table; the replay log too unless
the request was authenticated)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import gzip
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest

from neonpay import PaymentStage, create_neonpay
from neonpay.core.neonpay import NeonPay
from neonpay.web_sync import SyncServer, codec

from .conftest import MakeNode, Served
from .helpers import SECRET, dump_store, gzip_bomb, send, signed

CHANGES = "/sync/changes"


@dataclass
class Request:
    method: str
    target: str
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Context:
    records: list[dict[str, Any]]
    server_node: str

    def push(self, records: list[dict[str, Any]] | None = None, **kw: Any) -> Request:
        body = codec.dump({"records": self.records if records is None else records})
        return post(CHANGES, body, **kw)


def post(target: str, body: bytes, **kw: Any) -> Request:
    return Request("POST", target, body, signed("POST", target, body, **kw))


def get(target: str, **kw: Any) -> Request:
    return Request("GET", target, b"", signed("GET", target, **kw))


def tampered_body(ctx: Context) -> Request:
    request = ctx.push()
    evil = [dict(ctx.records[0], fields={**ctx.records[0]["fields"], "price": 1})]
    request.body = codec.dump({"records": evil})
    return request


def tampered(ctx: Context, what: str) -> Request:
    request = get(f"{CHANGES}?since=0")
    if what == "query":
        request.target = f"{CHANGES}?since=0&limit=1"
    elif what == "node":
        request.headers["X-NeonPay-Node"] = "node-mallory"
    elif what == "path":
        request.target = "/sync/payment_stages?since=0"
    return request


def gzipped(ctx: Context, data: bytes, *, sign: bool = True) -> Request:
    request = post(CHANGES, data, extra={"Content-Encoding": "gzip"})
    if not sign:
        for name in ("webhook-id", "webhook-timestamp", "webhook-signature"):
            del request.headers[name]
    return request


def record(ctx: Context, **changes: Any) -> dict[str, Any]:
    return {**ctx.records[0], **changes}


@dataclass
class Case:
    name: str
    status: int
    code: str
    build: Callable[[Context], Request]
    authenticated: bool = False


CASES = [
    Case("wrong secret", 401, "bad_signature", lambda c: c.push(secret="not-the-secret")),
    Case(
        "missing headers",
        401,
        "bad_signature",
        lambda c: Request(
            "POST",
            CHANGES,
            codec.dump({"records": c.records}),
            {"Content-Type": "application/json"},
        ),
    ),
    Case(
        "expired timestamp",
        401,
        "stale_timestamp",
        lambda c: c.push(timestamp=int(time.time()) - 301),
    ),
    Case(
        "timestamp from the future",
        401,
        "stale_timestamp",
        lambda c: c.push(timestamp=int(time.time()) + 400),
    ),
    Case("tampered body", 401, "bad_signature", tampered_body),
    Case("tampered query", 401, "bad_signature", lambda c: tampered(c, "query")),
    Case("tampered node header", 401, "bad_signature", lambda c: tampered(c, "node")),
    Case("signature for another endpoint", 401, "bad_signature", lambda c: tampered(c, "path")),
    Case(
        "unsigned gzip bomb",
        401,
        "bad_signature",
        lambda c: gzipped(c, gzip_bomb(1 << 30), sign=False),
    ),
    Case(
        "gzip bomb",
        413,
        "inflated_too_large",
        lambda c: gzipped(c, gzip_bomb(1 << 30)),
    ),
    Case("corrupt gzip", 400, "bad_encoding", lambda c: gzipped(c, b"\x1f\x8b\x08\x00junk")),
    Case(
        "unsupported encoding",
        415,
        "unsupported_encoding",
        lambda c: post(CHANGES, b"{}", extra={"Content-Encoding": "br"}),
    ),
    Case(
        "not JSON content type",
        415,
        "unsupported_media_type",
        lambda c: post(CHANGES, b"{}", extra={"Content-Type": "text/plain"}),
    ),
    Case("malformed JSON", 400, "malformed_json", lambda c: post(CHANGES, b'{"records": [')),
    Case(
        "malformed JSON in gzip",
        400,
        "malformed_json",
        lambda c: gzipped(c, gzip.compress(b"{" * 2000)),
    ),
    Case("wrong schema: body", 422, "bad_schema", lambda c: post(CHANGES, b'{"items": []}')),
    Case(
        "wrong schema: record",
        422,
        "bad_schema",
        lambda c: c.push([record(c, version="v1")]),
    ),
    Case(
        "internal attribute",
        422,
        "bad_schema",
        lambda c: c.push([record(c, received_from=c.server_node)]),
    ),
    Case(
        "unknown kind",
        422,
        "unknown_kind",
        lambda c: c.push([record(c, kind="analytics")]),
    ),
    Case(
        "wrong kind for the view",
        422,
        "wrong_kind",
        lambda c: post("/sync/templates", codec.dump({"records": c.records})),
    ),
    Case(
        "oversized batch",
        413,
        "batch_too_large",
        lambda c: c.push([record(c, key=f"k{i}") for i in range(1001)]),
    ),
    Case(
        "oversized field",
        422,
        "record_too_large",
        lambda c: c.push([record(c, fields={"title": "x" * (4 * 1024 * 1024 + 1)})]),
    ),
    Case(
        "clock far ahead",
        422,
        "clock_ahead",
        lambda c: c.push([record(c, hlc="099999999999999.000000.node-client")]),
    ),
    Case("no sender", 400, "bad_node", lambda c: c.push(node=None)),
    Case("sender is not a node id", 400, "bad_node", lambda c: c.push(node="a b")),
    Case("sender is the server itself", 400, "bad_node", lambda c: c.push(node=c.server_node)),
    Case(
        "cursor from the future",
        400,
        "bad_cursor",
        lambda c: get(f"{CHANGES}?since=999999"),
        authenticated=True,
    ),
    Case("bad limit", 400, "bad_parameter", lambda c: get(f"{CHANGES}?limit=0")),
    Case("limit too large", 400, "bad_parameter", lambda c: get(f"{CHANGES}?limit=100000")),
    Case("since not a number", 400, "bad_parameter", lambda c: get(f"{CHANGES}?since=-1")),
    Case("unknown parameter", 400, "bad_parameter", lambda c: get(f"{CHANGES}?debug=1")),
    Case("unknown kind asked for", 400, "bad_parameter", lambda c: get(f"{CHANGES}?kinds=x")),
    Case("repeated parameter", 400, "bad_parameter", lambda c: get(f"{CHANGES}?since=0&since=1")),
    Case("unknown peer", 404, "unknown_peer", lambda c: get("/sync/status?peer=ghost")),
    Case("unknown endpoint", 404, "not_found", lambda c: get("/sync/users")),
    Case(
        "wrong method",
        405,
        "method_not_allowed",
        lambda c: Request("PUT", CHANGES, b"{}", signed("PUT", CHANGES, b"{}")),
    ),
]


@pytest.fixture
def context(make_node: MakeNode, served: Served) -> Context:
    client = make_node("node-client", max_price=100_000)
    client.create_payment_stage("premium", PaymentStage("Premium", "The best", 50))
    client.promotions.create_promo_code("SAVE10", "percentage", 10)
    return Context(
        records=[r.to_wire() for r in client.store.feed(0, 100).records],
        server_node=served.node.node_id,
    )


def _seed(node: NeonPay) -> None:
    node.create_payment_stage("basic", PaymentStage("Basic", "Entry level", 5))
    node.settings.set("thank_you_message", "Thanks!")


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_refused_and_nothing_changes(
    case: Case, served: Served, context: Context, http: aiohttp.ClientSession
) -> None:
    _seed(served.node)
    before = dump_store(served.node, include_replay_log=not case.authenticated)
    request = case.build(context)
    status, data, headers, _ = await send(
        http, served.origin, request.method, request.target, request.body, request.headers
    )
    assert (status, data.get("error", {}).get("code")) == (case.status, case.code), data
    assert headers["Content-Type"].startswith("application/json")
    assert isinstance(data["error"]["message"], str)
    assert data["error"]["message"]
    assert SECRET not in data["error"]["message"]
    assert "webhook-signature" not in headers  # error answers carry no data, unsigned
    assert dump_store(served.node, include_replay_log=not case.authenticated) == before
    assert gc.isenabled()  # a refused push resumes the collector it paused


async def test_price_out_of_range_is_a_rejected_item(
    make_node: MakeNode, served: Served, http: aiohttp.ClientSession
) -> None:
    client = make_node("node-client", max_price=100_000)
    client.create_payment_stage("gold", PaymentStage("Gold", "Too dear", 20_000))
    client.create_payment_stage("silver", PaymentStage("Silver", "Fine", 20))
    records = [r.to_wire() for r in client.store.feed(0, 100).records]
    _seed(served.node)
    before = dump_store(served.node)
    body = codec.dump({"records": records[:1]})
    status, data, headers, _ = await send(
        http, served.origin, "POST", CHANGES, body, signed("POST", CHANGES, body)
    )
    assert status == 200
    assert data["results"] == [
        {
            "kind": "payment_stage",
            "key": "gold",
            "outcome": "rejected",
            "reason": "invalid payment_stage.price: must be at most 10000",
        }
    ]
    assert "webhook-signature" in headers
    assert dump_store(served.node) == before
    # the valid record of a mixed batch is applied, the invalid one refused
    body = codec.dump({"records": records})
    status, data, _, _ = await send(
        http, served.origin, "POST", CHANGES, body, signed("POST", CHANGES, body)
    )
    assert [r["outcome"] for r in data["results"]] == ["rejected", "applied"]
    assert served.node.get_payment_stage("gold") is None
    assert served.node.get_payment_stage("silver") is not None
    assert gc.isenabled()


async def test_a_replay_is_refused_even_after_a_restart(
    make_node: MakeNode, context: Context, http: aiohttp.ClientSession
) -> None:
    node = make_node("node-replay")
    request = context.push()
    async with SyncServer(node, port=0, webhook_secret=SECRET) as server:
        origin = f"http://127.0.0.1:{server.port}"
        status, data, _, _ = await send(
            http, origin, "POST", CHANGES, request.body, request.headers
        )
        assert status == 200
        assert [r["outcome"] for r in data["results"]] == ["applied", "applied"]
        after_first = dump_store(node, include_replay_log=True)
        status, data, _, _ = await send(
            http, origin, "POST", CHANGES, request.body, request.headers
        )
        assert (status, data["error"]["code"]) == (401, "replayed_request")
        assert dump_store(node, include_replay_log=True) == after_first
    path = node.store.url
    node.close()
    reopened = make_node("node-replay")
    assert reopened.store.url == path
    async with SyncServer(reopened, port=0, webhook_secret=SECRET) as server:
        origin = f"http://127.0.0.1:{server.port}"
        status, data, _, _ = await send(
            http, origin, "POST", CHANGES, request.body, request.headers
        )
        assert (status, data["error"]["code"]) == (401, "replayed_request")
        assert dump_store(reopened, include_replay_log=True) == after_first


async def test_a_50_mb_body_is_refused_before_it_is_read(served: Served) -> None:
    before = dump_store(served.node, include_replay_log=True)
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", served.server.port), 5
    )
    try:
        head = (
            f"POST {CHANGES} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {50 * 1024 * 1024}\r\n\r\n"
        ).encode()
        writer.write(head + b"[" * 65536)  # a sliver of the 50 MB announced
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(4096), 5)
    finally:
        writer.close()
        await writer.wait_closed()
    assert answer.startswith(b"HTTP/1.1 413")
    assert b'"code":"body_too_large"' in answer
    assert dump_store(served.node, include_replay_log=True) == before


async def test_a_50_mb_stream_without_length_is_cut_off(served: Served) -> None:
    before = dump_store(served.node, include_replay_log=True)
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", served.server.port), 5
    )
    sent = 0
    try:
        writer.write(
            f"POST {CHANGES} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\n\r\n".encode()
        )
        chunk = b"100000\r\n" + b" " * 0x100000 + b"\r\n"  # 1 MiB chunks
        answer = b""
        while sent < 50 and not answer:
            writer.write(chunk)
            await writer.drain()
            sent += 1
            try:
                answer = await asyncio.wait_for(reader.read(4096), 0.01)
            except asyncio.TimeoutError:
                answer = b""
        if not answer:
            answer = await asyncio.wait_for(reader.read(4096), 5)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    assert answer.startswith(b"HTTP/1.1 413")
    assert b'"code":"body_too_large"' in answer
    assert sent < 50  # refused long before the 50 MiB were sent
    assert dump_store(served.node, include_replay_log=True) == before


async def test_health_is_unsigned_and_has_no_data(
    served: Served, http: aiohttp.ClientSession
) -> None:
    status, data, headers, _ = await send(http, served.origin, "GET", "/health")
    assert (status, data) == (200, {"status": "ok"})
    assert "webhook-signature" not in headers


async def test_unsigned_reads_are_refused(served: Served, http: aiohttp.ClientSession) -> None:
    for target in (CHANGES, "/sync/status", "/sync/info", "/sync/payment_stages"):
        status, data, _, _ = await send(http, served.origin, "GET", target)
        assert (status, data["error"]["code"]) == (401, "bad_signature"), target


async def test_replay_protection_survives_a_restart_on_every_store(
    store_url: str, context: Context, http: aiohttp.ClientSession
) -> None:
    """The replay log lives in the store: SQLite and PostgreSQL alike."""
    request = context.push()
    answers = []
    for _ in range(2):  # the second round is a new process on the same store
        node = create_neonpay(storage=store_url, node_id="node-replay")
        try:
            async with SyncServer(node, port=0, webhook_secret=SECRET) as server:
                origin = f"http://127.0.0.1:{server.port}"
                for _ in range(2):
                    status, data, _, _ = await send(
                        http, origin, "POST", CHANGES, request.body, request.headers
                    )
                    answers.append((status, data.get("error", {}).get("code")))
                assert node.store.count("payment_stage") == 1
        finally:
            node.close()
    assert answers == [(200, None)] + [(401, "replayed_request")] * 3
