"""Passing applied changes on: states written by sync notify the change listeners, like
local writes do, so that real-time sync carries them further (A -> B -> C).

While listeners run, :func:`current_sender` names the node the states came from, so a
listener can avoid waking the sync with that very node (it has them already).
"""

from __future__ import annotations

from collections.abc import Iterable
from contextvars import ContextVar
from typing import TYPE_CHECKING

from neonpay.store.base import Record

if TYPE_CHECKING:
    from neonpay.core.neonpay import NeonPay

__all__ = ["current_sender", "notify_applied"]

_sender: ContextVar[str | None] = ContextVar("neonpay_sync_sender", default=None)


def current_sender() -> str | None:
    """The node whose states are being announced to listeners right now, if any."""
    return _sender.get()


def notify_applied(neonpay: NeonPay, states: Iterable[Record], *, sender: str | None) -> None:
    """Tell ``neonpay``'s change listeners about ``states`` that came from ``sender``."""
    token = _sender.set(sender)
    try:
        neonpay.catalog.notify_all(states)
    finally:
        _sender.reset(token)
