"""An in-process transport: a peer's :class:`~neonpay.sync.service.SyncService` called
directly, for tests and for several bots in one process.

It behaves like a remote peer: every request and answer goes through its JSON wire form
(nothing is shared between the two stores), bytes are counted as the JSON size, errors
the peer raises come back as :class:`~neonpay.errors.PeerRejected`, and ``online =
False`` makes the peer unreachable.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from neonpay import _json
from neonpay.errors import AccessDenied, PeerRejected, PeerUnreachable, ValidationError
from neonpay.store.base import Outcome, Record
from neonpay.store.sql import record_from_wire
from neonpay.sync.protocol import (
    ChangesPage,
    ItemResult,
    PeerInfo,
    PushResult,
    TransportStats,
)
from neonpay.sync.service import SyncService

__all__ = ["LocalTransport"]


class LocalTransport:
    """A :class:`~neonpay.sync.protocol.Transport` to a service in this process.

    Args:
        service: the peer's service.
        name: how errors name the peer.

    Attributes:
        online: set to False to simulate a peer that is down (calls raise
            :class:`~neonpay.errors.PeerUnreachable`).
        stats: requests and bytes carried.
    """

    def __init__(self, service: SyncService, *, name: str = "") -> None:
        self.service = service
        self.name = name or service.node_id
        self.online = True
        self.stats = TransportStats()
        self._closed = False

    def _request(self, body: Any) -> None:
        if self._closed:
            raise PeerUnreachable(f"the transport to peer {self.name!r} is closed")
        if not self.online:
            raise PeerUnreachable(
                f"peer {self.name!r} is unreachable; the changes stay queued for the next sync"
            )
        self.stats.requests += 1
        self.stats.bytes_sent += len(_json.dumps(body))

    def _answer(self, body: Any) -> Any:
        data = _json.dumps(body)
        self.stats.bytes_received += len(data)
        return _json.loads(data)

    def _rejected(self, exc: ValidationError | AccessDenied) -> PeerRejected:
        status = 403 if isinstance(exc, AccessDenied) else 400
        return PeerRejected(
            f"peer {self.name!r} refused the request: {exc}", status=status, reason=str(exc)
        )

    async def info(self) -> PeerInfo:
        self._request({})
        info = self.service.info()
        data = self._answer(
            {
                "node_id": info.node_id,
                "last_seq": info.last_seq,
                "protocol": info.protocol,
                "software": info.software,
            }
        )
        return PeerInfo(data["node_id"], data["last_seq"], data["protocol"], data["software"])

    async def pull(
        self,
        since: int,
        limit: int,
        kinds: Sequence[str],
        *,
        requester: str,
    ) -> ChangesPage:
        request = _json.loads(
            _json.dumps(
                {"since": since, "limit": limit, "kinds": list(kinds), "requester": requester}
            )
        )
        self._request(request)
        try:
            page = self.service.changes(
                request["since"], request["limit"], request["kinds"], requester=request["requester"]
            )
        except (ValidationError, AccessDenied) as exc:
            raise self._rejected(exc) from exc
        data = self._answer(
            {
                "node_id": page.node_id,
                "changes": [r.to_wire() for r in page.records],
                "next_cursor": page.next_cursor,
                "has_more": page.has_more,
            }
        )
        return ChangesPage(
            data["node_id"],
            [record_from_wire(r) for r in data["changes"]],
            data["next_cursor"],
            data["has_more"],
        )

    async def push(self, records: Sequence[Record], *, sender: str) -> PushResult:
        request = {"sender": sender, "changes": [r.to_wire() for r in records]}
        self._request(request)
        request = _json.loads(_json.dumps(request))
        try:
            result = self.service.apply(
                [record_from_wire(r) for r in request["changes"]], sender=request["sender"]
            )
        except (ValidationError, AccessDenied) as exc:
            raise self._rejected(exc) from exc
        data = self._answer(
            {
                "node_id": result.node_id,
                "results": [
                    {
                        "kind": item.kind,
                        "key": item.key,
                        "outcome": item.outcome.value,
                        "reason": item.reason,
                        "current": None if item.current is None else item.current.to_wire(),
                    }
                    for item in result.results
                ],
            }
        )
        return PushResult(
            data["node_id"],
            [
                ItemResult(
                    item["kind"],
                    item["key"],
                    Outcome(item["outcome"]),
                    item["reason"],
                    None if item["current"] is None else record_from_wire(item["current"]),
                )
                for item in data["results"]
            ],
        )

    async def close(self) -> None:
        self._closed = True

    def __repr__(self) -> str:
        return f"<LocalTransport to {self.name!r} online={self.online}>"
