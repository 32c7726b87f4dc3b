"""Getting updates: getUpdates long polling and the webhook methods."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from ..errors import bad_request, conflict
from ..registry import MethodContext, method
from ..state import WebhookConfig
from ..webhook import ensure_webhook_worker, validate_webhook_url

_SECRET_RE = re.compile(r"[A-Za-z0-9_-]{1,256}")

WEBHOOK_ACTIVE = (
    "can't use getUpdates method while webhook is active; use deleteWebhook to delete the "
    "webhook first"
)
OTHER_POLLER = (
    "terminated by other getUpdates request; make sure that only one bot instance is running"
)


@method("getUpdates")
async def get_updates(ctx: MethodContext) -> list[dict[str, Any]]:
    """Long polling: confirm with ``offset``, wait up to ``timeout`` for new updates.

    ``timeout`` is capped by the emulator's ``max_poll_timeout``; a newer ``getUpdates``
    call for the same bot ends an older one with 409, as Telegram does.
    """
    core, bot, params = ctx.core, ctx.bot, ctx.params
    if bot.webhook is not None:
        raise conflict(WEBHOOK_ACTIVE)
    offset = params.get_int("offset") or 0
    limit = params.get_int("limit") or 100
    limit = min(max(limit, 1), 100)
    timeout = params.get_float("timeout") or 0.0
    timeout = min(max(timeout, 0.0), core.config.max_poll_timeout)
    core.set_allowed_updates(bot, params.get_list("allowed_updates", what="allowed updates"))
    core.confirm_updates(bot, offset)
    bot.poll_generation += 1
    generation = bot.poll_generation
    core.wake(bot)  # an older long poll of this bot ends with 409
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        if bot.webhook is not None:
            raise conflict("terminated by setWebhook request")
        if generation != bot.poll_generation:
            raise conflict(OTHER_POLLER)
        if bot.pending or core.closing:
            return [dict(update) for update in bot.pending[:limit]]
        remaining = deadline - loop.time()
        if remaining <= 0:
            return []
        await core.wait_signal(bot, remaining)


@method("setWebhook")
async def set_webhook(ctx: MethodContext) -> bool:
    """Set (or with an empty ``url`` remove) the webhook and start delivering to it."""
    core, bot, params = ctx.core, ctx.bot, ctx.params
    url = (params.get_str("url") or "").strip()
    drop = params.get_bool("drop_pending_updates")
    if not url:
        bot.webhook = None
        if drop:
            core.drop_pending(bot)
        core.wake(bot)
        return True
    validate_webhook_url(url, allow_remote=core.config.allow_remote_webhooks)
    secret = params.get_str("secret_token")
    if secret is not None and secret != "" and not _SECRET_RE.fullmatch(secret):
        raise bad_request("secret token contains unallowed characters")
    max_connections = params.get_int("max_connections")
    if max_connections is not None and not 1 <= max_connections <= 100:
        raise bad_request("bad webhook: invalid max_connections specified")
    allowed = params.get_list("allowed_updates", what="allowed updates")
    core.set_allowed_updates(bot, allowed)
    if drop:
        core.drop_pending(bot)
    bot.webhook = WebhookConfig(
        url=url,
        secret_token=secret or None,
        max_connections=max_connections or 40,
        ip_address=params.get_str("ip_address"),
        allowed_updates=list(allowed) if allowed is not None else None,
    )
    core.wake(bot)
    ensure_webhook_worker(core, bot)
    return True


@method("deleteWebhook")
async def delete_webhook(ctx: MethodContext) -> bool:
    """Remove the webhook (optionally dropping pending updates); polling works again."""
    bot = ctx.bot
    bot.webhook = None
    if ctx.params.get_bool("drop_pending_updates"):
        ctx.core.drop_pending(bot)
    ctx.core.wake(bot)
    return True


@method("getWebhookInfo")
async def get_webhook_info(ctx: MethodContext) -> dict[str, Any]:
    """``WebhookInfo``; ``url`` is empty while polling."""
    bot = ctx.bot
    if bot.webhook is None:
        return {
            "url": "",
            "has_custom_certificate": False,
            "pending_update_count": len(bot.pending),
        }
    return bot.webhook.info(len(bot.pending))
