"""A review of the grants, as a peer holding one valid secret would attack them over real
signed HTTP on 127.0.0.1: secrets several peers share, a peer whose stored config is
unreadable, a refused request that would still change the store, and peer names probed
through ``/sync/status?peer=``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from neonpay import PaymentStage
from neonpay.core.neonpay import NeonPay
from neonpay.store.base import Cursor
from neonpay.sync import BotSyncConfig, SyncDirection
from neonpay.web_sync import SyncServer
from neonpay.web_sync.endpoints import CHANGES, STATUS

from .conftest import MakeNode
from .helpers import SECRET, dump_store, signed_call

#: one secret configured as the own secret of two peers, both PUSH (they may only read)
K_SHARED = "shared-by-two-peers-secret-0123456789"
K_OWN = "own-secret-of-the-bidirectional-peer-0123"


@dataclass
class Site:
    receiver: NeonPay
    origin: str
    http: aiohttp.ClientSession
    stages: list[dict[str, Any]]

    async def call(
        self,
        method: str,
        target: str,
        *,
        secret: str,
        node: str | None,
        records: list[dict[str, Any]] | None = None,
    ) -> tuple[int, dict[str, Any]]:
        return await signed_call(
            self.http, self.origin, method, target, secret=secret, node=node, records=records
        )


def _peer(
    node: NeonPay,
    name: str,
    direction: SyncDirection,
    secret: str | None,
    peer_node: str,
    *,
    promos: bool = True,
) -> None:
    config = BotSyncConfig(
        target_bot_name=name,
        webhook_url=f"https://{name}.example/sync",
        webhook_secret=secret,
        direction=direction,
        sync_promo_codes=promos,
    )
    node.store.save_peer(name, config.to_dict())
    node.store.set_cursor(name, "pull", Cursor(0, peer_node))


@asynccontextmanager
async def _serve(
    receiver: NeonPay, stages: list[dict[str, Any]], policy: str
) -> AsyncIterator[Site]:
    async with (
        SyncServer(receiver, port=0, webhook_secret=SECRET, unknown_peers=policy) as server,
        aiohttp.ClientSession(auto_decompress=False) as http,
    ):
        yield Site(receiver, f"http://127.0.0.1:{server.port}", http, stages)


@pytest.fixture
async def receiver(make_node: MakeNode) -> tuple[NeonPay, list[dict[str, Any]]]:
    receiver = make_node("receiver")
    receiver.create_payment_stage("basic", PaymentStage("Basic", "Entry level", 5))
    receiver.promotions.create_promo_code("HQ50", "percentage", 50)
    # two peers given the same secret, both PUSH (they may only read); one without promos
    _peer(receiver, "shop-a", SyncDirection.PUSH, K_SHARED, "node-a", promos=False)
    _peer(receiver, "shop-b", SyncDirection.PUSH, K_SHARED, "node-b", promos=False)
    _peer(receiver, "shop-own", SyncDirection.BIDIRECTIONAL, K_OWN, "node-own")
    # a peer that signs with the server-wide secret, allowed to write
    _peer(receiver, "shop-plain", SyncDirection.PULL, None, "node-plain")
    attacker = make_node("attacker")
    attacker.create_payment_stage("evil", PaymentStage("Evil", "Injected", 1))
    stages = [r.to_wire() for r in attacker.store.feed(0, 100, kinds=["payment_stage"]).records]
    return receiver, stages


@pytest.fixture
async def site(receiver: tuple[NeonPay, list[dict[str, Any]]]) -> AsyncIterator[Site]:
    """The receiver served with the default policy (unknown nodes read and write)."""
    async with _serve(*receiver, "read-write") as served:
        yield served


@pytest.mark.parametrize("node", ["made-up-node", "node-plain"])
@pytest.mark.parametrize("target", [CHANGES, "/sync/payment_stages"])
async def test_a_secret_two_peers_share_never_writes_as_another_node(
    site: Site, node: str, target: str
) -> None:
    """Both peers that hold the secret may only read here: claiming a node that is not
    configured, or a peer that signs with the server-wide secret, never gets a request
    signed with it a write grant."""
    before = dump_store(site.receiver, include_replay_log=True)
    status, data = await site.call("POST", target, secret=K_SHARED, node=node, records=site.stages)
    assert status == 403, data
    assert K_SHARED not in data["error"]["message"]
    assert site.receiver.store.get("payment_stage", "evil") is None
    assert dump_store(site.receiver, include_replay_log=True) == before


@pytest.mark.parametrize("node", ["made-up-node", None])
@pytest.mark.parametrize("target", [CHANGES + "?since=0", "/sync/promo_codes"])
async def test_a_secret_two_peers_share_never_reads_beyond_their_kinds(
    site: Site, node: str | None, target: str
) -> None:
    """Neither peer holding the secret may read promo codes: claiming nobody, or a node
    that is not configured, does not open them."""
    before = dump_store(site.receiver, include_replay_log=True)
    status, data = await site.call("GET", target, secret=K_SHARED, node=node)
    assert status == 403, data
    assert dump_store(site.receiver, include_replay_log=True) == before


async def test_a_shared_secret_still_speaks_for_the_peers_that_hold_it(site: Site) -> None:
    status, data = await site.call("GET", CHANGES + "?since=0", secret=K_SHARED, node="node-a")
    assert status == 200, data
    assert [r["key"] for r in data["changes"]] == ["basic"]
    status, data = await site.call(
        "POST", CHANGES, secret=K_SHARED, node="node-b", records=site.stages
    )
    assert status == 403  # PUSH: this node accepts no changes from it
    assert "configured here as PUSH" in data["error"]["message"]


async def test_a_peer_whose_stored_config_is_unreadable_cannot_be_claimed(
    site: Site,
) -> None:
    """shop-own's stored config no longer passes the checks (written by hand, or by
    another version): nobody can verify as it, and nobody else can take over its node
    id with the server-wide secret either (its node id stays reserved)."""
    data = site.receiver.store.get_peer("shop-own")
    assert data is not None
    site.receiver.store.save_peer("shop-own", {**data, "page_size": 0})
    before = dump_store(site.receiver, include_replay_log=True)
    status, answer = await site.call(
        "GET", CHANGES + "?since=0", secret=SECRET, node="node-own", records=None
    )
    assert status == 403, answer
    assert "shop-own" in answer["error"]["message"]
    assert dump_store(site.receiver, include_replay_log=True) == before


async def test_a_refused_feed_request_does_not_record_a_new_node_id(site: Site) -> None:
    """A request that passes the signature and the grant but is then refused (400: a
    cursor beyond our head) changes nothing but the replay log: not the node id the peer
    signs as."""
    before = dump_store(site.receiver)
    status, data = await site.call(
        "GET", CHANGES + "?since=999999", secret=K_OWN, node="node-own-2"
    )
    assert status == 400, data
    assert dump_store(site.receiver) == before
    status, data = await site.call("GET", CHANGES + "?since=0", secret=K_OWN, node="node-own-2")
    assert status == 200, data
    assert dump_store(site.receiver) != before  # an admitted request remembers it


@pytest.mark.parametrize("name", ["shop-a", "no-such-peer"])
async def test_a_node_that_sees_no_peers_cannot_probe_their_names(
    receiver: tuple[NeonPay, list[dict[str, Any]]], name: str
) -> None:
    """An unknown node under unknown_peers='read' sees no peer in status; asking for one
    by name gets the same refusal whether the peer exists or not."""
    async with _serve(*receiver, "read") as site:
        status, data = await site.call("GET", STATUS + f"?peer={name}", secret=SECRET, node="stray")
        assert status == 403, data
        assert data["error"]["code"] == "forbidden"
        status, data = await site.call("GET", STATUS, secret=SECRET, node="stray")
        assert status == 200
        assert data["peers"] == []
