"""``SyncConnector``: the small push-and-fetch client of the spec's webhook snippets.

::

    async with SyncConnector("https://store-bot.example.com/sync", "your_secret") as c:
        ok = await c.send_data("/sync/payment_stages", {"data": batch})

``send_data`` returns True only when the peer accepted every item (applied it, or
already had it); on any failure it returns False, and ``last_error`` /
``last_result`` say why. Managers should use :class:`~neonpay.web_sync.HttpTransport`
through ``SyncManager``, which keeps cursors and resolves conflicts.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any

from neonpay.core.promotions import PromoCode, normalize_code
from neonpay.core.settings import check_setting
from neonpay.core.stages import PaymentStage
from neonpay.core.templates import Template
from neonpay.errors import ConfigurationError, NeonPayError, ValidationError
from neonpay.store.base import Outcome, Record
from neonpay.sync.clock import HLC
from neonpay.sync.protocol import ChangesPage, PushResult
from neonpay.web_sync import codec
from neonpay.web_sync.client import HttpTransport
from neonpay.web_sync.endpoints import CHANGES, PREFIX, VIEWS
from neonpay.web_sync.errors import WireError

__all__ = ["SyncConnector"]

logger = logging.getLogger("neonpay.web_sync.connector")

#: The key of a plain item of each kind (the first one present is used).
_KEY_FIELDS: dict[str, tuple[str, ...]] = {
    "payment_stage": ("stage_id", "id"),
    "promo_code": ("code",),
    "template": ("name",),
    "setting": ("name",),
}
_WIRE_MARKERS = frozenset({"kind", "key", "version", "hlc"})


class SyncConnector:
    """Push records (or plain items) to one peer's endpoints and fetch its views.

    Args:
        base_url: the peer's sync base (``https://host/sync``).
        secret: the shared secret (default ``$NEONPAY_SYNC_SECRET``).
        node_id: the id this connector writes plain items as (default: a new random
            ``connector-...`` id per connector).
        options: passed to :class:`~neonpay.web_sync.HttpTransport` (``timeout``,
            ``retries``, ``insecure``...).

    Raises:
        ConfigurationError: a bad URL, or no secret (and not ``insecure``).
    """

    def __init__(
        self,
        base_url: str,
        secret: str | None = None,
        *,
        node_id: str | None = None,
        **options: Any,
    ) -> None:
        self.transport = HttpTransport(base_url, secret=secret, **options)
        self.node_id = node_id or f"connector-{uuid.uuid4().hex[:12]}"
        if not codec.is_node_id(self.node_id):
            raise ConfigurationError(f"node_id must be 1-64 of A-Z a-z 0-9 - _: {node_id!r}")
        self.last_error: NeonPayError | None = None
        self.last_result: PushResult | None = None
        self._last_ms = 0

    async def close(self) -> None:
        """Close the HTTP session. Idempotent."""
        await self.transport.close()

    async def __aenter__(self) -> SyncConnector:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def send_data(self, endpoint: str, data: Any) -> bool:
        """POST ``data`` to ``endpoint``; True only if the peer accepted every item.

        ``endpoint`` is ``/sync/changes`` or a view (``/sync/payment_stages``,
        ``promo_codes``, ``templates``, ``settings``; with or without ``/sync``).
        ``data`` is ``{"data": [...]}``, ``{"records": [...]}`` or a list, whose items
        are :class:`~neonpay.store.base.Record` objects, their wire dicts, or (for a
        view) plain items such as ``{"stage_id": "premium", "title": ..., "price": 50}``:
        a plain item is written as a new version by this connector's ``node_id``, so the
        peer applies it unless it changed the record itself (a conflict: False).

        Never raises for a failed delivery: it returns False and sets ``last_error``
        (unreachable, refused, bad signature) or ``last_result`` (items not accepted).

        Raises:
            ConfigurationError: ``endpoint`` is not a sync endpoint.
        """
        path = _endpoint(endpoint)
        self.last_error = None
        self.last_result = None
        try:
            records = self._records(path, data)
            result = await self.transport.push_to(path, records, sender=self.node_id)
        except NeonPayError as exc:
            self.last_error = exc
            logger.warning("send_data to %s%s failed: %s", self.transport.base_url, path, exc)
            return False
        self.last_result = result
        refused = [r for r in result.results if r.outcome not in (Outcome.APPLIED, Outcome.KNOWN)]
        for item in refused[:10]:
            logger.warning(
                "send_data: peer did not accept %s %r: %s %s",
                item.kind,
                item.key,
                item.outcome.value,
                item.reason,
            )
        return not refused

    async def fetch_data(self, endpoint: str, since: int = 0, limit: int = 500) -> ChangesPage:
        """GET a page of ``endpoint`` (``/sync/changes`` or a view) after ``since``.

        Raises:
            ConfigurationError: not a sync endpoint.
            PeerUnreachable, PeerRejected, SignatureError, SyncError: the call failed.
        """
        path = _endpoint(endpoint)
        if path == CHANGES:
            return await self.transport.pull(since, limit, None, requester=self.node_id)
        return await self.transport.pull_view(path, since, limit)

    def _records(self, path: str, data: Any) -> list[Record]:
        items = data
        if isinstance(data, Mapping):
            keys = set(data) & {"data", "records"}
            if len(keys) != 1:
                raise ValidationError("data", "must hold a 'data' or a 'records' list")
            items = data[keys.pop()]
        if isinstance(items, (str, bytes)) or not isinstance(items, Sequence):
            raise ValidationError("data", "must be a list of records or items")
        kind = VIEWS.get(path)
        records: list[Record] = []
        for index, item in enumerate(items):
            if isinstance(item, Record):
                records.append(item)
            elif isinstance(item, Mapping) and set(item) >= _WIRE_MARKERS:
                try:
                    records.append(codec.record_from_wire(dict(item), f"data[{index}]"))
                except WireError as exc:
                    raise ValidationError("data", str(exc)) from exc
            elif isinstance(item, Mapping) and kind is not None:
                records.append(self._plain(kind, item, index))
            else:
                raise ValidationError(
                    "data",
                    f"item {index} is neither a record nor (for {', '.join(VIEWS)}) a plain item",
                )
        return records

    def _plain(self, kind: str, item: Mapping[str, Any], index: int) -> Record:
        names = _KEY_FIELDS[kind]
        key_field = next((name for name in names if name in item), None)
        if key_field is None:
            raise ValidationError(names[0], f"item {index} has no {' or '.join(names)}", kind=kind)
        key = item[key_field]
        if not isinstance(key, str) or not key:
            raise ValidationError(key_field, "must be a non-empty string", kind=kind)
        if kind == "promo_code":
            key = normalize_code(key)
        fields = _canonical(kind, key, {n: val for n, val in item.items() if n != key_field})
        now_ms = max(time.time_ns() // 1_000_000, self._last_ms + 1)
        self._last_ms = now_ms
        stamp = HLC(now_ms, 0, self.node_id).encode()
        return Record(
            kind=kind,
            key=key,
            fields=fields,
            version={self.node_id: now_ms},
            hlc=stamp,
            field_hlcs=dict.fromkeys(sorted(fields), stamp),
            origin=self.node_id,
            updated_at=now_ms / 1000,
        )


def _canonical(kind: str, key: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    """A plain item's fields checked and in the canonical form a peer stores.

    Raises:
        ValidationError: a field breaks a rule of its kind.
    """
    try:
        if kind == "payment_stage":
            return PaymentStage.from_fields(fields).to_fields()
        if kind == "promo_code":
            return PromoCode.from_fields(key, fields).to_fields()
        if kind == "template":
            return Template.from_fields(key, fields).to_fields()
        return {"value": check_setting(key, fields.get("value"))}
    except (TypeError, KeyError) as exc:
        raise ValidationError("fields", f"malformed {kind}: {exc}", kind=kind) from exc


def _endpoint(endpoint: str) -> str:
    if not isinstance(endpoint, str):
        raise ConfigurationError("endpoint must be a path such as /sync/payment_stages")
    path = "/" + endpoint.strip().strip("/")
    if not path.startswith(PREFIX + "/"):
        path = PREFIX + path
    if path != CHANGES and path not in VIEWS:
        raise ConfigurationError(
            f"unknown sync endpoint {endpoint!r}: use {CHANGES} or one of {', '.join(VIEWS)}"
        )
    return path
