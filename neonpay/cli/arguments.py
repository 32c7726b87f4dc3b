"""Argument types: how command-line strings become values (errors exit with 2)."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
from typing import Any

__all__ = [
    "json_object",
    "json_value",
    "moment",
    "number",
    "port",
    "positive_int",
    "required_text",
    "seconds",
    "user_ids",
]

#: The highest TCP port number.
MAX_PORT = 65535


def json_value(text: str) -> Any:
    """A JSON value (``'{"a": 1}'``, ``42``, ``true``, ``'"text"'``)."""
    try:
        return json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON: {text!r} ({exc.args[0]})") from exc


def json_object(text: str) -> dict[str, Any]:
    """A JSON object (``'{"price": 120}'``)."""
    value = json_value(text)
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"not a JSON object: {text!r}")
    return value


def positive_int(text: str) -> int:
    """A whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


def number(text: str) -> int | float:
    """A number, left for the library to check against its rules (``0``, ``1.5`` and
    ``-3`` pass here and are refused by the record's validation, exit 1); only text that is
    no number at all (``abc``, ``nan``) is a usage error."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"not a number: {text!r}")
    return value


def port(text: str) -> int:
    """A TCP port: 0 (any free port) to 65535."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= MAX_PORT:
        raise argparse.ArgumentTypeError(f"must be 0-{MAX_PORT} (0: any free port): {text!r}")
    return value


def seconds(text: str) -> float:
    """A duration in seconds: a finite number of at least 0 (``5``, ``0.5``)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 seconds or more: {text!r}")
    return value


def required_text(text: str) -> str:
    """Text that is not empty or only spaces (an empty ``"$UNSET_VAR"`` is refused)."""
    if not text.strip():
        raise argparse.ArgumentTypeError(
            "must not be empty (an unset $VARIABLE expands to nothing)"
        )
    return text


def moment(text: str) -> float:
    """A point in time: a Unix timestamp or an ISO 8601 date/time (UTC unless it says)."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a time: {text!r} (use 2030-12-31, 2030-12-31T18:00 or a Unix timestamp)"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    return parsed.timestamp()


def user_ids(text: str) -> list[int]:
    """Comma-separated Telegram user ids: ``123,456``."""
    try:
        ids = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of user ids: {text!r}") from None
    if not ids:
        raise argparse.ArgumentTypeError("give at least one user id")
    return ids
