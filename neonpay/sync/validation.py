"""Checks on record states that come from another node (or from a person resolving a
conflict): the metadata must be well formed and the fields must pass the same domain
rules as a local write. A peer can send garbage; it never reaches the store.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeGuard

from neonpay import _json
from neonpay.core import validation as v
from neonpay.core.promotions import PromoCode, normalize_code
from neonpay.core.settings import check_setting
from neonpay.core.templates import Template
from neonpay.errors import ValidationError
from neonpay.store.base import KINDS, Record
from neonpay.sync.clock import MAX_CLOCK_SKEW, MAX_VERSION_COUNTER, STAMP_RE
from neonpay.sync.nodes import is_node_id

if TYPE_CHECKING:
    from neonpay.core.neonpay import NeonPay

__all__ = ["MAX_CLOCK_AHEAD", "RecordCheck"]

_MAX_NODES = 1000
_MAX_NODE_ID = 64
_MAX_COUNTER = MAX_VERSION_COUNTER + 1  # counters are below this
#: How far (seconds) a clock stamp from elsewhere may be ahead of our clock, by default:
#: the signature tolerance (:data:`~neonpay.sync.clock.MAX_CLOCK_SKEW`). A stamp far in
#: the future would win every last-writer-wins decision and drag every node's clock
#: along; the HTTP layer applies the same bound (``Limits.max_clock_ahead``).
MAX_CLOCK_AHEAD = float(MAX_CLOCK_SKEW)


def _stamp(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise ValidationError(field, "must be a clock stamp string")
    if STAMP_RE.fullmatch(value) is None:
        raise ValidationError(field, "must be a clock stamp WWWWWWWWWWWWWWW.CCCCCC.node")
    return value


def _count(value: Any, field: str, *, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value < _MAX_COUNTER:
        raise ValidationError(field, f"must be a whole number from {low}")
    return value


class RecordCheck:
    """Validates record states for one node (its limits, e.g. the highest price).

    ``max_clock_ahead``: seconds a state's clock stamp may be ahead of our clock (the
    signature tolerance of the link it came over; assignable).
    """

    def __init__(self, neonpay: NeonPay, *, max_clock_ahead: float = MAX_CLOCK_AHEAD) -> None:
        self._neonpay = neonpay
        self.max_clock_ahead = float(max_clock_ahead)

    # --- fields ------------------------------------------------------------------------
    def normalized_fields(self, kind: str, key: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        """The canonical fields of a live record of ``kind``.

        Raises:
            ValidationError: a field breaks a rule, or the key is not valid for the kind.
        """
        if not isinstance(fields, Mapping):
            raise ValidationError("fields", "must be an object", kind=kind)
        try:
            return self._normalized(kind, key, fields)
        except ValidationError:
            raise
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            raise ValidationError("fields", f"malformed: {exc}", kind=kind) from exc

    def _normalized(self, kind: str, key: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        if kind == "payment_stage":
            return self._neonpay.stages.validate(key, fields)
        if kind == "promo_code":
            if normalize_code(key) != key:
                raise ValidationError("code", "must be upper-case", kind=kind)
            if "discount_type" not in fields or "discount_value" not in fields:
                raise ValidationError("fields", "need discount_type and discount_value", kind=kind)
            return PromoCode.from_fields(key, fields).to_fields()
        if kind == "template":
            return Template.from_fields(key, fields).to_fields()
        if kind == "setting":
            if set(fields) != {"value"}:
                raise ValidationError("fields", "a setting has exactly one field, value", kind=kind)
            return {"value": check_setting(key, fields["value"])}
        if kind == "promo_usage":
            if normalize_code(key) != key:
                raise ValidationError("code", "must be upper-case", kind=kind)
            if len(fields) > _MAX_NODES:
                raise ValidationError("fields", f"at most {_MAX_NODES} nodes", kind=kind)
            counts: dict[str, int] = {}
            for node, count in fields.items():
                if not is_node_id(node):
                    raise ValidationError("fields", "keys must be node ids", kind=kind)
                counts[node] = _count(count, "fields", low=0)
            return counts
        raise ValidationError("kind", f"must be one of {', '.join(KINDS)}")

    def check_fields(self, kind: str, key: str, fields: Mapping[str, Any]) -> None:
        """Raise ValidationError unless ``fields`` are valid and already canonical."""
        normalized = self.normalized_fields(kind, key, fields)
        try:
            canonical = _json.dumps(fields if type(fields) is dict else dict(fields))
        except (TypeError, ValueError) as exc:
            raise ValidationError("fields", "must be JSON values", kind=kind) from exc
        if _json.dumps(normalized) != canonical:
            extra = sorted(set(fields) - set(normalized))
            detail = f"unknown fields {extra}" if extra else "fields are not in canonical form"
            raise ValidationError("fields", detail, kind=kind)

    # --- whole states --------------------------------------------------------------------
    def check(self, record: Any, *, wire_checked: bool = False) -> Record:
        """Check a whole state from elsewhere and return it (with plain dicts).

        ``wire_checked`` says that ``record`` was built by the wire codec
        (:mod:`neonpay.web_sync.codec`), which has checked every type and format: only the
        rules it does not know (this node's limits, the key rules of each kind) and the
        fields are checked again. Anything else is checked in full whatever it says.

        Raises:
            ValidationError: what is wrong, naming the field.
        """
        latest_ms = (time.time() + self.max_clock_ahead) * 1000
        if (wire_checked and _wire_rules_ok(record, latest_ms)) or _plain_and_valid(
            record, latest_ms
        ):
            # the common case, tested in one pass
            fields = record.fields
            if not record.deleted:
                self.check_fields(record.kind, record.key, fields)
            if record.seq == 0:
                return record  # already plain (as the wire codec builds them): no copy
            return Record(
                kind=record.kind,
                key=record.key,
                fields=dict(fields),
                version=dict(record.version),
                hlc=record.hlc,
                field_hlcs=dict(record.field_hlcs),
                deleted=record.deleted,
                origin=record.origin,
                updated_at=record.updated_at,
                resolution=record.resolution,
            )
        return self._check_named(record)

    def _check_named(self, record: Any) -> Record:
        """:meth:`check` one rule at a time, naming the first one broken."""
        if not isinstance(record, Record):
            raise ValidationError("record", "must be a record state")
        kind = record.kind
        if not isinstance(kind, str) or kind not in KINDS:
            raise ValidationError("kind", f"must be one of {', '.join(KINDS)}")
        key = record.key
        if not isinstance(key, str):
            raise ValidationError("key", "must be a string", kind=kind)
        if kind in ("promo_code", "promo_usage"):
            if normalize_code(key) != key:
                raise ValidationError("key", "must be an upper-case promo code", kind=kind)
        else:
            v.check_id(key, "key", kind=kind)
        version = record.version
        if not isinstance(version, Mapping) or not 1 <= len(version) <= _MAX_NODES:
            raise ValidationError("version", "must map 1 or more node ids to counters", kind=kind)
        for node, counter in version.items():
            if (
                type(node) is str
                and type(counter) is int
                and 1 <= counter < _MAX_COUNTER
                and is_node_id(node)
            ):
                continue  # the common case, checked inline
            if not is_node_id(node):
                raise ValidationError("version", f"{node!r} is not a node id", kind=kind)
            _count(counter, "version", low=1)
        hlc = _stamp(record.hlc, "hlc")
        ahead = int(hlc[:15]) / 1000 - time.time()
        if ahead > self.max_clock_ahead:
            raise ValidationError(
                "hlc",
                f"the clock stamp is {ahead:.0f} s in the future of this node's clock, more than "
                f"the {self.max_clock_ahead:.0f} s allowed (the signature tolerance); one of the "
                "two clocks is wrong",
                kind=kind,
            )
        stamps = record.field_hlcs
        if not isinstance(stamps, Mapping) or len(stamps) > 10_000:
            raise ValidationError("field_hlcs", "must map field names to stamps", kind=kind)
        for name, stamp in stamps.items():
            # most fields share the record's stamp, checked above
            if stamp == hlc and type(name) is str and len(name) <= 64:
                continue
            if not isinstance(name, str) or len(name) > 64:
                raise ValidationError("field_hlcs", "field names must be short strings", kind=kind)
            if stamp == hlc:
                continue
            if _stamp(stamp, "field_hlcs") > hlc:
                raise ValidationError(
                    "field_hlcs", "a field stamp is after the record's", kind=kind
                )
        if not isinstance(record.deleted, bool):
            raise ValidationError("deleted", "must be true or false", kind=kind)
        if not isinstance(record.resolution, bool):
            raise ValidationError("resolution", "must be true or false", kind=kind)
        if not isinstance(record.origin, str) or len(record.origin) > _MAX_NODE_ID:
            raise ValidationError("origin", "must be a node id", kind=kind)
        updated = record.updated_at
        if (
            isinstance(updated, bool)
            or not isinstance(updated, (int, float))
            or not math.isfinite(updated)
        ):
            raise ValidationError("updated_at", "must be a Unix time", kind=kind)
        fields = record.fields
        if not isinstance(fields, Mapping):
            raise ValidationError("fields", "must be an object", kind=kind)
        if record.deleted:
            if fields:
                raise ValidationError("fields", "a deleted record has no fields", kind=kind)
            if kind == "promo_usage":
                raise ValidationError("deleted", "usage counters are never deleted", kind=kind)
        else:
            self.check_fields(kind, key, fields)
        if (
            type(fields) is dict
            and type(version) is dict
            and type(stamps) is dict
            and type(updated) is float
            and record.seq == 0
        ):
            return record  # already plain (as the wire codec builds them): no copy
        return Record(
            kind=kind,
            key=key,
            fields=dict(fields),
            version=dict(version),
            hlc=hlc,
            field_hlcs=dict(stamps),
            deleted=record.deleted,
            origin=record.origin,
            updated_at=float(updated),
            resolution=record.resolution,
        )


_KIND_SET = frozenset(KINDS)
_CODE_KINDS = frozenset(("promo_code", "promo_usage"))


def _plain_and_valid(record: Any, latest_ms: float | None = None) -> TypeGuard[Record]:
    """Whether ``record`` is a :class:`Record` of plain values whose metadata passes
    every rule of :meth:`RecordCheck.check` (its fields are checked apart). False says
    only "look closer": the named checks then find the problem, or accept a state made
    of other mapping types."""
    if type(record) is not Record:
        return False
    kind = record.kind
    key = record.key
    if type(kind) is not str or kind not in _KIND_SET or type(key) is not str:
        return False
    if not _key_ok(kind, key):
        return False
    version = record.version
    if type(version) is not dict or not 0 < len(version) <= _MAX_NODES:
        return False
    for node, counter in version.items():
        if type(counter) is not int or not 0 < counter < _MAX_COUNTER or not is_node_id(node):
            return False
    hlc = record.hlc
    if (
        type(hlc) is not str
        or STAMP_RE.fullmatch(hlc) is None
        or int(hlc[:15]) > _latest(latest_ms)
    ):
        return False
    stamps = record.field_hlcs
    if type(stamps) is not dict or len(stamps) > 10_000:
        return False
    fields = record.fields
    if type(fields) is not dict:
        return False
    if record.deleted or stamps.keys() != fields.keys():
        # names of live fields are checked with the fields (unknown ones are refused)
        for name in stamps:
            if type(name) is not str or len(name) > 64:
                return False
    if list(stamps.values()).count(hlc) != len(stamps):  # some field stamps differ
        for stamp in stamps.values():
            if stamp != hlc and (
                type(stamp) is not str or STAMP_RE.fullmatch(stamp) is None or stamp > hlc
            ):
                return False
    deleted = record.deleted
    origin = record.origin
    updated = record.updated_at
    return (
        type(deleted) is bool
        and type(record.resolution) is bool
        and type(origin) is str
        and len(origin) <= _MAX_NODE_ID
        and type(updated) is float
        and math.isfinite(updated)
        and (not deleted or (not fields and kind != "promo_usage"))
    )


def _latest(latest_ms: float | None) -> float:
    """The latest clock stamp wall time (ms) accepted: ``latest_ms``, else the default
    bound from now."""
    return (time.time() + MAX_CLOCK_AHEAD) * 1000 if latest_ms is None else latest_ms


def _key_ok(kind: str, key: str) -> bool:
    """Whether ``key`` is a valid key of ``kind``: a promo code in its normal (upper-case)
    form for codes and their counters, an id (:func:`~neonpay.core.validation.check_id`)
    for the rest."""
    if kind not in _CODE_KINDS:
        return 0 < len(key) <= v.MAX_ID and v.ID_RE.fullmatch(key) is not None
    try:
        return normalize_code(key) == key
    except ValidationError:
        return False


def _wire_rules_ok(record: Any, latest_ms: float | None = None) -> TypeGuard[Record]:
    """:func:`_plain_and_valid` for a record the wire codec built: the codec checked the
    types, the formats of node ids and stamps, that field stamps are not later than the
    record's, and that a tombstone has no fields; what is left are the rules it does not
    know. Anything unexpected means "look closer" (the named checks run in full)."""
    try:
        if type(record) is not Record or record.seq != 0:
            return False
        kind = record.kind
        key = record.key
        if not _key_ok(kind, key):
            return False
        version = record.version
        if len(version) > _MAX_NODES:
            return False
        for counter in version.values():
            if not 0 < counter < _MAX_COUNTER:
                return False
        hlc = record.hlc
        if int(hlc[:15]) > _latest(latest_ms):
            return False
        stamps = record.field_hlcs
        if len(stamps) > 10_000:
            return False
        deleted = record.deleted
        if deleted and kind == "promo_usage":
            return False
        if deleted or stamps.keys() != record.fields.keys():
            for name in stamps:
                if len(name) > 64:
                    return False
        return _plain_types(record)
    except (TypeError, ValueError, AttributeError):
        return False


def _plain_types(record: Record) -> bool:
    """The exact types :func:`_plain_and_valid` relies on (cheap: no formats)."""
    return (
        type(record.kind) is str
        and type(record.key) is str
        and type(record.version) is dict
        and type(record.hlc) is str
        and type(record.field_hlcs) is dict
        and type(record.fields) is dict
        and type(record.deleted) is bool
        and type(record.resolution) is bool
        and type(record.origin) is str
        and type(record.updated_at) is float
    )
