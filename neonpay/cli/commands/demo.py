"""``neonpay demo``: three bots on loopback sync their catalog, resolve a conflict and sell."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any

from neonpay.cli.signals import run_until_stopped
from neonpay.cli.tree import EXIT_FAILED, EXIT_OK, add_command
from neonpay.errors import MissingExtraError

if TYPE_CHECKING:
    from neonpay.cli.context import Context
    from neonpay.cli.demo.network import DemoNetwork
    from neonpay.cli.output import Output
    from neonpay.cli.tree import Subparsers

__all__ = ["register"]


def register(subparsers: Subparsers) -> None:
    """Add ``neonpay demo``."""
    parser = add_command(
        subparsers,
        "demo",
        help="watch three local bots sync their catalog and sell (no network, no tokens)",
        handler=demo,
        examples=["neonpay demo", "neonpay demo --keep", "neonpay demo --json > report.json"],
        description=(
            "Start a Telegram Bot API emulator and three bots (main, store-2, support), each\n"
            "with its own SQLite store and sync server on 127.0.0.1. Make changes on\n"
            "different bots (a new product, a price change, a promo code, a delete, and a\n"
            "concurrent edit that MERGE resolves), sync them step by step and automatically,\n"
            "show the final catalogs side by side and the statistics, then let an emulated\n"
            "customer buy with a promo code. Takes a few seconds; cleans up after itself.\n"
            "Exit code 0 when the catalogs match and the payment was recorded.\n"
            "--storage is not used: the demo makes its own stores."
        ),
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="leave the bots running (until Ctrl-C) and print their URLs",
    )
    parser.add_argument(
        "--dir",
        type=Path,
        metavar="DIR",
        help="put the stores in DIR and keep them (default: a temporary "
        "directory, removed at the end)",
    )


def demo(ctx: Context) -> int:
    try:
        import aiohttp  # noqa: F401 - the servers, the emulator and the bot client need it
    except ImportError as exc:  # pragma: no cover - aiohttp comes with the sync extra
        raise MissingExtraError("sync", "neonpay demo") from exc
    from neonpay.cli.demo import DemoNetwork

    args = ctx.args
    network = DemoNetwork(directory=args.dir, keep_files=args.keep or args.dir is not None)
    report: dict[str, Any] = {}

    async def run() -> None:
        from neonpay.cli.demo import DemoStory
        from neonpay.cli.demo.narrator import Narrator
        from neonpay.cli.demo.story import STEPS

        async with network:
            ctx.out.heading("NEONPAY demo: a store chain of three bots on this machine")
            narrator = Narrator(ctx.out, STEPS)
            report.update(await DemoStory(network, narrator).run())
            report["directory"] = str(network.path)
            report["kept"] = network.keep_files
            if ctx.out.json_mode:
                ctx.out.json(report)
            _summary(ctx.out, report)
            if args.keep:
                await _keep_running(network, ctx.out)

    stopped = asyncio.run(run_until_stopped(run()))
    if "ok" not in report:
        ctx.out.error("the demo was stopped before it finished" if stopped else "the demo failed")
        return EXIT_FAILED
    if args.keep:
        ctx.out.line(f"Stopped. The stores are kept in {report['directory']}")
    return EXIT_OK if report["ok"] else EXIT_FAILED


def _summary(out: Output, report: dict[str, Any]) -> None:
    out.line()
    if report["ok"]:
        out.success("Done: the three catalogs are identical and the payment was recorded.")
    else:
        if not report.get("identical"):
            out.error("the catalogs of the three bots differ")
        if not report.get("payment_recorded"):
            out.error("the customer's payment was not recorded")
    if report["kept"]:
        out.line(f"The stores are kept in {report['directory']}")
    else:
        out.line("Everything is stopped and the temporary stores removed on exit.")
        out.line(
            "Next: 'neonpay demo --keep' leaves the bots running to play with; "
            "docs/cli.md lists every command."
        )


async def _keep_running(network: DemoNetwork, out: Output) -> None:
    """Restart auto sync and serve until Ctrl-C, telling how to play with the bots."""
    assert network.manager is not None
    assert network.emulator is not None
    await network.manager.start_auto_sync_all()
    out.line()
    out.heading("The bots keep running (auto sync on); Ctrl-C stops them")
    out.line(f"  Bot API emulator  {network.emulator.base_url}")
    for bot in network.bots.values():
        out.line(f"  {bot.name:<8}  sync {bot.url}   store {bot.storage}")
    store2 = network.bots["store-2"].storage
    support = network.bots["support"].storage
    out.line("  Try, in another terminal:")
    out.line(f"    neonpay --storage {store2} stages update basic --price 40")
    out.line(f"    neonpay --storage {support} stages list      # a moment later")
    out.line(f"    neonpay --storage {network.bots['main'].storage} sync stats")
    await asyncio.Event().wait()
