"""HttpTransport against real servers: retries, errors, signatures, compression, batches."""

from __future__ import annotations

import gzip
import socket
from collections.abc import Callable
from typing import Any

import pytest

from neonpay import BotSyncConfig, PaymentStage
from neonpay.errors import (
    ConfigurationError,
    InvalidSignature,
    PeerRejected,
    PeerUnreachable,
    SignatureError,
    StaleTimestamp,
)
from neonpay.store.base import Outcome, Record
from neonpay.web_sync import HttpTransport, RetryPolicy, codec

from .conftest import MakeNode, Served
from .helpers import SECRET
from .proxy import Reply, running_proxy


class Waits:
    """Records the backoff waits instead of sleeping through them."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def transport(url: str, waits: Waits | None = None, attempts: int = 4, **kw: Any) -> HttpTransport:
    policy = RetryPolicy(attempts=attempts, base_delay=0.01, max_delay=0.05, sleep=waits or Waits())
    return HttpTransport(url, secret=SECRET, retry_policy=policy, **kw)


def stage_records(node_name: str, make_node: MakeNode, count: int = 1) -> list[Record]:
    node = make_node(node_name)
    for i in range(count):
        node.create_payment_stage(f"stage-{i}", PaymentStage(f"Stage {i}", "A product", 10 + i))
    return node.store.feed(0, 10_000).records


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_peer_that_is_down_is_unreachable_after_bounded_retries() -> None:
    waits = Waits()
    url = f"http://127.0.0.1:{free_port()}/sync"
    async with transport(url, waits, attempts=3) as peer:
        with pytest.raises(PeerUnreachable) as caught:
            await peer.info()
        assert peer.stats.requests == 3
    assert len(waits.waits) == 2
    assert url in str(caught.value)
    assert SECRET not in str(caught.value)


async def test_500_twice_then_success_delivers_once(served: Served, make_node: MakeNode) -> None:
    records = stage_records("node-client", make_node)
    waits = Waits()

    def rule(n: int) -> Any:
        if n == 0:
            return Reply(500, b"boom")
        if n == 1:  # the peer applied it, but the answer is lost
            return lambda status, headers, body: Reply(502, b"bad gateway")
        return None

    async with running_proxy(served.origin, rule) as proxy, transport(proxy.url, waits) as peer:
        result = await peer.push(records, sender="node-client")
    assert [r.outcome for r in result.results] == [Outcome.KNOWN]
    assert len(proxy.seen) == 3
    assert peer.stats.requests == 3
    assert len(waits.waits) == 2
    log = served.node.store.changes(0, 100)
    assert [(c.kind, c.key) for c in log] == [("payment_stage", "stage-0")]  # applied once


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 413, 422])
async def test_4xx_is_not_retried(served: Served, status: int) -> None:
    waits = Waits()
    body = codec.dump({"error": {"code": "some_code", "message": "you did it wrong"}})
    async with (
        running_proxy(served.origin, lambda n: Reply(status, body)) as proxy,
        transport(proxy.url, waits) as peer,
    ):
        with pytest.raises(PeerRejected) as caught:
            await peer.info()
    assert len(proxy.seen) == 1
    assert waits.waits == []
    assert (caught.value.status, caught.value.reason) == (status, "some_code")
    assert "you did it wrong" in str(caught.value)


async def test_retry_after_is_honoured(served: Served) -> None:
    waits = Waits()
    rule: Callable[[int], Any] = lambda n: Reply(429, b"", {"Retry-After": "2"}) if n == 0 else None  # noqa: E731
    async with running_proxy(served.origin, rule) as proxy, transport(proxy.url, waits) as peer:
        info = await peer.info()
    assert info.node_id == served.node.node_id
    assert waits.waits == [2.0]


async def test_5xx_that_persists_is_rejected_after_the_attempts(served: Served) -> None:
    waits = Waits()
    async with (
        running_proxy(served.origin, lambda n: Reply(503, b"")) as proxy,
        transport(proxy.url, waits, attempts=3) as peer,
    ):
        with pytest.raises(PeerRejected) as caught:
            await peer.info()
    assert caught.value.status == 503
    assert len(proxy.seen) == 3


async def test_a_timeout_is_retried_then_unreachable(served: Served) -> None:
    async with (
        running_proxy(served.origin, lambda n: "hang") as proxy,
        transport(proxy.url, attempts=2, timeout=0.2) as peer,
    ):
        with pytest.raises(PeerUnreachable):
            await peer.info()
        assert len(proxy.seen) == 2


def _tamper(status: int, headers: dict[str, str], body: bytes) -> Reply:
    gzipped = headers.get("Content-Encoding") == "gzip"
    data = codec.load(gzip.decompress(body) if gzipped else body)
    data["changes"][0]["fields"]["price"] = 1
    forged = codec.dump(data)
    return Reply(status, gzip.compress(forged) if gzipped else forged, headers)


def _unsigned(status: int, headers: dict[str, str], body: bytes) -> Reply:
    return Reply(status, body, {k: v for k, v in headers.items() if not k.startswith("webhook")})


def _stale(status: int, headers: dict[str, str], body: bytes) -> Reply:
    return Reply(status, body, {**headers, "webhook-timestamp": "1000000000"})


@pytest.mark.parametrize(
    ("mangle", "error"),
    [(_tamper, InvalidSignature), (_unsigned, InvalidSignature), (_stale, StaleTimestamp)],
)
async def test_a_tampered_answer_is_refused(
    served: Served, mangle: Any, error: type[SignatureError]
) -> None:
    served.node.create_payment_stage("premium", PaymentStage("Premium", "The best", 50))
    async with (
        running_proxy(served.origin, lambda n: mangle) as proxy,
        transport(proxy.url) as peer,
    ):
        with pytest.raises(error) as caught:
            await peer.pull(0, 100, None, requester="node-client")
        assert len(proxy.seen) == 1  # never retried
    assert "nothing from it was used" in str(caught.value)


async def test_an_old_answer_replayed_to_a_new_request_is_refused(served: Served) -> None:
    served.node.create_payment_stage("premium", PaymentStage("Premium", "The best", 50))
    first: list[Reply] = []

    def rule(n: int) -> Any:
        if n == 0:

            def keep(status: int, headers: dict[str, str], body: bytes) -> Reply:
                first.append(Reply(status, body, headers))
                return first[0]

            return keep
        return lambda status, headers, body: first[0]

    async with running_proxy(served.origin, rule) as proxy, transport(proxy.url) as peer:
        page = await peer.pull(0, 100, None, requester="node-client")
        assert [r.key for r in page.records] == ["premium"]
        with pytest.raises(InvalidSignature):
            await peer.pull(0, 100, None, requester="node-client")


async def test_wrong_secret_is_a_clear_rejection(served: Served) -> None:
    async with HttpTransport(served.server.url, secret="not-the-secret") as peer:
        with pytest.raises(PeerRejected) as caught:
            await peer.info()
    assert caught.value.status == 401
    assert caught.value.reason == "bad_signature"
    assert "share a secret" in str(caught.value)
    assert str(caught.value).count("check") == 1  # the advice once
    assert "not-the-secret" not in str(caught.value)


async def test_bodies_are_compressed_both_ways_and_bytes_counted(
    served: Served, make_node: MakeNode
) -> None:
    records = stage_records("node-client", make_node, 200)
    raw = len(codec.push_body(records))
    async with transport(served.server.url) as peer:
        result = await peer.push(records, sender="node-client")
        assert {r.outcome for r in result.results} == {Outcome.APPLIED}
        assert peer.stats.requests == 1
        assert 0 < peer.stats.bytes_sent < raw / 4  # gzipped
        received = peer.stats.bytes_received
        page = await peer.pull(0, 1000, None, requester="node-other")
        assert len(page.records) == 200
        assert peer.stats.bytes_received - received < len(codec.dump(codec.page_to_wire(page))) / 4


async def test_small_bodies_are_sent_plain(served: Served) -> None:
    seen: list[dict[str, str]] = []

    def rule(n: int) -> Any:
        def look(status: int, headers: dict[str, str], body: bytes) -> Reply:
            seen.append(headers)
            return Reply(status, body, headers)

        return look

    async with running_proxy(served.origin, rule) as proxy, transport(proxy.url) as peer:
        await peer.info()
    assert "Content-Encoding" not in seen[0]


async def test_large_pushes_are_split_into_bounded_batches(
    served: Served, make_node: MakeNode
) -> None:
    records = stage_records("node-client", make_node, 10)
    async with transport(served.server.url, batch_size=3) as peer:
        result = await peer.push(records, sender="node-client")
        assert peer.stats.requests == 4
    assert [r.key for r in result.results] == [r.key for r in records]
    assert served.node.store.count("payment_stage") == 10


async def test_an_empty_push_is_one_round_trip_naming_the_peer(served: Served) -> None:
    async with transport(served.server.url) as peer:
        result = await peer.push([], sender="node-client")
        assert (result.node_id, result.results, peer.stats.requests) == ("node-server", [], 1)


async def test_pull_pages_and_kinds(served: Served) -> None:
    for i in range(5):
        served.node.create_payment_stage(f"s{i}", PaymentStage(f"S{i}", "d", 5))
    served.node.settings.set("thank_you_message", "Thanks")
    async with transport(served.server.url) as peer:
        page = await peer.pull(0, 2, ["payment_stage"], requester="node-client")
        assert ([r.key for r in page.records], page.has_more) == (["s0", "s1"], True)
        page = await peer.pull(page.next_cursor, 100, ["payment_stage"], requester="node-client")
        assert ([r.key for r in page.records], page.has_more) == (["s2", "s3", "s4"], False)
        nothing = await peer.pull(page.next_cursor, 100, [], requester="node-client")
        assert nothing.records == []
        assert nothing.next_cursor == 6
        view = await peer.pull_view("/sync/settings", 0, 10)
        assert [r.key for r in view.records] == ["thank_you_message"]
        status = await peer.status()
        assert status["node_id"] == "node-server"
        assert status["last_seq"] == 6


async def test_lifecycle(served: Served) -> None:
    peer = transport(served.server.url)
    assert peer._session is None  # nothing opened before the first request
    await peer.info()
    await peer.close()
    await peer.close()
    with pytest.raises(ConfigurationError):
        await peer.info()
    assert "signed=True" in repr(peer)
    assert SECRET not in repr(peer)


def test_from_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NEONPAY_SYNC_SECRET", raising=False)
    config = BotSyncConfig(
        target_bot_name="Store",
        webhook_url="http://127.0.0.1:9/",
        webhook_secret="abc",
        page_size=50,
        request_timeout=3,
    )
    peer = HttpTransport.from_config(config)
    assert (peer.base_url, peer.name, peer.signed) == ("http://127.0.0.1:9/sync", "Store", True)
    assert (peer.page_limit, peer.batch_size, peer.timeout) == (50, 50, 3.0)
    big = BotSyncConfig(
        target_bot_name="Big", webhook_url="http://127.0.0.1:9", webhook_secret="a", page_size=5000
    )
    assert (
        HttpTransport.from_config(big).page_limit,
        HttpTransport.from_config(big).batch_size,
    ) == (
        1000,
        1000,
    )
    bare = BotSyncConfig(target_bot_name="Bare", webhook_url="http://127.0.0.1:9/sync")
    with pytest.raises(ConfigurationError) as caught:
        HttpTransport.from_config(bare)
    message = str(caught.value)
    assert "webhook_secret" in message
    assert "NEONPAY_SYNC_SECRET" in message
    assert "insecure=True" in message
    monkeypatch.setenv("NEONPAY_SYNC_SECRET", "from-env")
    assert HttpTransport.from_config(bare).signed
    named = BotSyncConfig(
        target_bot_name="Named", webhook_url="http://127.0.0.1:9", webhook_secret_env="MY_SECRET"
    )
    with pytest.raises(ConfigurationError, match="MY_SECRET"):
        HttpTransport.from_config(named)
    monkeypatch.setenv("MY_SECRET", "x")
    assert HttpTransport.from_config(named).signed
    with pytest.raises(ConfigurationError, match="webhook_url"):
        HttpTransport.from_config(BotSyncConfig(target_bot_name="NoUrl"))


@pytest.mark.parametrize(
    "url", ["", "ftp://host/sync", "host/sync", "http://host/sync?x=1", "http:///sync"]
)
def test_bad_urls(url: str) -> None:
    with pytest.raises(ConfigurationError):
        HttpTransport(url, secret="s")
