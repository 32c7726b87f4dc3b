"""The Stars payment flow against a bot made of raw HTTP calls."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from neonpay.testing import ApiError, BotAPIEmulator

from .helpers import (
    OTHER_TOKEN,
    USER_ID,
    answer_next_checkout,
    call,
    invoice_params,
    next_update,
)


async def _send_invoice(
    http: aiohttp.ClientSession, emu: BotAPIEmulator, amount: int = 5, payload: str = "order-1"
) -> dict[str, object]:
    status, body = await call(
        http,
        emu,
        "sendInvoice",
        **invoice_params(payload=payload, prices=[{"label": "x", "amount": amount}]),
    )
    assert status == 200, body
    message: dict[str, object] = body["result"]
    return message


@pytest.mark.asyncio
async def test_approved_payment_credits_and_records(
    emu: BotAPIEmulator, http: aiohttp.ClientSession
) -> None:
    invoice = await _send_invoice(http, emu, amount=5)
    result, (status, body) = await asyncio.gather(
        emu.pay(USER_ID, invoice), answer_next_checkout(http, emu)
    )
    assert (status, body) == (200, {"ok": True, "result": True})
    assert result.approved
    assert not result.timed_out
    assert result.pre_checkout_query["total_amount"] == 5
    assert result.pre_checkout_query["invoice_payload"] == "order-1"
    assert result.pre_checkout_query["from"]["id"] == USER_ID
    assert result.charge_id
    assert result.charge_id.startswith("stx")
    assert result.successful_payment == {
        "currency": "XTR",
        "total_amount": 5,
        "invoice_payload": "order-1",
        "telegram_payment_charge_id": result.charge_id,
        "provider_payment_charge_id": "",
    }
    message = await next_update(http, emu, "message")
    assert message["successful_payment"]["telegram_payment_charge_id"] == result.charge_id
    assert message["from"]["id"] == USER_ID
    assert message["chat"]["id"] == USER_ID

    assert emu.star_balance() == 5
    status, body = await call(http, emu, "getMyStarBalance")
    assert body["result"] == {"amount": 5}
    status, body = await call(http, emu, "getStarTransactions", offset=0, limit=10)
    (tx,) = body["result"]["transactions"]
    assert tx["id"] == result.charge_id
    assert tx["amount"] == 5
    assert isinstance(tx["date"], int)
    assert tx["source"]["type"] == "user"
    assert tx["source"]["user"]["id"] == USER_ID
    assert tx["source"]["invoice_payload"] == "order-1"


@pytest.mark.asyncio
async def test_charge_ids_are_unique(emu: BotAPIEmulator, http: aiohttp.ClientSession) -> None:
    invoice = await _send_invoice(http, emu, amount=2)
    charges = set()
    for _ in range(3):
        result, _answer = await asyncio.gather(
            emu.pay(USER_ID, invoice), answer_next_checkout(http, emu)
        )
        charges.add(result.charge_id)
    assert len(charges) == 3
    assert emu.star_balance() == 6


@pytest.mark.asyncio
async def test_rejected_payment_changes_nothing(
    emu: BotAPIEmulator, http: aiohttp.ClientSession
) -> None:
    invoice = await _send_invoice(http, emu)
    result, (status, _) = await asyncio.gather(
        emu.pay(USER_ID, invoice),
        answer_next_checkout(http, emu, ok=False, error_message="Sold out"),
    )
    assert status == 200
    assert not result.approved
    assert result.error_message == "Sold out"
    assert result.charge_id is None
    assert emu.star_balance() == 0
    assert emu.transactions() == []
    assert not any("successful_payment" in u.get("message", {}) for u in emu.updates())


@pytest.mark.asyncio
async def test_precheckout_answer_errors(emu: BotAPIEmulator, http: aiohttp.ClientSession) -> None:
    status, body = await call(
        http, emu, "answerPreCheckoutQuery", pre_checkout_query_id="123", ok=True
    )
    assert (status, body["description"]) == (400, "Bad Request: QUERY_ID_INVALID")

    invoice = await _send_invoice(http, emu)
    pay = asyncio.create_task(emu.pay(USER_ID, invoice))
    query = await next_update(http, emu, "pre_checkout_query")
    status, body = await call(
        http, emu, "answerPreCheckoutQuery", pre_checkout_query_id=query["id"], ok=False
    )
    assert (status, body["description"]) == (400, "Bad Request: error_message is empty")
    status, body = await call(
        http, emu, "answerPreCheckoutQuery", OTHER_TOKEN, pre_checkout_query_id=query["id"], ok=True
    )
    assert (status, body["description"]) == (400, "Bad Request: QUERY_ID_INVALID")
    status, _ = await call(
        http, emu, "answerPreCheckoutQuery", pre_checkout_query_id=query["id"], ok=True
    )
    assert status == 200
    status, body = await call(
        http, emu, "answerPreCheckoutQuery", pre_checkout_query_id=query["id"], ok=True
    )
    assert (status, body["description"]) == (400, "Bad Request: QUERY_ALREADY_ANSWERED")
    result = await asyncio.wait_for(pay, 5)
    assert result.approved


@pytest.mark.asyncio
async def test_late_answer_fails_the_payment(http: aiohttp.ClientSession) -> None:
    async with BotAPIEmulator(precheckout_timeout=0.3) as emu:
        invoice = await _send_invoice(http, emu)
        result, (status, body) = await asyncio.gather(
            emu.pay(USER_ID, invoice), answer_next_checkout(http, emu, delay=0.6)
        )
        assert status == 400
        assert body["description"].startswith("Bad Request: query is too old")
        assert not result.approved
        assert result.timed_out
        assert emu.star_balance() == 0
        assert [u for u in emu.updates() if "successful_payment" in u.get("message", {})] == []
        assert len(result.updates) == 1


@pytest.mark.asyncio
async def test_unanswered_query_times_out(emu: BotAPIEmulator, http: aiohttp.ClientSession) -> None:
    invoice = await _send_invoice(http, emu)
    result = await emu.pay(USER_ID, invoice, timeout=0.2)
    assert result.timed_out
    assert not result.approved


@pytest.mark.asyncio
async def test_refunds(emu: BotAPIEmulator, http: aiohttp.ClientSession) -> None:
    invoice = await _send_invoice(http, emu, amount=9, payload="order-9")
    result, _ = await asyncio.gather(emu.pay(USER_ID, invoice), answer_next_checkout(http, emu))
    charge = result.charge_id
    assert charge is not None
    await next_update(http, emu, "message")

    status, body = await call(
        http, emu, "refundStarPayment", user_id=USER_ID, telegram_payment_charge_id="stxnope"
    )
    assert (status, body["description"]) == (400, "Bad Request: CHARGE_NOT_FOUND")
    status, body = await call(
        http, emu, "refundStarPayment", user_id=USER_ID + 1, telegram_payment_charge_id=charge
    )
    assert (status, body["description"]) == (400, "Bad Request: CHARGE_NOT_FOUND")

    status, body = await call(
        http, emu, "refundStarPayment", user_id=USER_ID, telegram_payment_charge_id=charge
    )
    assert (status, body) == (200, {"ok": True, "result": True})
    assert emu.star_balance() == 0
    refund_message = await next_update(http, emu, "message")
    assert refund_message["refunded_payment"] == {
        "currency": "XTR",
        "total_amount": 9,
        "invoice_payload": "order-9",
        "telegram_payment_charge_id": charge,
    }
    status, body = await call(
        http, emu, "refundStarPayment", user_id=USER_ID, telegram_payment_charge_id=charge
    )
    assert (status, body["description"]) == (400, "Bad Request: CHARGE_ALREADY_REFUNDED")

    status, body = await call(http, emu, "getStarTransactions")
    payment, refund = body["result"]["transactions"]
    assert payment["id"] == refund["id"] == charge
    assert "source" in payment
    assert "receiver" in refund
    assert refund["receiver"]["user"]["id"] == USER_ID
    with pytest.raises(ApiError, match="CHARGE_ALREADY_REFUNDED"):
        await emu.refund(USER_ID, charge)


@pytest.mark.asyncio
async def test_user_initiated_refund(emu: BotAPIEmulator, http: aiohttp.ClientSession) -> None:
    invoice = await _send_invoice(http, emu, amount=3)
    result, _ = await asyncio.gather(emu.pay(USER_ID, invoice), answer_next_checkout(http, emu))
    assert result.charge_id is not None
    message = await emu.refund(USER_ID, result.charge_id)
    assert message["refunded_payment"]["total_amount"] == 3
    assert emu.star_balance() == 0
    assert [c.refunded for c in emu.charges()] == [True]


@pytest.mark.asyncio
async def test_subscription_link(emu: BotAPIEmulator, http: aiohttp.ClientSession) -> None:
    status, body = await call(
        http, emu, "createInvoiceLink", **invoice_params(chat_id=None, subscription_period=2592000)
    )
    assert status == 200
    link = body["result"]
    result, _ = await asyncio.gather(emu.pay(USER_ID, link), answer_next_checkout(http, emu))
    assert result.approved
    assert result.successful_payment is not None
    assert result.successful_payment["is_recurring"] is True
    assert result.successful_payment["is_first_recurring"] is True
    assert result.successful_payment["subscription_expiration_date"] > 0
    charge = result.charge_id
    (tx,) = emu.transactions()
    assert tx["source"]["subscription_period"] == 2592000

    renewal = await emu.renew_subscription(str(charge))
    assert renewal["successful_payment"]["is_first_recurring"] is False
    assert emu.star_balance() == 10

    status, body = await call(
        http,
        emu,
        "editUserStarSubscription",
        user_id=USER_ID,
        telegram_payment_charge_id=charge,
        is_canceled=True,
    )
    assert status == 200, body
    with pytest.raises(ValueError, match="canceled"):
        await emu.renew_subscription(str(charge))
    status, body = await call(
        http,
        emu,
        "editUserStarSubscription",
        user_id=USER_ID,
        telegram_payment_charge_id="stxmissing",
        is_canceled=True,
    )
    assert (status, body["description"]) == (400, "Bad Request: CHARGE_NOT_FOUND")


@pytest.mark.asyncio
async def test_redelivery_semantics(emu: BotAPIEmulator, http: aiohttp.ClientSession) -> None:
    invoice = await _send_invoice(http, emu)
    result, _ = await asyncio.gather(emu.pay(USER_ID, invoice), answer_next_checkout(http, emu))
    original = result.payment_update
    assert original is not None
    first = await next_update(http, emu, "message")
    # Polling: the copy gets a fresh update_id so the bot's offset does not swallow it.
    copy = emu.redeliver(original)
    assert copy is not None
    assert copy["update_id"] > original["update_id"]
    second = await next_update(http, emu, "message")
    assert second == first
    assert emu.star_balance() == 5  # redelivery never credits twice
    forced = emu.redeliver(original["update_id"], keep_update_id=True)
    assert forced is not None
    assert forced["update_id"] == original["update_id"]
    with pytest.raises(LookupError):
        emu.redeliver(999)


@pytest.mark.asyncio
async def test_pay_accepts_several_invoice_forms(
    emu: BotAPIEmulator, http: aiohttp.ClientSession
) -> None:
    invoice = await _send_invoice(http, emu, amount=4)
    (record,) = emu.invoices()
    for ref in (invoice, invoice["message_id"], record):
        result, _ = await asyncio.gather(
            emu.pay(USER_ID, ref, timeout=3), answer_next_checkout(http, emu)
        )
        assert result.approved
    assert emu.star_balance() == 12
    with pytest.raises(LookupError):
        await emu.pay(USER_ID, "https://t.me/$nothing")
