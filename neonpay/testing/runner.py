"""Running the emulator as a standalone server (``python -m neonpay.testing``)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Sequence
from typing import Any

from .emulator import BotAPIEmulator

__all__ = ["main", "run_emulator"]

logger = logging.getLogger("neonpay.testing")


async def run_emulator(
    host: str = "127.0.0.1",
    port: int = 8081,
    *,
    ready: asyncio.Event | None = None,
    on_ready: Callable[[BotAPIEmulator], object] | None = None,
    **options: Any,
) -> None:
    """Serve the emulator on ``host:port`` until cancelled, then close it cleanly.

    ``options`` are passed to :class:`BotAPIEmulator` (e.g. ``precheckout_timeout``).
    Once the server listens, ``ready`` is set and ``on_ready(emulator)`` is called.
    """
    async with BotAPIEmulator(host, port, **options) as emulator:
        logger.info("Telegram Bot API emulator listening on %s", emulator.base_url)
        if on_ready is not None:
            on_ready(emulator)
        if ready is not None:
            ready.set()
        await asyncio.Event().wait()


def _announce(emulator: BotAPIEmulator) -> None:
    print(f"Telegram Bot API emulator listening on {emulator.base_url}", flush=True)
    print(f"  aiogram:  TelegramAPIServer.from_base({emulator.base_url!r})", flush=True)
    print(f"  PTB:      base_url={emulator.ptb_base_url!r}", flush=True)
    print(f"  telebot:  API_URL={emulator.telebot_api_url!r}", flush=True)


async def _serve(host: str, port: int, precheckout_timeout: float) -> None:
    """Run until SIGINT/SIGTERM, then close the emulator cleanly."""
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    if task is not None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await run_emulator(host, port, on_ready=_announce, precheckout_timeout=precheckout_timeout)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m neonpay.testing",
        description="Local Telegram Bot API emulator for testing bots (no network).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8081, help="port (default 8081)")
    parser.add_argument(
        "--precheckout-timeout",
        type=float,
        default=10.0,
        help="seconds a bot has to answer a pre-checkout query (default 10)",
    )
    parser.add_argument(
        "--log-level", default="WARNING", help="logging level (default WARNING; tokens masked)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit code."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=str(args.log_level).upper(), format="%(levelname)s %(message)s")
    try:
        asyncio.run(_serve(args.host, args.port, args.precheckout_timeout))
    except KeyboardInterrupt:
        return 0
    except OSError as exc:
        print(f"cannot start the emulator: {exc}")
        return 1
    return 0
