"""The sync server's endpoints: canonical paths and the record kind behind each view."""

from __future__ import annotations

__all__ = [
    "CHANGES",
    "HEALTH",
    "INFO",
    "OPENAPI",
    "PREFIX",
    "STATUS",
    "VIEWS",
    "relative",
]

#: The path every sync endpoint lives under; a peer's ``webhook_url`` points at it.
PREFIX = "/sync"
CHANGES = "/sync/changes"
INFO = "/sync/info"
STATUS = "/sync/status"
OPENAPI = "/sync/openapi.json"
HEALTH = "/health"

#: The spec's per-kind views over the change feed: path -> record kind.
VIEWS: dict[str, str] = {
    "/sync/payment_stages": "payment_stage",
    "/sync/promo_codes": "promo_code",
    "/sync/templates": "template",
    "/sync/settings": "setting",
}


def relative(endpoint: str) -> str:
    """An endpoint's path after the ``/sync`` base (``/sync/changes`` -> ``/changes``)."""
    if endpoint == PREFIX:
        return ""
    if endpoint.startswith(PREFIX + "/"):
        return endpoint[len(PREFIX) :]
    raise ValueError(f"{endpoint!r} is not under {PREFIX}")
