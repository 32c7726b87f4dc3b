"""Field rules shared by the catalog: the Bot API's limits for Stars invoices and ours.

Each check raises :class:`~neonpay.errors.ValidationError` naming the field and the rule.
"""

from __future__ import annotations

import math
import re
from typing import Any
from urllib.parse import urlsplit

from neonpay import _json
from neonpay import limits as _limits
from neonpay.errors import ValidationError

__all__ = [
    "DEFAULT_MAX_PRICE",
    "ID_RE",
    "MAX_DESCRIPTION",
    "MAX_ID",
    "MAX_PAYLOAD_BYTES",
    "MAX_TITLE",
    "check_id",
    "check_int",
    "check_optional_text",
    "check_payload",
    "check_price",
    "check_start_parameter",
    "check_text",
    "check_url",
    "encoded_payload",
]

MAX_TITLE = 32
MAX_DESCRIPTION = 255
MAX_PAYLOAD_BYTES = 128
MAX_START_PARAMETER = 64
#: The largest price of one Stars invoice that NEONPAY accepts unless told otherwise.
DEFAULT_MAX_PRICE = 10_000
MAX_ID = 64
MAX_URL = 2048

ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]*")
_START_RE = re.compile(r"[A-Za-z0-9_-]+")


def check_id(value: Any, field: str = "id", *, kind: str | None = None) -> str:
    """An identifier: 1-64 characters, letters, digits and ``_ . : -``."""
    if not isinstance(value, str):
        raise ValidationError(field, "must be a string", kind=kind)
    if not 1 <= len(value) <= MAX_ID:
        raise ValidationError(field, f"must be 1-{MAX_ID} characters long", kind=kind)
    if not ID_RE.fullmatch(value):
        raise ValidationError(
            field,
            "must start with a letter or digit and contain only letters, digits, '_', '.', "
            "':' or '-'",
            kind=kind,
        )
    return value


def check_text(
    value: Any, field: str, *, min_len: int = 1, max_len: int, kind: str | None = None
) -> str:
    """A string of ``min_len`` to ``max_len`` characters (after stripping nothing)."""
    if not isinstance(value, str):
        raise ValidationError(field, "must be a string", kind=kind)
    if not min_len <= len(value) <= max_len:
        raise ValidationError(field, f"must be {min_len}-{max_len} characters long", kind=kind)
    if min_len > 0 and not value.strip():
        raise ValidationError(field, "must not be blank", kind=kind)
    return _limits.check_text_chars(value, field, kind=kind)


def check_optional_text(
    value: Any, field: str, *, max_len: int, kind: str | None = None
) -> str | None:
    if value is None:
        return None
    return check_text(value, field, min_len=0, max_len=max_len, kind=kind)


def check_int(
    value: Any,
    field: str,
    *,
    low: int | None = None,
    high: int | None = None,
    kind: str | None = None,
) -> int:
    """A whole number (``True``/``False`` and non-integral floats are refused) that fits
    a signed 64-bit integer (see :mod:`neonpay.limits`)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValidationError(field, "must be a whole number", kind=kind)
    if isinstance(value, float) and (not math.isfinite(value) or not value.is_integer()):
        raise ValidationError(field, "must be a whole number", kind=kind)
    number = int(value)
    if low is not None and number < low:
        raise ValidationError(field, f"must be at least {low}", kind=kind)
    if high is not None and number > high:
        raise ValidationError(field, f"must be at most {high}", kind=kind)
    return _limits.check_whole_range(number, field, kind=kind)


def check_price(
    value: Any, *, max_price: int | None = DEFAULT_MAX_PRICE, kind: str | None = None
) -> int:
    """A price in whole Stars (an ``int``, not a float), 1 to ``max_price`` (None: no cap)."""
    if isinstance(value, float):
        raise ValidationError(
            "price", "must be a whole number of Stars (an int, not a float)", kind=kind
        )
    return check_int(value, "price", low=1, high=max_price, kind=kind)


def encoded_payload(payload: Any) -> str:
    """The text a payload is stored and sent as (strings as they are, else JSON)."""
    if isinstance(payload, str):
        return payload
    return _json.dumps_text(payload)


def check_payload(value: Any, *, kind: str | None = None) -> Any:
    """A JSON-able payload of at most 128 bytes once encoded."""
    if value is None:
        return None
    if isinstance(value, str):
        _limits.check_text_chars(value, "payload", kind=kind)
    else:
        _limits.check_json_value(value, "payload", kind=kind)
    try:
        text = encoded_payload(value)
    except (TypeError, ValueError) as exc:
        raise ValidationError(
            "payload", "must be a string or JSON-serializable", kind=kind
        ) from exc
    if len(text.encode()) > MAX_PAYLOAD_BYTES:
        raise ValidationError(
            "payload", f"must be at most {MAX_PAYLOAD_BYTES} bytes once encoded", kind=kind
        )
    return value


def check_start_parameter(value: Any, *, kind: str | None = None) -> str | None:
    """At most 64 characters of ``A-Za-z0-9_-``."""
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ValidationError("start_parameter", "must be a non-empty string", kind=kind)
    if len(value) > MAX_START_PARAMETER or not _START_RE.fullmatch(value):
        raise ValidationError(
            "start_parameter",
            f"must be at most {MAX_START_PARAMETER} characters of A-Z, a-z, 0-9, '_' and '-'",
            kind=kind,
        )
    return value


def check_url(value: Any, field: str, *, kind: str | None = None) -> str | None:
    """An absolute http(s) URL, or None."""
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_URL:
        raise ValidationError(
            field, f"must be an http(s) URL of at most {MAX_URL} characters", kind=kind
        )
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValidationError(field, "must be an absolute http:// or https:// URL", kind=kind)
    return _limits.check_text_chars(value, field, kind=kind)
