"""``create_neonpay``: build the facade from a bot object and a storage URL."""

from __future__ import annotations

from typing import Any

from neonpay.core import validation as v
from neonpay.core.invoices import DEFAULT_INVOICE_MAX_AGE, DEFAULT_LINK_MAX_AGE
from neonpay.core.neonpay import DEFAULT_MAX_STAGES, NeonPay
from neonpay.errors import ConfigurationError
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
    invoice_max_age: float = DEFAULT_INVOICE_MAX_AGE,
    link_max_age: float | None = DEFAULT_LINK_MAX_AGE,
) -> NeonPay:
    """Create the NEONPAY facade for one bot.

    Args:
        bot_instance: an aiogram ``Bot``, python-telegram-bot ``Bot``/``Application``,
            pyTelegramBotAPI ``TeleBot``/``AsyncTeleBot``, Pyrogram ``Client``, or a
            :class:`~neonpay.adapters.raw.RawBotAPI`; None for catalog-only tools.
        thank_you_message: sent after each successful payment.
        dispatcher: an aiogram ``Dispatcher`` or ``Router`` to register the payment
            handlers on (pre-checkout, successful and refunded payments).
        application: a python-telegram-bot ``Application`` to register them on.
            pyTelegramBotAPI and Pyrogram register on the bot or client itself; a
            :class:`~neonpay.adapters.raw.RawBotAPI` routes its own updates.
        adapter_type: force an adapter (``aiogram``, ``ptb``, ``telebot``, ``pyrogram``,
            ``raw``) instead of detecting it.
        storage: a URL (``sqlite:///neonpay.db``, ``postgresql://...``) or a store object.
            Default: ``$NEONPAY_STORAGE``, else ``sqlite:///neonpay.db`` in the working
            directory. Never an in-memory store.
        node_id: this store's identity, used only when the store is new.
        max_stages: how many payment stages the catalog may hold.
        max_price: the highest stage price in Stars (10,000 by default).
        invoice_max_age: seconds an invoice sent with ``send_payment`` may be paid
            (24 hours by default); an older one is refused at pre-checkout.
        link_max_age: the same for invoice links (30 days by default; None: no limit).

    Raises:
        ConfigurationError: an unusable storage URL or node id, or an unsupported bot.
        MissingExtraError: the extra needed for the storage or the bot is not installed.
    """
    if isinstance(storage, str) or storage is None:
        store = open_store(storage, node_id=node_id)
        owns_store = True
    else:
        candidate: object = storage
        if not isinstance(candidate, Store):  # e.g. a Path: say so now, not on first use
            raise ConfigurationError(
                f"storage must be a URL string or a store object, not {type(candidate).__name__}:"
                " use storage='sqlite:///path/to/file.db' or 'postgresql://...'"
            )
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
            invoice_max_age=invoice_max_age,
            link_max_age=link_max_age,
        )
        if bot_instance is None and application is not None:
            bot_instance = application  # python-telegram-bot: the Application alone
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
