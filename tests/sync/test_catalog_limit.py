"""``max_stages`` holds on stages that arrive by sync: the ones beyond it are refused,
with the reason, pushed or pulled."""

from __future__ import annotations

from pathlib import Path

from neonpay import create_neonpay

from .network import Network, stage

LIMIT = 3


def small_node(net: Network, tmp_path: Path, name: str) -> None:
    net.nodes[name] = create_neonpay(
        storage=f"sqlite:///{tmp_path / f'{name}.db'}", node_id=name, max_stages=LIMIT
    )


async def test_pushed_stages_beyond_the_limit_are_refused(net: Network, tmp_path: Path) -> None:
    a = net.node("A")
    small_node(net, tmp_path, "B")
    b = net.nodes["B"]
    for i in range(5):
        a.create_payment_stage(f"s{i}", stage(price=10 + i))
    result = await net.sync(a, b, direction="push")
    assert len(b.list_payment_stages()) == LIMIT
    assert b.store.count("payment_stage") == LIMIT
    refused = [e for e in result.errors if "maximum of 3 payment_stage records" in e]
    assert len(refused) == 5 - LIMIT, result.errors


async def test_pulled_stages_beyond_the_limit_are_refused(net: Network, tmp_path: Path) -> None:
    a = net.node("A")
    small_node(net, tmp_path, "B")
    b = net.nodes["B"]
    for i in range(5):
        a.create_payment_stage(f"s{i}", stage(price=10 + i))
    result = await net.sync(b, a, direction="pull")
    assert len(b.list_payment_stages()) == LIMIT
    refused = [e for e in result.errors if "maximum of 3 payment_stage records" in e]
    assert len(refused) == 5 - LIMIT, result.errors
    assert all("from peer" in e for e in refused)
