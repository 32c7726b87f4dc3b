"""Bot framework adapters: how NEONPAY sends invoices and receives payment updates.

One module per framework; :func:`attach_adapter` detects which one a bot object needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from neonpay.errors import ConfigurationError

if TYPE_CHECKING:
    from neonpay.core.neonpay import NeonPay

__all__ = ["SUPPORTED", "attach_adapter"]

#: Adapter names and what they accept.
SUPPORTED: dict[str, str] = {
    "aiogram": "aiogram 3 Bot (with dispatcher= a Dispatcher or Router)",
    "ptb": "python-telegram-bot 21/22 Bot or Application (with application=)",
    "telebot": "pyTelegramBotAPI TeleBot or AsyncTeleBot",
    "pyrogram": "Pyrogram-compatible Client (pyrogram, kurigram, pyrofork)",
    "raw": "neonpay.adapters.raw.RawBotAPI (aiohttp, a token and an API base URL)",
}


def attach_adapter(
    neonpay: NeonPay,
    bot_instance: Any,
    *,
    dispatcher: Any = None,
    application: Any = None,
    adapter_type: str | None = None,
) -> None:
    """Detect the framework of ``bot_instance`` and attach its adapter to ``neonpay``."""
    supported = "; ".join(f"{name}: {what}" for name, what in SUPPORTED.items())
    raise ConfigurationError(
        f"unsupported bot object {type(bot_instance).__name__}; supported: {supported}"
    )
