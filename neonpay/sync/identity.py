"""Counter reuse: evidence that a node issued the same version counters twice (pure).

A version counter names one write: ``{"a": 7}`` is the seventh write of node ``a`` to a
record. A store put back from an older copy (a backup, a snapshot) has forgotten its
last writes, and its next writes reuse their counters for other content. Peers that
hold the forgotten writes then take the new ones for states they already have (a lost
write), or the other way round (silent divergence). Two kinds of evidence show it:

* **a counter of ours beyond what we issued**: a peer's state of a record holds a
  counter of our current node id above the one our state of that record holds. We
  never wrote it, as far as this store knows: either the store was restored, or the peer
  forged it. Adopting it would let a peer poison our future counters (a counter at the
  ceiling would make our next write one that every peer refuses), so it is refused, and
  the node moves to a fresh node id either way.
* **a broken clock invariant**: a hybrid logical clock respects causality. A write is
  stamped after everything its node had seen, and a merge keeps the later stamp of its
  two sides, so a state's stamp is the stamp of the latest write it covers. Hence when
  one state's version dominates another's, its stamp is not earlier, and two states with
  equal versions have equal stamps. A pair that breaks this holds two different writes
  under one counter; the later stamp was issued by the node that reused it.

The store acts on the evidence (:meth:`neonpay.store.base.Store.apply_batch` with
``from_peer=True``): when the reuser is this store (its current node id or one it
retired) it takes a fresh node id and re-stamps its state of the record, so that the
peer's state and ours become concurrent and the conflict strategy settles them; when the
reuser is another node, the state is refused with the reason.
"""

from __future__ import annotations

from neonpay.store.base import Record
from neonpay.sync.clock import Order, compare_versions, stamp_node

__all__ = ["counter_beyond", "reuser"]


def counter_beyond(incoming: Record, local: Record | None, node_id: str) -> int:
    """The counter of ``node_id`` that ``incoming`` holds when it is beyond ours
    (``local``'s, 0 when absent), else 0."""
    theirs = incoming.version.get(node_id, 0)
    if not theirs:
        return 0
    ours = local.version.get(node_id, 0) if local is not None else 0
    return theirs if theirs > ours else 0


def reuser(incoming: Record, local: Record) -> str | None:
    """The node that reused version counters, when ``incoming`` and ``local`` (two states
    of one record) break the clock invariant; None when they keep it."""
    order = compare_versions(incoming.version, local.version)
    if order is Order.CONCURRENT:
        return None
    if order is Order.EQUAL:
        if incoming.hlc == local.hlc:
            return None
        later = max(incoming.hlc, local.hlc)
    elif order is Order.AFTER:  # incoming covers every write of local
        if incoming.hlc >= local.hlc:
            return None
        later = local.hlc
    else:  # local covers every write of incoming
        if local.hlc >= incoming.hlc:
            return None
        later = incoming.hlc
    return stamp_node(later) or None
