"""``create_neonpay``: build the facade from a bot object and a storage URL."""

from __future__ import annotations

from typing import Any

from neonpay.core import validation as v
from neonpay.core.neonpay import DEFAULT_MAX_STAGES, NeonPay
from neonpay.store import Store, open_store

__all__ = ["create_neonpay"]


def create_neonpay(
    bot_instance: Any = None,
    thank_you_message: str | None = None,
    dispatcher: Any = None,
    application: Any = None,
    enable_logging: bool = True,
    max_stages: int = DEFAULT_MAX_STAGES,
    adapter_type: str | None = None,
    *,
    storage: str | Store | None = None,
    node_id: str | None = None,
    max_price: int = v.DEFAULT_MAX_PRICE,
) -> NeonPay:
    """Create the NEONPAY facade for one bot.

    Args:
        bot_instance: an aiogram ``Bot``, python-telegram-bot ``Bot``/``Application``,
            pyTelegramBotAPI ``TeleBot``/``AsyncTeleBot``, Pyrogram ``Client``, or a
            :class:`~neonpay.adapters.raw.RawBotAPI`; None for catalog-only tools.
        thank_you_message: sent after each successful payment.
        dispatcher: an aiogram ``Dispatcher`` or ``Router`` to register handlers on.
        application: a python-telegram-bot ``Application`` to register handlers on.
        adapter_type: force an adapter (``aiogram``, ``ptb``, ``telebot``, ``pyrogram``,
            ``raw``) instead of detecting it.
        storage: a URL (``sqlite:///neonpay.db``, ``postgresql://...``) or a store object.
            Default: ``$NEONPAY_STORAGE``, else ``sqlite:///neonpay.db`` in the working
            directory. Never an in-memory store.
        node_id: this store's identity, used only when the store is new.
        max_stages: how many payment stages the catalog may hold.
        max_price: the highest stage price in Stars (10,000 by default).

    Raises:
        ConfigurationError: an unusable storage URL or node id, or an unsupported bot.
        MissingExtraError: the extra needed for the storage or the bot is not installed.
    """
    if isinstance(storage, str) or storage is None:
        store = open_store(storage, node_id=node_id)
        owns_store = True
    else:
        store = storage
        owns_store = False
    try:
        neonpay = NeonPay(
            store,
            thank_you_message=thank_you_message,
            enable_logging=enable_logging,
            max_stages=max_stages,
            max_price=max_price,
            owns_store=owns_store,
        )
        if bot_instance is not None:
            from neonpay.adapters import attach_adapter

            attach_adapter(
                neonpay,
                bot_instance,
                dispatcher=dispatcher,
                application=application,
                adapter_type=adapter_type,
            )
    except BaseException:
        if owns_store:
            store.close()
        raise
    return neonpay
