"""The JSON of the sync protocol: engine dataclasses to wire dicts, and back, strictly.

Everything read from the wire is untrusted. The ``*_from_wire`` functions check every
type, size and format (known kinds, version vectors of node id -> non-negative whole
number, clock stamps, field counts and sizes) and raise :class:`WireError` naming the
first problem and where it is (``records[3].version``); nothing that fails reaches the
engine. Records are rebuilt only from the documented keys, so a request cannot set any
attribute but a record's validated fields.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from neonpay import _json
from neonpay.store.base import KINDS, Outcome, Record
from neonpay.sync.protocol import ChangesPage, ItemResult, PeerInfo, PushResult
from neonpay.web_sync.errors import WireError
from neonpay.web_sync.limits import DEFAULT_LIMITS, Limits

__all__ = [
    "MAX_COUNTER",
    "dump",
    "is_node_id",
    "load",
    "page_from_wire",
    "page_to_wire",
    "peer_info_from_wire",
    "peer_info_to_wire",
    "push_body",
    "push_result_from_wire",
    "push_result_to_wire",
    "record_from_wire",
    "record_to_wire",
    "records_from_wire",
]

#: The largest version-vector counter accepted (a signed 64-bit integer).
MAX_COUNTER = 2**63 - 1
_NODE_RE = re.compile(r"[A-Za-z0-9_-]{1,64}", re.ASCII)
_HLC_RE = re.compile(r"[0-9]{15}\.[0-9]{6}\.[A-Za-z0-9_-]{1,64}", re.ASCII)
_MAX_FIELD_NAME = 128
_MAX_REASON = 2000
_MAX_SOFTWARE = 200
_REQUIRED = ("kind", "key", "fields", "version", "hlc", "field_hlcs", "deleted")
_OPTIONAL = ("origin", "updated_at", "resolution")
_RECORD_KEYS = frozenset((*_REQUIRED, *_OPTIONAL))
_REQUIRED_KEYS = frozenset(_REQUIRED)


def dump(value: Any) -> bytes:
    """Canonical JSON bytes (sorted keys, compact, UTF-8)."""
    return _json.dumps(value)


def load(body: bytes) -> Any:
    """Parse a JSON body.

    Raises:
        WireError: ``malformed_json`` (400).
    """
    try:
        return _json.loads(body)
    except (ValueError, TypeError, RecursionError) as exc:
        raise WireError("malformed_json", f"the body is not valid JSON: {exc}") from exc


def is_node_id(value: Any) -> bool:
    """Whether ``value`` is a node id: 1-64 characters of letters, digits, ``-`` or ``_``."""
    return isinstance(value, str) and _NODE_RE.fullmatch(value) is not None


# --- checks -------------------------------------------------------------------------------
def _schema(where: str, rule: str) -> WireError:
    return WireError("bad_schema", f"{where}: {rule}")


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _schema(where, "must be a JSON object")
    return value


def _array(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise _schema(where, "must be a JSON array")
    return value


def _exact_keys(
    obj: Mapping[str, Any], where: str, required: Collection[str], optional: Collection[str] = ()
) -> None:
    missing = [name for name in required if name not in obj]
    if missing:
        raise _schema(where, f"missing {', '.join(sorted(missing))}")
    unknown = set(obj) - set(required) - set(optional)
    if unknown:
        raise _schema(where, f"unknown key(s) {', '.join(sorted(unknown)[:5])}")


def _string(value: Any, where: str, *, max_len: int, min_len: int = 0) -> str:
    if not isinstance(value, str):
        raise _schema(where, "must be a string")
    if not min_len <= len(value) <= max_len:
        raise _schema(where, f"must be {min_len}-{max_len} characters long")
    return value


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise _schema(where, "must be true or false")
    return value


def _whole(value: Any, where: str, *, low: int = 0, high: int = MAX_COUNTER) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _schema(where, "must be a whole number")
    if not low <= value <= high:
        raise _schema(where, f"must be between {low} and {high}")
    return value


def _node(value: Any, where: str) -> str:
    if not is_node_id(value):
        raise _schema(where, "must be a node id (1-64 characters of A-Z a-z 0-9 - _)")
    assert isinstance(value, str)
    return value


def _stamp(value: Any, where: str, *, latest_ms: int | None) -> str:
    if not isinstance(value, str) or _HLC_RE.fullmatch(value) is None:
        raise _schema(where, "must be a clock stamp WWWWWWWWWWWWWWW.CCCCCC.node")
    if latest_ms is not None and int(value[:15]) > latest_ms:  # the wall part, in ms
        raise WireError("clock_ahead", f"{where}: the clock stamp is too far in the future")
    return value


def _stamp_ok(value: Any, latest_ms: int | None) -> bool:
    """Whether ``value`` passes :func:`_stamp` (without naming the problem)."""
    return (
        type(value) is str
        and _HLC_RE.fullmatch(value) is not None
        and (latest_ms is None or int(value[:15]) <= latest_ms)
    )


def _key(value: Any, where: str, limits: Limits) -> str:
    key = _string(value, where, min_len=1, max_len=limits.max_key)
    if not key.isprintable():
        raise _schema(where, "must not contain control characters")
    return key


# --- records ------------------------------------------------------------------------------
def record_from_wire(
    value: Any,
    where: str = "record",
    *,
    limits: Limits = DEFAULT_LIMITS,
    kinds: Collection[str] = KINDS,
    now: float | None = None,
) -> Record:
    """A :class:`Record` from its untrusted wire form.

    ``kinds`` are the kinds allowed here; ``now`` (Unix seconds) enables the check
    that the clock stamps are at most ``limits.max_clock_ahead`` ahead.

    Raises:
        WireError: ``bad_schema``, ``unknown_kind``, ``wrong_kind``, ``record_too_large``
            or ``clock_ahead`` (all 422).
    """
    # Each check below is a fast test inline; the helper that names the problem (and
    # formats where it is) runs only when the test fails. Many thousands a second.
    obj = _object(value, where)
    keys = obj.keys()
    if not (keys <= _RECORD_KEYS and keys >= _REQUIRED_KEYS):
        _exact_keys(obj, where, _REQUIRED, _OPTIONAL)
    kind = obj["kind"]
    if not isinstance(kind, str) or kind not in KINDS:
        shown = kind[:40] if isinstance(kind, str) else kind
        raise WireError(
            "unknown_kind", f"{where}.kind: unknown kind {shown!r} (known: {', '.join(KINDS)})"
        )
    if kind not in kinds:
        raise WireError(
            "wrong_kind", f"{where}.kind: {kind!r} does not belong here ({', '.join(kinds)})"
        )
    key = obj["key"]
    if not (type(key) is str and 0 < len(key) <= limits.max_key and key.isprintable()):
        _key(key, f"{where}.key", limits)
    latest_ms = None if now is None else int((now + limits.max_clock_ahead) * 1000)

    fields = obj["fields"]
    if type(fields) is not dict:
        _object(fields, f"{where}.fields")
    if len(fields) > limits.max_fields:
        raise WireError("record_too_large", f"{where}.fields: more than {limits.max_fields} fields")
    for name in fields:
        if type(name) is not str or not 0 < len(name) <= _MAX_FIELD_NAME:
            _string(name, f"{where}.fields (a name)", min_len=1, max_len=_MAX_FIELD_NAME)
    try:
        size = len(_json.dumps(fields))
    except (TypeError, ValueError) as exc:  # pragma: no cover - parsed JSON re-encodes
        raise _schema(f"{where}.fields", "must be JSON") from exc
    if size > limits.max_record_bytes:
        raise WireError(
            "record_too_large",
            f"{where}.fields: {size} bytes as JSON, more than {limits.max_record_bytes}",
        )

    version = obj["version"]
    if type(version) is not dict:
        _object(version, f"{where}.version")
    if not version:
        raise _schema(f"{where}.version", "must name at least one node")
    if len(version) > limits.max_version_nodes:
        raise WireError(
            "record_too_large", f"{where}.version: more than {limits.max_version_nodes} nodes"
        )
    for node, counter in version.items():
        if type(node) is not str or _NODE_RE.fullmatch(node) is None:
            _node(node, f"{where}.version (a node)")
        if type(counter) is not int or not 0 <= counter <= MAX_COUNTER:
            _whole(counter, f"{where}.version[{node}]")

    hlc = obj["hlc"]
    if not _stamp_ok(hlc, latest_ms):
        _stamp(hlc, f"{where}.hlc", latest_ms=latest_ms)
    field_hlcs = obj["field_hlcs"]
    if type(field_hlcs) is not dict:
        _object(field_hlcs, f"{where}.field_hlcs")
    if len(field_hlcs) > limits.max_fields:
        raise WireError(
            "record_too_large", f"{where}.field_hlcs: more than {limits.max_fields} fields"
        )
    for name, stamp in field_hlcs.items():
        if type(name) is not str or not 0 < len(name) <= _MAX_FIELD_NAME:
            _string(name, f"{where}.field_hlcs (a name)", min_len=1, max_len=_MAX_FIELD_NAME)
        # a stamp equal to the record's is checked just above
        if stamp != hlc and not _stamp_ok(stamp, latest_ms):
            _stamp(stamp, f"{where}.field_hlcs[{name}]", latest_ms=latest_ms)
    # A field left out of field_hlcs was last written at the record's hlc (the compact
    # form record_to_wire sends).
    if not field_hlcs:
        field_hlcs = dict.fromkeys(sorted(fields), hlc)
    elif not field_hlcs.keys() >= fields.keys():
        field_hlcs = dict(sorted({**dict.fromkeys(fields, hlc), **field_hlcs}.items()))
    else:
        field_hlcs = dict(sorted(field_hlcs.items()))

    deleted = obj["deleted"]
    if type(deleted) is not bool:
        _bool(deleted, f"{where}.deleted")
    if deleted and fields:
        raise _schema(f"{where}.fields", "must be empty for a deleted record")
    origin = obj.get("origin", "")
    if origin != "" and (type(origin) is not str or _NODE_RE.fullmatch(origin) is None):
        _node(origin, f"{where}.origin")
    updated_at = obj.get("updated_at", 0.0)
    if (
        isinstance(updated_at, bool)
        or not isinstance(updated_at, (int, float))
        or not math.isfinite(updated_at)
        or updated_at < 0
    ):
        raise _schema(f"{where}.updated_at", "must be a non-negative Unix time")
    resolution = obj.get("resolution", False)
    if type(resolution) is not bool:
        _bool(resolution, f"{where}.resolution")
    return Record(
        kind=kind,
        key=key,
        fields=fields,
        version={node: int(counter) for node, counter in sorted(version.items())},
        hlc=hlc,
        field_hlcs=field_hlcs,
        deleted=deleted,
        origin=origin,
        updated_at=float(updated_at),
        resolution=resolution,
    )


def records_from_wire(
    value: Any,
    *,
    limits: Limits = DEFAULT_LIMITS,
    kinds: Collection[str] = KINDS,
    now: float | None = None,
) -> list[Record]:
    """The records of a push body ``{"records": [...]}``.

    Raises:
        WireError: ``batch_too_large`` (413) or any error of :func:`record_from_wire`.
    """
    obj = _object(value, "body")
    _exact_keys(obj, "body", ("records",))
    items = _array(obj["records"], "records")
    if len(items) > limits.max_batch:
        raise WireError(
            "batch_too_large",
            f"{len(items)} records in one batch, more than {limits.max_batch}: split it",
        )
    return [
        record_from_wire(item, f"records[{i}]", limits=limits, kinds=kinds, now=now)
        for i, item in enumerate(items)
    ]


def record_to_wire(record: Record) -> dict[str, Any]:
    """The wire form of ``record``: :meth:`Record.to_wire` with ``field_hlcs`` compact.

    The stamp of a field of ``fields`` that equals the record's ``hlc`` is left out (most
    fields were last written with the record); :func:`record_from_wire` puts it back.
    Stamps of names not in ``fields`` (removed fields, tombstones) are always sent.
    """
    wire = record.to_wire()
    hlc = record.hlc
    fields = record.fields
    wire["field_hlcs"] = {
        name: stamp
        for name, stamp in record.field_hlcs.items()
        if stamp != hlc or name not in fields
    }
    return wire


def push_body(records: Sequence[Record]) -> bytes:
    """The JSON body of a push: ``{"records": [...]}``."""
    return dump({"records": [record_to_wire(record) for record in records]})


# --- pages, results, info ------------------------------------------------------------------
def page_to_wire(page: ChangesPage) -> dict[str, Any]:
    """The JSON of a feed page."""
    return {
        "node_id": page.node_id,
        "changes": [record_to_wire(record) for record in page.records],
        "next_cursor": page.next_cursor,
        "has_more": page.has_more,
    }


def page_from_wire(
    value: Any,
    *,
    limits: Limits = DEFAULT_LIMITS,
    kinds: Collection[str] = KINDS,
    now: float | None = None,
) -> ChangesPage:
    """A feed page from untrusted JSON.

    Raises:
        WireError: the page or a record in it does not have the documented shape.
    """
    obj = _object(value, "page")
    _exact_keys(obj, "page", ("node_id", "changes", "next_cursor", "has_more"))
    items = _array(obj["changes"], "changes")
    records = [
        record_from_wire(item, f"changes[{i}]", limits=limits, kinds=kinds, now=now)
        for i, item in enumerate(items)
    ]
    return ChangesPage(
        node_id=_node(obj["node_id"], "node_id"),
        records=records,
        next_cursor=_whole(obj["next_cursor"], "next_cursor"),
        has_more=_bool(obj["has_more"], "has_more"),
    )


def _item_to_wire(item: ItemResult) -> dict[str, Any]:
    wire: dict[str, Any] = {"kind": item.kind, "key": item.key, "outcome": item.outcome.value}
    if item.reason:
        wire["reason"] = item.reason
    if item.current is not None:
        wire["current"] = record_to_wire(item.current)
    return wire


def push_result_to_wire(result: PushResult) -> dict[str, Any]:
    """The JSON of a push's per-item results."""
    return {"node_id": result.node_id, "results": [_item_to_wire(i) for i in result.results]}


def push_result_from_wire(
    value: Any,
    sent: Sequence[Record],
    *,
    limits: Limits = DEFAULT_LIMITS,
    now: float | None = None,
) -> PushResult:
    """A push's results from untrusted JSON; they must answer ``sent`` item by item.

    Raises:
        WireError: a malformed answer, or one whose items do not match what was sent.
    """
    obj = _object(value, "answer")
    _exact_keys(obj, "answer", ("node_id", "results"))
    items = _array(obj["results"], "results")
    if len(items) != len(sent):
        raise _schema("results", f"{len(items)} results for {len(sent)} records sent")
    results: list[ItemResult] = []
    outcomes = {outcome.value: outcome for outcome in Outcome}
    for i, (item, record) in enumerate(zip(items, sent, strict=True)):
        where = f"results[{i}]"
        entry = _object(item, where)
        _exact_keys(entry, where, ("kind", "key", "outcome"), ("reason", "current"))
        if entry["kind"] != record.kind or entry["key"] != record.key:
            raise _schema(where, "does not answer the record sent in this position")
        outcome = outcomes.get(entry["outcome"]) if isinstance(entry["outcome"], str) else None
        if outcome is None:
            raise _schema(f"{where}.outcome", f"must be one of {', '.join(outcomes)}")
        reason = _string(entry.get("reason", ""), f"{where}.reason", max_len=_MAX_REASON)
        current = entry.get("current")
        results.append(
            ItemResult(
                kind=record.kind,
                key=record.key,
                outcome=outcome,
                reason=reason,
                current=None
                if current is None
                else record_from_wire(
                    current, f"{where}.current", limits=limits, kinds=(record.kind,), now=now
                ),
            )
        )
    return PushResult(node_id=_node(obj["node_id"], "node_id"), results=results)


def peer_info_to_wire(info: PeerInfo) -> dict[str, Any]:
    """The JSON of a node's identity."""
    return {
        "node_id": info.node_id,
        "last_seq": info.last_seq,
        "protocol": info.protocol,
        "software": info.software,
    }


def peer_info_from_wire(value: Any) -> PeerInfo:
    """A node's identity from untrusted JSON.

    Raises:
        WireError: a malformed answer.
    """
    obj = _object(value, "info")
    _exact_keys(obj, "info", ("node_id", "last_seq", "protocol", "software"))
    return PeerInfo(
        node_id=_node(obj["node_id"], "node_id"),
        last_seq=_whole(obj["last_seq"], "last_seq"),
        protocol=_whole(obj["protocol"], "protocol", low=1, high=1_000_000),
        software=_string(obj["software"], "software", max_len=_MAX_SOFTWARE),
    )
