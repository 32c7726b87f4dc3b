"""Bad values on the command line: one line on stderr, exit code 1, nothing stored; and
no command ever shows a traceback unless asked with --debug."""

from __future__ import annotations

from pathlib import Path

import pytest

from neonpay.cli.commands import stages
from neonpay.cli.main import main

from .helpers import CLI


def test_undecodable_bytes_in_a_title_are_refused(cli: CLI) -> None:
    # $'ab\xff' in a shell: Python hands the byte over as the lone surrogate \udcff
    run = cli("stages", "add", "s1", "--title", "ab\udcff", "--description", "d", "--price", "5")
    assert run.code == 1
    assert "Traceback" not in run.stderr
    assert "invalid payment_stage.title: must be valid Unicode text" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1
    assert cli("stages", "list", "--json").json() == []


def test_a_number_too_large_for_the_store_is_refused(cli: CLI) -> None:
    run = cli("promo", "add", "ABC", "--percent", "5", "--max-uses", "99999999999999999999999")
    assert run.code == 1
    assert "Traceback" not in run.stderr
    assert "invalid promo_code.max_uses: must be at most 9223372036854775807" in run.stderr
    assert cli("promo", "list", "--json").json() == []


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        ('{"a": 1, "a": 2}', "appears twice"),
        ("[" * 40 + "]" * 40, "nests more than 32"),
        ("[" * 5000 + "]" * 5000, "nest"),
    ],
)
def test_a_bad_json_setting_is_refused(cli: CLI, value: str, rule: str) -> None:
    assert cli("settings", "set", "kept", "1").code == 0
    run = cli("settings", "set", "layout", value)
    assert run.code == 1
    assert rule in run.stderr
    assert "Traceback" not in run.stderr
    assert cli("settings", "get", "--json").json() == {"kept": 1}


def _broken(ctx: object) -> int:
    raise RuntimeError("a bug nobody foresaw")


def test_an_unexpected_error_is_one_line_with_a_hint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stages, "list_stages", _broken)
    storage = f"sqlite:///{tmp_path / 'x.db'}"
    assert main(["--storage", storage, "stages", "list"]) == 1
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        "error: unexpected RuntimeError: a bug nobody foresaw (rerun with --debug to see "
        "where; please report it)"
    ]
    assert main(["--storage", storage, "stages", "list", "--debug"]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err
    assert "in _broken" in err
    assert err.strip().splitlines()[-1].startswith("error: unexpected RuntimeError")
