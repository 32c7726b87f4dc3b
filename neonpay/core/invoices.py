"""Stars invoices: what an adapter sends, and the signed payload that comes back.

Every invoice NEONPAY issues carries a compact payload that Telegram hands back in the
pre-checkout query and in the successful payment::

    np1<kind>|<stage id>|<promo code>|<issued>|<mac>

* ``kind``: ``c`` an invoice sent to one user's chat, ``l`` an invoice link, ``s`` a
  subscription link;
* ``issued``: seconds since 2024-01-01 UTC, base 36;
* ``mac``: HMAC-SHA256 with the store's invoice secret over the kind, stage id, promo
  code, issue time, the **price** and (for ``c``) the **user id**, truncated to 96 bits,
  base64url. The price and the user are not spelled out: they arrive with every
  pre-checkout query (``total_amount``, ``from``), so binding them through the MAC keeps
  the payload within Telegram's 128 bytes even for a 64-character stage id and a
  32-character promo code.

A payload that does not verify (forged, for another user, or for another price) or that is
older than the configured maximum age is refused at pre-checkout. The secret is created
once per store and kept in its metadata (``invoice_secret``); it is never synced.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from neonpay.errors import PaymentError
from neonpay.store.base import Store

__all__ = [
    "DEFAULT_INVOICE_MAX_AGE",
    "DEFAULT_LINK_MAX_AGE",
    "INVOICE_SECRET_META",
    "MAX_PAYLOAD_BYTES",
    "PAYLOAD_PREFIX",
    "STARS_CURRENCY",
    "SUBSCRIPTION_PERIOD",
    "ExpiredInvoice",
    "InvalidInvoice",
    "Invoice",
    "InvoiceClaim",
    "InvoiceKind",
    "InvoiceSigner",
    "PayloadFields",
    "is_neonpay_payload",
    "load_invoice_secret",
    "parse_payload",
]

STARS_CURRENCY = "XTR"
#: The only subscription period the Bot API accepts: 30 days.
SUBSCRIPTION_PERIOD = 2_592_000
MAX_PAYLOAD_BYTES = 128
PAYLOAD_PREFIX = "np1"
INVOICE_SECRET_META = "invoice_secret"  # noqa: S105 (a metadata key, not a secret)
#: How long an invoice sent to a user may be paid (seconds).
DEFAULT_INVOICE_MAX_AGE = 24 * 3600.0
#: How long an invoice link may be paid (seconds).
DEFAULT_LINK_MAX_AGE = 30 * 24 * 3600.0

_EPOCH = 1_704_067_200  # 2024-01-01T00:00:00Z: keeps the issue time short
_MAC_BYTES = 12
_MAC_CHARS = 16  # base64url of 12 bytes, no padding
_FUTURE_SKEW = 300  # seconds an issue time may lie ahead (clocks of replicas differ)
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"

_INVALID = "This invoice is not valid. Please ask the bot for a new one."
_EXPIRED = "This invoice has expired. Please ask the bot for a new one."


class InvalidInvoice(PaymentError):
    """An invoice payload that is not NEONPAY's, is malformed, or does not verify.

    ``user_message`` is what the paying user may be shown.
    """

    def __init__(self, reason: str, *, user_message: str = _INVALID) -> None:
        self.reason = reason
        self.user_message = user_message
        super().__init__(reason)


class ExpiredInvoice(InvalidInvoice):
    """A correctly signed invoice that is older than its maximum age."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason, user_message=_EXPIRED)


class InvoiceKind(str, enum.Enum):
    """How an invoice reached its payer."""

    CHAT = "c"
    LINK = "l"
    SUBSCRIPTION = "s"


@dataclass(frozen=True)
class Invoice:
    """A Stars invoice as an adapter sends it (``currency`` XTR, one price, no tips).

    ``amount`` is in whole Stars: a Stars invoice is never multiplied by 100.
    """

    title: str
    description: str
    payload: str
    label: str
    amount: int
    currency: str = STARS_CURRENCY
    photo_url: str | None = None
    start_parameter: str | None = None
    subscription_period: int | None = None

    def bot_api_params(self, labeled_price: Callable[..., object] = dict) -> dict[str, Any]:
        """The parameters ``sendInvoice`` and ``createInvoiceLink`` share, by their Bot API
        names: no provider token (Stars) and one price.

        ``labeled_price`` builds that price from the keywords ``label`` and ``amount``: a
        framework's ``LabeledPrice`` class, or ``dict`` (the default) for Bot API JSON.
        """
        return {
            "title": self.title,
            "description": self.description,
            "payload": self.payload,
            "provider_token": "",
            "currency": self.currency,
            "prices": [labeled_price(label=self.label, amount=self.amount)],
            "photo_url": self.photo_url,
        }

    def send_invoice_params(
        self, chat_id: int, labeled_price: Callable[..., object] = dict
    ) -> dict[str, Any]:
        """``sendInvoice``'s parameters for sending this invoice to ``chat_id``."""
        return {
            "chat_id": chat_id,
            **self.bot_api_params(labeled_price),
            "start_parameter": self.start_parameter,
        }

    def invoice_link_params(self, labeled_price: Callable[..., object] = dict) -> dict[str, Any]:
        """``createInvoiceLink``'s parameters for this invoice."""
        return {
            **self.bot_api_params(labeled_price),
            "subscription_period": self.subscription_period,
        }


@dataclass(frozen=True)
class InvoiceClaim:
    """What a verified payload says: which stage, at what price, with which promo code,
    for whom (None: anyone, for links) and when it was issued (Unix seconds)."""

    kind: InvoiceKind
    stage_id: str
    price: int
    promo_code: str | None
    user_id: int | None
    issued_at: int


@dataclass(frozen=True)
class PayloadFields:
    """The clear-text fields of a payload, before its MAC is checked."""

    kind: InvoiceKind
    stage_id: str
    promo_code: str | None
    issued_at: int
    mac: str


def is_neonpay_payload(payload: object) -> bool:
    """Whether ``payload`` looks like a NEONPAY invoice payload (not yet verified).

    Adapters use it to leave invoices the bot issued by other means to the bot's own
    handlers.
    """
    if isinstance(payload, bytes):
        return payload.startswith(PAYLOAD_PREFIX.encode())
    return isinstance(payload, str) and payload.startswith(PAYLOAD_PREFIX)


def _b36(number: int) -> str:
    if number <= 0:
        return "0"
    digits = []
    while number:
        number, rest = divmod(number, 36)
        digits.append(_DIGITS[rest])
    return "".join(reversed(digits))


def parse_payload(payload: str | bytes) -> PayloadFields:
    """Split a payload into its fields.

    Raises:
        InvalidInvoice: not a NEONPAY payload, or malformed.
    """
    if isinstance(payload, bytes):
        try:
            payload = payload.decode()
        except UnicodeDecodeError:
            raise InvalidInvoice("the invoice payload is not UTF-8") from None
    if not is_neonpay_payload(payload) or len(payload.encode()) > MAX_PAYLOAD_BYTES:
        raise InvalidInvoice("the invoice payload was not issued by NEONPAY")
    parts = payload[len(PAYLOAD_PREFIX) :].split("|")
    if len(parts) != 5 or len(parts[0]) != 1:
        raise InvalidInvoice("the invoice payload is malformed")
    kind_char, stage_id, promo, issued, mac = parts
    try:
        kind = InvoiceKind(kind_char)
    except ValueError:
        raise InvalidInvoice("the invoice payload has an unknown kind") from None
    if (
        not stage_id
        or not issued
        or len(issued) > 8
        or any(c not in _DIGITS for c in issued)
        or len(mac) != _MAC_CHARS
    ):
        raise InvalidInvoice("the invoice payload is malformed")
    return PayloadFields(kind, stage_id, promo or None, _EPOCH + int(issued, 36), mac)


class InvoiceSigner:
    """Signs and verifies invoice payloads with one store's secret.

    Args:
        secret: the HMAC key (see :func:`load_invoice_secret`).
        max_age: seconds an invoice sent to a user may be paid.
        link_max_age: seconds an invoice link may be paid (None: no limit).
        clock: the time source (``time.time``).
    """

    def __init__(
        self,
        secret: bytes,
        *,
        max_age: float = DEFAULT_INVOICE_MAX_AGE,
        link_max_age: float | None = DEFAULT_LINK_MAX_AGE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if len(secret) < 16:
            raise ValueError("the invoice secret must be at least 16 bytes")
        self._secret = secret
        self.max_age = max_age
        self.link_max_age = link_max_age
        self._clock = clock

    def __repr__(self) -> str:
        return f"<InvoiceSigner max_age={self.max_age} link_max_age={self.link_max_age}>"

    def _mac(
        self,
        kind: InvoiceKind,
        stage_id: str,
        promo_code: str | None,
        issued: str,
        price: int,
        user_id: int | None,
    ) -> str:
        user = "" if kind is not InvoiceKind.CHAT or user_id is None else str(user_id)
        message = "|".join(
            (PAYLOAD_PREFIX, kind.value, stage_id, promo_code or "", issued, str(price), user)
        )
        digest = hmac.new(self._secret, message.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest[:_MAC_BYTES]).decode().rstrip("=")

    def sign(self, claim: InvoiceClaim) -> str:
        """The payload for ``claim`` (at most 128 bytes).

        Raises:
            PaymentError: the claim cannot be encoded (a chat invoice without a user, a
                stage id or promo code with ``|``, or a payload over 128 bytes).
        """
        if claim.kind is InvoiceKind.CHAT and claim.user_id is None:
            raise PaymentError("an invoice sent to a chat must name its user")
        if "|" in claim.stage_id or (claim.promo_code and "|" in claim.promo_code):
            raise PaymentError("a stage id or promo code in an invoice may not contain '|'")
        issued = _b36(max(0, claim.issued_at - _EPOCH))
        mac = self._mac(
            claim.kind, claim.stage_id, claim.promo_code, issued, claim.price, claim.user_id
        )
        payload = (
            f"{PAYLOAD_PREFIX}{claim.kind.value}|{claim.stage_id}|{claim.promo_code or ''}"
            f"|{issued}|{mac}"
        )
        if len(payload.encode()) > MAX_PAYLOAD_BYTES:
            raise PaymentError(
                f"the invoice payload for stage {claim.stage_id!r} would exceed "
                f"{MAX_PAYLOAD_BYTES} bytes"
            )
        return payload

    def issue(
        self,
        kind: InvoiceKind,
        stage_id: str,
        price: int,
        *,
        promo_code: str | None = None,
        user_id: int | None = None,
    ) -> tuple[InvoiceClaim, str]:
        """A claim issued now, and its payload."""
        claim = InvoiceClaim(kind, stage_id, price, promo_code, user_id, int(self._clock()))
        return claim, self.sign(claim)

    def verify(
        self,
        payload: str | bytes,
        *,
        price: int,
        user_id: int,
        check_age: bool = True,
    ) -> InvoiceClaim:
        """Check a payload against the price paid and the paying user.

        ``check_age=False`` skips the age limit (a successful payment or a subscription
        renewal is recorded whatever the invoice's age: the money has moved).

        Raises:
            InvalidInvoice: not NEONPAY's, malformed, or the MAC does not hold (forged,
                issued to another user, or for another price).
            ExpiredInvoice: older than the maximum age for its kind.
        """
        fields = parse_payload(payload)
        issued = _b36(fields.issued_at - _EPOCH)
        expected = self._mac(
            fields.kind, fields.stage_id, fields.promo_code, issued, price, user_id
        )
        if not hmac.compare_digest(expected.encode(), fields.mac.encode()):
            raise InvalidInvoice(
                "the invoice signature does not match (forged, for another user or price)"
            )
        now = self._clock()
        if fields.issued_at > now + _FUTURE_SKEW:
            raise InvalidInvoice("the invoice was issued in the future")
        max_age = self.max_age if fields.kind is InvoiceKind.CHAT else self.link_max_age
        if check_age and max_age is not None and now - fields.issued_at > max_age:
            raise ExpiredInvoice(
                f"the invoice was issued {int(now - fields.issued_at)} s ago "
                f"(limit {int(max_age)} s)"
            )
        return InvoiceClaim(
            kind=fields.kind,
            stage_id=fields.stage_id,
            price=price,
            promo_code=fields.promo_code,
            user_id=user_id if fields.kind is InvoiceKind.CHAT else None,
            issued_at=fields.issued_at,
        )


def load_invoice_secret(store: Store) -> bytes:
    """The store's invoice secret, created (32 random bytes) on first use.

    Raises:
        StorageError: the store failed.
    """
    stored = store.get_meta(INVOICE_SECRET_META)
    if stored is None:
        # Atomic: replicas that start at the same moment all keep the first secret written.
        stored = store.setdefault_meta(INVOICE_SECRET_META, secrets.token_hex(32))
    try:
        return bytes.fromhex(stored)
    except ValueError:
        return stored.encode()
