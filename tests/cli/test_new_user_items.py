"""Small things a new user tripped over, each fixed and kept fixed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from neonpay import BotSyncConfig, MultiBotSyncManager, PaymentStage, create_neonpay
from neonpay.errors import ValidationError
from neonpay.web_sync import SyncServer

from .helpers import CLI

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_counts_are_singular_for_one(cli: CLI, tmp_path: Path) -> None:
    assert cli("promo", "add", "ONE", "--percent", "5").code == 0
    run = cli("export", "--output", str(tmp_path / "out.json"))
    assert run.code == 0, run.stderr
    assert "1 promo code," in run.stdout
    assert "0 payment stages" in run.stdout


def test_an_expired_promo_code_is_not_listed_as_active(cli: CLI) -> None:
    assert cli("promo", "add", "OLD", "--percent", "5", "--expires", "2020-01-01").code == 0
    assert cli("promo", "add", "NEW", "--percent", "5").code == 0
    assert cli("promo", "add", "OFF", "--percent", "5", "--inactive").code == 0
    table = cli("promo", "list").stdout
    states = {
        line.split()[0]: line for line in table.splitlines() if line[:3] in ("OLD", "NEW", "OFF")
    }
    assert "expired" in states["OLD"]
    assert re.search(r"\byes\b", states["NEW"])
    assert re.search(r"\bno\b", states["OFF"])
    listed = {p["code"]: p["state"] for p in cli("promo", "list", "--json").json()}
    assert listed == {"NEW": "yes", "OFF": "no", "OLD": "expired"}


def test_one_wording_for_an_unknown_bot(cli: CLI) -> None:
    assert cli("settings", "set", "keep", "1").code == 0
    expected = "error: no bot named 'Nope' (see 'neonpay sync list-bots')"
    for argv in (("sync", "sync", "Nope"), ("sync", "remove-bot", "Nope"),
                 ("sync", "conflicts", "--bot", "Nope")):  # fmt: skip
        run = cli(*argv)
        assert run.code == 1
        assert run.stderr.strip() == expected, argv


def test_has_secret_counts_the_shared_environment_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = BotSyncConfig(
        target_bot_token="123456:AAAAAAAAAAAAAAAA",
        target_bot_name="peer",
        webhook_url="https://peer.example.com/sync",
    )
    monkeypatch.delenv("NEONPAY_SYNC_SECRET", raising=False)
    assert config.to_public_dict()["has_secret"] is False
    monkeypatch.setenv("NEONPAY_SYNC_SECRET", "a-shared-secret-0123456789")
    assert config.to_public_dict()["has_secret"] is True


def test_the_price_rule_reads_well() -> None:
    with pytest.raises(ValidationError) as caught:
        PaymentStage("T", "D", price=1.5)  # type: ignore[arg-type]
    assert caught.value.rule == "must be a whole number of Stars (an int, not a float)"


async def test_a_bad_signature_gives_its_advice_once(tmp_path: Path) -> None:
    local = create_neonpay(storage=f"sqlite:///{tmp_path / 'a.db'}", node_id="node-a")
    remote = create_neonpay(storage=f"sqlite:///{tmp_path / 'b.db'}", node_id="node-b")
    try:
        async with SyncServer(remote, port=0, webhook_secret="x" * 32) as server:
            manager = MultiBotSyncManager(local)
            manager.add_bot(
                BotSyncConfig(
                    target_bot_token="123456:AAAAAAAAAAAAAAAA",
                    target_bot_name="B",
                    webhook_url=server.url,
                    webhook_secret="y" * 32,
                )
            )
            result = await manager.sync_with_bot("B")
            await manager.close()
    finally:
        local.close()
        remote.close()
    (error,) = result.errors
    assert "401 bad_signature" in error
    assert error.count("check") == 1
    assert error.count("secret") == 1


def test_cli_docs_serve_on_loopback_like_the_security_guide() -> None:
    cli_md = (DOCS / "cli.md").read_text(encoding="utf-8")
    security = (DOCS / "guide" / "security.md").read_text(encoding="utf-8")
    assert "Serve the sync endpoints on 127.0.0.1" in security
    assert "--host 0.0.0.0" not in cli_md
    assert "default `127.0.0.1`: keep it" in cli_md
