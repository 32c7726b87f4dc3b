"""The signed invoice payload: what it binds, its size, its age, and the store's secret."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neonpay.core.invoices import (
    INVOICE_SECRET_META,
    MAX_PAYLOAD_BYTES,
    ExpiredInvoice,
    InvalidInvoice,
    InvoiceKind,
    InvoiceSigner,
    is_neonpay_payload,
    load_invoice_secret,
    parse_payload,
)
from neonpay.errors import PaymentError
from neonpay.store import Store, open_store

SECRET = bytes(range(32))
NOW = 1_750_000_000.0


class Clock:
    """A settable time source."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def signer(clock: Clock | None = None, secret: bytes = SECRET) -> InvoiceSigner:
    return InvoiceSigner(secret, max_age=3600, link_max_age=7200, clock=clock or Clock())


def test_round_trip_binds_stage_price_promo_user_and_time() -> None:
    s = signer()
    claim, payload = s.issue(InvoiceKind.CHAT, "premium", 25, promo_code="SAVE20", user_id=42)
    assert is_neonpay_payload(payload)
    verified = s.verify(payload, price=25, user_id=42)
    assert verified == claim
    assert (verified.stage_id, verified.price, verified.promo_code, verified.user_id) == (
        "premium",
        25,
        "SAVE20",
        42,
    )
    assert verified.issued_at == int(NOW)


@pytest.mark.parametrize(
    ("price", "user_id"),
    [(26, 42), (24, 42), (2500, 42), (25, 43)],
    ids=["more", "less", "x100", "other-user"],
)
def test_other_price_or_user_does_not_verify(price: int, user_id: int) -> None:
    s = signer()
    _, payload = s.issue(InvoiceKind.CHAT, "premium", 25, user_id=42)
    with pytest.raises(InvalidInvoice) as info:
        s.verify(payload, price=price, user_id=user_id)
    assert "not valid" in info.value.user_message


def test_another_stores_secret_does_not_verify() -> None:
    _, payload = signer().issue(InvoiceKind.CHAT, "premium", 25, user_id=42)
    with pytest.raises(InvalidInvoice):
        signer(secret=bytes(32)).verify(payload, price=25, user_id=42)


def test_edited_clear_text_does_not_verify() -> None:
    s = signer()
    _, payload = s.issue(InvoiceKind.CHAT, "basic", 25, promo_code="SAVE20", user_id=42)
    for forged in (
        payload.replace("basic", "gold1"),
        payload.replace("SAVE20", "SAVE90"),
        payload.replace("np1c", "np1l"),
    ):
        with pytest.raises(InvalidInvoice):
            s.verify(forged, price=25, user_id=42)


@settings(max_examples=200, deadline=None)
@given(position=st.integers(min_value=0), replacement=st.characters(codec="ascii"))
def test_any_changed_character_is_refused(position: int, replacement: str) -> None:
    s = signer()
    _, payload = s.issue(InvoiceKind.CHAT, "premium", 25, promo_code="SAVE20", user_id=42)
    index = position % len(payload)
    forged = payload[:index] + replacement + payload[index + 1 :]
    if forged == payload:
        return
    with pytest.raises(InvalidInvoice):
        s.verify(forged, price=25, user_id=42)


def test_stale_invoice_is_expired_and_age_can_be_skipped() -> None:
    clock = Clock()
    s = signer(clock)
    _, payload = s.issue(InvoiceKind.CHAT, "premium", 25, user_id=42)
    clock.now += 3600
    assert s.verify(payload, price=25, user_id=42).stage_id == "premium"
    clock.now += 1
    with pytest.raises(ExpiredInvoice) as info:
        s.verify(payload, price=25, user_id=42)
    assert "expired" in info.value.user_message
    assert s.verify(payload, price=25, user_id=42, check_age=False).stage_id == "premium"


def test_links_have_their_own_age_and_any_payer() -> None:
    clock = Clock()
    s = signer(clock)
    _, payload = s.issue(InvoiceKind.LINK, "premium", 25)
    assert s.verify(payload, price=25, user_id=1).user_id is None
    assert s.verify(payload, price=25, user_id=2).user_id is None
    clock.now += 7200 + 1
    with pytest.raises(ExpiredInvoice):
        s.verify(payload, price=25, user_id=1)


def test_invoice_from_the_future_is_refused() -> None:
    clock = Clock(NOW + 3600)
    _, payload = signer(clock).issue(InvoiceKind.CHAT, "premium", 25, user_id=42)
    with pytest.raises(InvalidInvoice):
        signer(Clock(NOW)).verify(payload, price=25, user_id=42)


def test_longest_ids_fit_in_128_bytes() -> None:
    s = signer()
    stage_id = "s" * 64
    _, payload = s.issue(
        InvoiceKind.SUBSCRIPTION, stage_id, 10_000, promo_code="P" * 32, user_id=None
    )
    assert len(payload.encode()) <= MAX_PAYLOAD_BYTES
    _, payload = s.issue(InvoiceKind.CHAT, stage_id, 99_999, promo_code="P" * 32, user_id=2**53)
    assert len(payload.encode()) <= MAX_PAYLOAD_BYTES
    assert s.verify(payload, price=99_999, user_id=2**53).stage_id == stage_id


def test_chat_invoice_needs_a_user() -> None:
    with pytest.raises(PaymentError):
        signer().issue(InvoiceKind.CHAT, "premium", 25)


@pytest.mark.parametrize(
    "payload",
    [
        "",
        "order-1",
        "np1",
        "np1c|premium||1|",
        "np1x|premium||1|AAAAAAAAAAAAAAAA",
        "np1c||SAVE|1|AAAAAAAAAAAAAAAA",
        "np1c|premium||!!|AAAAAAAAAAAAAAAA",
        "np1c|premium|||AAAAAAAAAAAAAAAA",
        "np1c|premium||1|AAAAAAAAAAAAAAAA|extra",
        "np1c|" + "x" * 200,
        b"np1c|\xff\xfe||1|AAAAAAAAAAAAAAAA",
    ],
)
def test_malformed_payloads_are_refused(payload: str | bytes) -> None:
    with pytest.raises(InvalidInvoice):
        parse_payload(payload)
    with pytest.raises(InvalidInvoice):
        signer().verify(payload, price=25, user_id=42)


def test_secret_is_created_once_and_kept(sqlite_url: str) -> None:
    store: Store = open_store(sqlite_url)
    try:
        assert store.get_meta(INVOICE_SECRET_META) is None
        first = load_invoice_secret(store)
        assert len(first) == 32
        assert load_invoice_secret(store) == first
    finally:
        store.close()
    reopened = open_store(sqlite_url)
    try:
        assert load_invoice_secret(reopened) == first
        _, payload = InvoiceSigner(first).issue(InvoiceKind.CHAT, "premium", 5, user_id=7)
        assert InvoiceSigner(load_invoice_secret(reopened)).verify(payload, price=5, user_id=7)
    finally:
        reopened.close()


def test_signer_repr_hides_the_secret() -> None:
    assert SECRET.hex() not in repr(signer())
    assert "max_age=3600" in repr(signer())
