"""What a payment stage costs now, for one user, with an optional promo code.

The same quote is made when an invoice is issued and again at pre-checkout, so a price
or promo change in between is caught before any money moves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from neonpay.errors import NotFoundError, ValidationError

if TYPE_CHECKING:
    from neonpay.core.promotions import PromoSystem
    from neonpay.core.stages import PaymentStage, StageCatalog

__all__ = ["Quote", "make_quote"]


@dataclass(frozen=True)
class Quote:
    """A stage's current price in whole Stars, after the promo discount if any."""

    stage_id: str
    stage: PaymentStage
    price: int
    promo_code: str | None = None
    discount: int = 0

    @property
    def list_price(self) -> int:
        """The stage's price before the discount."""
        return self.price + self.discount


def make_quote(
    stages: StageCatalog,
    promotions: PromoSystem,
    stage_id: str,
    *,
    promo_code: str | None = None,
    user_id: int | None = None,
) -> Quote:
    """Price ``stage_id`` for ``user_id`` now (no promo use is counted).

    Raises:
        NotFoundError: no such stage, or no such promo code.
        ValidationError: the promo code cannot be used now (expired, used up, not for
            this user, below its minimum amount...); ``rule`` says why.
    """
    stage = stages.get(stage_id)
    if stage is None:
        raise NotFoundError(f"no payment stage {stage_id!r}")
    if promo_code is None:
        return Quote(stage_id, stage, stage.price)
    quote = promotions.apply(promo_code, amount=stage.price, user_id=user_id)
    if quote.final_price < 1:  # pragma: no cover - PromoCode keeps at least 1 Star
        raise ValidationError("promo_code", "would make the price zero", kind="promo_code")
    return Quote(stage_id, stage, quote.final_price, quote.code, quote.discount)
