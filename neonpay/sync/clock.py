"""Hybrid logical clocks and version vectors: pure functions, no I/O.

A hybrid logical clock (HLC) stamp is ``(wall_ms, counter, node_id)``. Stamps of one
node only grow, a stamp taken after receiving another is greater than it, and every
stamp is close to wall time. Stamps are encoded as fixed-width strings that sort in
the same order as the tuples, so databases can compare them as text.

A version vector maps ``node_id -> counter``: how many writes of each node a record
state has seen. One vector *dominates* another when it is >= on every node and > on
one; two vectors that do not dominate each other either way are *concurrent*, the only
case that is a real conflict.
"""

from __future__ import annotations

import enum
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from neonpay.errors import ValidationError

__all__ = [
    "HLC",
    "MAX_CLOCK_SKEW",
    "MAX_VERSION_COUNTER",
    "STAMP_RE",
    "Order",
    "VersionVector",
    "compare_versions",
    "merge_versions",
    "next_counter",
    "next_hlc",
    "stamp_node",
    "stamp_run",
]

VersionVector = dict[str, int]

#: The largest counter a version vector may hold, for any node: ``2**53 - 1``, the
#: largest whole number every JSON reader keeps exactly (a JavaScript ``Number``, a
#: double). The wire codec and the record checks refuse anything above it, and a local
#: write that would go past it fails (``ValidationError``) instead of producing a state
#: that peers refuse. Headroom: a counter grows by one per write of one node to one
#: record, so a node writing the same record a million times a second would need 285
#: years to reach it; and a peer can never push a counter of *our* node id (we refuse
#: counters of ours we never issued), so no state received can bring it near.
MAX_VERSION_COUNTER = 2**53 - 1
#: Seconds two clocks may disagree: how far a signed request's timestamp may be from the
#: receiver's clock (the default ``tolerance`` of the HTTP server and client), and how
#: far ahead of the receiver's clock a record's clock stamp may be. One setting, so that
#: a clock that is off enough to have its stamps refused is also refused by signatures,
#: and a receiver's clock is never dragged further ahead than this.
MAX_CLOCK_SKEW = 300

_WALL_DIGITS = 15
_COUNTER_DIGITS = 6
_MAX_COUNTER = 10**_COUNTER_DIGITS - 1
#: The exact text form of :meth:`HLC.encode`: one match checks a stamp completely, with
#: no decode (the hot path of every record received).
STAMP_RE = re.compile(r"[0-9]{15}\.[0-9]{6}\.[A-Za-z0-9_-]{1,64}", re.ASCII)


@dataclass(frozen=True, order=True)
class HLC:
    """One hybrid-logical-clock stamp."""

    wall_ms: int
    counter: int
    node_id: str

    def encode(self) -> str:
        """The sortable text form ``WWWWWWWWWWWWWWW.CCCCCC.node``."""
        return f"{self.wall_ms:0{_WALL_DIGITS}d}.{self.counter:0{_COUNTER_DIGITS}d}.{self.node_id}"

    @classmethod
    def decode(cls, text: str) -> HLC:
        """Parse :meth:`encode` output; raises ``ValueError`` on anything else."""
        wall, counter, node = text.split(".", 2)
        if len(wall) != _WALL_DIGITS or len(counter) != _COUNTER_DIGITS or not node:
            raise ValueError(f"not an HLC stamp: {text!r}")
        return cls(int(wall), int(counter), node)

    @classmethod
    def zero(cls, node_id: str = "") -> HLC:
        return cls(0, 0, node_id)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def next_hlc(
    last: HLC | None,
    node_id: str,
    *,
    seen: HLC | None = None,
    now_ms: Callable[[], int] = _now_ms,
) -> HLC:
    """The next stamp of ``node_id`` after its ``last`` one, having ``seen`` a remote one.

    The result is greater than both ``last`` and ``seen``.
    """
    wall = now_ms()
    candidates = [(wall, -1)]
    if last is not None:
        candidates.append((last.wall_ms, last.counter))
    if seen is not None:
        candidates.append((seen.wall_ms, seen.counter))
    top_wall, top_counter = max(candidates)
    if top_wall == wall and top_counter == -1:
        return HLC(wall, 0, node_id)
    counter = top_counter + 1
    if counter > _MAX_COUNTER:  # astronomically unlikely; move the wall part instead
        return HLC(top_wall + 1, 0, node_id)
    return HLC(top_wall, counter, node_id)


def stamp_node(stamp: str) -> str:
    """The node id that issued a stamp in :meth:`HLC.encode` form (``""`` if none)."""
    parts = stamp.split(".", 2)
    return parts[2] if len(parts) == 3 else ""


def next_counter(version: Mapping[str, int], node_id: str) -> int:
    """The counter of ``node_id``'s next write to a record whose version is ``version``.

    Raises:
        ValidationError: it would pass :data:`MAX_VERSION_COUNTER` (peers would refuse
            the state).
    """
    counter = version.get(node_id, 0) + 1
    if counter > MAX_VERSION_COUNTER:
        raise ValidationError(
            "version",
            f"node {node_id!r} has written this record {MAX_VERSION_COUNTER} times, the "
            "most a version counter holds; give this store a new node id",
        )
    return counter


def stamp_run(last: HLC | None, node_id: str) -> Iterator[str]:
    """Consecutive stamps of ``node_id`` after ``last``, encoded, each greater than the one
    before: :func:`next_hlc` once, then the counter. For writing many records in one
    transaction; the stamp after the run is ``next_hlc(HLC.decode(last_used), ...)``."""
    first = next_hlc(last, node_id)
    wall, counter = first.wall_ms, first.counter
    while True:
        yield f"{wall:0{_WALL_DIGITS}d}.{counter:0{_COUNTER_DIGITS}d}.{node_id}"
        counter += 1
        if counter > _MAX_COUNTER:
            wall, counter = wall + 1, 0


class Order(enum.Enum):
    """How two version vectors relate."""

    EQUAL = "equal"
    BEFORE = "before"  # the first is dominated by the second
    AFTER = "after"  # the first dominates the second
    CONCURRENT = "concurrent"


def compare_versions(a: Mapping[str, int], b: Mapping[str, int]) -> Order:
    """Compare two version vectors (missing nodes count as 0)."""
    a_ahead = b_ahead = False
    for node in a.keys() | b.keys():
        x, y = a.get(node, 0), b.get(node, 0)
        if x > y:
            a_ahead = True
        elif y > x:
            b_ahead = True
        if a_ahead and b_ahead:
            return Order.CONCURRENT
    if a_ahead:
        return Order.AFTER
    if b_ahead:
        return Order.BEFORE
    return Order.EQUAL


def merge_versions(*vectors: Mapping[str, int]) -> VersionVector:
    """The pointwise maximum: the smallest vector that covers every argument."""
    merged: VersionVector = {}
    for vector in vectors:
        for node, counter in vector.items():
            if counter > merged.get(node, 0):
                merged[node] = counter
    return dict(sorted(merged.items()))
