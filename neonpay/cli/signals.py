"""Running a long-lived coroutine (a server) until Ctrl-C or SIGTERM, then stopping cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Coroutine
from typing import Any

__all__ = ["run_until_stopped"]

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


async def run_until_stopped(main: Coroutine[Any, Any, object]) -> bool:
    """Run ``main`` until it returns or SIGINT/SIGTERM arrives.

    On a signal, ``main`` is cancelled and awaited, so its ``finally`` blocks and
    cleanup hooks run before this returns. Returns True when stopped by a signal,
    False when ``main`` finished by itself; an exception of ``main`` propagates.
    """
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(main)
    stopped = False

    def stop() -> None:
        nonlocal stopped
        stopped = True
        task.cancel()

    installed = []
    for sig in _STOP_SIGNALS:
        try:
            loop.add_signal_handler(sig, stop)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread / Windows
            continue
        installed.append(sig)
    try:
        await asyncio.wait({task})
    except asyncio.CancelledError:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        raise
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
    if task.cancelled():
        if stopped:
            return True
        raise asyncio.CancelledError
    task.result()
    return False
