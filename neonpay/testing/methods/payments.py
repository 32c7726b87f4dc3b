"""Telegram Stars payment methods."""

from __future__ import annotations

from typing import Any

from .. import stars
from ..errors import bad_request
from ..registry import MethodContext, method
from ..validation import InvoiceSpec, validate_stars_invoice


def _validate(ctx: MethodContext, *, allow_subscription: bool) -> InvoiceSpec:
    config = ctx.core.config
    return validate_stars_invoice(
        ctx.params,
        allow_subscription=allow_subscription,
        max_amount=config.max_star_amount,
        max_subscription_amount=config.max_subscription_amount,
    )


@method("sendInvoice")
async def send_invoice(ctx: MethodContext) -> dict[str, Any]:
    """Post a Stars invoice message to a chat."""
    chat = ctx.core.resolve_chat(ctx.bot, ctx.params.get_chat_id())
    spec = _validate(ctx, allow_subscription=False)
    markup = ctx.params.get_object("reply_markup", what="reply keyboard markup")
    _, message = stars.create_invoice(ctx.core, ctx.bot, spec, chat=chat, reply_markup=markup)
    assert message is not None
    return dict(message)


@method("createInvoiceLink")
async def create_invoice_link(ctx: MethodContext) -> str:
    """Create a Stars invoice link (``subscription_period`` allowed here only)."""
    spec = _validate(ctx, allow_subscription=True)
    record, _ = stars.create_invoice(ctx.core, ctx.bot, spec)
    assert record.link is not None
    return record.link


@method("answerPreCheckoutQuery")
async def answer_pre_checkout_query(ctx: MethodContext) -> bool:
    """Approve or reject a pending checkout before its deadline."""
    params = ctx.params
    query_id = params.get_str("pre_checkout_query_id")
    if not query_id:
        raise bad_request("pre_checkout_query_id is empty")
    if "ok" not in params:
        raise bad_request("ok is empty")
    ok = params.get_bool("ok")
    stars.answer_pre_checkout(ctx.core, ctx.bot, query_id, ok, params.get_str("error_message"))
    return True


@method("answerShippingQuery")
async def answer_shipping_query(ctx: MethodContext) -> bool:
    """Stars invoices never ask for shipping, so every shipping query id is unknown."""
    if not ctx.params.get_str("shipping_query_id"):
        raise bad_request("shipping_query_id is empty")
    raise bad_request("QUERY_ID_INVALID")


@method("refundStarPayment")
async def refund_star_payment(ctx: MethodContext) -> bool:
    """Refund a successful Stars payment."""
    user_id = ctx.params.require_int("user_id")
    charge_id = ctx.params.require_str("telegram_payment_charge_id")
    stars.refund(ctx.core, ctx.bot, user_id, charge_id)
    return True


@method("getStarTransactions")
async def get_star_transactions(ctx: MethodContext) -> dict[str, Any]:
    """The bot's Stars transactions in chronological order (``offset``/``limit``)."""
    offset = ctx.params.get_int("offset") or 0
    limit = ctx.params.get_int("limit") or 100
    return {"transactions": stars.transactions_page(ctx.bot, offset, limit)}


@method("getMyStarBalance")
async def get_my_star_balance(ctx: MethodContext) -> dict[str, Any]:
    """The bot's Stars balance as a ``StarAmount``."""
    return {"amount": ctx.bot.star_balance}


@method("editUserStarSubscription")
async def edit_user_star_subscription(ctx: MethodContext) -> bool:
    """Cancel or re-enable the renewal of a user's subscription."""
    user_id = ctx.params.require_int("user_id")
    charge_id = ctx.params.require_str("telegram_payment_charge_id")
    if "is_canceled" not in ctx.params:
        raise bad_request("is_canceled is empty")
    stars.edit_subscription(ctx.bot, user_id, charge_id, ctx.params.get_bool("is_canceled"))
    return True
