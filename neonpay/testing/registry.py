"""The table of Bot API methods the emulator implements.

Handlers register with :func:`method`; names are matched case-insensitively, like
Telegram does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from .core import EmulatorCore
from .params import Params
from .state import BotState

__all__ = ["MethodContext", "MethodHandler", "lookup", "method", "method_names"]


@dataclass(frozen=True)
class MethodContext:
    """What a method handler gets: the world, the calling bot and the parameters."""

    core: EmulatorCore
    bot: BotState
    params: Params


MethodHandler = Callable[[MethodContext], Awaitable[Any]]

_REGISTRY: dict[str, tuple[str, MethodHandler]] = {}


def method(name: str) -> Callable[[MethodHandler], MethodHandler]:
    """Register the decorated coroutine function as the handler of Bot API ``name``."""

    def decorator(handler: MethodHandler) -> MethodHandler:
        key = name.lower()
        if key in _REGISTRY:
            raise RuntimeError(f"Bot API method {name} registered twice")
        _REGISTRY[key] = (name, handler)
        return handler

    return decorator


def lookup(name: str) -> tuple[str, MethodHandler] | None:
    """The canonical name and handler for ``name`` (any case), or ``None``."""
    return _REGISTRY.get(name.lower())


def method_names() -> list[str]:
    """Canonical names of all implemented methods."""
    return sorted(canonical for canonical, _ in _REGISTRY.values())
