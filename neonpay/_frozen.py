"""Frozen dataclasses made or copied without running ``__init__`` again.

A frozen dataclass's ``__init__`` sets each field through ``object.__setattr__``: about
three times slower than filling the instance's ``__dict__`` at once. Sync makes several
per record it moves (states, decisions, per-item results), from values already checked,
so its hot paths use these instead.
"""

from __future__ import annotations

from typing import Any, TypeVar

__all__ = ["build", "copy_with"]

_T = TypeVar("_T")
_new = object.__new__
_set = object.__setattr__


def build(cls: type[_T], values: dict[str, Any]) -> _T:
    """An instance of the dataclass ``cls`` holding ``values``, one per field (the caller
    names every field and has checked every value)."""
    made: _T = _new(cls)
    _set(made, "__dict__", values)
    return made


def copy_with(value: _T, **changes: Any) -> _T:
    """A copy of the dataclass instance ``value`` with ``changes`` (``value``, which the
    caller may share, is untouched)."""
    copy: _T = _new(type(value))
    _set(copy, "__dict__", {**value.__dict__, **changes})
    return copy
