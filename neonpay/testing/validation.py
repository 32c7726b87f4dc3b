"""Telegram Stars invoice rules for ``sendInvoice`` and ``createInvoiceLink``.

Checked in this order, each failure a 400 with a Telegram-style description:

==========================================  ==============================================
rule                                        description
==========================================  ==============================================
title is 1-32 characters                    ``Bad Request: TITLE_INVALID``
description is 1-255 characters             ``Bad Request: DESCRIPTION_INVALID``
payload is 1-128 bytes (UTF-8)              ``Bad Request: INVOICE_PAYLOAD_INVALID``
provider_token empty or absent              ``Bad Request: PAYMENT_PROVIDER_INVALID``
currency is ``XTR``                         ``Bad Request: CURRENCY_INVALID``
prices is a JSON array of LabeledPrice      ``Bad Request: can't parse prices JSON object``
exactly one price                           ``Bad Request: STARS_INVOICE_INVALID``
price label is non-empty                    ``Bad Request: LABEL_INVALID``
amount is an integer in 1..max_star_amount  ``Bad Request: CURRENCY_TOTAL_AMOUNT_INVALID``
no ``max_tip_amount`` (> 0)                 ``Bad Request: MAX_TIP_AMOUNT_INVALID``
no ``suggested_tip_amounts``                ``Bad Request: SUGGESTED_TIP_AMOUNTS_INVALID``
``subscription_period`` only on links       ``Bad Request: SUBSCRIPTION_PERIOD_INVALID``
... and equal to 2592000 (30 days)          ``Bad Request: SUBSCRIPTION_PERIOD_INVALID``
subscription amount at most 10000           ``Bad Request: SUBSCRIPTION_PRICE_INVALID``
==========================================  ==============================================

``max_star_amount`` defaults to 100000 on the emulator (generous; configurable). The
subscription cap of 10000 Stars is the one the Bot API documents.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import ApiError, bad_request
from .params import Params

__all__ = [
    "MAX_SUBSCRIPTION_AMOUNT",
    "STARS_CURRENCY",
    "SUBSCRIPTION_PERIOD",
    "InvoiceSpec",
    "validate_stars_invoice",
]

STARS_CURRENCY = "XTR"
#: The only subscription period the Bot API accepts (30 days).
SUBSCRIPTION_PERIOD = 2_592_000
#: Documented cap for the price of a Stars subscription.
MAX_SUBSCRIPTION_AMOUNT = 10_000

MAX_TITLE = 32
MAX_DESCRIPTION = 255
MAX_PAYLOAD_BYTES = 128


@dataclass(frozen=True)
class InvoiceSpec:
    """A validated Stars invoice."""

    title: str
    description: str
    payload: str
    currency: str
    label: str
    amount: int
    start_parameter: str
    subscription_period: int | None
    photo_url: str | None


def _check_text(value: str | None, limit: int, code: str) -> str:
    if value is None or not value.strip() or len(value) > limit:
        raise bad_request(code)
    return value


def _amount(raw: Any, max_amount: int) -> int:
    if isinstance(raw, bool):
        raise bad_request("CURRENCY_TOTAL_AMOUNT_INVALID")
    if isinstance(raw, str) and raw.strip().lstrip("-").isdigit():
        raw = int(raw.strip())
    if isinstance(raw, float) and raw.is_integer():
        raw = int(raw)
    if not isinstance(raw, int) or raw <= 0 or raw > max_amount:
        raise bad_request("CURRENCY_TOTAL_AMOUNT_INVALID")
    return raw


def _single_price(params: Params, max_amount: int) -> tuple[str, int]:
    prices = params.get_json("prices", what="prices")
    if not isinstance(prices, list):
        raise bad_request("can't parse prices JSON object")
    for item in prices:
        if not isinstance(item, dict) or "amount" not in item:
            raise bad_request("can't parse prices JSON object")
    if len(prices) != 1:
        raise bad_request("STARS_INVOICE_INVALID")
    label = prices[0].get("label")
    if not isinstance(label, str) or not label.strip():
        raise bad_request("LABEL_INVALID")
    return label, _amount(prices[0]["amount"], max_amount)


def _check_tips(params: Params) -> None:
    max_tip = params.get_int("max_tip_amount")
    if max_tip is not None and max_tip != 0:
        raise bad_request("MAX_TIP_AMOUNT_INVALID")
    if params.present("suggested_tip_amounts"):
        tips = params.get_json("suggested_tip_amounts", what="suggested tip amounts")
        if tips != []:
            raise bad_request("SUGGESTED_TIP_AMOUNTS_INVALID")


def validate_stars_invoice(
    params: Params,
    *,
    allow_subscription: bool,
    max_amount: int,
    max_subscription_amount: int = MAX_SUBSCRIPTION_AMOUNT,
) -> InvoiceSpec:
    """Validate invoice parameters against the Stars rules; raise a 400 on the first break.

    ``allow_subscription`` is true for ``createInvoiceLink`` only.
    """
    title = _check_text(params.get_str("title"), MAX_TITLE, "TITLE_INVALID")
    description = _check_text(params.get_str("description"), MAX_DESCRIPTION, "DESCRIPTION_INVALID")
    payload = params.get_str("payload")
    if not payload or len(payload.encode("utf-8")) > MAX_PAYLOAD_BYTES:
        raise bad_request("INVOICE_PAYLOAD_INVALID")
    if params.present("provider_token"):
        raise bad_request("PAYMENT_PROVIDER_INVALID")
    currency = params.get_str("currency")
    if currency != STARS_CURRENCY:
        raise bad_request("CURRENCY_INVALID")
    label, amount = _single_price(params, max_amount)
    _check_tips(params)
    period: int | None = None
    if params.present("subscription_period"):
        if not allow_subscription:
            raise bad_request("SUBSCRIPTION_PERIOD_INVALID")
        try:
            period = params.get_int("subscription_period")
        except ApiError:
            period = None
        if period != SUBSCRIPTION_PERIOD:
            raise bad_request("SUBSCRIPTION_PERIOD_INVALID")
        if amount > max_subscription_amount:
            raise bad_request("SUBSCRIPTION_PRICE_INVALID")
    for name in ("photo_size", "photo_width", "photo_height"):
        params.get_int(name)
    return InvoiceSpec(
        title=title,
        description=description,
        payload=payload,
        currency=currency,
        label=label,
        amount=amount,
        start_parameter=params.get_str("start_parameter") or "",
        subscription_period=period,
        photo_url=params.get_str("photo_url"),
    )
