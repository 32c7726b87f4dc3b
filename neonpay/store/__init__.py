"""Durable storage behind one protocol: SQLite (the default) and PostgreSQL.

Use :func:`open_store` with a URL::

    open_store("sqlite:///neonpay.db")
    open_store("postgresql://user:password@localhost/neonpay")
"""

from __future__ import annotations

import os
from pathlib import Path

from neonpay.errors import ConfigurationError
from neonpay.store.base import (
    KINDS,
    SYNC_KINDS,
    ApplyOutcome,
    ConflictRow,
    Cursor,
    FeedPage,
    Outcome,
    PaymentRow,
    Record,
    Store,
    SyncRunRow,
)
from neonpay.store.sqlite import SQLiteStore

__all__ = [
    "DEFAULT_STORAGE_URL",
    "KINDS",
    "STORAGE_ENV",
    "SYNC_KINDS",
    "ApplyOutcome",
    "ConflictRow",
    "Cursor",
    "FeedPage",
    "Outcome",
    "PaymentRow",
    "Record",
    "SQLiteStore",
    "Store",
    "SyncRunRow",
    "default_storage_url",
    "open_store",
]

#: The environment variable that names the default store.
STORAGE_ENV = "NEONPAY_STORAGE"
#: The store used when nothing else is said: a file in the working directory.
DEFAULT_STORAGE_URL = "sqlite:///neonpay.db"


def default_storage_url() -> str:
    """``$NEONPAY_STORAGE`` if set, else ``sqlite:///neonpay.db``."""
    return os.environ.get(STORAGE_ENV) or DEFAULT_STORAGE_URL


def open_store(url: str | None = None, *, node_id: str | None = None) -> Store:
    """Open (creating and migrating as needed) the store at ``url``.

    ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db`` and
    ``postgresql://...`` (or ``postgres://``) are understood, and so is a plain file path
    without a scheme (``../main/neonpay.db``), which names a SQLite file. ``None`` means
    :func:`default_storage_url`. A new SQLite file is created readable by its owner only.

    Raises:
        ConfigurationError: an unknown scheme, or a database that cannot be opened.
        MissingExtraError: the PostgreSQL extra is not installed.
    """
    url = url or default_storage_url()
    plain = "://" not in url  # a plain path names a SQLite file
    if plain or url.startswith("sqlite://"):
        path = url if plain else url[len("sqlite://") :]
        if path.startswith("/") and not plain:
            path = path[1:]
        if not path:
            raise ConfigurationError(
                "a SQLite URL needs a file path: sqlite:///neonpay.db (relative) or "
                "sqlite:////var/lib/neonpay.db (absolute)"
            )
        if path == ":memory:":
            raise ConfigurationError(
                "an in-memory store loses everything on exit; give a file path instead"
            )
        return SQLiteStore(Path(path), node_id=node_id)
    if url.startswith(("postgresql://", "postgres://")):
        from neonpay.store.postgres import PostgresStore

        return PostgresStore(url, node_id=node_id)
    raise ConfigurationError(
        f"unknown storage URL {url.split('://', 1)[0]!r}://...: use sqlite:///path.db or "
        "postgresql://user:password@host/db"
    )
