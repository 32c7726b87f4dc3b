"""The serving side of sync: what a peer may ask of this node.

:class:`SyncService` answers the calls of the transport protocol (the HTTP server in
:mod:`neonpay.web_sync` and the in-process :class:`~neonpay.sync.local.LocalTransport`
both call it): who we are, our changes after a cursor, and applying a pushed batch. It
never resolves a conflict: it answers ``CONFLICT`` with our state, and the node running
the SyncManager resolves it and pushes the resolution.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from neonpay._version import __version__
from neonpay.errors import ConfigurationError, NeonPayError, ValidationError
from neonpay.store.base import KINDS, Outcome, Record
from neonpay.sync.config import BotSyncConfig
from neonpay.sync.decide import make_decide
from neonpay.sync.pending import pending_conflicts
from neonpay.sync.propagation import notify_applied
from neonpay.sync.protocol import (
    PROTOCOL_VERSION,
    ChangesPage,
    ItemResult,
    PeerInfo,
    PushResult,
    item_result,
)
from neonpay.sync.validation import MAX_CLOCK_AHEAD, RecordCheck

if TYPE_CHECKING:
    from neonpay.core.neonpay import NeonPay

__all__ = ["MAX_BATCH", "MAX_PAGE", "SyncService"]

logger = logging.getLogger("neonpay.sync")

#: The most records one pull answer may carry.
MAX_PAGE = 5000
#: The most records one push may carry.
MAX_BATCH = 5000


class SyncService:
    """Answers a peer's sync calls against ``neonpay``'s store.

    Every method is synchronous and short (local transactions only).
    """

    def __init__(self, neonpay: NeonPay, *, max_clock_ahead: float = MAX_CLOCK_AHEAD) -> None:
        self.neonpay = neonpay
        # max_clock_ahead: the signature tolerance of the server (one setting)
        self._check = RecordCheck(neonpay, max_clock_ahead=max_clock_ahead)

    @property
    def node_id(self) -> str:
        """This node's identity."""
        return self.neonpay.node_id

    def info(self) -> PeerInfo:
        """Our identity and the head of our change log."""
        return PeerInfo(
            node_id=self.node_id,
            last_seq=self.neonpay.store.last_seq(),
            protocol=PROTOCOL_VERSION,
            software=f"neonpay/{__version__}",
        )

    def changes(
        self,
        since: int,
        limit: int,
        kinds: Sequence[str] | None,
        *,
        requester: str | None,
    ) -> ChangesPage:
        """Our records changed after ``since`` (latest states, in sequence order), leaving
        out states received unchanged from ``requester``.

        A requester configured here as a peer gets only the kinds we sync with it.

        Raises:
            ValidationError: ``since`` is negative or beyond our head (a cursor from the
                future: the requester's cursor belongs to an earlier store), ``limit`` is
                outside 1..5000, ``kinds`` names an unknown kind, or the requester is a
                peer configured here as PULL (it never receives from us).
        """
        head = self.neonpay.store.last_seq()
        if isinstance(since, bool) or not isinstance(since, int) or since < 0:
            raise ValidationError("since", "must be a whole number of at least 0")
        if since > head:
            raise ValidationError(
                "since",
                f"cursor {since} is beyond this node's last change {head}: the cursor "
                f"belongs to another store; start again from 0",
            )
        _check_limit(limit, MAX_PAGE)
        wanted = _check_kinds(kinds)
        if requester:
            peer = self._configured(requester, receives=True)
            if peer is not None:  # only the kinds we exchange with that peer
                wanted = [k for k in (KINDS if wanted is None else wanted) if k in peer.kinds]
        page = self.neonpay.store.feed(
            since, limit, kinds=wanted, exclude_received_from=requester or None
        )
        return ChangesPage(self.node_id, page.records, page.next_cursor, page.has_more)

    def records(self, kind: str, since: int = 0, limit: int = MAX_PAGE) -> ChangesPage:
        """The states of one kind changed after ``since`` (tombstones included): the view
        behind ``GET /sync/payment_stages`` and its siblings.

        Raises:
            ValidationError: an unknown kind, or a bad cursor or limit.
        """
        return self.changes(since, limit, [kind], requester=None)

    def apply(
        self, records: Sequence[Record], *, sender: str, wire_checked: bool = False
    ) -> PushResult:
        """Apply a pushed batch from the node ``sender``; one result per record, in order.

        Each state is checked (kind, metadata, and the fields against the same rules as a
        local write); an invalid one, or one of a kind we do not sync with a sender
        configured here as a peer, is ``REJECTED`` with the reason and changes nothing.
        The rest are applied in one transaction: ``APPLIED`` (ours was older, or the two
        merged deterministically), ``KNOWN`` (we have it or newer), ``CONFLICT`` (both
        changed it concurrently; ``current`` is our state). Applied states notify the
        change listeners, so they travel on to our own peers. ``wire_checked``: the
        records were built by the wire codec (see :meth:`RecordCheck.check`).

        A state holding a counter of our node id beyond what we issued, or proving that a
        node reused version counters, is ``REJECTED`` with our state as ``current``, so
        that the sender can tell whether it is the node that reused them (its store was
        restored from an older copy; see :mod:`neonpay.sync.identity`).

        Raises:
            ValidationError: the batch as a whole is malformed (too long, no sender), or
                the sender is a peer configured here as PUSH (it never writes to us).
        """
        if not isinstance(sender, str) or not sender:
            raise ValidationError("sender", "must name the sending node")
        if len(records) > MAX_BATCH:
            raise ValidationError("records", f"at most {MAX_BATCH} records per batch")
        peer = self._configured(sender, receives=False)
        check = self._check.check
        refused: dict[int, ItemResult] = {}
        valid: list[Record] = []
        for index, record in enumerate(records):
            try:
                checked = check(record, wire_checked=wire_checked)
                if peer is not None and checked.kind not in peer.kinds:
                    raise ValidationError(
                        "kind",
                        f"this node does not sync {checked.kind} records with {peer.name!r}",
                    )
            except ValidationError as exc:
                refused[index] = item_result(
                    _text(getattr(record, "kind", "")),
                    _text(getattr(record, "key", "")),
                    Outcome.REJECTED,
                    str(exc),
                )
                continue
            valid.append(checked)
        # from_peer: refuse counters of our node id we never issued, and act on proof of
        # counter reuse (see neonpay.sync.identity); such refusals carry our state
        store = self.neonpay.store
        outcomes = store.apply_batch(valid, make_decide(sender), from_peer=True) if valid else []
        applied: list[Record] = []
        answered: list[ItemResult] = []
        for outcome in outcomes:
            record = outcome.incoming
            kind = outcome.outcome
            answered.append(
                item_result(
                    record.kind,
                    record.key,
                    kind,
                    outcome.reason,
                    outcome.local if kind is Outcome.CONFLICT or kind is Outcome.REJECTED else None,
                )
            )
            if kind is Outcome.APPLIED and outcome.state is not None:
                applied.append(outcome.state)
        if applied:
            notify_applied(self.neonpay, applied, sender=sender)
        return PushResult(self.node_id, _in_order(answered, refused))

    def _configured(self, node_id: str, *, receives: bool) -> BotSyncConfig | None:
        """The config of the peer with ``node_id``, if one is configured here (None for
        nodes we have not synced with, or whose stored config is unreadable).

        Raises:
            ValidationError: the peer's direction rules the call out: a PUSH peer never
                writes to us, a PULL peer never receives from us.
        """
        store = self.neonpay.store
        for name, data in store.list_peers().items():
            known = (
                store.get_cursor(name, "pull").peer_node_id
                or store.get_cursor(name, "push").peer_node_id
            )
            if known != node_id:
                continue
            try:
                config = BotSyncConfig.from_dict(data)
            except ConfigurationError:
                return None
            direction = config.direction
            if receives and not direction.pushes:
                raise ValidationError(
                    "requester",
                    f"this node only pulls from {name!r} (direction pull): it sends it nothing",
                )
            if not receives and not direction.pulls:
                raise ValidationError(
                    "sender",
                    f"this node only pushes to {name!r} (direction push): it accepts no "
                    "changes from it",
                )
            return config
        return None

    def status(self) -> dict[str, Any]:
        """A JSON-able summary: identity, head, protocol and package versions, configured
        peers with their cursors and lag, and the number of pending conflicts. It holds no
        token and no secret."""
        from neonpay.sync.stats import peer_status

        store = self.neonpay.store
        peers: list[dict[str, Any]] = []
        for name, data in store.list_peers().items():
            try:
                peers.append(peer_status(store, name, data))
            except (ConfigurationError, NeonPayError) as exc:
                peers.append({"name": name, "error": str(exc)})
        return {
            "node_id": self.node_id,
            "last_seq": store.last_seq(),
            "protocol": PROTOCOL_VERSION,
            "version": __version__,
            "kinds": list(KINDS),
            "peers": peers,
            "pending_conflicts": len(pending_conflicts(store, close_settled=False)),
        }


def _in_order(answered: list[ItemResult], refused: dict[int, ItemResult]) -> list[ItemResult]:
    """The results of a batch in the order of its records: ``refused`` at their
    positions, ``answered`` (the rest, in order) around them."""
    if not refused:
        return answered
    merged: list[ItemResult] = []
    rest = iter(answered)
    for index in range(len(answered) + len(refused)):
        merged.append(refused[index] if index in refused else next(rest))
    return merged


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _check_limit(limit: Any, most: int) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= most:
        raise ValidationError("limit", f"must be a whole number from 1 to {most}")


def _check_kinds(kinds: Sequence[str] | None) -> list[str] | None:
    if kinds is None:
        return None
    if isinstance(kinds, str):
        kinds = [kinds]
    wanted: list[str] = []
    for kind in kinds:
        if kind not in KINDS:
            raise ValidationError("kinds", f"unknown kind {kind!r}: use {', '.join(KINDS)}")
        if kind not in wanted:
            wanted.append(kind)
    return wanted
