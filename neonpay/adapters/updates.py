"""Framework objects (or Bot API JSON) to the core's checkout shapes.

aiogram, python-telegram-bot, pyTelegramBotAPI and Pyrogram all name the payment fields
as the Bot API does (``from_user`` for ``from``), so one reader serves them, and the same
reader accepts the raw JSON dicts of :mod:`neonpay.adapters.raw`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from neonpay.core.checkout import PreCheckoutQuery, RefundedPayment, SuccessfulPayment
from neonpay.core.invoices import is_neonpay_payload

__all__ = [
    "is_ours",
    "payload_text",
    "read_pre_checkout",
    "read_refunded_payment",
    "read_successful_payment",
]


def _field(obj: Any, name: str) -> Any:
    if isinstance(obj, Mapping):
        if name == "from_user":
            return obj.get("from")
        return obj.get(name)
    return getattr(obj, name, None)


def _required(obj: Any, name: str) -> Any:
    value = _field(obj, name)
    if value is None:
        raise ValueError(f"the update has no {name}")
    return value


def payload_text(payload: Any) -> str:
    """An invoice payload as text (Pyrogram may hand over bytes)."""
    if isinstance(payload, bytes):
        return payload.decode(errors="replace")
    return str(payload)


def _timestamp(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return int(value.timestamp())
    return int(value)


def is_ours(obj: Any) -> bool:
    """Whether a pre-checkout query or payment carries a NEONPAY invoice payload."""
    return is_neonpay_payload(_field(obj, "invoice_payload"))


def read_pre_checkout(query: Any) -> PreCheckoutQuery:
    """Read a ``PreCheckoutQuery`` object or dict.

    Raises:
        ValueError: a field is missing.
    """
    return PreCheckoutQuery(
        id=str(_required(query, "id")),
        user_id=int(_required(_required(query, "from_user"), "id")),
        currency=str(_required(query, "currency")),
        total_amount=int(_required(query, "total_amount")),
        invoice_payload=payload_text(_required(query, "invoice_payload")),
    )


def read_successful_payment(message: Any) -> SuccessfulPayment:
    """Read a ``Message`` (object or dict) that carries ``successful_payment``.

    Raises:
        ValueError: a field is missing.
    """
    payment = _required(message, "successful_payment")
    user = _required(message, "from_user")
    chat = _field(message, "chat")
    user_id = int(_required(user, "id"))
    return SuccessfulPayment(
        charge_id=str(_required(payment, "telegram_payment_charge_id")),
        user_id=user_id,
        chat_id=int(_required(chat, "id")) if chat is not None else user_id,
        currency=str(_required(payment, "currency")),
        total_amount=int(_required(payment, "total_amount")),
        invoice_payload=payload_text(_required(payment, "invoice_payload")),
        provider_charge_id=str(_field(payment, "provider_payment_charge_id") or ""),
        is_recurring=bool(_field(payment, "is_recurring")),
        is_first_recurring=bool(_field(payment, "is_first_recurring")),
        subscription_expiration_date=_timestamp(_field(payment, "subscription_expiration_date")),
    )


def read_refunded_payment(message: Any) -> RefundedPayment:
    """Read a ``Message`` (object or dict) that carries ``refunded_payment``.

    Raises:
        ValueError: a field is missing.
    """
    refund = _required(message, "refunded_payment")
    user = _field(message, "from_user")
    user_id = _field(user, "id") if user is not None else None
    return RefundedPayment(
        charge_id=str(_required(refund, "telegram_payment_charge_id")),
        user_id=int(user_id) if user_id is not None else None,
        currency=str(_required(refund, "currency")),
        total_amount=int(_required(refund, "total_amount")),
        invoice_payload=payload_text(_field(refund, "invoice_payload") or ""),
    )
