"""Payment stages: the products a bot sells for Stars, stored as ``payment_stage`` records."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from neonpay import _json
from neonpay._gcpause import collection_paused
from neonpay.core import validation as v
from neonpay.errors import NotFoundError, ValidationError
from neonpay.limits import json_value_problem, text_problem

if TYPE_CHECKING:
    from neonpay.core.catalog import Catalog

__all__ = ["KIND", "PaymentStage", "StageCatalog"]

KIND = "payment_stage"


@dataclass(frozen=True)
class PaymentStage:
    """A product sold for Telegram Stars.

    ``price`` is in whole Stars (1 to 10,000 by default); ``payload`` is any JSON value
    of at most 128 bytes once encoded, handed back to ``on_payment`` callbacks.

    Raises:
        ValidationError: a field breaks a Bot API limit (the message names it).
    """

    title: str
    description: str
    price: int
    label: str = "Payment"
    photo_url: str | None = None
    payload: Any = None
    start_parameter: str | None = None
    provider_token: str = ""

    def __post_init__(self) -> None:
        price = _check_stage(
            self.title,
            self.description,
            self.price,
            self.label,
            self.photo_url,
            self.payload,
            self.start_parameter,
            self.provider_token,
        )
        object.__setattr__(self, "price", price)

    def to_fields(self) -> dict[str, Any]:
        """The stored (and synced) fields."""
        return {
            "title": self.title,
            "description": self.description,
            "price": self.price,
            "label": self.label,
            "photo_url": self.photo_url,
            "payload": self.payload,
            "start_parameter": self.start_parameter,
        }

    @classmethod
    def from_fields(cls, fields: Mapping[str, Any]) -> PaymentStage:
        """Build from stored fields, ignoring unknown ones."""
        return cls(**{k: val for k, val in fields.items() if k in _STORED_FIELDS})


#: The fields a stage stores and syncs (computed once: sync checks every incoming stage).
_STORED_FIELDS = frozenset(f.name for f in dataclasses.fields(PaymentStage)) - {"provider_token"}
#: The fields a stage cannot do without (no default).
_REQUIRED_FIELDS = frozenset(("title", "description", "price"))


def _plain_stage_ok(
    title: Any,
    description: Any,
    price: Any,
    label: Any,
    photo_url: Any,
    payload: Any,
    start_parameter: Any,
    provider_token: Any,
) -> bool:
    """Whether a stage of plain values passes every check of :func:`_check_stage` but the
    store's highest price, tested in one pass (sync checks every stage it receives).
    False says only "look closer": the named checks then find the problem, or accept
    what this test does not know (a photo URL, a start parameter)."""
    if not (
        type(title) is str
        and 0 < len(title) <= v.MAX_TITLE
        and not title.isspace()
        and type(description) is str
        and 0 < len(description) <= v.MAX_DESCRIPTION
        and not description.isspace()
        and type(label) is str
        and 0 < len(label) <= v.MAX_TITLE
        and not label.isspace()
        and type(price) is int
        and price >= 1
        and photo_url is None
        and start_parameter is None
        and not provider_token
        and ((title + description + label).isascii() or _texts_ok(title, description, label))
    ):
        return False
    if payload is None:
        return True
    if type(payload) is str:
        return payload.isascii() and len(payload) <= v.MAX_PAYLOAD_BYTES
    if json_value_problem(payload) is not None:
        return False
    try:
        return len(_json.dumps(payload)) <= v.MAX_PAYLOAD_BYTES
    except (TypeError, ValueError):
        return False


def _texts_ok(*texts: str) -> bool:
    """Whether every one of ``texts`` is storable (see :mod:`neonpay.limits`)."""
    return all(text_problem(text) is None for text in texts)


def _check_stage(
    title: Any,
    description: Any,
    price: Any,
    label: Any,
    photo_url: Any,
    payload: Any,
    start_parameter: Any,
    provider_token: Any,
    max_price: int | None = None,
) -> int:
    """The checks of a :class:`PaymentStage` (its ``__post_init__``); the price.

    ``max_price`` is the store's highest price (None: only the absolute bounds).

    Raises:
        ValidationError: a field breaks a Bot API limit.
    """
    if _plain_stage_ok(
        title, description, price, label, photo_url, payload, start_parameter, provider_token
    ) and (max_price is None or price <= max_price):
        return int(price)
    v.check_text(title, "title", max_len=v.MAX_TITLE, kind=KIND)
    v.check_text(description, "description", max_len=v.MAX_DESCRIPTION, kind=KIND)
    # The upper bound is the store's to set (NeonPay(max_price=...)); a stage on its
    # own (max_price None) is checked against the floor of one Star only.
    checked = v.check_price(price, max_price=max_price, kind=KIND)
    v.check_text(label, "label", max_len=v.MAX_TITLE, kind=KIND)
    v.check_url(photo_url, "photo_url", kind=KIND)
    v.check_payload(payload, kind=KIND)
    v.check_start_parameter(start_parameter, kind=KIND)
    if provider_token:
        raise ValidationError(
            "provider_token",
            "must be empty: Stars invoices use no payment provider",
            kind=KIND,
        )
    return checked


class StageCatalog:
    """Create, read, update and remove payment stages in the store."""

    def __init__(self, catalog: Catalog, *, max_price: int, max_stages: int) -> None:
        self._catalog = catalog
        self.max_price = max_price
        self.max_stages = max_stages

    def validate(self, stage_id: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Check ``fields`` as a whole stage and return them normalized."""
        v.check_id(stage_id, "stage_id", kind=KIND)
        if not fields.keys() >= _REQUIRED_FIELDS:
            PaymentStage.from_fields(fields)  # raises TypeError naming the missing field
        # The same checks as PaymentStage(...).to_fields(), without building the frozen
        # dataclass (sync runs this for every stage it receives).
        normalized = {
            "title": fields["title"],
            "description": fields["description"],
            "price": fields["price"],
            "label": fields.get("label", "Payment"),
            "photo_url": fields.get("photo_url"),
            "payload": fields.get("payload"),
            "start_parameter": fields.get("start_parameter"),
        }
        normalized["price"] = _check_stage(
            normalized["title"],
            normalized["description"],
            normalized["price"],
            normalized["label"],
            normalized["photo_url"],
            normalized["payload"],
            normalized["start_parameter"],
            "",
            self.max_price,
        )
        return normalized

    def create(self, stage_id: str, stage: PaymentStage) -> PaymentStage:
        fields = self.validate(stage_id, stage.to_fields())

        self._catalog.write(KIND, stage_id, lambda old: fields, max_live=self.max_stages)
        return PaymentStage.from_fields(fields)

    def create_many(
        self, stages: Mapping[str, PaymentStage] | Iterable[tuple[str, PaymentStage]]
    ) -> int:
        """Create or replace many stages in one transaction; how many changed.

        Every stage is checked first, as :meth:`create` checks one; then all are written
        together, or none (a bad stage or a full catalog changes nothing).

        Raises:
            ValidationError: a stage breaks a rule (the message names its id), or the
                creates would exceed ``max_stages``.
        """
        # Many small objects that all live until the write: no collector passes meanwhile.
        with collection_paused():
            items = self._checked_items(stages)
            return len(self._catalog.write_many(items, max_live={KIND: self.max_stages}))

    def _checked_items(
        self, stages: Mapping[str, PaymentStage] | Iterable[tuple[str, PaymentStage]]
    ) -> list[tuple[str, str, Mapping[str, Any] | None]]:
        pairs = stages.items() if isinstance(stages, Mapping) else stages
        items: list[tuple[str, str, Mapping[str, Any] | None]] = []
        for pair in pairs:
            if not isinstance(pair, tuple) or len(pair) != 2:
                raise ValidationError("stages", "must be (stage_id, PaymentStage) pairs", kind=KIND)
            stage_id, stage = pair
            if not isinstance(stage, PaymentStage):
                raise ValidationError(
                    "stage", f"{stage_id!r}: must be a PaymentStage, not {type(stage).__name__}"
                )
            try:
                # A PaymentStage checked its fields when it was made (the rules of
                # validate()); what is left is the id and this catalog's highest price.
                v.check_id(stage_id, "stage_id", kind=KIND)
                if stage.price > self.max_price:
                    v.check_price(stage.price, max_price=self.max_price, kind=KIND)
                items.append((KIND, stage_id, stage.to_fields()))
            except ValidationError as exc:
                raise ValidationError(
                    exc.field, f"stage {stage_id!r}: {exc.rule}", kind=KIND
                ) from exc
        return items

    def get(self, stage_id: str) -> PaymentStage | None:
        record = self._catalog.store.get(KIND, stage_id)
        return PaymentStage.from_fields(record.fields) if record else None

    def list(self) -> dict[str, PaymentStage]:
        return {r.key: PaymentStage.from_fields(r.fields) for r in self._catalog.store.list(KIND)}

    def update(self, stage_id: str, **changes: Any) -> PaymentStage:
        allowed = {f.name for f in dataclasses.fields(PaymentStage)} - {"provider_token"}
        unknown = set(changes) - allowed
        if unknown:
            raise ValidationError(
                sorted(unknown)[0],
                f"is not a payment stage field (fields: {sorted(allowed)})",
                kind=KIND,
            )
        result: dict[str, Any] = {}

        def patch(old: Mapping[str, Any] | None) -> Mapping[str, Any]:
            if old is None:
                raise NotFoundError(f"no payment stage {stage_id!r}")
            result.update(self.validate(stage_id, {**old, **changes}))
            return result

        self._catalog.write(KIND, stage_id, patch)
        return PaymentStage.from_fields(result)

    def remove(self, stage_id: str) -> bool:
        return self._catalog.delete(KIND, stage_id)
