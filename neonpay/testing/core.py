"""The emulator's world: bots, users, chats, update queues and call records.

:class:`EmulatorCore` is shared by the HTTP layer, the method handlers and the simulated
user API. It does not know about HTTP; it only keeps state consistent and wakes whoever
waits for it (long polls, webhook workers, ``wait_for_call``).
"""

from __future__ import annotations

import asyncio
import copy
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from aiohttp import ClientSession

from .errors import ApiError, bad_request, forbidden, unauthorized
from .params import Params
from .state import (
    DEFAULT_UPDATE_TYPES,
    BotState,
    CallRecord,
    ChatState,
    InvoiceRecord,
    PreCheckoutRecord,
    UserState,
    WebhookDelivery,
)
from .tokens import mask_token, parse_token

__all__ = ["EmulatorConfig", "EmulatorCore", "MethodExecutor", "update_type"]

logger = logging.getLogger("neonpay.testing")

#: Runs a Bot API method for a bot: (bot, method name, params, source) -> (status, body).
MethodExecutor = Callable[[BotState, str, Params, str], Awaitable[tuple[int, dict[str, Any]]]]


@dataclass
class EmulatorConfig:
    """Tunable limits of the emulator (all times in seconds)."""

    precheckout_timeout: float = 10.0
    max_poll_timeout: float = 50.0
    webhook_retry_delay: float = 0.1
    webhook_max_attempts: int = 5
    webhook_timeout: float = 10.0
    max_star_amount: int = 100_000
    max_subscription_amount: int = 10_000
    auto_register_bots: bool = True
    strict_chats: bool = False
    allow_remote_webhooks: bool = False


def update_type(update: dict[str, Any]) -> str:
    """The type of an update: the name of its single payload field."""
    for key in update:
        if key != "update_id":
            return key
    return "unknown"


class EmulatorCore:
    """All emulator state plus the operations that keep it consistent."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.bots: dict[int, BotState] = {}
        self.users: dict[int, UserState] = {}
        self.calls: list[CallRecord] = []
        self.webhook_deliveries: list[WebhookDelivery] = []
        self.invoices: dict[str, InvoiceRecord] = {}
        self.precheckouts: dict[str, PreCheckoutRecord] = {}
        self.callback_queries: dict[str, tuple[int, dict[str, Any]]] = {}
        self.callback_answers: dict[str, dict[str, Any]] = {}
        self.bot_messages: list[tuple[int, dict[str, Any]]] = []
        self.closing = False
        self.executor: MethodExecutor | None = None
        self.http_session: ClientSession | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._calls_changed: asyncio.Event | None = None
        self._used_ids: set[str] = set()

    # ----------------------------------------------------------------- ids and clocks

    @staticmethod
    def now() -> int:
        """Unix time as Telegram dates are given."""
        return int(time.time())

    def numeric_id(self) -> str:
        """A fresh 19-digit string id (query ids look like this in Telegram)."""
        while True:
            value = str(10**18 + secrets.randbelow(9 * 10**18))
            if value not in self._used_ids:
                self._used_ids.add(value)
                return value

    def token_id(self, prefix: str, nbytes: int = 24) -> str:
        """A fresh url-safe id with a prefix (file ids, charge ids, invoice slugs)."""
        while True:
            value = prefix + secrets.token_urlsafe(nbytes)
            if value not in self._used_ids:
                self._used_ids.add(value)
                return value

    # ----------------------------------------------------------------- background tasks

    def spawn(
        self, coro: Coroutine[Any, Any, Any], *, name: str | None = None
    ) -> asyncio.Task[Any]:
        """Run ``coro`` in a tracked task that :meth:`shutdown` cancels."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("emulator background task failed", exc_info=task.exception())

    async def shutdown(self) -> None:
        """Wake every waiter, fail pending pre-checkout queries, cancel all tasks."""
        self.closing = True
        for bot in self.bots.values():
            self.wake(bot)
        for record in self.precheckouts.values():
            if record.waiter is not None and not record.waiter.done():
                record.waiter.set_result((False, "emulator closed"))
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()

    # ----------------------------------------------------------------- bots and users

    def register_bot(
        self, token: str, *, username: str | None = None, first_name: str | None = None
    ) -> BotState:
        """Register (or update) the bot owning ``token``."""
        bot_id = parse_token(token)
        if bot_id is None:
            raise ValueError(f"malformed bot token {mask_token(token)!r}")
        bot = self.bots.get(bot_id)
        if bot is None:
            bot = BotState(
                id=bot_id,
                token=token,
                username=username or f"test_{bot_id}_bot",
                first_name=first_name or "Test Bot",
            )
            self.bots[bot_id] = bot
        else:
            bot.token = token
            if username:
                bot.username = username
            if first_name:
                bot.first_name = first_name
        return bot

    def authenticate(self, token: str) -> BotState:
        """The bot for an API token; 401 for malformed, unknown or revoked tokens."""
        bot_id = parse_token(token)
        if bot_id is None:
            raise unauthorized()
        bot = self.bots.get(bot_id)
        if bot is None:
            if not self.config.auto_register_bots:
                raise unauthorized()
            return self.register_bot(token)
        if not secrets.compare_digest(bot.token, token):
            raise unauthorized()
        return bot

    def find_bot(self, ref: BotState | int | str | None) -> BotState:
        """Resolve a bot from a state, id or token; ``None`` means the only bot."""
        if isinstance(ref, BotState):
            return ref
        if ref is None:
            if len(self.bots) == 1:
                return next(iter(self.bots.values()))
            raise ValueError("several (or no) bots are registered: pass the bot token or id")
        if isinstance(ref, int):
            bot = self.bots.get(ref)
            if bot is None:
                raise KeyError(f"unknown bot id {ref}")
            return bot
        bot_id = parse_token(ref)
        if bot_id is None:
            raise ValueError(f"malformed bot token {mask_token(ref)!r}")
        bot = self.bots.get(bot_id)
        return bot if bot is not None else self.register_bot(ref)

    def user(self, user_id: int) -> UserState:
        """The simulated user ``user_id`` (created on first use)."""
        user = self.users.get(user_id)
        if user is None:
            user = UserState(id=user_id, first_name=f"User{user_id}")
            self.users[user_id] = user
        return user

    # ----------------------------------------------------------------- chats and messages

    def private_chat(self, bot: BotState, user_id: int) -> ChatState:
        """The private chat between ``bot`` and a user (created on first use)."""
        chat = bot.chats.get(user_id)
        if chat is None:
            user = self.user(user_id)
            chat = ChatState(
                id=user_id,
                type="private",
                first_name=user.first_name,
                last_name=user.last_name,
                username=user.username,
            )
            bot.chats[user_id] = chat
        return chat

    def resolve_chat(self, bot: BotState, chat_ref: int | str) -> ChatState:
        """The chat a bot addresses with ``chat_id``; 400 ``chat not found`` if unknown."""
        if isinstance(chat_ref, str):
            wanted = chat_ref.lstrip("@").lower()
            for known in bot.chats.values():
                if known.username and known.username.lower() == wanted:
                    return known
            raise bad_request("chat not found")
        existing = bot.chats.get(chat_ref)
        if existing is not None:
            return existing
        if chat_ref > 0:
            if self.config.strict_chats:
                raise forbidden("bot can't initiate conversation with a user")
            return self.private_chat(bot, chat_ref)
        if chat_ref == 0 or self.config.strict_chats:
            raise bad_request("chat not found")
        is_super = str(chat_ref).startswith("-100")
        chat = ChatState(
            id=chat_ref,
            type="supergroup" if is_super else "group",
            title=f"Test group {abs(chat_ref)}",
        )
        bot.chats[chat_ref] = chat
        return chat

    def store_message(
        self, bot: BotState, chat: ChatState, sender: dict[str, Any], content: dict[str, Any]
    ) -> dict[str, Any]:
        """Create a message in ``chat`` and return it (the stored, mutable dict)."""
        message_id = chat.next_message_id
        chat.next_message_id += 1
        message: dict[str, Any] = {
            "message_id": message_id,
            "from": dict(sender),
            "chat": chat.to_dict(),
            "date": self.now(),
        }
        message.update(content)
        chat.messages[message_id] = message
        if sender.get("is_bot") and sender.get("id") == bot.id:
            self.bot_messages.append((bot.id, message))
        return message

    def get_message(self, bot: BotState, chat_id: int, message_id: int) -> dict[str, Any] | None:
        """A message the bot can still see, or ``None``."""
        chat = bot.chats.get(chat_id)
        if chat is None:
            return None
        return chat.messages.get(message_id)

    # ----------------------------------------------------------------- updates

    def _signal(self, bot: BotState) -> asyncio.Event:
        if bot.signal is None:
            bot.signal = asyncio.Event()
        return bot.signal

    def wake(self, bot: BotState) -> None:
        """Wake long polls and the webhook worker of ``bot``."""
        if bot.signal is not None:
            bot.signal.set()
            bot.signal = None

    async def wait_signal(self, bot: BotState, timeout: float | None) -> None:
        """Wait until :meth:`wake` is called for ``bot`` or ``timeout`` passes."""
        event = self._signal(bot)
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except asyncio.TimeoutError:
            return

    def push_update(
        self,
        bot: BotState,
        kind: str,
        payload: dict[str, Any],
        *,
        update_id: int | None = None,
        force: bool = False,
    ) -> dict[str, Any] | None:
        """Queue an update of type ``kind`` for ``bot``.

        The update is dropped (``None`` returned) when ``kind`` is not among the bot's
        ``allowed_updates`` -- as Telegram filters when updates are created -- unless
        ``force`` is set. A given ``update_id`` is reused (webhook redelivery).
        """
        if not force and kind not in bot.allowed_updates:
            logger.debug("bot %s: dropped %s update (not allowed)", bot.id, kind)
            return None
        if update_id is None:
            update_id = bot.next_update_id
            bot.next_update_id += 1
        update: dict[str, Any] = {"update_id": update_id, kind: copy.deepcopy(payload)}
        bot.pending.append(update)
        bot.history.append(update)
        self.wake(bot)
        return update

    def confirm_updates(self, bot: BotState, offset: int) -> None:
        """Apply a ``getUpdates`` offset: forget confirmed updates."""
        if offset > 0:
            bot.pending = [u for u in bot.pending if u["update_id"] >= offset]
        elif offset < 0:
            keep = -offset
            bot.pending = bot.pending[-keep:] if keep < len(bot.pending) else bot.pending

    def set_allowed_updates(self, bot: BotState, allowed: list[Any] | None) -> None:
        """Apply an ``allowed_updates`` list (``None`` keeps the previous setting)."""
        if allowed is None:
            return
        if not all(isinstance(item, str) for item in allowed):
            raise bad_request("can't parse allowed updates JSON array")
        bot.allowed_updates = frozenset(allowed) if allowed else DEFAULT_UPDATE_TYPES

    def drop_pending(self, bot: BotState) -> None:
        """Forget every queued update (``drop_pending_updates``)."""
        bot.pending.clear()

    # ----------------------------------------------------------------- call records

    def record_call(self, record: CallRecord) -> None:
        """Append a call record and wake :meth:`wait_for_call` waiters."""
        self.calls.append(record)
        if self._calls_changed is not None:
            self._calls_changed.set()
            self._calls_changed = None

    async def wait_calls_changed(self, timeout: float) -> None:
        """Wait until a call is recorded or ``timeout`` passes."""
        if self._calls_changed is None:
            self._calls_changed = asyncio.Event()
        try:
            await asyncio.wait_for(self._calls_changed.wait(), timeout)
        except asyncio.TimeoutError:
            return

    def ensure_executor(self) -> MethodExecutor:
        """The method executor wired by the server; fails loudly if missing."""
        if self.executor is None:
            raise ApiError(500, "Internal Server Error: no method executor")
        return self.executor
