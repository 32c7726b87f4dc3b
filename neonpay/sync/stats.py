"""Sync statistics, computed from the history of runs kept in the store.

* ``total_syncs`` counts every recorded run; ``successful_syncs`` only ``completed`` ones;
  ``failed_syncs`` the ``failed`` ones; ``partial_syncs`` runs that finished with
  rejected or unsettled items (they are not counted as successful).
* ``success_rate`` is ``successful_syncs / total_syncs * 100`` exactly (0.0 before the
  first run).
* ``last_error`` is the first error of the latest run, None when it completed (an older
  failure is history, not the peer's state).
* ``lag`` is the number of our records changed after the peer's push cursor that still
  have to reach it (0 for a pull-only peer, which never receives from us).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from neonpay.store.base import Store
from neonpay.sync.config import BotSyncConfig
from neonpay.sync.grants import inbound_record

__all__ = ["peer_lag", "peer_stats", "peer_status"]


def peer_lag(store: Store, config: BotSyncConfig) -> int:
    """Changes not yet delivered to the peer of ``config``."""
    if not config.direction.pushes:
        return 0
    cursor = store.get_cursor(config.require_name(), "push")
    return store.count_feed(
        cursor.seq, kinds=list(config.kinds), exclude_received_from=cursor.peer_node_id
    )


def peer_stats(store: Store, config: BotSyncConfig) -> dict[str, Any]:
    """The statistics of one peer (see the module docstring for the definitions)."""
    name = config.require_name()
    totals = store.sync_totals(name)
    last = store.list_sync_runs(name, limit=1)
    total = int(totals["total"])
    completed = int(totals["completed"])
    return {
        "total_syncs": total,
        "successful_syncs": completed,
        "failed_syncs": int(totals["failed"]),
        "partial_syncs": int(totals["partial"]),
        # one rounding: 29 of 100 is 29.0, not 28.999999999999996
        "success_rate": (completed * 100.0 / total) if total else 0.0,
        "total_items_synced": int(totals["items"]),
        "total_conflicts": int(totals["conflicts"]),
        "bytes_sent": int(totals["bytes_sent"]),
        "bytes_received": int(totals["bytes_received"]),
        "last_sync_at": last[0].finished_at if last else None,
        "last_status": last[0].status if last else None,
        # the error of the latest run only: after a completed run there is none
        "last_error": totals["last_error"] if last and last[0].status != "completed" else None,
        "lag": peer_lag(store, config),
    }


def peer_status(store: Store, name: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """A peer as the status endpoint shows it: no token, no secret.

    Raises:
        ConfigurationError: the stored config no longer passes the checks.
    """
    config = BotSyncConfig.from_dict(data)
    pull = store.get_cursor(name, "pull")
    push = store.get_cursor(name, "push")
    return {
        "name": name,
        "direction": config.direction.value,
        "webhook_url": config.webhook_url,
        "kinds": list(config.kinds),
        "conflict_resolution": config.conflict_resolution.value,
        "auto_sync": config.auto_sync,
        "sync_interval_minutes": config.sync_interval_minutes,
        "peer_node_id": pull.peer_node_id or push.peer_node_id,
        "signs_as": inbound_record(store, name) or None,
        "cursors": {"pull": pull.seq, "push": push.seq},
        "lag": peer_lag(store, config),
    }
