"""SyncService: what a peer may ask of a node, with bad input refused and nothing
changed."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from neonpay import ValidationError
from neonpay.errors import AccessDenied
from neonpay.store.base import Cursor, Outcome, Record
from neonpay.sync import BotSyncConfig, SyncDirection
from neonpay.sync.multi import MultiBotSyncManager
from neonpay.sync.service import SyncService

from .network import Network, snapshot, stage
from .records import rec

TOKEN = "987654321:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"


async def test_changes_pages_through_the_feed(net: Network) -> None:
    a = net.node("A")
    for i in range(5):
        a.create_payment_stage(f"s{i}", stage(price=i + 1))
    service = SyncService(a)
    first = service.changes(0, 2, None, requester="B")
    assert [r.key for r in first.records] == ["s0", "s1"]
    assert first.has_more
    assert first.node_id == "A"
    rest = service.changes(first.next_cursor, 10, ["payment_stage"], requester="B")
    assert [r.key for r in rest.records] == ["s2", "s3", "s4"]
    assert not rest.has_more
    empty = service.changes(rest.next_cursor, 10, None, requester="B")
    assert empty.records == []
    assert empty.next_cursor == rest.next_cursor


@pytest.mark.parametrize(
    ("since", "limit", "kinds", "field"),
    [
        (99, 10, None, "since"),
        (-1, 10, None, "since"),
        (0, 0, None, "limit"),
        (0, 100_000, None, "limit"),
        (0, 10, ["payments"], "kinds"),
    ],
)
async def test_bad_feed_requests_are_refused(
    net: Network, since: int, limit: int, kinds: list[str] | None, field: str
) -> None:
    a = net.node("A")
    a.create_payment_stage("s1", stage())
    with pytest.raises(ValidationError) as caught:
        SyncService(a).changes(since, limit, kinds, requester="B")
    assert caught.value.field == field


async def test_a_state_received_from_the_requester_is_not_echoed(net: Network) -> None:
    a = net.node("A")
    service = SyncService(a)
    result = service.apply([rec({"B": 1}, node="B")], sender="B")
    assert [i.outcome for i in result.results] == [Outcome.APPLIED]
    assert service.changes(0, 10, None, requester="B").records == []
    assert [r.key for r in service.changes(0, 10, None, requester="C").records] == ["s1"]


def _garbage() -> list[tuple[str, Record]]:
    good = rec({"B": 1}, node="B")
    return [
        ("unknown kind", replace(good, kind="payments")),
        ("price too high", rec({"B": 1}, node="B", price=10_001)),
        ("price not whole", rec({"B": 1}, node="B", price=1.5)),
        ("title too long", rec({"B": 1}, node="B", title="x" * 33)),
        ("unknown field", rec({"B": 1}, node="B", fields={**good.fields, "owner": "me"})),
        ("missing field", rec({"B": 1}, node="B", fields={"title": "T"})),
        ("bad key", replace(good, key="no spaces allowed")),
        ("empty version", replace(good, version={})),
        ("negative counter", replace(good, version={"B": -1})),
        ("bool counter", replace(good, version={"B": True})),
        ("bad stamp", replace(good, hlc="yesterday")),
        ("field stamp after record", replace(good, hlc="000000000000001.000000.B")),
        ("field stamp malformed", replace(good, field_hlcs={**good.field_hlcs, "title": "1.2.B"})),
        ("field stamp not text", replace(good, field_hlcs={**good.field_hlcs, "title": 7})),  # type: ignore[dict-item]
        (
            "stamp of a non-ASCII node",
            replace(
                good,
                hlc=good.hlc[:23] + "Bé",
                field_hlcs=dict.fromkeys(good.field_hlcs, good.hlc[:23] + "Bé"),
            ),
        ),
        ("stamp with a sign", replace(good, hlc="+" + good.hlc[1:])),
        ("non-ASCII node in version", replace(good, version={"Bé": 1})),
        ("tombstone with fields", replace(good, deleted=True)),
        ("deleted not a bool", replace(good, deleted="no")),  # type: ignore[arg-type]
        ("fields not a mapping", replace(good, fields=["a"])),  # type: ignore[arg-type]
        (
            "lower-case promo",
            rec(
                {"B": 1},
                node="B",
                kind="promo_code",
                key="sale",
                fields={"discount_type": "percentage", "discount_value": 5},
            ),
        ),
        (
            "percentage over 100",
            rec(
                {"B": 1},
                node="B",
                kind="promo_code",
                key="SALE",
                fields={"discount_type": "percentage", "discount_value": 150},
            ),
        ),
        (
            "usage negative",
            rec({"B": 1}, node="B", kind="promo_usage", key="SALE", fields={"B": -3}),
        ),
        (
            "usage bad node",
            rec({"B": 1}, node="B", kind="promo_usage", key="SALE", fields={"no spaces": 1}),
        ),
        (
            "setting extra field",
            rec({"B": 1}, node="B", kind="setting", key="k", fields={"value": 1, "x": 2}),
        ),
        (
            "known setting wrong type",
            rec({"B": 1}, node="B", kind="setting", key="enable_logging", fields={"value": "yes"}),
        ),
        (
            "template bad category",
            rec(
                {"B": 1},
                node="B",
                kind="template",
                key="shop",
                fields={
                    "description": "",
                    "categories": [],
                    "theme": {},
                    "products": [
                        {
                            "id": "p",
                            "name": "P",
                            "price": 5,
                            "description": "",
                            "category_id": "nope",
                            "photo_url": None,
                        }
                    ],
                },
            ),
        ),
        ("not a record", {"kind": "payment_stage"}),  # type: ignore[list-item]
    ]


async def test_invalid_pushed_items_are_rejected_and_change_nothing(net: Network) -> None:
    a = net.node("A")
    a.create_payment_stage("keep", stage(price=7))
    before = snapshot(a)
    seq = a.store.last_seq()
    cases = _garbage()
    result = SyncService(a).apply([case for _, case in cases], sender="B")
    assert len(result.results) == len(cases)
    for (why, _), item in zip(cases, result.results, strict=True):
        assert item.outcome is Outcome.REJECTED, why
        assert item.reason, why
    assert snapshot(a) == before
    assert a.store.last_seq() == seq


async def test_a_bad_item_does_not_stop_the_good_ones(net: Network) -> None:
    a = net.node("A")
    good = rec({"B": 1}, node="B", key="good")
    bad = rec({"B": 1}, node="B", key="bad", price=0)
    result = SyncService(a).apply([bad, good], sender="B")
    assert [i.outcome for i in result.results] == [Outcome.REJECTED, Outcome.APPLIED]
    assert "price" in result.results[0].reason
    assert a.get_payment_stage("good") is not None
    assert a.get_payment_stage("bad") is None


async def test_the_receiving_side_answers_a_conflict_with_its_state(net: Network) -> None:
    a = net.node("A")
    a.create_payment_stage("s1", stage(price=5))
    local = a.store.get("payment_stage", "s1")
    assert local is not None
    before = snapshot(a)
    theirs = rec({"B": 1}, node="B", ms=10**9, price=9)
    result = SyncService(a).apply([theirs], sender="B")
    item = result.results[0]
    assert item.outcome is Outcome.CONFLICT
    assert item.current is not None
    assert item.current.fields["price"] == 5
    assert snapshot(a) == before  # a server never resolves


async def test_applied_states_notify_listeners(net: Network) -> None:
    a = net.node("A")
    seen: list[str] = []
    a.add_change_listener(lambda record: seen.append(record.key))
    SyncService(a).apply([rec({"B": 1}, node="B", key="fresh")], sender="B")
    assert seen == ["fresh"]


async def test_batches_without_sender_or_too_long_are_refused(net: Network) -> None:
    a = net.node("A")
    service = SyncService(a)
    with pytest.raises(ValidationError):
        service.apply([rec({"B": 1}, node="B")], sender="")
    with pytest.raises(ValidationError):
        service.apply([rec({"B": 1}, node="B")] * 5001, sender="B")
    assert a.store.last_seq() == 0


async def test_records_view_per_kind(net: Network) -> None:
    a = net.node("A")
    a.create_payment_stage("s1", stage())
    a.settings.set("greeting", "hi")
    a.remove_payment_stage("s1")
    view = SyncService(a).records("payment_stage")
    assert [(r.key, r.deleted) for r in view.records] == [("s1", True)]
    assert [r.key for r in SyncService(a).records("setting").records] == ["greeting"]
    with pytest.raises(ValidationError):
        SyncService(a).records("payments")


async def test_status_shows_peers_without_secrets(net: Network) -> None:
    a = net.node("A")
    async with MultiBotSyncManager(a) as multi:
        multi.add_bot(
            BotSyncConfig(
                target_bot_token=TOKEN,
                target_bot_name="Store",
                webhook_url="https://store.example.com",
                webhook_secret="hush-hush-secret",
            )
        )
    a.create_payment_stage("s1", stage())
    status: dict[str, Any] = SyncService(a).status()
    text = repr(status)
    assert TOKEN not in text
    assert "hush-hush-secret" not in text
    assert status["node_id"] == "A"
    assert status["last_seq"] == 1
    (peer,) = status["peers"]
    assert peer["name"] == "Store"
    assert peer["webhook_url"] == "https://store.example.com/sync"
    assert peer["lag"] == 1
    assert status["pending_conflicts"] == 0
    info = SyncService(a).info()
    assert info.node_id == "A"
    assert info.last_seq == 1


async def test_a_configured_direction_is_enforced_on_the_serving_side(net: Network) -> None:
    a = net.node("A")
    a.create_payment_stage("s1", stage())
    async with MultiBotSyncManager(a) as multi:
        multi.add_bot(
            BotSyncConfig(
                target_bot_name="Pushed",
                webhook_url="https://b.example",
                direction=SyncDirection.PUSH,
            )
        )
        multi.add_bot(
            BotSyncConfig(
                target_bot_name="Pulled",
                webhook_url="https://c.example",
                direction=SyncDirection.PULL,
            )
        )
    a.store.set_cursor("Pushed", "push", Cursor(0, "B"))
    a.store.set_cursor("Pulled", "pull", Cursor(0, "C"))
    service = SyncService(a)
    before = snapshot(a)
    with pytest.raises(AccessDenied, match="'Pushed' is configured here as PUSH"):
        service.apply([rec({"B": 1}, node="B", key="intruder")], sender="B")
    assert snapshot(a) == before
    assert [r.key for r in service.changes(0, 10, None, requester="B").records] == ["s1"]
    with pytest.raises(AccessDenied, match="'Pulled' is configured here as PULL"):
        service.changes(0, 10, None, requester="C")
    accepted = service.apply([rec({"C": 1}, node="C", key="welcome")], sender="C")
    assert [i.outcome for i in accepted.results] == [Outcome.APPLIED]
