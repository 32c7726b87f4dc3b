"""What to do with one incoming record state: pure functions, run inside the store's
write transaction (see :meth:`neonpay.store.base.Store.apply_batch`).

* nothing local: apply it;
* its version dominates ours: apply it; ours dominates or equals it: already known;
* concurrent: merge it here when the merge needs no strategy (promo usage counters, two
  tombstones, equal fields, two conflict resolutions); otherwise it is a **conflict**,
  left for the node running the SyncManager to resolve;
* equal versions with different content (two merges that took different paths): the
  larger state by :func:`~neonpay.sync.merge.order_key` wins, so both sides converge;
* promo usage counters never go down: unless ours is newer, the result holds each node's
  maximum count, even against a newer version with a lower count (forged or broken).

A state stored exactly as it came is marked as received from the sender, so it is never
echoed back to it; a merged state is not, so the sender gets the merge.
"""

from __future__ import annotations

from collections.abc import Mapping

from neonpay.store.base import ApplyOutcome, Decide, Outcome, Record, checked_outcome
from neonpay.sync.clock import Order, compare_versions
from neonpay.sync.merge import content_equal, order_key, settle, state_equal

__all__ = ["decide", "expecting", "make_decide"]


def decide(incoming: Record, local: Record | None, *, sender: str | None) -> ApplyOutcome:
    """Decide about ``incoming`` (from ``sender``) against our ``local`` state."""
    if local is None:  # the common case of a first sync: built without __init__
        return checked_outcome(Outcome.APPLIED, incoming, incoming, None, sender)
    order = compare_versions(incoming.version, local.version)
    if incoming.kind == "promo_usage" and order is not Order.BEFORE:
        return _usage(incoming, local, order, sender)
    if order is Order.AFTER:
        return checked_outcome(Outcome.APPLIED, incoming, incoming, local, sender)
    if order is Order.BEFORE:
        return ApplyOutcome(Outcome.KNOWN, incoming, None, local)
    if order is Order.EQUAL:
        if content_equal(incoming, local) or order_key(incoming) <= order_key(local):
            return ApplyOutcome(Outcome.KNOWN, incoming, None, local)
        return ApplyOutcome(Outcome.APPLIED, incoming, incoming, local, sender)
    merged = settle(incoming, local)
    if merged is None:
        return ApplyOutcome(Outcome.CONFLICT, incoming, None, local)
    if state_equal(merged, local):
        return ApplyOutcome(Outcome.KNOWN, incoming, None, local)
    received = sender if state_equal(merged, incoming) else None
    return ApplyOutcome(Outcome.APPLIED, incoming, merged, local, received)


def _usage(incoming: Record, local: Record, order: Order, sender: str | None) -> ApplyOutcome:
    """Usage counters only grow. Whatever the versions claim, each node's count is the
    maximum of both sides, so a forged or broken state (a newer version with a lower
    count) can never take uses away; the sender then receives the corrected state."""
    covers = all(int(incoming.fields.get(node, 0)) >= int(n) for node, n in local.fields.items())
    if order is Order.AFTER and covers:
        return ApplyOutcome(Outcome.APPLIED, incoming, incoming, local, sender)
    if order is Order.EQUAL and content_equal(incoming, local):
        return ApplyOutcome(Outcome.KNOWN, incoming, None, local)
    merged = settle(incoming, local)
    assert merged is not None  # usage counters always settle
    if state_equal(merged, local):
        return ApplyOutcome(Outcome.KNOWN, incoming, None, local)
    received = sender if state_equal(merged, incoming) else None
    return ApplyOutcome(Outcome.APPLIED, incoming, merged, local, received)


def make_decide(sender: str | None) -> Decide:
    """:func:`decide` bound to one sender, in the shape ``Store.apply_batch`` takes."""

    def bound(incoming: Record, local: Record | None) -> ApplyOutcome:
        return decide(incoming, local, sender=sender)

    return bound


def expecting(
    expected: Mapping[tuple[str, str], Record | None], *, sender: str | None = None
) -> Decide:
    """A compare-and-set decide for writing resolutions.

    Each incoming state is written only if our state of that record is still the one the
    resolution was computed from (``expected``, None for absent); otherwise the outcome
    is ``KNOWN`` with reason ``"moved"`` and the caller tries again. ``sender`` marks a
    state that equals what that peer sent (so it is not echoed back).
    """

    def bound(incoming: Record, local: Record | None) -> ApplyOutcome:
        before = expected.get((incoming.kind, incoming.key))
        unchanged = (
            local is None if before is None else local is not None and state_equal(local, before)
        )
        if not unchanged:
            return ApplyOutcome(Outcome.KNOWN, incoming, None, local, reason="moved")
        return ApplyOutcome(Outcome.APPLIED, incoming, incoming, local, sender)

    return bound
