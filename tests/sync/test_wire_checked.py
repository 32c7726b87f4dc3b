"""RecordCheck.check(wire_checked=True) skips only what the wire codec has checked.

For every record the codec accepts, the shortened check must decide exactly as the full
one: the same verdict on the metadata, and the same outcome of ``check``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neonpay import create_neonpay
from neonpay.core.neonpay import NeonPay
from neonpay.errors import ValidationError
from neonpay.store.base import KINDS
from neonpay.sync.validation import RecordCheck, _plain_and_valid, _wire_rules_ok
from neonpay.web_sync import codec
from neonpay.web_sync.errors import WireError

_NOW_MS = int(time.time() * 1000)


def _stamp(ms: int, counter: int = 0, node: str = "node-a") -> str:
    return f"{ms:015d}.{counter:06d}.{node}"


_STAGE = {
    "title": "Coffee",
    "description": "A cup of coffee",
    "price": 25,
    "label": "Payment",
    "photo_url": None,
    "payload": None,
    "start_parameter": None,
}
_FIELDS: dict[str, dict[str, Any]] = {
    "payment_stage": _STAGE,
    "promo_code": {"discount_type": "percentage", "discount_value": 10},
    "template": {"title": "Hello", "body": "Hi there"},
    "setting": {"value": "on"},
    "promo_usage": {"node-a": 3},
}
_KEYS = {
    "payment_stage": "coffee",
    "promo_code": "SAVE10",
    "template": "welcome",
    "setting": "currency",
    "promo_usage": "SAVE10",
}

_keys = st.sampled_from(
    ["coffee", "Coffee-2", "bad key", "x" * 64, "x" * 65, "SAVE10", "save10", "_lead", "é"]
)
_counters = st.sampled_from([0, 1, 7, 2**53 - 1, 2**53, 2**63 - 1])
_ahead_ms = st.sampled_from([0, -5_000, 299_000, 301_000, 3_600_000, 86_400_000 + 60_000])
_extra_names = st.sampled_from(["", "old_field", "y" * 64, "z" * 65, "w" * 128])


@st.composite
def wire_records(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(KINDS))
    key = draw(st.one_of(st.just(_KEYS[kind]), _keys))
    deleted = draw(st.booleans())
    hlc = _stamp(_NOW_MS + draw(_ahead_ms))
    fields: dict[str, Any] = {} if deleted else dict(_FIELDS[kind])
    stamps: dict[str, str] = {}
    extra = draw(_extra_names)
    if extra:
        stamps[extra] = _stamp(_NOW_MS - 1000)
    nodes = draw(st.integers(min_value=1, max_value=3))
    version = {f"node-{chr(97 + i)}": draw(_counters) for i in range(nodes)}
    return {
        "kind": kind,
        "key": key,
        "fields": fields,
        "version": version,
        "hlc": hlc,
        "field_hlcs": stamps,
        "deleted": deleted,
        "origin": "node-a",
        "updated_at": time.time(),
        "resolution": draw(st.booleans()),
    }


@pytest.fixture(scope="module")
def checker(tmp_path_factory: pytest.TempPathFactory) -> RecordCheck:
    path: Path = tmp_path_factory.mktemp("wire") / "bot.db"
    bot: NeonPay = create_neonpay(storage=f"sqlite:///{path}", node_id="node-z")
    return RecordCheck(bot)


def _outcome(checker: RecordCheck, record: Any, *, wire_checked: bool) -> Any:
    try:
        return checker.check(record, wire_checked=wire_checked)
    except ValidationError as exc:
        return ("rejected", exc.field)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(wire=wire_records())
def test_the_short_check_decides_as_the_full_one(
    checker: RecordCheck, wire: dict[str, Any]
) -> None:
    try:
        record = codec.record_from_wire(wire, now=time.time())
    except WireError:
        return  # refused at the wire: never reaches the engine
    assert _wire_rules_ok(record) == _plain_and_valid(record), wire
    assert _outcome(checker, record, wire_checked=True) == _outcome(
        checker, record, wire_checked=False
    )


def test_rules_the_codec_does_not_know_are_still_enforced(checker: RecordCheck) -> None:
    base = {
        "kind": "payment_stage",
        "key": "coffee",
        "fields": dict(_STAGE),
        "version": {"node-a": 1},
        "hlc": _stamp(_NOW_MS),
        "field_hlcs": {},
        "deleted": False,
        "origin": "node-a",
        "updated_at": time.time(),
        "resolution": False,
    }
    cases = {
        "key": {**base, "key": "bad key"},
        "field_hlcs": {**base, "field_hlcs": {"z" * 65: _stamp(_NOW_MS - 5)}},
        "deleted": {
            **base,
            "kind": "promo_usage",
            "key": "SAVE10",
            "fields": {},
            "deleted": True,
        },
        "price": {**base, "fields": {**_STAGE, "price": 10**6}},
    }
    for field, wire in cases.items():
        record = codec.record_from_wire(wire, now=time.time())
        with pytest.raises(ValidationError) as caught:
            checker.check(record, wire_checked=True)
        assert caught.value.field == field, (field, caught.value)
    good = codec.record_from_wire(base, now=time.time())
    assert checker.check(good, wire_checked=True) is good


def test_a_record_not_from_the_codec_is_checked_in_full(checker: RecordCheck) -> None:
    record = codec.record_from_wire(
        {
            "kind": "payment_stage",
            "key": "coffee",
            "fields": dict(_STAGE),
            "version": {"node-a": 1},
            "hlc": _stamp(_NOW_MS),
            "field_hlcs": {},
            "deleted": False,
        },
        now=time.time(),
    )
    # a caller that wrongly claims wire_checked for a malformed stamp is not believed
    # about types: a non-string stamp falls through to the named checks
    from dataclasses import replace

    broken = replace(record, hlc=12345)  # type: ignore[arg-type]
    with pytest.raises(ValidationError) as caught:
        checker.check(broken, wire_checked=True)
    assert caught.value.field == "hlc"
