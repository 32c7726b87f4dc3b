"""``neonpay emulator`` serves the Bot API emulator until SIGTERM, then exits 0."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import aiohttp

from .helpers import free_port, neonpay_command

TOKEN = "123456:ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghi"


async def wait_until_up(url: str, timeout: float = 20.0) -> dict[str, object]:
    """Poll ``url`` until it answers (bounded)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with aiohttp.ClientSession() as session:
        while True:
            try:
                async with session.get(url, timeout=aiohttp.ClientTimeout(total=2)) as reply:
                    body: dict[str, object] = await reply.json()
                    return body
            except aiohttp.ClientError:
                if loop.time() > deadline:
                    raise
                await asyncio.sleep(0.1)


async def test_emulator_process_answers_and_stops_on_sigterm(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        *neonpay_command(),
        "emulator",
        "--port",
        str(port),
        cwd=tmp_path,
        env=cli_env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        me = await wait_until_up(f"http://127.0.0.1:{port}/bot{TOKEN}/getMe")
        assert me["ok"] is True
        process.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(process.communicate(), timeout=20)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    stdout, stderr = out.decode(), err.decode()
    assert process.returncode == 0, stderr
    assert f"127.0.0.1:{port}" in stdout
    assert "Traceback" not in stderr
    assert TOKEN not in stdout + stderr
