"""No state can poison the future (issue 13, item 4): a counter of our own node id that
we never issued is refused, pushed or pulled, on any kind; no local write goes past the
counter ceiling; a clock stamp more than the signature tolerance ahead is refused, and
our clock never moves further ahead than that."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from dataclasses import replace

import pytest

from neonpay import DiscountType, NeonPay
from neonpay.errors import ValidationError
from neonpay.store.base import Outcome, Record
from neonpay.store.sqlite import SQLiteStore
from neonpay.sync.clock import HLC, MAX_CLOCK_SKEW, MAX_VERSION_COUNTER
from neonpay.sync.decide import expecting
from neonpay.sync.local import LocalTransport
from neonpay.sync.protocol import ChangesPage
from neonpay.sync.service import SyncService
from neonpay.web_sync import codec
from neonpay.web_sync.limits import DEFAULT_LIMITS
from neonpay.web_sync.signing import DEFAULT_TOLERANCE

from .network import Network, stage

_IDENTITY_ROWS = ("neonpay_meta", "neonpay_clock")


def _data_rows(node: NeonPay) -> list[str]:
    """Every row of the node's SQLite file but the identity rows (the node id a refusal
    may renew) and the clock row, as text, in a fixed order."""
    store = node.store
    assert isinstance(store, SQLiteStore)
    conn = sqlite3.connect(store.path)
    try:
        tables = [
            r[0]
            for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY 1")
        ]
        return [
            f"{table}: {row!r}"
            for table in tables
            if table not in _IDENTITY_ROWS
            for row in conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2")  # noqa: S608
        ]
    finally:
        conn.close()


def _forged(state: Record, victim: str, sender: str) -> Record:
    """``state`` as a newer write of ``sender`` that claims ``victim``'s counter 2**53-1."""
    stamp = HLC(int(time.time() * 1000), 0, sender).encode()
    return replace(
        state,
        version={**state.version, victim: MAX_VERSION_COUNTER, sender: 1},
        hlc=stamp,
        field_hlcs=dict.fromkeys(state.field_hlcs, stamp),
        origin=sender,
        seq=0,
    )


def test_the_bounds_are_one_setting() -> None:
    assert DEFAULT_TOLERANCE == MAX_CLOCK_SKEW == DEFAULT_LIMITS.max_clock_ahead == 300
    assert codec.MAX_COUNTER == MAX_VERSION_COUNTER == 2**53 - 1


@pytest.mark.parametrize("kind", ["payment_stage", "promo_usage"])
async def test_a_pushed_counter_of_ours_we_never_issued_is_refused(net: Network, kind: str) -> None:
    a = net.node("A")
    if kind == "payment_stage":
        a.create_payment_stage("s1", stage(price=10))
        key = "s1"
    else:
        a.promotions.create_promo_code("SALE", DiscountType.PERCENTAGE, 10)
        a.promotions.record_use("SALE")
        key = "SALE"
    mine = a.store.get(kind, key)
    assert mine is not None
    before = _data_rows(a)
    (item,) = SyncService(a).apply([_forged(mine, "A", "B")], sender="B").results
    assert item.outcome is Outcome.REJECTED
    assert "never issued" in item.reason
    assert item.current == replace(mine, seq=item.current.seq)  # type: ignore[union-attr]
    assert _data_rows(a) == before  # nothing adopted, nothing written
    # the counter can never be reached: A writes on as a new node id
    assert a.node_id != "A"
    if kind == "payment_stage":
        state = a.update_payment_stage("s1", price=11)
        assert state is not None
        after = a.store.get(kind, key)
    else:
        a.promotions.record_use("SALE")
        after = a.store.get(kind, key)
    assert after is not None
    assert max(after.version.values()) < MAX_VERSION_COUNTER
    assert after.version[a.node_id] == 1


class _Liar(LocalTransport):
    """A peer whose pages claim the requester's counter 2**53-1."""

    def __init__(self, *args: object, victim: str, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.victim = victim

    async def pull(
        self, since: int, limit: int, kinds: Sequence[str], *, requester: str
    ) -> ChangesPage:
        page = await super().pull(since, limit, kinds, requester=requester)
        records = [_forged(r, self.victim, "B") for r in page.records]
        return ChangesPage(page.node_id, records, page.next_cursor, page.has_more)


async def test_a_pulled_counter_of_ours_we_never_issued_is_refused(net: Network) -> None:
    a, b = net.node("A"), net.node("B")
    a.create_payment_stage("s1", stage(price=10))
    await net.sync(a, b)
    b.update_payment_stage("s1", price=99)
    before = _data_rows(a)
    from neonpay.sync.config import BotSyncConfig
    from neonpay.sync.manager import SyncManager

    liar = _Liar(SyncService(b), name="B", victim="A")
    async with SyncManager(a, BotSyncConfig(target_bot_name="B"), liar) as manager:
        result = await manager.pull_changes()
    assert any("never issued" in e for e in result.errors), result.errors
    assert result.pulled == 0
    # the records and the change log are exactly as they were (a run writes its own
    # bookkeeping: its history and cursor)
    assert _records(_data_rows(a)) == _records(before)
    s1 = a.store.get("payment_stage", "s1")
    assert s1 is not None
    assert s1.fields["price"] == 10
    assert MAX_VERSION_COUNTER not in s1.version.values()


def _records(rows: list[str]) -> list[str]:
    return [row for row in rows if row.startswith(("neonpay_records:", "neonpay_changes:"))]


def test_no_local_write_goes_past_the_counter_ceiling(net: Network) -> None:
    a = net.node("A")
    a.create_payment_stage("s1", stage(price=10))
    mine = a.store.get("payment_stage", "s1")
    assert mine is not None
    worn = replace(mine, version={"A": MAX_VERSION_COUNTER}, seq=0)
    a.store.apply_batch([worn], expecting({("payment_stage", "s1"): mine}))
    before = _data_rows(a)
    with pytest.raises(ValidationError, match="most a version counter holds"):
        a.update_payment_stage("s1", price=11)
    assert _data_rows(a) == before


@pytest.mark.parametrize(("ahead", "applied"), [(MAX_CLOCK_SKEW - 1, True), (301, False)])
def test_a_stamp_ahead_by_more_than_the_tolerance_is_refused(
    net: Network, ahead: int, applied: bool
) -> None:
    a = net.node("A")
    a.create_payment_stage("s1", stage(price=10))
    mine = a.store.get("payment_stage", "s1")
    assert mine is not None
    stamp = HLC(int((time.time() + ahead) * 1000), 0, "B").encode()
    theirs = replace(
        mine,
        version={**mine.version, "B": 1},
        fields={**mine.fields, "price": 12},
        hlc=stamp,
        field_hlcs=dict.fromkeys(mine.field_hlcs, stamp),
        origin="B",
        seq=0,
    )
    before = _data_rows(a)
    (item,) = SyncService(a).apply([theirs], sender="B").results
    if applied:
        assert item.outcome is Outcome.APPLIED
    else:
        assert item.outcome is Outcome.REJECTED
        assert "300 s allowed" in item.reason
        assert _data_rows(a) == before
    a.update_payment_stage("s1", price=13)
    clock = HLC.decode(a.store.last_hlc())
    assert clock.wall_ms <= (time.time() + MAX_CLOCK_SKEW) * 1000
