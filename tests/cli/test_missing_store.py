"""Reading commands never create a store: a SQLite file that is not there is an error."""

from __future__ import annotations

from pathlib import Path

import pytest

from .helpers import CLI

READING_COMMANDS = [
    ["stages", "list"],
    ["promo", "list"],
    ["settings", "get"],
    ["settings", "get", "thank_you_message"],
    ["sync", "list-bots"],
    ["sync", "stats"],
    ["sync", "status"],
    ["sync", "conflicts"],
    ["sync", "sync-all"],
    ["sync", "sync", "Store Bot"],
    ["export"],
]


@pytest.mark.parametrize("command", READING_COMMANDS, ids=" ".join)
def test_a_reading_command_refuses_a_store_file_that_does_not_exist(
    cli: CLI, tmp_path: Path, command: list[str]
) -> None:
    typo = tmp_path / "nonexist" / "dir" / "x.db"
    result = cli("--storage", f"sqlite:///{typo}", *command)
    assert result.code == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"error: no store at {typo} (create one with a write command such as "
        "'neonpay stages add', or check --storage / NEONPAY_STORAGE)"
    ]
    assert not typo.exists()
    assert not typo.parent.exists()


def test_the_default_store_is_not_created_by_a_reading_command(cli: CLI, tmp_path: Path) -> None:
    # The fixture's NEONPAY_STORAGE names tmp_path/neonpay.db, which nothing created yet.
    listed = cli("sync", "list-bots")
    assert listed.code == 1
    assert f"no store at {tmp_path / 'neonpay.db'}" in listed.stderr
    assert "NEONPAY_STORAGE" in listed.stderr
    assert not (tmp_path / "neonpay.db").exists()
    # A relative path is reported as the file it means in the working directory.
    relative = cli("--storage", "sqlite:///typo.db", "stages", "list", "--json")
    assert relative.code == 1
    assert relative.stdout == ""
    assert f"no store at {tmp_path / 'typo.db'} " in relative.stderr
    assert not (tmp_path / "typo.db").exists()


def test_a_writing_command_creates_the_store_and_reading_works_after(
    cli: CLI, tmp_path: Path
) -> None:
    store = tmp_path / "new" / "shop.db"
    url = f"sqlite:///{store}"
    added = cli(
        "--storage", url, "stages", "add", "p", "--title", "P", "--description", "D", "--price", "5"
    )
    assert added.code == 0, added.stderr
    assert store.exists()
    listed = cli("--storage", url, "stages", "list", "--json")
    assert listed.code == 0, listed.stderr
    assert [s["id"] for s in listed.json()] == ["p"]
    # An existing store that is empty is fine: "none", exit 0.
    assert cli("--storage", url, "promo", "list", "--json").json() == []
    assert cli("--storage", url, "sync", "list-bots", "--json").json() == []


def test_settings_set_creates_the_store_too(cli: CLI, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'settings.db'}"
    assert cli("--storage", url, "settings", "set", "greeting", "hi").code == 0
    assert cli("--storage", url, "settings", "get", "greeting").stdout.strip() == "hi"


def test_postgresql_urls_are_not_checked_for_a_file(cli: CLI, postgres_url: str) -> None:
    result = cli("--storage", postgres_url, "sync", "list-bots", "--json")
    assert result.code == 0, result.stderr
    assert result.json() == []
