"""What a new user meets first: the documentation's tests pass on a machine without
PostgreSQL (its pages skip cleanly there), install lines that install this version, and a
migration guide that says where every 2.x command went."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from neonpay.cli.main import main

from .pages import DOCS

#: The longest the docs run without PostgreSQL may take before the test fails.
RUN_TIMEOUT = 300


def test_the_postgres_page_skips_cleanly_without_postgres() -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("NEONPAY_TEST_POSTGRES", "NEONPAY_REQUIRE_POSTGRES")
    }
    done = subprocess.run(
        [
            sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
            "tests/docs/test_guide_snippets.py", "-k", "postgres", "-rs",
        ],
        cwd=DOCS.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    skipped = re.search(r"(\d+) skipped", output)
    assert skipped is not None, output[-3000:]
    assert int(skipped[1]) >= 2  # every block of the page, not only the first
    assert "failed" not in output
    assert "needs PostgreSQL" in output


@pytest.mark.parametrize("page", ["index.md", "guide/migration.md", "guide/postgres.md"])
def test_install_lines_install_this_version(page: str) -> None:
    text = (DOCS / page).read_text(encoding="utf-8")
    assert not re.search(r"pip install [\"']?neonpay\[", text)


GONE = ("sync sync-bot", "template", "backup", "analytics", "multi-analytics", "notifications")
NOW = (["sync", "sync"], ["sync", "sync-all"], ["sync", "stats"], ["sync", "status"],
       ["export"], ["import"])  # fmt: skip


def test_the_migration_guide_says_where_each_gone_command_went(
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = (DOCS / "guide/migration.md").read_text(encoding="utf-8")
    section = text.split("## Commands of 2.x that are gone", 1)[1].split("\n## ", 1)[0]
    for command in GONE:
        assert re.search(rf"`(neonpay )?{command}\b", section), command
    for argv in NOW:
        assert f"neonpay {' '.join(argv)}" in section
        with pytest.raises(SystemExit) as done:
            main([*argv, "--help"])
        assert done.value.code == 0
    capsys.readouterr()
