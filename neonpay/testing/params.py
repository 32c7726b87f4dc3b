"""Typed access to Bot API call parameters.

Telegram accepts the same parameter as a JSON value (JSON bodies) or as a string (query
strings, url-encoded and multipart forms, where objects and arrays arrive JSON-encoded).
:class:`Params` converts either form to the type a method expects, the way the Bot API does.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import bad_request

__all__ = ["Params", "UploadedFile", "normalize_for_record"]

_INT_RE = re.compile(r"-?\d{1,20}")

#: Parameters whose string value is free text and must never be reinterpreted for records.
TEXT_PARAMETERS = frozenset(
    {
        "text",
        "caption",
        "title",
        "description",
        "payload",
        "invoice_payload",
        "error_message",
        "start_parameter",
        "provider_data",
        "label",
        "url",
        "secret_token",
        "language_code",
        "name",
        "short_description",
        "callback_query_id",
        "pre_checkout_query_id",
        "shipping_query_id",
        "telegram_payment_charge_id",
        "photo",
        "photo_url",
        "parse_mode",
        "action",
        "inline_message_id",
        "business_connection_id",
        "message_effect_id",
    }
)


@dataclass(frozen=True)
class UploadedFile:
    """A file part of a ``multipart/form-data`` request."""

    field_name: str
    filename: str | None
    content_type: str | None
    data: bytes

    def __repr__(self) -> str:
        return f"UploadedFile({self.field_name!r}, {self.filename!r}, {len(self.data)} bytes)"


class Params:
    """The parameters of one call with Telegram-like type coercion.

    Accessors raise :class:`~neonpay.testing.errors.ApiError` (400) when a value is missing
    or cannot be converted.
    """

    def __init__(self, values: Mapping[str, Any]) -> None:
        self._values: dict[str, Any] = {k: v for k, v in values.items() if v is not None}

    def __contains__(self, name: object) -> bool:
        return name in self._values

    def raw(self) -> dict[str, Any]:
        """The parameters as received (strings for form bodies)."""
        return dict(self._values)

    def present(self, name: str) -> bool:
        """Whether ``name`` was sent with a non-empty value."""
        value = self._values.get(name)
        return value is not None and value != ""

    def get_str(self, name: str) -> str | None:
        """The parameter as text, or ``None`` when absent."""
        value = self._values.get(name)
        if value is None:
            return None
        if isinstance(value, str):
            return value
        if isinstance(value, UploadedFile):
            raise bad_request(f"{name} must be a string")
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (int, float)):
            return str(value)
        return json.dumps(value, ensure_ascii=False)

    def require_str(self, name: str, *, empty_message: str | None = None) -> str:
        """The parameter as non-empty text; 400 ``<name> is empty`` otherwise."""
        value = self.get_str(name)
        if not value:
            raise bad_request(empty_message or f"{name} is empty")
        return value

    def get_int(self, name: str) -> int | None:
        """The parameter as an integer, or ``None`` when absent or empty."""
        value = self._values.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and _INT_RE.fullmatch(value.strip()):
            return int(value.strip())
        raise bad_request(f'invalid value "{value}" of parameter {name}')

    def require_int(self, name: str) -> int:
        """The parameter as an integer; 400 ``<name> is empty`` when absent."""
        value = self.get_int(name)
        if value is None:
            raise bad_request(f"{name} is empty")
        return value

    def get_float(self, name: str) -> float | None:
        """The parameter as a float, or ``None`` when absent."""
        value = self._values.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise bad_request(f'invalid value "{value}" of parameter {name}')

    def get_bool(self, name: str, default: bool = False) -> bool:
        """The parameter as a boolean (``true``/``True``/``1`` and ``false``/``0``)."""
        value = self._values.get(name)
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, int):
            return value != 0
        if isinstance(value, str):
            lowered = value.strip().lower()
            if lowered in ("true", "1"):
                return True
            if lowered in ("false", "0"):
                return False
        raise bad_request(f'invalid value "{value}" of parameter {name}')

    def get_json(self, name: str, *, what: str | None = None) -> Any:
        """The parameter as a decoded JSON value (objects arrive JSON-encoded in forms)."""
        value = self._values.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                raise bad_request(f"can't parse {what or name} JSON object") from None
        if isinstance(value, UploadedFile):
            raise bad_request(f"can't parse {what or name} JSON object")
        return value

    def get_object(self, name: str, *, what: str | None = None) -> dict[str, Any] | None:
        """The parameter as a JSON object, or ``None`` when absent."""
        value = self.get_json(name, what=what)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise bad_request(f"can't parse {what or name} JSON object")
        return value

    def get_list(self, name: str, *, what: str | None = None) -> list[Any] | None:
        """The parameter as a JSON array, or ``None`` when absent."""
        value = self.get_json(name, what=what)
        if value is None:
            return None
        if not isinstance(value, list):
            raise bad_request(f"can't parse {what or name} JSON array")
        return value

    def get_chat_id(self, name: str = "chat_id") -> int | str:
        """``chat_id``: an integer id or an ``@username``; 400 when missing or malformed."""
        value = self._values.get(name)
        if value is None or value == "":
            raise bad_request(f"{name} is empty")
        if isinstance(value, bool):
            raise bad_request("chat not found")
        if isinstance(value, int):
            return value
        if isinstance(value, str):
            text = value.strip()
            if _INT_RE.fullmatch(text):
                return int(text)
            if text.startswith("@") and len(text) > 1:
                return text
        raise bad_request("chat not found")

    def get_file(self, name: str) -> str | UploadedFile | None:
        """A file parameter: a file_id/URL string, an uploaded part, or ``None``."""
        value = self._values.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, UploadedFile):
            return value
        if isinstance(value, str):
            if value.startswith("attach://"):
                attached = self._values.get(value[len("attach://") :])
                if isinstance(attached, UploadedFile):
                    return attached
                raise bad_request(f"wrong remote file identifier specified: {name}")
            return value
        raise bad_request(f"wrong file identifier/HTTP URL specified: {name}")


def normalize_for_record(values: Mapping[str, Any]) -> dict[str, Any]:
    """Best-effort decoding of form values for call records.

    JSON objects/arrays are decoded, integer and boolean strings are converted, except for
    free-text parameters (``text``, ``payload``, ``title``...) which stay as sent. Uploaded
    files are kept as :class:`UploadedFile` objects.
    """
    result: dict[str, Any] = {}
    for key, value in values.items():
        if not isinstance(value, str) or key in TEXT_PARAMETERS:
            result[key] = value
            continue
        stripped = value.strip()
        if stripped[:1] in ("{", "["):
            try:
                result[key] = json.loads(stripped)
                continue
            except ValueError:
                pass
        if _INT_RE.fullmatch(stripped):
            result[key] = int(stripped)
        elif stripped.lower() in ("true", "false"):
            result[key] = stripped.lower() == "true"
        else:
            result[key] = value
    return result
