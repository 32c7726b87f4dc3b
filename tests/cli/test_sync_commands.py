"""``neonpay sync ...`` and ``neonpay serve`` as real processes on loopback."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from neonpay.web_sync.signing import NODE_HEADER, new_message_id, request_payload
from neonpay.web_sync.signing import signed_headers as sign_headers

from .helpers import CLI, Run, free_port, neonpay_command

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


def serve_command(port: int) -> list[str]:
    """``neonpay serve`` on ``port`` with the peer secret from ``PEER_SECRET``."""
    return [*neonpay_command(), "serve", "--port", str(port), "--secret-env", "PEER_SECRET"]


def add_bot(
    cli: CLI, name: str, webhook: str, *options: str, env: dict[str, str] | None = None
) -> Run:
    """``neonpay sync add-bot`` for ``TOKEN`` (from a variable, the quiet way) as ``name``
    at ``webhook``, then ``options``."""
    return cli(
        "sync", "add-bot", "--token-env", "PEER_TOKEN", "--name", name, "--webhook", webhook,
        *options, env={"PEER_TOKEN": TOKEN, **(env or {})},
    )  # fmt: skip


def add_stage(
    cli: CLI, stage_id: str, title: str, description: str, price: int, *options: str
) -> Run:
    """``neonpay stages add`` with a title, description and price, then ``options``."""
    return cli(
        "stages",
        "add",
        stage_id,
        "--title",
        title,
        "--description",
        description,
        "--price",
        str(price),
        *options,
    )


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
        [*serve_command(port), "--storage", storage],
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
    assert add_stage(cli, "premium", "Premium", "All", 100).code == 0
    assert add_stage(cli, "remote", "Remote", "From peer", 7, "--storage", server.storage).code == 0

    added = add_bot(
        cli,
        "Store Bot",
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
    assert add_bot(cli, "good", server.url, "--secret-env", "PEER_SECRET", env=env).code == 0
    assert add_bot(cli, "down", dead, "--secret-env", "PEER_SECRET", env=env).code == 0
    wrong = add_bot(cli, "wrong-secret", server.url, "--secret", "not-the-right-secret-at-all")
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
    added = add_bot(
        cli, "peer", server.url, "--secret-env", "PEER_SECRET", "--conflict", "ask_user", env=env
    )
    assert added.code == 0
    assert cli("sync", "sync-all", env=env).code == 0

    # Both bots change the same stage before they sync again.
    assert cli("stages", "update", "premium", "--price", "110").code == 0
    assert (
        cli("stages", "update", "premium", "--price", "120", "--storage", server.storage).code == 0
    )
    second = cli("sync", "sync-all", env=env)
    assert second.code == 0, second.stderr
    assert ", 1 conflict (" in second.stdout  # singular
    assert "1 waiting for 'neonpay sync resolve'" in second.stdout

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
    assert cli("settings", "set", "greeting", "hi").code == 0  # the store exists
    base = ["sync", "add-bot", "--token", TOKEN, "--name", "peer"]
    bad_url = cli(*base, "--webhook", "ftp://store.example.com/sync")
    assert bad_url.code == 1
    assert "--webhook must be" in bad_url.stderr
    assert "webhook_url" not in bad_url.stderr
    too_often = cli(*base, "--webhook", "https://store.example.com/sync", "--interval", "0")
    assert too_often.code == 1
    assert "--interval must be between" in too_often.stderr
    assert "sync_interval_minutes" not in too_often.stderr
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
    added = add_bot(
        cli,
        "peer",
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
        *serve_command(port),
        cwd=tmp_path,
        env={**cli_env, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        await wait_for_health(f"http://127.0.0.1:{port}")
        # Written by another process while the server runs: auto sync carries it.
        assert add_stage(cli, "auto", "Auto", "Pushed", 3).code == 0
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


def test_serve_announces_itself_once_and_a_taken_port_is_one_line(cli: CLI, server: Server) -> None:
    port = server.url.rsplit(":", 1)[1].split("/", 1)[0]
    taken = cli("serve", "--port", port, "--secret-env", "PEER_SECRET", env={"PEER_SECRET": SECRET})
    assert taken.code == 1
    lines = taken.stderr.strip().splitlines()
    assert len(lines) == 1, taken.stderr
    assert lines[0].startswith(f"error: the sync server cannot listen on 127.0.0.1:{port}: ")
    assert "address already in use" in lines[0]
    assert "Traceback" not in taken.stderr

    code, stdout, stderr = server.stop()
    assert code == 0, stderr
    assert stdout.count(f"serving {server.storage} at {server.url}") == 1
    assert "listening on" not in stdout + stderr  # the library's own INFO line is dropped


def test_serve_applies_and_prints_its_unknown_peers_policy(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    """``--unknown-peers refuse``: a node not configured here, signing with the server
    secret, gets 403; the policy is printed when the server starts."""
    port = free_port()
    process = subprocess.Popen(  # noqa: S603 - our own console script
        [
            *serve_command(port),
            "--storage",
            f"sqlite:///{tmp_path / 'peer.db'}",
            "--unknown-peers",
            "refuse",
            "--no-auto-sync",
        ],
        cwd=tmp_path,
        env={**cli_env, "PEER_SECRET": SECRET},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"

    async def ask() -> int:
        await wait_for_health(base)
        target = "/sync/changes?since=0"
        headers = sign_headers(
            SECRET, new_message_id(), int(time.time()), request_payload("GET", target, "x1", b"")
        )
        headers[NODE_HEADER] = "x1"
        async with (
            aiohttp.ClientSession() as session,
            session.get(base + target, headers=headers) as reply,
        ):
            return reply.status

    try:
        assert asyncio.run(ask()) == 403
    finally:
        process.send_signal(signal.SIGTERM)
        stdout, _ = process.communicate(timeout=20)
    assert "unknown peers (nodes not configured here, signing with the server secret) are " in (
        stdout
    )
    assert "(--unknown-peers refuse)" in stdout


def test_status_shows_new_node_ids_of_bots_and_of_this_store(cli: CLI, tmp_path: Path) -> None:
    from neonpay import create_neonpay
    from neonpay.sync.grants import note_inbound_node

    assert add_bot(cli, "Store Bot", "https://store.example/sync", "--secret-env", "X").code == 0
    with create_neonpay(storage=f"sqlite:///{tmp_path / 'neonpay.db'}") as node:
        note_inbound_node(node.store, "Store Bot", "node-old", now=1.0)
        note_inbound_node(node.store, "Store Bot", "node-new", now=2.0)
        old_id = node.node_id
        new_id = node.store.renew_node_id("a peer held a counter of ours we never issued")
    shown = cli("sync", "status")
    assert shown.code == 0, shown.stderr
    assert "bot 'Store Bot' now signs its requests as node node-new (was node-old)" in shown.stderr
    assert f"this store was node {old_id} until it moved to node {new_id}" in shown.stderr
    data = cli("sync", "status", "--json").json()
    [peer] = data["peers"]
    assert peer["signs_as"]["previous_node_id"] == "node-old"
    assert [r["node_id"] for r in data["retired_node_ids"]] == [old_id]
