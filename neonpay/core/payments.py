"""Payments as the bot sees them: callback results and the recorded history.

* :class:`PaymentResult` and :class:`PaymentStatus`: what ``on_payment`` callbacks receive
  (the names of neonpay 2.x).
* :class:`Payment`: one recorded successful payment; :class:`PaymentHistory`
  (``neonpay.payments``) lists them and sums them up per stage, promo code or day.

Payments are node-local: each bot records the payments it received, and they are not
synced to peers.
"""

from __future__ import annotations

import builtins
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Literal

from neonpay.errors import ValidationError

if TYPE_CHECKING:
    from neonpay.core.stages import PaymentStage
    from neonpay.store.base import PaymentRow, Store

__all__ = [
    "Payment",
    "PaymentHistory",
    "PaymentResult",
    "PaymentStatus",
    "PaymentTotal",
    "TotalsBy",
]

#: How :meth:`PaymentHistory.totals` groups payments.
TotalsBy = Literal["stage", "promo_code", "day"]


class PaymentStatus(enum.Enum):
    """The state of a payment (the values of neonpay 2.x)."""

    PENDING = "pending"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    FAILED = "failed"
    REFUNDED = "refunded"


@dataclass(frozen=True)
class PaymentResult:
    """What ``on_payment`` (and ``on_refund``) callbacks receive.

    ``transaction_id`` is Telegram's ``telegram_payment_charge_id``; ``amount`` is in whole
    Stars. ``stage`` is the stage as it is now (None if it was deleted since).
    ``metadata`` holds ``stage_id``, ``promo_code``, ``payload`` (the stage's own payload
    field), ``invoice_payload``, ``chat_id`` and, for subscriptions,
    ``subscription_expiration_date``, ``is_recurring`` and ``is_first_recurring``.
    """

    user_id: int
    amount: int
    currency: str = "XTR"
    status: PaymentStatus = PaymentStatus.COMPLETED
    stage: PaymentStage | None = None
    transaction_id: str | None = None
    timestamp: float | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    stage_id: str | None = None
    promo_code: str | None = None


@dataclass(frozen=True)
class Payment:
    """One successful payment recorded by this bot."""

    charge_id: str
    user_id: int
    stage_id: str
    amount: int
    created_at: float
    currency: str = "XTR"
    promo_code: str | None = None
    refunded_at: float | None = None
    node_id: str = ""
    invoice_payload: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)
    #: The promo code was used beyond its ``max_uses`` (the last uses were taken between
    #: this payment's pre-checkout and the payment itself).
    promo_over_use: bool = False

    @property
    def refunded(self) -> bool:
        """Whether the payment was refunded."""
        return self.refunded_at is not None

    @property
    def paid_at(self) -> datetime:
        """``created_at`` as an aware UTC datetime."""
        return datetime.fromtimestamp(self.created_at, tz=timezone.utc)

    @classmethod
    def from_row(cls, row: PaymentRow) -> Payment:
        """Build from the store's row."""
        return cls(
            charge_id=row.charge_id,
            user_id=row.user_id,
            stage_id=row.stage_id,
            amount=row.amount,
            created_at=row.created_at,
            currency=row.currency,
            promo_code=row.promo_code,
            refunded_at=row.refunded_at,
            node_id=row.node_id,
            invoice_payload=row.payload,
            extra=dict(row.extra),
            promo_over_use=row.promo_over_use,
        )


@dataclass(frozen=True)
class PaymentTotal:
    """Payments of one group: how many, how many Stars, and how much was refunded."""

    key: str | None
    count: int = 0
    amount: int = 0
    refunded: int = 0
    refunded_amount: int = 0

    @property
    def net_amount(self) -> int:
        """Stars kept: ``amount`` minus ``refunded_amount``."""
        return self.amount - self.refunded_amount


def _day(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).strftime("%Y-%m-%d")


class PaymentHistory:
    """The payments this bot recorded: ``neonpay.payments``."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def get(self, charge_id: str) -> Payment | None:
        """One payment by ``telegram_payment_charge_id``, or None."""
        row = self._store.get_payment(charge_id)
        return Payment.from_row(row) if row else None

    def list(
        self,
        user_id: int | None = None,
        stage_id: str | None = None,
        since: float | datetime | None = None,
        until: float | datetime | None = None,
        limit: int | None = None,
    ) -> builtins.list[Payment]:
        """Recorded payments, oldest first.

        ``since`` is inclusive and ``until`` exclusive (Unix times or aware datetimes).

        Raises:
            ValidationError: ``limit`` is not a positive whole number.
            StorageError: the store failed.
        """
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)):
            raise ValidationError("limit", "must be a whole number")
        if limit is not None and limit < 1:
            raise ValidationError("limit", "must be at least 1")
        rows = self._store.list_payments(
            user_id=user_id,
            stage_id=stage_id,
            since=_timestamp(since),
            until=_timestamp(until),
            limit=limit,
        )
        return [Payment.from_row(row) for row in rows]

    def totals(
        self,
        by: TotalsBy = "stage",
        *,
        user_id: int | None = None,
        stage_id: str | None = None,
        since: float | datetime | None = None,
        until: float | datetime | None = None,
    ) -> dict[str | None, PaymentTotal]:
        """Sum payments per stage id, per promo code (None: no code) or per UTC day
        (``YYYY-MM-DD``), in key order.

        Raises:
            ValidationError: ``by`` is not ``stage``, ``promo_code`` or ``day``.
            StorageError: the store failed.
        """
        if by not in ("stage", "promo_code", "day"):
            raise ValidationError("by", "must be 'stage', 'promo_code' or 'day'")
        groups: dict[str | None, PaymentTotal] = {}
        for payment in self.list(user_id=user_id, stage_id=stage_id, since=since, until=until):
            if by == "stage":
                key: str | None = payment.stage_id
            elif by == "promo_code":
                key = payment.promo_code
            else:
                key = _day(payment.created_at)
            old = groups.get(key) or PaymentTotal(key)
            groups[key] = PaymentTotal(
                key,
                count=old.count + 1,
                amount=old.amount + payment.amount,
                refunded=old.refunded + (1 if payment.refunded else 0),
                refunded_amount=old.refunded_amount + (payment.amount if payment.refunded else 0),
            )
        return dict(sorted(groups.items(), key=lambda item: (item[0] is not None, item[0] or "")))


def _timestamp(value: float | datetime | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValidationError("since/until", "a datetime must carry its time zone")
        return value.timestamp()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValidationError("since/until", "must be a Unix time or an aware datetime")
    return float(value)
