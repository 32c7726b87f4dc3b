"""Tokens and secrets given without the command line (environment, standard input), a
warning when they are on it, masked store URLs, and what a new user sees about stores."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from .helpers import CLI

TOKEN = "123456789:AAExampleExampleExampleExample12345"
SECRET = "a-shared-sync-secret-0123456789"
WEBHOOK = "https://store.example.com/sync"


def test_a_token_from_an_environment_variable(cli: CLI) -> None:
    run = cli(
        "sync", "add-bot", "--token-env", "STORE_TOKEN", "--name", "store", "--webhook", WEBHOOK,
        "--secret-env", "STORE_SECRET",
        env={"STORE_TOKEN": TOKEN, "STORE_SECRET": SECRET},
    )  # fmt: skip
    assert run.code == 0, run.stderr
    assert "--token on the command line" not in run.stderr
    assert TOKEN not in run.stdout + run.stderr
    bots = cli("sync", "list-bots", "--json").json()
    assert bots[0]["token"].startswith("123456789:AA…")


def test_a_token_and_a_secret_from_standard_input(cli: CLI) -> None:
    run = cli(
        "sync", "add-bot", "--token", "-", "--secret", "-", "--name", "store",
        "--webhook", WEBHOOK,
        input=f"{TOKEN}\n{SECRET}\n",
    )  # fmt: skip
    assert run.code == 0, run.stderr
    assert "warning: --token" not in run.stderr
    assert "--secret puts the secret" not in run.stderr
    bots = cli("sync", "list-bots", "--json").json()
    assert bots[0]["secret"] == "stored"
    assert TOKEN not in run.stdout + run.stderr


def test_a_token_on_the_command_line_warns(cli: CLI) -> None:
    run = cli("sync", "add-bot", "--token", TOKEN, "--name", "store", "--webhook", WEBHOOK)
    assert run.code == 0, run.stderr
    assert "warning: --token on the command line shows in the process list" in run.stderr
    assert TOKEN not in run.stdout + run.stderr


def test_an_unset_token_variable_or_empty_stdin_is_an_error(cli: CLI) -> None:
    run = cli("sync", "add-bot", "--token-env", "NOPE_UNSET", "--name", "s", "--webhook", WEBHOOK)
    assert run.code == 1
    assert "--token-env NOPE_UNSET: the variable is not set or empty" in run.stderr
    run = cli("sync", "add-bot", "--token", "-", "--name", "s", "--webhook", WEBHOOK, input="")
    assert run.code == 1
    assert "nothing was read from standard input" in run.stderr
    run = cli("sync", "add-bot", "--name", "s", "--webhook", WEBHOOK)
    assert run.code == 2  # one of --token / --token-env is required


def test_direction_and_conflict_in_any_case(cli: CLI) -> None:
    run = cli(
        "sync", "add-bot", "--token-env", "T", "--name", "s", "--webhook", WEBHOOK,
        "--direction", "BIDIRECTIONAL", "--conflict", "Source_Wins", env={"T": TOKEN},
    )  # fmt: skip
    assert run.code == 0, run.stderr
    bot = cli("sync", "list-bots", "--json").json()[0]
    assert bot["direction"] == "bidirectional"


def test_sync_status_masks_a_password_in_the_query(cli: CLI) -> None:
    base = os.environ.get("NEONPAY_TEST_POSTGRES")
    if not base:
        return  # needs PostgreSQL; the library test covers the masking itself
    parts = urlsplit(base)
    password = parts.password or ""
    netloc = parts.netloc.replace(f":{password}@", "@", 1)
    url = urlunsplit(parts._replace(netloc=netloc, query=f"password={password}"))
    run = cli("sync", "status", "--storage", url)
    assert run.code == 0, run.stderr
    assert "password=***" in run.stdout
    assert f"password={password}" not in run.stdout + run.stderr


def test_an_unreachable_store_error_masks_the_password(cli: CLI) -> None:
    run = cli("stages", "list", "--storage", "postgresql://u@127.0.0.1:1/db?password=hunter2xyz")
    assert run.code == 1
    assert "hunter2xyz" not in run.stderr
    assert "password=***" in run.stderr


def test_a_write_command_says_it_created_a_store(cli: CLI, tmp_path: Path) -> None:
    run = cli("stages", "add", "s", "--title", "T", "--description", "D", "--price", "5")
    assert run.code == 0
    assert f"note: created a new store at {tmp_path / 'neonpay.db'}" in run.stderr
    run = cli("stages", "add", "t", "--title", "T", "--description", "D", "--price", "5")
    assert "created" not in run.stderr


def test_a_plain_storage_path_is_a_sqlite_file(cli: CLI, tmp_path: Path) -> None:
    (tmp_path / "main").mkdir()
    run = cli(
        "stages", "add", "s", "--title", "T", "--description", "D", "--price", "5",
        "--storage", "main/neonpay.db",
    )  # fmt: skip
    assert run.code == 0, run.stderr
    assert (tmp_path / "main" / "neonpay.db").exists()
    listed = cli("stages", "list", "--json", "--storage", "main/neonpay.db")
    assert [s["id"] for s in listed.json()] == ["s"]
    missing = cli("stages", "list", "--storage", "../nowhere/neonpay.db")
    assert missing.code == 1
    assert "no store at" in missing.stderr
