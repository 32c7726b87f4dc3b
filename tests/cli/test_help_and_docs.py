"""Every command has help with an example and is documented in docs/cli.md."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from neonpay.cli.main import build_parser
from neonpay.cli.tree import walk

from .helpers import CLI

DOCS = Path(__file__).resolve().parents[2] / "docs" / "cli.md"
COMMANDS = [(" ".join(path), parser, text) for path, parser, text in walk(build_parser())]


def test_the_tree_has_the_commands_of_the_spec() -> None:
    names = {name for name, _, _ in COMMANDS}
    for expected in (
        "neonpay sync add-bot",
        "neonpay sync list-bots",
        "neonpay sync remove-bot",
        "neonpay sync sync-all",
        "neonpay sync sync",
        "neonpay sync stats",
        "neonpay sync conflicts",
        "neonpay sync resolve",
        "neonpay sync status",
        "neonpay serve",
        "neonpay demo",
        "neonpay emulator",
        "neonpay stages list",
        "neonpay promo add",
        "neonpay settings set",
        "neonpay export",
        "neonpay import",
    ):
        assert expected in names


@pytest.mark.parametrize("name", [name for name, _, _ in COMMANDS])
def test_every_command_has_help_an_example_and_a_docs_section(name: str) -> None:
    parser, text = next((p, t) for n, p, t in COMMANDS if n == name)
    assert text, f"{name} has no one-line help"
    assert parser.epilog, f"{name} has no example"
    assert re.search(r"^examples?:", parser.epilog, re.M), name
    assert "\n  neonpay " in parser.epilog, f"{name}: the example shows no command"
    docs = DOCS.read_text(encoding="utf-8")
    assert re.search(rf"^#+ `{re.escape(name)}\b", docs, re.M), f"{name} missing in docs/cli.md"


def test_help_runs_in_a_real_process(cli: CLI) -> None:
    shown = cli("sync", "add-bot", "--help")
    assert shown.code == 0
    assert "example" in shown.stdout
    assert "--secret-env" in shown.stdout


def test_bad_usage_exits_2_with_a_clear_message(cli: CLI) -> None:
    no_action = cli("sync")
    assert no_action.code == 2
    assert "list-bots" in no_action.stderr  # the group's help, listing its actions

    unknown = cli("sync", "frobnicate")
    assert unknown.code == 2
    assert "invalid choice" in unknown.stderr

    bad_direction = cli(
        "sync",
        "add-bot",
        "--token",
        "1:x",
        "--name",
        "n",
        "--webhook",
        "http://127.0.0.1:9/sync",
        "--direction",
        "sideways",
    )
    assert bad_direction.code == 2
    assert "sideways" in bad_direction.stderr
    assert "Traceback" not in bad_direction.stderr

    assert cli().code == 2
