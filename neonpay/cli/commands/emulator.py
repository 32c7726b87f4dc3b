"""``neonpay emulator``: the local Telegram Bot API emulator as a process."""

from __future__ import annotations

import argparse
import asyncio
from typing import TYPE_CHECKING

from neonpay.cli.arguments import port, positive_int
from neonpay.cli.commands.emulator_user import register_actions
from neonpay.cli.signals import run_until_stopped
from neonpay.cli.tree import EXIT_OK, add_command
from neonpay.errors import ConfigurationError, MissingExtraError

if TYPE_CHECKING:
    from neonpay.cli.context import Context
    from neonpay.cli.tree import Subparsers
    from neonpay.testing import BotAPIEmulator

__all__ = ["register"]


def register(subparsers: Subparsers) -> None:
    """Add ``neonpay emulator``."""
    parser = add_command(
        subparsers,
        "emulator",
        help="run the local Telegram Bot API emulator (for testing bots, no network)",
        handler=run,
        examples=[
            "neonpay emulator --port 8081",
            "# then point your bot at http://127.0.0.1:8081 (see docs/cli.md),",
            "# and act as a user from another shell:",
            'neonpay emulator send --user 42 "/start"',
            "neonpay emulator pay --user 42",
        ],
        description=(
            "Run the local Telegram Bot API emulator until Ctrl-C or SIGTERM.\n"
            "Bots call http://HOST:PORT/bot<token>/<method> as they would call Telegram;\n"
            "any well-formed token is accepted. aiogram: TelegramAPIServer.from_base(URL);\n"
            "python-telegram-bot: base_url=URL + '/bot'.\n"
            "The actions (send, messages, invoices, pay, refund, bots) act as a user of\n"
            "a running emulator from another shell."
        ),
    )
    _serve_options(parser, default=None)
    actions = parser.add_subparsers(title="actions", metavar="ACTION")
    serve = add_command(
        actions,
        "serve",
        help="run the emulator (the same as 'neonpay emulator' with no action)",
        handler=run,
        examples=["neonpay emulator serve --port 8081"],
    )
    _serve_options(serve, default=argparse.SUPPRESS)
    register_actions(actions)


def _serve_options(parser: argparse.ArgumentParser, *, default: object) -> None:
    """``--host``, ``--port`` and ``--precheckout-timeout``; ``default`` SUPPRESS keeps
    what was given before the action (``neonpay emulator --port 9 serve``)."""

    def pick(value: object) -> object:
        return value if default is None else default

    parser.add_argument("--host", default=pick("127.0.0.1"), help="interface (default 127.0.0.1)")
    parser.add_argument("--port", type=port, default=pick(8081), help="port (default 8081; 0: any)")
    parser.add_argument(
        "--precheckout-timeout",
        type=positive_int,
        default=pick(10),
        metavar="SECONDS",
        help="seconds a bot has to answer a pre-checkout query (default 10, as Telegram)",
    )


def run(ctx: Context) -> int:
    try:
        from neonpay.testing import run_emulator
    except ImportError as exc:
        raise MissingExtraError("sync", "the Bot API emulator") from exc
    args = ctx.args
    out = ctx.out

    def announce(emulator: BotAPIEmulator) -> None:
        if out.json_mode:
            out.json({"url": emulator.base_url})
        out.line(f"Telegram Bot API emulator listening on {emulator.base_url}")
        out.line(f"  aiogram:             TelegramAPIServer.from_base({emulator.base_url!r})")
        out.line(f"  python-telegram-bot: base_url={emulator.ptb_base_url!r}")
        out.line(f"  raw Bot API:         {emulator.base_url}/bot<token>/<method>")
        out.line("Any well-formed token is accepted. Ctrl-C stops it.")

    try:
        asyncio.run(
            run_until_stopped(
                run_emulator(
                    args.host,
                    args.port,
                    on_ready=announce,
                    precheckout_timeout=args.precheckout_timeout,
                )
            )
        )
    except OSError as exc:
        raise ConfigurationError(
            f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}"
        ) from exc
    ctx.out.line("emulator stopped")
    return EXIT_OK
