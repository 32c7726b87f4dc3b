"""Property: random grants, and random pushes and pulls over real signed HTTP by peers
that lie about their node id, never change a record of a kind the signer may not write,
and never show one it may not read."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

import aiohttp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neonpay import PaymentStage, create_neonpay
from neonpay.core.neonpay import NeonPay
from neonpay.store.base import KINDS
from neonpay.sync import BotSyncConfig, SyncDirection
from neonpay.sync.grants import note_inbound_node
from neonpay.web_sync import SyncServer, codec
from neonpay.web_sync.endpoints import CHANGES, VIEWS

from .helpers import dump_store, send, signed

PEERS = ("p0", "p1", "p2")
SECRETS = {name: f"own-secret-of-{name}-0123456789" for name in PEERS}
NODES = {name: f"node-{name}" for name in PEERS}
KIND_FLAGS = ("sync_payment_stages", "sync_promo_codes", "sync_templates", "sync_settings")
VIEW_OF_KIND = {kind: path for path, kind in VIEWS.items()}

grants = st.fixed_dictionaries(
    {
        name: st.tuples(st.sampled_from(SyncDirection), st.tuples(*[st.booleans()] * 4))
        for name in PEERS
    }
)
requests = st.lists(
    st.tuples(
        st.sampled_from(PEERS),  # who signs
        st.sampled_from([*NODES.values(), "liar-node", None]),  # the node it claims
        st.sampled_from(["push", "pull"]),
        st.sampled_from([None, *VIEWS.values()]),  # None: /sync/changes, else a view
        st.lists(st.sampled_from(range(4)), unique=True, max_size=4),  # records to send
    ),
    min_size=1,
    max_size=6,
)


def _offered(source: NeonPay, n: int) -> list[dict[str, Any]]:
    """Four records of four kinds, new on each call (``n`` makes the keys unique)."""
    source.create_payment_stage(f"s{n}", PaymentStage("Stage", "offered", 2))
    source.promotions.create_promo_code(f"PROMO{n}", "percentage", 90)
    source.settings.set(f"k{n}", "v")
    source.templates.create_template(f"t{n}", description="offered")
    records = source.store.feed(0, 10_000).records
    latest = {(r.kind, r.key): r for r in records}
    keys = [("payment_stage", f"s{n}"), ("promo_code", f"PROMO{n}"), ("setting", f"k{n}")]
    keys.append(("template", f"t{n}"))
    return [latest[key].to_wire() for key in keys]


def _rows_of(node: NeonPay, kind: str) -> list[str]:
    return [line for line in dump_store(node) if f"('{kind}'," in line]


async def _check(root: Path, grant_choice: Any, plan: Any) -> None:
    receiver = create_neonpay(storage=f"sqlite:///{root / 'receiver.db'}", node_id="receiver")
    source = create_neonpay(storage=f"sqlite:///{root / 'source.db'}", node_id="liar-source")
    try:
        receiver.create_payment_stage("own", PaymentStage("Own", "ours", 5))
        receiver.promotions.create_promo_code("OWN", "percentage", 5)
        for name, (direction, flags) in grant_choice.items():
            config = BotSyncConfig(
                target_bot_name=name,
                webhook_url=f"https://{name}.example/sync",
                webhook_secret=SECRETS[name],
                direction=direction,
                **dict(zip(KIND_FLAGS, flags, strict=True)),
            )
            receiver.store.save_peer(name, config.to_dict())
            note_inbound_node(receiver.store, name, NODES[name], now=0.0)
        async with (
            SyncServer(receiver, port=0) as server,
            aiohttp.ClientSession(auto_decompress=False) as http,
        ):
            origin = f"http://127.0.0.1:{server.port}"
            used = {name: {NODES[name]} for name in PEERS}  # node ids each peer spoke as
            for n, (signer, node, op, kind, picks) in enumerate(plan):
                config = BotSyncConfig.from_dict(receiver.store.get_peer(signer) or {})
                may_read = config.direction.pushes
                may_write = config.direction.pulls
                lies_about_another = any(
                    node in ids for name, ids in used.items() if name != signer
                )
                target = CHANGES if kind is None else VIEW_OF_KIND[kind]
                if op == "pull":
                    target += "?since=0"
                    headers = signed("GET", target, node=node, secret=SECRETS[signer])
                    headers["Accept-Encoding"] = "identity"
                    status, data, _, _ = await send(http, origin, "GET", target, b"", headers)
                    allowed = may_read and not lies_about_another
                    allowed = allowed and (kind is None or kind in config.kinds)
                    assert status == (200 if allowed else 403), data
                    if status == 200:
                        assert {r["kind"] for r in data["changes"]} <= set(config.kinds)
                        if node is not None:
                            used[signer].add(node)
                    continue
                offered = _offered(source, n)
                records = [offered[i] for i in picks]
                if kind is not None:
                    records = [r for r in records if r["kind"] == kind]
                before = {k: _rows_of(receiver, k) for k in KINDS}
                body = codec.dump({"records": records})
                headers = signed("POST", target, body, node=node, secret=SECRETS[signer])
                headers["Accept-Encoding"] = "identity"
                status, data, _, _ = await send(http, origin, "POST", target, body, headers)
                assert status in (200, 400, 403), data
                if status == 200 and node is not None:
                    used[signer].add(node)
                for k in KINDS:
                    writable = (
                        may_write
                        and not lies_about_another
                        and node is not None
                        and k in config.kinds
                    )
                    if not writable:
                        assert _rows_of(receiver, k) == before[k], (signer, node, k)
    finally:
        receiver.close()
        source.close()


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(grant_choice=grants, plan=requests)
def test_no_request_changes_what_its_signer_may_not_write(grant_choice: Any, plan: Any) -> None:
    with tempfile.TemporaryDirectory() as root:
        asyncio.run(_check(Path(root), grant_choice, plan))
