"""Bot API errors raised by the emulator's method handlers.

Every failure the emulator reports travels as an :class:`ApiError`, which knows how to
render itself in Telegram's error shape::

    {"ok": false, "error_code": 400, "description": "Bad Request: ..."}
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ApiError",
    "bad_request",
    "conflict",
    "forbidden",
    "not_found",
    "unauthorized",
]


class ApiError(Exception):
    """A Bot API error answer: an HTTP status code plus Telegram's description."""

    def __init__(self, error_code: int, description: str) -> None:
        super().__init__(description)
        self.error_code = error_code
        self.description = description

    def to_payload(self) -> dict[str, Any]:
        """Return the JSON body Telegram sends for this error."""
        return {"ok": False, "error_code": self.error_code, "description": self.description}


def bad_request(detail: str) -> ApiError:
    """400 ``Bad Request: <detail>``."""
    return ApiError(400, f"Bad Request: {detail}")


def unauthorized() -> ApiError:
    """401 ``Unauthorized``: the token is malformed or unknown."""
    return ApiError(401, "Unauthorized")


def forbidden(detail: str) -> ApiError:
    """403 ``Forbidden: <detail>``."""
    return ApiError(403, f"Forbidden: {detail}")


def not_found() -> ApiError:
    """404 ``Not Found``: the method does not exist."""
    return ApiError(404, "Not Found")


def conflict(detail: str) -> ApiError:
    """409 ``Conflict: <detail>``."""
    return ApiError(409, f"Conflict: {detail}")
