"""Failed syncs explain themselves once: the peer, its URL and what to check, no repeats."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from neonpay import create_neonpay
from neonpay.errors import PeerRejected
from neonpay.sync.config import BotSyncConfig
from neonpay.sync.manager import SyncManager
from neonpay.web_sync import HttpTransport, RetryPolicy, create_sync_app


@pytest.fixture
async def not_neonpay() -> AsyncIterator[TestServer]:
    """A web server that is not a NEONPAY sync server: every path is an HTML 404."""

    async def page(request: web.Request) -> web.Response:
        return web.Response(status=404, text="<html><body>" + "x" * 500 + "</body></html>")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", page)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    yield server
    await server.close()


async def test_a_url_that_is_not_a_sync_base_says_so(not_neonpay: TestServer) -> None:
    base = str(not_neonpay.make_url("/wrong"))
    transport = HttpTransport(base, secret="shared-secret", name="Store B")
    try:
        with pytest.raises(PeerRejected) as caught:
            await transport.pull(0, 10, ["payment_stage"], requester="node-a")
    finally:
        await transport.close()
    message = str(caught.value)
    assert "not a NEONPAY sync server" in message
    assert "sync base" in message
    assert "<html>" not in message
    assert message.count("/wrong") == 1  # the URL is named once


async def test_an_unreachable_peer_is_described_once(tmp_path: Path) -> None:
    config = BotSyncConfig(
        target_bot_name="Store B",
        webhook_url="http://127.0.0.1:9/sync",  # the discard port: nothing listens
        webhook_secret="shared-secret",
    )
    transport = HttpTransport.from_config(config)
    transport.retry_policy = RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.02)
    with create_neonpay(storage=f"sqlite:///{tmp_path}/a.db") as neonpay:
        async with SyncManager(neonpay, config, transport=transport) as manager:
            result = await manager.sync_all()
    assert result.status.value == "failed"
    (error,) = result.errors
    assert error.count("http://127.0.0.1:9/sync") == 1
    assert error.count("is unreachable") == 1
    assert error.count("sync server runs") == 1
    assert error.count("next sync") == 1


async def test_the_server_logs_each_refused_request(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "a-secret-that-must-not-be-logged"
    with create_neonpay(storage=f"sqlite:///{tmp_path}/b.db") as neonpay:
        server = TestServer(create_sync_app(neonpay, webhook_secret=secret), host="127.0.0.1")
        await server.start_server()
        try:
            async with aiohttp.ClientSession() as http:
                url = server.make_url("/sync/changes")
                with caplog.at_level(logging.INFO, logger="neonpay.web_sync.server"):
                    async with http.get(url, headers={"webhook-signature": "v1,AAAA"}) as answer:
                        assert answer.status == 401
        finally:
            await server.close()
    refusals = [r for r in caplog.records if r.getMessage().startswith("refused GET")]
    assert len(refusals) == 1
    assert refusals[0].levelno == logging.WARNING
    assert "401" in refusals[0].getMessage()
    assert secret not in caplog.text
