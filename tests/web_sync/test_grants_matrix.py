"""Both sides configure each other, each with its direction: for every pair of
directions (3 x 3), over real signed HTTP with one secret per pair of peers, both sides
converge on what their grants allow, and every refusal names the setting to change."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from neonpay import PaymentStage
from neonpay.sync import BotSyncConfig, MultiBotSyncManager, SyncDirection
from neonpay.web_sync import SyncServer

from .conftest import MakeNode

PAIR_SECRET = "pair-secret-a-b-0123456789"
PLACEHOLDER = "http://127.0.0.1:9/sync"
PAIRS = list(itertools.product(SyncDirection, repeat=2))
REFUSAL_HINT = "configure it as BIDIRECTIONAL on this node to allow that"


def _config(name: str, url: str, direction: SyncDirection) -> BotSyncConfig:
    return BotSyncConfig(
        target_bot_name=name, webhook_url=url, webhook_secret=PAIR_SECRET, direction=direction
    )


@pytest.mark.parametrize(
    ("a_to_b", "b_to_a"), PAIRS, ids=[f"A:{x.name}-B:{y.name}" for x, y in PAIRS]
)
async def test_every_pair_of_directions(
    make_node: MakeNode, a_to_b: SyncDirection, b_to_a: SyncDirection
) -> None:
    a, b = make_node("node-a"), make_node("node-b")
    a.create_payment_stage("from-a", PaymentStage("From A", "made on A", 3))
    b.create_payment_stage("from-b", PaymentStage("From B", "made on B", 4))
    async with (
        MultiBotSyncManager(a) as multi_a,
        MultiBotSyncManager(b) as multi_b,
    ):
        # each side's own config of the other decides the other's grant on its server;
        # the servers have no server-wide secret: only the configured peer can sync
        # (configured before the servers start, so they know who may sign; the URLs
        # are set once the ports are known)
        multi_a.add_bot(_config("b", PLACEHOLDER, a_to_b))
        multi_b.add_bot(_config("a", PLACEHOLDER, b_to_a))
        async with SyncServer(a, port=0) as server_a, SyncServer(b, port=0) as server_b:
            multi_a.add_bot(_config("b", f"http://127.0.0.1:{server_b.port}/sync", a_to_b))
            multi_b.add_bot(_config("a", f"http://127.0.0.1:{server_a.port}/sync", b_to_a))
            runs = []
            for _ in range(2):
                runs.append(await multi_a.sync_with_bot("b"))
                runs.append(await multi_b.sync_with_bot("a"))
    a_reaches_b = a_to_b.pushes and b_to_a.pulls
    b_reaches_a = b_to_a.pushes and a_to_b.pulls
    assert (b.get_payment_stage("from-a") is not None) == a_reaches_b
    assert (a.get_payment_stage("from-b") is not None) == b_reaches_a
    # a side tries what its own direction says; the other side's grant may refuse it
    a_refused = (a_to_b.pushes and not b_to_a.pulls) or (a_to_b.pulls and not b_to_a.pushes)
    b_refused = (b_to_a.pushes and not a_to_b.pulls) or (b_to_a.pulls and not a_to_b.pushes)
    for run, refused in zip(runs, [a_refused, b_refused] * 2, strict=True):
        if refused:
            assert run.errors, run
            assert any(REFUSAL_HINT in error for error in run.errors), run.errors
        else:
            assert not run.errors, run.errors


def test_the_guide_table_says_what_the_matrix_test_checks() -> None:
    """docs/guide/sync.md lists the nine pairs; its yes/no columns follow the grants."""
    guide = (Path(__file__).parents[2] / "docs" / "guide" / "sync.md").read_text()
    rows = {}
    for line in guide.splitlines():
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[0] in SyncDirection.__members__:
            rows[(SyncDirection[cells[0]], SyncDirection[cells[1]])] = (cells[2], cells[3])
    assert set(rows) == set(PAIRS)
    for (a_to_b, b_to_a), (a_reaches_b, b_reaches_a) in rows.items():
        yes = {True: "yes", False: "no"}
        assert a_reaches_b == yes[a_to_b.pushes and b_to_a.pulls], (a_to_b, b_to_a)
        assert b_reaches_a == yes[b_to_a.pushes and a_to_b.pulls], (a_to_b, b_to_a)
