"""Promo codes: rules, discount math, expiry, usage counting; rejections change nothing."""

from __future__ import annotations

import time
from typing import Any

import pytest

from neonpay import DiscountType, NeonPay
from neonpay.errors import NotFoundError, ValidationError

from .store_state import nothing_changes

PCT = DiscountType.PERCENTAGE
FIXED = DiscountType.FIXED_AMOUNT


@pytest.mark.parametrize(
    ("args", "field", "rule"),
    [
        ({"code": "AB"}, "code", "3-32"),
        ({"code": "X" * 33}, "code", "3-32"),
        ({"code": "HAS SPACE"}, "code", "A-Z"),
        ({"code": "ÄÖÜ"}, "code", "A-Z"),
        ({"code": "a.b.c"}, "code", "A-Z"),
        ({"code": 123}, "code", "string"),
        ({"discount_value": 0}, "discount_value", "at least 1"),
        ({"discount_value": 101}, "discount_value", "at most 100"),
        ({"discount_value": -5}, "discount_value", "at least 1"),
        ({"discount_value": True}, "discount_value", "whole number"),
        ({"discount_value": 10.5}, "discount_value", "whole number"),
        ({"discount_type": FIXED, "discount_value": 0}, "discount_value", "at least 1"),
        ({"discount_type": "bogus"}, "discount_type", "percentage"),
        ({"max_uses": 0}, "max_uses", "at least 1"),
        ({"min_amount": 0}, "min_amount", "at least 1"),
        ({"expires_at": "tomorrow"}, "expires_at", "Unix"),
        ({"expires_at": True}, "expires_at", "Unix"),
        ({"allowed_user_ids": [0]}, "allowed_user_ids", "at least 1"),
        ({"allowed_user_ids": ["7"]}, "allowed_user_ids", "whole number"),
        ({"allowed_user_ids": 7}, "allowed_user_ids", "list"),
        ({"allowed_user_ids": "7"}, "allowed_user_ids", "list"),
        ({"description": "d" * 256}, "description", "0-255"),
        ({"active": "yes"}, "active", "true or false"),
    ],
)
def test_a_bad_promo_code_is_refused(
    np: NeonPay, args: dict[str, Any], field: str, rule: str
) -> None:
    np.promotions.create_promo_code("KEEP", PCT, 10)
    full: dict[str, Any] = {"code": "NEW", "discount_type": PCT, "discount_value": 10, **args}
    with nothing_changes(np), pytest.raises(ValidationError, match=rule) as info:
        np.promotions.create_promo_code(**full)
    assert info.value.field == field
    assert np.promotions.get_promo_code("NEW") is None


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"discount_value": 10_001}, "discount_value"),
        ({"discount_value": 0}, "discount_value"),
        ({"discount_type": "bogus"}, "discount_type"),
        ({"discount_type": PCT, "discount_value": 500}, "discount_value"),
        ({"max_uses": -1}, "max_uses"),
        ({"allowed_user_ids": 5}, "allowed_user_ids"),
        ({"description": "d" * 256}, "description"),
        ({"colour": "red"}, "colour"),
        ({"used_count": 0}, "used_count"),  # usage is a counter, never a field
    ],
)
def test_a_bad_update_is_refused(np: NeonPay, changes: dict[str, Any], field: str) -> None:
    created = np.promotions.create_promo_code("KEEP", FIXED, 50)
    with nothing_changes(np), pytest.raises(ValidationError) as info:
        np.promotions.update_promo_code("KEEP", **changes)
    assert info.value.field == field
    assert np.promotions.get_promo_code("KEEP") == created


def test_codes_are_case_insensitive_and_stored_upper_case(np: NeonPay) -> None:
    created = np.promotions.create_promo_code("  save-10_x ", PCT, 10)
    assert created.code == "SAVE-10_X"
    assert np.promotions.get_promo_code("save-10_x") == created
    assert np.store.get("promo_code", "SAVE-10_X") is not None
    assert np.promotions.get_promo_code("no") is None  # malformed: simply not there
    assert np.promotions.remove_promo_code("no") is False


def test_crud(np: NeonPay) -> None:
    a = np.promotions.create_promo_code("AAA", PCT, 10, description="ten")
    b = np.create_promo_code("BBB", FIXED, 5, max_uses=3, min_amount=20, allowed_user_ids=[9, 2])
    assert b.allowed_user_ids == (2, 9)
    assert np.promotions.list_promo_codes() == [a, b]

    updated = np.promotions.update_promo_code("bbb", discount_value=7, discount_type=FIXED)
    assert updated.discount_value == 7
    assert np.promotions.get_promo_code("BBB") == updated
    assert np.promotions.deactivate_promo_code("AAA") is True
    assert np.promotions.deactivate_promo_code("ZZZ") is False
    assert [p.code for p in np.promotions.list_promo_codes(active_only=True)] == ["BBB"]
    assert np.promotions.remove_promo_code("aaa") is True
    assert np.promotions.remove_promo_code("AAA") is False
    assert [p.code for p in np.promotions.list_promo_codes()] == ["BBB"]


def test_recreating_the_same_code_is_a_no_op(np: NeonPay) -> None:
    np.promotions.create_promo_code("SAME", PCT, 10, allowed_user_ids=(3, 1))
    with nothing_changes(np):
        np.promotions.create_promo_code("same", "percentage", 10, allowed_user_ids=[1, 3])
        np.promotions.update_promo_code("SAME", discount_value=10)


def test_updating_a_missing_code_is_not_found(np: NeonPay) -> None:
    with nothing_changes(np), pytest.raises(NotFoundError):
        np.promotions.update_promo_code("NOPE", discount_value=5)


@pytest.mark.parametrize(
    ("kind", "value", "amount", "discount", "final"),
    [
        (PCT, 10, 99, 9, 90),  # 9.9 rounds down: the discount is floored
        (PCT, 33, 10, 3, 7),
        (PCT, 50, 3, 1, 2),
        (PCT, 99, 1, 0, 1),
        (PCT, 100, 50, 49, 1),  # never below 1 Star
        (PCT, 1, 50, 0, 50),
        (FIXED, 5, 100, 5, 95),
        (FIXED, 49, 50, 49, 1),
    ],
)
def test_apply_and_validate_math(
    np: NeonPay, kind: DiscountType, value: int, amount: int, discount: int, final: int
) -> None:
    np.promotions.create_promo_code("CODE", kind, value)
    with nothing_changes(np):  # quoting a price counts no use
        quote = np.promotions.apply("code", amount=amount, user_id=1)
        ok, message, promo = np.promotions.validate("CODE", 1, amount)
    assert (quote.original_price, quote.discount, quote.final_price) == (amount, discount, final)
    assert quote.code == "CODE"
    assert ok
    assert promo is not None
    assert promo.discount_for(amount) == discount
    assert "applied" in message


@pytest.mark.parametrize("amount", [50, 49, 1])
def test_a_fixed_discount_must_stay_below_the_price(np: NeonPay, amount: int) -> None:
    np.promotions.create_promo_code("FIFTY", FIXED, 50)
    with nothing_changes(np):
        ok, message, _ = np.promotions.validate("FIFTY", 1, amount)
        assert not ok
        assert "more than the price" in message
        with pytest.raises(ValidationError, match="more than the price"):
            np.promotions.apply("FIFTY", amount=amount)


def test_unknown_code(np: NeonPay) -> None:
    assert np.promotions.validate("NOPE", 1, 10) == (False, "Invalid promo code", None)
    with pytest.raises(NotFoundError):
        np.promotions.apply("NOPE", amount=10)


def test_expiry(np: NeonPay) -> None:
    now = time.time()
    np.promotions.create_promo_code("OLD", PCT, 10, expires_at=now - 1)
    np.promotions.create_promo_code("NEW", PCT, 10, expires_at=now + 3600)
    ok, message, _ = np.promotions.validate("OLD", 1, 100)
    assert not ok
    assert "expired" in message
    with pytest.raises(ValidationError, match="expired"):
        np.promotions.apply("OLD", amount=100)
    assert np.promotions.validate("NEW", 1, 100)[0]
    promo = np.promotions.get_promo_code("NEW")
    assert promo is not None
    assert promo.check(1, 100, now=now + 3600) is not None  # expires at that instant
    assert promo.check(1, 100, now=now + 3599) is None


def test_max_uses_counts_uses_through_record_use(np: NeonPay) -> None:
    np.promotions.create_promo_code("TWICE", PCT, 10, max_uses=2)
    assert np.promotions.record_use("twice") == 1
    assert np.promotions.validate("TWICE", 1, 100)[0]
    assert np.promotions.record_use("TWICE") == 2
    ok, message, promo = np.promotions.validate("TWICE", 1, 100)
    assert not ok
    assert "used up" in message
    assert promo is not None
    assert promo.used_count == 2
    assert np.promotions.usage("TWICE") == 2
    # the count is a per-node counter record, never a field of the code
    usage = np.store.get("promo_usage", "TWICE")
    assert usage is not None
    assert usage.fields == {np.node_id: 2}
    code = np.store.get("promo_code", "TWICE")
    assert code is not None
    assert "used_count" not in code.fields


def test_apply_promo_code_counts_one_use(np: NeonPay) -> None:
    np.promotions.create_promo_code("ONCE", PCT, 50, max_uses=1)
    ok, price, promo = np.promotions.apply_promo_code("ONCE", 1, 100)
    assert (ok, price) == (True, 50)
    assert promo is not None
    assert promo.used_count == 1
    with nothing_changes(np):
        ok, message, promo = np.promotions.apply_promo_code("ONCE", 1, 100)
    assert not ok
    assert "used up" in str(message)
    assert promo is None


@pytest.mark.parametrize("count", [0, -3, True, 1.5, "2"])
def test_record_use_only_counts_up(np: NeonPay, count: Any) -> None:
    np.promotions.create_promo_code("CODE", PCT, 10)
    np.promotions.record_use("CODE")
    with nothing_changes(np), pytest.raises(ValidationError):
        np.promotions.record_use("CODE", count)
    assert np.promotions.usage("CODE") == 1
    assert np.promotions.record_use("CODE", 2.0) == 3  # type: ignore[arg-type]
    usage = np.store.get("promo_usage", "CODE")
    assert usage is not None
    assert usage.fields == {np.node_id: 3}
    assert isinstance(usage.fields[np.node_id], int)


def test_min_amount(np: NeonPay) -> None:
    np.promotions.create_promo_code("BIG", PCT, 10, min_amount=100)
    ok, message, _ = np.promotions.validate("BIG", 1, 99)
    assert not ok
    assert "at least 100" in message
    assert np.promotions.validate("BIG", 1, 100)[0]
    assert np.promotions.apply("BIG", amount=100).final_price == 90


def test_allowed_users(np: NeonPay) -> None:
    np.promotions.create_promo_code("VIP", PCT, 10, allowed_user_ids=[5, 7])
    assert np.promotions.validate("VIP", 5, 100)[0]
    assert np.promotions.validate("VIP", 7, 100)[0]
    for user in (6, None):
        ok, message, _ = np.promotions.validate("VIP", user, 100)
        assert not ok
        assert "not available" in message
    with pytest.raises(ValidationError, match="not available"):
        np.promotions.apply("VIP", amount=100, user_id=6)


def test_inactive_codes_are_refused(np: NeonPay) -> None:
    np.promotions.create_promo_code("OFF", PCT, 10, active=False)
    ok, message, _ = np.promotions.validate("OFF", 1, 100)
    assert not ok
    assert "not active" in message
