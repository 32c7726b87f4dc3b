"""Delivery of queued updates to a bot's webhook.

One worker task per bot posts pending updates in order as JSON, with the
``X-Telegram-Bot-Api-Secret-Token`` header when a secret was set. A non-2xx answer or a
network error is retried with the same ``update_id`` after ``webhook_retry_delay``, at
most ``webhook_max_attempts`` times, then the update is dropped (Telegram also gives up
eventually) and the error is reported by ``getWebhookInfo``.

A 2xx answer may carry a Bot API call (``{"method": "sendMessage", ...}`` as JSON, form
or multipart), which is executed like Telegram does for webhook replies.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from aiohttp import ClientError, ClientTimeout

from .body import parse_body
from .errors import ApiError, bad_request
from .params import Params
from .state import BotState, WebhookConfig, WebhookDelivery

if TYPE_CHECKING:
    from .core import EmulatorCore

__all__ = ["SECRET_HEADER", "ensure_webhook_worker", "validate_webhook_url"]

logger = logging.getLogger("neonpay.testing")

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 (a header name)


def validate_webhook_url(url: str, *, allow_remote: bool) -> None:
    """Check a ``setWebhook`` URL; the emulator accepts plain HTTP on loopback hosts."""
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError for a malformed port
    except ValueError:
        raise bad_request("bad webhook: Invalid URL specified") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise bad_request("bad webhook: Invalid URL specified")
    if allow_remote:
        return
    host = parts.hostname
    if host == "localhost":
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise bad_request("bad webhook: the emulator only delivers to loopback hosts")


def ensure_webhook_worker(core: EmulatorCore, bot: BotState) -> None:
    """Start the bot's delivery task unless it is already running."""
    if bot.webhook_task is not None and not bot.webhook_task.done():
        core.wake(bot)
        return
    bot.webhook_task = core.spawn(_worker(core, bot), name=f"webhook-{bot.id}")


async def _worker(core: EmulatorCore, bot: BotState) -> None:
    attempts = 0
    while not core.closing and bot.webhook is not None:
        if not bot.pending:
            attempts = 0
            await core.wait_signal(bot, None)
            continue
        config = bot.webhook
        update = bot.pending[0]
        attempts += 1
        status, error = await _post(core, bot, config, update, attempts)
        if bot.webhook is None or not bot.pending or bot.pending[0] is not update:
            attempts = 0
            continue
        if status is not None and 200 <= status < 300:
            bot.pending.pop(0)
            attempts = 0
            continue
        config.last_error_date = core.now()
        config.last_error_message = error or f"Wrong response from the webhook: {status}"
        if attempts >= core.config.webhook_max_attempts:
            logger.warning(
                "bot %s: dropping update %s after %s failed webhook deliveries",
                bot.id,
                update["update_id"],
                attempts,
            )
            bot.pending.pop(0)
            attempts = 0
            continue
        await core.wait_signal(bot, core.config.webhook_retry_delay)


async def _post(
    core: EmulatorCore,
    bot: BotState,
    config: WebhookConfig,
    update: dict[str, Any],
    attempt: int,
) -> tuple[int | None, str | None]:
    session = core.http_session
    if session is None:
        return None, "emulator is not started"
    headers = {}
    if config.secret_token:
        headers[SECRET_HEADER] = config.secret_token
    status: int | None = None
    error: str | None = None
    reply: dict[str, Any] | None = None
    try:
        async with session.post(
            config.url,
            json=update,
            headers=headers,
            timeout=ClientTimeout(total=core.config.webhook_timeout),
            allow_redirects=False,
        ) as response:
            status = response.status
            if 200 <= status < 300:
                try:
                    reply = await parse_body(response.headers, response.content)
                except ApiError:
                    reply = None
            else:
                await response.read()
                error = f"Wrong response from the webhook: {status} {response.reason or ''}"
    except asyncio.TimeoutError:
        error = "Connection timed out"
    except (ClientError, OSError) as exc:
        error = f"Connection failed: {type(exc).__name__}"
    core.webhook_deliveries.append(
        WebhookDelivery(
            bot_id=bot.id,
            update_id=int(update["update_id"]),
            url=config.url,
            attempt=attempt,
            status=status,
            error=error,
            time=time.time(),
        )
    )
    if reply and isinstance(reply.get("method"), str):
        method = str(reply.pop("method"))
        executor = core.ensure_executor()
        await executor(bot, method, Params(reply), "webhook_reply")
    return status, error
