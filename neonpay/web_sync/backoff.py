"""When to retry a request and how long to wait first (pure, apart from the sleep hook).

Connection errors, timeouts, 429 and 5xx answers are retried with exponential backoff
and full jitter (a random wait between 0 and ``min(max_delay, base_delay * 2**n)``);
an answer's ``Retry-After`` replaces the random wait, capped at ``max_retry_after``.
Other 4xx answers are never retried: sending the same request again cannot help.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from neonpay.errors import ConfigurationError

__all__ = ["RetryPolicy", "is_retryable_status", "parse_retry_after"]


def is_retryable_status(status: int) -> bool:
    """429 (too many requests) and every 5xx are worth retrying; nothing else is."""
    return status == 429 or 500 <= status <= 599


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(int(value[:9]))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - now)


@dataclass(frozen=True)
class RetryPolicy:
    """How many attempts a request gets, and the waits between them.

    Attributes:
        attempts: attempts in all (1 means no retry).
        base_delay: the first backoff ceiling in seconds; doubled at each retry.
        max_delay: the largest backoff ceiling.
        max_retry_after: the longest ``Retry-After`` honoured.
        sleep: how to wait (``asyncio.sleep``; tests may record the waits).
    """

    attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 10.0
    max_retry_after: float = 60.0
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep, compare=False)
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if isinstance(self.attempts, bool) or not isinstance(self.attempts, int):
            raise ConfigurationError(f"attempts must be a whole number: {self.attempts!r}")
        if not 1 <= self.attempts <= 20:
            raise ConfigurationError(f"attempts must be 1-20: {self.attempts}")
        if self.base_delay < 0 or self.max_delay < 0 or self.max_retry_after < 0:
            raise ConfigurationError("retry delays must not be negative")

    def delay(self, retry: int, retry_after: float | None = None) -> float:
        """The wait before retry number ``retry`` (0 for the first retry)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        ceiling = min(self.max_delay, self.base_delay * (2 ** min(retry, 30)))
        return self.rng.uniform(0.0, ceiling)
