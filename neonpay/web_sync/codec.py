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
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from neonpay import _json
from neonpay.limits import (
    MAX_JSON_DEPTH,
    DuplicateKeyError,
    deeper_than,
    loads_checked,
)
from neonpay.store.base import KINDS, Outcome, Record, checked_record
from neonpay.sync.clock import MAX_VERSION_COUNTER, STAMP_RE
from neonpay.sync.nodes import is_node_id
from neonpay.sync.protocol import ChangesPage, ItemResult, PeerInfo, PushResult, item_result
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

#: The largest whole number accepted on the wire (version counters, sequences, cursors):
#: :data:`neonpay.sync.clock.MAX_VERSION_COUNTER`, ``2**53 - 1``, exact in every JSON
#: reader.
MAX_COUNTER = MAX_VERSION_COUNTER
_MAX_FIELD_NAME = 128
_MAX_REASON = 2000
_MAX_SOFTWARE = 200
_REQUIRED = ("kind", "key", "fields", "version", "hlc", "field_hlcs", "deleted")
_OPTIONAL = ("origin", "updated_at", "resolution")
_RECORD_KEYS = frozenset((*_REQUIRED, *_OPTIONAL))
_REQUIRED_KEYS = frozenset(_REQUIRED)
_ITEM_KEYS = frozenset(("kind", "key", "outcome", "reason", "current"))
_ITEM_REQUIRED = frozenset(("kind", "key", "outcome"))
_OUTCOMES = {outcome.value: outcome for outcome in Outcome}
_NAMES = {outcome: outcome.value for outcome in Outcome}


def dump(value: Any) -> bytes:
    """Canonical JSON bytes (sorted keys, compact, UTF-8)."""
    return _json.dumps(value)


def load(body: bytes) -> Any:
    """Parse a JSON body (an object that names a key twice is refused).

    Raises:
        WireError: ``malformed_json`` (400, also for nesting too deep to read),
            ``bad_schema`` (422) for an object that repeats a key.
    """
    try:
        return loads_checked(body)
    except DuplicateKeyError as exc:
        raise WireError("bad_schema", f"body: {exc}") from exc
    except (ValueError, TypeError, RecursionError) as exc:  # TooDeepError too
        raise WireError("malformed_json", f"the body is not valid JSON: {exc}") from exc


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
    if not isinstance(value, str) or STAMP_RE.fullmatch(value) is None:
        raise _schema(where, "must be a clock stamp WWWWWWWWWWWWWWW.CCCCCC.node")
    if latest_ms is not None and int(value[:15]) > latest_ms:  # the wall part, in ms
        raise WireError(
            "clock_ahead",
            f"{where}: the clock stamp is ahead of this node's clock by more than the "
            "allowed clock skew (the signature tolerance); one of the two clocks is wrong",
        )
    return value


def _stamp_ok(value: Any, latest_ms: int | None) -> bool:
    """Whether ``value`` passes :func:`_stamp` (without naming the problem)."""
    return (
        type(value) is str
        and STAMP_RE.fullmatch(value) is not None
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
    that the clock stamps are at most ``limits.max_clock_ahead`` ahead. A field stamp
    must not be later than the record's own stamp.

    Raises:
        WireError: ``bad_schema``, ``unknown_kind``, ``wrong_kind``, ``record_too_large``
            or ``clock_ahead`` (all 422).
    """
    latest_ms = _latest_ms(now, limits)
    return _record(value, where, None, limits, kinds, latest_ms)


def _record(
    value: Any,
    where: str,
    index: int | None,
    limits: Limits,
    kinds: Collection[str],
    latest_ms: int | None,
    measure: bool = True,
) -> Record:
    """:func:`record_from_wire` for item ``index`` of the array ``where`` (or for
    ``where`` itself when ``index`` is None).

    Each check below is a fast test inline; the helper that names the problem (and
    formats where it is) runs only when the test fails. Many thousands a second.
    """
    if type(value) is not dict:
        _object(value, _at(where, index))
    keys = value.keys()
    if not (keys <= _RECORD_KEYS and keys >= _REQUIRED_KEYS):
        _exact_keys(value, _at(where, index), _REQUIRED, _OPTIONAL)
    kind = value["kind"]
    if type(kind) is not str or kind not in kinds:
        _bad_kind(kind, _at(where, index), kinds)
    key = value["key"]
    if not (type(key) is str and 0 < len(key) <= limits.max_key and key.isprintable()):
        _key(key, f"{_at(where, index)}.key", limits)

    fields = value["fields"]
    if type(fields) is not dict:
        _object(fields, f"{_at(where, index)}.fields")
    if len(fields) > limits.max_fields:
        raise WireError(
            "record_too_large", f"{_at(where, index)}.fields: more than {limits.max_fields} fields"
        )
    for name, item in fields.items():
        if type(name) is not str or not 0 < len(name) <= _MAX_FIELD_NAME:
            _string(
                name, f"{_at(where, index)}.fields (a name)", min_len=1, max_len=_MAX_FIELD_NAME
            )
        if (type(item) is dict or type(item) is list) and deeper_than(item, MAX_JSON_DEPTH):
            raise _schema(
                f"{_at(where, index)}.fields.{name[:40]}",
                f"must nest at most {MAX_JSON_DEPTH} levels of lists and objects",
            )
    size = len(_json.dumps(fields)) if measure else 0
    if size > limits.max_record_bytes:
        raise WireError(
            "record_too_large",
            f"{_at(where, index)}.fields: {size} bytes as JSON, more than "
            f"{limits.max_record_bytes}",
        )

    version = value["version"]
    if type(version) is not dict:
        _object(version, f"{_at(where, index)}.version")
    if not version:
        raise _schema(f"{_at(where, index)}.version", "must name at least one node")
    if len(version) > limits.max_version_nodes:
        raise WireError(
            "record_too_large",
            f"{_at(where, index)}.version: more than {limits.max_version_nodes} nodes",
        )
    for node, counter in version.items():
        if not is_node_id(node):
            _node(node, f"{_at(where, index)}.version (a node)")
        if type(counter) is not int or not 0 <= counter <= MAX_COUNTER:
            _whole(counter, f"{_at(where, index)}.version[{node}]")
    if len(version) > 1:
        version = dict(sorted(version.items()))

    hlc = value["hlc"]
    if not _stamp_ok(hlc, latest_ms):
        _stamp(hlc, f"{_at(where, index)}.hlc", latest_ms=latest_ms)
    field_hlcs = value["field_hlcs"]
    if type(field_hlcs) is not dict:
        _object(field_hlcs, f"{_at(where, index)}.field_hlcs")
    if field_hlcs:
        _check_field_stamps(field_hlcs, hlc, _at(where, index), limits, latest_ms)
        # A field left out of field_hlcs was last written at the record's hlc (the
        # compact form record_to_wire sends).
        if field_hlcs.keys() >= fields.keys():
            field_hlcs = dict(sorted(field_hlcs.items()))
        else:
            field_hlcs = dict(sorted({**dict.fromkeys(fields, hlc), **field_hlcs}.items()))
    else:
        field_hlcs = dict.fromkeys(fields, hlc)  # in the order of fields (canonical: sorted)

    deleted = value["deleted"]
    if type(deleted) is not bool:
        _bool(deleted, f"{_at(where, index)}.deleted")
    if deleted and fields:
        raise _schema(f"{_at(where, index)}.fields", "must be empty for a deleted record")
    origin = value.get("origin", "")
    if origin != "" and not is_node_id(origin):
        _node(origin, f"{_at(where, index)}.origin")
    updated_at = value.get("updated_at", 0.0)
    if type(updated_at) is not float:
        updated_at = _unix_time(updated_at, f"{_at(where, index)}.updated_at")
    elif not 0 <= updated_at <= _MAX_TIME:  # also false for NaN
        _unix_time(updated_at, f"{_at(where, index)}.updated_at")
    resolution = value.get("resolution", False)
    if type(resolution) is not bool:
        _bool(resolution, f"{_at(where, index)}.resolution")
    return checked_record(
        kind, key, fields, version, hlc, field_hlcs, deleted, origin, updated_at, 0, resolution
    )


def _latest_ms(now: float | None, limits: Limits) -> int | None:
    """The latest clock stamp wall time (ms) accepted at ``now`` (None: no bound)."""
    return None if now is None else int((now + limits.max_clock_ahead) * 1000)


def _at(where: str, index: int | None) -> str:
    return where if index is None else f"{where}[{index}]"


def _bad_kind(kind: Any, where: str, kinds: Collection[str]) -> None:
    if not isinstance(kind, str) or kind not in KINDS:
        shown = kind[:40] if isinstance(kind, str) else kind
        raise WireError(
            "unknown_kind", f"{where}.kind: unknown kind {shown!r} (known: {', '.join(KINDS)})"
        )
    raise WireError(
        "wrong_kind", f"{where}.kind: {kind!r} does not belong here ({', '.join(kinds)})"
    )


def _check_field_stamps(
    stamps: dict[Any, Any], hlc: str, where: str, limits: Limits, latest_ms: int | None
) -> None:
    """The explicit field stamps: names, formats, and none later than the record's."""
    if len(stamps) > limits.max_fields:
        raise WireError(
            "record_too_large", f"{where}.field_hlcs: more than {limits.max_fields} fields"
        )
    for name, stamp in stamps.items():
        if type(name) is not str or not 0 < len(name) <= _MAX_FIELD_NAME:
            _string(name, f"{where}.field_hlcs (a name)", min_len=1, max_len=_MAX_FIELD_NAME)
        if stamp == hlc:
            continue
        if not _stamp_ok(stamp, latest_ms):
            _stamp(stamp, f"{where}.field_hlcs[{name}]", latest_ms=latest_ms)
        if stamp > hlc:  # fixed-width stamps: text order is clock order
            raise _schema(f"{where}.field_hlcs[{name}]", "must not be later than the record's hlc")


#: The latest ``updated_at`` accepted (the year 9999), so every value is a valid time.
_MAX_TIME = 253_402_300_799.0


def _unix_time(value: Any, where: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or not 0 <= value <= _MAX_TIME
    ):
        raise _schema(where, "must be a Unix time (seconds, 0 to the year 9999)")
    return float(value)


def records_from_wire(
    value: Any,
    *,
    limits: Limits = DEFAULT_LIMITS,
    kinds: Collection[str] = KINDS,
    now: float | None = None,
    source_bytes: int | None = None,
) -> list[Record]:
    """The records of a push body ``{"records": [...]}``.

    ``source_bytes`` is the length of the JSON text ``value`` was parsed from, if known:
    when it is small enough that no record in it can be over ``limits.max_record_bytes``,
    the records' sizes are not measured one by one.

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
    latest_ms = _latest_ms(now, limits)
    measure = _may_hold_large_record(source_bytes, limits)
    return [
        _record(item, "records", i, limits, kinds, latest_ms, measure)
        for i, item in enumerate(items)
    ]


#: How much longer a value's canonical JSON can be than the JSON it was parsed from:
#: whitespace and escapes only shrink, and a number grows at most from ``1e15`` (4
#: characters) to ``1000000000000000.0`` (18).
_MAX_GROWTH = 5


def _may_hold_large_record(source_bytes: int | None, limits: Limits) -> bool:
    """Whether a body of ``source_bytes`` could hold a record over the size limit (each
    record's fields are a part of the body, re-encoded at most ``_MAX_GROWTH`` longer)."""
    return source_bytes is None or source_bytes * _MAX_GROWTH > limits.max_record_bytes


def record_to_wire(record: Record) -> dict[str, Any]:
    """The wire form of ``record``: :meth:`Record.to_wire` with ``field_hlcs`` compact.

    The stamp of a field of ``fields`` that equals the record's ``hlc`` is left out (most
    fields were last written with the record); :func:`record_from_wire` puts it back.
    Stamps of names not in ``fields`` (removed fields, tombstones) are always sent.
    """
    hlc = record.hlc
    fields = record.fields
    stamps = record.field_hlcs
    if list(stamps.values()).count(hlc) == len(stamps) and stamps.keys() <= fields.keys():
        compact: dict[str, str] = {}  # the common case: every field written with the record
    else:
        compact = {
            name: stamp for name, stamp in stamps.items() if stamp != hlc or name not in fields
        }
    return {
        "kind": record.kind,
        "key": record.key,
        "fields": _json.plain(fields),
        "version": _json.plain(record.version),
        "hlc": hlc,
        "field_hlcs": compact,
        "deleted": record.deleted,
        "origin": record.origin,
        "updated_at": record.updated_at,
        "resolution": record.resolution,
    }


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
    source_bytes: int | None = None,
) -> ChangesPage:
    """A feed page from untrusted JSON (``source_bytes``: see :func:`records_from_wire`).

    Raises:
        WireError: the page or a record in it does not have the documented shape.
    """
    obj = _object(value, "page")
    _exact_keys(obj, "page", ("node_id", "changes", "next_cursor", "has_more"))
    items = _array(obj["changes"], "changes")
    measure = _may_hold_large_record(source_bytes, limits)
    latest_ms = _latest_ms(now, limits)
    records = [
        _record(item, "changes", i, limits, kinds, latest_ms, measure)
        for i, item in enumerate(items)
    ]
    return ChangesPage(
        node_id=_node(obj["node_id"], "node_id"),
        records=records,
        next_cursor=_whole(obj["next_cursor"], "next_cursor"),
        has_more=_bool(obj["has_more"], "has_more"),
    )


def _item_to_wire(item: ItemResult) -> dict[str, Any]:
    wire: dict[str, Any] = {"kind": item.kind, "key": item.key, "outcome": _NAMES[item.outcome]}
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
    latest_ms = _latest_ms(now, limits)
    for i, (item, record) in enumerate(zip(items, sent, strict=True)):
        if type(item) is not dict:
            _object(item, f"results[{i}]")
        keys = item.keys()
        if not (keys <= _ITEM_KEYS and keys >= _ITEM_REQUIRED):
            _exact_keys(item, f"results[{i}]", ("kind", "key", "outcome"), ("reason", "current"))
        if item["kind"] != record.kind or item["key"] != record.key:
            raise _schema(f"results[{i}]", "does not answer the record sent in this position")
        named = item["outcome"]
        outcome = _OUTCOMES.get(named) if type(named) is str else None
        if outcome is None:
            raise _schema(f"results[{i}].outcome", f"must be one of {', '.join(_OUTCOMES)}")
        reason = item.get("reason", "")
        if reason != "" and not (type(reason) is str and len(reason) <= _MAX_REASON):
            _string(reason, f"results[{i}].reason", max_len=_MAX_REASON)
        current = item.get("current")
        if current is not None:
            current = _record(
                current, f"results[{i}].current", None, limits, (record.kind,), latest_ms
            )
        results.append(item_result(record.kind, record.key, outcome, reason, current))
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
