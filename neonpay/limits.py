"""The rules every value crossing a boundary is checked against, declared in one place.

The Python API, the command line, the sync wire and the stores all use these:

- **Text** is valid Unicode that encodes to UTF-8: no lone surrogates (``"\\udcff"``,
  what Python makes of undecodable bytes in ``argv``), which neither SQLite, PostgreSQL
  nor JSON can hold.
- **Whole numbers** fit a signed 64-bit integer (:data:`MIN_INT` to :data:`MAX_INT`), the
  widest integer both stores keep.
- **JSON values** (settings, payloads) nest at most :data:`MAX_JSON_DEPTH` levels
  (``[]`` is one level, ``{"a": []}`` two), hold only text keys, finite numbers and
  whole numbers of 64 bits, and text as above.
- **JSON text** read from outside (a request body, a value typed on the command line)
  must not repeat a key within one object: the last one would silently win.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

from neonpay import _json
from neonpay.errors import ValidationError

__all__ = [
    "MAX_INT",
    "MAX_JSON_DEPTH",
    "MIN_INT",
    "DuplicateKeyError",
    "TooDeepError",
    "check_json_value",
    "check_text_chars",
    "check_whole_range",
    "deeper_than",
    "json_value_problem",
    "loads_checked",
    "text_problem",
]

#: The deepest nesting of a JSON value (settings, payloads); deeper ones are refused.
MAX_JSON_DEPTH = 32
#: The smallest and largest whole numbers any store keeps (signed 64-bit).
MIN_INT = -(2**63)
MAX_INT = 2**63 - 1

_TEXT_RULE = "must be valid Unicode text (it holds an undecodable byte or a lone surrogate)"


class DuplicateKeyError(ValueError):
    """A JSON object of the text names one key twice."""


class TooDeepError(ValueError):
    """A JSON value nests more than :data:`MAX_JSON_DEPTH` levels."""


def text_problem(value: str) -> str | None:
    """Why ``value`` is not storable text, or None when it is."""
    if value.isascii():
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return _TEXT_RULE
    return None


def check_text_chars(value: str, field: str, *, kind: str | None = None) -> str:
    """``value`` when it is storable text; a :class:`ValidationError` naming ``field`` else."""
    problem = text_problem(value)
    if problem is not None:
        raise ValidationError(field, problem, kind=kind)
    return value


def check_whole_range(number: int, field: str, *, kind: str | None = None) -> int:
    """``number`` when it fits a signed 64-bit integer."""
    if number > MAX_INT:
        raise ValidationError(field, f"must be at most {MAX_INT} (64 bits)", kind=kind)
    if number < MIN_INT:
        raise ValidationError(field, f"must be at least {MIN_INT} (64 bits)", kind=kind)
    return number


def _children(value: Any) -> Iterator[Any]:
    return iter(value.values() if type(value) is dict else value)


def deeper_than(value: Any, max_depth: int = MAX_JSON_DEPTH) -> bool:
    """Whether the containers of ``value`` nest more than ``max_depth`` levels.

    Only dicts and lists are looked into; it stops as soon as the answer is known.
    """
    if not (type(value) is dict or type(value) is list):
        return False
    if max_depth < 1:
        return True
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        for child in _children(item):
            if type(child) is dict or type(child) is list:
                if depth >= max_depth:
                    return True
                stack.append((child, depth + 1))
    return False


def json_value_problem(value: Any, max_depth: int = MAX_JSON_DEPTH) -> str | None:
    """Why ``value`` is not a storable JSON value, or None when it is.

    Checks nesting, key types, text, whole numbers and finite floats, depth first and
    without recursion (a value nested a million levels is refused, not a crash).
    """
    stack: list[tuple[Any, int, str]] = [(value, 0, "")]
    while stack:
        item, depth, path = stack.pop()
        kind = type(item)
        if item is None or kind is bool:
            continue
        if kind is str or isinstance(item, str):
            if text_problem(item) is not None:
                return f"{path or 'the value'} holds an undecodable byte or a lone surrogate"
        elif isinstance(item, int):
            if not MIN_INT <= item <= MAX_INT:
                return f"{path or 'the value'} is a whole number outside 64 bits"
        elif isinstance(item, float):
            if not math.isfinite(item):
                return f"{path or 'the value'} is not a finite number"
        elif isinstance(item, (dict, list, tuple)):
            if depth >= max_depth:
                return f"it nests more than {max_depth} levels of lists and objects"
            if isinstance(item, dict):
                for key, child in item.items():
                    if not isinstance(key, str):
                        return f"{path or 'the value'} has a key that is not text: {key!r:.40}"
                    if text_problem(key) is not None:
                        return f"{path or 'the value'} has a key that is not valid Unicode text"
                    stack.append((child, depth + 1, f"{path}.{key[:40]}" if path else key[:40]))
            else:
                for index, child in enumerate(item):
                    stack.append((child, depth + 1, f"{path}[{index}]"))
        else:
            return f"{path or 'the value'} is a {kind.__name__}, which JSON cannot hold"
    return None


def check_json_value(
    value: Any, field: str, *, kind: str | None = None, max_depth: int = MAX_JSON_DEPTH
) -> Any:
    """``value`` when :func:`json_value_problem` finds nothing; a ValidationError else."""
    problem = json_value_problem(value, max_depth)
    if problem is not None:
        raise ValidationError(field, f"must be a JSON value: {problem}", kind=kind)
    return value


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise DuplicateKeyError(f"the key {key[:60]!r} appears twice in one object")
            seen.add(key)
    return obj


_STRICT = json.JSONDecoder(object_pairs_hook=_unique_pairs)


def loads_checked(data: bytes | str) -> Any:
    """Decode JSON text from outside, refusing an object that repeats a key.

    Canonical text (sorted keys, compact: what NEONPAY itself sends) is recognised by
    encoding the decoded value again, which is fast; any other text is parsed a second
    time by a parser that sees every key.

    Raises:
        DuplicateKeyError: an object names a key twice.
        TooDeepError: the text nests too deeply for the parser.
        ValueError: the text is not JSON.
    """
    raw = data.encode() if isinstance(data, str) else bytes(data)
    try:
        value = _json.loads(raw)
    except ValueError:
        _strict(raw)  # names a nesting too deep for the fast parser as such
        raise
    try:
        if _json.dumps(value) == raw:
            return value
    except (TypeError, ValueError, RecursionError):
        pass  # too deep for the encoder: the strict parser below names the problem
    _strict(raw)
    return value


def _strict(raw: bytes) -> None:
    """Parse ``raw`` seeing every key (repeated keys and too deep nesting are named)."""
    try:
        _STRICT.decode(raw.decode("utf-8"))
    except RecursionError as exc:
        raise TooDeepError("the JSON nests too deeply to be read") from exc
