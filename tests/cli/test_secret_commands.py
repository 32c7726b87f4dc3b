"""Secrets on the command line: ``neonpay sync new-secret``, and ``--secret`` /
``--secret-env`` of ``neonpay serve`` and ``neonpay sync add-bot`` holding a rotation
list (``"new old"``: the first signs, all verify), as real processes on loopback."""

from __future__ import annotations

import asyncio
import base64
import json
import shlex
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from neonpay.errors import PeerRejected
from neonpay.sync.credentials import KEY_BYTES, signing_key
from neonpay.web_sync import HttpTransport

from .helpers import CLI, COMMAND_TIMEOUT, free_port, neonpay_command
from .test_sync_commands import TOKEN, wait_for_health

NEW = "whsec_" + base64.b64encode(b"the new key of the pair, 32 byte").decode()
OLD = "the-old-secret-still-used-by-some-peers"


# --- new-secret -------------------------------------------------------------------------
def test_new_secret_prints_a_fresh_key_and_nothing_else(cli: CLI) -> None:
    first, second = cli("sync", "new-secret"), cli("sync", "new-secret")
    assert (first.code, second.code) == (0, 0)
    assert first.stderr == second.stderr == ""
    keys = [first.stdout, second.stdout]
    for shown in keys:
        assert shown.endswith("\n")
        assert shown.count("\n") == 1
        key = shown.strip()
        assert key.startswith("whsec_")
        assert len(signing_key(key)) == KEY_BYTES
    assert keys[0] != keys[1]


def test_new_secret_as_json(cli: CLI) -> None:
    done = cli("sync", "new-secret", "--json")
    assert done.code == 0
    data = done.json()
    assert list(data) == ["secret"]
    assert len(signing_key(data["secret"])) == KEY_BYTES


def test_new_secret_is_captured_by_the_shell(tmp_path: Path, cli_env: dict[str, str]) -> None:
    command = " ".join(shlex.quote(part) for part in [*neonpay_command(), "sync", "new-secret"])
    script = f'export S=$({command}) && printf "%s" "$S"'
    done = subprocess.run(  # noqa: S603 - bash running our own console script
        ["bash", "-c", script],  # noqa: S607
        cwd=tmp_path,
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=True,
    )
    assert len(signing_key(done.stdout)) == KEY_BYTES
    assert not (tmp_path / "neonpay.db").exists()  # it opens no store


# --- serve and add-bot with a rotation list --------------------------------------------
@dataclass
class Served:
    """A ``neonpay serve`` process and its sync URL."""

    url: str
    process: subprocess.Popen[str]
    stderr: str = ""  # once it has stopped


@contextmanager
def serving(
    tmp_path: Path, cli_env: dict[str, str], name: str, *secret: str, env: dict[str, str]
) -> Iterator[Served]:
    """``neonpay serve`` of a store of its own with ``secret`` options."""
    port = free_port()
    storage = f"sqlite:///{tmp_path / name}.db"
    process = subprocess.Popen(  # noqa: S603 - our own console script
        [*neonpay_command(), "serve", "--port", str(port), "--storage", storage, *secret],
        cwd=tmp_path,
        env={**cli_env, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    served = Served(f"http://127.0.0.1:{port}/sync", process)
    try:
        asyncio.run(wait_for_health(f"http://127.0.0.1:{port}"))
        yield served
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        served.stderr = process.communicate(timeout=20)[1]


async def accepts(url: str, secret: str) -> bool:
    """Whether the server at ``url`` answers a request signed with ``secret`` (else it
    refuses it with 401)."""
    async with HttpTransport(url, secret=secret, retries=0) as peer:
        try:
            await peer.info()
        except PeerRejected as refused:
            return refused.status != 401
        return True


def test_serve_and_add_bot_take_rotation_lists_by_every_route(
    cli: CLI, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    rotation = {"SERVER_SECRETS": f"{OLD} {NEW}", "BOT_SECRETS": f"{NEW} {OLD}"}
    with (
        serving(tmp_path, cli_env, "by-env", "--secret-env", "SERVER_SECRETS", env=rotation) as env,
        serving(tmp_path, cli_env, "by-flag", "--secret", f"{OLD} {NEW}", env={}) as flag,
        serving(tmp_path, cli_env, "old-only", "--secret", OLD, env={}) as old,
    ):
        by_env, by_flag, old_only = env.url, flag.url, old.url
        for url in (by_env, by_flag):  # the server verifies with every secret of its list
            assert asyncio.run(accepts(url, NEW))
            assert asyncio.run(accepts(url, OLD))
            assert not asyncio.run(accepts(url, "neither-of-the-two-secrets"))
        assert stage_added(cli, "made-here")

        bots = [
            ("env-to-env", by_env, ["--secret-env", "BOT_SECRETS"]),
            ("flag-to-env", by_env, ["--secret", f"{NEW} {OLD}"]),
            ("env-to-flag", by_flag, ["--secret-env", "BOT_SECRETS"]),
            ("first-signs", old_only, ["--secret-env", "BOT_SECRETS"]),
        ]
        for name, url, secret in bots:
            added = cli(
                "sync", "add-bot", "--token", TOKEN, "--name", name, "--webhook", url, *secret
            )
            assert added.code == 0, added.stderr
            shown = added.stdout + added.stderr
            assert NEW not in shown
            assert OLD not in shown
        listed = cli("sync", "list-bots", "--json", env=rotation)
        assert all(bot["has_secret"] for bot in listed.json())
        assert NEW not in listed.stdout
        assert OLD not in listed.stdout
        unset = cli("sync", "list-bots", "--json").json()  # BOT_SECRETS not set here
        assert [b["has_secret"] for b in unset] == [False, True, False, False]

        results = {}
        for name, _, _ in bots:
            done = cli("sync", "sync", name, "--json", env=rotation)
            results[name] = json.loads(done.stdout)[name]
            assert NEW not in done.stderr
            assert OLD not in done.stderr
        for name in ("env-to-env", "flag-to-env", "env-to-flag"):
            assert results[name]["status"] == "completed", results[name]["errors"]
        # The bot signs with NEW, the first of its list: a server on OLD alone refuses it.
        assert results["first-signs"]["status"] == "failed"
        assert "401" in " ".join(results["first-signs"]["errors"])

    stderr = flag.stderr
    assert "--secret puts the secret in your shell history" in stderr
    assert NEW not in stderr
    assert OLD not in stderr
    for store in ("by-env", "by-flag"):
        peer = cli("stages", "list", "--json", "--storage", f"sqlite:///{tmp_path / store}.db")
        assert "made-here" in {stage["id"] for stage in peer.json()}


def stage_added(cli: CLI, stage_id: str) -> bool:
    done = cli(
        "stages", "add", stage_id, "--title", "Here", "--description", "Made here", "--price", "5"
    )
    return done.code == 0


def test_serve_refuses_an_unset_variable_and_both_options(cli: CLI) -> None:
    unset = cli("serve", "--port", "0", "--secret-env", "NOT_SET_ANYWHERE_1234")
    assert unset.code == 1
    assert "NOT_SET_ANYWHERE_1234" in unset.stderr
    assert "not set" in unset.stderr
    both = cli("serve", "--port", "0", "--secret", "x" * 20, "--secret-env", "VAR")
    assert both.code == 2
    assert "not allowed with" in both.stderr
    bad = cli("serve", "--port", "0", "--secret", f"{NEW} whsec_%%%%")
    assert bad.code == 1
    assert "secret #2" in bad.stderr
    assert "%%%%" not in bad.stderr


@pytest.mark.parametrize("bad", ["whsec_%%%%", f"{NEW} whsec_%%%%"])
def test_add_bot_refuses_an_unusable_secret_and_stores_nothing(cli: CLI, bad: str) -> None:
    assert stage_added(cli, "existing")  # the store exists; the bot must not enter it
    done = cli(
        "sync", "add-bot", "--token", TOKEN, "--name", "bad", "--webhook",
        "http://127.0.0.1:9/sync", "--secret", bad,
    )  # fmt: skip
    assert done.code == 1
    assert "base64" in done.stderr
    assert "%%%%" not in done.stderr
    assert cli("sync", "list-bots", "--json").json() == []
