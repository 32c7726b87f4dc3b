"""Conflicts and how to resolve them: :class:`SyncConflict` and :class:`ConflictResolver`.

A conflict is real: both sides changed the same record concurrently (neither version
vector dominates the other) and no deterministic rule settles it. The *source* is the bot
running the SyncManager, the *target* the peer.

Subclass :class:`ConflictResolver` to decide yourself::

    class HigherPrice(ConflictResolver):
        def resolve_conflict(self, conflict):
            if conflict.item_type == "payment_stage":
                if conflict.source_data.get("price", 0) > conflict.target_data.get("price", 0):
                    return conflict.source_data
                return conflict.target_data
            return super().resolve_conflict(conflict)

Return the fields to keep (an empty dict keeps the record deleted), or None to keep the
local state and leave the conflict unresolved.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from neonpay.store.base import Record
from neonpay.sync.config import ConflictResolution, parse_choice

__all__ = ["ConflictResolver", "SyncConflict"]


@dataclass(eq=False)
class SyncConflict:
    """Two concurrent states of one record.

    Attributes:
        item_type: ``payment_stage``, ``promo_code``, ``template`` or ``setting``.
        item_id: the record's key (stage id, promo code, template name, setting name).
        source_data: our fields (``{}`` when our state is a deletion).
        target_data: the peer's fields (``{}`` when the peer deleted the record).
        source_version, target_version: the two version vectors.
        source_deleted, target_deleted: whether each side is a deletion.
        strategy: the strategy configured for this peer.
        peer: the peer's name.
        id: the pending conflict's id in the store (ASK_USER), else None.
        outcome: what happened: ``merged``, ``source``, ``target``, ``custom``,
            ``kept_local``, ``pending`` or ``unresolved``.
    """

    item_type: str
    item_id: str
    source_data: dict[str, Any]
    target_data: dict[str, Any]
    source_version: dict[str, int]
    target_version: dict[str, int]
    source_deleted: bool
    target_deleted: bool
    strategy: ConflictResolution
    peer: str
    id: int | None = None
    outcome: str = "unresolved"
    source: Record | None = field(default=None, repr=False)
    target: Record | None = field(default=None, repr=False)
    merged: Record | None = field(default=None, repr=False)
    #: set by :meth:`ConflictResolver.resolve_conflict`: the strategy it applied and the
    #: very object it returned, so the engine can tell a strategy's answer from a custom one.
    applied_strategy: ConflictResolution | None = field(default=None, repr=False)
    strategy_result: dict[str, Any] | None = field(default=None, repr=False)

    @classmethod
    def between(
        cls,
        local: Record,
        remote: Record,
        *,
        strategy: ConflictResolution,
        peer: str,
        merged: Record | None = None,
        conflict_id: int | None = None,
    ) -> SyncConflict:
        """The conflict between our ``local`` state and the peer's ``remote`` one."""
        return cls(
            item_type=local.kind,
            item_id=local.key,
            source_data={} if local.deleted else dict(local.fields),
            target_data={} if remote.deleted else dict(remote.fields),
            source_version=dict(local.version),
            target_version=dict(remote.version),
            source_deleted=local.deleted,
            target_deleted=remote.deleted,
            strategy=strategy,
            peer=peer,
            id=conflict_id,
            source=local,
            target=remote,
            merged=merged,
        )

    @property
    def merged_data(self) -> dict[str, Any]:
        """The fields MERGE would keep (``{}`` when the merge is a deletion)."""
        if self.merged is None or self.merged.deleted:
            return {}
        return dict(self.merged.fields)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able summary (for the CLI and the status endpoint)."""
        return {
            "id": self.id,
            "peer": self.peer,
            "item_type": self.item_type,
            "item_id": self.item_id,
            "source_data": self.source_data,
            "target_data": self.target_data,
            "source_version": self.source_version,
            "target_version": self.target_version,
            "source_deleted": self.source_deleted,
            "target_deleted": self.target_deleted,
            "strategy": self.strategy.value,
            "outcome": self.outcome,
        }


class ConflictResolver:
    """Resolves conflicts with a strategy; subclass it and override
    :meth:`resolve_conflict` for your own rules.

    Args:
        strategy: the strategy to apply; None (the default) uses the one configured for
            the peer (``BotSyncConfig.conflict_resolution``).

    Raises:
        ConfigurationError: an unknown strategy.
    """

    def __init__(self, strategy: ConflictResolution | str | None = None) -> None:
        self.strategy: ConflictResolution | None = (
            None if strategy is None else parse_choice(ConflictResolution, strategy, "strategy")
        )

    def resolve_conflict(self, conflict: SyncConflict) -> dict[str, Any] | None:
        """The fields to keep for ``conflict``, or None to keep ours, unresolved.

        SOURCE_WINS returns our fields, TARGET_WINS the peer's, MERGE the field-by-field
        merge, ASK_USER None (the engine then stores the conflict as pending). An empty
        dict means the record stays deleted.
        """
        strategy = self.strategy or conflict.strategy
        result: dict[str, Any] | None
        if strategy is ConflictResolution.SOURCE_WINS:
            result = dict(conflict.source_data)
        elif strategy is ConflictResolution.TARGET_WINS:
            result = dict(conflict.target_data)
        elif strategy is ConflictResolution.MERGE:
            result = conflict.merged_data
        else:
            result = None
        conflict.applied_strategy = strategy
        conflict.strategy_result = result
        return result

    def __repr__(self) -> str:
        strategy = self.strategy.value if self.strategy else "configured"
        return f"<{type(self).__name__} strategy={strategy}>"
