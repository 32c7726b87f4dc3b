"""``neonpay sync ...`` and ``neonpay serve`` as real processes on loopback."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from .helpers import CLI, free_port, neonpay_command

TOKEN = "7654321:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
SECRET = "cli-test-secret-4f7c1a9e2b"


class Server:
    """A ``neonpay serve`` subprocess."""

    def __init__(self, process: subprocess.Popen[str], url: str, storage: str) -> None:
        self.process = process
        self.url = url
        self.storage = storage

    def stop(self) -> tuple[int, str, str]:
        """SIGTERM, then the exit code and output."""
        self.process.send_signal(signal.SIGTERM)
        stdout, stderr = self.process.communicate(timeout=20)
        return self.process.returncode, stdout, stderr


async def wait_for_health(base: str, timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with aiohttp.ClientSession() as session:
        while True:
            try:
                async with session.get(
                    f"{base}/health", timeout=aiohttp.ClientTimeout(total=2)
                ) as reply:
                    if reply.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            if loop.time() > deadline:
                raise TimeoutError(f"{base} did not come up")
            await asyncio.sleep(0.1)


@pytest.fixture
def server(tmp_path: Path, cli_env: dict[str, str]) -> Iterator[Server]:
    """The peer bot: its own store, served by ``neonpay serve`` on a free port."""
    port = free_port()
    storage = f"sqlite:///{tmp_path / 'peer.db'}"
    env = {**cli_env, "PEER_SECRET": SECRET}
    process = subprocess.Popen(  # noqa: S603 - our own console script
        [
            *neonpay_command(),
            "serve",
            "--port",
            str(port),
            "--secret-env",
            "PEER_SECRET",
            "--storage",
            storage,
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        asyncio.run(wait_for_health(f"http://127.0.0.1:{port}"))
        yield Server(process, f"http://127.0.0.1:{port}/sync", storage)
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=20)


def test_add_list_sync_remove_across_processes(cli: CLI, server: Server) -> None:
    env = {"PEER_SECRET": SECRET}
    assert (
        cli(
            "stages",
            "add",
            "premium",
            "--title",
            "Premium",
            "--description",
            "All",
            "--price",
            "100",
        ).code
        == 0
    )
    assert (
        cli(
            "stages",
            "add",
            "remote",
            "--title",
            "Remote",
            "--description",
            "From peer",
            "--price",
            "7",
            "--storage",
            server.storage,
        ).code
        == 0
    )

    added = cli(
        "sync",
        "add-bot",
        "--token",
        TOKEN,
        "--name",
        "Store Bot",
        "--webhook",
        server.url,
        "--direction",
        "bidirectional",
        "--secret-env",
        "PEER_SECRET",
        env=env,
    )
    assert added.code == 0, added.stderr
    assert "warning" not in added.stderr

    listed = cli("sync", "list-bots")
    assert listed.code == 0
    assert "Store Bot" in listed.stdout
    assert "7654321:AA…aw" in listed.stdout
    bots = cli("sync", "list-bots", "--json").json()
    assert [b["name"] for b in bots] == ["Store Bot"]
    assert bots[0]["token"] == "7654321:AA…aw"
    assert bots[0]["webhook_url"] == server.url
    assert bots[0]["direction"] == "bidirectional"
    for run in (added, listed):
        assert TOKEN not in run.stdout + run.stderr

    synced = cli("sync", "sync-all", env=env)
    assert synced.code == 0, synced.stderr
    assert "Store Bot: completed" in synced.stdout
    peer_stages = cli("stages", "list", "--json", "--storage", server.storage).json()
    assert sorted(s["id"] for s in peer_stages) == ["premium", "remote"]
    assert sorted(s["id"] for s in cli("stages", "list", "--json").json()) == [
        "premium",
        "remote",
    ]

    stats = cli("sync", "stats", "--json").json()
    assert stats["Store Bot"]["total_syncs"] == 1
    assert stats["Store Bot"]["success_rate"] == 100.0
    assert stats["Store Bot"]["lag"] == 0
    status = cli("sync", "status", "--json").json()
    assert [p["name"] for p in status["peers"]] == ["Store Bot"]
    assert TOKEN not in str(status)
    assert SECRET not in str(status)

    # A change after the first sync: one more process, only the change moves.
    assert cli("stages", "update", "premium", "--price", "90").code == 0
    one = cli("sync", "sync", "Store Bot", "--json", env=env)
    assert one.code == 0, one.stderr
    assert one.json()["Store Bot"]["pushed"] == 1
    peer_prices = {
        s["id"]: s["price"]
        for s in cli("stages", "list", "--json", "--storage", server.storage).json()
    }
    assert peer_prices == {"premium": 90, "remote": 7}

    removed = cli("sync", "remove-bot", "Store Bot")
    assert removed.code == 0
    assert cli("sync", "list-bots", "--json").json() == []
    again = cli("sync", "remove-bot", "Store Bot")
    assert again.code == 1
    assert "Store Bot" in again.stderr

    code, stdout, stderr = server.stop()
    assert code == 0, stderr
    assert "stopped" in stdout
    assert "Traceback" not in stderr
    assert SECRET not in stdout + stderr


def test_a_failing_peer_exits_1_with_one_line_per_peer(cli: CLI, server: Server) -> None:
    env = {"PEER_SECRET": SECRET}
    dead = f"http://127.0.0.1:{free_port()}/sync"
    assert (
        cli(
            "sync",
            "add-bot",
            "--token",
            TOKEN,
            "--name",
            "good",
            "--webhook",
            server.url,
            "--secret-env",
            "PEER_SECRET",
            env=env,
        ).code
        == 0
    )
    assert (
        cli(
            "sync",
            "add-bot",
            "--token",
            TOKEN,
            "--name",
            "down",
            "--webhook",
            dead,
            "--secret-env",
            "PEER_SECRET",
            env=env,
        ).code
        == 0
    )
    wrong = cli(
        "sync",
        "add-bot",
        "--token",
        TOKEN,
        "--name",
        "wrong-secret",
        "--webhook",
        server.url,
        "--secret",
        "not-the-right-secret-at-all",
    )
    assert wrong.code == 0
    assert "--secret-env" in wrong.stderr  # the shell-history warning
    assert "not-the-right-secret-at-all" not in cli("sync", "list-bots", "--json").stdout

    result = cli("sync", "sync-all", env=env)
    assert result.code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert sorted(line.split(":")[1].strip() for line in errors) == ["down", "wrong-secret"]
    assert "good: completed" in result.stdout
    assert "Traceback" not in result.stderr

    stats = cli("sync", "stats", "--json").json()
    assert stats["down"]["failed_syncs"] == 1
    assert stats["down"]["success_rate"] == 0.0
    assert stats["good"]["successful_syncs"] == 1
    assert cli("sync", "sync", "nobody").code == 1


def test_ask_user_conflict_listed_and_resolved_from_the_command_line(
    cli: CLI, server: Server
) -> None:
    env = {"PEER_SECRET": SECRET}
    stage = ["--title", "Premium", "--description", "All", "--price", "100"]
    assert cli("stages", "add", "premium", *stage).code == 0
    assert (
        cli(
            "sync",
            "add-bot",
            "--token",
            TOKEN,
            "--name",
            "peer",
            "--webhook",
            server.url,
            "--secret-env",
            "PEER_SECRET",
            "--conflict",
            "ask_user",
            env=env,
        ).code
        == 0
    )
    assert cli("sync", "sync-all", env=env).code == 0

    # Both bots change the same stage before they sync again.
    assert cli("stages", "update", "premium", "--price", "110").code == 0
    assert (
        cli("stages", "update", "premium", "--price", "120", "--storage", server.storage).code == 0
    )
    assert cli("sync", "sync-all", env=env).code == 0

    pending = cli("sync", "conflicts", "--json").json()
    assert len(pending) == 1
    conflict = pending[0]
    assert (conflict["item_type"], conflict["item_id"]) == ("payment_stage", "premium")
    assert (conflict["source_data"]["price"], conflict["target_data"]["price"]) == (110, 120)
    assert "premium" in cli("sync", "conflicts").stdout

    bad = cli("sync", "resolve", str(conflict["id"]), "--take", "sideways")
    assert bad.code == 2
    assert cli("sync", "resolve", "999", "--take", "target").code == 1
    resolved = cli("sync", "resolve", str(conflict["id"]), "--take", "target")
    assert resolved.code == 0, resolved.stderr
    assert cli("sync", "conflicts", "--json").json() == []
    assert cli("sync", "sync-all", env=env).code == 0
    for storage in (None, server.storage):
        extra = ["--storage", storage] if storage else []
        prices = [s["price"] for s in cli("stages", "list", "--json", *extra).json()]
        assert prices == [120]


def test_a_rejected_add_bot_stores_nothing(cli: CLI) -> None:
    base = ["sync", "add-bot", "--token", TOKEN, "--name", "peer"]
    bad_url = cli(*base, "--webhook", "ftp://store.example.com/sync")
    assert bad_url.code == 1
    assert "webhook_url" in bad_url.stderr
    too_often = cli(*base, "--webhook", "https://store.example.com/sync", "--interval", "0")
    assert too_often.code == 1
    assert "sync_interval_minutes" in too_often.stderr
    sideways = cli(*base, "--webhook", "https://store.example.com/sync", "--direction", "up")
    assert sideways.code == 2
    both = cli(
        *base, "--webhook", "https://s.example.com", "--secret", "x" * 20, "--secret-env", "VAR"
    )
    assert both.code == 2
    assert "not allowed with" in both.stderr
    for run in (bad_url, too_often, sideways, both):
        assert TOKEN not in run.stdout + run.stderr
        assert "Traceback" not in run.stderr
    assert cli("sync", "list-bots", "--json").json() == []


async def test_serve_runs_auto_sync_with_configured_bots(
    cli: CLI, server: Server, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    env = {"PEER_SECRET": SECRET}
    added = cli(
        "sync",
        "add-bot",
        "--token",
        TOKEN,
        "--name",
        "peer",
        "--webhook",
        server.url,
        "--direction",
        "push",
        "--auto-sync",
        "--interval",
        "0.01",
        "--secret-env",
        "PEER_SECRET",
        env=env,
    )
    assert added.code == 0, added.stderr
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        *neonpay_command(),
        "serve",
        "--port",
        str(port),
        "--secret-env",
        "PEER_SECRET",
        cwd=tmp_path,
        env={**cli_env, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        await wait_for_health(f"http://127.0.0.1:{port}")
        # Written by another process while the server runs: auto sync carries it.
        assert (
            cli(
                "stages",
                "add",
                "auto",
                "--title",
                "Auto",
                "--description",
                "Pushed",
                "--price",
                "3",
            ).code
            == 0
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        while True:
            peer = cli("stages", "list", "--json", "--storage", server.storage).json()
            if [s["id"] for s in peer] == ["auto"]:
                break
            assert loop.time() < deadline, "auto sync did not deliver"
            await asyncio.sleep(0.2)
        process.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(process.communicate(), timeout=20)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, err.decode()
    assert "auto sync with: peer" in out.decode()
    assert SECRET not in out.decode() + err.decode()
