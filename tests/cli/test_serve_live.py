"""``neonpay serve`` is live: a bot added with ``sync add-bot --auto-sync`` from another
shell starts syncing at once, and a stage written by the CLI reaches it with no manual
sync and no timer (the interval is an hour)."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from . import test_sync_commands
from .helpers import CLI, free_port
from .test_sync_commands import (
    SECRET,
    Server,
    add_bot,
    add_stage,
    serve_command,
    wait_for_health,
)

peer = test_sync_commands.server  # the peer bot, served by `neonpay serve`
_BOUND = 30.0  # seconds a wait may take before the test fails


async def _wait_for_price(cli: CLI, storage: str, stage_id: str, price: int) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _BOUND
    while True:
        listed = cli("stages", "list", "--json", "--storage", storage).json()
        if any(s["id"] == stage_id and s["price"] == price for s in listed):
            return
        assert loop.time() < deadline, f"{stage_id} at {price} did not reach the peer"
        await asyncio.sleep(0.1)


async def test_a_running_server_adopts_a_new_bot_and_pushes_cli_writes_at_once(
    cli: CLI, peer: Server, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    env = {"PEER_SECRET": SECRET}
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
        options = ["--direction", "push", "--auto-sync", "--interval", "60"]
        added = add_bot(cli, "peer", peer.url, *options, "--secret-env", "PEER_SECRET", env=env)
        assert added.code == 0, added.stderr
        assert add_stage(cli, "live", "Live", "Pushed", 3).code == 0
        await _wait_for_price(cli, peer.storage, "live", 3)
        assert cli("stages", "update", "live", "--price", "120").code == 0
        await _wait_for_price(cli, peer.storage, "live", 120)
        process.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(process.communicate(), timeout=20)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, err.decode()
    assert "auto sync with: no bot yet" in out.decode()
    assert "sync peer 'peer' was added" in err.decode()
    assert SECRET not in out.decode() + err.decode()
