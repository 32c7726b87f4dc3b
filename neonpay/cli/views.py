"""Catalog records as plain dicts with stable keys: the rows of tables and of ``--json``."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from neonpay.core import DiscountType, PaymentStage, PromoCode, Template

__all__ = [
    "PROMO_COLUMNS",
    "STAGE_COLUMNS",
    "format_time",
    "promo_row",
    "promo_state",
    "promo_view",
    "stage_view",
    "template_view",
]

STAGE_COLUMNS = [
    ("id", "ID"),
    ("title", "Title"),
    ("price", "Price (Stars)"),
    ("label", "Label"),
    ("description", "Description"),
]

PROMO_COLUMNS = [
    ("code", "Code"),
    ("discount", "Discount"),
    ("uses", "Uses"),
    ("expires", "Expires"),
    ("state", "Active"),
    ("description", "Description"),
]


def stage_view(stage_id: str, stage: PaymentStage) -> dict[str, Any]:
    """A payment stage: ``id`` plus its fields."""
    return {"id": stage_id, **stage.to_fields()}


def promo_view(promo: PromoCode) -> dict[str, Any]:
    """A promo code: ``code``, its fields, ``used_count`` (network-wide uses) and
    ``over_uses`` (payments recorded here that used it beyond ``max_uses``) and ``state``
    (see :func:`promo_state`)."""
    return {
        "code": promo.code,
        **promo.to_fields(),
        "used_count": promo.used_count,
        "over_uses": promo.over_uses,
        "state": promo_state(promo),
    }


def promo_row(promo: PromoCode) -> dict[str, Any]:
    """:func:`promo_view` plus the texts a table shows (discount, uses, expiry)."""
    if promo.discount_type is DiscountType.PERCENTAGE:
        discount = f"{promo.discount_value}%"
    else:
        discount = f"{promo.discount_value} Stars"
    uses = f"{promo.used_count}/{promo.max_uses}" if promo.max_uses else str(promo.used_count)
    if promo.over_uses:
        uses += f" ({promo.over_uses} over the limit)"
    return {
        **promo_view(promo),
        "discount": discount,
        "uses": uses,
        "expires": format_time(promo.expires_at),
    }


def promo_state(promo: PromoCode, now: float | None = None) -> str:
    """Whether a promo code can be used now: ``yes``, ``no`` (switched off), ``expired``
    or ``used up`` (a code switched on but past its expiry is not shown as active)."""
    if not promo.active:
        return "no"
    if promo.expires_at is not None and promo.expires_at <= (time.time() if now is None else now):
        return "expired"
    if promo.max_uses is not None and promo.used_count >= promo.max_uses:
        return "used up"
    return "yes"


def template_view(template: Template) -> dict[str, Any]:
    """A template: ``name`` plus its fields."""
    return {"name": template.name, **template.to_fields()}


def format_time(timestamp: float | None) -> str | None:
    """A Unix time as ``YYYY-MM-DD HH:MM:SS UTC`` (None stays None)."""
    if timestamp is None:
        return None
    moment = dt.datetime.fromtimestamp(timestamp, tz=dt.timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")
