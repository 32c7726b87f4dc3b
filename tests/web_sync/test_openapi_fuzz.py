"""A property-based run against /sync/openapi.json: for every documented operation,
hypothesis generates requests from the document's own schemas (often valid, sometimes
mangled, correctly signed or not) and the server must never answer 5xx; every answer is
JSON of the documented shape (the operation's schema, or the error body).

The server runs in a thread with its own event loop, so that hypothesis drives plain
synchronous requests (http.client) against a real socket.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neonpay import PaymentStage, create_neonpay
from neonpay.core.neonpay import NeonPay
from neonpay.web_sync import SyncServer
from neonpay.web_sync.compression import gzip_compress
from neonpay.web_sync.errors import ERROR_CODES

from .helpers import SECRET, signed

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
_HEADER_TEXT = st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=20)


class ThreadedServer:
    """A SyncServer running in its own thread and event loop."""

    def __init__(self, node: NeonPay) -> None:
        self.server = SyncServer(node, port=0, webhook_secret=SECRET)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> ThreadedServer:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.server.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[ThreadedServer, dict[str, Any]]]:
    node = create_neonpay(storage=f"sqlite:///{tmp_path / 'fuzz.db'}", node_id="node-fuzz")
    node.create_payment_stage("premium", PaymentStage("Premium", "The best", 50))
    node.settings.set("greeting", "hello")
    try:
        with ThreadedServer(node) as threaded:
            status, _, body = request(threaded.server.port, "GET", "/sync/openapi.json", b"", {})
            assert status == 200
            yield threaded, json.loads(body)
    finally:
        node.close()


def request(
    port: int, method: str, target: str, body: bytes, headers: dict[str, str]
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, target, body=body or None, headers=headers)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


# --- strategies from the document's JSON schemas ----------------------------------------------
def resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        section = "parameters" if "/parameters/" in schema["$ref"] else "schemas"
        schema = doc["components"][section][name]
    return schema


def from_schema(
    doc: dict[str, Any], schema: dict[str, Any], depth: int = 0
) -> st.SearchStrategy[Any]:
    schema = resolve(doc, schema)
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if kind == "boolean":
        return st.booleans()
    if kind == "integer":
        return st.integers(
            schema.get("minimum", -(2**40)), min(schema.get("maximum", 2**40), 2**40)
        )
    if kind == "number":
        return st.floats(schema.get("minimum", -1e12), 1e12, allow_nan=False)
    if kind == "string":
        if "pattern" in schema:
            return st.from_regex(re.compile(schema["pattern"]), fullmatch=True).filter(
                lambda s: len(s) <= 200
            )
        return st.text(
            min_size=schema.get("minLength", 0), max_size=min(schema.get("maxLength", 20), 20)
        )
    if kind == "array":
        items = from_schema(doc, schema.get("items", {}), depth + 1)
        return st.lists(items, max_size=min(schema.get("maxItems", 3), 3))
    if kind == "object":
        properties = schema.get("properties", {})
        if not properties:
            extra = schema.get("additionalProperties")
            values = from_schema(doc, extra, depth + 1) if isinstance(extra, dict) else _JSON
            names = st.text(min_size=1, max_size=8)
            if "propertyNames" in schema:
                names = from_schema(doc, {"type": "string", **schema["propertyNames"]})
            return st.dictionaries(
                names, values, min_size=schema.get("minProperties", 0), max_size=3
            )
        required = set(schema.get("required", ()))
        fixed = {n: from_schema(doc, s, depth + 1) for n, s in properties.items() if n in required}
        optional = {
            n: from_schema(doc, s, depth + 1) for n, s in properties.items() if n not in required
        }
        return st.fixed_dictionaries(fixed, optional=optional)
    return _JSON


def mangled(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly documented values, sometimes anything at all."""
    return st.one_of(strategy, strategy, strategy, _JSON)


def plausible(record: dict[str, Any]) -> dict[str, Any]:
    """A generated record made likelier to pass the schema: clock stamps of now, and no
    fields on a tombstone (so that more requests reach the engine)."""
    stamp = f"{int(time.time() * 1000):015d}.000000.node-gen"
    record = dict(record, hlc=stamp)
    if "field_hlcs" in record and isinstance(record["field_hlcs"], dict):
        record["field_hlcs"] = dict.fromkeys(record["field_hlcs"], stamp)
    if record.get("deleted") is True:
        record["fields"] = {}
    return record


@st.composite
def operations(draw: st.DrawFn, doc: dict[str, Any]) -> tuple[str, str, bytes, dict[str, str]]:
    path = draw(st.sampled_from(sorted(doc["paths"])))
    method = draw(st.sampled_from(sorted(doc["paths"][path])))
    operation = doc["paths"][path][method]
    method = method.upper()
    query: list[tuple[str, str]] = []
    node: str | None = None
    for parameter in (resolve(doc, p) for p in operation.get("parameters", [])):
        where, name = parameter["in"], parameter["name"]
        if where == "query" and draw(st.booleans()):
            value = draw(mangled(from_schema(doc, parameter["schema"])))
            query.append((name, value if isinstance(value, str) else json.dumps(value)))
        elif (
            where == "header"
            and name.lower().startswith("x-neonpay")
            and (parameter.get("required") or draw(st.booleans()))
        ):
            node_id = from_schema(doc, {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"})
            node = draw(st.one_of(node_id, node_id, node_id, _HEADER_TEXT))
    if draw(st.integers(0, 9)) == 9:
        query.append((draw(st.text(max_size=5)), draw(st.text(max_size=5))))
    target = path
    if query:
        target += "?" + "&".join(f"{quote(k, safe='')}={quote(v, safe=',')}" for k, v in query)
    body = b""
    extra: dict[str, str] = {}
    if "requestBody" in operation:
        schema = operation["requestBody"]["content"]["application/json"]["schema"]
        value = draw(mangled(from_schema(doc, schema)))
        if isinstance(value, dict) and isinstance(value.get("records"), list):
            value["records"] = [
                plausible(r) if isinstance(r, dict) and draw(st.booleans()) else r
                for r in value["records"]
            ]
        body = json.dumps(value).encode()
        choice = draw(st.integers(0, 9))
        if choice == 9:
            body = draw(st.binary(max_size=64))
        elif choice == 8:
            body = gzip_compress(body)
            extra["Content-Encoding"] = "gzip"
    if "security" in operation and operation["security"] == []:
        return method, target, body, extra
    headers = signed(method, target, body, node=node, extra=extra)
    if draw(st.integers(0, 19)) == 19:  # sometimes a stale signature
        headers = signed(method, target, body, node=node, timestamp=int(time.time()) - 9999)
    return method, target, body, headers


def test_no_documented_operation_answers_5xx(
    running: tuple[ThreadedServer, dict[str, Any]],
) -> None:
    threaded, doc = running
    port = threaded.server.port
    seen: set[tuple[str, int]] = set()

    @settings(
        max_examples=120,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        database=None,
    )
    @given(operations(doc))
    def probe(operation: tuple[str, str, bytes, dict[str, str]]) -> None:
        method, target, body, headers = operation
        status, answer_headers, raw = request(port, method, target, body, headers)
        assert status < 500, (method, target, body[:200], raw[:300])
        assert answer_headers.get("Content-Type", "").startswith("application/json")
        data = json.loads(raw)  # every answer is JSON (200 answers are never gzipped here)
        if status >= 400:
            assert set(data) == {"error"}
            assert data["error"]["code"] in ERROR_CODES
            assert ERROR_CODES[data["error"]["code"]][0] == status
        seen.add((target.split("?", 1)[0], status))

    probe()
    assert any(status == 200 for _, status in seen)
    assert any(status >= 400 for _, status in seen)
