"""Signing and verifying sync messages in the manner of Standard Webhooks (pure, no I/O).

A message carries three headers::

    webhook-id: msg_2b1f...             unique per message
    webhook-timestamp: 1700000000       Unix seconds
    webhook-signature: v1,<base64>      HMAC-SHA256 over "{id}.{timestamp}.{payload}"

The HMAC key is the secret's UTF-8 bytes or, for a secret that starts with ``whsec_``,
the base64-decoded rest. The signature header may hold several space-separated
``v1,<base64>`` signatures (a sender in the middle of a key rotation); one match is
enough. What ``payload`` is depends on the message (see :func:`request_payload` and
:func:`response_payload`, and docs/protocol.md).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets as _secrets
from collections.abc import Sequence
from dataclasses import dataclass

from neonpay.errors import InvalidSignature, StaleTimestamp
from neonpay.sync.clock import MAX_CLOCK_SKEW
from neonpay.sync.credentials import check_secret, signing_key

__all__ = [
    "DEFAULT_TOLERANCE",
    "ID_HEADER",
    "NODE_HEADER",
    "SIGNATURE_HEADER",
    "SIGNATURE_VERSION",
    "TIMESTAMP_HEADER",
    "Verified",
    "check_secret",
    "new_message_id",
    "request_payload",
    "response_payload",
    "sign",
    "signed_headers",
    "signing_key",
    "verify",
]

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
#: The node id of the requester (GET) or sender (POST); covered by the signature.
NODE_HEADER = "X-NeonPay-Node"
SIGNATURE_VERSION = "v1"
#: Seconds a signed timestamp may be away from the receiver's clock, either way. The same
#: setting bounds how far ahead of the receiver's clock a record's clock stamp may be
#: (:data:`neonpay.sync.clock.MAX_CLOCK_SKEW`, ``Limits.max_clock_ahead``).
DEFAULT_TOLERANCE = MAX_CLOCK_SKEW

_ID_RE = re.compile(r"[A-Za-z0-9_.:-]{1,128}", re.ASCII)
_TIMESTAMP_RE = re.compile(r"[0-9]{1,12}", re.ASCII)
_MAX_SIGNATURES = 8


@dataclass(frozen=True)
class Verified:
    """A message whose signature matched: which secret matched, and its timestamp."""

    secret_index: int
    timestamp: int


def new_message_id() -> str:
    """A fresh, random message id (``msg_`` and 32 hex digits)."""
    return f"msg_{_secrets.token_hex(16)}"


def request_payload(method: str, target: str, node: str, body: bytes) -> bytes:
    """What a request's signature covers after ``{id}.{timestamp}.``.

    ``{METHOD} {target}\\n{node}\\n{body}``: the method in capitals, the endpoint's
    canonical path with the query string exactly as sent (``/sync/changes?since=0``),
    the node header's value (empty when absent), and the body bytes as sent (compressed,
    if they were; empty for a GET).
    """
    return f"{method.upper()} {target}\n{node}\n".encode() + body


def response_payload(status: int, request_id: str, body: bytes) -> bytes:
    """What a response's signature covers: ``{status} {request id}\\n{body as sent}``.

    Naming the request's id binds the response to its request, so an old response
    cannot be replayed as the answer to a new one.
    """
    return f"{status} {request_id}\n".encode() + body


def _mac(key: bytes, msg_id: str, timestamp: int, payload: bytes) -> bytes:
    signed = f"{msg_id}.{timestamp}.".encode() + payload
    return hmac.new(key, signed, hashlib.sha256).digest()


def sign(secret: str, msg_id: str, timestamp: int, payload: bytes) -> str:
    """The ``webhook-signature`` value ``v1,<base64 HMAC-SHA256>`` for one message.

    Raises:
        ConfigurationError: an unusable secret.
    """
    digest = _mac(signing_key(secret), msg_id, timestamp, payload)
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode()}"


def signed_headers(secret: str, msg_id: str, timestamp: int, payload: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers for one message."""
    return {
        ID_HEADER: msg_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(secret, msg_id, timestamp, payload),
    }


def verify(
    secrets: Sequence[str],
    msg_id: str | None,
    timestamp: str | None,
    signature: str | None,
    payload: bytes,
    *,
    now: float,
    tolerance: float = DEFAULT_TOLERANCE,
) -> Verified:
    """Check a message's headers against ``payload`` and any of ``secrets``.

    Every candidate signature is compared with :func:`hmac.compare_digest`.

    Raises:
        InvalidSignature: a header is missing or malformed, or no signature matches.
        StaleTimestamp: the timestamp is more than ``tolerance`` seconds from ``now``.
    """
    if not msg_id or not timestamp or not signature:
        missing = [
            name
            for name, value in (
                (ID_HEADER, msg_id),
                (TIMESTAMP_HEADER, timestamp),
                (SIGNATURE_HEADER, signature),
            )
            if not value
        ]
        raise InvalidSignature(f"missing signature header(s): {', '.join(missing)}")
    if not _ID_RE.fullmatch(msg_id):
        raise InvalidSignature(f"malformed {ID_HEADER}: 1-128 characters of A-Z a-z 0-9 _ . : -")
    if not _TIMESTAMP_RE.fullmatch(timestamp):
        raise InvalidSignature(f"malformed {TIMESTAMP_HEADER}: Unix seconds expected")
    stamp = int(timestamp)
    if abs(now - stamp) > tolerance:
        raise StaleTimestamp(
            f"{TIMESTAMP_HEADER} is {int(now - stamp)} s away from this clock (tolerance "
            f"{int(tolerance)} s): check the clocks of both machines"
        )
    candidates: list[bytes] = []
    for part in signature.split(" ")[:_MAX_SIGNATURES]:
        version, _, value = part.partition(",")
        if version != SIGNATURE_VERSION or not value:
            continue
        try:
            candidates.append(base64.b64decode(value, validate=True))
        except (binascii.Error, ValueError):
            continue
    for index, secret in enumerate(secrets):
        expected = _mac(signing_key(secret), msg_id, stamp, payload)
        for candidate in candidates:
            if hmac.compare_digest(expected, candidate):
                return Verified(index, stamp)
    raise InvalidSignature("the signature does not match: check that both sides share a secret")
