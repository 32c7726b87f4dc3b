"""The value rules of :mod:`neonpay.limits` through the Python API, on SQLite and
PostgreSQL: every bad value is a ValidationError naming the field, and nothing changes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from neonpay import PaymentStage, create_neonpay
from neonpay.core.neonpay import NeonPay
from neonpay.errors import ValidationError
from neonpay.limits import (
    MAX_INT,
    MAX_JSON_DEPTH,
    DuplicateKeyError,
    check_json_value,
    deeper_than,
    json_value_problem,
    loads_checked,
)
from neonpay.store.base import KINDS


def nested(depth: int) -> Any:
    """A list nested ``depth`` levels (``[]`` is one)."""
    value: Any = []
    for _ in range(depth - 1):
        value = [value]
    return value


@pytest.fixture
def node(store_url: str) -> Iterator[NeonPay]:
    neonpay = create_neonpay(storage=store_url)
    neonpay.create_payment_stage("kept", PaymentStage("Kept", "A stage", price=5))
    neonpay.settings.set("kept", {"a": [1, 2]})
    yield neonpay
    neonpay.close()


def state(node: NeonPay) -> dict[str, Any]:
    return {
        kind: {r.key: (dict(r.fields), dict(r.version)) for r in node.store.list(kind)}
        for kind in KINDS
    }


BAD_CALLS: list[tuple[str, str, Callable[[NeonPay], object]]] = [
    (
        "title",
        "valid Unicode",
        lambda n: n.create_payment_stage("s", PaymentStage("ab\udcff", "d", price=5)),
    ),
    (
        "description",
        "valid Unicode",
        lambda n: n.create_payment_stage("s", PaymentStage("ab", "\ud800", price=5)),
    ),
    (
        "payload",
        "valid Unicode",
        lambda n: n.create_payment_stage("s", PaymentStage("ab", "d", price=5, payload="x\ud800")),
    ),
    (
        "payload",
        "lone surrogate",
        lambda n: n.create_payment_stage(
            "s", PaymentStage("ab", "d", price=5, payload={"k": "\udcff"})
        ),
    ),
    (
        "photo_url",
        "valid Unicode",
        lambda n: n.create_payment_stage(
            "s", PaymentStage("ab", "d", price=5, photo_url="https://x.example/\udcff")
        ),
    ),
    ("price", "at most", lambda n: n.create_payment_stage("s", PaymentStage("a", "d", 2**70))),
    (
        "max_uses",
        "at most",
        lambda n: n.create_promo_code("ABC", "percentage", 5, max_uses=2**70),
    ),
    (
        "allowed_user_ids",
        "at most",
        lambda n: n.create_promo_code("ABC", "percentage", 5, allowed_user_ids=[2**70]),
    ),
    (
        "min_amount",
        "at most",
        lambda n: n.create_promo_code("ABC", "percentage", 5, min_amount=2**64),
    ),
    (
        "expires_at",
        "Unix",
        lambda n: n.create_promo_code("ABC", "percentage", 5, expires_at=float("nan")),
    ),
    (
        "description",
        "valid Unicode",
        lambda n: n.create_promo_code("ABC", "percentage", 5, description="\udcff"),
    ),
    ("code", "A-Z", lambda n: n.create_promo_code("AB\udcff", "percentage", 5)),
    ("deep", "nests more than 32", lambda n: n.settings.set("deep", nested(252))),
    ("deep", "nests more than 32", lambda n: n.settings.set("deep", nested(33))),
    ("text", "lone surrogate", lambda n: n.settings.set("text", {"a": ["\ud800"]})),
    ("key", "not valid Unicode", lambda n: n.settings.set("key", {"\udcff": 1})),
    ("big", "outside 64 bits", lambda n: n.settings.set("big", [2**63])),
    ("nan", "finite", lambda n: n.settings.set("nan", float("inf"))),
    ("kept", "nests more than 32", lambda n: n.settings.update("kept", nested(40))),
    (
        "title",
        "valid Unicode",
        lambda n: n.update_payment_stage("kept", title="\udcff"),
    ),
]


@pytest.mark.parametrize(
    ("field", "rule", "call"), BAD_CALLS, ids=[f"{f}-{i}" for i, (f, _, _) in enumerate(BAD_CALLS)]
)
def test_a_bad_value_is_a_validation_error_and_changes_nothing(
    node: NeonPay, field: str, rule: str, call: Callable[[NeonPay], object]
) -> None:
    before = state(node)
    with pytest.raises(ValidationError, match=rule) as info:
        call(node)
    assert info.value.field == field
    assert state(node) == before


def test_values_at_the_limits_are_stored_intact(node: NeonPay) -> None:
    node.settings.set("deepest", nested(MAX_JSON_DEPTH))
    node.settings.set("widest", [MAX_INT, -(2**63), 1.5, "é✓😀", {"ключ": None}])
    node.create_promo_code("EDGE", "percentage", 5, max_uses=MAX_INT, allowed_user_ids=[MAX_INT])
    node.create_payment_stage("uni", PaymentStage("Премиум 😀", "описание", price=5))
    assert node.settings.get("deepest") == nested(MAX_JSON_DEPTH)
    assert node.settings.get("widest") == [MAX_INT, -(2**63), 1.5, "é✓😀", {"ключ": None}]
    promo = node.promotions.get_promo_code("EDGE")
    assert promo is not None
    assert promo.max_uses == MAX_INT
    stage = node.get_payment_stage("uni")
    assert stage is not None
    assert stage.title == "Премиум 😀"


def test_json_value_rules() -> None:
    assert json_value_problem(nested(MAX_JSON_DEPTH)) is None
    assert json_value_problem(nested(MAX_JSON_DEPTH + 1)) is not None
    assert json_value_problem(nested(100_000)) is not None  # no recursion, no crash
    assert not deeper_than(nested(MAX_JSON_DEPTH))
    assert deeper_than(nested(MAX_JSON_DEPTH + 1))
    assert deeper_than({"a": [{"b": nested(31)}]})
    assert json_value_problem({1: 2}) is not None
    assert json_value_problem(object()) is not None
    with pytest.raises(ValidationError, match="JSON value"):
        check_json_value(b"bytes", "value")


@pytest.mark.parametrize(
    "text",
    [b'{"a":1,"a":2}', b'{"b": {"x": 1, "x": 1}}', b'[{"k":1},{"k":2,"k":3}]'],
)
def test_a_repeated_key_is_refused(text: bytes) -> None:
    with pytest.raises(DuplicateKeyError, match="appears twice"):
        loads_checked(text)


def test_json_without_repeated_keys_loads() -> None:
    assert loads_checked(b'{"a": 1, "b": {"a": 2}}') == {"a": 1, "b": {"a": 2}}
    assert loads_checked(b'{"a":1,"b":[{"a":2}]}') == {"a": 1, "b": [{"a": 2}]}
    with pytest.raises(ValueError, match=r"."):
        loads_checked(b'{"a":')
