"""The emulator's control API (``/_control/...``): what it answers and what it refuses."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from neonpay.testing import BotAPIEmulator
from neonpay.testing.control import MAX_CONTROL_BODY

TOKEN = "123456:ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghi"
USER = 42


async def _post(
    http: aiohttp.ClientSession,
    emu: BotAPIEmulator,
    route: str,
    data: str | bytes,
    *,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any], str]:
    async with http.post(
        f"{emu.base_url}/_control/{route}",
        data=data,
        headers={"Content-Type": "application/json", **(headers or {})},
    ) as reply:
        text = await reply.text()
        body: dict[str, Any] = await reply.json(content_type=None)
        return reply.status, body, text


async def test_bots_show_masked_tokens_only(
    emu: BotAPIEmulator, http: aiohttp.ClientSession
) -> None:
    emu.add_bot(TOKEN, username="shop_bot")
    async with http.get(f"{emu.base_url}/_control/bots") as reply:
        text = await reply.text()
        body = await reply.json()
    assert reply.status == 200
    assert body["bots"] == [
        {
            "id": 123456,
            "username": "shop_bot",
            "first_name": "Test Bot",
            "token": "123456:AB…hi",
            "star_balance": 0,
            "webhook": False,
        }
    ]
    assert TOKEN not in text


async def test_send_queues_the_users_message_for_the_bot(
    emu: BotAPIEmulator, http: aiohttp.ClientSession
) -> None:
    emu.add_bot(TOKEN, username="shop_bot")
    status, body, _ = await _post(
        http, emu, "send", '{"bot": "@Shop_Bot", "user": 42, "text": "/start"}'
    )
    assert status == 200, body
    assert body["sent"]["summary"] == "/start"
    assert body["replies"] == []
    [update] = emu.updates(TOKEN)
    assert update["message"]["text"] == "/start"
    assert update["message"]["entities"] == [{"type": "bot_command", "offset": 0, "length": 6}]
    # the Bot API itself is untouched by the control routes
    async with http.get(emu.api_url(TOKEN, "getMe")) as reply:
        assert (await reply.json())["result"]["username"] == "shop_bot"


async def test_bad_requests_are_refused_and_change_nothing(
    emu: BotAPIEmulator, http: aiohttp.ClientSession
) -> None:
    emu.add_bot(TOKEN, username="shop_bot")
    good = '{"user": 42, "text": "/start"}'
    cases: list[tuple[str, str | bytes, dict[str, str], int, str]] = [
        ("send", good, {"Host": "evil.example:8081"}, 403, "loopback clients only"),
        ("send", good, {"Content-Type": "text/plain"}, 415, "application/json"),
        ("send", '{"user": 42, "user": 43, "text": "x"}', {}, 400, "appears twice"),
        ("send", '{"user": 42, "text": "x", "token": "1:x"}', {}, 400, "unknown field 'token'"),
        ("send", "[1, 2]", {}, 400, "must be a JSON object"),
        ("send", "{not json", {}, 400, "not valid JSON"),
        ("send", '{"user": 42, "text": "\\ud800"}', {}, 400, "surrogate"),
        ("send", '{"user": 42, "text": "   "}', {}, 400, "text must not be empty"),
        ("send", '{"user": 42, "text": 5}', {}, 400, "text must be text"),
        ("send", '{"user": true, "text": "x"}', {}, 400, "user must be a number"),
        ("send", '{"user": -1, "text": "x"}', {}, 400, "user must be a whole number"),
        ("send", '{"user": 1.5, "text": "x"}', {}, 400, "user must be a whole number"),
        ("send", '{"text": "x"}', {}, 400, "user is required"),
        ("send", '{"user": 42, "text": "x", "wait": 61}', {}, 400, "wait must be from 0 to 60"),
        ("send", '{"user": 42, "text": "' + "x" * 4097 + '"}', {}, 400, "longer than 4096"),
        ("send", b"{" + b" " * MAX_CONTROL_BODY + b"}", {}, 413, "larger than"),
        ("send", '{"bot": "nobody", "user": 42, "text": "x"}', {}, 404, "no bot 'nobody'"),
        ("pay", '{"user": 42}', {}, 404, "has sent no invoice to user 42"),
        ("refund", '{"user": 42, "charge_id": "nope"}', {}, 404, "has no payment 'nope'"),
        ("frobnicate", "{}", {}, 404, "no control route 'frobnicate'"),
    ]
    for route, data, headers, status, message in cases:
        got, body, _ = await _post(http, emu, route, data, headers=headers)
        assert (got, body["ok"]) == (status, False), (route, data[:40], body)
        assert message in body["error"], (route, data[:40], body)
    async with http.get(f"{emu.base_url}/_control/send") as reply:
        assert reply.status == 405
        assert "use POST" in (await reply.json())["error"]
    async with http.get(f"{emu.base_url}/_control/messages?user=abc") as reply:
        assert reply.status == 400
        assert "user must be a number" in (await reply.json())["error"]
    assert emu.updates(TOKEN) == []
    assert emu.sent_messages() == []
    assert emu.calls == []


async def test_several_bots_need_a_name(emu: BotAPIEmulator, http: aiohttp.ClientSession) -> None:
    status, body, _ = await _post(http, emu, "send", '{"user": 42, "text": "x"}')
    assert (status, body["error"]) == (
        404,
        "no bot has called the emulator yet: start your bot against it first",
    )
    emu.add_bot(TOKEN, username="shop_bot")
    emu.add_bot("777:ABCDEFGH", username="other_bot")
    status, body, _ = await _post(http, emu, "send", '{"user": 42, "text": "x"}')
    assert status == 400
    assert "several bots are known" in body["error"]
    status, body, _ = await _post(http, emu, "send", '{"bot": "777", "user": 42, "text": "x"}')
    assert (status, body["bot"]) == (200, "other_bot")
    assert emu.updates(TOKEN) == []


async def test_a_refused_pre_checkout_is_reported(
    emu: BotAPIEmulator, http: aiohttp.ClientSession
) -> None:
    async def call(method: str, **params: Any) -> Any:
        async with http.post(emu.api_url(TOKEN, method), json=params) as reply:
            body = await reply.json()
            assert body["ok"], body
            return body["result"]

    emu.add_bot(TOKEN, username="shop_bot")
    invoice = await call(
        "sendInvoice",
        chat_id=USER,
        title="Premium",
        description="30 days",
        payload="p-1",
        currency="XTR",
        prices=[{"label": "Premium", "amount": 25}],
    )

    async def bot_refuses() -> None:
        updates = await call("getUpdates", timeout=10)
        query = updates[0]["pre_checkout_query"]
        await call(
            "answerPreCheckoutQuery",
            pre_checkout_query_id=query["id"],
            ok=False,
            error_message="sold out",
        )

    refusing = asyncio.create_task(bot_refuses())
    status, body, _ = await _post(
        http, emu, "pay", f'{{"user": 42, "invoice": {invoice["message_id"]}}}'
    )
    await asyncio.wait_for(refusing, 10)
    assert status == 200
    assert (body["approved"], body["error_message"], body["charge_id"]) == (False, "sold out", None)
    assert body["invoice"]["paid"] is False
    assert emu.charges(TOKEN) == []
    assert emu.star_balance(TOKEN) == 0
