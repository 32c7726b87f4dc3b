"""What is committed stays: after close and reopen, in another process, after SIGKILL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from neonpay import DiscountType, PaymentStage, create_neonpay
from neonpay.core.templates import Template, TemplateCategory, TemplateProduct
from neonpay.errors import ConfigurationError
from neonpay.store import Cursor, PaymentRow, Store, SyncRunRow, open_store
from neonpay.sync.clock import HLC

from .invariants import assert_log_consistent
from .processes import run_python, start_python
from .records import put, remove

STAGE = "payment_stage"


@pytest.fixture
def opened() -> Iterator[list[Store]]:
    """Stores opened by a test, closed at its end."""
    stores: list[Store] = []
    yield stores
    for store in stores:
        store.close()


def reopen(url: str, opened: list[Store], node_id: str | None = None) -> Store:
    store = open_store(url, node_id=node_id)
    opened.append(store)
    return store


def test_everything_is_there_after_reopening(store_url: str, opened: list[Store]) -> None:
    first = reopen(store_url, opened)
    put(first, STAGE, "a", {"title": "A", "price": 5})
    put(first, STAGE, "b", {"title": "B"})
    remove(first, STAGE, "b")
    last = put(first, "promo_code", "SAVE", {"discount_value": 10})
    first.set_meta("owner", "me")
    first.save_peer("peer", {"url": "https://p.example/sync"})
    first.set_cursor("peer", "pull", Cursor(4, "node-x"))
    run_id = first.add_sync_run(SyncRunRow("peer", 1.0, 2.0, "completed", items_synced=3))
    conflict_id = first.add_conflict("peer", last, last)  # type: ignore[arg-type]
    first.add_payment(PaymentRow("ch", 1, "a", 5, created_at=10.0))
    first.remember_request_id("req-1", 100.0, 300.0)
    records = {k: first.list(k, include_deleted=True) for k in ("payment_stage", "promo_code")}
    log = assert_log_consistent(first)
    node_id = first.node_id
    first.close()

    second = reopen(store_url, opened)

    assert second.node_id == node_id
    assert {k: second.list(k, include_deleted=True) for k in records} == records
    assert assert_log_consistent(second) == log
    assert second.get_meta("owner") == "me"
    assert second.get_peer("peer") == {"url": "https://p.example/sync"}
    assert second.get_cursor("peer", "pull") == Cursor(4, "node-x")
    assert [r.id for r in second.list_sync_runs("peer")] == [run_id]
    conflict = second.get_conflict(conflict_id)
    assert conflict is not None
    assert conflict.status == "pending"
    payment = second.get_payment("ch")
    assert payment is not None
    assert payment.amount == 5
    assert second.remember_request_id("req-1", 101.0, 300.0) is False
    # the clock carried over: the next stamp and sequence follow the old ones
    assert last is not None
    nxt = put(second, STAGE, "c", {"title": "C"})
    assert nxt is not None
    assert nxt.seq == len(log) + 1
    assert HLC.decode(nxt.hlc) > HLC.decode(last.hlc)


def test_node_id_is_created_once_and_checked(store_url: str, opened: list[Store]) -> None:
    first = reopen(store_url, opened, node_id="alpha-1")
    assert first.node_id == "alpha-1"
    put(first, STAGE, "a", {"v": 1})
    first.close()

    assert reopen(store_url, opened).node_id == "alpha-1"
    assert reopen(store_url, opened, node_id="alpha-1").node_id == "alpha-1"
    with pytest.raises(ConfigurationError, match="alpha-1") as info:
        reopen(store_url, opened, node_id="beta-2")
    assert "beta-2" in str(info.value)
    again = reopen(store_url, opened)
    assert again.node_id == "alpha-1"
    assert again.last_seq() == 1


@pytest.mark.parametrize("bad", ["has space", "x" * 65, "dot.ted", "ünï", "a/b"])
def test_a_malformed_node_id_is_refused_for_a_new_store(
    store_url: str, opened: list[Store], bad: str
) -> None:
    with pytest.raises(ConfigurationError, match="node_id"):
        reopen(store_url, opened, node_id=bad)
    fresh = reopen(store_url, opened)  # nothing was kept from the refused attempt
    assert fresh.node_id.startswith("node-")


WRITE_CATALOG = """
import sys
from neonpay import DiscountType, PaymentStage, create_neonpay
from neonpay.core.templates import TemplateCategory, TemplateProduct

with create_neonpay(storage=sys.argv[1], node_id="writer-1") as np:
    np.create_payment_stage(
        "basic", PaymentStage("Basic", "The basic plan", 10, payload={"tier": 1})
    )
    np.create_payment_stage(
        "pro",
        PaymentStage(
            "Pro", "Everything", 250, label="Pro plan",
            photo_url="https://example.com/pro.png", start_parameter="pro-plan",
        ),
    )
    np.create_payment_stage("old", PaymentStage("Old", "Withdrawn", 5))
    np.remove_payment_stage("old")
    np.update_payment_stage("basic", price=12)
    np.promotions.create_promo_code(
        "save10", DiscountType.PERCENTAGE, 10, max_uses=100, allowed_user_ids=[7, 3],
        expires_at=4102444800.0, description="ten off",
    )
    np.promotions.create_promo_code("FLAT5", DiscountType.FIXED_AMOUNT, 5, min_amount=20)
    np.promotions.record_use("SAVE10")
    np.promotions.record_use("SAVE10")
    np.templates.create_template(
        "shop",
        description="The shop",
        categories=[TemplateCategory("c1", "Plans")],
        products=[TemplateProduct("p1", "Plan", 5, category_id="c1")],
        theme={"color": "blue"},
    )
    np.settings.set("thank_you_message", "Thanks!")
    np.settings.set("layout", {"columns": 2, "items": [1, 2.5, None, True]})
    print(np.node_id, np.store.last_seq())
"""


def test_a_catalog_written_by_another_process_is_read_back_whole(store_url: str) -> None:
    out = run_python(WRITE_CATALOG, store_url).split()
    assert out[0] == "writer-1"

    with create_neonpay(storage=store_url) as np:
        assert np.node_id == "writer-1"
        assert np.store.last_seq() == int(out[1])
        assert np.list_payment_stages() == {
            "basic": PaymentStage("Basic", "The basic plan", 12, payload={"tier": 1}),
            "pro": PaymentStage(
                "Pro",
                "Everything",
                250,
                label="Pro plan",
                photo_url="https://example.com/pro.png",
                start_parameter="pro-plan",
            ),
        }
        assert np.get_payment_stage("old") is None
        save = np.promotions.get_promo_code("SAVE10")
        assert save is not None
        assert (save.discount_type, save.discount_value, save.max_uses) == (
            DiscountType.PERCENTAGE,
            10,
            100,
        )
        assert (save.allowed_user_ids, save.expires_at, save.description) == (
            (3, 7),
            4102444800.0,
            "ten off",
        )
        assert save.used_count == 2
        assert [p.code for p in np.promotions.list_promo_codes()] == ["FLAT5", "SAVE10"]
        assert np.templates.list_templates() == {
            "shop": Template(
                "shop",
                "The shop",
                (TemplateProduct("p1", "Plan", 5, category_id="c1"),),
                (TemplateCategory("c1", "Plans"),),
                {"color": "blue"},
            )
        }
        assert np.settings.list() == {
            "layout": {"columns": 2, "items": [1, 2.5, None, True]},
            "thank_you_message": "Thanks!",
        }
        assert np.thank_you_message == "Thanks!"
        assert_log_consistent(np.store)


KILLED_WRITER = """
import sys
from neonpay import PaymentStage, create_neonpay

np = create_neonpay(storage=sys.argv[1])
print("ready", flush=True)
i = 0
while True:
    stage_id = f"stage-{i}"
    np.create_payment_stage(stage_id, PaymentStage("Stage", f"number {i}", 1 + i % 9999))
    if i % 3 == 2:
        np.update_payment_stage(f"stage-{i - 1}", price=7)
    print(stage_id, flush=True)
    i += 1
"""


def test_a_killed_writer_loses_no_committed_write(store_url: str) -> None:
    child = start_python(KILLED_WRITER, store_url)
    try:
        assert child.readline() == "ready"
        for _ in range(40):
            child.readline()
        printed = [line for line in child.kill() if line.startswith("stage-")]
    finally:
        child.ensure_dead()
    assert child.proc.returncode == -9
    assert len(printed) >= 40

    with create_neonpay(storage=store_url) as np:
        stages = np.list_payment_stages()
        for stage_id in printed:  # every acknowledged write is there
            assert stage_id in stages, stage_id
        # at most the write in flight committed without being printed
        assert len(printed) <= len(stages) <= len(printed) + 1
        for n in range(len(printed)):
            stage = stages[f"stage-{n}"]
            assert stage.description == f"number {n}"
            if n % 3 == 1 and f"stage-{n + 1}" in printed:
                assert stage.price == 7
        log = assert_log_consistent(np.store)
        assert len(log) == len(stages) + sum(
            1 for n in range(len(stages)) if n % 3 == 2 and stages[f"stage-{n - 1}"].price == 7
        )
        # the store keeps working where the dead writer stopped
        before = np.store.last_seq()
        np.create_payment_stage("after", PaymentStage("After", "restart", 3))
        assert np.store.last_seq() == before + 1
        assert_log_consistent(np.store)
