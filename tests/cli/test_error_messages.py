"""What a user sees when something is wrong: exit codes, one line, the CLI's own words."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from .helpers import CLI

TOKEN = "7654321:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
WEBHOOK = "https://store.example.com/sync"


def one_error(stderr: str) -> str:
    """The single ``error: ...`` line of ``stderr`` (and assert there is nothing else)."""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: "), stderr
    assert "Traceback" not in stderr
    return lines[0]


def add_premium(cli: CLI) -> None:
    added = cli(
        "stages", "add", "premium", "--title", "Premium", "--description", "All", "--price", "100"
    )
    assert added.code == 0, added.stderr


# --- ports ------------------------------------------------------------------------------
@pytest.mark.parametrize("command", ["serve", "emulator"])
@pytest.mark.parametrize("port", ["99999", "-1", "http"])
def test_a_port_out_of_range_is_a_usage_error(
    cli: CLI, tmp_path: Path, command: str, port: str
) -> None:
    result = cli(command, "--port", port, "--insecure" if command == "serve" else "--no-color")
    assert result.code == 2
    assert "argument --port" in result.stderr
    assert "Traceback" not in result.stderr
    assert "OverflowError" not in result.stderr
    assert result.stdout == ""
    assert not (tmp_path / "neonpay.db").exists()  # nothing was opened


# --- values that break a rule: exit 1 with the rule; text that is no number: exit 2 -----
@pytest.mark.parametrize(
    ("price", "rule"),
    [
        ("0", "invalid payment_stage.price: must be at least 1"),
        ("-3", "invalid payment_stage.price: must be at least 1"),
        ("1.5", "invalid payment_stage.price: must be a whole number"),
        ("20000", "invalid payment_stage.price"),
    ],
)
def test_a_price_that_breaks_a_rule_exits_1_with_the_rule(cli: CLI, price: str, rule: str) -> None:
    add_premium(cli)
    before = cli("export").json()["payment_stages"]
    added = cli("stages", "add", "x", "--title", "X", "--description", "D", "--price", price)
    assert added.code == 1
    assert rule in one_error(added.stderr)
    assert "usage:" not in added.stderr
    updated = cli("stages", "update", "premium", "--price", price)
    assert updated.code == 1
    assert rule in one_error(updated.stderr)
    assert cli("export").json()["payment_stages"] == before


def test_a_price_that_is_no_number_is_a_usage_error(cli: CLI) -> None:
    add_premium(cli)
    before = cli("export").json()["payment_stages"]
    result = cli("stages", "add", "x", "--title", "X", "--description", "D", "--price", "abc")
    assert result.code == 2
    assert "argument --price: not a number: 'abc'" in result.stderr
    assert cli("stages", "update", "premium", "--price", "nan").code == 2
    assert cli("export").json()["payment_stages"] == before


@pytest.mark.parametrize(
    ("options", "rule"),
    [
        (["--percent", "0"], "invalid promo_code.discount_value: must be at least 1"),
        (["--fixed", "2.5"], "invalid promo_code.discount_value: must be a whole number"),
        (["--percent", "10", "--max-uses", "0"], "invalid promo_code.max_uses: must be at least 1"),
        (["--fixed", "5", "--min-amount", "0"], "invalid promo_code.min_amount"),
    ],
)
def test_promo_numbers_that_break_a_rule_exit_1(cli: CLI, options: list[str], rule: str) -> None:
    assert cli("promo", "add", "KEEP10", "--percent", "10").code == 0
    result = cli("promo", "add", "BROKEN", *options)
    assert result.code == 1
    assert rule in one_error(result.stderr)
    assert [p["code"] for p in cli("promo", "list", "--json").json()] == ["KEEP10"]


# --- add-bot ----------------------------------------------------------------------------
@pytest.mark.parametrize("flag", ["--token", "--name"])
@pytest.mark.parametrize("value", ["", "   "])
def test_add_bot_refuses_an_empty_token_or_name(cli: CLI, flag: str, value: str) -> None:
    assert cli("settings", "set", "greeting", "hi").code == 0  # the store exists
    options = {"--token": TOKEN, "--name": "Store Bot", "--webhook": WEBHOOK, flag: value}
    result = cli("sync", "add-bot", *(part for pair in options.items() for part in pair))
    assert result.code == 2
    assert f"argument {flag}: must not be empty" in result.stderr
    assert "warning" not in result.stderr
    assert TOKEN not in result.stderr
    assert cli("sync", "list-bots", "--json").json() == []


@pytest.mark.parametrize(
    ("options", "expected", "api_name"),
    [
        (["--webhook", WEBHOOK, "--interval", "0"], "--interval must be between", "sync_interval"),
        (["--webhook", "ftp://store.example.com/sync"], "--webhook must be", "webhook_url"),
        (["--webhook", "https://u:p@store.example.com/sync"], "use --secret for", "webhook_"),
        (["--webhook", WEBHOOK, "--name", "x" * 300], "--name must be at most", "target_bot"),
    ],
)
def test_add_bot_errors_name_the_flags_and_come_without_secret_warnings(
    cli: CLI, options: list[str], expected: str, api_name: str
) -> None:
    assert cli("settings", "set", "keep", "1").code == 0  # an existing store with no bots
    result = cli("sync", "add-bot", "--token", TOKEN, "--name", "peer", *options)
    assert result.code == 1
    line = one_error(result.stderr)  # the "no secret given" warning is not printed
    assert expected in line
    assert api_name not in line
    assert cli("sync", "list-bots", "--json").json() == []


def test_add_bot_warns_about_the_secret_after_the_bot_is_saved(cli: CLI) -> None:
    added = cli("sync", "add-bot", "--token", TOKEN, "--name", "peer", "--webhook", WEBHOOK)
    assert added.code == 0, added.stderr
    assert added.stderr.startswith("warning: no secret given")
    assert "added bot 'peer'" in added.stdout
    as_json = cli(
        "sync", "add-bot", "--token", TOKEN, "--name", "peer", "--webhook", WEBHOOK, "--json"
    )
    assert as_json.code == 0
    assert as_json.json()["name"] == "peer"  # stdout stays one JSON document
    assert "no secret given" in as_json.stderr


def test_an_unknown_bot_points_to_list_bots(cli: CLI) -> None:
    assert cli("settings", "set", "keep", "1").code == 0
    result = cli("sync", "sync", "Nope")
    assert result.code == 1
    line = one_error(result.stderr)
    assert "'Nope'" in line
    assert "see 'neonpay sync list-bots'" in line
    assert "add_bot()" not in line
    assert result.stdout == ""


def test_conflicts_of_an_unknown_bot_is_an_error(cli: CLI) -> None:
    assert (
        cli("sync", "add-bot", "--token", TOKEN, "--name", "peer", "--webhook", WEBHOOK).code == 0
    )
    result = cli("sync", "conflicts", "--bot", "nope")
    assert result.code == 1
    assert one_error(result.stderr) == "error: no bot named 'nope' (see 'neonpay sync list-bots')"
    assert result.stdout == ""
    known = cli("sync", "conflicts", "--bot", "peer")
    assert known.code == 0, known.stderr
    assert "none" in known.stdout


def test_serve_without_a_secret_names_the_flags(cli: CLI) -> None:
    result = cli("serve", "--port", "0")
    assert result.code == 1
    line = one_error(result.stderr)
    for wanted in ("--secret-env VAR", "NEONPAY_SYNC_SECRET", "--insecure"):
        assert wanted in line
    for api_name in ("webhook_secret=", "insecure=True"):
        assert api_name not in line


def test_sync_with_a_bot_that_has_no_secret_names_the_flags(cli: CLI) -> None:
    assert (
        cli("sync", "add-bot", "--token", TOKEN, "--name", "peer", "--webhook", WEBHOOK).code == 0
    )
    for command in (["sync", "sync-all"], ["sync", "sync", "peer"]):
        result = cli(*command)
        assert result.code == 1
        errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1, result.stderr
        assert errors[0].startswith("error: peer: ")
        assert "--secret-env VAR" in errors[0]
        assert "NEONPAY_SYNC_SECRET" in errors[0]
        assert "webhook_secret=" not in errors[0]
        assert "insecure=True" not in errors[0]


# --- export / import / promo --------------------------------------------------------------
def test_export_to_a_directory_that_does_not_exist_is_one_clear_line(
    cli: CLI, tmp_path: Path
) -> None:
    add_premium(cli)
    target = tmp_path / "nonexistent" / "dir" / "c.json"
    result = cli("export", "--output", str(target))
    assert result.code == 1
    line = one_error(result.stderr)
    assert line == f"error: cannot write {target}: No such file or directory"
    assert "[Errno" not in line
    assert not target.parent.exists()


@pytest.mark.parametrize(
    ("section", "key", "fields", "expected"),
    [
        (
            "payment_stages",
            "x",
            {"title": "X", "description": "D", "price": 0},
            "error: stage 'x': invalid payment_stage.price: must be at least 1",
        ),
        (
            "promo_codes",
            "HALF",
            {"discount_type": "percentage", "discount_value": 150},
            "error: promo code 'HALF': invalid promo_code.discount_value",
        ),
        ("settings", "max_stages", 0, "error: setting 'max_stages': "),
        ("templates", "shop", "not fields", "error: template 'shop': "),
    ],
)
def test_an_import_error_names_the_record(
    cli: CLI, tmp_path: Path, section: str, key: str, fields: object, expected: str
) -> None:
    add_premium(cli)
    before = cli("export").json()
    document: dict[str, Any] = {
        "format": "neonpay-catalog",
        "version": 1,
        "payment_stages": {"fine": {"title": "Fine", "description": "OK", "price": 10}},
    }
    document.setdefault(section, {})[key] = fields
    (tmp_path / "one-bad.json").write_text(json.dumps(document))
    result = cli("import", "one-bad.json")
    assert result.code == 1
    assert one_error(result.stderr).startswith(expected)
    after = cli("export").json()
    for name in ("payment_stages", "promo_codes", "templates", "settings"):
        assert after[name] == before[name]


def test_a_promo_code_that_is_already_expired_is_saved_with_a_warning(cli: CLI) -> None:
    old = cli("promo", "add", "OLD10", "--percent", "10", "--expires", "2020-01-01")
    assert old.code == 0, old.stderr
    assert old.stderr.startswith("warning: OLD10 is already expired (2020-01-01 00:00:00 UTC)")
    assert [p["code"] for p in cli("promo", "list", "--json").json()] == ["OLD10"]
    later = cli("promo", "add", "NEW10", "--percent", "10", "--expires", "2999-01-01")
    assert later.code == 0
    assert later.stderr == ""
