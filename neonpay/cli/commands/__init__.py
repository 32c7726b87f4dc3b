"""The commands of ``neonpay``, one module per command or command group."""

from __future__ import annotations

from typing import TYPE_CHECKING

from neonpay.cli.commands import demo, emulator, promo, serve, settings, stages, sync, transfer

if TYPE_CHECKING:
    from neonpay.cli.tree import Subparsers

__all__ = ["register_all"]


def register_all(subparsers: Subparsers) -> None:
    """Add every command, in the order ``neonpay --help`` lists them."""
    demo.register(subparsers)
    sync.register(subparsers)
    serve.register(subparsers)
    stages.register(subparsers)
    promo.register(subparsers)
    settings.register(subparsers)
    transfer.register(subparsers)
    emulator.register(subparsers)
