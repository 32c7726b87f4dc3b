"""Opening stores by URL, and what only one backend can show."""

from __future__ import annotations

from pathlib import Path

import pytest

from neonpay.errors import ConfigurationError
from neonpay.store import SQLiteStore, open_store
from neonpay.store.postgres import PostgresStore, mask_dsn

from .records import put


def test_relative_and_absolute_sqlite_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    relative = open_store("sqlite:///data/rel.db")
    absolute = open_store(f"sqlite:///{tmp_path / 'abs.db'}")
    try:
        assert isinstance(relative, SQLiteStore)
        assert isinstance(absolute, SQLiteStore)
        assert (tmp_path / "data" / "rel.db").is_file()  # parent directory created
        assert (tmp_path / "abs.db").is_file()
        assert absolute.url == f"sqlite:///{tmp_path / 'abs.db'}"
    finally:
        relative.close()
        absolute.close()


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("sqlite://", "file path"),
        ("sqlite:///", "file path"),
        ("sqlite:///:memory:", "in-memory"),
        ("mysql://user:hunter2secret@db/x", "unknown storage URL"),
        ("redis://localhost", "unknown storage URL"),
        (":memory:", "in-memory"),
    ],
)
def test_unusable_urls_are_configuration_errors(
    url: str, words: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigurationError, match=words) as info:
        open_store(url)
    assert "hunter2secret" not in str(info.value)
    assert list(tmp_path.iterdir()) == []  # no file was created


def test_postgres_url_masks_the_password(postgres_url: str) -> None:
    store = open_store(postgres_url)
    try:
        assert isinstance(store, PostgresStore)
        assert ":neonpay@" not in store.url
        assert ":***@" in store.url
        assert ":neonpay@" not in repr(store)
    finally:
        store.close()
    assert mask_dsn("postgresql://u:p%40ss@h/db") == "postgresql://u:***@h/db"
    assert mask_dsn("postgresql://u@h/db") == "postgresql://u@h/db"


def test_unreachable_postgres_is_a_configuration_error() -> None:
    dsn = "postgresql://neonpay:topsecretpw@127.0.0.1:1/neonpay?connect_timeout=1"
    with pytest.raises(ConfigurationError) as info:
        PostgresStore(dsn, timeout=0.5)
    assert "topsecretpw" not in str(info.value)
    assert "***" in str(info.value)


def test_postgres_lists_by_code_point_whatever_the_collation(postgres_url: str) -> None:
    import psycopg

    with psycopg.connect(postgres_url, autocommit=True) as conn:
        row = conn.execute("SELECT 1 FROM pg_collation WHERE collname = 'en-x-icu'").fetchone()
    if row is None:
        pytest.skip("this PostgreSQL has no ICU collations")
    open_store(postgres_url).close()  # create the tables
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute('ALTER TABLE neonpay_records ALTER COLUMN key TYPE TEXT COLLATE "en-x-icu"')
    store = open_store(postgres_url)
    try:
        keys = ["b", "B", "a", "a-1", "a_1", "A1", "_z", "Z"]
        for key in keys:
            put(store, "payment_stage", key, {"k": key})
        assert [r.key for r in store.list("payment_stage")] == sorted(keys)
    finally:
        store.close()
