"""Messages sent by the bot: send, edit, delete, and callback query answers.

Formatting (``parse_mode``) is not interpreted: text is stored and echoed as sent.
"""

from __future__ import annotations

import hashlib
from typing import Any

from ..errors import bad_request
from ..params import Params, UploadedFile
from ..registry import MethodContext, method
from ..state import ChatState

MAX_TEXT = 4096
MAX_CAPTION = 1024

NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly "
    "the same as a current content and reply markup of the message"
)


def _reply_markup(params: Params) -> dict[str, Any] | None:
    markup = params.get_object("reply_markup", what="reply keyboard markup")
    if markup is None:
        return None
    keyboard = markup.get("inline_keyboard")
    if keyboard is not None:
        if not isinstance(keyboard, list) or not all(isinstance(row, list) for row in keyboard):
            raise bad_request(
                "can't parse inline keyboard button: "
                "InlineKeyboardMarkup.inline_keyboard must be an Array of Arrays"
            )
        for row in keyboard:
            for button in row:
                if not isinstance(button, dict) or not isinstance(button.get("text"), str):
                    raise bad_request("can't parse inline keyboard button: Text must be a String")
    return markup


def _entities(params: Params, name: str) -> list[dict[str, Any]] | None:
    entities = params.get_list(name, what="message entities")
    if entities is None:
        return None
    if not all(isinstance(e, dict) for e in entities):
        raise bad_request("can't parse entities: MessageEntity must be an Object")
    return entities


def _inline_keyboard(markup: dict[str, Any] | None) -> dict[str, Any] | None:
    """``markup`` when it is an inline keyboard: the only kind a message echoes."""
    return markup if markup is not None and "inline_keyboard" in markup else None


def _send(ctx: MethodContext, chat: ChatState, content: dict[str, Any]) -> dict[str, Any]:
    """Store ``content`` with the request's inline keyboard as the bot's message in ``chat``.

    Raises:
        ApiError: the request's ``reply_markup`` is malformed.
    """
    markup = _inline_keyboard(_reply_markup(ctx.params))
    if markup is not None:
        content["reply_markup"] = markup
    message = ctx.core.store_message(ctx.bot, chat, ctx.bot.user_dict(), content)
    return dict(message)


@method("sendMessage")
async def send_message(ctx: MethodContext) -> dict[str, Any]:
    """Send a text message to a chat."""
    params = ctx.params
    chat = ctx.core.resolve_chat(ctx.bot, params.get_chat_id())
    text = params.get_str("text")
    if not text or not text.strip():
        raise bad_request("message text is empty")
    if len(text) > MAX_TEXT:
        raise bad_request("message is too long")
    content: dict[str, Any] = {"text": text}
    entities = _entities(params, "entities")
    if entities:
        content["entities"] = entities
    return _send(ctx, chat, content)


def _photo_sizes(ctx: MethodContext, photo: str | UploadedFile) -> list[dict[str, Any]]:
    if isinstance(photo, UploadedFile):
        size = len(photo.data)
        unique = hashlib.sha256(photo.data).hexdigest()[:16]
    else:
        size = 0
        unique = hashlib.sha256(photo.encode("utf-8")).hexdigest()[:16]
    base = photo if isinstance(photo, str) and photo.startswith("AgAC") else None
    sizes = []
    for index, (width, height) in enumerate(((90, 90), (320, 320), (800, 800))):
        file_id = base if base and index == 2 else ctx.core.token_id("AgAC", 30)
        entry: dict[str, Any] = {
            "file_id": file_id,
            "file_unique_id": f"AQAD{unique}{index}",
            "width": width,
            "height": height,
        }
        if size:
            entry["file_size"] = size
        sizes.append(entry)
    return sizes


@method("sendPhoto")
async def send_photo(ctx: MethodContext) -> dict[str, Any]:
    """Send a photo (file_id, URL or uploaded file) with an optional caption."""
    params = ctx.params
    chat = ctx.core.resolve_chat(ctx.bot, params.get_chat_id())
    photo = params.get_file("photo")
    if photo is None:
        raise bad_request("there is no photo in the request")
    content: dict[str, Any] = {"photo": _photo_sizes(ctx, photo)}
    caption = params.get_str("caption")
    if caption:
        if len(caption) > MAX_CAPTION:
            raise bad_request("message caption is too long")
        content["caption"] = caption
        entities = _entities(params, "caption_entities")
        if entities:
            content["caption_entities"] = entities
    return _send(ctx, chat, content)


def _target_message(ctx: MethodContext, missing: str) -> dict[str, Any] | None:
    """The message addressed by chat_id+message_id; ``None`` for inline messages."""
    params = ctx.params
    if params.present("inline_message_id") and not params.present("chat_id"):
        return None
    chat = ctx.core.resolve_chat(ctx.bot, params.get_chat_id())
    message_id = params.get_int("message_id")
    if message_id is None:
        raise bad_request("message identifier is not specified")
    message = chat.messages.get(message_id)
    if message is None:
        raise bad_request(missing)
    return message


def _editable_message(ctx: MethodContext) -> dict[str, Any] | None:
    """The bot's own message to edit; ``None`` for inline messages.

    Raises:
        ApiError: no such message, or another sender's.
    """
    message = _target_message(ctx, "message to edit not found")
    if message is not None and message.get("from", {}).get("id") != ctx.bot.id:
        raise bad_request("message can't be edited")
    return message


def _edited(
    ctx: MethodContext, message: dict[str, Any], markup: dict[str, Any] | None
) -> dict[str, Any]:
    """Give ``message`` the inline keyboard ``markup`` (None: none), stamp the edit."""
    if markup is None:
        message.pop("reply_markup", None)
    else:
        message["reply_markup"] = markup
    message["edit_date"] = ctx.core.now()
    return dict(message)


@method("editMessageText")
async def edit_message_text(ctx: MethodContext) -> dict[str, Any] | bool:
    """Edit the text (and inline keyboard) of a bot message."""
    params = ctx.params
    text = params.get_str("text")
    if not text or not text.strip():
        raise bad_request("message text is empty")
    if len(text) > MAX_TEXT:
        raise bad_request("MESSAGE_TOO_LONG")
    markup = _reply_markup(params)
    message = _editable_message(ctx)
    if message is None:
        return True
    if "text" not in message:
        raise bad_request("there is no text in the message to edit")
    new_markup = _inline_keyboard(markup)
    if message.get("text") == text and message.get("reply_markup") == new_markup:
        raise bad_request(NOT_MODIFIED)
    message["text"] = text
    entities = _entities(params, "entities")
    if entities:
        message["entities"] = entities
    else:
        message.pop("entities", None)
    return _edited(ctx, message, new_markup)


@method("editMessageReplyMarkup")
async def edit_message_reply_markup(ctx: MethodContext) -> dict[str, Any] | bool:
    """Replace (or remove) the inline keyboard of a bot message."""
    markup = _inline_keyboard(_reply_markup(ctx.params))
    message = _editable_message(ctx)
    if message is None:
        return True
    if message.get("reply_markup") == markup:
        raise bad_request(NOT_MODIFIED)
    return _edited(ctx, message, markup)


@method("deleteMessage")
async def delete_message(ctx: MethodContext) -> bool:
    """Delete a message from a chat."""
    chat = ctx.core.resolve_chat(ctx.bot, ctx.params.get_chat_id())
    message_id = ctx.params.get_int("message_id")
    if message_id is None:
        raise bad_request("message identifier is not specified")
    if chat.messages.pop(message_id, None) is None:
        raise bad_request("message to delete not found")
    return True


@method("answerCallbackQuery")
async def answer_callback_query(ctx: MethodContext) -> bool:
    """Answer a callback query created by :meth:`BotAPIEmulator.press_button`."""
    params = ctx.params
    query_id = params.get_str("callback_query_id") or ""
    entry = ctx.core.callback_queries.get(query_id)
    if entry is None or entry[0] != ctx.bot.id or query_id in ctx.core.callback_answers:
        raise bad_request("query is too old and response timeout expired or query ID is invalid")
    text = params.get_str("text")
    if text is not None and len(text) > 200:
        raise bad_request("MESSAGE_TOO_LONG")
    ctx.core.callback_answers[query_id] = {
        "text": text,
        "show_alert": params.get_bool("show_alert"),
        "url": params.get_str("url"),
        "cache_time": params.get_int("cache_time") or 0,
    }
    return True
