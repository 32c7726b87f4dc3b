"""Every route that gives the HTTP side a secret follows one rule, over real servers.

A value ``"new old"`` given to the client by any route signs with ``new`` (a server that
knows only ``old`` refuses it) and accepts answers signed with either (a relay re-signs
the server's answers with ``old``). A real sync in the middle of a rotation completes
when the two sides hold the two secrets in opposite orders through different routes.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from neonpay import BotSyncConfig, PaymentStage, create_neonpay
from neonpay.core.neonpay import NeonPay
from neonpay.errors import PeerRejected, SignatureError
from neonpay.sync.credentials import SECRET_ENV
from neonpay.sync.manager import SyncManager
from neonpay.sync.results import SyncStatus
from neonpay.web_sync import HttpTransport, SyncServer
from neonpay.web_sync.signing import (
    ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    response_payload,
    signed_headers,
)

NEW = "whsec_bmV3LXNlY3JldC1uZXctc2VjcmV0LW5ldy1zZWNyZXQ="
OLD = "the-old-secret-still-used-by-some-peers"
ROTATION = f"{NEW} {OLD}"
#: The answer headers a relay drops before signing again (aiohttp sets its own).
_DROPPED = {"content-length", "transfer-encoding", "connection", "date", "server"}

MakeTransport = Callable[[str, pytest.MonkeyPatch], HttpTransport]


def by_argument(url: str, env: pytest.MonkeyPatch) -> HttpTransport:
    return HttpTransport(url, secret=ROTATION)


def by_list(url: str, env: pytest.MonkeyPatch) -> HttpTransport:
    return HttpTransport(url, secret=NEW, secrets=[OLD])


def by_default_variable(url: str, env: pytest.MonkeyPatch) -> HttpTransport:
    env.setenv(SECRET_ENV, ROTATION)
    return HttpTransport(url)


def by_stored_config(url: str, env: pytest.MonkeyPatch) -> HttpTransport:
    return HttpTransport.from_config(
        BotSyncConfig(target_bot_name="peer", webhook_url=url, webhook_secret=ROTATION)
    )


def by_config_variable(url: str, env: pytest.MonkeyPatch) -> HttpTransport:
    env.setenv("PEER_ROTATION", ROTATION)
    return HttpTransport.from_config(
        BotSyncConfig(target_bot_name="peer", webhook_url=url, webhook_secret_env="PEER_ROTATION")
    )


def by_config_fallback(url: str, env: pytest.MonkeyPatch) -> HttpTransport:
    env.setenv(SECRET_ENV, ROTATION)
    return HttpTransport.from_config(BotSyncConfig(target_bot_name="peer", webhook_url=url))


CLIENT_ROUTES = [
    by_argument,
    by_list,
    by_default_variable,
    by_stored_config,
    by_config_variable,
    by_config_fallback,
]


@pytest.fixture
def node(tmp_path: Path) -> Iterator[NeonPay]:
    opened = create_neonpay(storage=f"sqlite:///{tmp_path / 'server'}.db", node_id="server")
    yield opened
    opened.close()


@asynccontextmanager
async def relay(upstream: str, secret: str) -> AsyncIterator[str]:
    """A real HTTP server that forwards each request to ``upstream`` unchanged and signs
    the answer again with ``secret`` (bound to the request's id, as the protocol says)."""

    async def forward(request: web.Request) -> web.Response:
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() != "host"}
        async with (
            aiohttp.ClientSession(auto_decompress=False) as session,
            session.request(
                request.method, upstream + request.path_qs, data=body or None, headers=headers
            ) as answer,
        ):
            raw = await answer.read()
            kept = {
                k: v
                for k, v in answer.headers.items()
                if k.lower() not in _DROPPED
                and k.lower() not in (ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER)
            }
        kept.update(
            signed_headers(
                secret,
                f"msg_relay{int(time.time() * 1000)}",
                int(time.time()),
                response_payload(answer.status, request.headers[ID_HEADER], raw),
            )
        )
        return web.Response(status=answer.status, body=raw, headers=kept)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", forward)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("route", CLIENT_ROUTES, ids=lambda r: r.__name__)
async def test_the_client_signs_with_the_first_and_accepts_answers_signed_with_any(
    route: MakeTransport, node: NeonPay, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(SECRET_ENV, raising=False)
    async with (
        SyncServer(node, port=0, webhook_secret=NEW) as knows_new,
        SyncServer(node, port=0, webhook_secret=OLD) as knows_old,
        relay(f"http://127.0.0.1:{knows_new.port}", OLD) as answers_with_old,
    ):
        async with route(knows_new.url, monkeypatch) as peer:
            assert (await peer.info()).node_id == "server"
        async with route(knows_old.url, monkeypatch) as peer:
            with pytest.raises(PeerRejected) as refused:
                await peer.info()
            assert refused.value.status == 401  # it signed with NEW, the first
        async with route(answers_with_old + "/sync", monkeypatch) as peer:
            assert (await peer.info()).node_id == "server"  # an answer signed with OLD

    # The relay is a real check: a client with NEW alone refuses the OLD-signed answer.
    async with (
        SyncServer(node, port=0, webhook_secret=NEW) as knows_new,
        relay(f"http://127.0.0.1:{knows_new.port}", OLD) as answers_with_old,
        HttpTransport(answers_with_old + "/sync", secret=NEW) as only_new,
    ):
        with pytest.raises(SignatureError):
            await only_new.info()


ServerStart = Callable[[NeonPay, pytest.MonkeyPatch], SyncServer]


def server_by_argument(node: NeonPay, env: pytest.MonkeyPatch) -> SyncServer:
    return SyncServer(node, port=0, webhook_secret=f"{OLD} {NEW}")


def server_by_list(node: NeonPay, env: pytest.MonkeyPatch) -> SyncServer:
    return SyncServer(node, port=0, webhook_secret=OLD, secrets=[NEW])


def server_by_variable(node: NeonPay, env: pytest.MonkeyPatch) -> SyncServer:
    env.setenv(SECRET_ENV, f"{OLD} {NEW}")
    return SyncServer(node, port=0)


@pytest.mark.parametrize(
    "start", [server_by_argument, server_by_list, server_by_variable], ids=lambda s: s.__name__
)
async def test_the_server_accepts_every_secret_of_its_list(
    start: ServerStart, node: NeonPay, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(SECRET_ENV, raising=False)
    async with start(node, monkeypatch) as server:
        monkeypatch.delenv(SECRET_ENV, raising=False)
        for secret in (OLD, NEW):
            async with HttpTransport(server.url, secret=secret) as peer:
                assert (await peer.info()).node_id == "server"
        async with HttpTransport(server.url, secret="a-guess-at-the-secret") as stranger:
            with pytest.raises(PeerRejected) as refused:
                await stranger.info()
            assert refused.value.status == 401


@pytest.mark.parametrize(
    ("server_route", "client_route"),
    [
        (server_by_argument, "webhook_secret_env"),
        (server_by_variable, "webhook_secret"),
        (server_by_list, "webhook_secret_env"),
    ],
    ids=["argument-vs-config-variable", "variable-vs-stored", "list-vs-config-variable"],
)
async def test_a_real_sync_mid_rotation_with_opposite_orders(
    server_route: ServerStart,
    client_route: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The server holds "OLD NEW", the client "NEW OLD", by different routes; both
    directions of a real sync complete and the records arrive."""
    monkeypatch.delenv(SECRET_ENV, raising=False)
    hq = create_neonpay(storage=f"sqlite:///{tmp_path / 'hq'}.db", node_id="hq")
    branch = create_neonpay(storage=f"sqlite:///{tmp_path / 'branch'}.db", node_id="branch")
    try:
        hq.create_payment_stage("from-hq", PaymentStage("From HQ", "Made at HQ", 10))
        branch.create_payment_stage("from-branch", PaymentStage("From branch", "Made there", 20))
        async with server_route(hq, monkeypatch) as server:
            monkeypatch.delenv(SECRET_ENV, raising=False)
            if client_route == "webhook_secret_env":
                monkeypatch.setenv("HQ_SYNC_SECRET", ROTATION)
                secret: dict[str, Any] = {"webhook_secret_env": "HQ_SYNC_SECRET"}
            else:
                secret = {"webhook_secret": ROTATION}
            config = BotSyncConfig(target_bot_name="hq", webhook_url=server.url, **secret)
            async with SyncManager(branch, config) as manager:
                result = await manager.sync_all()
        assert result.status is SyncStatus.COMPLETED, result.errors
        assert set(hq.list_payment_stages()) == {"from-hq", "from-branch"}
        assert set(branch.list_payment_stages()) == {"from-hq", "from-branch"}
    finally:
        hq.close()
        branch.close()
