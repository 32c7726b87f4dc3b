"""What a sync run reports: :class:`SyncStatus` and :class:`SyncResult`."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from neonpay.store.base import SyncRunRow

if TYPE_CHECKING:
    from neonpay.sync.conflicts import SyncConflict

__all__ = ["SyncResult", "SyncStatus"]


class SyncStatus(enum.Enum):
    """The state of a sync run.

    ``COMPLETED``: everything was exchanged (conflicts may have been found and handled).
    ``PARTIAL``: the run finished but some items were rejected or could not be settled;
    ``errors`` says which. ``FAILED``: the run did not finish (peer unreachable, refused,
    storage error); nothing is lost, the next sync resumes from where this one stopped.
    """

    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    PARTIAL = "partial"
    FAILED = "failed"


@dataclass
class SyncResult:
    """The outcome of one sync run with one peer.

    Attributes:
        peer: the peer's name.
        status: see :class:`SyncStatus`.
        items_synced: record states that changed on either side (``pushed + pulled``).
        pushed: states the peer applied from us.
        pulled: states we applied from the peer.
        conflicts: the concurrent edits met in this run, however they were handled.
        errors: what went wrong, in words a person can act on.
        started_at, finished_at: Unix times.
        bytes_sent, bytes_received: traffic of this run as the transport counted it.
        requests: requests made to the peer.
    """

    peer: str
    status: SyncStatus = SyncStatus.PENDING
    items_synced: int = 0
    pushed: int = 0
    pulled: int = 0
    conflicts: list[SyncConflict] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    started_at: float = 0.0
    finished_at: float = 0.0
    bytes_sent: int = 0
    bytes_received: int = 0
    requests: int = 0

    @property
    def success(self) -> bool:
        """True only for ``COMPLETED``."""
        return self.status is SyncStatus.COMPLETED

    @property
    def duration(self) -> float:
        """Seconds the run took."""
        return max(0.0, self.finished_at - self.started_at)

    def to_row(self) -> SyncRunRow:
        """The history row kept in the store."""
        return SyncRunRow(
            peer=self.peer,
            started_at=self.started_at,
            finished_at=self.finished_at,
            status=self.status.value,
            items_synced=self.items_synced,
            conflicts=len(self.conflicts),
            errors=tuple(self.errors),
            bytes_sent=self.bytes_sent,
            bytes_received=self.bytes_received,
        )
