"""The limits a sync server enforces on what it is sent, and their defaults."""

from __future__ import annotations

from dataclasses import dataclass

from neonpay.errors import ConfigurationError
from neonpay.sync.clock import MAX_CLOCK_SKEW

__all__ = ["DEFAULT_LIMITS", "Limits"]

_MIB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """Bounds on one request, each refused with a clear 4xx when exceeded.

    Attributes:
        max_body: bytes of a request body as sent (before decompression).
        max_inflated: bytes of a request body after decompression; inflating stops as
            soon as this is passed (a gzip bomb is cut off while it inflates).
        max_batch: records in one pushed batch.
        max_page: records in one page of a feed (the largest ``limit`` accepted).
        max_record_bytes: bytes of one record's ``fields`` as JSON.
        max_key: characters of a record key.
        max_fields: fields of one record.
        max_version_nodes: entries of one version vector.
        max_clock_ahead: seconds a record's clock stamp may be ahead of ours: the
            signature tolerance (``create_sync_app(tolerance=...)`` passes its own
            here), 300 by default (:data:`neonpay.sync.clock.MAX_CLOCK_SKEW`).
        compress_threshold: responses larger than this are gzipped when the client
            accepts gzip.
    """

    max_body: int = 16 * _MIB
    max_inflated: int = 64 * _MIB
    max_batch: int = 1000
    max_page: int = 1000
    max_record_bytes: int = 4 * _MIB
    max_key: int = 256
    max_fields: int = 1000
    max_version_nodes: int = 1000
    max_clock_ahead: float = float(MAX_CLOCK_SKEW)
    compress_threshold: int = 512

    def __post_init__(self) -> None:
        for name in (
            "max_body",
            "max_inflated",
            "max_batch",
            "max_page",
            "max_record_bytes",
            "max_key",
            "max_fields",
            "max_version_nodes",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigurationError(f"{name} must be a positive whole number: {value!r}")
        if self.max_inflated < self.max_body:
            raise ConfigurationError("max_inflated must be at least max_body")
        if self.max_clock_ahead <= 0:
            raise ConfigurationError("max_clock_ahead must be positive")
        if self.compress_threshold < 0:
            raise ConfigurationError("compress_threshold must not be negative")


#: The limits a server uses unless told otherwise.
DEFAULT_LIMITS = Limits()
