"""Bot framework adapters: how NEONPAY sends invoices and receives payment updates.

One module per framework; :func:`attach_adapter` detects which one a bot object needs,
by the module and class names of the object's type, so frameworks that are not
installed are never imported:

=========== ========================================== ==================================
adapter     bot object                                 payment handlers registered on
=========== ========================================== ==================================
aiogram     ``aiogram.Bot``                            ``dispatcher=`` (Dispatcher/Router)
ptb         ``telegram.Bot`` / ``telegram.ext.ExtBot`` ``application=``, or the object
            or ``telegram.ext.Application``            itself when it is the Application
telebot     ``telebot.TeleBot`` / ``AsyncTeleBot``     the bot
pyrogram    ``pyrogram.Client`` (pyrogram, kurigram,   the client
            pyrofork)
raw         :class:`neonpay.adapters.raw.RawBotAPI`    the RawBotAPI (polling or webhook)
=========== ========================================== ==================================

The adapter classes keep the names of neonpay 2.x (``AiogramAdapter``,
``PythonTelegramBotAdapter``, ``TelebotAdapter``, ``PyrogramAdapter``, ``RawAPIAdapter``,
``BotAPIAdapter``) and load on first use.
"""

from __future__ import annotations

import importlib
import inspect
import logging
from typing import TYPE_CHECKING, Any

from neonpay.adapters.logs import protect_logs
from neonpay.core.gateway import BotLibrary
from neonpay.errors import ConfigurationError

if TYPE_CHECKING:
    from neonpay.adapters.base import AdapterBase
    from neonpay.core.neonpay import NeonPay

__all__ = [
    "SUPPORTED",
    "AiogramAdapter",
    "BotAPIAdapter",
    "PyrogramAdapter",
    "PythonTelegramBotAdapter",
    "RawAPIAdapter",
    "RawBotAPI",
    "TelebotAdapter",
    "attach_adapter",
    "detect_adapter",
    "protect_logs",
]

logger = logging.getLogger("neonpay.adapters")

#: Adapter names and what they accept.
SUPPORTED: dict[str, str] = {
    "aiogram": "aiogram 3 Bot (with dispatcher= a Dispatcher or Router)",
    "ptb": "python-telegram-bot 21/22 Bot or Application (with application=)",
    "telebot": "pyTelegramBotAPI TeleBot or AsyncTeleBot",
    "pyrogram": "Pyrogram-compatible Client (pyrogram, kurigram, pyrofork)",
    "raw": "neonpay.adapters.raw.RawBotAPI (aiohttp, a token and an API base URL)",
}

_ALIASES: dict[str, str] = {
    "aiogram": "aiogram",
    "ptb": "ptb",
    "python-telegram-bot": "ptb",
    "python_telegram_bot": "ptb",
    "telegram": "ptb",
    "telebot": "telebot",
    "pytelegrambotapi": "telebot",
    "pyrogram": "pyrogram",
    "kurigram": "pyrogram",
    "pyrofork": "pyrogram",
    "raw": "raw",
    "botapi": "raw",
}

_LAZY: dict[str, tuple[str, str]] = {
    "AiogramAdapter": ("neonpay.adapters.aiogram", "AiogramAdapter"),
    "PythonTelegramBotAdapter": ("neonpay.adapters.ptb", "PythonTelegramBotAdapter"),
    "TelebotAdapter": ("neonpay.adapters.telebot", "TelebotAdapter"),
    "PyrogramAdapter": ("neonpay.adapters.pyrogram", "PyrogramAdapter"),
    "RawAPIAdapter": ("neonpay.adapters.raw", "RawAPIAdapter"),
    "BotAPIAdapter": ("neonpay.adapters.raw", "RawAPIAdapter"),
    "RawBotAPI": ("neonpay.adapters.raw", "RawBotAPI"),
}


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'neonpay.adapters' has no attribute {name!r}")
    return getattr(importlib.import_module(target[0]), target[1])


def _unsupported(bot_instance: Any) -> ConfigurationError:
    supported = "; ".join(f"{name}: {what}" for name, what in SUPPORTED.items())
    return ConfigurationError(
        f"unsupported bot object {type(bot_instance).__name__}; supported: {supported}"
    )


def detect_adapter(bot_instance: Any) -> str:
    """The adapter name (a key of :data:`SUPPORTED`) for ``bot_instance``.

    Looks only at the module and class names along the type's MRO, so no framework is
    imported.

    Raises:
        ConfigurationError: no adapter fits; the message lists what is supported.
    """
    for cls in type(bot_instance).__mro__:
        module = getattr(cls, "__module__", "") or ""
        root = module.split(".", 1)[0]
        name = cls.__name__
        if root == "aiogram" and name == "Bot":
            return "aiogram"
        if root == "telegram" and name in ("Bot", "ExtBot", "Application"):
            return "ptb"
        if root == "telebot" and name in ("TeleBot", "AsyncTeleBot"):
            return "telebot"
        if root in ("pyrogram", "pyrofork") and name == "Client":
            return "pyrogram"
        if module == "neonpay.adapters.raw" and name == "RawBotAPI":
            return "raw"
    raise _unsupported(bot_instance)


def _adapter_name(adapter_type: str | BotLibrary) -> str:
    key = adapter_type.value if isinstance(adapter_type, BotLibrary) else str(adapter_type)
    name = _ALIASES.get(key.strip().lower())
    if name is None:
        raise ConfigurationError(
            f"unknown adapter_type {adapter_type!r}; choose one of: {', '.join(SUPPORTED)}"
        )
    return name


def _is_ptb_application(obj: Any) -> bool:
    return hasattr(obj, "add_handlers") and hasattr(obj, "bot") and hasattr(obj, "update_queue")


def _build(
    name: str, neonpay: NeonPay, bot_instance: Any, dispatcher: Any, application: Any
) -> AdapterBase:
    cashier = neonpay.cashier
    if dispatcher is not None and name != "aiogram":
        raise ConfigurationError("dispatcher= is for aiogram; this bot is not an aiogram Bot")
    if application is not None and name != "ptb":
        raise ConfigurationError(
            "application= is for python-telegram-bot; this bot is not a python-telegram-bot Bot"
        )
    if name == "aiogram":
        from neonpay.adapters.aiogram import AiogramAdapter

        if dispatcher is None:
            logger.warning(
                "aiogram Bot without dispatcher=: invoices can be sent but payments are not "
                "handled; pass create_neonpay(bot_instance=bot, dispatcher=dp)"
            )
        return AiogramAdapter(bot_instance, cashier, dispatcher=dispatcher)
    if name == "ptb":
        from neonpay.adapters.ptb import PythonTelegramBotAdapter

        if _is_ptb_application(bot_instance):
            if application is not None and application is not bot_instance:
                raise ConfigurationError("pass the Application once: bot_instance or application")
            application, bot = bot_instance, bot_instance.bot
        else:
            bot = bot_instance
        if application is None:
            logger.warning(
                "python-telegram-bot Bot without application=: invoices can be sent but "
                "payments are not handled; pass create_neonpay(bot_instance=app)"
            )
        return PythonTelegramBotAdapter(bot, cashier, application=application)
    if name == "telebot":
        from neonpay.adapters.telebot import TelebotAdapter

        is_async = inspect.iscoroutinefunction(getattr(bot_instance, "send_message", None))
        return TelebotAdapter(bot_instance, cashier, is_async=is_async)
    if name == "pyrogram":
        from neonpay.adapters.pyrogram import PyrogramAdapter

        return PyrogramAdapter(bot_instance, cashier)
    from neonpay.adapters.raw import RawAPIAdapter, RawBotAPI

    if not isinstance(bot_instance, RawBotAPI):
        raise ConfigurationError(
            "adapter_type='raw' needs a neonpay.adapters.raw.RawBotAPI(token, api_base=...)"
        )
    return RawAPIAdapter(bot_instance, cashier)


def attach_adapter(
    neonpay: NeonPay,
    bot_instance: Any,
    *,
    dispatcher: Any = None,
    application: Any = None,
    adapter_type: str | BotLibrary | None = None,
) -> None:
    """Detect the framework of ``bot_instance``, attach its adapter to ``neonpay`` and
    register the payment handlers (see the table in the module docs).

    Also masks the bot's token in log records from now on (:func:`protect_logs`).

    Raises:
        ConfigurationError: an unsupported bot object (the message lists what is
            supported), an unknown ``adapter_type``, or ``dispatcher=`` /
            ``application=`` given for another framework.
    """
    name = detect_adapter(bot_instance) if adapter_type is None else _adapter_name(adapter_type)
    neonpay.adapter = _build(name, neonpay, bot_instance, dispatcher, application)
