"""Helpers for the Bot API emulator tests: tokens and a minimal raw-HTTP bot."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from neonpay.testing import BotAPIEmulator

TOKEN = "123456789:AAEhBOweik6ad9r_QXMENQjcrGbqCr4K-ZA"
OTHER_TOKEN = "987654321:BBFhCPxfjl7be0s_RYNFORkdsHcrDs5L-AB"
USER_ID = 4242


async def call(
    http: aiohttp.ClientSession,
    emu: BotAPIEmulator,
    method: str,
    token: str = TOKEN,
    **params: Any,
) -> tuple[int, dict[str, Any]]:
    """POST a JSON-bodied Bot API call; returns (status, body)."""
    async with http.post(
        emu.api_url(token, method), json=params, timeout=aiohttp.ClientTimeout(total=10)
    ) as response:
        body: dict[str, Any] = await response.json()
        return response.status, body


async def next_update(
    http: aiohttp.ClientSession,
    emu: BotAPIEmulator,
    kind: str,
    *,
    token: str = TOKEN,
    timeout: float = 5.0,
) -> dict[str, Any]:
    """Long-poll (and confirm) until an update of ``kind`` arrives."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    offset = 0
    while loop.time() < deadline:
        status, body = await call(http, emu, "getUpdates", token, offset=offset, timeout=1)
        assert status == 200, body
        for update in body["result"]:
            offset = update["update_id"] + 1
            if kind in update:
                await call(http, emu, "getUpdates", token, offset=offset, timeout=0)
                payload: dict[str, Any] = update[kind]
                return payload
    raise AssertionError(f"no {kind} update within {timeout} s")


async def answer_next_checkout(
    http: aiohttp.ClientSession,
    emu: BotAPIEmulator,
    *,
    ok: bool = True,
    error_message: str | None = None,
    delay: float = 0.0,
    token: str = TOKEN,
) -> tuple[int, dict[str, Any]]:
    """Act as the bot: wait for a pre_checkout_query and answer it after ``delay``."""
    query = await next_update(http, emu, "pre_checkout_query", token=token)
    if delay:
        await asyncio.sleep(delay)
    params: dict[str, Any] = {"pre_checkout_query_id": query["id"], "ok": ok}
    if error_message is not None:
        params["error_message"] = error_message
    return await call(http, emu, "answerPreCheckoutQuery", token, **params)


def invoice_params(**overrides: Any) -> dict[str, Any]:
    """A valid Stars invoice for ``sendInvoice``, with overrides (``None`` removes)."""
    params: dict[str, Any] = {
        "chat_id": USER_ID,
        "title": "Premium",
        "description": "30 days of premium",
        "payload": "order-1",
        "currency": "XTR",
        "prices": [{"label": "Premium", "amount": 5}],
    }
    for key, value in overrides.items():
        if value is None:
            params.pop(key, None)
        else:
            params[key] = value
    return params
