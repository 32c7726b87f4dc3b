"""Checkout decisions and records, free of any bot framework.

Adapters turn their framework's objects into the small shapes below; :class:`Checkout`
decides whether a pre-checkout query may proceed and records successful payments and
refunds in the store. Nothing here sends anything: :mod:`neonpay.core.cashier` does.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from neonpay.core.invoices import (
    STARS_CURRENCY,
    InvalidInvoice,
    InvoiceClaim,
    InvoiceSigner,
    parse_payload,
)
from neonpay.core.payments import Payment, PaymentResult, PaymentStatus
from neonpay.core.quotes import make_quote
from neonpay.errors import NotFoundError, ValidationError
from neonpay.store.base import PaymentRow

if TYPE_CHECKING:
    from neonpay.core.promotions import PromoSystem
    from neonpay.core.stages import StageCatalog
    from neonpay.store.base import Store

__all__ = [
    "Checkout",
    "CheckoutAnswer",
    "PreCheckoutQuery",
    "RefundedPayment",
    "SuccessfulPayment",
]

logger = logging.getLogger("neonpay.checkout")

INTERNAL_ERROR = "Internal error, please try again."
_NOT_VALID = "This invoice is not valid. Please ask the bot for a new one."


@dataclass(frozen=True)
class PreCheckoutQuery:
    """A ``pre_checkout_query`` update: who pays how much for which payload."""

    id: str
    user_id: int
    currency: str
    total_amount: int
    invoice_payload: str


@dataclass(frozen=True)
class SuccessfulPayment:
    """A message with ``successful_payment``: the money has moved."""

    charge_id: str
    user_id: int
    chat_id: int
    currency: str
    total_amount: int
    invoice_payload: str
    provider_charge_id: str = ""
    is_recurring: bool = False
    is_first_recurring: bool = False
    subscription_expiration_date: int | None = None


@dataclass(frozen=True)
class RefundedPayment:
    """A message with ``refunded_payment``: Telegram gave the Stars back."""

    charge_id: str
    user_id: int | None
    currency: str
    total_amount: int
    invoice_payload: str


@dataclass(frozen=True)
class CheckoutAnswer:
    """How to answer a pre-checkout query.

    ``error_message`` is shown to the paying user when ``ok`` is false; ``reason`` is for
    the log.
    """

    ok: bool
    error_message: str | None = None
    reason: str = ""
    claim: InvoiceClaim | None = None

    @classmethod
    def refuse(cls, error_message: str, reason: str) -> CheckoutAnswer:
        return cls(False, error_message, reason)


class Checkout:
    """Pre-checkout decisions and payment records over one store.

    ``signer`` is called for the :class:`~neonpay.core.invoices.InvoiceSigner` (loaded
    lazily from the store's secret).
    """

    def __init__(
        self,
        store: Store,
        stages: StageCatalog,
        promotions: PromoSystem,
        signer: Callable[[], InvoiceSigner],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._stages = stages
        self._promotions = promotions
        self._signer = signer
        self._clock = clock

    # --- pre-checkout ------------------------------------------------------------------------
    def review(self, query: PreCheckoutQuery) -> CheckoutAnswer:
        """Decide a pre-checkout query.

        Approves only when the payload's signature holds for this user and amount, the
        invoice is not stale, the currency is XTR, the stage still exists, the promo code
        (if any) can still be used by this user, and the amount equals the stage's current
        price after the discount. Never raises for a bad query: a refusal says why.

        Raises:
            StorageError: the store failed (the caller answers "internal error").
        """
        try:
            claim = self._signer().verify(
                query.invoice_payload, price=query.total_amount, user_id=query.user_id
            )
        except InvalidInvoice as exc:
            return CheckoutAnswer.refuse(exc.user_message, exc.reason)
        if query.currency != STARS_CURRENCY:
            return CheckoutAnswer.refuse(_NOT_VALID, f"currency {query.currency!r} is not XTR")
        stage = self._stages.get(claim.stage_id)
        if stage is None:
            return CheckoutAnswer.refuse(
                "This product is no longer available.",
                f"payment stage {claim.stage_id!r} does not exist any more",
            )
        try:
            quote = make_quote(
                self._stages,
                self._promotions,
                claim.stage_id,
                promo_code=claim.promo_code,
                user_id=query.user_id,
            )
        except NotFoundError:
            return CheckoutAnswer.refuse(
                f"The promo code {claim.promo_code} no longer exists. "
                "Please ask the bot for a new invoice.",
                f"promo code {claim.promo_code!r} does not exist any more",
            )
        except ValidationError as exc:
            return CheckoutAnswer.refuse(
                f"The promo code can no longer be used: {exc.rule}. "
                "Please ask the bot for a new invoice.",
                f"promo code {claim.promo_code!r}: {exc.rule}",
            )
        if quote.price != query.total_amount:
            return CheckoutAnswer.refuse(
                f"The price has changed: it is now {quote.price} Stars. "
                "Please ask the bot for a new invoice.",
                f"amount {query.total_amount} differs from the current price {quote.price} "
                f"of stage {claim.stage_id!r}",
            )
        return CheckoutAnswer(True, None, "approved", claim)

    # --- successful payments -------------------------------------------------------------
    def record(self, payment: SuccessfulPayment) -> PaymentResult | None:
        """Record a successful payment once per charge id; None when it was known.

        For a new payment this also counts one use of its promo code on this node (not
        for subscription renewals) in the same transaction, and returns the result for
        the callbacks. A use beyond the code's ``max_uses`` (the code was used up after
        the pre-checkout) is recorded all the same, flagged ``promo_over_use`` on the
        payment and in ``metadata``, and logged as a warning. A payload
        whose signature does not hold (which pre-checkout would have refused) is still
        recorded, flagged ``verified: false``, because the money has moved.

        Raises:
            InvalidInvoice: the payload is not NEONPAY's (nothing recorded).
            StorageError: the store failed (nothing recorded; safe to retry).
        """
        verified = True
        try:
            claim = self._signer().verify(
                payment.invoice_payload,
                price=payment.total_amount,
                user_id=payment.user_id,
                check_age=False,
            )
            stage_id, promo_code = claim.stage_id, claim.promo_code
        except InvalidInvoice as exc:
            fields = parse_payload(payment.invoice_payload)  # not ours: raises, nothing stored
            stage_id, promo_code = fields.stage_id, fields.promo_code
            verified = False
            logger.warning(
                "recording payment %s whose invoice does not verify: %s",
                payment.charge_id,
                exc.reason,
            )
        renewal = payment.is_recurring and not payment.is_first_recurring
        extra: dict[str, Any] = {"chat_id": payment.chat_id, "verified": verified}
        if payment.provider_charge_id:
            extra["provider_payment_charge_id"] = payment.provider_charge_id
        if payment.is_recurring:
            extra["is_recurring"] = True
            extra["is_first_recurring"] = payment.is_first_recurring
        if payment.subscription_expiration_date is not None:
            extra["subscription_expiration_date"] = payment.subscription_expiration_date
        at = self._clock()
        row = PaymentRow(
            charge_id=payment.charge_id,
            user_id=payment.user_id,
            stage_id=stage_id,
            amount=payment.total_amount,
            currency=payment.currency,
            promo_code=promo_code,
            payload=payment.invoice_payload,
            created_at=at,
            extra=extra,
        )
        # The promo use is checked and counted in the payment's own transaction: both are
        # recorded or neither, and max_uses holds against every writer of the store.
        consume = None
        if promo_code is not None and not renewal:
            try:
                consume = self._promotions.payment_use(promo_code)
            except ValidationError as exc:  # only in a payload that did not verify
                logger.warning(
                    "payment %s: no use counted for %r: %s", payment.charge_id, promo_code, exc
                )
        recorded = self._store.record_payment(row, consume)
        if recorded is None:
            logger.info("payment %s was already recorded; ignoring it", payment.charge_id)
            return None
        if recorded.records:
            self._promotions.notify(recorded.records)
        over_use = recorded.payment.promo_over_use
        if over_use:
            logger.warning(
                "payment %s used promo code %s beyond its max_uses (it was used up after the "
                "pre-checkout): the payment and the use are recorded as an over-use",
                payment.charge_id,
                promo_code,
            )
        stage = self._stages.get(stage_id)
        metadata: dict[str, Any] = {
            "stage_id": stage_id,
            "promo_code": promo_code,
            "payload": stage.payload if stage is not None else None,
            "invoice_payload": payment.invoice_payload,
            **extra,
        }
        if over_use:
            metadata["promo_over_use"] = True
        return PaymentResult(
            user_id=payment.user_id,
            amount=payment.total_amount,
            currency=payment.currency,
            status=PaymentStatus.COMPLETED,
            stage=stage,
            transaction_id=payment.charge_id,
            timestamp=at,
            metadata=metadata,
            stage_id=stage_id,
            promo_code=promo_code,
        )

    # --- refunds -------------------------------------------------------------------------------
    def record_refund(self, charge_id: str) -> Payment | None:
        """Mark a recorded payment refunded; the payment when this call marked it, None
        when it is unknown or was already marked.

        Raises:
            StorageError: the store failed.
        """
        if not self._store.mark_refunded(charge_id, self._clock()):
            return None
        row = self._store.get_payment(charge_id)
        return Payment.from_row(row) if row else None
