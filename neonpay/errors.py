"""The NEONPAY exception tree.

Every error NEONPAY raises on purpose derives from :class:`NeonPayError`::

    NeonPayError
    ├── ConfigurationError      a setting, URL or argument that cannot work
    ├── ValidationError         a record field that breaks a rule (names field and rule)
    ├── NotFoundError           a record, peer or conflict that does not exist
    ├── StorageError            the database failed (sqlite3 / psycopg errors, translated)
    ├── SyncError               a sync with a peer did not complete
    │   ├── PeerUnreachable     connection refused, timed out, DNS failure
    │   ├── PeerRejected        the peer answered with an error (carries status and reason)
    │   └── ConflictError       a conflict cannot be resolved as asked
    ├── AccessDenied            a peer asked for something outside its grant (HTTP 403)
    ├── SignatureError          a request or response failed verification
    │   ├── InvalidSignature    the MAC does not match
    │   ├── StaleTimestamp      outside the tolerance window
    │   └── ReplayedRequest     the request id was seen before
    ├── PaymentError            an invoice, pre-checkout or refund failed
    └── MissingExtraError       an optional dependency is not installed (names the extra)

Messages say what failed, on which record or peer, and what to do next. They never
contain a bot token or a secret: tokens are masked with :func:`mask_token`, the passwords
of URLs with :func:`mask_url`.
"""

from __future__ import annotations

import re

__all__ = [
    "AccessDenied",
    "ConfigurationError",
    "ConflictError",
    "InvalidSignature",
    "MissingExtraError",
    "NeonPayError",
    "NotFoundError",
    "PaymentError",
    "PeerRejected",
    "PeerUnreachable",
    "ReplayedRequest",
    "SignatureError",
    "StaleTimestamp",
    "StarsPaymentError",
    "StorageError",
    "SyncError",
    "ValidationError",
    "mask_secrets",
    "mask_token",
    "mask_url",
]


class NeonPayError(Exception):
    """Root of every error NEONPAY raises on purpose."""


class ConfigurationError(NeonPayError):
    """A setting, URL or argument that cannot work."""


class ValidationError(NeonPayError, ValueError):
    """A record field breaks a rule. ``field`` and ``rule`` say which."""

    def __init__(self, field: str, rule: str, *, kind: str | None = None) -> None:
        self.field = field
        self.rule = rule
        self.kind = kind
        where = f"{kind}.{field}" if kind else field
        super().__init__(f"invalid {where}: {rule}")


class NotFoundError(NeonPayError, KeyError):
    """A record, peer or conflict does not exist."""

    def __str__(self) -> str:  # KeyError quotes its argument; we want plain words
        return str(self.args[0]) if self.args else "not found"


class StorageError(NeonPayError):
    """The database failed; the original driver error is chained as ``__cause__``."""


class SyncError(NeonPayError):
    """A sync with a peer did not complete."""


class PeerUnreachable(SyncError):
    """The peer could not be reached (refused, timed out, name not resolved)."""


class PeerRejected(SyncError):
    """The peer answered with an error status."""

    def __init__(self, message: str, *, status: int, reason: str = "") -> None:
        self.status = status
        self.reason = reason
        super().__init__(message)


class ConflictError(SyncError):
    """A conflict cannot be resolved as asked."""


class AccessDenied(NeonPayError):
    """A peer asked for something its grant here rules out (a read, a write, a kind).

    The message names the peer, the grant and the setting that would allow it.
    """


class SignatureError(NeonPayError):
    """A signed request or response failed verification."""


class InvalidSignature(SignatureError):
    """The signature is missing or does not match the body."""


class StaleTimestamp(SignatureError):
    """The signed timestamp is outside the tolerance window."""


class ReplayedRequest(SignatureError):
    """The request id was already seen within the tolerance window."""


class PaymentError(NeonPayError):
    """An invoice, pre-checkout answer or refund failed."""


#: The name neonpay 2.x used for payment errors.
StarsPaymentError = PaymentError


class MissingExtraError(NeonPayError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""

    def __init__(self, extra: str, what: str) -> None:
        self.extra = extra
        super().__init__(
            f'{what} needs the "{extra}" extra: pip install -e ".[{extra}]" in the NEONPAY '
            "checkout (NEONPAY 3 is not on the package index yet)"
        )


# A bot token: the bot's numeric id, ':', then the secret. The id may follow letters (the
# Bot API puts tokens in URLs as ``/bot<token>/``), and the secret runs to its last character.
_TOKEN_RE = re.compile(
    r"(?<![0-9])(\d{3,})(:[A-Za-z0-9_-]{2})[A-Za-z0-9_-]{4,}([A-Za-z0-9_-]{2})(?![A-Za-z0-9_-])"
)


def mask_token(token: str | None) -> str:
    """Mask a bot token or secret for display: ``123456:AB…yz``.

    Short or unusual strings are masked whole, so nothing secret leaks.
    """
    if not token:
        return ""
    match = _TOKEN_RE.fullmatch(token)
    if match:
        return f"{match.group(1)}{match.group(2)}…{match.group(3)}"
    if len(token) >= 12:
        return f"{token[:2]}…{token[-2:]}"
    return "…"


#: Query parameters of a URL whose values are secret (PostgreSQL's ``password``, ...).
_SECRET_PARAMS = ("password", "passwd", "pwd", "sslpassword", "secret", "token", "key")
# The password of a URL's userinfo: ``scheme://user:PASSWORD@host``.
_USERINFO_RE = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*:)[^@\s/]+@")
# A secret query parameter: ``?password=...`` or ``&password=...`` up to the next & or space.
_PARAM_RE = re.compile(r"([?&](?:" + "|".join(_SECRET_PARAMS) + r")=)[^&\s#'\"]*", re.IGNORECASE)


def mask_url(url: str) -> str:
    """``url`` with its password replaced by ``***``, in the userinfo
    (``postgresql://user:***@host/db``) and in secret query parameters
    (``?password=***``)."""
    return _PARAM_RE.sub(r"\1***", _USERINFO_RE.sub(r"\1***@", url))


def mask_secrets(text: str) -> str:
    """Mask every bot-token-looking substring of ``text`` and every password of a URL in it."""
    text = _TOKEN_RE.sub(lambda m: f"{m.group(1)}{m.group(2)}…{m.group(3)}", text)
    if "://" in text or "=" in text:
        text = mask_url(text)
    return text
