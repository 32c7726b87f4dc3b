"""Arbitrary text, numbers and nested JSON through the three faces of NEONPAY: the
Python API (SQLite and PostgreSQL), the command line (in-process, ``main(argv)``) and
the sync wire (a real server on 127.0.0.1). Each value is either refused cleanly (a
ValidationError, a one-line error with exit code 1 or 2, a 4xx) and changes nothing, or
stored and read back (and pulled over the wire) intact: never a traceback, never a 5xx."""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neonpay import PaymentStage, create_neonpay
from neonpay.cli.main import main
from neonpay.core.neonpay import NeonPay
from neonpay.errors import ValidationError
from neonpay.limits import MAX_JSON_DEPTH
from neonpay.store.base import KINDS
from neonpay.web_sync import SyncServer, codec
from neonpay.web_sync.signing import new_message_id, request_payload, signed_headers

SECRET = "property-test-secret-0123456789"


#: Any character, lone surrogates included (what undecodable argv bytes become).
TEXT = st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF), max_size=40) | st.text(
    st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=3
).map(lambda s: f"ab{s}")
NUMBER = st.integers() | st.integers(min_value=2**62, max_value=2**66) | st.floats()
LEAF = st.none() | st.booleans() | NUMBER | TEXT


def nested(depth: int) -> Any:
    value: Any = []
    for _ in range(depth - 1):
        value = [value]
    return value


JSON = (
    st.recursive(
        LEAF,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
        max_leaves=12,
    )
    | st.integers(min_value=MAX_JSON_DEPTH - 2, max_value=300).map(nested)
    | st.integers(min_value=MAX_JSON_DEPTH - 2, max_value=60).map(lambda d: {"a": nested(d)})
)
PROPERTY = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
_names = (f"v{i}" for i in itertools.count())


def state(node: NeonPay) -> dict[str, Any]:
    return {kind: {r.key: dict(r.fields) for r in node.store.list(kind)} for kind in KINDS}


def refusal(call: Callable[[], object]) -> ValidationError | None:
    """The ValidationError ``call`` raised, or None when it succeeded."""
    try:
        call()
    except ValidationError as exc:
        return exc
    return None


def same_json(a: Any, b: Any) -> bool:
    """Equal as JSON (a tuple is a list; NaN never gets this far)."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


# --- the Python API -----------------------------------------------------------------------
@pytest.fixture
def node(store_url: str) -> Iterator[NeonPay]:
    neonpay = create_neonpay(storage=store_url)
    yield neonpay
    neonpay.close()


@PROPERTY
@given(value=JSON)
def test_api_settings(node: NeonPay, value: Any) -> None:
    name = next(_names)
    before = state(node)
    error = refusal(lambda: node.settings.set(name, value))
    if error is not None:
        assert error.field == name
        assert state(node) == before
        return
    assert same_json(node.settings.get(name), value)


@PROPERTY
@given(title=TEXT, description=TEXT, price=NUMBER, payload=JSON | TEXT)
def test_api_stages(node: NeonPay, title: str, description: str, price: Any, payload: Any) -> None:
    key = next(_names)
    before = state(node)
    error = refusal(
        lambda: node.create_payment_stage(
            key, PaymentStage(title, description, price, payload=payload)
        )
    )
    if error is not None:
        assert error.field in ("title", "description", "price", "payload")
        assert state(node) == before
        return
    stage = node.get_payment_stage(key)
    assert stage is not None
    assert (stage.title, stage.description, stage.price) == (title, description, price)
    assert same_json(stage.payload, payload)


@PROPERTY
@given(max_uses=NUMBER, user=NUMBER, description=TEXT, code=TEXT)
def test_api_promo_codes(
    node: NeonPay, max_uses: Any, user: Any, description: str, code: str
) -> None:
    before = state(node)
    made: list[Any] = []
    error = refusal(
        lambda: made.append(
            node.create_promo_code(
                code,
                "percentage",
                5,
                max_uses=max_uses,
                allowed_user_ids=[user],
                description=description,
            )
        )
    )
    if error is not None:
        assert error.field in ("code", "max_uses", "allowed_user_ids", "description")
        assert state(node) == before
        return
    promo = made[0]
    stored = node.promotions.get_promo_code(promo.code)
    assert stored is not None
    assert (stored.max_uses, stored.allowed_user_ids) == (max_uses, (user,))


# --- the command line, in-process -----------------------------------------------------------
@PROPERTY
@given(title=TEXT, price=st.integers() | TEXT, value=JSON)
def test_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], title: str, price: Any, value: Any
) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    try:
        value_text = json.dumps(value)
    except ValueError:
        value_text = str(value)
    runs = [
        [
            "stages",
            "add",
            next(_names),
            "--title",
            title,
            "--description",
            "d",
            "--price",
            str(price),
        ],
        ["settings", "set", next(_names), value_text],
        ["promo", "add", "ABC", "--percent", "5", "--max-uses", str(price)],
    ]
    for argv in runs:
        try:
            code = main(["--storage", url, "--no-color", *argv])
        except SystemExit as exc:  # argparse's usage errors
            code = exc.code if isinstance(exc.code, int) else 2
        captured = capsys.readouterr()
        assert code in (0, 1, 2), (argv, captured.err)
        assert "Traceback" not in captured.err
        assert "unexpected" not in captured.err, captured.err
        if code:
            assert captured.err.strip(), argv


# --- the wire ---------------------------------------------------------------------------------
class ServerThread:
    """A node and its sync server, on their own event loop in a thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.ready = threading.Event()
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self._loop.run_until_complete(self._serve())

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        node = create_neonpay(storage=f"sqlite:///{self.path}", node_id="node-server")
        try:
            async with SyncServer(node, port=0, webhook_secret=SECRET) as server:
                self.port = server.port
                self.ready.set()
                await self._stop.wait()
        finally:
            node.close()

    def __enter__(self) -> ServerThread:
        self._thread.start()
        assert self.ready.wait(30), "the server did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)
        self._loop.close()

    def request(
        self, method: str, target: str, body: bytes = b"", *, node: str = "node-client"
    ) -> tuple[int, Any]:
        """A signed request from ``node``: the status and the decoded answer."""
        headers = signed_headers(
            SECRET,
            new_message_id(),
            int(time.time()),
            request_payload(method, target, node, body),
        )
        headers["X-NeonPay-Node"] = node
        if body:
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{target}", body or None, headers, method=method
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerThread]:
    with ServerThread(tmp_path / "server.db") as running:
        yield running


_counter = itertools.count(1)


def setting_record(key: str, value: Any) -> dict[str, Any]:
    stamp = f"{int(time.time() * 1000):015d}.{next(_counter):06d}.node-client"
    return {
        "kind": "setting",
        "key": key,
        "fields": {"value": value},
        "version": {"node-client": 1},
        "hlc": stamp,
        "field_hlcs": {},
        "deleted": False,
    }


def pulled_settings(server: ServerThread) -> dict[str, Any]:
    # as another node: the feed leaves out what the requester itself sent
    status, page = server.request("GET", "/sync/changes?since=0&limit=1000", node="node-reader")
    assert status == 200, page
    decoded = codec.page_from_wire(page)
    return {r.key: r.fields["value"] for r in decoded.records if r.kind == "setting"}


@PROPERTY
@given(value=JSON)
def test_wire(server: ServerThread, value: Any) -> None:
    key = next(_names)
    try:
        json.dumps(value, allow_nan=False)  # NaN and infinities are not JSON
        body = codec.dump({"records": [setting_record(key, value)]})
    except (TypeError, ValueError):
        return  # not JSON at all: no client can send it
    status, answer = server.request("POST", "/sync/changes", body)
    assert status < 500, answer
    pulled = pulled_settings(server)  # every later pull still works
    if status == 200 and answer["results"][0]["outcome"] == "applied":
        assert same_json(pulled[key], value)
    else:
        assert key not in pulled
        if status != 200:
            assert 400 <= status < 500
            assert answer["error"]["code"]


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 252, 300])
def test_wire_refuses_a_deep_setting_with_422(server: ServerThread, depth: int) -> None:
    # (the standard library encodes deeper than orjson will)
    body = json.dumps({"records": [setting_record("deep", nested(depth))]}).encode()
    status, answer = server.request("POST", "/sync/changes", body)
    assert status == 422
    assert "nest" in answer["error"]["message"]
    assert "deep" not in pulled_settings(server)
    fine = codec.dump({"records": [setting_record("fine", nested(MAX_JSON_DEPTH))]})
    status, answer = server.request("POST", "/sync/changes", fine)
    assert status == 200
    assert answer["results"][0]["outcome"] == "applied"
    assert pulled_settings(server)["fine"] == nested(MAX_JSON_DEPTH)


@pytest.mark.parametrize(
    "body",
    [
        b'{"records":[],"records":[]}',
        b'{"records":[{"kind":"setting","kind":"setting","key":"k","fields":{"value":1},'
        b'"version":{"node-client":1},"hlc":"000000000000001.000001.node-client",'
        b'"field_hlcs":{},"deleted":false}]}',
        b'{"records": [{"kind": "setting", "key": "k", "fields": {"value": {"a": 1, "a": 2}},'
        b' "version": {"node-client": 1}, "hlc": "000000000000001.000001.node-client",'
        b' "field_hlcs": {}, "deleted": false}]}',
    ],
)
def test_wire_refuses_a_repeated_key_with_422(server: ServerThread, body: bytes) -> None:
    status, answer = server.request("POST", "/sync/changes", body)
    assert status == 422, answer
    assert "appears twice" in answer["error"]["message"]
    assert "k" not in pulled_settings(server)
