"""Promo codes (``promo_code`` records) and their network-wide usage counters.

How often a code was used is not a field of the code: each node counts its own uses in a
``promo_usage`` record (``{node_id: count}``), and the total is the sum over nodes. Sync
merges those counters by taking each node's maximum, so no use is ever lost to a
conflict. While nodes are cut off from each other, each one enforces ``max_uses`` against
the uses it knows of, so a code can be over-used by at most the uses made elsewhere
since the last sync.

On one store the limit is exact: a payment's use is checked against ``max_uses`` and
counted in the transaction that records the payment (:meth:`PromoSystem.payment_use`).
A payment whose pre-checkout was approved but whose code was used up by the time the
money arrived is still recorded and counted, flagged as an **over-use**: logged as a
warning, counted per code (:attr:`PromoCode.over_uses`) and in ``NeonPay.get_stats()``.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from neonpay.core import validation as v
from neonpay.errors import NotFoundError, ValidationError
from neonpay.limits import MAX_INT
from neonpay.store.base import Consume, PaymentEffects, PaymentRow, Reader, Record

if TYPE_CHECKING:
    from neonpay.core.catalog import Catalog

__all__ = ["KIND", "USAGE_KIND", "DiscountType", "PromoCode", "PromoQuote", "PromoSystem"]

KIND = "promo_code"
USAGE_KIND = "promo_usage"
_MAX_USER_IDS = 10_000

logger = logging.getLogger("neonpay.promotions")


class DiscountType(enum.Enum):
    """How a promo code lowers a price."""

    PERCENTAGE = "percentage"
    FIXED_AMOUNT = "fixed_amount"


@dataclass(frozen=True)
class PromoCode:
    """A promo code. ``code`` is stored upper-case; ``expires_at`` is a Unix time."""

    code: str
    discount_type: DiscountType
    discount_value: int
    max_uses: int | None = None
    expires_at: float | None = None
    min_amount: int | None = None
    allowed_user_ids: tuple[int, ...] | None = None
    description: str = ""
    active: bool = True
    used_count: int = 0
    #: Payments recorded on this node that used the code beyond ``max_uses``.
    over_uses: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "code", normalize_code(self.code))
        kind_of_discount: Any = self.discount_type
        if not isinstance(kind_of_discount, DiscountType):
            try:
                object.__setattr__(self, "discount_type", DiscountType(kind_of_discount))
            except ValueError as exc:
                raise ValidationError(
                    "discount_type", "must be 'percentage' or 'fixed_amount'", kind=KIND
                ) from exc
        if self.discount_type is DiscountType.PERCENTAGE:
            value = v.check_int(self.discount_value, "discount_value", low=1, high=100, kind=KIND)
        else:
            value = v.check_int(
                self.discount_value, "discount_value", low=1, high=v.DEFAULT_MAX_PRICE, kind=KIND
            )
        object.__setattr__(self, "discount_value", value)
        if self.max_uses is not None:
            v.check_int(self.max_uses, "max_uses", low=1, kind=KIND)
        if self.min_amount is not None:
            v.check_int(self.min_amount, "min_amount", low=1, kind=KIND)
        if self.expires_at is not None and (
            isinstance(self.expires_at, bool)
            or not isinstance(self.expires_at, (int, float))
            or not 0 <= self.expires_at <= MAX_INT  # also false for NaN
        ):
            raise ValidationError("expires_at", "must be a Unix timestamp", kind=KIND)
        if self.allowed_user_ids is not None:
            ids = _user_ids(self.allowed_user_ids) or ()
            if len(ids) > _MAX_USER_IDS:
                raise ValidationError(
                    "allowed_user_ids", f"must list at most {_MAX_USER_IDS} users", kind=KIND
                )
            for user_id in ids:
                v.check_int(user_id, "allowed_user_ids", low=1, kind=KIND)
            object.__setattr__(self, "allowed_user_ids", tuple(sorted(set(ids))))
        v.check_text(
            self.description, "description", min_len=0, max_len=v.MAX_DESCRIPTION, kind=KIND
        )
        if not isinstance(self.active, bool):
            raise ValidationError("active", "must be true or false", kind=KIND)

    def to_fields(self) -> dict[str, Any]:
        return {
            "discount_type": self.discount_type.value,
            "discount_value": self.discount_value,
            "max_uses": self.max_uses,
            "expires_at": self.expires_at,
            "min_amount": self.min_amount,
            "allowed_user_ids": (
                None if self.allowed_user_ids is None else list(self.allowed_user_ids)
            ),
            "description": self.description,
            "active": self.active,
        }

    @classmethod
    def from_fields(
        cls, code: str, fields: Mapping[str, Any], used_count: int = 0, over_uses: int = 0
    ) -> PromoCode:
        ids = fields.get("allowed_user_ids")
        return cls(
            code=code,
            discount_type=fields["discount_type"],  # checked in __post_init__
            discount_value=fields["discount_value"],
            max_uses=fields.get("max_uses"),
            expires_at=fields.get("expires_at"),
            min_amount=fields.get("min_amount"),
            allowed_user_ids=_user_ids(ids),
            description=fields.get("description", ""),
            active=fields.get("active", True),
            used_count=used_count,
            over_uses=over_uses,
        )

    def discount_for(self, amount: int) -> int:
        """Stars taken off ``amount`` (the price never drops below 1 Star)."""
        if self.discount_type is DiscountType.PERCENTAGE:
            discount = amount * self.discount_value // 100
        else:
            discount = self.discount_value
        return max(0, min(discount, amount - 1))

    def check(self, user_id: int | None, amount: int, *, now: float | None = None) -> str | None:
        """Why this code cannot be used now, or None when it can."""
        now = time.time() if now is None else now
        if not self.active:
            return f"promo code {self.code} is not active"
        if self.expires_at is not None and now >= self.expires_at:
            return f"promo code {self.code} has expired"
        if self.max_uses is not None and self.used_count >= self.max_uses:
            return f"promo code {self.code} has been used up"
        if self.min_amount is not None and amount < self.min_amount:
            return f"promo code {self.code} needs a price of at least {self.min_amount} Stars"
        if self.allowed_user_ids is not None and user_id not in self.allowed_user_ids:
            return f"promo code {self.code} is not available to this user"
        if self.discount_type is DiscountType.FIXED_AMOUNT and self.discount_value >= amount:
            return f"promo code {self.code} takes off more than the price of {amount} Stars"
        return None


@dataclass(frozen=True)
class PromoQuote:
    """A price with a promo code applied."""

    code: str
    original_price: int
    discount: int
    final_price: int
    promo: PromoCode = field(repr=False)


def normalize_code(code: Any) -> str:
    """Upper-case and check a promo code string."""
    if not isinstance(code, str):
        raise ValidationError("code", "must be a string", kind=KIND)
    text = code.strip().upper()
    if not 3 <= len(text) <= 32 or not all(
        c.isascii() and (c.isalnum() or c in "_-") for c in text
    ):
        raise ValidationError("code", "must be 3-32 characters of A-Z, 0-9, '_' and '-'", kind=KIND)
    return text


class PromoSystem:
    """Promo codes in the store: ``neonpay.promotions``."""

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog

    # --- CRUD -------------------------------------------------------------------------------
    def create_promo_code(
        self,
        code: str,
        discount_type: DiscountType | str = DiscountType.PERCENTAGE,
        discount_value: int = 10,
        max_uses: int | None = None,
        expires_at: float | None = None,
        min_amount: int | None = None,
        allowed_user_ids: Sequence[int] | None = None,
        description: str = "",
        active: bool = True,
    ) -> PromoCode:
        """Create (or replace) a promo code.

        Raises:
            ValidationError: a field breaks a rule; nothing is stored.
        """
        promo = PromoCode(
            code=code,
            discount_type=discount_type,  # type: ignore[arg-type]  # normalized in __post_init__
            discount_value=discount_value,
            max_uses=max_uses,
            expires_at=expires_at,
            min_amount=min_amount,
            allowed_user_ids=_user_ids(allowed_user_ids),
            description=description,
            active=active,
        )
        fields = promo.to_fields()
        self._catalog.write(KIND, promo.code, lambda old: fields)
        return self._with_usage(promo.code, fields)

    def get_promo_code(self, code: str) -> PromoCode | None:
        try:
            key = normalize_code(code)
        except ValidationError:
            return None
        record = self._catalog.store.get(KIND, key)
        return self._with_usage(key, record.fields) if record else None

    def list_promo_codes(self, active_only: bool = False) -> list[PromoCode]:
        store = self._catalog.store
        usage = {r.key: _total(r.fields) for r in store.list(USAGE_KIND)}
        over = store.promo_over_uses()
        codes = [
            PromoCode.from_fields(r.key, r.fields, usage.get(r.key, 0), over.get(r.key, 0))
            for r in store.list(KIND)
        ]
        return [c for c in codes if c.active] if active_only else codes

    def update_promo_code(self, code: str, **changes: Any) -> PromoCode:
        key = normalize_code(code)
        allowed = set(PromoCode("XXX", DiscountType.PERCENTAGE, 1).to_fields())
        unknown = set(changes) - allowed
        if unknown:
            raise ValidationError(
                sorted(unknown)[0],
                f"is not a promo code field (fields: {sorted(allowed)})",
                kind=KIND,
            )
        if isinstance(changes.get("discount_type"), DiscountType):
            changes["discount_type"] = changes["discount_type"].value
        result: dict[str, Any] = {}

        def patch(old: Mapping[str, Any] | None) -> Mapping[str, Any]:
            if old is None:
                raise NotFoundError(f"no promo code {key!r}")
            result.update(PromoCode.from_fields(key, {**old, **changes}).to_fields())
            return result

        self._catalog.write(KIND, key, patch)
        return self._with_usage(key, result)

    def remove_promo_code(self, code: str) -> bool:
        try:
            key = normalize_code(code)
        except ValidationError:
            return False
        return self._catalog.delete(KIND, key)

    delete_promo_code = remove_promo_code

    def deactivate_promo_code(self, code: str) -> bool:
        try:
            self.update_promo_code(code, active=False)
        except NotFoundError:
            return False
        return True

    # --- pricing ---------------------------------------------------------------------------
    def apply(self, code: str, *, amount: int, user_id: int | None = None) -> PromoQuote:
        """The price of ``amount`` Stars with ``code`` applied (no use is counted).

        Raises:
            NotFoundError: no such code.
            ValidationError: the code cannot be used now (expired, used up, ...).
        """
        promo = self.get_promo_code(code)
        if promo is None:
            raise NotFoundError(f"no promo code {code!r}")
        reason = promo.check(user_id, amount)
        if reason is not None:
            raise ValidationError("promo_code", reason, kind=KIND)
        discount = promo.discount_for(amount)
        return PromoQuote(promo.code, amount, discount, amount - discount, promo)

    def validate(
        self, code: str, user_id: int | None, amount: int
    ) -> tuple[bool, str, PromoCode | None]:
        """``(ok, message, promo)``: whether ``code`` can be used for this price now."""
        promo = self.get_promo_code(code)
        if promo is None:
            return False, "Invalid promo code", None
        reason = promo.check(user_id, amount)
        if reason is not None:
            return False, reason, promo
        return True, "Promo code applied successfully", promo

    validate_promo_code = validate

    def apply_promo_code(
        self, code: str, user_id: int, amount: int
    ) -> tuple[bool, int | str, PromoCode | None]:
        """Compatibility with neonpay 2.x: validate, count one use, return the new price."""
        ok, message, promo = self.validate(code, user_id, amount)
        if not ok or promo is None:
            return False, message, None
        self.record_use(promo.code)
        return True, amount - promo.discount_for(amount), self.get_promo_code(promo.code)

    # --- usage -------------------------------------------------------------------------------
    def record_use(self, code: str, count: int = 1) -> int:
        """Count ``count`` uses of ``code`` on this node; returns the network-wide total."""
        key = normalize_code(code)
        count = v.check_int(count, "count", low=1, kind=USAGE_KIND)  # the counter only grows
        store = self._catalog.store

        def bump(old: Mapping[str, Any] | None) -> Mapping[str, Any]:
            node = store.node_id  # read under the store's write lock: the id it writes as
            counts = dict(old or {})
            counts[node] = int(counts.get(node, 0)) + count
            return counts

        record = self._catalog.write(USAGE_KIND, key, bump)
        return _total(record.fields) if record else 0

    def payment_use(self, code: str) -> Consume:
        """The use of ``code`` by a new payment, for :meth:`Store.record_payment`: checked
        against ``max_uses`` and counted on this node in the payment's transaction.

        When the code is used up already (its last uses were taken after this payment's
        pre-checkout), the use is still counted, since the discount was given, and the
        payment is flagged ``promo_over_use``. A code deleted since is counted too.
        """
        key = normalize_code(code)
        node = self._catalog.store.node_id

        def bump(old: Mapping[str, Any] | None) -> Mapping[str, Any]:
            counts = dict(old or {})
            counts[node] = int(counts.get(node, 0)) + 1
            return counts

        def consume(payment: PaymentRow, read: Reader) -> PaymentEffects:
            promo = read(KIND, key)
            max_uses = promo.fields.get("max_uses") if promo is not None else None
            if max_uses is not None:
                usage = read(USAGE_KIND, key)
                used = _total(usage.fields) if usage is not None else 0
                if used >= int(max_uses):
                    payment = dataclasses.replace(payment, promo_over_use=True)
            return PaymentEffects(payment, ((USAGE_KIND, key, bump),))

        return consume

    def notify(self, records: Iterable[Record]) -> None:
        """Tell the catalog's listeners (sync) about usage counters written elsewhere
        (with a payment)."""
        self._catalog.notify_all(records)

    def over_uses(self, code: str) -> int:
        """How many payments recorded here used ``code`` beyond its ``max_uses``."""
        return self._catalog.store.promo_over_uses().get(normalize_code(code), 0)

    def usage(self, code: str) -> int:
        """How often ``code`` was used, over every node this one has heard from."""
        record = self._catalog.store.get(USAGE_KIND, normalize_code(code))
        return _total(record.fields) if record else 0

    def _with_usage(self, key: str, fields: Mapping[str, Any]) -> PromoCode:
        return PromoCode.from_fields(key, fields, self.usage(key), self.over_uses(key))


def _user_ids(value: Any) -> tuple[int, ...] | None:
    """``allowed_user_ids`` as a tuple (None stays None); anything but a list is refused."""
    if value is None:
        return None
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        raise ValidationError("allowed_user_ids", "must be a list of Telegram user ids", kind=KIND)
    return tuple(value)


def _total(counts: Mapping[str, Any]) -> int:
    return sum(int(c) for c in counts.values())
