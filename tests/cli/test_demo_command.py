"""``neonpay demo`` runs to completion as a real process, and ``--keep`` serves until SIGINT."""

from __future__ import annotations

import asyncio
import re
import shutil
import signal
from pathlib import Path

import aiohttp

from .helpers import CLI, neonpay_command

FULL_TOKEN = re.compile(r"\b\d{6,}:[A-Za-z0-9_-]{20,}")


def test_demo_finishes_with_identical_catalogs_and_a_recorded_payment(cli: CLI) -> None:
    result = cli("demo", "--json")
    assert result.code == 0, result.stderr[-3000:]
    report = result.json()
    assert report["ok"] is True
    assert report["identical"] is True
    assert report["payment_recorded"] is True

    catalogs = report["catalogs"]
    assert sorted(catalogs) == ["main", "store-2", "support"]
    assert catalogs["main"] == catalogs["store-2"] == catalogs["support"]
    main = catalogs["main"]
    # What the story did: a new product, a price change, a delete, a merged conflict.
    assert main["payment_stages/gift-card"]["price"] == 250
    assert main["payment_stages/basic"]["price"] == 45
    assert "payment_stages/lifetime" not in main
    premium = main["payment_stages/premium"]
    assert (premium["title"], premium["price"]) == ("Premium+", 110)
    assert premium["description"] == "Every feature, priority support"
    assert {"promo_codes/SPRING25", "promo_codes/WELCOME5"} <= set(main)

    conflicts = report["conflicts"]
    assert [(c["item_type"], c["item_id"], c["strategy"]) for c in conflicts] == [
        ("payment_stage", "premium", "merge")
    ]
    stats = report["stats"]
    assert stats["store-2"]["total_conflicts"] == 1
    for peer in ("store-2", "support"):
        assert stats[peer]["failed_syncs"] == 0
        assert stats[peer]["lag"] == 0

    payment = report["payment"]
    assert payment["approved"] is True
    assert (payment["stage_id"], payment["promo_code"]) == ("premium", "SPRING25")
    assert payment["amount"] == 110 - 110 * 25 // 100 == payment["emulator_balance"]
    assert payment["promo_uses"] == {"main": 1, "store-2": 1, "support": 1}
    # Each bot shows the network-wide total: one use, not one use per bot.
    assert (
        "SPRING25 usage seen on each bot: main 1, store-2 1, support 1 "
        "(1 use, counted once network-wide)"
    ) in result.stderr
    assert "1x" not in result.stderr

    # Nothing left behind, and no token in the output.
    assert not Path(report["directory"]).exists()
    assert not FULL_TOKEN.search(result.stdout + result.stderr)
    assert "[8/8]" in result.stderr  # the narration went to stderr in JSON mode


def test_demo_human_output_ends_with_the_verdict(cli: CLI, tmp_path: Path) -> None:
    result = cli("demo", "--dir", str(tmp_path / "demo"))
    assert result.code == 0, result.stderr[-3000:]
    assert "identical on all three bots" in result.stdout
    assert "Done: the three catalogs are identical" in result.stdout
    for name in ("main", "store-2", "support"):
        assert (tmp_path / "demo" / f"{name}.db").exists()  # --dir keeps the stores
    # The kept stores are ordinary stores: the CLI reads them.
    stages = cli(
        "stages", "list", "--json", "--storage", f"sqlite:///{tmp_path / 'demo' / 'support.db'}"
    ).json()
    assert sorted(s["id"] for s in stages) == ["basic", "gift-card", "premium"]

    again = cli("demo", "--dir", str(tmp_path / "demo"))
    assert again.code == 1
    assert "already holds demo stores" in again.stderr


async def test_demo_keep_serves_until_interrupted(tmp_path: Path, cli_env: dict[str, str]) -> None:
    process = await asyncio.create_subprocess_exec(
        *neonpay_command(),
        "demo",
        "--keep",
        cwd=tmp_path,
        env=cli_env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    lines: list[str] = []
    try:
        while not any("Ctrl-C stops them" in line for line in lines):
            raw = await asyncio.wait_for(process.stdout.readline(), timeout=60)
            assert raw, "the demo ended before it kept running"
            lines.append(raw.decode())
        for _ in range(4):  # the emulator and the three bots
            lines.append((await asyncio.wait_for(process.stdout.readline(), timeout=10)).decode())
        urls = re.findall(r"sync (http://127\.0\.0\.1:\d+)/sync", "".join(lines))
        assert len(urls) == 3
        async with aiohttp.ClientSession() as session:
            for url in urls:
                async with session.get(f"{url}/health") as reply:
                    assert reply.status == 200
        process.send_signal(signal.SIGINT)
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, stderr.decode()[-3000:]
    output = "".join(lines) + stdout.decode()
    kept = re.search(r"kept in (\S+)", output)
    assert kept is not None
    directory = Path(kept.group(1))
    try:
        assert (directory / "main.db").exists()
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    assert "Traceback" not in stderr.decode()
