"""The error tree, token masking, and translation of database errors at the store's edge."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neonpay import errors
from neonpay.errors import (
    AccessDenied,
    ConfigurationError,
    ConflictError,
    InvalidSignature,
    MissingExtraError,
    NeonPayError,
    NotFoundError,
    PaymentError,
    PeerRejected,
    PeerUnreachable,
    ReplayedRequest,
    SignatureError,
    StaleTimestamp,
    StorageError,
    SyncError,
    ValidationError,
    mask_secrets,
    mask_token,
)
from neonpay.store import SQLiteStore, open_store

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
SECRET_PART = TOKEN.split(":", 1)[1][2:-2]


def test_the_tree() -> None:
    parents = {
        ConfigurationError: NeonPayError,
        ValidationError: NeonPayError,
        NotFoundError: NeonPayError,
        StorageError: NeonPayError,
        SyncError: NeonPayError,
        PeerUnreachable: SyncError,
        PeerRejected: SyncError,
        ConflictError: SyncError,
        AccessDenied: NeonPayError,
        SignatureError: NeonPayError,
        InvalidSignature: SignatureError,
        StaleTimestamp: SignatureError,
        ReplayedRequest: SignatureError,
        PaymentError: NeonPayError,
        MissingExtraError: NeonPayError,
    }
    for cls, parent in parents.items():
        assert cls.__bases__[0] is parent, cls
    exported = {getattr(errors, name) for name in errors.__all__ if name[0].isupper()}
    assert exported == {NeonPayError, *parents}
    for cls in exported:  # every class is drawn in the module docstring
        assert cls.__name__ in (errors.__doc__ or "")


def test_errors_carry_their_details() -> None:
    invalid = ValidationError("title", "must be 1-32 characters long", kind="payment_stage")
    assert (invalid.field, invalid.rule, invalid.kind) == (
        "title",
        "must be 1-32 characters long",
        "payment_stage",
    )
    assert str(invalid) == "invalid payment_stage.title: must be 1-32 characters long"
    assert isinstance(invalid, ValueError)
    assert str(ValidationError("x", "rule")) == "invalid x: rule"

    missing = NotFoundError("no payment stage 'basic'")
    assert isinstance(missing, KeyError)
    assert str(missing) == "no payment stage 'basic'"  # plain words, not KeyError's quotes
    assert str(NotFoundError()) == "not found"

    rejected = PeerRejected("the peer said no", status=409, reason="conflict")
    assert (rejected.status, rejected.reason, str(rejected)) == (
        409,
        "conflict",
        "the peer said no",
    )

    extra = MissingExtraError("postgres", "the PostgreSQL store")
    assert isinstance(extra, ImportError)
    assert extra.extra == "postgres"
    assert 'pip install -e ".[postgres]"' in str(extra)


def test_mask_token() -> None:
    masked = mask_token(TOKEN)
    assert masked == "123456789:AA…aw"
    assert SECRET_PART not in masked
    assert mask_token(None) == ""
    assert mask_token("") == ""
    assert mask_token("short") == "…"
    assert mask_token("a-long-webhook-secret") == "a-…et"
    assert mask_token("123:ABCDEFGH_-") == "123:AB…_-"


@pytest.mark.parametrize(
    "text",
    [
        f"token {TOKEN} leaked",
        f"GET https://api.telegram.org/bot{TOKEN}/getMe failed",
        f"POST http://127.0.0.1:8081/bot{TOKEN}/sendInvoice: 401",
        f"{TOKEN}",
        f"({TOKEN}),",
        f"'{TOKEN}'",
        f"bot{TOKEN}",
        f"x{TOKEN}",
        f"a={TOKEN}&b=1",
    ],
)
def test_mask_secrets_hides_every_token(text: str) -> None:
    masked = mask_secrets(text)
    assert SECRET_PART not in masked
    assert "123456789:AA…aw" in masked


def test_mask_secrets_leaves_other_text_alone() -> None:
    text = "stage basic costs 10 Stars at 12:30; node-1a2b3c, seq 42"
    assert mask_secrets(text) == text
    both = mask_secrets(f"{TOKEN} and 987654:ZZ{'q' * 30}-_")
    assert SECRET_PART not in both
    assert "q" * 30 not in both
    assert both == "123456789:AA…aw and 987654:ZZ…-_"


_TOKEN_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"


@settings(max_examples=300, deadline=None)
@given(
    bot_id=st.integers(min_value=100, max_value=10**10),
    secret=st.text(alphabet=_TOKEN_CHARS, min_size=30, max_size=46),
    before=st.text(max_size=20),
    after=st.text(max_size=20).filter(lambda s: not s or s[0] not in _TOKEN_CHARS),
)
def test_a_token_never_survives_masking(bot_id: int, secret: str, before: str, after: str) -> None:
    token = f"{bot_id}:{secret}"
    if before and before[-1].isdigit():
        before += " "
    masked = mask_secrets(before + token + after)
    assert token not in masked
    assert secret[2:-2] not in masked


def test_sqlite_errors_become_storage_errors(tmp_path: Path) -> None:
    path = tmp_path / "neonpay.db"
    store = SQLiteStore(path, busy_timeout=0.05)
    blocker = sqlite3.connect(path, isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        with pytest.raises(StorageError) as locked:
            store.set_meta("k", "v")
        assert isinstance(locked.value.__cause__, sqlite3.OperationalError)
        assert "locked" in str(locked.value)
        blocker.execute("ROLLBACK")
        store.set_meta("k", "v")  # works again once the lock is gone
        assert store.get_meta("k") == "v"

        blocker.execute("DROP TABLE neonpay_peers")
        with pytest.raises(StorageError) as broken:
            store.list_peers()
        assert isinstance(broken.value.__cause__, sqlite3.OperationalError)
        assert "neonpay_peers" in str(broken.value)
    finally:
        blocker.close()
        store.close()


def test_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "garbage.db"
    path.write_bytes(b"this is not a SQLite database" * 100)
    with pytest.raises(ConfigurationError) as info:
        open_store(f"sqlite:///{path}")
    assert isinstance(info.value.__cause__, sqlite3.DatabaseError)
    assert str(path) in str(info.value)


def test_postgres_errors_become_storage_errors(postgres_url: str) -> None:
    import psycopg

    store = open_store(postgres_url)
    try:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute("DROP TABLE neonpay_peers")
        with pytest.raises(StorageError) as info:
            store.list_peers()
        assert isinstance(info.value.__cause__, psycopg.Error)
        assert ":neonpay@" not in str(info.value)  # the password is masked
    finally:
        store.close()
