"""``neonpay serve``: this store's sync server, with automatic sync of configured bots."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from neonpay.cli.arguments import port
from neonpay.cli.signals import run_until_stopped
from neonpay.cli.tree import EXIT_OK, add_command
from neonpay.sync.credentials import resolve_secrets

if TYPE_CHECKING:
    from neonpay.cli.context import Context
    from neonpay.cli.tree import Subparsers

__all__ = ["register"]


def register(subparsers: Subparsers) -> None:
    """Add ``neonpay serve``."""
    parser = add_command(
        subparsers,
        "serve",
        help="run the sync server for this store (and auto sync with configured bots)",
        handler=serve,
        examples=[
            "NEONPAY_SYNC_SECRET=... neonpay serve --host 127.0.0.1 --port 8080",
            "neonpay serve --port 8080 --secret-env STORE_SYNC_SECRET",
        ],
        description=(
            "Serve this store's sync endpoints (/sync/..., /health) so that other bots can\n"
            "push to it and pull from it, and run automatic sync with every configured bot\n"
            "that has --auto-sync. Requests are signed with the shared secret from\n"
            "--secret-env VAR, --secret S, else NEONPAY_SYNC_SECRET (several secrets\n"
            "separated by spaces are all accepted, the first signs). Stops cleanly on\n"
            "Ctrl-C or SIGTERM."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    parser.add_argument("--port", type=port, default=8080, help="port (default 8080; 0: any)")
    secret = parser.add_mutually_exclusive_group()
    secret.add_argument(
        "--secret-env", metavar="VAR", help="the environment variable holding the secret(s)"
    )
    secret.add_argument(
        "--secret",
        metavar="S",
        help="the secret(s), separated by spaces (prefer --secret-env)",
    )
    parser.add_argument(
        "--insecure",
        action="store_true",
        help="serve without a secret (local experiments only: anyone who "
        "can reach the port can read and write the catalog)",
    )
    parser.add_argument(
        "--unknown-peers",
        choices=("read-write", "read", "refuse"),
        default="read-write",
        help="what a node that is not a configured bot may do when it signs with the "
        "server-wide secret (default read-write; configured bots get their own grant)",
    )
    parser.add_argument(
        "--no-auto-sync",
        action="store_true",
        help="only serve; do not sync with the configured bots",
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        help="what to log on stderr (default INFO)",
    )


class _AnnouncedByTheCommand(logging.Filter):
    """Drops the server's own "listening on" log line: ``neonpay serve`` prints a fuller
    one (node, store and URL), and one announcement is enough."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (
            record.name == "neonpay.web_sync.server"
            and record.levelno == logging.INFO
            and str(record.msg).startswith("sync server for node")
        )


_POLICY_WORDS = {
    "read-write": "may read and write every kind",
    "read": "may only read",
    "refuse": "are refused",
}


def _policy_line(policy: str) -> str:
    """What ``neonpay serve`` says of its unknown-peers policy when it starts."""
    return (
        f"unknown peers (nodes not configured here, signing with the server secret) "
        f"{_POLICY_WORDS[policy]} (--unknown-peers {policy}); configured bots get their "
        "own grant"
    )


def serve(ctx: Context) -> int:
    from neonpay.sync.multi import MultiBotSyncManager
    from neonpay.web_sync import SyncServer

    args = ctx.args
    out = ctx.out
    library = logging.getLogger("neonpay")
    library.setLevel(args.log_level)
    for handler in library.handlers:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler.addFilter(_AnnouncedByTheCommand())
    # no secret here may still serve peers that have secrets of their own: the server decides
    keys = resolve_secrets(args.secret, env=args.secret_env, insecure=True)
    if args.secret is not None:
        out.warn(
            "--secret puts the secret in your shell history and the process list; "
            "--secret-env VAR keeps it out of both"
        )
    neonpay = ctx.open_neonpay()
    server = SyncServer(
        neonpay,
        args.host,
        args.port,
        keys[0] if keys else None,
        secrets=keys[1:] or None,
        insecure=args.insecure,
        unknown_peers=args.unknown_peers,
    )

    async def run() -> None:
        async with MultiBotSyncManager(neonpay) as manager:
            await server.start()
            try:
                if out.json_mode:
                    out.json(
                        {
                            "node_id": neonpay.node_id,
                            "url": server.url,
                            "unknown_peers": args.unknown_peers,
                        }
                    )
                out.line(f"node {neonpay.node_id} serving {neonpay.store.url} at {server.url}")
                out.line(_policy_line(args.unknown_peers))
                auto = [c.name for c in manager.list_bots() if c.auto_sync]
                if not args.no_auto_sync:  # bots added later (any process) start at once
                    await manager.start_auto_sync_all()
                    out.line("auto sync with: " + (", ".join(auto) or "no bot yet"))
                out.line("Ctrl-C stops it.")
                await asyncio.Event().wait()
            finally:
                await manager.stop_auto_sync_all()
                await server.close()

    asyncio.run(run_until_stopped(run()))
    out.line("sync server stopped")
    return EXIT_OK
