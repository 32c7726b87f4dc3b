"""Secrets at rest: SQLite files readable by their owner only, a warning for a store that
others can read, passwords masked in every URL shown, plain paths as SQLite files, and a
wrong PostgreSQL password as one clear error at once."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from neonpay import create_neonpay
from neonpay.errors import ConfigurationError, mask_secrets, mask_url
from neonpay.store import SQLiteStore, open_store


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_sqlite_store_and_its_wal_and_shm_are_private(tmp_path: Path) -> None:
    old_umask = os.umask(0o022)  # a usual umask, which would give 0644
    try:
        neonpay = create_neonpay(storage=f"sqlite:///{tmp_path / 'private.db'}")
        try:
            neonpay.settings.set("x", 1)  # the -wal and -shm files exist while it is open
            files = sorted(tmp_path.iterdir())
            assert {p.name for p in files} >= {"private.db", "private.db-wal", "private.db-shm"}
            assert {p.name: mode(p) for p in files} == {p.name: 0o600 for p in files}
        finally:
            neonpay.close()
    finally:
        os.umask(old_umask)


def test_opening_a_store_others_can_read_warns_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "shared.db"
    open_store(f"sqlite:///{path}").close()
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="neonpay.store"):
        open_store(f"sqlite:///{path}").close()
        open_store(f"sqlite:///{path}").close()
    warnings = [r for r in caplog.records if "can be read by other users" in r.getMessage()]
    assert len(warnings) == 1
    assert "chmod 600" in warnings[0].getMessage()
    assert mode(path) == 0o644  # warned about, not changed behind the owner's back


def test_a_plain_path_is_a_sqlite_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "main").mkdir()
    (tmp_path / "other").mkdir()
    monkeypatch.chdir(tmp_path / "other")
    store = open_store("../main/neonpay.db")
    try:
        assert isinstance(store, SQLiteStore)
        assert (tmp_path / "main" / "neonpay.db").exists()
    finally:
        store.close()


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://u:s3cret@h/db", "postgresql://u:***@h/db"),
        (
            "postgresql://u@h/db?password=s3cret&sslmode=require",
            "postgresql://u@h/db?password=***&sslmode=require",
        ),
        (
            "postgresql://u@h/db?sslmode=require&PASSWORD=s3cret",
            "postgresql://u@h/db?sslmode=require&PASSWORD=***",
        ),
        (
            "postgres://u:p%40ss@h:5432/db?sslpassword=k",
            "postgres://u:***@h:5432/db?sslpassword=***",
        ),
        ("sqlite:///neonpay.db", "sqlite:///neonpay.db"),
        ("https://store.example.com/sync", "https://store.example.com/sync"),
    ],
)
def test_mask_url(url: str, shown: str) -> None:
    assert mask_url(url) == shown
    assert "s3cret" not in mask_secrets(f"cannot reach {url} now")


def _with_password_in_query(url: str) -> str:
    parts = urlsplit(url)
    password = parts.password or ""
    netloc = parts.netloc.replace(f":{password}@", "@", 1)
    query = f"{parts.query}&password={password}" if parts.query else f"password={password}"
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def test_a_password_in_the_query_is_masked_in_url_and_repr(postgres_url: str) -> None:
    url = _with_password_in_query(postgres_url)
    password = urlsplit(postgres_url).password
    assert password
    neonpay = create_neonpay(storage=url)
    try:
        for shown in (neonpay.store.url, repr(neonpay.store), repr(neonpay)):
            assert f"password={password}" not in shown
            assert "password=***" in shown
    finally:
        neonpay.close()


def test_a_wrong_postgres_password_is_one_clear_error(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    parts = urlsplit(postgres_url)
    assert parts.password
    wrong = urlunsplit(
        parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":not-the-password@"))
    )
    with caplog.at_level(logging.DEBUG), pytest.raises(ConfigurationError) as caught:
        open_store(wrong)
    message = str(caught.value)
    assert f'password authentication failed for user "{parts.username}"' in message
    assert "not-the-password" not in message
    assert "database created" not in message
    assert not [r for r in caplog.records if r.name.startswith("psycopg.pool")]
