"""Bot identity and settings methods: getMe, commands, names, descriptions, menu button."""

from __future__ import annotations

import json
import re
from typing import Any

from ..errors import bad_request
from ..registry import MethodContext, method

_COMMAND_RE = re.compile(r"[a-z0-9_]{1,32}")
_CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)


@method("getMe")
async def get_me(ctx: MethodContext) -> dict[str, Any]:
    """The bot's own ``User`` object."""
    return ctx.bot.me_dict()


@method("logOut")
async def log_out(ctx: MethodContext) -> bool:
    """Harmless: the emulator has no cloud server to log out from."""
    del ctx
    return True


@method("close")
async def close(ctx: MethodContext) -> bool:
    """Harmless: there is no instance to close."""
    del ctx
    return True


def _commands_key(ctx: MethodContext) -> tuple[str, str]:
    scope = ctx.params.get_object("scope", what="bot command scope") or {"type": "default"}
    if not isinstance(scope.get("type"), str):
        raise bad_request("can't parse BotCommandScope JSON object")
    return json.dumps(scope, sort_keys=True), ctx.params.get_str("language_code") or ""


@method("setMyCommands")
async def set_my_commands(ctx: MethodContext) -> bool:
    """Store the command list for a scope and language."""
    commands = ctx.params.get_list("commands", what="bot commands")
    if commands is None:
        raise bad_request("commands is empty")
    if len(commands) > 100:
        raise bad_request("BOT_COMMANDS_TOO_MUCH")
    cleaned: list[dict[str, Any]] = []
    for item in commands:
        if not isinstance(item, dict):
            raise bad_request("can't parse BotCommand JSON object")
        command = item.get("command")
        description = item.get("description")
        if not isinstance(command, str) or not _COMMAND_RE.fullmatch(command):
            raise bad_request("BOT_COMMAND_INVALID")
        if not isinstance(description, str) or not 1 <= len(description) <= 256:
            raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
        cleaned.append({"command": command, "description": description})
    ctx.bot.commands[_commands_key(ctx)] = cleaned
    return True


@method("getMyCommands")
async def get_my_commands(ctx: MethodContext) -> list[dict[str, Any]]:
    """The command list for a scope and language (``[]`` if none)."""
    return [dict(c) for c in ctx.bot.commands.get(_commands_key(ctx), [])]


@method("deleteMyCommands")
async def delete_my_commands(ctx: MethodContext) -> bool:
    """Forget the command list for a scope and language."""
    ctx.bot.commands.pop(_commands_key(ctx), None)
    return True


def _setting_key(ctx: MethodContext, name: str) -> str:
    return f"{name}:{ctx.params.get_str('language_code') or ''}"


def _set_text(ctx: MethodContext, name: str, limit: int) -> bool:
    value = ctx.params.get_str(name) or ""
    if len(value) > limit:
        raise bad_request(f"{name.upper()}_INVALID")
    ctx.bot.settings[_setting_key(ctx, name)] = value
    return True


def _get_text(ctx: MethodContext, name: str, default: str) -> dict[str, str]:
    value = ctx.bot.settings.get(_setting_key(ctx, name), default)
    return {name: str(value)}


@method("setMyName")
async def set_my_name(ctx: MethodContext) -> bool:
    """Store the bot's name for a language."""
    return _set_text(ctx, "name", 64)


@method("getMyName")
async def get_my_name(ctx: MethodContext) -> dict[str, str]:
    """The bot's name for a language."""
    return _get_text(ctx, "name", ctx.bot.first_name)


@method("setMyDescription")
async def set_my_description(ctx: MethodContext) -> bool:
    """Store the bot's description for a language."""
    return _set_text(ctx, "description", 512)


@method("getMyDescription")
async def get_my_description(ctx: MethodContext) -> dict[str, str]:
    """The bot's description for a language."""
    return _get_text(ctx, "description", "")


@method("setMyShortDescription")
async def set_my_short_description(ctx: MethodContext) -> bool:
    """Store the bot's short description for a language."""
    return _set_text(ctx, "short_description", 120)


@method("getMyShortDescription")
async def get_my_short_description(ctx: MethodContext) -> dict[str, str]:
    """The bot's short description for a language."""
    return _get_text(ctx, "short_description", "")


@method("setChatMenuButton")
async def set_chat_menu_button(ctx: MethodContext) -> bool:
    """Store the menu button (per chat or default)."""
    button = ctx.params.get_object("menu_button", what="menu button") or {"type": "default"}
    chat_id = ctx.params.get_int("chat_id")
    ctx.bot.settings[f"menu_button:{chat_id or ''}"] = button
    return True


@method("getChatMenuButton")
async def get_chat_menu_button(ctx: MethodContext) -> dict[str, Any]:
    """The menu button (per chat or default)."""
    chat_id = ctx.params.get_int("chat_id")
    button = ctx.bot.settings.get(f"menu_button:{chat_id or ''}") or ctx.bot.settings.get(
        "menu_button:"
    )
    return dict(button) if isinstance(button, dict) else {"type": "commands"}


@method("sendChatAction")
async def send_chat_action(ctx: MethodContext) -> bool:
    """Accept a chat action for a known chat."""
    ctx.core.resolve_chat(ctx.bot, ctx.params.get_chat_id())
    action = ctx.params.get_str("action")
    if action not in _CHAT_ACTIONS:
        raise bad_request("wrong parameter action in request")
    return True


@method("getChat")
async def get_chat(ctx: MethodContext) -> dict[str, Any]:
    """A ``ChatFullInfo`` built from what the emulator knows about the chat."""
    chat = ctx.core.resolve_chat(ctx.bot, ctx.params.get_chat_id())
    data = chat.to_dict()
    data["accent_color_id"] = 0
    data["max_reaction_count"] = 11
    data["accepted_gift_types"] = {
        "unlimited_gifts": True,
        "limited_gifts": True,
        "unique_gifts": True,
        "premium_subscription": True,
    }
    return data
