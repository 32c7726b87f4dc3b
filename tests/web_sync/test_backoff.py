"""The retry policy: exponential backoff with full jitter, Retry-After honoured."""

from __future__ import annotations

import random

import pytest

from neonpay.errors import ConfigurationError
from neonpay.web_sync.backoff import RetryPolicy, is_retryable_status, parse_retry_after


def test_only_429_and_5xx_are_retried() -> None:
    assert [
        s
        for s in (200, 400, 401, 404, 409, 413, 422, 429, 500, 502, 503, 599)
        if is_retryable_status(s)
    ] == [429, 500, 502, 503, 599]


def test_full_jitter_stays_under_a_doubling_capped_ceiling() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=4.0, rng=random.Random(7))
    for retry, ceiling in [(0, 0.5), (1, 1.0), (2, 2.0), (3, 4.0), (10, 4.0), (100, 4.0)]:
        waits = [policy.delay(retry) for _ in range(200)]
        assert all(0 <= w <= ceiling for w in waits)
        assert max(waits) > ceiling / 2  # jitter spreads over the whole range


def test_retry_after_replaces_the_jitter_and_is_capped() -> None:
    policy = RetryPolicy(max_retry_after=30.0)
    assert policy.delay(0, 7.0) == 7.0
    assert policy.delay(5, 3600.0) == 30.0
    assert policy.delay(0, -5.0) == 0.0


def test_retry_after_parsing() -> None:
    assert parse_retry_after("3", now=0) == 3.0
    assert parse_retry_after(None, now=0) is None
    assert parse_retry_after("soon", now=0) is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412490.0) == 0.0


@pytest.mark.parametrize("attempts", [0, 21, True, 1.5])
def test_bad_policies(attempts: object) -> None:
    with pytest.raises(ConfigurationError):
        RetryPolicy(attempts=attempts)  # type: ignore[arg-type]
