"""Starting and stopping the server; where its secret comes from; the insecure mode."""

from __future__ import annotations

import asyncio
import socket

import aiohttp
import pytest

from neonpay.errors import ConfigurationError, PeerRejected
from neonpay.web_sync import HttpTransport, SyncServer, create_sync_app, run_sync_server

from .conftest import MakeNode
from .helpers import SECRET


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_for_health(port: int) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(200):
            try:
                async with http.get(f"http://127.0.0.1:{port}/health") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.02)
    raise AssertionError("the server did not come up")


def test_no_secret_is_a_clear_configuration_error(
    make_node: MakeNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NEONPAY_SYNC_SECRET", raising=False)
    with pytest.raises(ConfigurationError) as caught:
        create_sync_app(make_node("node-a"))
    message = str(caught.value)
    for option in ("webhook_secret=", "NEONPAY_SYNC_SECRET", "insecure=True"):
        assert option in message


async def test_the_spec_snippet_runs_with_the_secret_in_the_environment(
    make_node: MakeNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEONPAY_SYNC_SECRET", "env-secret")
    neonpay = make_node("node-a")
    app = create_sync_app(neonpay, webhook_secret="your_secret")
    assert app is not None
    port = free_port()
    task = asyncio.create_task(run_sync_server(neonpay, host="127.0.0.1", port=port))
    try:
        await asyncio.wait_for(wait_for_health(port), 10)
        async with HttpTransport(f"http://127.0.0.1:{port}/sync", secret="env-secret") as peer:
            assert (await peer.info()).node_id == "node-a"
        async with HttpTransport(f"http://127.0.0.1:{port}/sync", secret="your_secret") as peer:
            with pytest.raises(PeerRejected):
                await peer.info()
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    # cancelled cleanly: the port is free again
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


async def test_run_sync_server_refuses_to_start_without_a_secret(
    make_node: MakeNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NEONPAY_SYNC_SECRET", raising=False)
    with pytest.raises(ConfigurationError):
        await asyncio.wait_for(run_sync_server(make_node("node-a"), port=0), 5)


async def test_several_secrets_each_answer_with_its_own(make_node: MakeNode) -> None:
    node = make_node("node-a")
    async with SyncServer(node, port=0, webhook_secret="new", secrets=["old", "peer-b"]) as server:
        for secret in ("new", "old", "peer-b"):
            async with HttpTransport(server.url, secret=secret) as peer:
                assert (await peer.info()).node_id == "node-a"  # the answer verified too


async def test_env_may_hold_several_secrets(
    make_node: MakeNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEONPAY_SYNC_SECRET", "current  previous")
    async with SyncServer(make_node("node-a"), port=0) as server:
        for secret in ("current", "previous"):
            async with HttpTransport(server.url, secret=secret) as peer:
                await peer.info()


async def test_insecure_mode_works_unsigned_both_ways(
    make_node: MakeNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NEONPAY_SYNC_SECRET", raising=False)
    async with SyncServer(make_node("node-a"), port=0, insecure=True) as server:
        async with HttpTransport(server.url, insecure=True) as peer:
            assert not peer.signed
            assert (await peer.info()).node_id == "node-a"
        async with HttpTransport(server.url, secret=SECRET) as peer:
            # a client with a secret refuses the unsigned answer
            with pytest.raises(Exception, match="failed verification"):
                await peer.info()


async def test_a_port_in_use_is_a_configuration_error(make_node: MakeNode) -> None:
    async with SyncServer(make_node("node-a"), port=0, webhook_secret=SECRET) as first:
        second = SyncServer(make_node("node-b"), port=first.port, webhook_secret=SECRET)
        with pytest.raises(ConfigurationError, match="cannot listen"):
            await second.start()
        await second.close()


@pytest.mark.parametrize("tolerance", [0, -5, True])
def test_a_bad_tolerance_is_refused(make_node: MakeNode, tolerance: object) -> None:
    with pytest.raises(ConfigurationError, match="tolerance"):
        create_sync_app(make_node("node-a"), webhook_secret=SECRET, tolerance=tolerance)  # type: ignore[arg-type]
