"""Every python and bash block of docs/spec/multi-bot-sync.md runs, in order, as written.

Only tokens, URLs, ``your_bot`` and the listen address are swapped (see
``substitution.py``). After a block runs, its check (below, by the heading it sits under)
looks at what it did: the stores of this bot and of the stand-in peers, what it printed,
and what the functions it defines do when called the way the spec means them to be.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web

from neonpay import (
    BotSyncConfig,
    ConflictResolution,
    DiscountType,
    MultiBotSyncManager,
    NeonPay,
    PaymentStage,
    SyncDirection,
)
from neonpay.sync import SyncStatus

from .environment import BlockRun, PageRun, free_port
from .markdown import Snippet, heading_keys
from .pages import DOCS, Pages, page_snippets, pages_fixture

SPEC = "spec/multi-bot-sync.md"
SNIPPETS = page_snippets(SPEC)
STORE = "store-bot.example.com"
SUPPORT = "support-bot.example.com"
TARGET = "target-bot.com"
CLI_STORE = "store-bot.com"
CONNECTOR_PEER = "webhook-peer.example.com"
WAIT = 20.0  # seconds a change may take to reach a peer by auto sync

Check = Callable[[PageRun, BlockRun], Awaitable[None]]


def seed(page: PageRun) -> None:
    """What the peers hold before the reader starts: each bot has a catalog of its own."""
    page.peer(STORE).create_payment_stage(
        "store-special", PaymentStage("Store special", "Only the store bot had it", 30)
    )
    page.peer(SUPPORT).promotions.create_promo_code("SUPPORTONLY", DiscountType.PERCENTAGE, 5)


pages = pages_fixture({SPEC: seed})


# --- helpers ---------------------------------------------------------------------------------
async def eventually(condition: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    """Wait (bounded) until ``condition()`` holds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.05)


def main(page: PageRun) -> NeonPay:
    neonpay = page.namespace["neonpay"]
    assert isinstance(neonpay, NeonPay)
    return neonpay


def multi(page: PageRun) -> MultiBotSyncManager:
    manager = page.namespace["multi_sync"]
    assert isinstance(manager, MultiBotSyncManager)
    return manager


def names(manager: MultiBotSyncManager) -> list[str]:
    return [config.target_bot_name for config in manager.list_bots()]


def config(page: PageRun) -> BotSyncConfig:
    value = page.namespace["config"]
    assert isinstance(value, BotSyncConfig)
    return value


def local_url(page: PageRun, host: str) -> str:
    return page.peers[host].url


def output(block: BlockRun) -> str:
    return "".join(run.stdout for run in block.commands)


# --- the checks, by heading ------------------------------------------------------------------
async def basic_setup(page: PageRun, block: BlockRun) -> None:
    neonpay = main(page)
    assert neonpay.store.url == page.storage_url  # the durable default ($NEONPAY_STORAGE)
    assert neonpay.adapter is not None  # your_bot was recognised
    assert names(multi(page)) == []


async def configure_targets(page: PageRun, block: BlockRun) -> None:
    manager = multi(page)
    assert names(manager) == ["Main Store Bot", "Support Bot"]
    store = manager.get_bot("Main Store Bot")
    assert store is not None
    assert store.webhook_url == local_url(page, STORE)
    assert store.direction is SyncDirection.BIDIRECTIONAL
    assert store.auto_sync
    support = manager.get_bot("Support Bot")
    assert support is not None
    assert support.direction is SyncDirection.PUSH
    assert support.kinds == ("promo_code", "promo_usage", "template", "setting")
    assert set(main(page).store.list_peers()) == {"Main Store Bot", "Support Bot"}  # persisted
    shown = repr(manager.list_bots())
    assert all(token not in shown for token in page.subs.tokens.values())


async def start_auto_sync(page: PageRun, block: BlockRun) -> None:
    manager, neonpay = multi(page), main(page)
    store_peer = page.peer(STORE)
    assert manager.auto_sync_running
    # Auto sync starts with a full sync: the store bot's own product arrives here ...
    await eventually(
        lambda: neonpay.get_payment_stage("store-special") is not None,
        "the Main Store Bot's product was pulled",
    )
    # ... and a local write reaches the bidirectional auto-sync peer by itself.
    neonpay.create_payment_stage("realtime", PaymentStage("Realtime", "Written after start", 25))
    neonpay.promotions.create_promo_code("SPRING25", DiscountType.PERCENTAGE, 25)
    await eventually(
        lambda: (
            store_peer.get_payment_stage("realtime") is not None
            and store_peer.promotions.get_promo_code("SPRING25") is not None
        ),
        "a local write reached the Main Store Bot",
    )
    # The push-only support bot has auto_sync=False: nothing went there.
    assert page.peer(SUPPORT).promotions.get_promo_code("SPRING25") is None


def direction_check(host: str, direction: SyncDirection) -> Check:
    async def check(page: PageRun, block: BlockRun) -> None:
        value = config(page)
        assert value.direction is direction
        assert value.webhook_url == local_url(page, host)

    return check


def strategy_check(strategy: ConflictResolution) -> Check:
    async def check(page: PageRun, block: BlockRun) -> None:
        assert config(page).conflict_resolution is strategy

    return check


async def webhook_endpoints(page: PageRun, block: BlockRun) -> None:
    app = page.namespace["app"]
    assert isinstance(app, web.Application)
    assert block.served_port is not None  # run_sync_server served /health, then stopped
    routes = {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None
    }
    listed = re.findall(
        r"^- `(?P<methods>[A-Z/]+) (?P<path>/\S+)`", (DOCS / SPEC).read_text(), re.MULTILINE
    )
    assert len(listed) == 6
    for methods, path in listed:
        for method in methods.split("/"):
            assert (method, path) in routes, f"the spec lists {method} {path}; the app lacks it"


async def webhook_security(page: PageRun, block: BlockRun) -> None:
    value = config(page)
    assert value.webhook_secret == "your_webhook_secret"
    assert "your_webhook_secret" not in repr(value)


async def statistics(page: PageRun, block: BlockRun) -> None:
    stats = page.namespace["all_stats"]
    assert set(stats) == {"Main Store Bot", "Support Bot"}
    assert stats["Main Store Bot"]["total_syncs"] >= 1  # the auto syncs
    assert stats["Main Store Bot"]["success_rate"] == 100.0
    assert stats["Support Bot"]["total_syncs"] == 0  # never synced yet: no invented figures
    assert "Bot: Main Store Bot" in block.stdout
    assert "Bot: Support Bot" in block.stdout
    assert "Success Rate: 100.0%" in block.stdout


async def manual_sync(page: PageRun, block: BlockRun) -> None:
    result = page.namespace["result"]
    assert set(result) == {"Main Store Bot", "Support Bot"}
    assert all(r.status is SyncStatus.COMPLETED for r in result.values()), result
    support = page.peer(SUPPORT)
    # Support Bot: push only, promo codes and templates but no payment stages.
    assert support.promotions.get_promo_code("SPRING25") is not None
    assert support.get_payment_stage("realtime") is None
    assert main(page).promotions.get_promo_code("SUPPORTONLY") is None  # push never pulls
    assert result["Support Bot"].items_synced >= 1
    assert "Status: SyncStatus.COMPLETED" in block.stdout


async def cli_add_bot(page: PageRun, block: BlockRun) -> None:
    stored = main(page).store.get_peer("Store Bot")
    assert stored is not None
    assert stored["webhook_url"] == local_url(page, CLI_STORE)
    assert stored["auto_sync"] is True
    assert stored["sync_interval_minutes"] == 30


async def cli_list_bots(page: PageRun, block: BlockRun) -> None:
    shown = output(block)
    assert "Store Bot" in shown
    assert "Main Store Bot" in shown
    assert all(token not in shown for token in page.subs.tokens.values())  # masked


async def cli_sync_all(page: PageRun, block: BlockRun) -> None:
    assert page.peer(CLI_STORE).get_payment_stage("realtime") is not None


async def cli_stats(page: PageRun, block: BlockRun) -> None:
    assert "Store Bot" in output(block)


async def cli_remove_bot(page: PageRun, block: BlockRun) -> None:
    assert main(page).store.get_peer("Store Bot") is None


async def custom_resolver(page: PageRun, block: BlockRun) -> None:
    """The custom resolver settles real conflicts: the higher price wins, both ways."""
    neonpay, target = main(page), page.peer(TARGET)
    manager = page.namespace["sync_manager"]
    assert type(manager.conflict_resolver).__name__ == "CustomConflictResolver"
    neonpay.create_payment_stage("duel", PaymentStage("Duel", "Priced on both sides", 50))
    neonpay.settings.set("banner", "ours")
    first = await manager.sync_all()
    assert first.status is SyncStatus.COMPLETED, first.errors
    assert target.get_payment_stage("duel") is not None

    for ours, theirs in ((70, 90), (120, 100)):
        neonpay.update_payment_stage("duel", price=ours)
        target.update_payment_stage("duel", price=theirs)
        result = await manager.sync_all()
        assert result.status is SyncStatus.COMPLETED, result.errors
        assert [c.item_id for c in result.conflicts] == ["duel"]
        best = max(ours, theirs)
        assert neonpay.get_payment_stage("duel").price == best  # type: ignore[union-attr]
        assert target.get_payment_stage("duel").price == best  # type: ignore[union-attr]

    # Not a stage: super().resolve_conflict() applies the configured strategy (MERGE).
    neonpay.settings.set("banner", "ours, edited")
    await asyncio.sleep(0.01)  # edits within one millisecond are ordered by node id instead
    target.settings.set("banner", "theirs, edited later")
    result = await manager.sync_all()
    assert [c.item_type for c in result.conflicts] == ["setting"]
    assert neonpay.settings.get("banner") == target.settings.get("banner") == "theirs, edited later"


async def selective(page: PageRun, block: BlockRun) -> None:
    value = config(page)
    assert value.kinds == ("payment_stage", "template")
    assert not value.sync_analytics


async def conditional(page: PageRun, block: BlockRun) -> None:
    assert block.loops == ["conditional_auto_sync"]  # ran, stayed alive, was cancelled


async def error_handling(page: PageRun, block: BlockRun) -> None:
    """``safe_sync`` reports a failed peer and notifies; healthy peers are not reported."""
    manager = multi(page)
    offline = BotSyncConfig(
        target_bot_name="Offline Bot", webhook_url=f"http://127.0.0.1:{free_port()}/sync"
    )
    manager.add_bot(offline)
    try:
        await page.namespace["safe_sync"]()
    finally:
        manager.remove_bot("Offline Bot")
    errors = page.logs.messages(40)
    assert not [m for m in errors if m.startswith("Sync error:")], errors  # no crash
    assert [m for m in errors if m.startswith("Sync failed with Offline Bot")], errors
    sent = page.notifications.sent
    assert [n["variables"]["bot_name"] for n in sent] == ["Offline Bot"]
    assert sent[0]["template"] == "sync_failed"
    assert sent[0]["variables"]["errors"]


async def webhook_errors(page: PageRun, block: BlockRun) -> None:
    assert await page.namespace["robust_webhook_sync"]() is True
    stage = page.peer(CONNECTOR_PEER).get_payment_stage("webhook-demo")
    assert stage is not None
    assert stage.price == 42


async def batch(page: PageRun, block: BlockRun) -> None:
    await page.namespace["batch_sync_payment_stages"](page.namespace["stages_data"])
    stages = page.peer(CONNECTOR_PEER).list_payment_stages()
    assert {f"bulk-{i:02d}" for i in range(25)} <= set(stages)
    assert stages["bulk-24"].price == 34


async def compression(page: PageRun, block: BlockRun) -> None:
    data: dict[str, Any] = {"data": page.namespace["stages_data"]}
    packed = page.namespace["compress_sync_data"](data)
    assert isinstance(packed, bytes)
    assert len(packed) < len(str(data))
    assert page.namespace["decompress_sync_data"](packed) == data


async def authentication(page: PageRun, block: BlockRun) -> None:
    verify = page.namespace["verify_webhook_signature"]
    payload, secret = '{"data": []}', "your_webhook_secret"
    good = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
    assert verify(payload, good, secret) is True
    assert verify(payload + " ", good, secret) is False
    assert verify(payload, good, secret + "x") is False


async def token_security(page: PageRun, block: BlockRun) -> None:
    tokens = page.namespace["bot_tokens"]
    assert all(tokens.values())  # read from the environment
    assert config(page).target_bot_token == tokens["store_bot"]
    assert tokens["store_bot"] not in repr(config(page))


async def started_install(page: PageRun, block: BlockRun) -> None:
    assert "extras ['sync'] exist" in block.commands[0].skipped


async def started_setup(page: PageRun, block: BlockRun) -> None:
    # A new manager over the same store finds the peers saved before (a restart).
    assert names(multi(page)) == ["Main Store Bot", "Support Bot"]


async def started_configure(page: PageRun, block: BlockRun) -> None:
    assert names(multi(page))[-1] == "Target Bot"


async def started_auto(page: PageRun, block: BlockRun) -> None:
    assert multi(page).auto_sync_running


async def started_monitor(page: PageRun, block: BlockRun) -> None:
    listing, stats, synced = (run.stdout for run in block.commands)
    assert "Target Bot: completed" in synced
    assert "Target Bot" in listing
    assert "Target Bot" in stats
    assert all(token not in listing + stats for token in page.subs.tokens.values())


CHECKS: dict[tuple[str, int], Check] = {
    ("1. Basic Setup", 0): basic_setup,
    ("2. Configure Target Bots", 0): configure_targets,
    ("3. Start Auto-sync", 0): start_auto_sync,
    ("Push (Source Target)", 0): direction_check(TARGET, SyncDirection.PUSH),
    ("Pull (Target Source)", 0): direction_check("source-bot.com", SyncDirection.PULL),
    ("Bidirectional (Source Target)", 0): direction_check(
        "partner-bot.com", SyncDirection.BIDIRECTIONAL
    ),
    ("Source Wins", 0): strategy_check(ConflictResolution.SOURCE_WINS),
    ("Target Wins", 0): strategy_check(ConflictResolution.TARGET_WINS),
    ("Merge", 0): strategy_check(ConflictResolution.MERGE),
    ("Ask User", 0): strategy_check(ConflictResolution.ASK_USER),
    ("Setting up Webhook Endpoints", 0): webhook_endpoints,
    ("Webhook Security", 0): webhook_security,
    ("Get Sync Statistics", 0): statistics,
    ("Manual Synchronization", 0): manual_sync,
    ("Add Bot for Sync", 0): cli_add_bot,
    ("List Configured Bots", 0): cli_list_bots,
    ("Sync with All Bots", 0): cli_sync_all,
    ("Show Sync Statistics", 0): cli_stats,
    ("Remove Bot from Sync", 0): cli_remove_bot,
    ("Custom Conflict Resolution", 0): custom_resolver,
    ("Selective Synchronization", 0): selective,
    ("Conditional Auto-sync", 0): conditional,
    ("Sync Error Handling", 0): error_handling,
    ("Webhook Error Handling", 0): webhook_errors,
    ("Batch Synchronization", 0): batch,
    ("Compression", 0): compression,
    ("Webhook Authentication", 0): authentication,
    ("Token Security", 0): token_security,
    ("Getting Started", 0): started_install,
    ("Getting Started", 1): started_setup,
    ("Getting Started", 2): started_configure,
    ("Getting Started", 3): started_auto,
    ("Getting Started", 4): started_monitor,
}


KEYS = [(heading, ordinal) for _, heading, ordinal in heading_keys(SNIPPETS)]


def test_every_block_has_a_check() -> None:
    """A new block in the spec gets a check here, or this fails."""
    assert sorted(set(KEYS) - set(CHECKS)) == []
    assert sorted(set(CHECKS) - set(KEYS)) == []


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize(
    ("snippet", "key"), list(zip(SNIPPETS, KEYS, strict=True)), ids=[s.test_id for s in SNIPPETS]
)
async def test_spec_snippet(pages: Pages, snippet: Snippet, key: tuple[str, int]) -> None:
    page = await pages.get(snippet)
    block = await page.run(snippet)
    await CHECKS[key](page, block)
