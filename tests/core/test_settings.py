"""Settings: known keys are checked, others hold any JSON value up to 16 KiB."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from neonpay import NeonPay, create_neonpay
from neonpay.core.settings import MAX_VALUE_BYTES
from neonpay.errors import NotFoundError, ValidationError

from .store_state import nothing_changes


@pytest.fixture
def np(tmp_path: Path) -> Iterator[NeonPay]:
    with create_neonpay(
        storage=f"sqlite:///{tmp_path / 'neonpay.db'}", thank_you_message="From the argument"
    ) as neonpay:
        yield neonpay


@pytest.mark.parametrize(
    ("name", "value", "field", "rule"),
    [
        ("thank_you_message", "", "thank_you_message", "1-4096"),
        ("thank_you_message", "t" * 4097, "thank_you_message", "1-4096"),
        ("thank_you_message", 5, "thank_you_message", "string"),
        ("enable_logging", "yes", "enable_logging", "true or false"),
        ("enable_logging", 1, "enable_logging", "true or false"),
        ("max_stages", 0, "max_stages", "at least 1"),
        ("max_stages", "10", "max_stages", "whole number"),
        ("max_stages", 100_001, "max_stages", "at most"),
        ("layout", object(), "layout", "JSON"),
        ("layout", {1, 2}, "layout", "JSON"),
        ("layout", {1: "int key"}, "layout", "JSON"),
        ("layout", "x" * MAX_VALUE_BYTES, "layout", "16384 bytes"),
        ("bad name", 1, "name", "letters"),
        ("", 1, "name", "1-64"),
    ],
)
def test_a_bad_setting_is_refused(
    np: NeonPay, name: str, value: Any, field: str, rule: str
) -> None:
    np.settings.set("thank_you_message", "Kept")
    np.settings.set("enable_logging", True)
    np.settings.set("max_stages", 10)
    np.settings.set("layout", {"columns": 2})
    with nothing_changes(np):
        with pytest.raises(ValidationError, match=rule) as info:
            np.settings.set(name, value)
        assert info.value.field == field
        if name in np.settings.list():
            with pytest.raises(ValidationError, match=rule):
                np.settings.update(name, value)
    assert np.settings.get("thank_you_message") == "Kept"


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        0,
        -1.5,
        "text",
        [],
        {},
        [1, "two", None, {"three": [3.0]}],
        {"nested": {"deep": {"list": [True, False]}}, "unicode": "ünï ✓"},
        "x" * (MAX_VALUE_BYTES - 2),  # exactly 16 KiB with its quotes
    ],
)
def test_free_form_settings_hold_any_json_value(np: NeonPay, value: Any) -> None:
    assert np.settings.set("custom", value) == value
    assert np.settings.get("custom") == value
    assert np.settings.list() == {"custom": value}


def test_crud(np: NeonPay) -> None:
    assert np.settings.get("missing") is None
    assert np.settings.get("missing", "default") == "default"
    np.settings.set("a", 1)
    np.settings.create_setting("b", {"x": 1})
    assert np.settings.list_settings() == {"a": 1, "b": {"x": 1}}
    assert np.settings.update("a", 2) == 2
    assert np.settings.get_setting("a") == 2
    assert np.settings.remove("a") is True
    assert np.settings.remove("a") is False
    assert np.settings.list() == {"b": {"x": 1}}
    with nothing_changes(np), pytest.raises(NotFoundError):
        np.settings.update("a", 3)


def test_setting_the_same_value_is_a_no_op(np: NeonPay) -> None:
    np.settings.set("layout", {"items": (1, 2)})
    with nothing_changes(np):
        np.settings.set("layout", {"items": [1, 2]})
        np.settings.update("layout", {"items": (1, 2)})
    assert np.settings.get("layout") == {"items": [1, 2]}


def test_the_thank_you_message_setting_wins_over_the_argument(np: NeonPay) -> None:
    assert np.thank_you_message == "From the argument"
    np.thank_you_message = "From the setting"
    assert np.settings.get("thank_you_message") == "From the setting"
    assert np.thank_you_message == "From the setting"
    with pytest.raises(ValidationError):
        np.thank_you_message = ""
    assert np.thank_you_message == "From the setting"
    np.settings.remove("thank_you_message")
    assert np.thank_you_message == "From the argument"
