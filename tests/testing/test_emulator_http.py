"""The HTTP surface: routing, tokens, body encodings, getUpdates, lifecycle, records."""

from __future__ import annotations

import asyncio
import json
import logging

import aiohttp
import pytest

from neonpay.testing import BotAPIEmulator, main, mask_token, run_emulator

from .helpers import OTHER_TOKEN, TOKEN, USER_ID, call

# ---------------------------------------------------------------- routing and tokens


@pytest.mark.asyncio
async def test_unknown_method_and_path(emu: BotAPIEmulator, http: aiohttp.ClientSession) -> None:
    status, body = await call(http, emu, "sendTelepathy")
    assert (status, body) == (404, {"ok": False, "error_code": 404, "description": "Not Found"})
    async with http.get(emu.base_url + "/nothing/here") as response:
        assert response.status == 404
        assert (await response.json())["description"] == "Not Found"


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "token", ["123:", "123:bad!token", "abc:AAEhBOweik6ad9r_QXMENQjcrGbqCr4K-ZA", "", "123456789"]
)
async def test_malformed_token_is_unauthorized(
    emu: BotAPIEmulator, http: aiohttp.ClientSession, token: str
) -> None:
    async with http.get(f"{emu.base_url}/bot{token}/getMe") as response:
        assert response.status == 401
        assert await response.json() == {
            "ok": False,
            "error_code": 401,
            "description": "Unauthorized",
        }


@pytest.mark.asyncio
async def test_tokens_and_bot_registration(http: aiohttp.ClientSession) -> None:
    async with BotAPIEmulator(auto_register_bots=False) as emu:
        status, _ = await call(http, emu, "getMe")
        assert status == 401
        emu.add_bot(TOKEN, username="shop_bot", first_name="Shop")
        status, body = await call(http, emu, "getMe")
        assert status == 200
        me = body["result"]
        assert (me["id"], me["username"], me["first_name"], me["is_bot"]) == (
            123456789,
            "shop_bot",
            "Shop",
            True,
        )
        # Same bot id, different secret: a revoked token.
        wrong = TOKEN.split(":")[0] + ":" + "Z" * 35
        status, _ = await call(http, emu, "getMe", wrong)
        assert status == 401


@pytest.mark.asyncio
async def test_method_names_are_case_insensitive(
    emu: BotAPIEmulator, http: aiohttp.ClientSession
) -> None:
    for name in ("getme", "GETME", "GetMe"):
        status, _ = await call(http, emu, name)
        assert status == 200
    assert {c.method for c in emu.calls} == {"getMe"}


# ---------------------------------------------------------------- body encodings


@pytest.mark.asyncio
async def test_body_encodings(emu: BotAPIEmulator, http: aiohttp.ClientSession) -> None:
    url = emu.api_url(TOKEN, "sendMessage")
    markup = {"inline_keyboard": [[{"text": "Buy", "callback_data": "buy"}]]}
    async with http.get(url, params={"chat_id": str(USER_ID), "text": "query"}) as response:
        assert response.status == 200
    async with http.post(
        url, data={"chat_id": str(USER_ID), "text": "form", "reply_markup": json.dumps(markup)}
    ) as response:
        body = await response.json()
        assert body["result"]["reply_markup"] == markup
    form = aiohttp.FormData()
    form.add_field("chat_id", str(USER_ID))
    form.add_field("text", "multipart")
    form.add_field("reply_markup", json.dumps(markup))
    form.add_field("unused", b"\x00\x01", filename="blob.bin")
    async with http.post(url, data=form) as response:
        body = await response.json()
        assert body["result"]["text"] == "multipart"
        assert body["result"]["reply_markup"] == markup
    # pyTelegramBotAPI's async client sends form bodies with GET.
    async with http.get(url, data={"chat_id": str(USER_ID), "text": "get-body"}) as response:
        assert (await response.json())["result"]["text"] == "get-body"
    async with http.post(url, json={"chat_id": USER_ID, "text": "json"}) as response:
        assert (await response.json())["result"]["text"] == "json"
    async with http.post(
        url, data=b"{broken", headers={"Content-Type": "application/json"}
    ) as response:
        assert response.status == 400
    texts = [m["text"] for m in emu.sent_messages(USER_ID)]
    assert texts == ["query", "form", "multipart", "get-body", "json"]
    assert emu.calls_to("sendMessage")[1].params["reply_markup"] == markup
    assert emu.calls_to("sendMessage")[1].raw_params["chat_id"] == str(USER_ID)


# ---------------------------------------------------------------- getUpdates


@pytest.mark.asyncio
async def test_get_updates_offset_and_limit(
    emu: BotAPIEmulator, http: aiohttp.ClientSession
) -> None:
    for n in range(5):
        emu.send_message_from_user(TOKEN, USER_ID, f"m{n}")
    _, body = await call(http, emu, "getUpdates", limit=2)
    ids = [u["update_id"] for u in body["result"]]
    assert len(ids) == 2
    _, body = await call(http, emu, "getUpdates", offset=ids[1] + 1)
    assert [u["message"]["text"] for u in body["result"]] == ["m2", "m3", "m4"]
    _, body = await call(http, emu, "getUpdates", offset=-1)
    assert [u["message"]["text"] for u in body["result"]] == ["m4"]
    _, body = await call(http, emu, "getUpdates", offset=body["result"][0]["update_id"] + 1)
    assert body["result"] == []


@pytest.mark.asyncio
async def test_long_poll_returns_promptly(emu: BotAPIEmulator, http: aiohttp.ClientSession) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    poll = asyncio.create_task(call(http, emu, "getUpdates", timeout=10))
    await asyncio.sleep(0.1)
    assert not poll.done()
    emu.send_message_from_user(TOKEN, USER_ID, "/start")
    _, body = await asyncio.wait_for(poll, 3)
    assert loop.time() - started < 2
    message = body["result"][0]["message"]
    assert message["entities"] == [{"type": "bot_command", "offset": 0, "length": 6}]
    assert message["from"] == {
        "id": USER_ID,
        "is_bot": False,
        "first_name": f"User{USER_ID}",
        "language_code": "en",
    }


@pytest.mark.asyncio
async def test_poll_timeout_is_capped(http: aiohttp.ClientSession) -> None:
    async with BotAPIEmulator(max_poll_timeout=0.2) as emu:
        status, body = await asyncio.wait_for(call(http, emu, "getUpdates", timeout=600), 3)
        assert (status, body["result"]) == (200, [])


@pytest.mark.asyncio
async def test_allowed_updates_filter(emu: BotAPIEmulator, http: aiohttp.ClientSession) -> None:
    status, _ = await call(http, emu, "getUpdates", allowed_updates=["callback_query"])
    assert status == 200
    emu.send_message_from_user(TOKEN, USER_ID, "dropped")
    status, body = await call(http, emu, "getUpdates")
    assert body["result"] == []
    await call(http, emu, "getUpdates", allowed_updates=[])
    emu.send_message_from_user(TOKEN, USER_ID, "kept")
    status, body = await call(http, emu, "getUpdates")
    assert [u["message"]["text"] for u in body["result"]] == ["kept"]


@pytest.mark.asyncio
async def test_second_poller_terminates_first(
    emu: BotAPIEmulator, http: aiohttp.ClientSession
) -> None:
    first = asyncio.create_task(call(http, emu, "getUpdates", timeout=5))
    await asyncio.sleep(0.1)
    second = asyncio.create_task(call(http, emu, "getUpdates", timeout=5))
    status, body = await asyncio.wait_for(first, 3)
    assert status == 409
    assert "terminated by other getUpdates request" in body["description"]
    emu.send_message_from_user(TOKEN, USER_ID, "x")
    status, body = await asyncio.wait_for(second, 3)
    assert status == 200
    assert len(body["result"]) == 1


@pytest.mark.asyncio
async def test_bots_are_isolated(emu: BotAPIEmulator, http: aiohttp.ClientSession) -> None:
    await call(http, emu, "getMe")
    await call(http, emu, "getMe", OTHER_TOKEN)
    emu.send_message_from_user(OTHER_TOKEN, USER_ID, "for the other bot")
    _, body = await call(http, emu, "getUpdates")
    assert body["result"] == []
    _, body = await call(http, emu, "getUpdates", OTHER_TOKEN)
    assert len(body["result"]) == 1
    with pytest.raises(ValueError, match="several"):
        emu.bot()


# ---------------------------------------------------------------- messages


@pytest.mark.asyncio
async def test_message_methods(emu: BotAPIEmulator, http: aiohttp.ClientSession) -> None:
    status, body = await call(http, emu, "sendMessage", chat_id=USER_ID, text="")
    assert (status, body["description"]) == (400, "Bad Request: message text is empty")
    status, body = await call(http, emu, "sendMessage", chat_id="@nobody", text="x")
    assert (status, body["description"]) == (400, "Bad Request: chat not found")
    status, body = await call(http, emu, "sendMessage", text="x")
    assert (status, body["description"]) == (400, "Bad Request: chat_id is empty")

    status, body = await call(http, emu, "sendMessage", chat_id=USER_ID, text="v1")
    message = body["result"]
    assert message["from"]["id"] == 123456789
    assert message["from"]["is_bot"] is True
    assert message["chat"]["type"] == "private"
    mid = message["message_id"]
    status, body = await call(
        http, emu, "editMessageText", chat_id=USER_ID, message_id=mid, text="v2"
    )
    assert status == 200
    assert body["result"]["text"] == "v2"
    assert "edit_date" in body["result"]
    status, body = await call(
        http, emu, "editMessageText", chat_id=USER_ID, message_id=mid, text="v2"
    )
    assert status == 400
    assert body["description"].startswith("Bad Request: message is not modified")
    status, body = await call(
        http, emu, "editMessageText", chat_id=USER_ID, message_id=999, text="v3"
    )
    assert (status, body["description"]) == (400, "Bad Request: message to edit not found")
    assert emu.sent_messages(USER_ID)[0]["text"] == "v2"

    status, body = await call(http, emu, "deleteMessage", chat_id=USER_ID, message_id=mid)
    assert (status, body["result"]) == (200, True)
    status, body = await call(http, emu, "deleteMessage", chat_id=USER_ID, message_id=mid)
    assert (status, body["description"]) == (400, "Bad Request: message to delete not found")


@pytest.mark.asyncio
async def test_send_photo_upload(emu: BotAPIEmulator, http: aiohttp.ClientSession) -> None:
    form = aiohttp.FormData()
    form.add_field("chat_id", str(USER_ID))
    form.add_field("caption", "look")
    form.add_field("photo", b"\x89PNG fake", filename="p.png", content_type="image/png")
    async with http.post(emu.api_url(TOKEN, "sendPhoto"), data=form) as response:
        body = await response.json()
    assert response.status == 200, body
    photo = body["result"]["photo"]
    assert len(photo) == 3
    assert photo[-1]["file_size"] == 9
    assert body["result"]["caption"] == "look"
    file_id = photo[-1]["file_id"]
    status, body = await call(http, emu, "sendPhoto", chat_id=USER_ID, photo=file_id)
    assert status == 200
    assert body["result"]["photo"][-1]["file_id"] == file_id
    status, body = await call(http, emu, "sendPhoto", chat_id=USER_ID)
    assert status == 400


@pytest.mark.asyncio
async def test_press_button_and_answer(emu: BotAPIEmulator, http: aiohttp.ClientSession) -> None:
    markup = {"inline_keyboard": [[{"text": "Buy", "callback_data": "buy:1"}]]}
    status, body = await call(
        http, emu, "sendMessage", chat_id=USER_ID, text="Shop", reply_markup=markup
    )
    message = body["result"]
    with pytest.raises(ValueError, match="no button"):
        emu.press_button(TOKEN, USER_ID, message, "sell")
    query_id = emu.press_button(TOKEN, USER_ID, message, "buy:1")
    status, body = await call(http, emu, "getUpdates")
    query = body["result"][0]["callback_query"]
    assert query["id"] == query_id
    assert query["data"] == "buy:1"
    assert query["message"]["message_id"] == message["message_id"]
    status, body = await call(
        http, emu, "answerCallbackQuery", callback_query_id=query_id, text="Done"
    )
    assert status == 200
    assert emu.callback_answer(query_id) == {
        "text": "Done",
        "show_alert": False,
        "url": None,
        "cache_time": 0,
    }
    status, body = await call(http, emu, "answerCallbackQuery", callback_query_id=query_id)
    assert status == 400
    assert "query is too old" in body["description"]


@pytest.mark.asyncio
async def test_strict_chats(http: aiohttp.ClientSession) -> None:
    async with BotAPIEmulator(strict_chats=True) as emu:
        status, body = await call(http, emu, "sendMessage", chat_id=USER_ID, text="hi")
        assert (status, body["description"]) == (
            403,
            "Forbidden: bot can't initiate conversation with a user",
        )
        emu.send_message_from_user(TOKEN, USER_ID, "/start")
        status, _ = await call(http, emu, "sendMessage", chat_id=USER_ID, text="hi")
        assert status == 200


@pytest.mark.asyncio
async def test_settings_methods(emu: BotAPIEmulator, http: aiohttp.ClientSession) -> None:
    commands = [
        {"command": "start", "description": "Start"},
        {"command": "buy", "description": "Buy"},
    ]
    status, body = await call(http, emu, "setMyCommands", commands=commands)
    assert (status, body["result"]) == (200, True)
    status, body = await call(http, emu, "getMyCommands")
    assert body["result"] == commands
    status, body = await call(
        http, emu, "setMyCommands", commands=[{"command": "Bad Command", "description": "x"}]
    )
    assert (status, body["description"]) == (400, "Bad Request: BOT_COMMAND_INVALID")
    for name in ("logOut", "close", "deleteMyCommands"):
        status, body = await call(http, emu, name)
        assert (status, body["result"]) == (200, True)
    status, body = await call(http, emu, "getMyCommands")
    assert body["result"] == []
    status, body = await call(http, emu, "sendChatAction", chat_id=USER_ID, action="typing")
    assert status == 200


# ---------------------------------------------------------------- records and lifecycle


@pytest.mark.asyncio
async def test_wait_for_call_is_bounded(emu: BotAPIEmulator, http: aiohttp.ClientSession) -> None:
    with pytest.raises(TimeoutError):
        await emu.wait_for_call("sendMessage", timeout=0.1)
    later = asyncio.create_task(emu.wait_for_call("sendMessage", timeout=3))
    await call(http, emu, "sendMessage", chat_id=USER_ID, text="now")
    record = await later
    assert record.bot_id == 123456789
    assert record.ok
    assert record.status == 200
    assert record.result["text"] == "now"
    assert emu.calls_to("SENDMESSAGE") == [record]
    message = await emu.wait_for_message(USER_ID, timeout=1)
    assert message["text"] == "now"


@pytest.mark.asyncio
async def test_close_is_idempotent_and_ends_long_polls(http: aiohttp.ClientSession) -> None:
    emu = BotAPIEmulator()
    await emu.close()  # never started: nothing to do
    emu = BotAPIEmulator()
    await emu.start()
    await emu.start()
    poll = asyncio.create_task(call(http, emu, "getUpdates", timeout=30))
    await asyncio.sleep(0.1)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.wait_for(emu.close(), 5)
    await emu.close()
    assert loop.time() - started < 3
    status, body = await asyncio.wait_for(poll, 3)
    assert (status, body["result"]) == (200, [])
    with pytest.raises(RuntimeError):
        await emu.start()


def test_mask_token() -> None:
    assert mask_token(TOKEN) == "123456789:AA…ZA"
    assert TOKEN not in repr(BotAPIEmulator())


@pytest.mark.asyncio
async def test_tokens_never_logged(
    emu: BotAPIEmulator, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        await call(http, emu, "getMe")
        await call(http, emu, "sendTelepathy")
        async with http.get(f"{emu.base_url}/bot1:{'x' * 5}/getMe"):
            pass
        emu.add_bot(OTHER_TOKEN)
        state = emu.bot(OTHER_TOKEN)
        text = caplog.text + repr(state) + repr(emu.calls)
    assert TOKEN not in text
    assert OTHER_TOKEN not in text
    assert "123456789:AA…ZA" in caplog.text


@pytest.mark.asyncio
async def test_run_emulator_until_cancelled(http: aiohttp.ClientSession) -> None:
    ready = asyncio.Event()
    task = asyncio.create_task(run_emulator("127.0.0.1", 0, ready=ready, precheckout_timeout=1))
    await asyncio.wait_for(ready.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)


def test_cli_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    assert "--port" in capsys.readouterr().out


@pytest.mark.asyncio
@pytest.mark.parametrize("token", ["123456789:anything", "123456:ABCDEF", "1:x"])
async def test_short_test_tokens_are_accepted(
    emu: BotAPIEmulator, http: aiohttp.ClientSession, token: str
) -> None:
    async with http.get(emu.api_url(token, "getMe")) as response:
        assert response.status == 200
        assert (await response.json())["result"]["id"] == int(token.split(":")[0])
