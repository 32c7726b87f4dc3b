"""The printer: plain tables, colour decisions, JSON mode and masking (in-process)."""

from __future__ import annotations

import io
import json

import pytest

from neonpay.cli.demo.snapshot import diff
from neonpay.cli.output import Output, colour_wanted, render_plain_table

TOKEN = "123456:ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghi"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_table_is_aligned_and_readable() -> None:
    text = render_plain_table(
        [("id", "ID"), ("price", "Price"), ("active", "Active"), ("note", "Note")],
        [
            {"id": "premium", "price": 100, "active": True, "note": None},
            {"id": "b", "price": 5, "active": False, "note": "x"},
        ],
        title="Stages",
    )
    assert text.splitlines() == [
        "Stages",
        "ID       Price  Active  Note",
        "-------  -----  ------  ----",
        "premium  100    yes     -",
        "b        5      no      x",
    ]


def test_colour_only_on_a_terminal_without_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert colour_wanted(Terminal()) is True
    assert colour_wanted(io.StringIO()) is False
    assert colour_wanted(Terminal(), disabled=True) is False
    monkeypatch.setenv("NO_COLOR", "1")
    assert colour_wanted(Terminal()) is False


def test_json_mode_keeps_stdout_parseable_and_masks_tokens() -> None:
    stdout, stderr = io.StringIO(), io.StringIO()
    out = Output(json_mode=True, stdout=stdout, stderr=stderr)
    out.line(f"syncing with a bot whose token is {TOKEN}")
    out.table([("id", "ID")], [{"id": "x"}])
    out.error(f"failed:\n  token {TOKEN}")
    out.json({"ok": True})
    assert json.loads(stdout.getvalue()) == {"ok": True}
    assert TOKEN not in stderr.getvalue()
    assert "123456:AB…hi" in stderr.getvalue()
    errors = [line for line in stderr.getvalue().splitlines() if line.startswith("error:")]
    assert errors == ["error: failed: token 123456:AB…hi"]


def test_rich_tables_on_a_terminal_are_not_markup(monkeypatch: pytest.MonkeyPatch) -> None:
    stdout = Terminal()
    out = Output(colour=False, terminal=True, stdout=stdout, stderr=io.StringIO())
    out.table([("id", "ID")], [{"id": "[bold]not markup[/bold]"}])
    assert "[bold]not markup[/bold]" in stdout.getvalue()
    assert "\x1b[" not in stdout.getvalue()


def test_snapshot_diff_names_each_change() -> None:
    before = {
        ("payment_stages", "basic"): {"title": "Basic", "price": 50},
        ("payment_stages", "old"): {"title": "Old", "price": 5},
    }
    after = {
        ("payment_stages", "basic"): {"title": "Basic", "price": 45},
        ("promo_codes", "SPRING25"): {"discount_type": "percentage", "discount_value": 25},
    }
    assert diff(before, after) == [
        "~ stage basic: price 50 -> 45",
        "- stage old deleted",
        "+ promo SPRING25: -25%",
    ]
    assert diff(after, after) == []
