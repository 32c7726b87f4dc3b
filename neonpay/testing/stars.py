"""The Telegram Stars payment engine: invoices, checkout, charges, refunds, ledger.

Shared by the Bot API method handlers (``sendInvoice``, ``answerPreCheckoutQuery``,
``refundStarPayment``...) and by the simulated user (:meth:`BotAPIEmulator.pay`).
"""

from __future__ import annotations

import asyncio
from typing import Any

from .core import EmulatorCore
from .errors import bad_request
from .state import (
    BotState,
    ChargeRecord,
    ChatState,
    InvoiceRecord,
    PaymentResult,
    PreCheckoutRecord,
)
from .validation import InvoiceSpec

__all__ = [
    "answer_pre_checkout",
    "create_invoice",
    "edit_subscription",
    "pay",
    "refund",
    "renew_subscription",
    "transactions_page",
]

TOO_OLD = "query is too old and response timeout expired or query ID is invalid"


def create_invoice(
    core: EmulatorCore,
    bot: BotState,
    spec: InvoiceSpec,
    *,
    chat: ChatState | None = None,
    reply_markup: dict[str, Any] | None = None,
) -> tuple[InvoiceRecord, dict[str, Any] | None]:
    """Store an invoice; with ``chat`` also post the invoice message (``sendInvoice``)."""
    key = core.token_id("", 12)
    record = InvoiceRecord(
        key=key,
        bot_id=bot.id,
        title=spec.title,
        description=spec.description,
        payload=spec.payload,
        currency=spec.currency,
        amount=spec.amount,
        label=spec.label,
        start_parameter=spec.start_parameter,
        subscription_period=spec.subscription_period,
        photo_url=spec.photo_url,
        date=core.now(),
    )
    message: dict[str, Any] | None = None
    if chat is None:
        record.link = f"https://t.me/${key}"
    else:
        content: dict[str, Any] = {
            "invoice": {
                "title": spec.title,
                "description": spec.description,
                "start_parameter": spec.start_parameter,
                "currency": spec.currency,
                "total_amount": spec.amount,
            }
        }
        if reply_markup is not None and "inline_keyboard" in reply_markup:
            content["reply_markup"] = reply_markup
        message = core.store_message(bot, chat, bot.user_dict(), content)
        record.chat_id = chat.id
        record.message_id = int(message["message_id"])
    core.invoices[key] = record
    return record, message


def _payment_chat(
    core: EmulatorCore, bot: BotState, invoice: InvoiceRecord, user_id: int
) -> ChatState:
    if invoice.chat_id is not None:
        chat = bot.chats.get(invoice.chat_id)
        if chat is not None and (chat.type != "private" or chat.id == user_id):
            return chat
    return core.private_chat(bot, user_id)


def _user_partner(core: EmulatorCore, user_id: int, invoice: InvoiceRecord) -> dict[str, Any]:
    partner: dict[str, Any] = {
        "type": "user",
        "transaction_type": "invoice_payment",
        "user": core.user(user_id).to_dict(),
        "invoice_payload": invoice.payload,
    }
    if invoice.subscription_period is not None:
        partner["subscription_period"] = invoice.subscription_period
    return partner


def _charge(
    core: EmulatorCore,
    bot: BotState,
    invoice: InvoiceRecord,
    user_id: int,
    *,
    first_recurring: bool,
) -> tuple[ChargeRecord, dict[str, Any], dict[str, Any] | None]:
    """Credit the bot, record the transaction and send the successful_payment message."""
    now = core.now()
    charge_id = core.token_id("stx", 32)
    chat = _payment_chat(core, bot, invoice, user_id)
    successful: dict[str, Any] = {
        "currency": invoice.currency,
        "total_amount": invoice.amount,
        "invoice_payload": invoice.payload,
        "telegram_payment_charge_id": charge_id,
        "provider_payment_charge_id": "",
    }
    expiration: int | None = None
    if invoice.subscription_period is not None:
        expiration = now + invoice.subscription_period
        successful["subscription_expiration_date"] = expiration
        successful["is_recurring"] = True
        successful["is_first_recurring"] = first_recurring
    charge = ChargeRecord(
        charge_id=charge_id,
        bot_id=bot.id,
        user_id=user_id,
        chat_id=chat.id,
        amount=invoice.amount,
        currency=invoice.currency,
        payload=invoice.payload,
        invoice=invoice,
        date=now,
        subscription_expiration_date=expiration,
    )
    bot.charges[charge_id] = charge
    bot.star_balance += invoice.amount
    bot.transactions.append(
        {
            "id": charge_id,
            "amount": invoice.amount,
            "date": now,
            "source": _user_partner(core, user_id, invoice),
        }
    )
    message = core.store_message(
        bot, chat, core.user(user_id).to_dict(), {"successful_payment": successful}
    )
    update = core.push_update(bot, "message", message)
    return charge, message, update


async def pay(
    core: EmulatorCore,
    bot: BotState,
    user_id: int,
    invoice: InvoiceRecord,
    *,
    timeout: float | None = None,
) -> PaymentResult:
    """Run the checkout of ``invoice`` by ``user_id`` (see :meth:`BotAPIEmulator.pay`)."""
    if invoice.bot_id != bot.id:
        raise ValueError("the invoice belongs to another bot")
    wait = core.config.precheckout_timeout if timeout is None else timeout
    loop = asyncio.get_running_loop()
    waiter: asyncio.Future[tuple[bool, str | None]] = loop.create_future()
    record = PreCheckoutRecord(
        id=core.numeric_id(),
        bot_id=bot.id,
        user_id=user_id,
        invoice=invoice,
        deadline=loop.time() + wait,
        waiter=waiter,
    )
    core.precheckouts[record.id] = record
    query: dict[str, Any] = {
        "id": record.id,
        "from": core.user(user_id).to_dict(),
        "currency": invoice.currency,
        "total_amount": invoice.amount,
        "invoice_payload": invoice.payload,
    }
    result = PaymentResult(approved=False, invoice=invoice, pre_checkout_query=query)
    update = core.push_update(bot, "pre_checkout_query", query)
    if update is not None:
        result.updates.append(update)
    try:
        ok, error_message = await asyncio.wait_for(waiter, wait)
    except asyncio.TimeoutError:
        record.expired = True
        result.timed_out = True
        result.error_message = "pre-checkout query was not answered in time"
        return result
    if not ok:
        result.error_message = error_message
        return result
    charge, message, payment_update = _charge(core, bot, invoice, user_id, first_recurring=True)
    result.approved = True
    result.charge_id = charge.charge_id
    result.message = message
    result.successful_payment = dict(message["successful_payment"])
    if payment_update is not None:
        result.updates.append(payment_update)
    return result


def answer_pre_checkout(
    core: EmulatorCore, bot: BotState, query_id: str, ok: bool, error_message: str | None
) -> None:
    """``answerPreCheckoutQuery``: resolve the waiting checkout or raise a 400."""
    record = core.precheckouts.get(query_id)
    if record is None or record.bot_id != bot.id:
        raise bad_request("QUERY_ID_INVALID")
    if not ok and not (error_message and error_message.strip()):
        raise bad_request("error_message is empty")
    if record.answered:
        raise bad_request("QUERY_ALREADY_ANSWERED")
    loop = asyncio.get_running_loop()
    waiter = record.waiter
    if record.expired or loop.time() > record.deadline or waiter is None or waiter.done():
        record.expired = True
        raise bad_request(TOO_OLD)
    record.answered = True
    record.ok = ok
    record.error_message = None if ok else error_message
    waiter.set_result((ok, record.error_message))


def refund(core: EmulatorCore, bot: BotState, user_id: int, charge_id: str) -> dict[str, Any]:
    """Refund a charge; returns the ``refunded_payment`` message sent to the bot."""
    charge = bot.charges.get(charge_id)
    if charge is None or charge.user_id != user_id:
        raise bad_request("CHARGE_NOT_FOUND")
    if charge.refunded:
        raise bad_request("CHARGE_ALREADY_REFUNDED")
    if bot.star_balance < charge.amount:
        raise bad_request("BALANCE_TOO_LOW")
    now = core.now()
    charge.refunded = True
    charge.refund_date = now
    bot.star_balance -= charge.amount
    bot.transactions.append(
        {
            "id": charge.charge_id,
            "amount": charge.amount,
            "date": now,
            "receiver": _user_partner(core, user_id, charge.invoice),
        }
    )
    refunded = {
        "currency": charge.currency,
        "total_amount": charge.amount,
        "invoice_payload": charge.payload,
        "telegram_payment_charge_id": charge.charge_id,
    }
    chat = core.private_chat(bot, user_id)
    message = core.store_message(
        bot, chat, core.user(user_id).to_dict(), {"refunded_payment": refunded}
    )
    core.push_update(bot, "message", message)
    return message


def edit_subscription(bot: BotState, user_id: int, charge_id: str, is_canceled: bool) -> None:
    """``editUserStarSubscription``: cancel or re-enable a subscription's renewal."""
    charge = bot.charges.get(charge_id)
    if charge is None or charge.user_id != user_id:
        raise bad_request("CHARGE_NOT_FOUND")
    if charge.invoice.subscription_period is None:
        raise bad_request("SUBSCRIPTION_ID_INVALID")
    charge.subscription_canceled = is_canceled


def renew_subscription(
    core: EmulatorCore, bot: BotState, charge_id: str
) -> tuple[ChargeRecord, dict[str, Any]]:
    """Charge the next period of a subscription (no pre-checkout query, like Telegram)."""
    charge = bot.charges.get(charge_id)
    if charge is None or charge.invoice.subscription_period is None:
        raise ValueError(f"no subscription charge {charge_id!r}")
    if charge.subscription_canceled:
        raise ValueError("the subscription was canceled")
    new_charge, message, _ = _charge(
        core, bot, charge.invoice, charge.user_id, first_recurring=False
    )
    return new_charge, message


def transactions_page(bot: BotState, offset: int, limit: int) -> list[dict[str, Any]]:
    """``getStarTransactions``: transactions in chronological order."""
    offset = max(offset, 0)
    limit = min(max(limit, 1), 100)
    return [dict(t) for t in bot.transactions[offset : offset + limit]]
