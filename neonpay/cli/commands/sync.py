"""``neonpay sync ...``: configure peer bots, sync with them, and watch the statistics.

Every action opens the store, builds a :class:`~neonpay.sync.MultiBotSyncManager` on it
(peers, cursors, history and pending conflicts are kept in the store) and calls the
public API; nothing here decides anything about sync itself.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from neonpay.cli.arguments import json_object, required_text
from neonpay.cli.sensitive import (
    STDIN,
    add_sensitive_option,
    read_sensitive,
    warn_if_on_command_line,
)
from neonpay.cli.tree import EXIT_FAILED, EXIT_OK, add_command, add_group
from neonpay.cli.views import format_time
from neonpay.cli.wording import in_cli_terms
from neonpay.errors import NeonPayError, mask_token

if TYPE_CHECKING:
    from neonpay.cli.context import Context
    from neonpay.cli.output import Output
    from neonpay.cli.tree import Subparsers
    from neonpay.sync.config import BotSyncConfig
    from neonpay.sync.conflicts import SyncConflict
    from neonpay.sync.multi import MultiBotSyncManager
    from neonpay.sync.results import SyncResult

__all__ = ["register"]

#: ``--kinds`` choices and the BotSyncConfig flag of each.
KIND_FLAGS = {
    "payment_stages": "sync_payment_stages",
    "promo_codes": "sync_promo_codes",
    "templates": "sync_templates",
    "settings": "sync_settings",
}
DIRECTIONS = ("push", "pull", "bidirectional")
STRATEGIES = ("source_wins", "target_wins", "merge", "ask_user")

BOT_COLUMNS = [
    ("name", "Name"),
    ("token", "Token"),
    ("webhook_url", "Sync URL"),
    ("direction", "Direction"),
    ("conflict_resolution", "Conflicts"),
    ("kinds_shown", "Kinds"),
    ("auto", "Auto sync"),
    ("secret", "Secret from"),
]
STATS_COLUMNS = [
    ("name", "Bot"),
    ("total_syncs", "Syncs"),
    ("successful_syncs", "OK"),
    ("failed_syncs", "Failed"),
    ("success", "Success"),
    ("total_items_synced", "Items"),
    ("total_conflicts", "Conflicts"),
    ("lag", "Lag"),
    ("last_sync", "Last sync"),
    ("last_error", "Last error"),
]
CONFLICT_COLUMNS = [
    ("id", "ID"),
    ("peer", "Bot"),
    ("item_type", "Kind"),
    ("item_id", "Key"),
    ("ours", "Ours (source)"),
    ("theirs", "Theirs (target)"),
]


def register(subparsers: Subparsers) -> None:
    """Add ``neonpay sync`` and its actions."""
    actions = add_group(
        subparsers,
        "sync",
        help="sync this bot's catalog with other bots",
        examples=[
            'neonpay sync add-bot --token-env STORE_TOKEN --name "Store Bot" '
            "--webhook https://store-bot.com/sync --direction bidirectional",
            "neonpay sync sync-all",
        ],
    )
    _add_bot_parser(actions)
    add_command(
        actions,
        "list-bots",
        help="list the configured bots (tokens masked)",
        handler=list_bots,
        reads_only=True,
        examples=["neonpay sync list-bots", "neonpay sync list-bots --json"],
    )
    remove = add_command(
        actions,
        "remove-bot",
        help="forget a configured bot (its sync history stays)",
        handler=remove_bot,
        examples=['neonpay sync remove-bot "Store Bot"'],
    )
    remove.add_argument("name", metavar="NAME", help="the bot's name")
    add_command(
        actions,
        "sync-all",
        help="sync with every configured bot now",
        handler=sync_all,
        reads_only=True,
        examples=["neonpay sync sync-all", "neonpay sync sync-all --json"],
        description=(
            "Sync with every configured bot now, concurrently. One line per bot says\n"
            "what moved; a bot that fails does not stop the others, and the exit code\n"
            "is 1 when any sync failed (the reason is on stderr)."
        ),
    )
    one = add_command(
        actions,
        "sync",
        help="sync with one configured bot now",
        handler=sync_one,
        reads_only=True,
        examples=['neonpay sync sync "Store Bot"'],
    )
    one.add_argument("name", metavar="NAME", help="the bot's name")
    add_command(
        actions,
        "stats",
        help="sync statistics per bot (success rate, items, conflicts, lag)",
        handler=stats,
        reads_only=True,
        examples=["neonpay sync stats", "neonpay sync stats --json"],
    )
    conflicts = add_command(
        actions,
        "conflicts",
        help="list the conflicts waiting for a decision (ask_user)",
        handler=list_conflicts,
        reads_only=True,
        examples=["neonpay sync conflicts"],
    )
    conflicts.add_argument("--bot", metavar="NAME", help="only conflicts with this bot")
    resolve = add_command(
        actions,
        "resolve",
        help="resolve a pending conflict",
        handler=resolve_conflict,
        examples=[
            "neonpay sync resolve 3 --take target",
            'neonpay sync resolve 3 --fields \'{"title": "Premium", "price": 120}\'',
        ],
        description=(
            "Resolve a pending conflict: keep ours (source), take the other bot's\n"
            "(target), merge field by field (merge), or give the fields to keep as JSON.\n"
            "The resolution is a new write that syncs to every bot like any edit."
        ),
    )
    resolve.add_argument("conflict_id", metavar="ID", type=int, help="the conflict's id")
    choice = resolve.add_mutually_exclusive_group(required=True)
    choice.add_argument("--take", choices=("source", "target", "merge"), help="which side")
    choice.add_argument(
        "--fields", metavar="JSON", type=json_object, help="the fields to keep, as a JSON object"
    )
    add_command(
        actions,
        "new-secret",
        help="print a fresh random signing secret (whsec_...) for a peer",
        handler=new_secret,
        examples=[
            "neonpay sync new-secret",
            "export STORE_2_SYNC_SECRET=$(neonpay sync new-secret)",
        ],
        description=(
            "Print a fresh random secret for signing sync requests with one peer: whsec_\n"
            "and the base64 of 32 random bytes (the Standard Webhooks form). Only the\n"
            "secret is printed on stdout, so $(neonpay sync new-secret) captures it;\n"
            '--json prints {"secret": ...}. Nothing is stored: give the secret to both\n'
            "sides (--secret-env VAR on add-bot, the peer's own configuration)."
        ),
    )
    add_command(
        actions,
        "status",
        help="this node's identity, change-log head, cursors and lag",
        handler=status,
        reads_only=True,
        examples=["neonpay sync status", "neonpay sync status --json"],
    )


def _add_bot_parser(actions: Subparsers) -> None:
    add = add_command(
        actions,
        "add-bot",
        help="add a bot to sync with (or change its settings)",
        handler=add_bot,
        examples=[
            'neonpay sync add-bot --token-env STORE_TOKEN --name "Store Bot" '
            '--webhook "https://store-bot.com/sync" --direction bidirectional '
            "--auto-sync --interval 30",
            'neonpay sync add-bot --token-env SUPPORT_TOKEN --name "Support Bot" '
            "--webhook https://support-bot.com/sync --direction push "
            "--kinds promo_codes templates --secret-env SUPPORT_SYNC_SECRET",
        ],
        description=(
            "Add a bot to sync with, or change the settings of the bot with that name.\n"
            "The configuration is saved in the store, so later commands and the bot\n"
            "itself (MultiBotSyncManager) see it. The request signing secret comes from\n"
            "--secret-env VAR (only the variable's name is stored), --secret, or else\n"
            "NEONPAY_SYNC_SECRET when syncing."
        ),
    )
    add_sensitive_option(add, "--token", "the other bot's token (shown masked)", required=True)
    add.add_argument("--name", required=True, type=required_text, help="a unique name for the bot")
    add.add_argument(
        "--webhook",
        required=True,
        metavar="URL",
        help="the other bot's sync URL, like https://host/sync",
    )
    add.add_argument(
        "--direction",
        choices=DIRECTIONS,
        type=str.lower,  # BIDIRECTIONAL too, as SyncDirection("BIDIRECTIONAL") in Python
        default="bidirectional",
        help="push: we send; pull: we receive; bidirectional (default): both",
    )
    add.add_argument(
        "--auto-sync",
        action="store_true",
        help="sync automatically while 'neonpay serve' (or the bot) runs",
    )
    add.add_argument(
        "--interval",
        type=float,
        default=60.0,
        metavar="MIN",
        help="minutes between automatic syncs (default 60)",
    )
    secret = add.add_mutually_exclusive_group()
    secret.add_argument(
        "--secret",
        metavar="S",
        help="the shared signing secret; '-' reads it from standard input (prefer --secret-env)",
    )
    secret.add_argument(
        "--secret-env", metavar="VAR", help="the environment variable that holds the secret"
    )
    add.add_argument(
        "--conflict",
        choices=STRATEGIES,
        type=str.lower,
        default="merge",
        help="what to do with concurrent edits (default merge)",
    )
    add.add_argument(
        "--kinds",
        nargs="+",
        choices=sorted(KIND_FLAGS),
        metavar="KIND",
        help="what to sync: payment_stages promo_codes templates settings (default: all)",
    )


# --- peers ------------------------------------------------------------------------------
def _manager(ctx: Context) -> MultiBotSyncManager:
    from neonpay.sync.multi import MultiBotSyncManager

    return MultiBotSyncManager(ctx.open_neonpay())


def _close(manager: MultiBotSyncManager) -> None:
    asyncio.run(manager.close())


def add_bot(ctx: Context) -> int:
    from neonpay.sync.config import BotSyncConfig
    from neonpay.web_sync import SECRET_ENV

    args = ctx.args
    kinds = set(args.kinds or KIND_FLAGS)
    token = read_sensitive(args, "--token")
    args.secret_from_stdin = args.secret == STDIN
    if args.secret_from_stdin:  # after the token: with both as '-', the token is line 1
        args.secret = read_sensitive(args, "--secret")
    config = BotSyncConfig(
        target_bot_token=token,
        target_bot_name=args.name,
        direction=args.direction,
        conflict_resolution=args.conflict,
        auto_sync=args.auto_sync,
        sync_interval_minutes=args.interval,
        webhook_url=args.webhook,
        webhook_secret=args.secret,
        webhook_secret_env=args.secret_env,
        **{flag: kind in kinds for kind, flag in KIND_FLAGS.items()},
    )
    manager = _manager(ctx)
    try:
        replaced = manager.get_bot(config.name) is not None
        manager.add_bot(config)
    finally:
        _close(manager)
    if ctx.out.json_mode:
        ctx.out.json(bot_view(config))
    else:
        verb = "updated" if replaced else "added"
        ctx.out.success(
            f"{verb} bot {config.name!r} ({config.direction.value}, "
            f"{config.webhook_url}, token {mask_token(config.target_bot_token)})"
        )
    # Only once the bot is saved: a refused add needs its error, not advice about secrets.
    if args.secret is not None and not args.secret_from_stdin:
        ctx.out.warn(
            "--secret puts the secret in your shell history and the process list; "
            "--secret-env VAR keeps it out of both"
        )
    if args.secret_env and not os.environ.get(args.secret_env):
        ctx.out.warn(f"{args.secret_env} is not set here; set it wherever you sync")
    if args.secret is None and args.secret_env is None and not os.environ.get(SECRET_ENV):
        ctx.out.warn(
            f"no secret given: syncing will need {SECRET_ENV} set (or add the bot again "
            "with --secret-env VAR)"
        )
    warn_if_on_command_line(args, "--token", ctx.out)
    return EXIT_OK


def bot_view(config: BotSyncConfig) -> dict[str, Any]:
    """A configured bot for display: token masked, no secret."""
    data = config.to_public_dict()
    data["name"] = config.name
    data["token"] = data.pop("target_bot_token")
    # Where the signing secret comes from (never the secret itself).
    if config.webhook_secret:
        source = "stored"
    elif config.webhook_secret_env:
        source = f"${config.webhook_secret_env}"
    else:
        source = "$NEONPAY_SYNC_SECRET"
    data["secret"] = source
    return data


def list_bots(ctx: Context) -> int:
    manager = _manager(ctx)
    try:
        bots = [bot_view(config) for config in manager.list_bots()]
    finally:
        _close(manager)
    rows = []
    for bot in bots:
        interval = bot["sync_interval_minutes"]
        rows.append(
            {
                **bot,
                "kinds_shown": ", ".join(k for k, flag in KIND_FLAGS.items() if bot[flag]),
                "auto": f"every {interval:g} min" if bot["auto_sync"] else "no",
            }
        )
    ctx.out.listing(
        bots, BOT_COLUMNS, rows, title="Bots", empty="none (add one with 'neonpay sync add-bot')"
    )
    return EXIT_OK


def remove_bot(ctx: Context) -> int:
    name = ctx.args.name
    manager = _manager(ctx)
    try:
        removed = manager.remove_bot(name)
    finally:
        _close(manager)
    if ctx.out.json_mode:
        ctx.out.json({"name": name, "removed": removed})
    if not removed:
        ctx.out.error(f"no bot named {name!r} (see 'neonpay sync list-bots')")
        return EXIT_FAILED
    if not ctx.out.json_mode:
        ctx.out.success(f"removed bot {name!r}")
    return EXIT_OK


# --- syncing ----------------------------------------------------------------------------
def result_view(result: SyncResult) -> dict[str, Any]:
    """A sync result with stable keys."""
    return {
        "peer": result.peer,
        "status": result.status.value,
        "items_synced": result.items_synced,
        "pushed": result.pushed,
        "pulled": result.pulled,
        "conflicts": [c.to_dict() for c in result.conflicts],
        "errors": list(result.errors),
        "started_at": result.started_at,
        "finished_at": result.finished_at,
        "duration": result.duration,
        "bytes_sent": result.bytes_sent,
        "bytes_received": result.bytes_received,
        "requests": result.requests,
    }


def result_line(result: SyncResult) -> str:
    """One line about a finished sync run."""
    conflicts = len(result.conflicts)
    text = (
        f"{result.peer}: {result.status.value} - {result.pushed} sent, {result.pulled} "
        f"received, {conflicts} conflict{'' if conflicts == 1 else 's'} "
        f"({result.duration:.2f} s)"
    )
    pending = [c for c in result.conflicts if c.outcome == "pending"]
    if pending:
        text += f"; {len(pending)} waiting for 'neonpay sync resolve'"
    return text


async def run_syncs(manager: MultiBotSyncManager, names: Sequence[str], out: Output) -> int:
    """Sync with ``names`` concurrently, printing a line per bot as each finishes.

    Returns the exit code: 1 when any sync did not complete.
    """
    results: dict[str, SyncResult] = {}

    async def one(name: str) -> None:
        out.line(f"syncing with {name} ...")
        try:
            result = await manager.sync_with_bot(name)
        except NeonPayError as exc:
            from neonpay.sync.results import SyncResult, SyncStatus

            result = SyncResult(peer=name, status=SyncStatus.FAILED, errors=[str(exc)])
        results[name] = result
        out.line(result_line(result))

    await asyncio.gather(*(one(name) for name in names))
    failed = [results[name] for name in names if not results[name].success]
    for result in failed:
        reason = "; ".join(result.errors) or result.status.value
        out.error(f"{result.peer}: {in_cli_terms(reason)}")
    if out.json_mode:
        out.json({name: result_view(results[name]) for name in names})
    return EXIT_FAILED if failed else EXIT_OK


def sync_all(ctx: Context) -> int:
    async def run() -> int:
        async with _manager(ctx) as manager:
            names = [config.name for config in manager.list_bots()]
            if not names:
                if ctx.out.json_mode:
                    ctx.out.json({})
                ctx.out.line("no bots configured; add one with 'neonpay sync add-bot'")
                return EXIT_OK
            return await run_syncs(manager, names, ctx.out)

    return asyncio.run(run())


def sync_one(ctx: Context) -> int:
    async def run() -> int:
        async with _manager(ctx) as manager:
            manager.get_sync_manager(ctx.args.name)  # NotFoundError before any output
            return await run_syncs(manager, [ctx.args.name], ctx.out)

    return asyncio.run(run())


def stats(ctx: Context) -> int:
    manager = _manager(ctx)
    try:
        all_stats = manager.get_all_sync_stats()
    finally:
        _close(manager)
    rows = [
        {
            **values,
            "name": name,
            "success": f"{values['success_rate']:.1f}%",
            "last_sync": format_time(values.get("last_sync_at")),
            "last_error": _shorten(values.get("last_error")),
        }
        for name, values in all_stats.items()
    ]
    ctx.out.listing(
        all_stats, STATS_COLUMNS, rows, title="Sync statistics", empty="no bots configured"
    )
    return EXIT_OK


def _shorten(text: str | None, limit: int = 72) -> str | None:
    if text is None or len(text) <= limit:
        return text
    return text[: limit - 1] + "…"


# --- conflicts --------------------------------------------------------------------------
def conflict_row(conflict: SyncConflict) -> dict[str, Any]:
    """A pending conflict for a table: both sides in short."""
    return {
        **conflict.to_dict(),
        "ours": _fields_text(conflict.source_data, conflict.source_deleted),
        "theirs": _fields_text(conflict.target_data, conflict.target_deleted),
    }


def _fields_text(fields: Mapping[str, Any], deleted: bool) -> str:
    if deleted:
        return "(deleted)"
    shown = {k: v for k, v in fields.items() if v is not None}
    return json.dumps(shown, ensure_ascii=False, sort_keys=True)


def list_conflicts(ctx: Context) -> int:
    name = ctx.args.bot
    manager = _manager(ctx)
    try:
        pending = manager.list_conflicts(name)
        unknown = name is not None and not pending and manager.get_bot(name) is None
    finally:
        _close(manager)
    if unknown:
        # A bot removed with conflicts still pending keeps them listed under its name.
        ctx.out.error(f"no bot named {name!r} (see 'neonpay sync list-bots')")
        return EXIT_FAILED
    ctx.out.listing(
        [c.to_dict() for c in pending],
        CONFLICT_COLUMNS,
        [conflict_row(c) for c in pending],
        title="Pending conflicts",
        empty="none",
    )
    return EXIT_OK


def resolve_conflict(ctx: Context) -> int:
    args = ctx.args
    choice: str | dict[str, Any] = args.fields if args.fields is not None else args.take
    manager = _manager(ctx)
    try:
        record = manager.resolve_conflict(args.conflict_id, choice)
    finally:
        _close(manager)
    if ctx.out.json_mode:
        ctx.out.json(
            {
                "id": args.conflict_id,
                "kind": record.kind,
                "key": record.key,
                "deleted": record.deleted,
                "fields": dict(record.fields),
            }
        )
    else:
        how = "the given fields" if args.fields is not None else args.take
        ctx.out.success(
            f"resolved conflict {args.conflict_id} on {record.kind} {record.key!r} with {how}; "
            "the resolution syncs to the other bots"
        )
    return EXIT_OK


def new_secret(ctx: Context) -> int:
    """Print a fresh ``whsec_`` key, and nothing else, on stdout (never stored)."""
    from neonpay.sync.credentials import new_secret as make_secret

    secret = make_secret()
    if ctx.out.json_mode:
        ctx.out.json({"secret": secret})
    else:
        # Not Output.line: that masks token-like text, and this text is the point.
        print(secret, file=ctx.out.stdout, flush=True)
    return EXIT_OK


def status(ctx: Context) -> int:
    from neonpay.sync.service import SyncService

    neonpay = ctx.open_neonpay()
    report = SyncService(neonpay).status()
    if ctx.out.json_mode:
        ctx.out.json({**report, "storage": neonpay.store.url})
        return EXIT_OK
    out = ctx.out
    out.line(f"node:              {report['node_id']}")
    out.line(f"store:             {neonpay.store.url}")
    out.line(f"change log head:   {report['last_seq']}")
    out.line(f"pending conflicts: {report['pending_conflicts']}")
    rows = [
        {
            **peer,
            "pull": peer.get("cursors", {}).get("pull"),
            "push": peer.get("cursors", {}).get("push"),
        }
        for peer in report["peers"]
    ]
    out.table(
        [
            ("name", "Bot"),
            ("peer_node_id", "Node"),
            ("direction", "Direction"),
            ("pull", "Pull cursor"),
            ("push", "Push cursor"),
            ("lag", "Lag"),
            ("error", "Error"),
        ],
        rows,
        title="Bots",
        empty="none",
    )
    for retired in report.get("retired_node_ids", []):
        out.warn(
            f"this store was node {retired.get('node_id')} until it moved to node "
            f"{retired.get('new_node_id')}: {retired.get('reason', '')}"
        )
    for peer in report["peers"]:
        signs_as = peer.get("signs_as") or {}
        if signs_as.get("previous_node_id"):
            out.warn(
                f"bot {peer['name']!r} now signs its requests as node {signs_as['node_id']} "
                f"(was {signs_as['previous_node_id']}): its store was recreated or restored; "
                "it keeps its grant"
            )
    return EXIT_OK
