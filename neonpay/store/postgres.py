"""The PostgreSQL store (psycopg 3 with a connection pool), for bots run as many replicas.

Writers serialize on the single ``neonpay_clock`` row (``SELECT ... FOR UPDATE``), which
makes the change-log sequence gap-free and visible in order across processes: a
transaction holding sequence N commits before any other can take N+1. Migrations run
under a transaction-scoped advisory lock so that replicas starting together do not race.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from neonpay.errors import ConfigurationError, MissingExtraError, StorageError, mask_url
from neonpay.store.base import ApplyOutcome, Decide, Outcome, Record
from neonpay.store.sql import _RECORD_COLUMNS, _UPSERT_TAIL, Session, SQLStore

if TYPE_CHECKING:
    import psycopg
    import psycopg_pool

__all__ = ["CHANGE_CHANNEL", "PostgresStore", "mask_dsn"]

#: Every write transaction ends with ``NOTIFY`` on this channel, so that other processes
#: on the same database learn of it at once (:mod:`neonpay.store.watch`).
CHANGE_CHANNEL = "neonpay_changes"
_MIGRATION_LOCK = 0x4E454F4E  # "NEON"
#: Statistics are refreshed once the records written since the last ``ANALYZE`` reach
#: this many, and at least this share of the table as it was then.
_ANALYZE_MIN_ROWS = 1000
_ANALYZE_SHARE = 0.2
#: Writes of at least this many states use COPY (a sync page holds 500).
_COPY_MIN_ROWS = 2000

logger = logging.getLogger("neonpay.store")


def mask_dsn(dsn: str) -> str:
    """The DSN with its password replaced by ``***`` (in the userinfo and in a
    ``password=`` query parameter)."""
    return mask_url(dsn)


def _probe(psycopg: Any, dsn: str, shown: str, timeout: float) -> None:
    """Connect once before the pool does, so that a wrong password, a missing database
    or a server that is down is one clear error at once (the pool would retry for
    ``timeout`` seconds and log every attempt).

    Raises:
        ConfigurationError: naming the URL (password masked) and PostgreSQL's reason.
    """
    try:
        conn = psycopg.connect(dsn, connect_timeout=max(1, round(timeout)))
    except psycopg.Error as exc:
        reason = " ".join(mask_url(str(exc)).split()) or type(exc).__name__
        if "password authentication failed" in reason or "authentication failed" in reason:
            hint = "check the user name and password in the URL"
        elif "does not exist" in reason:
            hint = "create the database first (createdb), or check its name in the URL"
        elif "Is the server running" in reason:
            hint = ""  # psycopg's own advice says it
        else:
            hint = "is the server running and reachable from here?"
        raise ConfigurationError(
            f"cannot connect to PostgreSQL at {shown}: {reason[:300]}"
            + (f" ({hint})" if hint else "")
        ) from None
    conn.close()


class _PostgresSession(Session):
    def __init__(self, conn: psycopg.Connection[tuple[Any, ...]]) -> None:
        self._conn = conn

    @staticmethod
    def _sql(sql: str) -> str:
        return sql.replace("?", "%s")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._conn.execute(self._sql(sql), tuple(params))

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with self._conn.cursor() as cur:
            cur.executemany(self._sql(sql), rows)

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._conn.execute(self._sql(sql), tuple(params)).fetchall()

    def copy_states(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """Write record states and their log entries with ``COPY`` (a bulk write): the log
        rows straight into the log, the states through a temporary table and one upsert
        (the last state of each record, as in order they would have ended)."""
        latest = list({(row[0], row[1]): row for row in rows}.values())
        with self._conn.cursor() as cur:
            cur.execute(
                "CREATE TEMP TABLE IF NOT EXISTS neonpay_incoming "
                "(LIKE neonpay_records INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
            )
            with cur.copy(f"COPY neonpay_incoming ({_RECORD_COLUMNS}) FROM STDIN") as copy:
                for row in latest:
                    copy.write_row(row)
            cur.execute(
                f"INSERT INTO neonpay_records ({_RECORD_COLUMNS}) "
                f"SELECT {_RECORD_COLUMNS} FROM neonpay_incoming{_UPSERT_TAIL}"
            )
            with cur.copy(f"COPY neonpay_changes ({_RECORD_COLUMNS}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)


class PostgresStore(SQLStore):
    """A store in a PostgreSQL database (``postgresql://user:pass@host/db``).

    Raises:
        MissingExtraError: psycopg is not installed (the ``postgres`` extra).
        ConfigurationError: the database cannot be reached.
        StorageError: a database operation failed.
    """

    _autoid = "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"
    _for_update = " FOR UPDATE"
    _key_order = 'key COLLATE "C"'

    def __init__(
        self,
        dsn: str,
        *,
        node_id: str | None = None,
        min_size: int = 1,
        max_size: int = 8,
        timeout: float = 10.0,
    ) -> None:
        try:
            import psycopg
            import psycopg_pool
        except ImportError as exc:
            raise MissingExtraError("postgres", "the PostgreSQL store") from exc
        super().__init__(mask_dsn(dsn), node_id)
        self._psycopg = psycopg
        _probe(psycopg, dsn, self.url, timeout)
        self._dsn = dsn  # for open_listener(); never shown (self.url is masked)
        self._analyzed_rows = 0.0  # the records table's size at the last ANALYZE
        self._unanalyzed = 0  # records written by apply_batch since then
        self._pool: psycopg_pool.ConnectionPool[psycopg.Connection[tuple[Any, ...]]]
        self._pool = psycopg_pool.ConnectionPool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            timeout=timeout,
            open=False,
            kwargs={"autocommit": True},
        )
        try:
            self._pool.open(wait=True, timeout=timeout)
        except psycopg_pool.PoolTimeout as exc:
            self._pool.close()
            raise ConfigurationError(
                f"cannot connect to PostgreSQL at {self.url}: is the server running and the "
                "database created?"
            ) from exc
        try:
            self._initialize()
        except BaseException:
            self._pool.close()
            raise

    def open_listener(self) -> psycopg.Connection[tuple[Any, ...]]:
        """A new connection of its own (not from the pool), in autocommit mode, for
        ``LISTEN``; the caller closes it.

        Raises:
            StorageError: the database cannot be reached.
        """
        if self._closed:
            raise StorageError(f"the store {self.url} is closed")
        try:
            return self._psycopg.connect(self._dsn, autocommit=True)
        except self._psycopg.Error as exc:
            raise StorageError(f"cannot connect to {self.url}: {exc}") from exc

    def _lock_migrations(self, session: Session) -> None:
        session.execute("SELECT pg_advisory_xact_lock(?)", (_MIGRATION_LOCK,))

    @contextmanager
    def _transaction(self, *, write: bool) -> Iterator[Session]:
        if self._closed:
            raise StorageError(f"the store {self.url} is closed")
        psycopg = self._psycopg
        try:
            with self._pool.connection() as conn, conn.transaction():
                yield _PostgresSession(conn)
                if write:  # delivered on commit, to every listener (neonpay.store.watch)
                    conn.execute(f"NOTIFY {CHANGE_CHANNEL}")
        except psycopg.Error as exc:
            raise StorageError(f"PostgreSQL error on {self.url}: {exc}") from exc

    def _write_states(self, s: Session, rows: list[tuple[Any, ...]]) -> None:  # type: ignore[override]
        """Large writes (imports: :meth:`write_many`) go through ``COPY``; pages of a sync
        and single writes through the shared statements."""
        if len(rows) >= _COPY_MIN_ROWS and isinstance(s, _PostgresSession):
            s.copy_states(rows)
        else:
            SQLStore._write_states(s, rows)

    def apply_batch(
        self, incoming: Sequence[Record], decide: Decide, *, from_peer: bool = False
    ) -> list[ApplyOutcome]:
        """:meth:`SQLStore.apply_batch`, then fresh planner statistics once the tables have
        grown by a fifth since the last ``ANALYZE``.

        During a bulk load (a first sync) autovacuum has not analyzed the tables yet, and
        with the statistics of an empty table the key lookups of the next batches become
        scans of the whole kind.
        """
        outcomes = super().apply_batch(incoming, decide, from_peer=from_peer)
        self._unanalyzed += sum(1 for o in outcomes if o.outcome is Outcome.APPLIED)
        if self._unanalyzed >= max(_ANALYZE_MIN_ROWS, _ANALYZE_SHARE * self._analyzed_rows):
            self._analyze()
        return outcomes

    def _analyze(self) -> None:
        """Refresh the statistics of the records and changes tables (best effort: the
        batch is already committed; a failure is logged, and tried again later)."""
        self._unanalyzed = 0
        try:
            with self._pool.connection() as conn:
                conn.execute("ANALYZE neonpay_records, neonpay_changes")
                row = conn.execute(
                    "SELECT reltuples FROM pg_class WHERE oid = 'neonpay_records'::regclass"
                ).fetchone()
        except self._psycopg.Error as exc:
            logger.warning("could not refresh the statistics of %s: %s", self.url, exc)
            return
        self._analyzed_rows = max(0.0, float(row[0])) if row else 0.0

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._pool.close()
