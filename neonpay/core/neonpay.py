"""The :class:`NeonPay` facade: one bot's catalog, payments and store in one object."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from neonpay.core import validation as v
from neonpay.core.cashier import Cashier, PaymentCallback
from neonpay.core.catalog import Catalog, ChangeListener
from neonpay.core.gateway import PaymentGateway
from neonpay.core.invoices import DEFAULT_INVOICE_MAX_AGE, DEFAULT_LINK_MAX_AGE
from neonpay.core.payments import Payment, PaymentHistory
from neonpay.core.promotions import DiscountType, PromoCode, PromoSystem
from neonpay.core.settings import SettingsManager
from neonpay.core.stages import KIND as STAGE_KIND
from neonpay.core.stages import PaymentStage, StageCatalog
from neonpay.core.templates import TemplateManager
from neonpay.errors import ConfigurationError
from neonpay.store.base import Store

if TYPE_CHECKING:
    from types import TracebackType

__all__ = ["DEFAULT_MAX_STAGES", "DEFAULT_THANK_YOU", "NeonPay"]

logger = logging.getLogger("neonpay")

DEFAULT_THANK_YOU = "Thank you for your payment!"
#: How many payment stages one store holds unless told otherwise.
DEFAULT_MAX_STAGES = 100_000


class NeonPay:
    """One bot's catalog (stages, promo codes, templates, settings) over a durable store.

    Build it with :func:`neonpay.create_neonpay`. The catalog calls are synchronous and
    short (one local transaction each), so they are safe inside a running event loop.

    Attributes:
        store: the storage backend.
        promotions: promo codes (:class:`~neonpay.core.promotions.PromoSystem`).
        templates: templates (:class:`~neonpay.core.templates.TemplateManager`).
        settings: settings (:class:`~neonpay.core.settings.SettingsManager`).
        adapter: the bot framework adapter, or None for catalog-only use.
        payments: the recorded payments (:class:`~neonpay.core.payments.PaymentHistory`).
        cashier: the payment path (:class:`~neonpay.core.cashier.Cashier`).
    """

    def __init__(
        self,
        store: Store,
        *,
        adapter: Any = None,
        thank_you_message: str | None = None,
        enable_logging: bool = True,
        max_stages: int = DEFAULT_MAX_STAGES,
        max_price: int = v.DEFAULT_MAX_PRICE,
        owns_store: bool = False,
        invoice_max_age: float = DEFAULT_INVOICE_MAX_AGE,
        link_max_age: float | None = DEFAULT_LINK_MAX_AGE,
    ) -> None:
        if isinstance(max_stages, bool) or not isinstance(max_stages, int) or max_stages < 1:
            raise ConfigurationError(f"max_stages must be a positive whole number: {max_stages!r}")
        if isinstance(max_price, bool) or not isinstance(max_price, int) or max_price < 1:
            raise ConfigurationError(f"max_price must be a positive whole number: {max_price!r}")
        self.store = store
        self.catalog = Catalog(store)
        self.enable_logging = enable_logging
        self._thank_you_message = thank_you_message
        self._owns_store = owns_store
        self._closed = False
        self.stages = StageCatalog(self.catalog, max_price=max_price, max_stages=max_stages)
        # The store holds the catalog limit on records that arrive by sync too.
        store.set_live_limit(STAGE_KIND, max_stages)
        self.promotions = PromoSystem(self.catalog)
        self.templates = TemplateManager(self.catalog)
        self.settings = SettingsManager(self.catalog)
        self.cashier = Cashier(
            store,
            self.stages,
            self.promotions,
            thank_you=lambda: self.thank_you_message,
            invoice_max_age=invoice_max_age,
            link_max_age=link_max_age,
        )
        self.payments: PaymentHistory = self.cashier.history
        self._adapter: Any = None
        self.adapter = adapter

    # --- identity and lifecycle ----------------------------------------------------------
    @property
    def adapter(self) -> Any:
        """The bot framework adapter (a :class:`~neonpay.core.gateway.PaymentGateway`)."""
        return self._adapter

    @adapter.setter
    def adapter(self, value: Any) -> None:
        self._adapter = value
        self.cashier.gateway = value if isinstance(value, PaymentGateway) else None

    @property
    def node_id(self) -> str:
        """This store's stable identity."""
        return self.store.node_id

    @property
    def thank_you_message(self) -> str:
        """The message sent after a successful payment (a setting wins over the argument)."""
        stored = self.settings.get("thank_you_message")
        if isinstance(stored, str) and stored:
            return stored
        return self._thank_you_message or DEFAULT_THANK_YOU

    @thank_you_message.setter
    def thank_you_message(self, value: str) -> None:
        self.settings.set("thank_you_message", value)

    @property
    def max_price(self) -> int:
        return self.stages.max_price

    @property
    def max_stages(self) -> int:
        return self.stages.max_stages

    def close(self) -> None:
        """Release the store (when this object opened it). Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._owns_store:
            self.store.close()

    def __enter__(self) -> NeonPay:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> NeonPay:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        adapter = type(self.adapter).__name__ if self.adapter is not None else "none"
        return f"<NeonPay node={self.node_id} store={self.store.url} adapter={adapter}>"

    # --- change notification ----------------------------------------------------------------
    def add_change_listener(self, listener: ChangeListener) -> None:
        """Call ``listener(record)`` after every committed local change."""
        self.catalog.add_listener(listener)

    def remove_change_listener(self, listener: ChangeListener) -> None:
        self.catalog.remove_listener(listener)

    # --- payment stages (the neonpay 2.x names) ----------------------------------------------
    def create_payment_stage(self, stage_id: str, stage: PaymentStage) -> PaymentStage:
        """Create or replace a payment stage. Writing the same fields again is a no-op.

        Raises:
            ValidationError: a field breaks a rule, or the catalog is full; nothing changes.
        """
        return self.stages.create(stage_id, stage)

    def create_payment_stages(
        self, stages: Mapping[str, PaymentStage] | Iterable[tuple[str, PaymentStage]]
    ) -> int:
        """Create or replace many stages in one transaction (imports): all or nothing.

        ``stages`` maps stage ids to stages (or is a sequence of ``(stage_id, stage)``
        pairs). Each stage is checked like :meth:`create_payment_stage` before anything
        is written. Returns how many stages were created or changed.

        Raises:
            ValidationError: a stage breaks a rule (the message names it), or the catalog
                would hold more than ``max_stages``; nothing changes.
        """
        return self.stages.create_many(stages)

    def get_payment_stage(self, stage_id: str) -> PaymentStage | None:
        """The stage, or None."""
        return self.stages.get(stage_id)

    def list_payment_stages(self) -> dict[str, PaymentStage]:
        """Every stage by id."""
        return self.stages.list()

    def update_payment_stage(self, stage_id: str, **fields: Any) -> PaymentStage:
        """Change some fields of a stage.

        Raises:
            NotFoundError: no such stage.
            ValidationError: a field breaks a rule; nothing changes.
        """
        return self.stages.update(stage_id, **fields)

    def remove_payment_stage(self, stage_id: str) -> bool:
        """Delete a stage (the delete syncs to peers); False when it did not exist."""
        return self.stages.remove(stage_id)

    # --- selling (the neonpay 2.x names plus invoice links and refunds) -----------------
    async def setup(self) -> None:
        """Prepare the payment path (creates the store's invoice secret). Idempotent.

        The adapter's handlers are registered by :func:`~neonpay.create_neonpay` already;
        this exists for neonpay 2.x code that awaits it.

        Raises:
            StorageError: the store failed.
        """
        self.cashier.signer()

    def on_payment(self, callback: PaymentCallback) -> PaymentCallback:
        """Call ``callback(result: PaymentResult)`` once per new successful payment.

        Plain functions and coroutine functions both work; usable as a decorator.

        Raises:
            ConfigurationError: ``callback`` is not callable.
        """
        return self.cashier.on_payment(callback)

    def on_refund(self, callback: PaymentCallback) -> PaymentCallback:
        """Call ``callback(result)`` (status ``REFUNDED``) once per refunded payment."""
        return self.cashier.on_refund(callback)

    async def send_payment(
        self, user_id: int, stage_id: str, promo_code: str | None = None
    ) -> bool:
        """Send ``user_id`` a Stars invoice for ``stage_id``: True when it was sent.

        The price is the stage's current price in whole Stars after the promo discount.
        As in neonpay 2.x, an unknown stage, an unusable promo code or a refusal by
        Telegram is logged and gives False; use :meth:`send_invoice` to get the error.

        Raises:
            ConfigurationError: no bot is attached.
            ValidationError: ``user_id`` is not a positive whole number.
        """
        return await self.cashier.send_payment(user_id, stage_id, promo_code)

    async def send_invoice(
        self,
        user_id: int,
        stage_id: str,
        promo_code: str | None = None,
        *,
        chat_id: int | None = None,
    ) -> Any:
        """Like :meth:`send_payment` but returns the framework's invoice message and
        raises on failure.

        Raises:
            NotFoundError: no such stage or promo code.
            ValidationError: the promo code cannot be used by this user, or a bad user id.
            ConfigurationError: no bot is attached.
            BotAPIError: Telegram refused the invoice.
        """
        return await self.cashier.send_invoice(user_id, stage_id, promo_code, chat_id=chat_id)

    async def create_invoice_link(
        self,
        stage_id: str,
        promo_code: str | None = None,
        subscription_period: int | None = None,
    ) -> str:
        """A Stars invoice link for ``stage_id`` (a 30-day subscription when
        ``subscription_period=2592000``).

        Raises:
            ValidationError: another ``subscription_period``, or an unusable promo code.
            NotFoundError: no such stage or promo code.
            ConfigurationError: no bot is attached.
            BotAPIError: Telegram refused the link.
        """
        return await self.cashier.create_invoice_link(stage_id, promo_code, subscription_period)

    async def refund(self, charge_id: str) -> Payment:
        """Refund a recorded payment (``refundStarPayment``) and record the refund.

        ``CHARGE_ALREADY_REFUNDED`` from Telegram counts as done.

        Raises:
            NotFoundError: no payment with this charge id was recorded here.
            ConfigurationError: no bot is attached.
            BotAPIError: Telegram refused the refund for another reason.
        """
        return await self.cashier.refund(charge_id)

    # --- promo codes (the neonpay 2.x shortcuts) -----------------------------------------
    def create_promo_code(
        self,
        code: str,
        discount_type: DiscountType | str = DiscountType.PERCENTAGE,
        discount_value: int = 10,
        **kwargs: Any,
    ) -> PromoCode:
        """Shortcut for ``neonpay.promotions.create_promo_code``."""
        return self.promotions.create_promo_code(code, discount_type, discount_value, **kwargs)

    def validate_promo_code(
        self, code: str, user_id: int, amount: int
    ) -> tuple[bool, str, PromoCode | None]:
        """Shortcut for ``neonpay.promotions.validate``."""
        return self.promotions.validate(code, user_id, amount)

    def get_stats(self) -> dict[str, Any]:
        """Counts of what the store holds."""
        return {
            "node_id": self.node_id,
            "payment_stages": self.store.count("payment_stage"),
            "promo_codes": self.store.count("promo_code"),
            "templates": self.store.count("template"),
            "settings": self.store.count("setting"),
            "max_stages": self.max_stages,
            "promo_over_uses": sum(self.store.promo_over_uses().values()),
            "adapter": type(self.adapter).__name__ if self.adapter is not None else None,
        }


#: The name neonpay 2.x used for the facade.
NeonPayCore = NeonPay
