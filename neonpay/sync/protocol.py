"""What a sync engine asks of a peer, whatever carries it (in-process or HTTP).

The engine talks to a peer through a :class:`Transport`; the peer answers through its
:class:`~neonpay.sync.service.SyncService`. Both sides exchange plain dataclasses, so the
engine never imports aiohttp: the HTTP transport in :mod:`neonpay.web_sync` encodes the
same calls as requests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from neonpay._frozen import build
from neonpay.store.base import Outcome, Record

__all__ = [
    "PROTOCOL_VERSION",
    "ChangesPage",
    "ItemResult",
    "PeerInfo",
    "PushResult",
    "Transport",
    "TransportStats",
    "item_result",
]

#: The version of the sync protocol this package speaks.
PROTOCOL_VERSION = 1


@dataclass(frozen=True)
class PeerInfo:
    """Who a peer is and how far its change log has got."""

    node_id: str
    last_seq: int
    protocol: int = PROTOCOL_VERSION
    software: str = ""


@dataclass(frozen=True)
class ChangesPage:
    """One page of a peer's change feed (latest states after a cursor)."""

    node_id: str
    records: list[Record]
    next_cursor: int
    has_more: bool


@dataclass(frozen=True)
class ItemResult:
    """What the receiver did with one pushed record.

    For ``CONFLICT``, ``current`` is the receiver's state, so the sender can resolve
    the conflict and push the resolution. For ``REJECTED``, ``reason`` says why.
    """

    kind: str
    key: str
    outcome: Outcome
    reason: str = ""
    current: Record | None = None


def item_result(
    kind: str, key: str, outcome: Outcome, reason: str = "", current: Record | None = None
) -> ItemResult:
    """An :class:`ItemResult` from values of the right types, without the frozen
    dataclass ``__init__`` (one is made per record pushed, on both sides)."""
    return build(
        ItemResult,
        {"kind": kind, "key": key, "outcome": outcome, "reason": reason, "current": current},
    )


@dataclass(frozen=True)
class PushResult:
    """The receiver's answer to a pushed batch, one item result per record, in order."""

    node_id: str
    results: list[ItemResult] = field(default_factory=list)


@dataclass
class TransportStats:
    """Traffic a transport has carried (bytes as sent on the wire, after compression)."""

    requests: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0


@runtime_checkable
class Transport(Protocol):
    """A connection to one peer."""

    stats: TransportStats

    async def info(self) -> PeerInfo:
        """The peer's identity and head of its change log.

        Raises:
            PeerUnreachable, PeerRejected, SignatureError.
        """

    async def pull(
        self,
        since: int,
        limit: int,
        kinds: Sequence[str],
        *,
        requester: str,
    ) -> ChangesPage:
        """The peer's changes after ``since`` of the given kinds, leaving out states the
        peer received from ``requester`` unchanged (they would only echo back)."""

    async def push(self, records: Sequence[Record], *, sender: str) -> PushResult:
        """Offer ``records`` to the peer; it applies those that dominate its own."""

    async def close(self) -> None:
        """Release connections. Idempotent."""
