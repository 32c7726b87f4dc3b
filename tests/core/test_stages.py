"""Payment stages: every Bot API rule refuses bad input and leaves the store unchanged."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from neonpay import NeonPay, PaymentStage, create_neonpay
from neonpay.errors import NotFoundError, ValidationError

from .store_state import nothing_changes

GOOD: dict[str, Any] = {"title": "Basic", "description": "The basic plan", "price": 10}


def stage(**changes: Any) -> PaymentStage:
    return PaymentStage(**{**GOOD, **changes})


BAD_FIELDS: list[tuple[str, Any, str]] = [
    ("title", "", "1-32"),
    ("title", "x" * 33, "1-32"),
    ("title", "   ", "blank"),
    ("title", 5, "string"),
    ("title", None, "string"),
    ("description", "", "1-255"),
    ("description", "d" * 256, "1-255"),
    ("description", b"bytes", "string"),
    ("price", 0, "at least 1"),
    ("price", -5, "at least 1"),
    ("price", 10_001, "at most 10000"),
    ("price", True, "whole number"),
    ("price", 5.0, "whole number"),
    ("price", 5.5, "whole number"),
    ("price", "5", "whole number"),
    ("price", None, "whole number"),
    ("payload", "p" * 129, "128 bytes"),
    ("payload", "é" * 65, "128 bytes"),  # 130 bytes in UTF-8
    ("payload", {"data": "x" * 120}, "128 bytes"),
    ("payload", {1, 2}, "JSON"),
    ("payload", object(), "JSON"),
    ("start_parameter", "s" * 65, "64"),
    ("start_parameter", "has space", "A-Z"),
    ("start_parameter", "ünicode", "A-Z"),
    ("start_parameter", "a.b", "A-Z"),
    ("start_parameter", "", "non-empty"),
    ("photo_url", "ftp://example.com/a.png", "http"),
    ("photo_url", "example.com/a.png", "http"),
    ("photo_url", "javascript:alert(1)", "http"),
    ("photo_url", "https://", "http"),
    ("photo_url", "https://e.com/" + "a" * 2048, "2048"),
    ("photo_url", 5, "URL"),
    ("label", "", "1-32"),
    ("label", "l" * 33, "1-32"),
    ("provider_token", "284685063:TEST:abc", "empty"),
]


@pytest.mark.parametrize(("field", "value", "rule"), BAD_FIELDS)
def test_a_bad_field_is_refused_on_create_and_on_update(
    np: NeonPay, field: str, value: Any, rule: str
) -> None:
    np.create_payment_stage("basic", stage())
    with nothing_changes(np):
        with pytest.raises(ValidationError, match=rule) as created:
            np.create_payment_stage("other", stage(**{field: value}))
        assert created.value.field == field
        assert created.value.kind == "payment_stage"
        assert f"payment_stage.{field}" in str(created.value)
        if field != "provider_token":  # not a stored field: refused as unknown below
            with pytest.raises(ValidationError, match=rule) as updated:
                np.update_payment_stage("basic", **{field: value})
            assert updated.value.field == field
    assert np.get_payment_stage("basic") == stage()
    assert np.get_payment_stage("other") is None


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("title", "t"),
        ("title", "T" * 32),
        ("description", "d"),
        ("description", "d" * 255),
        ("price", 1),
        ("price", 10_000),
        ("payload", "p" * 128),
        ("payload", "é" * 64),  # 128 bytes
        ("payload", {"tier": 2, "tags": ["a", "b"]}),
        ("payload", None),
        ("start_parameter", "s" * 64),
        ("start_parameter", "Az09_-"),
        ("photo_url", "https://example.com/a.png"),
        ("photo_url", "http://127.0.0.1:8080/a.png"),
        ("label", "L" * 32),
    ],
)
def test_limits_are_inclusive(np: NeonPay, field: str, value: Any) -> None:
    created = np.create_payment_stage("s", stage(**{field: value}))
    assert getattr(created, field) == value
    assert np.get_payment_stage("s") == created
    np.update_payment_stage(
        "s", **{field: GOOD.get(field, PaymentStage.__dataclass_fields__[field].default)}
    )
    updated = np.update_payment_stage("s", **{field: value})
    assert getattr(updated, field) == value


@pytest.mark.parametrize(
    "stage_id",
    ["", "x" * 65, "has space", "-leading", "_leading", "ünï", "a/b", "a#b", 5, None],
)
def test_a_bad_stage_id_is_refused(np: NeonPay, stage_id: Any) -> None:
    with nothing_changes(np), pytest.raises(ValidationError) as info:
        np.create_payment_stage(stage_id, stage())
    assert info.value.field == "stage_id"


@pytest.mark.parametrize("stage_id", ["a", "x" * 64, "Plan_1.monthly:v2-b", "42"])
def test_good_stage_ids(np: NeonPay, stage_id: str) -> None:
    np.create_payment_stage(stage_id, stage())
    assert list(np.list_payment_stages()) == [stage_id]


def test_the_price_cap_is_configurable(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'capped.db'}"
    with create_neonpay(storage=url, max_price=500) as np:
        assert np.max_price == 500
        np.create_payment_stage("s", stage(price=500))
        with nothing_changes(np):
            with pytest.raises(ValidationError, match="at most 500"):
                np.create_payment_stage("t", stage(price=501))
            with pytest.raises(ValidationError, match="at most 500"):
                np.update_payment_stage("s", price=501)
        assert np.get_payment_stage("s") == stage(price=500)
    with create_neonpay(storage=url, max_price=20_000) as np:  # above the default cap too
        np.create_payment_stage("big", stage(price=20_000))
        assert np.get_payment_stage("big") == stage(price=20_000)


def test_create_get_list_update_remove(np: NeonPay) -> None:
    assert np.list_payment_stages() == {}
    basic = np.create_payment_stage("basic", stage())
    pro = np.create_payment_stage("pro", stage(title="Pro", price=99, payload={"tier": 2}))

    assert basic == stage()
    assert np.get_payment_stage("basic") == basic
    assert np.get_payment_stage("missing") is None
    assert np.get_payment_stage("bad id!") is None
    assert np.list_payment_stages() == {"basic": basic, "pro": pro}

    updated = np.update_payment_stage("pro", price=120, description="More")
    assert updated == stage(title="Pro", price=120, payload={"tier": 2}, description="More")
    assert np.get_payment_stage("pro") == updated

    assert np.remove_payment_stage("basic") is True
    assert np.remove_payment_stage("basic") is False
    assert np.remove_payment_stage("never") is False
    assert np.get_payment_stage("basic") is None
    assert list(np.list_payment_stages()) == ["pro"]
    # create, create, update, delete: four changes
    assert np.store.last_seq() == 4


def test_recreating_the_same_stage_is_a_no_op(np: NeonPay) -> None:
    np.create_payment_stage("s", stage(payload=("a", 1)))
    with nothing_changes(np):
        np.create_payment_stage("s", stage(payload=("a", 1)))
        np.create_payment_stage("s", stage(payload=["a", 1]))
        np.update_payment_stage("s", price=GOOD["price"])
    assert np.store.last_seq() == 1
    assert np.get_payment_stage("s") == stage(payload=["a", 1])


def test_an_update_names_an_unknown_field(np: NeonPay) -> None:
    np.create_payment_stage("s", stage())
    with nothing_changes(np), pytest.raises(ValidationError) as info:
        np.update_payment_stage("s", price=20, colour="red")
    assert info.value.field == "colour"
    assert "not a payment stage field" in str(info.value)


def test_updating_a_missing_stage_is_not_found(np: NeonPay) -> None:
    np.create_payment_stage("s", stage())
    np.remove_payment_stage("s")
    with nothing_changes(np):
        with pytest.raises(NotFoundError, match="missing"):
            np.update_payment_stage("missing", price=5)
        with pytest.raises(NotFoundError):
            np.update_payment_stage("s", price=5)  # deleted
    assert np.get_payment_stage("s") is None


def test_the_stage_limit(tmp_path: Path) -> None:
    with create_neonpay(storage=f"sqlite:///{tmp_path / 'db.db'}", max_stages=2) as np:
        np.create_payment_stage("a", stage())
        np.create_payment_stage("b", stage())
        with nothing_changes(np), pytest.raises(ValidationError, match="maximum of 2"):
            np.create_payment_stage("c", stage())
        np.create_payment_stage("a", stage(price=11))  # replacing is not adding
        np.remove_payment_stage("b")
        np.create_payment_stage("c", stage())
        assert sorted(np.list_payment_stages()) == ["a", "c"]


def test_a_change_listener_hears_each_real_change_once(np: NeonPay) -> None:
    heard: list[tuple[str, int, bool]] = []
    np.add_change_listener(lambda r: heard.append((r.key, r.seq, r.deleted)))
    np.create_payment_stage("s", stage(payload=("x",)))
    np.create_payment_stage("s", stage(payload=["x"]))  # same as stored: silent
    np.update_payment_stage("s", price=11)
    with pytest.raises(ValidationError):
        np.update_payment_stage("s", price=0)
    np.remove_payment_stage("s")
    np.remove_payment_stage("s")
    assert heard == [("s", 1, False), ("s", 2, False), ("s", 3, True)]
