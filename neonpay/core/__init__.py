"""The domain: payment stages, promo codes, templates, settings and the NeonPay facade."""

from __future__ import annotations

from neonpay.core.factory import create_neonpay
from neonpay.core.gateway import BotAPIError, BotLibrary
from neonpay.core.neonpay import NeonPay, NeonPayCore
from neonpay.core.payments import (
    Payment,
    PaymentHistory,
    PaymentResult,
    PaymentStatus,
    PaymentTotal,
)
from neonpay.core.promotions import DiscountType, PromoCode, PromoQuote, PromoSystem
from neonpay.core.settings import SettingsManager
from neonpay.core.stages import PaymentStage
from neonpay.core.templates import Template, TemplateCategory, TemplateManager, TemplateProduct

__all__ = [
    "BotAPIError",
    "BotLibrary",
    "DiscountType",
    "NeonPay",
    "NeonPayCore",
    "Payment",
    "PaymentHistory",
    "PaymentResult",
    "PaymentStage",
    "PaymentStatus",
    "PaymentTotal",
    "PromoCode",
    "PromoQuote",
    "PromoSystem",
    "SettingsManager",
    "Template",
    "TemplateCategory",
    "TemplateManager",
    "TemplateProduct",
    "create_neonpay",
]
