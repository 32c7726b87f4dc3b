"""Grants over real signed HTTP: every request speaks for exactly one peer and is held to
that peer's grant on every endpoint. Each attack below is made with a valid secret; after
each refusal the receiver's store is byte-for-byte what it was (the replay log included:
a refused request is not admitted)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from neonpay import PaymentStage
from neonpay.core.neonpay import NeonPay
from neonpay.store.base import Cursor
from neonpay.sync import BotSyncConfig, SyncDirection
from neonpay.sync.decide import make_decide
from neonpay.sync.grants import note_inbound_node
from neonpay.web_sync import SyncServer, codec
from neonpay.web_sync.endpoints import CHANGES, STATUS, VIEWS

from .conftest import MakeNode
from .helpers import SECRET, dump_store, send, signed, signed_call

K_PUSH = "whsec_" + "cHVzaC1wZWVyLXNlY3JldC0wMTIzNDU2Nzg5"  # base64 of a test key
K_PULL = "pull-peer-secret-0123456789"
K_NOPROMO = "nopromo-peer-secret-0123456789"
K_FRIEND = "friend-peer-secret-0123456789"

PEERS = {
    # name: (our direction towards it, its own secret, its node id, promo codes on)
    "shop-push": (SyncDirection.PUSH, K_PUSH, "node-push", True),
    "shop-pull": (SyncDirection.PULL, K_PULL, "node-pull", True),
    "shop-nopromo": (SyncDirection.BIDIRECTIONAL, K_NOPROMO, "node-np", False),
    "shop-friend": (SyncDirection.BIDIRECTIONAL, K_FRIEND, "node-f", True),
}
WRITE_VIEWS = list(VIEWS)


@dataclass
class Setup:
    receiver: NeonPay
    origin: str
    http: aiohttp.ClientSession
    stages: list[dict[str, Any]]
    promos: list[dict[str, Any]]
    tombstones: list[dict[str, Any]]

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


def _configure(node: NeonPay) -> None:
    for name, (direction, secret, peer_node, promos) in PEERS.items():
        config = BotSyncConfig(
            target_bot_name=name,
            webhook_url=f"https://{name}.example/sync",
            webhook_secret=secret,
            direction=direction,
            sync_promo_codes=promos,
        )
        node.store.save_peer(name, config.to_dict())
        node.store.set_cursor(name, "pull", Cursor(0, peer_node))
        note_inbound_node(node.store, name, peer_node, now=0.0)


@pytest.fixture
async def setup(make_node: MakeNode) -> AsyncIterator[Setup]:
    receiver = make_node("receiver")
    receiver.create_payment_stage("basic", PaymentStage("Basic", "Entry level", 5))
    receiver.create_payment_stage("pro", PaymentStage("Pro", "More", 9))
    receiver.settings.set("greeting", "hi")
    _configure(receiver)
    attacker = make_node("attacker")
    attacker.create_payment_stage("evil", PaymentStage("Evil", "Injected", 1))
    attacker.promotions.create_promo_code("FREE90", "percentage", 90)
    stages = [r.to_wire() for r in attacker.store.feed(0, 100, kinds=["payment_stage"]).records]
    promos = [r.to_wire() for r in attacker.store.feed(0, 100, kinds=["promo_code"]).records]
    # tombstones of the receiver's stages, made by a node that saw them and deleted them
    thief = make_node("thief")
    thief.store.apply_batch(
        receiver.store.feed(0, 100, kinds=["payment_stage"]).records, make_decide("receiver")
    )
    for key in ("basic", "pro"):
        assert thief.remove_payment_stage(key)
    tombstones = [
        r.to_wire() for r in thief.store.feed(0, 100, kinds=["payment_stage"]).records if r.deleted
    ]
    async with (
        SyncServer(receiver, port=0, webhook_secret=SECRET) as server,
        aiohttp.ClientSession(auto_decompress=False) as http,
    ):
        yield Setup(receiver, f"http://127.0.0.1:{server.port}", http, stages, promos, tombstones)


@dataclass(frozen=True)
class Attack:
    name: str
    method: str
    target: str
    secret: str
    node: str | None
    records: str = ""  # which records to send: stages, promos, tombstones
    says: str = ""  # a part of the refusal's message


ATTACKS = [
    # a PUSH peer (we only push to it) writes, under any node id, on every endpoint
    *[
        Attack(
            f"push peer writes as {node or 'nobody'} to {target}",
            "POST",
            target,
            K_PUSH,
            node,
            "tombstones" if target == CHANGES else "stages",
            "configured here as PUSH",
        )
        for target in (CHANGES, *WRITE_VIEWS)
        for node in ("made-up-node", "node-push")
    ],
    # a PULL peer (we only pull from it) reads, with or without a node header
    *[
        Attack(
            f"pull peer reads {target} as {node or 'nobody'}",
            "GET",
            target,
            K_PULL,
            node,
            says="configured here as PULL",
        )
        for target in (CHANGES, *VIEWS)
        for node in (None, "node-pull", "made-up-node")
    ],
    # a peer with promo codes switched off, on the promo endpoints
    Attack(
        "no-promo peer pushes a promo code view",
        "POST",
        "/sync/promo_codes",
        K_NOPROMO,
        "made-up-node",
        "promos",
        "sync_promo_codes is off",
    ),
    Attack(
        "no-promo peer reads the promo code view",
        "GET",
        "/sync/promo_codes",
        K_NOPROMO,
        "node-np",
        says="sync_promo_codes is off",
    ),
    # a peer signing with its own secret but claiming another configured peer's node
    *[
        Attack(
            f"no-promo peer claims the friend's node on {method} {target}",
            method,
            target,
            K_NOPROMO,
            "node-f",
            "stages" if method == "POST" else "",
            "speaks only for the peer whose secret signed it",
        )
        for method, target in (("POST", CHANGES), ("GET", CHANGES), ("GET", STATUS))
    ],
    # the server-wide secret cannot claim a peer that has a secret of its own
    *[
        Attack(
            f"server secret claims the friend on {method} {target}",
            method,
            target,
            SECRET,
            "node-f",
            "stages" if method == "POST" else "",
            "signs with a secret of its own here",
        )
        for method, target in (("POST", CHANGES), ("GET", CHANGES), ("GET", "/sync/info"))
    ],
    Attack(
        "a peer asks for another peer's status",
        "GET",
        STATUS + "?peer=shop-friend",
        K_PULL,
        "node-pull",
        says="only its own status",
    ),
]


@pytest.mark.parametrize("attack", ATTACKS, ids=[a.name for a in ATTACKS])
async def test_an_attack_with_a_valid_secret_is_refused_and_changes_nothing(
    setup: Setup, attack: Attack
) -> None:
    before = dump_store(setup.receiver, include_replay_log=True)
    records = getattr(setup, attack.records) if attack.records else None
    status, data = await setup.call(
        attack.method, attack.target, secret=attack.secret, node=attack.node, records=records
    )
    assert status == 403, data
    assert data["error"]["code"] == "forbidden"
    assert attack.says in data["error"]["message"]
    assert attack.secret not in data["error"]["message"]
    assert dump_store(setup.receiver, include_replay_log=True) == before


async def test_a_refusal_names_the_peer_the_grant_and_the_setting(setup: Setup) -> None:
    status, data = await setup.call(
        "POST", CHANGES, secret=K_PUSH, node="node-push", records=setup.stages
    )
    assert status == 403
    assert data["error"]["message"] == (
        "peer 'shop-push' is configured here as PUSH: this node accepts no changes from it; "
        "configure it as BIDIRECTIONAL on this node to allow that"
    )


async def test_a_kind_switched_off_is_rejected_item_by_item_on_the_feed(setup: Setup) -> None:
    before = dump_store(setup.receiver)
    status, data = await setup.call(
        "POST", CHANGES, secret=K_NOPROMO, node="node-np", records=setup.promos
    )
    assert status == 200, data
    [item] = data["results"]
    assert item["outcome"] == "rejected"
    assert "sync_promo_codes is off" in item["reason"]
    assert setup.receiver.promotions.get_promo_code("FREE90") is None
    assert dump_store(setup.receiver) == before


async def test_the_feed_sends_a_peer_only_its_kinds(setup: Setup) -> None:
    setup.receiver.promotions.create_promo_code("HQ10", "percentage", 10)
    status, data = await setup.call("GET", CHANGES + "?since=0", secret=K_NOPROMO, node="node-np")
    assert status == 200
    kinds = {r["kind"] for r in data["changes"]}
    assert kinds == {"payment_stage", "setting"}
    status, data = await setup.call("GET", CHANGES + "?since=0", secret=K_FRIEND, node="node-f")
    assert {r["kind"] for r in data["changes"]} >= {"promo_code", "payment_stage"}


async def test_a_push_peer_may_read_and_a_pull_peer_may_write(setup: Setup) -> None:
    status, data = await setup.call("GET", CHANGES + "?since=0", secret=K_PUSH, node="node-push")
    assert status == 200
    assert len(data["changes"]) == 3
    status, data = await setup.call(
        "POST", CHANGES, secret=K_PULL, node="node-pull", records=setup.stages
    )
    assert status == 200, data
    assert [i["outcome"] for i in data["results"]] == ["applied"]
    stage = setup.receiver.store.get("payment_stage", "evil")
    assert stage is not None
    # recorded as received from the peer that signed, so it is never sent back to it
    status, data = await setup.call("GET", CHANGES + "?since=0", secret=K_PUSH, node="node-push")
    assert "evil" in {r["key"] for r in data["changes"]}


async def test_a_peer_that_lies_about_its_node_keeps_its_own_identity(
    setup: Setup, caplog: pytest.LogCaptureFixture
) -> None:
    """A push by the friend under a new node id is the friend (its store was recreated):
    it keeps its grant, the new id is remembered, logged and shown in status."""
    with caplog.at_level(logging.WARNING, logger="neonpay.sync"):
        status, data = await setup.call(
            "POST", CHANGES, secret=K_FRIEND, node="node-f2", records=setup.stages
        )
    assert status == 200, data
    assert [i["outcome"] for i in data["results"]] == ["applied"]
    assert "'shop-friend' now signs its requests as node 'node-f2'" in caplog.text
    status, data = await setup.call("GET", STATUS, secret=K_FRIEND, node="node-f2")
    assert status == 200
    [entry] = data["peers"]
    assert entry["name"] == "shop-friend"
    assert entry["signs_as"]["node_id"] == "node-f2"
    assert entry["signs_as"]["previous_node_id"] == "node-f"
    assert "pending_conflicts" not in data
    # what it pushed is not sent back to it, and is sent to the others
    status, data = await setup.call("GET", CHANGES + "?since=0", secret=K_FRIEND, node="node-f2")
    assert "evil" not in {r["key"] for r in data["changes"]}


@pytest.mark.parametrize(
    ("policy", "read", "write"),
    [("read-write", 200, 200), ("read", 200, 403), ("refuse", 403, 403)],
)
async def test_unknown_peers_policy(
    make_node: MakeNode, policy: str, read: int, write: int
) -> None:
    receiver = make_node("receiver")
    receiver.create_payment_stage("basic", PaymentStage("Basic", "Entry level", 5))
    _configure(receiver)
    stranger = make_node("stranger")
    stranger.create_payment_stage("new", PaymentStage("New", "From a stranger", 3))
    records = [r.to_wire() for r in stranger.store.feed(0, 10).records]
    async with (
        SyncServer(receiver, port=0, webhook_secret=SECRET, unknown_peers=policy) as server,
        aiohttp.ClientSession(auto_decompress=False) as http,
    ):
        origin = f"http://127.0.0.1:{server.port}"
        target = CHANGES + "?since=0"
        got, _, _, _ = await send(
            http, origin, "GET", target, headers=signed("GET", target, node="stranger")
        )
        assert got == read
        before = dump_store(receiver)
        body = codec.dump({"records": records})
        got, data, _, _ = await send(
            http, origin, "POST", CHANGES, body, signed("POST", CHANGES, body, node="stranger")
        )
        assert got == write, data
        if write == 403:
            assert f"unknown_peers='{policy}'" in data["error"]["message"] or (
                "refuses unknown peers" in data["error"]["message"]
            )
            assert dump_store(receiver) == before
        else:
            assert receiver.store.get("payment_stage", "new") is not None
