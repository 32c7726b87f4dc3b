"""Property: whatever bots do and however they sync, a final full round leaves every bot
with the same catalog, no deleted record comes back, the causally last write of a record
wins, and promo usage totals are exact."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from neonpay import ConflictError, ConflictResolution, DiscountType, NeonPay, SyncDirection
from neonpay.store.base import SYNC_KINDS, Record
from neonpay.sync.clock import Order, compare_versions
from neonpay.sync.pending import pending_conflicts, resolve_pending

from .network import Network, snapshot, stage, template_products

STAGES = ("k0", "k1", "k2")
CODES = ("PC0", "PC1")
SETTINGS = ("s0", "s1")

node_index = st.integers(min_value=0, max_value=4)
write = st.one_of(
    st.tuples(st.just("stage"), node_index, st.sampled_from(STAGES), st.integers(1, 50)),
    st.tuples(st.just("update"), node_index, st.sampled_from(STAGES), st.integers(1, 50)),
    st.tuples(st.just("delete"), node_index, st.sampled_from(STAGES), st.just(0)),
    st.tuples(st.just("use"), node_index, st.sampled_from(CODES), st.integers(1, 3)),
    st.tuples(st.just("promo"), node_index, st.sampled_from(CODES), st.integers(1, 99)),
    st.tuples(st.just("unpromo"), node_index, st.sampled_from(CODES), st.just(0)),
    st.tuples(st.just("setting"), node_index, st.sampled_from(SETTINGS), st.integers(0, 9)),
    st.tuples(st.just("template"), node_index, st.just("shop"), st.integers(1, 50)),
)
sync = st.tuples(
    st.just("sync"),
    node_index,
    node_index,
    st.tuples(st.sampled_from(list(SyncDirection)), st.sampled_from(list(ConflictResolution))),
)
#: A few writes on random nodes, then a sync between two random nodes.
step = st.tuples(st.lists(write, min_size=1, max_size=3), sync)


@dataclass
class _Log:
    """The writes people made, per record, and the uses counted per code."""

    writes: dict[tuple[str, str], list[Record]] = field(default_factory=lambda: defaultdict(list))
    uses: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def wrote(self, node: NeonPay, kind: str, key: str) -> None:
        state = node.store.get(kind, key, include_deleted=True)
        if state is not None and (not self.writes[(kind, key)] or state.seq):
            self.writes[(kind, key)].append(state)


def _apply(node: NeonPay, op: tuple[Any, ...], log: _Log) -> None:
    kind, _, key, value = op
    if kind == "stage":
        node.create_payment_stage(key, stage(price=value, title=f"T{value}"))
        log.wrote(node, "payment_stage", key)
    elif kind == "update":
        if node.get_payment_stage(key) is not None:
            node.update_payment_stage(key, description=f"D{value}")
            log.wrote(node, "payment_stage", key)
    elif kind == "delete":
        if node.remove_payment_stage(key):
            log.wrote(node, "payment_stage", key)
    elif kind == "use":
        node.promotions.record_use(key, value)
        log.uses[key] += value
    elif kind == "promo":
        node.promotions.create_promo_code(key, DiscountType.PERCENTAGE, value)
        log.wrote(node, "promo_code", key)
    elif kind == "unpromo":
        if node.promotions.remove_promo_code(key):
            log.wrote(node, "promo_code", key)
    elif kind == "setting":
        node.settings.set(key, value)
        log.wrote(node, "setting", key)
    elif kind == "template":
        node.templates.create_template(key, products=template_products(value))
        log.wrote(node, "template", key)


def _dominates(a: Record, b: Record) -> bool:
    return compare_versions(a.version, b.version) in (Order.AFTER, Order.EQUAL)


def _check_history(nodes: list[NeonPay], log: _Log) -> None:
    """No resurrection, and the causally last write wins."""
    resolutions: dict[tuple[str, str], list[Record]] = defaultdict(list)
    for node in nodes:
        for change in node.store.changes(0, 1_000_000):
            if change.resolution and change.kind in SYNC_KINDS:
                resolutions[(change.kind, change.key)].append(change)
    final_node = nodes[0]
    for (kind, key), writes in log.writes.items():
        final = final_node.store.get(kind, key, include_deleted=True)
        assert final is not None
        every = writes + resolutions[(kind, key)]
        deletes = [w for w in every if w.deleted]
        if not final.deleted:
            assert any(
                not w.deleted and not any(_dominates(d, w) for d in deletes) for w in every
            ), f"{kind} {key!r} came back although every write to it was deleted after"
        last = [w for w in every if all(_dominates(w, other) for other in every)]
        if last:
            assert final.deleted == last[0].deleted, f"{kind} {key!r}: the last write lost"
            assert dict(final.fields) == dict(last[0].fields), f"{kind} {key!r}: lost update"


_SEED: list[tuple[Any, ...]] = [
    *(("stage", 0, key, 10) for key in STAGES),
    *(("promo", 0, code, 10) for code in CODES),
    *(("setting", 0, name, 0) for name in SETTINGS),
    ("template", 0, "shop", 10),
]


async def _scenario(root: Path, size: int, steps: list[Any]) -> None:
    net = Network(root)
    try:
        nodes = [net.node(f"n{i}") for i in range(size)]
        log = _Log()
        for op in _SEED:  # every node starts from one shared catalog, so edits collide
            _apply(nodes[0], op, log)
        await net.settle(rounds=3)
        ops = [op for writes, sync_op in steps for op in (*writes, sync_op)]
        for op in ops:
            if op[0] == "sync":
                _, i, j, (direction, strategy) = op
                a, b = nodes[i % size], nodes[j % size]
                if a is not b:
                    result = await net.sync(a, b, direction=direction, conflict_resolution=strategy)
                    for conflict in result.conflicts:  # see --hypothesis-show-statistics
                        event(f"conflict {conflict.outcome} {conflict.item_type}")
            else:
                _apply(nodes[op[1] % size], op, log)
        for node in nodes:  # a person answers every pending question still open
            for row in pending_conflicts(node.store):
                with contextlib.suppress(ConflictError):  # settled by the one before
                    resolve_pending(node, row.id, "merge")
        rounds = await net.settle(rounds=8, conflict_resolution=ConflictResolution.MERGE)
        event(f"final rounds {rounds}")
        first = snapshot(nodes[0])
        for node in nodes[1:]:
            assert snapshot(node) == first
        for code in CODES:
            for node in nodes:
                assert node.promotions.usage(code) == log.uses[code]
        _check_history(nodes, log)
        for i, node in enumerate(nodes):  # no history of honest nodes looks like reuse
            assert node.node_id == f"n{i}", node.store.retired_node_ids()
    finally:
        await net.close()


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(size=st.integers(min_value=3, max_value=5), steps=st.lists(step, min_size=2, max_size=12))
def test_any_history_converges(size: int, steps: list[Any]) -> None:
    with tempfile.TemporaryDirectory(prefix="neonpay-prop-") as tmp:
        asyncio.run(_scenario(Path(tmp), size, steps))
