"""The decision about one incoming state, and the state algebra behind it (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from neonpay.errors import ValidationError
from neonpay.store.base import Outcome
from neonpay.sync.clock import Order, compare_versions
from neonpay.sync.decide import decide, expecting
from neonpay.sync.merge import merge_states, resolution_write, settle, state_equal

from .records import rec, stamp


def test_new_record_is_applied_and_marked_as_received() -> None:
    incoming = rec({"B": 1}, node="B")
    outcome = decide(incoming, None, sender="B")
    assert outcome.outcome is Outcome.APPLIED
    assert outcome.state is incoming
    assert outcome.received_from == "B"


def test_newer_applied_older_and_equal_known() -> None:
    old = rec({"A": 1})
    new = rec({"A": 2}, ms=5, price=20)
    assert decide(new, old, sender="B").outcome is Outcome.APPLIED
    assert decide(old, new, sender="B").outcome is Outcome.KNOWN
    assert decide(new, new, sender="B").outcome is Outcome.KNOWN


def test_concurrent_edits_are_a_conflict() -> None:
    base_a = rec({"A": 2, "B": 1}, ms=5, price=20)
    base_b = rec({"A": 1, "B": 2}, ms=6, node="B", price=30)
    outcome = decide(base_b, base_a, sender="B")
    assert outcome.outcome is Outcome.CONFLICT
    assert outcome.local is base_a
    assert outcome.state is None


def test_equal_versions_with_different_content_converge_on_one_side() -> None:
    one = rec({"A": 1, "B": 1}, ms=5, price=20)
    two = rec({"A": 1, "B": 1}, ms=5, price=30)
    forward = decide(one, two, sender="X").outcome
    backward = decide(two, one, sender="X").outcome
    assert {forward, backward} == {Outcome.APPLIED, Outcome.KNOWN}


def test_promo_usage_merges_by_maximum_and_is_never_a_conflict() -> None:
    ours = rec({"A": 3}, kind="promo_usage", key="SALE", fields={"A": 3, "B": 1})
    theirs = rec(
        {"A": 1, "B": 2}, kind="promo_usage", key="SALE", node="B", fields={"A": 1, "B": 2}
    )
    outcome = decide(theirs, ours, sender="B")
    assert outcome.outcome is Outcome.APPLIED
    assert outcome.state is not None
    assert dict(outcome.state.fields) == {"A": 3, "B": 2}
    assert dict(outcome.state.version) == {"A": 3, "B": 2}
    assert outcome.received_from is None  # the merge differs from what B sent: send it back


def test_two_deletes_and_equal_edits_are_not_conflicts() -> None:
    gone_a = rec({"A": 2}, ms=3, deleted=True)
    gone_b = rec({"A": 1, "B": 1}, ms=4, node="B", deleted=True)
    outcome = decide(gone_b, gone_a, sender="B")
    assert outcome.outcome is Outcome.APPLIED
    assert outcome.state is not None
    assert outcome.state.deleted
    same_a = rec({"A": 2}, ms=3, price=50)
    same_b = rec({"A": 1, "B": 1}, ms=4, node="B", price=50)
    outcome = decide(same_b, same_a, sender="B")
    assert outcome.outcome is Outcome.APPLIED
    assert outcome.state is not None
    assert outcome.state.fields["price"] == 50


def test_two_resolutions_take_the_later_stamp_on_both_sides() -> None:
    r_a = rec({"A": 3, "B": 1}, ms=10, price=20, resolution=True)
    r_b = rec({"A": 1, "B": 3}, ms=11, node="B", price=30, resolution=True)
    at_a = settle(r_b, r_a)
    at_b = settle(r_a, r_b)
    assert at_a is not None
    assert at_b is not None
    assert state_equal(at_a, at_b)
    assert at_a.fields["price"] == 30
    assert at_a.resolution is True


def test_merge_keeps_one_sided_changes_and_takes_the_later_stamp() -> None:
    ancestor_ms = 1
    a = rec(
        {"A": 2, "B": 1},
        ms=10,
        title="New title",
        price=20,
        field_ms=dict.fromkeys(("description", "label", "photo_url"), (ancestor_ms, "A"))
        | {"payload": (ancestor_ms, "A"), "start_parameter": (ancestor_ms, "A")},
    )
    b = rec(
        {"A": 1, "B": 2},
        ms=12,
        node="B",
        description="New description",
        price=30,
        field_ms=dict.fromkeys(("title", "label", "photo_url"), (ancestor_ms, "A"))
        | {"payload": (ancestor_ms, "A"), "start_parameter": (ancestor_ms, "A")},
    )
    merged = merge_states(a, b)
    assert merged.fields["title"] == "New title"  # changed on A only
    assert merged.fields["description"] == "New description"  # changed on B only
    assert merged.fields["price"] == 30  # changed on both: B's stamp is later
    assert dict(merged.version) == {"A": 2, "B": 2}
    assert merged.resolution is False
    assert state_equal(merged, merge_states(b, a))  # both sides compute the same


def test_merge_breaks_ties_deterministically() -> None:
    a = rec({"A": 1}, ms=5, node="A", price=20, field_ms={"price": (5, "X")})
    b = rec({"B": 1}, ms=5, node="A", price=30, field_ms={"price": (5, "X")})
    assert state_equal(merge_states(a, b), merge_states(b, a))


def test_delete_against_edit_later_stamp_wins_whole() -> None:
    gone = rec({"A": 2}, ms=20, deleted=True)
    edited = rec({"A": 1, "B": 1}, ms=10, node="B", price=99)
    merged = merge_states(gone, edited)
    assert merged.deleted
    assert state_equal(merged, merge_states(edited, gone))
    later_edit = rec({"A": 1, "B": 1}, ms=30, node="B", price=99)
    revived = merge_states(gone, later_edit)
    assert not revived.deleted
    assert revived.fields["price"] == 99


def test_merge_that_breaks_a_rule_falls_back_to_the_later_state() -> None:
    fixed = {"discount_type": "fixed_amount", "discount_value": 500}
    percent = {"discount_type": "percentage", "discount_value": 50}
    a = rec(
        {"A": 1},
        ms=10,
        kind="promo_code",
        key="SALE",
        fields=fixed,
        field_ms={"discount_type": (1, "A")},
    )
    b = rec(
        {"B": 1},
        ms=12,
        node="B",
        kind="promo_code",
        key="SALE",
        fields=percent,
        field_ms={"discount_value": (1, "B")},
    )

    def check(kind: str, key: str, fields: Any) -> None:
        if fields["discount_type"] == "percentage" and fields["discount_value"] > 100:
            raise ValidationError("discount_value", "must be at most 100")

    assert dict(merge_states(a, b).fields) == {"discount_type": "percentage", "discount_value": 500}
    safe = merge_states(a, b, check)
    assert dict(safe.fields) == percent
    assert state_equal(safe, merge_states(b, a, check))


def test_resolution_write_dominates_both_sides() -> None:
    a = rec({"A": 2, "B": 1}, ms=50, price=20)
    b = rec({"A": 1, "B": 2}, ms=60, node="B", price=30)
    state = resolution_write(a, b, {**a.fields}, node_id="A")
    assert compare_versions(state.version, a.version) is Order.AFTER
    assert compare_versions(state.version, b.version) is Order.AFTER
    assert state.hlc > b.hlc
    assert state.resolution
    assert state.field_hlcs["price"] == state.hlc  # the disputed field: a new stamp
    agreed = {name: stamp for name, stamp in state.field_hlcs.items() if name != "price"}
    assert set(agreed.values()) == {b.hlc}  # the others keep the later of their stamps
    tomb = resolution_write(a, b, None, node_id="A")
    assert tomb.deleted
    assert not tomb.fields
    assert set(tomb.field_hlcs.values()) == {tomb.hlc}


@pytest.mark.parametrize("moved", [False, True])
def test_compare_and_set_writes_only_over_the_expected_state(moved: bool) -> None:
    local = rec({"A": 1})
    now = rec({"A": 2}, ms=5, price=11) if moved else local
    state = rec({"A": 2, "B": 2}, ms=9, price=40, resolution=True)
    outcome = expecting({("payment_stage", "s1"): local})(state, now)
    assert outcome.outcome is (Outcome.KNOWN if moved else Outcome.APPLIED)


def test_stamp_helper_sorts_like_time() -> None:
    assert stamp(1) < stamp(2) < stamp(2, counter=1)
