"""The store protocol over SQL, shared by the SQLite and PostgreSQL backends.

A backend supplies connections and a few dialect details (:class:`Session`,
``_transaction``, the auto-id column type, row locking); everything else — the record
and change-log logic, sync state, payments — is written once here.
"""

from __future__ import annotations

import abc
import builtins
import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

from neonpay import _json
from neonpay._frozen import copy_with
from neonpay.errors import ConfigurationError, NotFoundError, ValidationError
from neonpay.store.base import (
    ApplyOutcome,
    ConflictRow,
    Consume,
    Cursor,
    Decide,
    FeedPage,
    Mutation,
    Outcome,
    PaymentEffects,
    PaymentRow,
    Record,
    RecordedPayment,
    SyncRunRow,
    checked_outcome,
    checked_record,
)
from neonpay.store.schema import MIGRATIONS
from neonpay.sync.clock import HLC, next_counter, next_hlc, stamp_run
from neonpay.sync.identity import counter_beyond, reuser

__all__ = ["RETIRED_META", "SQLStore", "Session"]

logger = logging.getLogger("neonpay.store")

#: The meta row listing the node ids this store had before its current one (JSON: a list
#: of ``{"node_id", "retired_at", "reason", "new_node_id"}``, oldest first).
RETIRED_META = "retired_node_ids"

_RECORD_COLUMNS = (
    "kind, key, fields, version, hlc, field_hlcs, deleted, origin, updated_at, seq, "
    "resolution, received_from"
)
_IN_CHUNK = 500
_UPSERT_TAIL = (
    " ON CONFLICT (kind, key) DO UPDATE SET fields = excluded.fields, "
    "version = excluded.version, hlc = excluded.hlc, field_hlcs = excluded.field_hlcs, "
    "deleted = excluded.deleted, origin = excluded.origin, "
    "updated_at = excluded.updated_at, seq = excluded.seq, "
    "resolution = excluded.resolution, received_from = excluded.received_from"
)
_UPSERT_RECORD = (
    f"INSERT INTO neonpay_records ({_RECORD_COLUMNS}) "
    f"VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?){_UPSERT_TAIL}"
)
_INSERT_CHANGE = (
    f"INSERT INTO neonpay_changes ({_RECORD_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


class _Clock:
    """The clock row as read under the write lock: the last sequence and stamp, whether a
    write of this transaction moved them, and the rows re-stamps add (with their states)."""

    __slots__ = ("last", "moved", "restamped", "rows", "seq")

    def __init__(self, seq: int, last: HLC | None) -> None:
        self.seq = seq
        self.last = last
        self.moved = False
        self.rows: builtins.list[tuple[Any, ...]] = []
        self.restamped: builtins.list[Record] = []


class Session(abc.ABC):
    """One open transaction: run statements with ``?`` placeholders."""

    @abc.abstractmethod
    def execute(self, sql: str, params: Sequence[Any] = ()) -> None: ...

    @abc.abstractmethod
    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...

    @abc.abstractmethod
    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> builtins.list[tuple[Any, ...]]: ...

    def fetchone(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        rows = self.fetchall(sql, params)
        return rows[0] if rows else None


def _stamps_column(record: Record) -> str:
    """The ``field_hlcs`` column: ``[{...}]`` (compact: the stamps of ``fields`` equal to
    ``hlc`` are left out) when every field has a stamp, else the whole map ``{...}``."""
    stamps = record.field_hlcs
    fields = record.fields
    hlc = record.hlc
    if list(stamps.values()).count(hlc) == len(stamps) and stamps.keys() == fields.keys():
        return "[{}]"  # the common case: every field written with the record
    if not stamps.keys() >= fields.keys():  # rare: keep it exactly as it is
        return _json.dumps_text(dict(stamps))
    explicit = {name: stamp for name, stamp in stamps.items() if stamp != hlc or name not in fields}
    return _json.dumps_text([explicit]) if explicit else "[{}]"


def _stamps_from_column(text: str, fields: Mapping[str, Any], hlc: str) -> dict[str, str]:
    """The full ``field_hlcs`` of a row (see :func:`_stamps_column`)."""
    if text == "[{}]":  # the common case; stored fields are canonical: keys in order
        return dict.fromkeys(fields, hlc)
    stored = _json.loads(text)
    if isinstance(stored, dict):  # the whole map (rows written before compact ones too)
        return stored
    explicit: dict[str, str] = stored[0]
    if not explicit:
        return dict.fromkeys(sorted(fields), hlc)
    return dict(sorted({**dict.fromkeys(fields, hlc), **explicit}.items()))


def _record_from_row(row: Sequence[Any]) -> Record:
    fields = _json.loads(row[2])
    return checked_record(  # the row was checked when it was written
        row[0],
        row[1],
        fields,
        _json.loads(row[3]),
        row[4],
        _stamps_from_column(row[5], fields, row[4]),
        bool(row[6]),
        row[7],
        float(row[8]),
        int(row[9]),
        bool(row[10]),
    )


def _record_params(record: Record, seq: int, received_from: str | None) -> tuple[Any, ...]:
    return (
        record.kind,
        record.key,
        _json.dumps_text(_json.plain(record.fields)),
        _json.dumps_text(_json.plain(record.version)),
        record.hlc,
        _stamps_column(record),
        int(record.deleted),
        record.origin,
        record.updated_at,
        seq,
        int(record.resolution),
        received_from,
    )


def _stamp_fields(
    old: Mapping[str, Any] | None,
    new: Mapping[str, Any],
    old_stamps: Mapping[str, str],
    stamp: str,
) -> dict[str, str]:
    """Field stamps after a local write: changed (or removed) fields get ``stamp``."""
    if old is None:
        stamps = dict.fromkeys(new, stamp)
        for name in old_stamps:  # a field that existed before the delete stays ordered
            stamps.setdefault(name, stamp)
        return dict(sorted(stamps.items()))
    stamps = dict(old_stamps)
    for name in old.keys() | new.keys():
        if name not in old or name not in new or old[name] != new[name]:
            stamps[name] = stamp
    return dict(sorted(stamps.items()))


class SQLStore(abc.ABC):
    """The store protocol implemented over a SQL :class:`Session`."""

    _autoid = "INTEGER PRIMARY KEY AUTOINCREMENT"
    _for_update = ""
    #: How to order by key: by code point, whatever the database's collation.
    _key_order = "key"
    #: Makes feed queries walk the sequence index. SQLite's planner otherwise prefers the
    #: (kind, key) primary key when a kind filter is present, and sorts the whole catalog
    #: for every page (100 ms a page at 100,000 records instead of 1 ms).
    _seq_index = ""

    def __init__(self, url: str, node_id: str | None = None) -> None:
        self._url = url
        self._requested_node_id = node_id
        self._node_id = ""
        self._retired: frozenset[str] = frozenset()
        self._closed = False
        #: kind -> the most live records this store object accepts (set_live_limit)
        self._live_limits: dict[str, int] = {}

    # --- the dialect ------------------------------------------------------------------
    @abc.abstractmethod
    def _transaction(self, *, write: bool) -> AbstractContextManager[Session]:
        """A transaction; ``write=True`` takes the write lock at the start."""

    def _lock_migrations(self, session: Session) -> None:  # noqa: B027 - optional hook
        """Keep two processes from migrating the same database at once (SQLite: no-op,
        ``BEGIN IMMEDIATE`` already serializes)."""

    # --- lifecycle ----------------------------------------------------------------------
    def _initialize(self) -> None:
        """Create or migrate the schema and settle the node id."""
        with self._transaction(write=True) as s:
            self._lock_migrations(s)
            s.execute(
                "CREATE TABLE IF NOT EXISTS neonpay_meta "
                "(name TEXT PRIMARY KEY, value TEXT NOT NULL)"
            )
            row = s.fetchone("SELECT value FROM neonpay_meta WHERE name = 'schema_version'")
            current = int(row[0]) if row else 0
            for version, statements in MIGRATIONS:
                if version <= current:
                    continue
                for statement in statements:
                    s.execute(statement.replace("{autoid}", self._autoid))
                self._put_meta(s, "schema_version", str(version))
            row = s.fetchone("SELECT value FROM neonpay_meta WHERE name = 'node_id'")
            if row is None:
                node_id = self._requested_node_id or _new_node_id()
                _check_node_id(node_id)
                self._put_meta(s, "node_id", node_id)
            else:
                node_id = str(row[0])
            s.execute(
                "UPDATE neonpay_clock SET node_id = ? WHERE id = 1 AND node_id = ''", (node_id,)
            )
            clock = s.fetchone("SELECT node_id FROM neonpay_clock WHERE id = 1")
            assert clock is not None, "the clock row is created by the first migration"
            node_id = str(clock[0])
            retired = _retired_ids(s)
            requested = self._requested_node_id
            if requested and requested != node_id:
                if requested not in retired:
                    raise ConfigurationError(
                        f"this store already belongs to node {node_id!r}; "
                        f"node_id={requested!r} does not match. Omit node_id, "
                        "or use another store"
                    )
                logger.info(
                    "node %s of %s was renewed as %s (see the store's retired node ids)",
                    requested,
                    self._url,
                    node_id,
                )
        self._node_id = node_id
        self._retired = frozenset(retired)

    @property
    def url(self) -> str:
        return self._url

    @property
    def node_id(self) -> str:
        return self._node_id

    @property
    def closed(self) -> bool:
        return self._closed

    def retired_node_ids(self) -> builtins.list[dict[str, Any]]:
        with self._transaction(write=False) as s:
            row = s.fetchone("SELECT value FROM neonpay_meta WHERE name = ?", (RETIRED_META,))
        return _retired_entries(row[0] if row else None)

    def renew_node_id(self, reason: str) -> str:
        with self._transaction(write=True) as s:
            self._lock_clock(s)
            return self._renew(s, reason)

    def __enter__(self) -> SQLStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._url} node={self._node_id}>"

    @abc.abstractmethod
    def close(self) -> None: ...

    # --- helpers ---------------------------------------------------------------------------
    @staticmethod
    def _put_meta(s: Session, name: str, value: str) -> None:
        s.execute(
            "INSERT INTO neonpay_meta (name, value) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (name, value),
        )

    def _lock_clock(self, s: Session) -> tuple[int, HLC | None]:
        """Lock the clock row: the sequence, the latest stamp, and (kept in memory) the
        node id every write of this transaction uses; another process sharing the store
        may have renewed it."""
        row = s.fetchone(
            f"SELECT seq, hlc, node_id FROM neonpay_clock WHERE id = 1{self._for_update}"
        )
        assert row is not None, "the clock row is created by the first migration"
        if row[2] != self._node_id:
            self._node_id = str(row[2])
            self._retired = frozenset(_retired_ids(s))
        return int(row[0]), (HLC.decode(row[1]) if row[1] else None)

    def _renew(self, s: Session, reason: str) -> str:
        """Move this store to a fresh node id (inside a transaction that locked the clock
        row); the old one joins the retired ids. Returns the new id."""
        old = self._node_id
        new = _new_node_id()
        row = s.fetchone("SELECT value FROM neonpay_meta WHERE name = ?", (RETIRED_META,))
        entries = _retired_entries(row[0] if row else None)
        entries.append(
            {"node_id": old, "retired_at": time.time(), "reason": reason, "new_node_id": new}
        )
        self._put_meta(s, RETIRED_META, _json.dumps_text(entries))
        self._put_meta(s, "node_id", new)
        s.execute("UPDATE neonpay_clock SET node_id = ? WHERE id = 1", (new,))
        # Peers leave out of their feeds what they received from the old id, which this
        # store may have lost: pull everything again, as the new id.
        s.execute("UPDATE neonpay_cursors SET seq = 0 WHERE direction = 'pull'")
        # If the transaction fails, the next _lock_clock finds the old id and reloads.
        self._node_id = new
        self._retired = self._retired | {old}
        logger.warning(
            "node %s of store %s takes the new node id %s: %s",
            old,
            self._url,
            new,
            reason,
        )
        return new

    @staticmethod
    def _save_clock(s: Session, seq: int, hlc: HLC | None) -> None:
        s.execute(
            "UPDATE neonpay_clock SET seq = ?, hlc = ? WHERE id = 1",
            (seq, hlc.encode() if hlc else ""),
        )

    @staticmethod
    def _live(s: Session, kind: str) -> int:
        """How many live records of ``kind`` the counts table holds (no scan)."""
        row = s.fetchone("SELECT live FROM neonpay_live WHERE kind = ?", (kind,))
        return int(row[0]) if row else 0

    @staticmethod
    def _add_live(s: Session, deltas: Mapping[str, int]) -> None:
        """Move the live counts by ``deltas``, in the transaction of the writes."""
        rows = [(kind, delta) for kind, delta in deltas.items() if delta]
        for row in rows:  # one row per kind written: a handful at most
            s.execute(
                "INSERT INTO neonpay_live (kind, live) VALUES (?, ?) ON CONFLICT (kind) "
                "DO UPDATE SET live = neonpay_live.live + excluded.live",
                row,
            )

    def _limit(self, kind: str, given: int | None) -> int | None:
        """The tighter of a call's ``max_live`` and the store's limit for ``kind``."""
        kept = self._live_limits.get(kind)
        if given is None:
            return kept
        return given if kept is None else min(given, kept)

    def set_live_limit(self, kind: str, limit: int | None) -> None:
        if limit is None:
            self._live_limits.pop(kind, None)
            return
        _check_limit(limit)
        self._live_limits[kind] = limit

    @staticmethod
    def _select_many(s: Session, kind: str, keys: Sequence[str]) -> dict[str, Record]:
        found: dict[str, Record] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), _IN_CHUNK):
            chunk = unique[start : start + _IN_CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = s.fetchall(
                f"SELECT {_RECORD_COLUMNS} FROM neonpay_records "
                f"WHERE kind = ? AND key IN ({marks})",
                (kind, *chunk),
            )
            for row in rows:
                found[row[1]] = _record_from_row(row)
        return found

    @staticmethod
    def _write_states(s: Session, rows: builtins.list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        s.executemany(
            _UPSERT_RECORD,
            rows,
        )
        s.executemany(_INSERT_CHANGE, rows)

    # --- records ------------------------------------------------------------------------
    def get(self, kind: str, key: str, *, include_deleted: bool = False) -> Record | None:
        with self._transaction(write=False) as s:
            row = s.fetchone(
                f"SELECT {_RECORD_COLUMNS} FROM neonpay_records WHERE kind = ? AND key = ?",
                (kind, key),
            )
        if row is None:
            return None
        record = _record_from_row(row)
        if record.deleted and not include_deleted:
            return None
        return record

    def get_many(self, kind: str, keys: Sequence[str]) -> dict[str, Record]:
        with self._transaction(write=False) as s:
            return self._select_many(s, kind, keys)

    def list(self, kind: str, *, include_deleted: bool = False) -> builtins.list[Record]:
        sql = f"SELECT {_RECORD_COLUMNS} FROM neonpay_records WHERE kind = ?"
        if not include_deleted:
            sql += " AND deleted = 0"
        with self._transaction(write=False) as s:
            rows = s.fetchall(f"{sql} ORDER BY {self._key_order}", (kind,))
        return [_record_from_row(row) for row in rows]

    def count(self, kind: str | None = None) -> int:
        with self._transaction(write=False) as s:
            if kind is not None:
                return self._live(s, kind)
            row = s.fetchone("SELECT COALESCE(SUM(live), 0) FROM neonpay_live")
        return int(row[0]) if row else 0

    def mutate(
        self, kind: str, key: str, change: Mutation, *, max_live: int | None = None
    ) -> Record | None:
        with self._transaction(write=True) as s:
            clock = _Clock(*self._lock_clock(s))
            current = self._select_many(s, kind, [key]).get(key)
            state = self._change(s, clock, kind, key, current, change, self._limit(kind, max_live))
            if clock.moved:
                self._save_clock(s, clock.seq, clock.last)
            return state

    def _change(
        self,
        s: Session,
        clock: _Clock,
        kind: str,
        key: str,
        current: Record | None,
        change: Mutation,
        limit: int | None,
    ) -> Record | None:
        """One local write inside a transaction that holds the write lock: the record,
        its log entry and the live count. Returns what :meth:`mutate` returns."""
        old = None if current is None or current.deleted else current.fields
        new = change(old)
        if new is not None:
            # Compare and return the fields as they are stored (a tuple is a list).
            new = _json.loads(_json.dumps(dict(new)))
        if old is None and new is not None and limit is not None and self._live(s, kind) >= limit:
            raise CapacityError(kind, limit)
        if new is None and old is None:
            return current if current is not None and not current.deleted else None
        if new is not None and old is not None and dict(new) == dict(old):
            return current
        state = self._local_state(clock, kind, key, current, new)
        self._write_states(s, [_record_params(state, state.seq, None)])
        if (old is None) != (new is None):
            self._add_live(s, {kind: 1 if old is None else -1})
        return state

    def _local_state(
        self,
        clock: _Clock,
        kind: str,
        key: str,
        current: Record | None,
        new: Mapping[str, Any] | None,
        text: str | None = None,
    ) -> Record:
        """The state a local write of ``new`` fields (None: a delete) makes of
        ``current``: the next sequence and stamp (``text``, when the caller issues the
        stamps), this node's counter bumped."""
        old = None if current is None or current.deleted else current.fields
        if text is None:
            stamp = next_hlc(clock.last, self._node_id)
            clock.last = stamp
            text = stamp.encode()
        clock.moved = True
        clock.seq += 1
        version = dict(current.version) if current else {}
        version[self._node_id] = next_counter(version, self._node_id)
        if new is None:
            field_hlcs = dict.fromkeys(current.field_hlcs if current else {}, text)
        else:
            field_hlcs = _stamp_fields(old, new, current.field_hlcs if current else {}, text)
        return checked_record(
            kind,
            key,
            dict(new) if new is not None else {},
            dict(sorted(version.items())),
            text,
            field_hlcs,
            new is None,
            self._node_id,
            time.time(),
            clock.seq,
        )

    def write_many(
        self,
        items: Sequence[tuple[str, str, Mapping[str, Any] | None]],
        *,
        max_live: Mapping[str, int] | None = None,
    ) -> builtins.list[Record]:
        if not items:
            return []
        given = dict(max_live or {})
        written: builtins.list[Record] = []
        with self._transaction(write=True) as s:
            clock = _Clock(*self._lock_clock(s))
            by_kind: dict[str, builtins.list[str]] = {}
            for kind, key, _ in items:
                by_kind.setdefault(kind, []).append(key)
            held: dict[tuple[str, str], Record] = {}
            for kind, keys in by_kind.items():
                for key, record in self._select_many(s, kind, keys).items():
                    held[(kind, key)] = record
            deltas = dict.fromkeys(by_kind, 0)
            rows: builtins.list[tuple[Any, ...]] = []
            node = self._node_id
            first_version_text = _json.dumps_text({node: 1})
            now = time.time()
            stamps = stamp_run(clock.last, node)  # one stamp each, without HLC objects
            hlc = ""
            for kind, key, fields in items:
                current = held.get((kind, key))
                text = None if fields is None else _json.dumps_text(_json.plain(fields))
                new = None if text is None else _json.loads(text)
                if current is None and new is not None:  # a create, the bulk of an import
                    hlc = next(stamps)
                    clock.moved = True
                    clock.seq += 1
                    state = checked_record(
                        kind, key, new, {node: 1}, hlc, dict.fromkeys(new, hlc),
                        False, node, now, clock.seq,
                    )  # fmt: skip
                    held[(kind, key)] = state
                    rows.append(
                        (kind, key, text, first_version_text, hlc, "[{}]", 0, node, now,
                         clock.seq, 0, None)
                    )  # fmt: skip
                    written.append(state)
                    deltas[kind] += 1
                    continue
                old = None if current is None or current.deleted else current.fields
                if (new is None and old is None) or (new is not None and new == old):
                    continue
                hlc = next(stamps)
                state = self._local_state(clock, kind, key, current, new, hlc)
                held[(kind, key)] = state
                rows.append(_record_params(state, state.seq, None))
                written.append(state)
                if (old is None) != (new is None):
                    deltas[kind] += 1 if old is None else -1
            if hlc:
                clock.last = HLC.decode(hlc)
            for kind, delta in deltas.items():
                limit = self._limit(kind, given.get(kind))
                if delta > 0 and limit is not None and self._live(s, kind) + delta > limit:
                    raise CapacityError(kind, limit)
            self._write_states(s, rows)
            self._add_live(s, deltas)
            if clock.moved:
                self._save_clock(s, clock.seq, clock.last)
        return written

    def apply_batch(
        self, incoming: Sequence[Record], decide: Decide, *, from_peer: bool = False
    ) -> builtins.list[ApplyOutcome]:
        if not incoming:
            return []
        outcomes: list[ApplyOutcome] = []
        with self._transaction(write=True) as s:
            seq, last = self._lock_clock(s)
            clock = _Clock(seq, last)
            local: dict[tuple[str, str], Record] = {}
            by_kind: dict[str, list[str]] = {}
            for record in incoming:
                by_kind.setdefault(record.kind, []).append(record.key)
            for kind, keys in by_kind.items():
                for key, record in self._select_many(s, kind, keys).items():
                    local[(kind, key)] = record
            rows = clock.rows  # re-stamps (see _guarded) add theirs too
            # Live counts move with the states written; a kind with a limit refuses the
            # states that would take it beyond (read once, from the counts table).
            limits = {k: n for k, n in self._live_limits.items() if k in by_kind}
            live = {kind: self._live(s, kind) for kind in limits}
            deltas: dict[str, int] = {}
            # An HLC moves past every stamp it receives, applied or not. Stamps are
            # fixed-width text that sorts like the clock, so the latest is found by
            # comparing text and decoded once.
            latest = ""
            rejected, applied = Outcome.REJECTED, Outcome.APPLIED
            for record in incoming:
                ours = local.get((record.kind, record.key))
                if from_peer:
                    outcome = self._guarded(s, clock, local, record, ours, decide)
                    ours = local.get((record.kind, record.key))  # re-stamped, maybe
                else:
                    outcome = decide(record, ours)
                    if outcome.outcome is applied and self._retired:
                        outcome = self._not_as_retired(outcome, ours)
                state = outcome.state
                if outcome.outcome is applied and state is not None:
                    was_live = ours is not None and not ours.deleted
                    if was_live is state.deleted:  # created (+1) or deleted (-1)
                        kind = state.kind
                        delta = -1 if was_live else 1
                        limit = limits.get(kind)
                        if delta > 0 and limit is not None and live[kind] >= limit:
                            outcomes.append(_over_limit(outcome, limit))
                            continue
                        deltas[kind] = deltas.get(kind, 0) + delta
                        if kind in live:
                            live[kind] += delta
                if outcome.outcome is not rejected and record.hlc > latest:
                    latest = record.hlc
                if outcome.outcome is applied and state is not None:
                    clock.seq += 1
                    state = copy_with(state, seq=clock.seq)
                    rows.append(_record_params(state, clock.seq, outcome.received_from))
                    local[(state.kind, state.key)] = state
                    if state.hlc > latest:  # a merge: its stamp counts too
                        latest = state.hlc
                    outcome = checked_outcome(
                        applied,
                        outcome.incoming,
                        state,
                        outcome.local,
                        outcome.received_from,
                        outcome.reason,
                    )
                outcomes.append(outcome)
            newest = _later(clock.last, latest, outcomes)
            if rows:
                self._write_states(s, rows)
                self._add_live(s, deltas)
            if rows or newest != last:
                self._save_clock(s, clock.seq, newest)
        return outcomes

    def _not_as_retired(self, outcome: ApplyOutcome, local: Record | None) -> ApplyOutcome:
        """A state written here (a resolution) as a node id this store has retired, with
        a counter beyond ours: computed before another process renewed the id. It is not
        written (``KNOWN``, reason ``"moved"``: the caller computes it again)."""
        state = outcome.state
        if state is None or state.origin not in self._retired:
            return outcome
        if not counter_beyond(state, local, state.origin):
            return outcome
        return ApplyOutcome(Outcome.KNOWN, outcome.incoming, None, local, reason="moved")

    def _guarded(
        self,
        s: Session,
        clock: _Clock,
        local: dict[tuple[str, str], Record],
        record: Record,
        mine: Record | None,
        decide: Decide,
    ) -> ApplyOutcome:
        """:meth:`apply_batch` of one state from a peer, checked for counter reuse (see
        :mod:`neonpay.sync.identity`) before ``decide`` sees it."""
        if mine is not None:
            reused_by = reuser(record, mine)
            if reused_by is not None:
                if reused_by == self._node_id or reused_by in self._retired:
                    what = f"{record.kind} {record.key!r}"
                    if reused_by == self._node_id:
                        self._renew(
                            s,
                            f"a peer's state of {what} and ours hold different writes under "
                            f"the same counters of {reused_by}: this store was restored from "
                            "an older copy",
                        )
                    mine = self._restamp(clock, mine, record, reused_by)
                    local[(mine.kind, mine.key)] = mine
                    return decide(record, mine)
                return ApplyOutcome(
                    Outcome.REJECTED,
                    record,
                    None,
                    mine,
                    reason=(
                        f"node {reused_by} issued the same version counters twice for this "
                        f"record (its store was restored from an older copy?): refused; "
                        f"node {reused_by} takes a new node id when it next syncs with "
                        f"node {self._node_id}"
                    ),
                )
        me = self._node_id
        beyond = counter_beyond(record, mine, me)
        if beyond:
            issued = mine.version.get(me, 0) if mine is not None else 0
            new = self._renew(
                s,
                f"a peer holds counter {beyond} of {me} for {record.kind} {record.key!r}, "
                f"beyond the {issued} this store issued: this store was restored from an "
                "older copy, or the peer forged the state",
            )
            return ApplyOutcome(
                Outcome.REJECTED,
                record,
                None,
                mine,
                reason=(
                    f"holds counter {beyond} of node {me}, which that node never issued for "
                    f"this record (it issued {issued}): refused. Node {me} now has the new "
                    f"node id {new}: if its store was restored from a backup, send the state "
                    "again; otherwise the state was forged"
                ),
            )
        return decide(record, mine)

    def _restamp(self, clock: _Clock, mine: Record, seen: Record, reused: str) -> Record:
        """Write our state again as a new write of our current node id: same fields and
        field stamps, a fresh counter and stamp, so that it is concurrent with the
        peer's state of the record (``seen``) instead of taken for it.

        The counter of ``reused`` (the node id whose counters were issued twice) drops
        below the first one both states hold: that one and the ones after it name two
        different writes, so our state must not claim the peer's. Without the drop, our
        state would dominate the peer's and silently discard the writes it holds."""
        node = self._node_id
        version = dict(mine.version)
        below = min(version.get(reused, 0), seen.version.get(reused, 0)) - 1
        if below > 0:
            version[reused] = below
        else:
            version.pop(reused, None)
        version[node] = next_counter(version, node)
        stamp = next_hlc(clock.last, node, seen=HLC.decode(max(mine.hlc, seen.hlc)))
        clock.last = stamp
        clock.seq += 1
        state = Record(
            kind=mine.kind,
            key=mine.key,
            fields=dict(mine.fields),
            version=dict(sorted(version.items())),
            hlc=stamp.encode(),
            field_hlcs=dict(mine.field_hlcs),
            deleted=mine.deleted,
            origin=node,
            updated_at=time.time(),
            seq=clock.seq,
            resolution=mine.resolution,
        )
        clock.rows.append(_record_params(state, clock.seq, None))
        clock.restamped.append(state)
        logger.warning(
            "%s %r re-stamped as a write of %s, concurrent with the peer's state %s",
            mine.kind,
            mine.key,
            node,
            seen.hlc,
        )
        return state

    def reconcile(self, states: Sequence[Record]) -> builtins.list[Record]:
        with self._transaction(write=True) as s:
            seq, last = self._lock_clock(s)
            clock = _Clock(seq, last)
            local: dict[tuple[str, str], Record] = {}
            for state in states:
                key = (state.kind, state.key)
                if key not in local:
                    found = self._select_many(s, state.kind, [state.key]).get(state.key)
                    if found is not None:
                        local[key] = found
                self._guarded(s, clock, local, state, local.get(key), _keep)
            if clock.rows:
                self._write_states(s, clock.rows)
                self._save_clock(s, clock.seq, clock.last)
        return clock.restamped

    def feed(
        self,
        since: int,
        limit: int,
        *,
        kinds: Sequence[str] | None = None,
        exclude_received_from: str | None = None,
    ) -> FeedPage:
        _check_limit(limit)
        with self._transaction(write=False) as s:
            row = s.fetchone("SELECT seq FROM neonpay_clock WHERE id = 1")
            head = int(row[0]) if row else 0
            if since >= head:
                return FeedPage([], since, False)
            sql = (
                f"SELECT {_RECORD_COLUMNS} FROM neonpay_records{self._seq_index} "
                "WHERE seq > ? AND seq <= ?"
            )
            params: builtins.list[Any] = [since, head]
            if kinds is not None:
                if not kinds:
                    return FeedPage([], head, False)
                sql += f" AND kind IN ({','.join('?' * len(kinds))})"
                params.extend(kinds)
            if exclude_received_from is not None:
                sql += " AND (received_from IS NULL OR received_from <> ?)"
                params.append(exclude_received_from)
            sql += " ORDER BY seq LIMIT ?"
            params.append(limit + 1)
            rows = s.fetchall(sql, params)
        records = [_record_from_row(r) for r in rows[:limit]]
        if len(rows) > limit:
            return FeedPage(records, records[-1].seq, True)
        return FeedPage(records, head, False)

    def count_feed(
        self,
        since: int,
        *,
        kinds: Sequence[str] | None = None,
        exclude_received_from: str | None = None,
    ) -> int:
        sql = f"SELECT COUNT(*) FROM neonpay_records{self._seq_index} WHERE seq > ?"
        params: builtins.list[Any] = [since]
        if kinds is not None:
            if not kinds:
                return 0
            sql += f" AND kind IN ({','.join('?' * len(kinds))})"
            params.extend(kinds)
        if exclude_received_from is not None:
            sql += " AND (received_from IS NULL OR received_from <> ?)"
            params.append(exclude_received_from)
        with self._transaction(write=False) as s:
            row = s.fetchone(sql, params)
        return int(row[0]) if row else 0

    def changes(
        self, since: int, limit: int, *, kinds: Sequence[str] | None = None
    ) -> builtins.list[Record]:
        _check_limit(limit)
        sql = f"SELECT {_RECORD_COLUMNS} FROM neonpay_changes WHERE seq > ?"
        params: builtins.list[Any] = [since]
        if kinds is not None:
            sql += f" AND kind IN ({','.join('?' * len(kinds)) or 'NULL'})"
            params.extend(kinds)
        sql += " ORDER BY seq LIMIT ?"
        params.append(limit)
        with self._transaction(write=False) as s:
            rows = s.fetchall(sql, params)
        return [_record_from_row(r) for r in rows]

    def last_seq(self) -> int:
        with self._transaction(write=False) as s:
            row = s.fetchone("SELECT seq FROM neonpay_clock WHERE id = 1")
        return int(row[0]) if row else 0

    def last_hlc(self) -> str:
        with self._transaction(write=False) as s:
            row = s.fetchone("SELECT hlc FROM neonpay_clock WHERE id = 1")
        return str(row[0]) if row and row[0] else ""

    # --- metadata ------------------------------------------------------------------------
    def get_meta(self, name: str) -> str | None:
        with self._transaction(write=False) as s:
            row = s.fetchone("SELECT value FROM neonpay_meta WHERE name = ?", (name,))
        return str(row[0]) if row else None

    def set_meta(self, name: str, value: str) -> None:
        with self._transaction(write=True) as s:
            self._put_meta(s, name, value)

    def setdefault_meta(self, name: str, value: str) -> str:
        with self._transaction(write=True) as s:
            s.execute(
                "INSERT INTO neonpay_meta (name, value) VALUES (?, ?) "
                "ON CONFLICT (name) DO NOTHING",
                (name, value),
            )
            row = s.fetchone("SELECT value FROM neonpay_meta WHERE name = ?", (name,))
        assert row is not None, "the row was just inserted or already there"
        return str(row[0])

    # --- peers and cursors ---------------------------------------------------------------
    def save_peer(self, name: str, config: Mapping[str, Any]) -> None:
        now = time.time()
        with self._transaction(write=True) as s:
            s.execute(
                "INSERT INTO neonpay_peers (name, config, created_at, updated_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET "
                "config = excluded.config, updated_at = excluded.updated_at",
                (name, _json.dumps_text(dict(config)), now, now),
            )

    def get_peer(self, name: str) -> dict[str, Any] | None:
        with self._transaction(write=False) as s:
            row = s.fetchone("SELECT config FROM neonpay_peers WHERE name = ?", (name,))
        return dict(_json.loads(row[0])) if row else None

    def list_peers(self) -> dict[str, dict[str, Any]]:
        with self._transaction(write=False) as s:
            rows = s.fetchall("SELECT name, config FROM neonpay_peers ORDER BY created_at, name")
        return {str(name): dict(_json.loads(config)) for name, config in rows}

    def delete_peer(self, name: str) -> bool:
        with self._transaction(write=True) as s:
            found = s.fetchone("SELECT 1 FROM neonpay_peers WHERE name = ?", (name,))
            s.execute("DELETE FROM neonpay_peers WHERE name = ?", (name,))
            s.execute("DELETE FROM neonpay_cursors WHERE peer = ?", (name,))
        return found is not None

    def get_cursor(self, peer: str, direction: str) -> Cursor:
        with self._transaction(write=False) as s:
            row = s.fetchone(
                "SELECT seq, peer_node_id FROM neonpay_cursors WHERE peer = ? AND direction = ?",
                (peer, direction),
            )
        return Cursor(int(row[0]), row[1]) if row else Cursor()

    def set_cursor(self, peer: str, direction: str, cursor: Cursor) -> None:
        with self._transaction(write=True) as s:
            s.execute(
                "INSERT INTO neonpay_cursors (peer, direction, seq, peer_node_id) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (peer, direction) DO UPDATE SET "
                "seq = excluded.seq, peer_node_id = excluded.peer_node_id",
                (peer, direction, cursor.seq, cursor.peer_node_id),
            )

    # --- sync history -------------------------------------------------------------------
    def add_sync_run(self, run: SyncRunRow) -> int:
        with self._transaction(write=True) as s:
            row = s.fetchone(
                "INSERT INTO neonpay_sync_runs (peer, started_at, finished_at, status, "
                "items_synced, conflicts, errors, bytes_sent, bytes_received) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (
                    run.peer,
                    run.started_at,
                    run.finished_at,
                    run.status,
                    run.items_synced,
                    run.conflicts,
                    _json.dumps_text(list(run.errors)),
                    run.bytes_sent,
                    run.bytes_received,
                ),
            )
        assert row is not None
        return int(row[0])

    def list_sync_runs(
        self, peer: str | None = None, limit: int = 100
    ) -> builtins.list[SyncRunRow]:
        sql = (
            "SELECT peer, started_at, finished_at, status, items_synced, conflicts, errors, "
            "bytes_sent, bytes_received, id FROM neonpay_sync_runs"
        )
        params: builtins.list[Any] = []
        if peer is not None:
            sql += " WHERE peer = ?"
            params.append(peer)
        sql += " ORDER BY id DESC LIMIT ?"
        params.append(limit)
        with self._transaction(write=False) as s:
            rows = s.fetchall(sql, params)
        return [
            SyncRunRow(
                peer=r[0],
                started_at=float(r[1]),
                finished_at=float(r[2]),
                status=r[3],
                items_synced=int(r[4]),
                conflicts=int(r[5]),
                errors=tuple(_json.loads(r[6])),
                bytes_sent=int(r[7]),
                bytes_received=int(r[8]),
                id=int(r[9]),
            )
            for r in rows
        ]

    def sync_totals(self, peer: str) -> dict[str, Any]:
        with self._transaction(write=False) as s:
            row = s.fetchone(
                "SELECT COUNT(*), "
                "COALESCE(SUM(CASE WHEN status = 'completed' THEN 1 ELSE 0 END), 0), "
                "COALESCE(SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END), 0), "
                "COALESCE(SUM(CASE WHEN status = 'partial' THEN 1 ELSE 0 END), 0), "
                "COALESCE(SUM(items_synced), 0), COALESCE(SUM(conflicts), 0), "
                "COALESCE(SUM(bytes_sent), 0), COALESCE(SUM(bytes_received), 0) "
                "FROM neonpay_sync_runs WHERE peer = ?",
                (peer,),
            )
            last_error = s.fetchone(
                "SELECT errors FROM neonpay_sync_runs WHERE peer = ? AND status <> 'completed' "
                "ORDER BY id DESC LIMIT 1",
                (peer,),
            )
        assert row is not None
        errors = _json.loads(last_error[0]) if last_error else []
        return {
            "total": int(row[0]),
            "completed": int(row[1]),
            "failed": int(row[2]),
            "partial": int(row[3]),
            "items": int(row[4]),
            "conflicts": int(row[5]),
            "bytes_sent": int(row[6]),
            "bytes_received": int(row[7]),
            "last_error": errors[0] if errors else None,
        }

    # --- conflicts ------------------------------------------------------------------------
    def add_conflict(self, peer: str, local: Record, remote: Record) -> int:
        with self._transaction(write=True) as s:
            row = s.fetchone(
                "INSERT INTO neonpay_conflicts (peer, kind, key, local, remote, created_at, "
                "status) VALUES (?, ?, ?, ?, ?, ?, 'pending') RETURNING id",
                (
                    peer,
                    local.kind,
                    local.key,
                    _json.dumps_text(local.to_wire()),
                    _json.dumps_text(remote.to_wire()),
                    time.time(),
                ),
            )
        assert row is not None
        return int(row[0])

    def list_conflicts(self, status: str | None = "pending") -> builtins.list[ConflictRow]:
        sql = (
            "SELECT id, peer, kind, key, local, remote, created_at, status, resolved_at, "
            "resolution FROM neonpay_conflicts"
        )
        params: builtins.list[Any] = []
        if status is not None:
            sql += " WHERE status = ?"
            params.append(status)
        with self._transaction(write=False) as s:
            rows = s.fetchall(sql + " ORDER BY id", params)
        return [_conflict_from_row(r) for r in rows]

    def get_conflict(self, conflict_id: int) -> ConflictRow | None:
        with self._transaction(write=False) as s:
            row = s.fetchone(
                "SELECT id, peer, kind, key, local, remote, created_at, status, resolved_at, "
                "resolution FROM neonpay_conflicts WHERE id = ?",
                (conflict_id,),
            )
        return _conflict_from_row(row) if row else None

    def close_conflict(
        self, conflict_id: int, status: str, resolution: Mapping[str, Any] | None
    ) -> None:
        with self._transaction(write=True) as s:
            found = s.fetchone("SELECT 1 FROM neonpay_conflicts WHERE id = ?", (conflict_id,))
            if found is None:
                raise NotFoundError(f"no conflict with id {conflict_id}")
            s.execute(
                "UPDATE neonpay_conflicts SET status = ?, resolved_at = ?, resolution = ? "
                "WHERE id = ?",
                (
                    status,
                    time.time(),
                    None if resolution is None else _json.dumps_text(dict(resolution)),
                    conflict_id,
                ),
            )

    # --- replay protection ------------------------------------------------------------------
    def remember_request_id(self, request_id: str, now: float, horizon: float) -> bool:
        with self._transaction(write=True) as s:
            s.execute("DELETE FROM neonpay_request_ids WHERE seen_at < ?", (now - horizon,))
            row = s.fetchone(
                "INSERT INTO neonpay_request_ids (id, seen_at) VALUES (?, ?) "
                "ON CONFLICT (id) DO NOTHING RETURNING id",
                (request_id, now),
            )
        return row is not None

    # --- payments --------------------------------------------------------------------------
    def add_payment(self, payment: PaymentRow) -> bool:
        return self.record_payment(payment) is not None

    def record_payment(
        self, payment: PaymentRow, consume: Consume | None = None
    ) -> RecordedPayment | None:
        with self._transaction(write=True) as s:
            # The clock row is the write lock every writer of this store takes first, so
            # what ``consume`` reads cannot change before this transaction commits.
            clock = _Clock(*self._lock_clock(s))
            if s.fetchone(
                "SELECT 1 FROM neonpay_payments WHERE charge_id = ?", (payment.charge_id,)
            ):
                return None
            held: dict[tuple[str, str], Record | None] = {}

            def read(kind: str, key: str) -> Record | None:
                if (kind, key) not in held:
                    held[(kind, key)] = self._select_many(s, kind, [key]).get(key)
                found = held[(kind, key)]
                return None if found is None or found.deleted else found

            effects = consume(payment, read) if consume else PaymentEffects(payment)
            row = effects.payment
            if row.charge_id != payment.charge_id:
                raise ValueError("consume must not change the payment's charge id")
            s.execute(
                "INSERT INTO neonpay_payments (charge_id, user_id, stage_id, amount, currency, "
                "promo_code, payload, created_at, refunded_at, node_id, extra, promo_over_use) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    row.charge_id,
                    row.user_id,
                    row.stage_id,
                    row.amount,
                    row.currency,
                    row.promo_code,
                    row.payload,
                    row.created_at or time.time(),
                    row.refunded_at,
                    row.node_id or self._node_id,
                    _json.dumps_text(dict(row.extra)),
                    int(row.promo_over_use),
                ),
            )
            records: builtins.list[Record] = []
            for kind, key, change in effects.writes:
                if (kind, key) not in held:
                    read(kind, key)
                before = held[(kind, key)]
                state = self._change(s, clock, kind, key, before, change, None)
                if state is not None and state is not before:
                    held[(kind, key)] = state
                    records.append(state)
            if clock.moved:
                self._save_clock(s, clock.seq, clock.last)
        return RecordedPayment(row, tuple(records))

    def promo_over_uses(self) -> dict[str, int]:
        with self._transaction(write=False) as s:
            rows = s.fetchall(
                "SELECT promo_code, COUNT(*) FROM neonpay_payments "
                "WHERE promo_over_use = 1 AND promo_code IS NOT NULL GROUP BY promo_code"
            )
        return {str(code): int(n) for code, n in rows}

    def get_payment(self, charge_id: str) -> PaymentRow | None:
        rows = self._payments("WHERE charge_id = ?", [charge_id])
        return rows[0] if rows else None

    def mark_refunded(self, charge_id: str, at: float) -> bool:
        with self._transaction(write=True) as s:
            row = s.fetchone(
                "UPDATE neonpay_payments SET refunded_at = ? "
                "WHERE charge_id = ? AND refunded_at IS NULL RETURNING charge_id",
                (at, charge_id),
            )
        return row is not None

    def list_payments(
        self,
        *,
        user_id: int | None = None,
        stage_id: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int | None = None,
    ) -> builtins.list[PaymentRow]:
        clauses: builtins.list[str] = []
        params: builtins.list[Any] = []
        for clause, value in (
            ("user_id = ?", user_id),
            ("stage_id = ?", stage_id),
            ("created_at >= ?", since),
            ("created_at < ?", until),
        ):
            if value is not None:
                clauses.append(clause)
                params.append(value)
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        tail = " ORDER BY created_at, charge_id"
        if limit is not None:
            tail += " LIMIT ?"
            params.append(limit)
        return self._payments(where + tail, params)

    def _payments(self, where: str, params: Sequence[Any]) -> builtins.list[PaymentRow]:
        with self._transaction(write=False) as s:
            rows = s.fetchall(
                "SELECT charge_id, user_id, stage_id, amount, currency, promo_code, payload, "
                "created_at, refunded_at, node_id, extra, promo_over_use "
                f"FROM neonpay_payments {where}",
                params,
            )
        return [
            PaymentRow(
                charge_id=r[0],
                user_id=int(r[1]),
                stage_id=r[2],
                amount=int(r[3]),
                currency=r[4],
                promo_code=r[5],
                payload=r[6],
                created_at=float(r[7]),
                refunded_at=None if r[8] is None else float(r[8]),
                node_id=r[9],
                extra=_json.loads(r[10]),
                promo_over_use=bool(r[11]),
            )
            for r in rows
        ]


def _keep(incoming: Record, local: Record | None) -> ApplyOutcome:
    """A decide that applies nothing (for :meth:`SQLStore.reconcile`)."""
    return ApplyOutcome(Outcome.KNOWN, incoming, None, local)


def _new_node_id() -> str:
    return f"node-{uuid.uuid4().hex[:12]}"


def _retired_entries(text: str | None) -> builtins.list[dict[str, Any]]:
    """The retired node ids meta row, parsed (an empty list when absent or unreadable)."""
    if not text:
        return []
    try:
        value = _json.loads(text)
    except ValueError:
        return []
    return [dict(e) for e in value if isinstance(e, dict)] if isinstance(value, list) else []


def _retired_ids(s: Session) -> builtins.list[str]:
    row = s.fetchone("SELECT value FROM neonpay_meta WHERE name = ?", (RETIRED_META,))
    return [str(e.get("node_id")) for e in _retired_entries(row[0] if row else None)]


class CapacityError(ValidationError):
    """A create would exceed the number of live records allowed for a kind."""

    def __init__(self, kind: str, limit: int) -> None:
        super().__init__(
            "id", f"the catalog already holds the maximum of {limit} records", kind=kind
        )


def _over_limit(outcome: ApplyOutcome, limit: int) -> ApplyOutcome:
    """``outcome`` (an apply that would create one record too many) refused."""
    incoming = outcome.incoming
    return checked_outcome(
        Outcome.REJECTED,
        incoming,
        None,
        outcome.local,
        None,
        f"this node already holds the maximum of {limit} {incoming.kind} records",
    )


def _check_limit(limit: int) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValidationError("limit", f"must be a whole number of at least 1, not {limit!r}")


def _later(current: HLC | None, latest: str, outcomes: Sequence[ApplyOutcome]) -> HLC | None:
    """The later of ``current`` and the stamp ``latest`` (the text-greatest of a batch).

    When ``latest`` is malformed (text order then means nothing), every stamp of the
    batch is decoded instead and the malformed ones are ignored."""
    if not latest:
        return current
    try:
        seen = HLC.decode(latest)
    except (ValueError, TypeError, AttributeError):
        newest = current
        for outcome in outcomes:
            if outcome.outcome is Outcome.REJECTED:
                continue
            stamps = [outcome.incoming.hlc]
            if outcome.state is not None:
                stamps.append(outcome.state.hlc)
            for stamp in stamps:
                try:
                    decoded = HLC.decode(stamp)
                except (ValueError, TypeError, AttributeError):
                    continue
                if newest is None or decoded > newest:
                    newest = decoded
        return newest
    return seen if current is None or seen > current else current


def _conflict_from_row(row: Sequence[Any]) -> ConflictRow:
    return ConflictRow(
        id=int(row[0]),
        peer=row[1],
        kind=row[2],
        key=row[3],
        local=record_from_wire(_json.loads(row[4])),
        remote=record_from_wire(_json.loads(row[5])),
        created_at=float(row[6]),
        status=row[7],
        resolved_at=None if row[8] is None else float(row[8]),
        resolution=None if row[9] is None else _json.loads(row[9]),
    )


def record_from_wire(data: Mapping[str, Any]) -> Record:
    """Rebuild a :class:`Record` from :meth:`Record.to_wire` output (trusted input)."""
    return Record(
        kind=data["kind"],
        key=data["key"],
        fields=data["fields"],
        version=data["version"],
        hlc=data["hlc"],
        field_hlcs=data["field_hlcs"],
        deleted=bool(data["deleted"]),
        origin=data.get("origin", ""),
        updated_at=float(data.get("updated_at", 0.0)),
        resolution=bool(data.get("resolution", False)),
    )


def _check_node_id(node_id: str) -> None:
    if not (1 <= len(node_id) <= 64) or not all(
        c.isascii() and (c.isalnum() or c in "-_") for c in node_id
    ):
        raise ConfigurationError(
            f"node_id must be 1-64 characters of letters, digits, '-' or '_': {node_id!r}"
        )
