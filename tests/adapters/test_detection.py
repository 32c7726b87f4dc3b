"""Detecting the framework of a bot object, and what create_neonpay refuses."""

from __future__ import annotations

import logging
import subprocess
import sys
from typing import Any

import pytest
from aiogram import Bot as AiogramBot
from aiogram import Dispatcher
from telebot import TeleBot
from telebot.async_telebot import AsyncTeleBot
from telegram import Bot as PTBBot
from telegram.ext import ApplicationBuilder

from neonpay import ConfigurationError, create_neonpay
from neonpay.adapters import SUPPORTED, detect_adapter
from neonpay.adapters.aiogram import AiogramAdapter
from neonpay.adapters.ptb import PythonTelegramBotAdapter
from neonpay.adapters.raw import RawAPIAdapter, RawBotAPI
from neonpay.adapters.telebot import TelebotAdapter
from neonpay.core.gateway import BotLibrary

from .flow import TOKEN


async def test_each_framework_is_detected(sqlite_url: str) -> None:
    aiogram_bot = AiogramBot(TOKEN)
    try:
        cases: list[tuple[Any, str, type]] = [
            (aiogram_bot, "aiogram", AiogramAdapter),
            (PTBBot(TOKEN), "ptb", PythonTelegramBotAdapter),
            (ApplicationBuilder().token(TOKEN).build(), "ptb", PythonTelegramBotAdapter),
            (TeleBot(TOKEN), "telebot", TelebotAdapter),
            (AsyncTeleBot(TOKEN), "telebot", TelebotAdapter),
            (RawBotAPI(TOKEN), "raw", RawAPIAdapter),
        ]
        for bot, name, adapter_class in cases:
            assert detect_adapter(bot) == name
            with create_neonpay(bot_instance=bot, storage=sqlite_url) as neonpay:
                assert type(neonpay.adapter) is adapter_class
                assert neonpay.cashier.gateway is neonpay.adapter
                assert TOKEN not in repr(neonpay)
                assert TOKEN not in repr(neonpay.adapter)
    finally:
        await aiogram_bot.session.close()


def test_subclasses_are_detected_too() -> None:
    class StoreBot(TeleBot):
        pass

    assert detect_adapter(StoreBot(TOKEN)) == "telebot"


@pytest.mark.parametrize("adapter_type", ["raw", "botapi", BotLibrary.BOTAPI, " RAW "])
def test_adapter_type_overrides_detection(sqlite_url: str, adapter_type: Any) -> None:
    with create_neonpay(
        bot_instance=RawBotAPI(TOKEN), adapter_type=adapter_type, storage=sqlite_url
    ) as neonpay:
        assert neonpay.adapter.library is BotLibrary.BOTAPI


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"bot_instance": object()}, "unsupported bot object object"),
        ({"bot_instance": RawBotAPI(TOKEN), "adapter_type": "discord"}, "unknown adapter_type"),
        ({"bot_instance": TeleBot(TOKEN), "adapter_type": "raw"}, "needs a neonpay.adapters"),
        ({"bot_instance": RawBotAPI(TOKEN), "dispatcher": object()}, "dispatcher= is for"),
        ({"bot_instance": TeleBot(TOKEN), "application": object()}, "application= is for"),
    ],
)
def test_refusals_say_what_is_supported(
    sqlite_url: str, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError) as info:
        create_neonpay(storage=sqlite_url, **kwargs)
    assert message in str(info.value)
    if "unsupported" in message:
        assert all(name in str(info.value) for name in SUPPORTED)
    with create_neonpay(storage=sqlite_url) as neonpay:  # the store was released
        assert neonpay.list_payment_stages() == {}


async def test_aiogram_dispatcher_must_be_a_router(sqlite_url: str) -> None:
    bot = AiogramBot(TOKEN)
    try:
        with pytest.raises(ConfigurationError, match="Dispatcher or Router"):
            create_neonpay(bot_instance=bot, dispatcher=object(), storage=sqlite_url)
        dp = Dispatcher()
        with create_neonpay(bot_instance=bot, dispatcher=dp, storage=sqlite_url):
            assert len(dp.pre_checkout_query.handlers) == 1
            assert len(dp.message.handlers) == 2
    finally:
        await bot.session.close()


def test_bot_without_handlers_target_warns(
    sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="neonpay")
    with create_neonpay(bot_instance=PTBBot(TOKEN), storage=sqlite_url) as neonpay:
        assert isinstance(neonpay.adapter, PythonTelegramBotAdapter)
        assert neonpay.adapter.application is None
    assert any("payments are not handled" in r.getMessage() for r in caplog.records)


def test_detection_imports_no_framework(tmp_path: Any) -> None:
    """Detecting and attaching the raw adapter loads none of the frameworks."""
    code = (
        "import sys\n"
        "from neonpay import create_neonpay\n"
        "from neonpay.adapters.raw import RawBotAPI\n"
        f"np = create_neonpay(bot_instance=RawBotAPI({TOKEN!r}), "
        f"storage='sqlite:///{tmp_path / 'x.db'}')\n"
        "np.close()\n"
        "print(sorted(m for m in ('aiogram', 'telegram', 'telebot', 'pyrogram') "
        "if m in sys.modules))\n"
    )
    result = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "[]"
