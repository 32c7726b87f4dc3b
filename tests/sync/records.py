"""Record states built by hand for the pure tests."""

from __future__ import annotations

from typing import Any

from neonpay.store.base import Record
from neonpay.sync.clock import HLC

__all__ = ["rec", "stamp"]

BASE_FIELDS: dict[str, Any] = {
    "title": "Stage",
    "description": "A product",
    "price": 10,
    "label": "Payment",
    "photo_url": None,
    "payload": None,
    "start_parameter": None,
}


def stamp(ms: int, node: str = "A", counter: int = 0) -> str:
    return HLC(1_700_000_000_000 + ms, counter, node).encode()


def rec(
    version: dict[str, int],
    *,
    ms: int = 0,
    node: str = "A",
    kind: str = "payment_stage",
    key: str = "s1",
    fields: dict[str, Any] | None = None,
    field_ms: dict[str, tuple[int, str]] | None = None,
    deleted: bool = False,
    resolution: bool = False,
    **changes: Any,
) -> Record:
    """A state; ``changes`` override fields of :data:`BASE_FIELDS`; ``field_ms`` gives some
    fields other stamps than the record's (``ms``, ``node``)."""
    if fields is None:
        fields = {} if deleted else {**BASE_FIELDS, **changes}
    names = set(BASE_FIELDS) if kind == "payment_stage" else set(fields)
    stamps = {name: stamp(ms, node) for name in names}
    for name, (when, who) in (field_ms or {}).items():
        stamps[name] = stamp(when, who)
    return Record(
        kind=kind,
        key=key,
        fields=fields,
        version=version,
        hlc=stamp(ms, node),
        field_hlcs=dict(sorted(stamps.items())),
        deleted=deleted,
        origin=node,
        updated_at=1_700_000_000.0 + ms / 1000,
        resolution=resolution,
    )
