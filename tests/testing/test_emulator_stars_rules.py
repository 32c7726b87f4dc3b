"""Every Stars invoice rule rejects a bad call with a Telegram-like error."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from neonpay.testing import BotAPIEmulator

from .helpers import TOKEN, call, invoice_params

BAD_INVOICES: list[tuple[str, dict[str, Any], str]] = [
    ("missing title", {"title": None}, "TITLE_INVALID"),
    ("empty title", {"title": ""}, "TITLE_INVALID"),
    ("long title", {"title": "x" * 33}, "TITLE_INVALID"),
    ("missing description", {"description": None}, "DESCRIPTION_INVALID"),
    ("long description", {"description": "d" * 256}, "DESCRIPTION_INVALID"),
    ("missing payload", {"payload": None}, "INVOICE_PAYLOAD_INVALID"),
    ("long payload", {"payload": "é" * 65}, "INVOICE_PAYLOAD_INVALID"),
    ("provider token", {"provider_token": "284685063:TEST:abc"}, "PAYMENT_PROVIDER_INVALID"),
    ("currency USD", {"currency": "USD"}, "CURRENCY_INVALID"),
    ("currency missing", {"currency": None}, "CURRENCY_INVALID"),
    ("currency lowercase", {"currency": "xtr"}, "CURRENCY_INVALID"),
    ("prices missing", {"prices": None}, "can't parse prices JSON object"),
    ("prices not a list", {"prices": {"label": "a", "amount": 1}}, "can't parse prices"),
    ("no price", {"prices": []}, "STARS_INVOICE_INVALID"),
    (
        "two prices",
        {"prices": [{"label": "a", "amount": 1}, {"label": "b", "amount": 2}]},
        "STARS_INVOICE_INVALID",
    ),
    ("empty label", {"prices": [{"label": "", "amount": 1}]}, "LABEL_INVALID"),
    ("zero amount", {"prices": [{"label": "a", "amount": 0}]}, "CURRENCY_TOTAL_AMOUNT_INVALID"),
    ("negative", {"prices": [{"label": "a", "amount": -5}]}, "CURRENCY_TOTAL_AMOUNT_INVALID"),
    ("fractional", {"prices": [{"label": "a", "amount": 1.5}]}, "CURRENCY_TOTAL_AMOUNT_INVALID"),
    (
        "too many stars",
        {"prices": [{"label": "a", "amount": 100_001}]},
        "CURRENCY_TOTAL_AMOUNT_INVALID",
    ),
    ("tips", {"max_tip_amount": 10}, "MAX_TIP_AMOUNT_INVALID"),
    ("suggested tips", {"suggested_tip_amounts": [1, 2]}, "SUGGESTED_TIP_AMOUNTS_INVALID"),
    (
        "subscription on sendInvoice",
        {"subscription_period": 2592000},
        "SUBSCRIPTION_PERIOD_INVALID",
    ),
]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("overrides", "expected"),
    [pytest.param(o, e, id=name) for name, o, e in BAD_INVOICES],
)
async def test_send_invoice_rule(
    emu: BotAPIEmulator,
    http: aiohttp.ClientSession,
    overrides: dict[str, Any],
    expected: str,
) -> None:
    status, body = await call(http, emu, "sendInvoice", **invoice_params(**overrides))
    assert status == 400
    assert body["ok"] is False
    assert body["error_code"] == 400
    assert body["description"].startswith("Bad Request: ")
    assert expected in body["description"]
    assert emu.invoices() == []


@pytest.mark.asyncio
async def test_valid_invoice_shapes(emu: BotAPIEmulator, http: aiohttp.ClientSession) -> None:
    status, body = await call(
        http,
        emu,
        "sendInvoice",
        **invoice_params(
            provider_token="",
            max_tip_amount=0,
            start_parameter="buy",
            photo_url="https://example.com/p.png",
            title="x" * 32,
            payload="p" * 128,
            prices=[{"label": "Stars", "amount": 100_000}],
        ),
    )
    assert status == 200, body
    message = body["result"]
    assert message["invoice"] == {
        "title": "x" * 32,
        "description": "30 days of premium",
        "start_parameter": "buy",
        "currency": "XTR",
        "total_amount": 100_000,
    }
    assert message["from"]["is_bot"] is True
    assert message["chat"] == {"id": 4242, "type": "private", "first_name": "User4242"}
    assert isinstance(message["message_id"], int)
    assert isinstance(message["date"], int)


@pytest.mark.asyncio
async def test_form_encoded_prices_are_decoded(
    emu: BotAPIEmulator, http: aiohttp.ClientSession
) -> None:
    form = invoice_params(prices=json.dumps([{"label": "a", "amount": 7}]))
    form["chat_id"] = str(form["chat_id"])
    async with http.post(emu.api_url(TOKEN, "sendInvoice"), data=form) as response:
        body = await response.json()
    assert response.status == 200, body
    assert body["result"]["invoice"]["total_amount"] == 7
    async with http.post(
        emu.api_url(TOKEN, "sendInvoice"), data={**form, "prices": "[{not json"}
    ) as response:
        body = await response.json()
    assert response.status == 400
    assert body["description"] == "Bad Request: can't parse prices JSON object"


SUBSCRIPTION_CASES: list[tuple[str, dict[str, Any], str | None]] = [
    ("valid", {"subscription_period": 2592000}, None),
    ("wrong period", {"subscription_period": 86400}, "SUBSCRIPTION_PERIOD_INVALID"),
    ("garbage period", {"subscription_period": "monthly"}, "SUBSCRIPTION_PERIOD_INVALID"),
    (
        "price over 10000",
        {"subscription_period": 2592000, "prices": [{"label": "a", "amount": 10_001}]},
        "SUBSCRIPTION_PRICE_INVALID",
    ),
    ("currency", {"currency": "EUR"}, "CURRENCY_INVALID"),
    ("two prices", {"prices": [{"label": "a", "amount": 1}] * 2}, "STARS_INVOICE_INVALID"),
]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("overrides", "expected"),
    [pytest.param(o, e, id=name) for name, o, e in SUBSCRIPTION_CASES],
)
async def test_create_invoice_link_rules(
    emu: BotAPIEmulator,
    http: aiohttp.ClientSession,
    overrides: dict[str, Any],
    expected: str | None,
) -> None:
    params = invoice_params(chat_id=None, **overrides)
    status, body = await call(http, emu, "createInvoiceLink", **params)
    if expected is None:
        assert status == 200, body
        assert body["result"].startswith("https://t.me/$")
        (record,) = emu.invoices()
        assert record.link == body["result"]
        assert record.subscription_period == 2592000
    else:
        assert status == 400
        assert body["description"] == f"Bad Request: {expected}"


@pytest.mark.asyncio
async def test_configurable_amount_cap(http: aiohttp.ClientSession) -> None:
    async with BotAPIEmulator(max_star_amount=10_000) as emu:
        status, _ = await call(
            http, emu, "sendInvoice", **invoice_params(prices=[{"label": "a", "amount": 10_000}])
        )
        assert status == 200
        status, body = await call(
            http, emu, "sendInvoice", **invoice_params(prices=[{"label": "a", "amount": 10_001}])
        )
        assert status == 400
        assert body["description"] == "Bad Request: CURRENCY_TOTAL_AMOUNT_INVALID"
