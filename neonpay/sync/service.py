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
from neonpay.sync.decide import make_decide
from neonpay.sync.grants import Grant, UnknownPeers, grant_by_node
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
        grant: Grant | None = None,
    ) -> ChangesPage:
        """Our records changed after ``since`` (latest states, in sequence order), leaving
        out states received unchanged from ``requester``.

        ``grant`` is what the requester may do (default: found from ``requester``, see
        :func:`~neonpay.sync.grants.grant_by_node`): only the kinds it may read are sent.

        Raises:
            AccessDenied: the grant rules out reading (a peer configured here as PULL).
            ValidationError: ``since`` is negative or beyond our head (a cursor from the
                future: the requester's cursor belongs to an earlier store), ``limit`` is
                outside 1..5000, or ``kinds`` names an unknown kind.
        """
        if grant is None:
            grant = grant_by_node(self.neonpay.store, requester)
        grant.check_read()
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
        asked = _check_kinds(kinds)
        wanted: list[str] | None = grant.readable(asked)
        if asked is None and wanted is not None and len(wanted) == len(KINDS):
            wanted = None  # every kind: the feed's unfiltered path
        page = self.neonpay.store.feed(
            since, limit, kinds=wanted, exclude_received_from=requester or None
        )
        return ChangesPage(self.node_id, page.records, page.next_cursor, page.has_more)

    def records(
        self, kind: str, since: int = 0, limit: int = MAX_PAGE, *, grant: Grant | None = None
    ) -> ChangesPage:
        """The states of one kind changed after ``since`` (tombstones included): the view
        behind ``GET /sync/payment_stages`` and its siblings.

        Raises:
            AccessDenied: ``grant`` rules out reading this kind.
            ValidationError: an unknown kind, or a bad cursor or limit.
        """
        _check_kinds([kind])
        if grant is None:
            grant = Grant.for_unknown(None, UnknownPeers.READ_WRITE)
        grant.check_read(kind)
        return self.changes(since, limit, [kind], requester=grant.node, grant=grant)

    def apply(
        self,
        records: Sequence[Record],
        *,
        sender: str,
        wire_checked: bool = False,
        grant: Grant | None = None,
    ) -> PushResult:
        """Apply a pushed batch from the node ``sender``; one result per record, in order.

        Each state is checked (kind, metadata, and the fields against the same rules as a
        local write); an invalid one, or one of a kind we do not sync with a sender
        configured here as a peer, is ``REJECTED`` with the reason and changes nothing.
        The rest are applied in one transaction: ``APPLIED`` (ours was older, or the two
        merged deterministically), ``KNOWN`` (we have it or newer), ``CONFLICT`` (both
        changed it concurrently; ``current`` is our state). Applied states notify the
        change listeners, so they travel on to our own peers. ``wire_checked``: the
        records were built by the wire codec (see :meth:`RecordCheck.check`). ``grant``
        is what the sender may do (default: found from ``sender``, see
        :func:`~neonpay.sync.grants.grant_by_node`); records of kinds it may not write
        are ``REJECTED`` with the setting to change.

        A state holding a counter of our node id beyond what we issued, or proving that a
        node reused version counters, is ``REJECTED`` with our state as ``current``, so
        that the sender can tell whether it is the node that reused them (its store was
        restored from an older copy; see :mod:`neonpay.sync.identity`).

        Raises:
            AccessDenied: the grant rules out writing (a peer configured here as PUSH).
            ValidationError: the batch as a whole is malformed (too long, no sender).
        """
        if not isinstance(sender, str) or not sender:
            raise ValidationError("sender", "must name the sending node")
        if grant is None:
            grant = grant_by_node(self.neonpay.store, sender)
        grant.check_write()
        if len(records) > MAX_BATCH:
            raise ValidationError("records", f"at most {MAX_BATCH} records per batch")
        allowed = grant.kinds
        check = self._check.check
        refused: dict[int, ItemResult] = {}
        valid: list[Record] = []
        for index, record in enumerate(records):
            try:
                checked = check(record, wire_checked=wire_checked)
                if checked.kind not in allowed:
                    raise ValidationError("kind", grant.kind_refusal(checked.kind, "write"))
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

    def status(self, *, grant: Grant | None = None) -> dict[str, Any]:
        """A JSON-able summary: identity, head, protocol and package versions, configured
        peers with their cursors and lag, and the number of pending conflicts. It holds no
        token and no secret.

        ``grant``: the requester's grant. A configured peer sees only its own entry and
        its kinds; a node that is not configured sees no peers and no conflict count
        unless the server lets unknown nodes read and write.
        """
        from neonpay.sync.stats import peer_status

        store = self.neonpay.store
        if grant is not None:
            grant.check_access()
        full = grant is None or grant.policy is UnknownPeers.READ_WRITE
        peers: list[dict[str, Any]] = []
        for name, data in store.list_peers().items():
            if not full and (grant is None or name != grant.peer):
                continue
            try:
                peers.append(peer_status(store, name, data))
            except (ConfigurationError, NeonPayError) as exc:
                peers.append({"name": name, "error": str(exc)})
        status: dict[str, Any] = {
            "node_id": self.node_id,
            "last_seq": store.last_seq(),
            "protocol": PROTOCOL_VERSION,
            "version": __version__,
            "kinds": list(KINDS) if grant is None else list(grant.kinds),
            "peers": peers,
        }
        if full:
            status["pending_conflicts"] = len(pending_conflicts(store, close_settled=False))
            # node ids this store gave up (a restore from a backup was detected)
            status["retired_node_ids"] = store.retired_node_ids()
        return status


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
