"""Webhook delivery: secret header, redelivery on errors, method calls in replies."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web

from neonpay.testing import BotAPIEmulator

from .helpers import TOKEN, USER_ID, call

Responder = Callable[[int], web.Response]


class HookServer:
    """A small webhook receiver on 127.0.0.1 whose answers a test scripts."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.responder: Responder = lambda n: web.Response(text="ok")
        self.received = asyncio.Event()
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append((dict(request.headers), await request.json()))
        self.received.set()
        return self.responder(len(self.requests))

    async def wait_requests(self, count: int, timeout: float = 5.0) -> None:
        async def wait() -> None:
            while len(self.requests) < count:
                self.received.clear()
                await self.received.wait()

        await asyncio.wait_for(wait(), timeout)


@pytest_asyncio.fixture
async def hook() -> AsyncIterator[HookServer]:
    server = HookServer()
    app = web.Application()
    app.router.add_post("/hook", server.handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server.url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    try:
        yield server
    finally:
        await runner.cleanup()


@pytest.mark.asyncio
async def test_secret_header_and_redelivery(
    emu: BotAPIEmulator, http: aiohttp.ClientSession, hook: HookServer
) -> None:
    hook.responder = lambda n: web.Response(status=500) if n < 3 else web.Response(text="ok")
    status, body = await call(http, emu, "setWebhook", url=hook.url, secret_token="Secret_1-x")
    assert (status, body) == (200, {"ok": True, "result": True})

    emu.send_message_from_user(TOKEN, USER_ID, "hello")
    await hook.wait_requests(3)
    headers = [h for h, _ in hook.requests]
    assert all(h.get("X-Telegram-Bot-Api-Secret-Token") == "Secret_1-x" for h in headers)
    update_ids = {u["update_id"] for _, u in hook.requests}
    assert len(update_ids) == 1  # retries keep the update_id
    assert hook.requests[0][1]["message"]["text"] == "hello"
    deliveries = emu.webhook_deliveries()
    assert [d.status for d in deliveries] == [500, 500, 200]
    assert [d.attempt for d in deliveries] == [1, 2, 3]

    await asyncio.sleep(0.05)
    status, body = await call(http, emu, "getWebhookInfo")
    info = body["result"]
    assert info["url"] == hook.url
    assert info["pending_update_count"] == 0
    assert "500" in info["last_error_message"]

    status, body = await call(http, emu, "getUpdates")
    assert status == 409
    assert body["description"].startswith("Conflict: can't use getUpdates method while webhook")


@pytest.mark.asyncio
async def test_webhook_gives_up_after_bounded_attempts(
    http: aiohttp.ClientSession, hook: HookServer
) -> None:
    hook.responder = lambda n: web.Response(status=502)
    async with BotAPIEmulator(webhook_max_attempts=3, webhook_retry_delay=0.01) as emu:
        await call(http, emu, "setWebhook", url=hook.url)
        emu.send_message_from_user(TOKEN, USER_ID, "one")
        emu.send_message_from_user(TOKEN, USER_ID, "two")
        await hook.wait_requests(6)
        texts = [u["message"]["text"] for _, u in hook.requests]
        assert texts == ["one"] * 3 + ["two"] * 3
        await asyncio.sleep(0.05)
        assert emu.pending_updates() == []


@pytest.mark.asyncio
async def test_webhook_redeliver_keeps_update_id(
    emu: BotAPIEmulator, http: aiohttp.ClientSession, hook: HookServer
) -> None:
    await call(http, emu, "setWebhook", url=hook.url)
    emu.send_message_from_user(TOKEN, USER_ID, "pay me")
    await hook.wait_requests(1)
    first = hook.requests[0][1]
    copy = emu.redeliver(first)
    assert copy is not None
    assert copy["update_id"] == first["update_id"]
    await hook.wait_requests(2)
    assert hook.requests[1][1] == first


@pytest.mark.asyncio
async def test_webhook_reply_with_method(
    emu: BotAPIEmulator, http: aiohttp.ClientSession, hook: HookServer
) -> None:
    def reply(n: int) -> web.Response:
        body = {"method": "sendMessage", "chat_id": USER_ID, "text": f"echo {n}"}
        return web.Response(text=json.dumps(body), content_type="application/json")

    hook.responder = reply
    await call(http, emu, "setWebhook", url=hook.url)
    emu.send_message_from_user(TOKEN, USER_ID, "hi")
    sent = await emu.wait_for_call("sendMessage", timeout=5)
    assert sent.source == "webhook_reply"
    assert emu.sent_messages(USER_ID)[-1]["text"] == "echo 1"


@pytest.mark.asyncio
async def test_delete_webhook_restores_polling(
    http: aiohttp.ClientSession, hook: HookServer
) -> None:
    hook.responder = lambda n: web.Response(status=500)
    async with BotAPIEmulator(webhook_max_attempts=100, webhook_retry_delay=0.05) as emu2:
        await call(http, emu2, "setWebhook", url=hook.url, drop_pending_updates=True)
        emu2.send_message_from_user(TOKEN, USER_ID, "kept")
        await hook.wait_requests(1)
        status, _ = await call(http, emu2, "deleteWebhook")
        assert status == 200
        status, body = await call(http, emu2, "getUpdates")
        assert status == 200
        assert [u["message"]["text"] for u in body["result"]] == ["kept"]
        await call(http, emu2, "deleteWebhook", drop_pending_updates=True)
        status, body = await call(http, emu2, "getUpdates")
        assert body["result"] == []


@pytest.mark.asyncio
async def test_set_webhook_validation(emu: BotAPIEmulator, http: aiohttp.ClientSession) -> None:
    status, body = await call(http, emu, "setWebhook", url="ftp://127.0.0.1/x")
    assert (status, body["description"]) == (400, "Bad Request: bad webhook: Invalid URL specified")
    status, body = await call(http, emu, "setWebhook", url="https://example.com/hook")
    assert status == 400
    assert "loopback" in body["description"]
    status, body = await call(
        http, emu, "setWebhook", url="http://127.0.0.1:9/x", secret_token="bad token!"
    )
    assert (status, body["description"]) == (
        400,
        "Bad Request: secret token contains unallowed characters",
    )
    status, body = await call(http, emu, "getWebhookInfo")
    assert body["result"] == {"url": "", "has_custom_certificate": False, "pending_update_count": 0}
