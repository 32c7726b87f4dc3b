"""The relational schema and its migrations, shared by the SQLite and PostgreSQL stores.

Statements use ``?`` placeholders and a few ``{name}`` slots that each dialect fills:
``{autoid}`` (an auto-numbered primary key column). Migrations only ever append: a
store at version N runs migrations N+1 onward, each in its own transaction.
"""

from __future__ import annotations

__all__ = ["MIGRATIONS", "SCHEMA_VERSION"]

_V1 = [
    """CREATE TABLE IF NOT EXISTS neonpay_clock (
        id INTEGER PRIMARY KEY,
        seq BIGINT NOT NULL,
        hlc TEXT NOT NULL
    )""",
    "INSERT INTO neonpay_clock (id, seq, hlc) VALUES (1, 0, '') ON CONFLICT (id) DO NOTHING",
    """CREATE TABLE IF NOT EXISTS neonpay_records (
        kind TEXT NOT NULL,
        key TEXT NOT NULL,
        fields TEXT NOT NULL,
        version TEXT NOT NULL,
        hlc TEXT NOT NULL,
        field_hlcs TEXT NOT NULL,
        deleted INTEGER NOT NULL,
        origin TEXT NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL,
        seq BIGINT NOT NULL,
        resolution INTEGER NOT NULL DEFAULT 0,
        received_from TEXT,
        PRIMARY KEY (kind, key)
    )""",
    "CREATE INDEX IF NOT EXISTS neonpay_records_seq ON neonpay_records (seq)",
    """CREATE TABLE IF NOT EXISTS neonpay_changes (
        seq BIGINT PRIMARY KEY,
        kind TEXT NOT NULL,
        key TEXT NOT NULL,
        fields TEXT NOT NULL,
        version TEXT NOT NULL,
        hlc TEXT NOT NULL,
        field_hlcs TEXT NOT NULL,
        deleted INTEGER NOT NULL,
        origin TEXT NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL,
        resolution INTEGER NOT NULL DEFAULT 0,
        received_from TEXT
    )""",
    """CREATE TABLE IF NOT EXISTS neonpay_peers (
        name TEXT PRIMARY KEY,
        config TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS neonpay_cursors (
        peer TEXT NOT NULL,
        direction TEXT NOT NULL,
        seq BIGINT NOT NULL,
        peer_node_id TEXT,
        PRIMARY KEY (peer, direction)
    )""",
    """CREATE TABLE IF NOT EXISTS neonpay_sync_runs (
        id {autoid},
        peer TEXT NOT NULL,
        started_at DOUBLE PRECISION NOT NULL,
        finished_at DOUBLE PRECISION NOT NULL,
        status TEXT NOT NULL,
        items_synced BIGINT NOT NULL,
        conflicts BIGINT NOT NULL,
        errors TEXT NOT NULL,
        bytes_sent BIGINT NOT NULL,
        bytes_received BIGINT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS neonpay_sync_runs_peer ON neonpay_sync_runs (peer, id)",
    """CREATE TABLE IF NOT EXISTS neonpay_conflicts (
        id {autoid},
        peer TEXT NOT NULL,
        kind TEXT NOT NULL,
        key TEXT NOT NULL,
        local TEXT NOT NULL,
        remote TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        status TEXT NOT NULL,
        resolved_at DOUBLE PRECISION,
        resolution TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS neonpay_conflicts_status ON neonpay_conflicts (status, id)",
    """CREATE TABLE IF NOT EXISTS neonpay_request_ids (
        id TEXT PRIMARY KEY,
        seen_at DOUBLE PRECISION NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS neonpay_request_ids_seen ON neonpay_request_ids (seen_at)",
    """CREATE TABLE IF NOT EXISTS neonpay_payments (
        charge_id TEXT PRIMARY KEY,
        user_id BIGINT NOT NULL,
        stage_id TEXT NOT NULL,
        amount BIGINT NOT NULL,
        currency TEXT NOT NULL,
        promo_code TEXT,
        payload TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        refunded_at DOUBLE PRECISION,
        node_id TEXT NOT NULL,
        extra TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS neonpay_payments_user ON neonpay_payments (user_id, created_at)",
    "CREATE INDEX IF NOT EXISTS neonpay_payments_stage ON neonpay_payments (stage_id, created_at)",
]

# Version 2:
# - the node id lives on the clock row too, so that every write reads it under the
#   clock-row lock that it takes anyway: when a store takes a new node id (it found it was
#   restored from an older copy), every process sharing the store writes with it;
# - live record counts kept as data (so a create checks a catalog limit without counting
#   the catalog), initialised from the rows already there;
# - the payments that used a promo code beyond its max_uses, flagged.
_V2 = [
    "ALTER TABLE neonpay_clock ADD COLUMN node_id TEXT NOT NULL DEFAULT ''",
    """CREATE TABLE IF NOT EXISTS neonpay_live (
        kind TEXT PRIMARY KEY,
        live BIGINT NOT NULL
    )""",
    "INSERT INTO neonpay_live (kind, live) SELECT kind, COUNT(*) FROM neonpay_records "
    "WHERE deleted = 0 GROUP BY kind",
    "ALTER TABLE neonpay_payments ADD COLUMN promo_over_use INTEGER NOT NULL DEFAULT 0",
    "CREATE INDEX IF NOT EXISTS neonpay_payments_over_use ON neonpay_payments (promo_code) "
    "WHERE promo_over_use = 1",
]

#: (version, statements) in order.
MIGRATIONS: list[tuple[int, list[str]]] = [(1, _V1), (2, _V2)]
SCHEMA_VERSION = MIGRATIONS[-1][0]
