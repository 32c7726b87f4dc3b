"""Catalog commands through the real console script: each call is a new process."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from neonpay import create_neonpay

from .helpers import CLI


def stage_args(stage_id: str, price: int = 100) -> list[str]:
    return [
        "stages",
        "add",
        stage_id,
        "--title",
        stage_id.title(),
        "--description",
        f"The {stage_id} plan",
        "--price",
        str(price),
    ]


def test_stages_written_by_one_process_are_read_by_the_next(cli: CLI) -> None:
    added = cli(*stage_args("premium"))
    assert added.code == 0, added.stderr
    assert "premium" in added.stdout

    listed = cli("stages", "list", "--json")
    assert listed.code == 0, listed.stderr
    assert listed.json() == [
        {
            "id": "premium",
            "title": "Premium",
            "description": "The premium plan",
            "price": 100,
            "label": "Payment",
            "photo_url": None,
            "payload": None,
            "start_parameter": None,
        }
    ]

    updated = cli("stages", "update", "premium", "--price", "120", "--payload", '{"tier": 2}')
    assert updated.code == 0, updated.stderr
    stage = cli("stages", "list", "--json").json()[0]
    assert (stage["price"], stage["payload"]) == (120, {"tier": 2})

    table = cli("stages", "list")
    assert table.code == 0
    assert "premium" in table.stdout
    assert "120" in table.stdout
    assert "\x1b[" not in table.stdout  # no colour codes into a pipe

    removed = cli("stages", "remove", "premium")
    assert removed.code == 0, removed.stderr
    assert cli("stages", "list", "--json").json() == []


def test_a_rejected_stage_is_a_one_line_error_and_changes_nothing(cli: CLI) -> None:
    assert cli(*stage_args("basic", 10)).code == 0
    before = cli("export").json()

    too_expensive = cli("stages", "update", "basic", "--price", "20000")
    assert too_expensive.code == 1
    assert "price" in too_expensive.stderr
    assert "Traceback" not in too_expensive.stderr
    assert len(too_expensive.stderr.strip().splitlines()) == 1

    duplicate = cli(*stage_args("basic", 50))
    assert duplicate.code == 1
    assert "--replace" in duplicate.stderr

    missing = cli("stages", "remove", "nothing-here")
    assert missing.code == 1
    assert "nothing-here" in missing.stderr

    after = cli("export").json()
    assert after["payment_stages"] == before["payment_stages"]


def test_storage_is_chosen_before_or_after_the_command_or_by_env(cli: CLI, tmp_path: Path) -> None:
    other = f"sqlite:///{tmp_path / 'other.db'}"
    third = f"sqlite:///{tmp_path / 'third.db'}"
    assert cli("--storage", other, *stage_args("early")).code == 0
    assert cli(*stage_args("late"), "--storage", other).code == 0
    assert cli(*stage_args("from-env"), env={"NEONPAY_STORAGE": third}).code == 0

    assert [s["id"] for s in cli("stages", "list", "--json", "--storage", other).json()] == [
        "early",
        "late",
    ]
    assert [s["id"] for s in cli("--storage", third, "stages", "list", "--json").json()] == [
        "from-env"
    ]
    # The default store (NEONPAY_STORAGE of the fixture) saw none of them: it was not even
    # created, and reading it says so instead of making an empty one.
    assert not (tmp_path / "neonpay.db").exists()
    assert cli("stages", "list", "--json").code == 1
    assert not (tmp_path / "neonpay.db").exists()

    with create_neonpay(storage=other) as neonpay:  # the library sees the CLI's writes
        assert sorted(neonpay.list_payment_stages()) == ["early", "late"]


def test_promo_codes(cli: CLI) -> None:
    added = cli(
        "promo",
        "add",
        "spring25",
        "--percent",
        "25",
        "--max-uses",
        "100",
        "--expires",
        "2030-06-01",
        "--description",
        "Spring sale",
    )
    assert added.code == 0, added.stderr
    assert cli("promo", "add", "MINUS10", "--fixed", "10", "--min-amount", "50").code == 0

    codes = {p["code"]: p for p in cli("promo", "list", "--json").json()}
    assert sorted(codes) == ["MINUS10", "SPRING25"]
    assert codes["SPRING25"]["discount_type"] == "percentage"
    assert codes["SPRING25"]["max_uses"] == 100
    june = dt.datetime(2030, 6, 1, tzinfo=dt.timezone.utc).timestamp()
    assert codes["SPRING25"]["expires_at"] == june
    assert codes["SPRING25"]["used_count"] == 0
    assert codes["MINUS10"]["discount_value"] == 10

    bad = cli("promo", "add", "X", "--percent", "10")
    assert bad.code == 1
    assert "code" in bad.stderr
    too_much = cli("promo", "add", "HALF", "--percent", "150")
    assert too_much.code == 1
    assert "discount_value" in too_much.stderr
    assert sorted(p["code"] for p in cli("promo", "list", "--json").json()) == [
        "MINUS10",
        "SPRING25",
    ]

    assert cli("promo", "remove", "minus10").code == 0
    assert cli("promo", "remove", "minus10").code == 1
    assert [p["code"] for p in cli("promo", "list", "--json").json()] == ["SPRING25"]


def test_settings(cli: CLI) -> None:
    assert cli("settings", "set", "thank_you_message", "Thanks for your order!").code == 0
    assert cli("settings", "set", "opening_hours", '{"from": 9, "to": 18}').code == 0
    assert cli("settings", "set", "code_word", "42", "--text").code == 0

    assert cli("settings", "get", "--json").json() == {
        "code_word": "42",
        "opening_hours": {"from": 9, "to": 18},
        "thank_you_message": "Thanks for your order!",
    }
    one = cli("settings", "get", "thank_you_message")
    assert one.stdout.strip() == "Thanks for your order!"

    rejected = cli("settings", "set", "max_stages", "0")
    assert rejected.code == 1
    assert "max_stages" in rejected.stderr
    assert "max_stages" not in cli("settings", "get", "--json").json()
    assert cli("settings", "get", "nothing").code == 1


def test_export_then_import_into_another_store(cli: CLI, tmp_path: Path) -> None:
    assert cli(*stage_args("premium")).code == 0
    assert cli("promo", "add", "SPRING25", "--percent", "25").code == 0
    assert cli("settings", "set", "thank_you_message", "Merci").code == 0
    with create_neonpay(storage=f"sqlite:///{tmp_path / 'neonpay.db'}") as neonpay:
        neonpay.templates.create_template("shop", description="The shop", theme={"accent": "red"})

    exported = cli("export", "--output", "catalog.json")
    assert exported.code == 0, exported.stderr
    document = json.loads((tmp_path / "catalog.json").read_text())
    assert sorted(document["payment_stages"]) == ["premium"]
    assert document["templates"]["shop"]["theme"] == {"accent": "red"}

    other = f"sqlite:///{tmp_path / 'copy.db'}"
    dry = cli("import", "catalog.json", "--dry-run", "--json", "--storage", other)
    assert dry.json()["changes"]["payment_stages"]["created"] == 1
    assert cli("stages", "list", "--json", "--storage", other).json() == []

    imported = cli("import", "catalog.json", "--json", "--storage", other)
    assert imported.code == 0, imported.stderr
    assert imported.json()["changes"]["promo_codes"] == {"created": 1, "updated": 0, "unchanged": 0}
    copy = cli("export", "--storage", other).json()
    for section in ("payment_stages", "promo_codes", "templates", "settings"):
        assert copy[section] == document[section]

    again = cli("import", "catalog.json", "--json", "--storage", other).json()
    assert again["changes"]["payment_stages"] == {"created": 0, "updated": 0, "unchanged": 1}


def test_an_import_with_one_bad_record_writes_nothing(cli: CLI, tmp_path: Path) -> None:
    document = {
        "format": "neonpay-catalog",
        "version": 1,
        "payment_stages": {
            "good": {"title": "Good", "description": "Fine", "price": 10},
            "bad": {"title": "Bad", "description": "Too dear", "price": 10**6},
        },
        "settings": {"thank_you_message": "Hi"},
    }
    (tmp_path / "bad.json").write_text(json.dumps(document))
    result = cli("import", "bad.json")
    assert result.code == 1
    assert "price" in result.stderr
    assert cli("stages", "list", "--json").json() == []
    assert cli("settings", "get", "--json").json() == {}

    (tmp_path / "other.json").write_text('{"format": "something-else"}')
    assert cli("import", "other.json").code == 1
    assert cli("import", "missing.json").code == 1


def test_the_commands_work_on_postgresql(cli: CLI, postgres_url: str, tmp_path: Path) -> None:
    assert cli(*stage_args("premium"), "--storage", postgres_url).code == 0
    assert cli("promo", "add", "SPRING25", "--percent", "25", "--storage", postgres_url).code == 0
    stages = cli("--storage", postgres_url, "stages", "list", "--json").json()
    assert [s["id"] for s in stages] == ["premium"]
    with create_neonpay(storage=postgres_url) as neonpay:
        assert neonpay.promotions.get_promo_code("SPRING25") is not None
    assert not (tmp_path / "neonpay.db").exists()  # the SQLite default is untouched
