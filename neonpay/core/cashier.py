"""The :class:`Cashier`: sells through a :class:`~neonpay.core.gateway.PaymentGateway`.

It issues signed Stars invoices, answers pre-checkout queries (always, also when deciding
fails), records successful payments once, runs the ``on_payment`` callbacks, thanks the
payer, and refunds. Adapters hand it framework-free updates plus small callables that
answer or reply through the framework, so everything here runs without a framework.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from neonpay.core.checkout import (
    INTERNAL_ERROR,
    Checkout,
    CheckoutAnswer,
    PreCheckoutQuery,
    RefundedPayment,
    SuccessfulPayment,
)
from neonpay.core.gateway import BotAPIError, PaymentGateway
from neonpay.core.invoices import (
    DEFAULT_INVOICE_MAX_AGE,
    DEFAULT_LINK_MAX_AGE,
    SUBSCRIPTION_PERIOD,
    Invoice,
    InvoiceKind,
    InvoiceSigner,
    load_invoice_secret,
)
from neonpay.core.payments import Payment, PaymentHistory, PaymentResult, PaymentStatus
from neonpay.core.quotes import Quote, make_quote
from neonpay.core.validation import MAX_DESCRIPTION
from neonpay.errors import (
    ConfigurationError,
    NotFoundError,
    StorageError,
    ValidationError,
    mask_secrets,
)
from neonpay.limits import MAX_INT

if TYPE_CHECKING:
    from neonpay.core.promotions import PromoSystem
    from neonpay.core.stages import StageCatalog
    from neonpay.store.base import Store

__all__ = [
    "BUSY_MESSAGE",
    "PRE_CHECKOUT_BUDGET",
    "AnswerPreCheckout",
    "Cashier",
    "PaymentCallback",
    "Reply",
]

logger = logging.getLogger("neonpay.payments")

#: ``on_payment`` / ``on_refund`` callbacks: plain functions or coroutine functions.
PaymentCallback = Callable[[PaymentResult], Any]
#: Answers a pre-checkout query through a framework: ``answer(ok, error_message)``.
AnswerPreCheckout = Callable[[bool, "str | None"], Awaitable[Any]]
#: Sends text to the chat a payment came from.
Reply = Callable[[str], Awaitable[Any]]

_RECORD_DELAYS = (0.05, 0.25, 1.0)  # retries of a failed payment write
#: Seconds a pre-checkout review may take before the query is refused with
#: :data:`BUSY_MESSAGE` (Telegram waits 10 s for the answer; the rest is for sending it).
PRE_CHECKOUT_BUDGET = 8.0
#: What the buyer is told when the store could not answer within the budget.
BUSY_MESSAGE = "The shop is busy right now. Please try again in a moment."


class Cashier:
    """Sells one store's payment stages through a gateway (see the module docs).

    Args:
        store: where payments are recorded and the invoice secret is kept.
        stages, promotions: the catalog.
        thank_you: returns the message sent after a payment (empty: none).
        invoice_max_age: seconds an invoice sent to a user may be paid.
        link_max_age: seconds an invoice link may be paid (None: no limit).
        pre_checkout_budget: seconds a pre-checkout review may take (default
            :data:`PRE_CHECKOUT_BUDGET`); a store that cannot answer in time gets the
            query refused with a message asking to try again, never left unanswered.

    Every store call of the async methods runs in a worker thread, so a store waiting
    on a lock or the disk never stalls the event loop (other updates go on meanwhile).
    """

    def __init__(
        self,
        store: Store,
        stages: StageCatalog,
        promotions: PromoSystem,
        *,
        thank_you: Callable[[], str],
        invoice_max_age: float = DEFAULT_INVOICE_MAX_AGE,
        link_max_age: float | None = DEFAULT_LINK_MAX_AGE,
        clock: Callable[[], float] = time.time,
        pre_checkout_budget: float = PRE_CHECKOUT_BUDGET,
    ) -> None:
        if invoice_max_age <= 0 or (link_max_age is not None and link_max_age <= 0):
            raise ConfigurationError("invoice_max_age and link_max_age must be positive")
        if (
            isinstance(pre_checkout_budget, bool)
            or not isinstance(pre_checkout_budget, (int, float))
            or not 0 < pre_checkout_budget < 10
        ):
            raise ConfigurationError(
                "pre_checkout_budget must be a number of seconds above 0 and below 10 "
                "(Telegram's deadline)"
            )
        self.pre_checkout_budget = float(pre_checkout_budget)
        self.gateway: PaymentGateway | None = None
        self._store = store
        self._stages = stages
        self._promotions = promotions
        self._thank_you = thank_you
        self._invoice_max_age = invoice_max_age
        self._link_max_age = link_max_age
        self._clock = clock
        self._signer: InvoiceSigner | None = None
        self._payment_callbacks: list[PaymentCallback] = []
        self._refund_callbacks: list[PaymentCallback] = []
        self.checkout = Checkout(store, stages, promotions, self.signer, clock=clock)
        self.history = PaymentHistory(store)

    def __repr__(self) -> str:
        gateway = type(self.gateway).__name__ if self.gateway is not None else "none"
        return f"<Cashier gateway={gateway}>"

    # --- setup ---------------------------------------------------------------------------------
    def signer(self) -> InvoiceSigner:
        """The invoice signer (the store's secret is created on first use).

        Raises:
            StorageError: the store failed.
        """
        if self._signer is None:
            self._signer = InvoiceSigner(
                load_invoice_secret(self._store),
                max_age=self._invoice_max_age,
                link_max_age=self._link_max_age,
                clock=self._clock,
            )
        return self._signer

    def on_payment(self, callback: PaymentCallback) -> PaymentCallback:
        """Call ``callback(result)`` once for every new successful payment.

        Sync functions and coroutine functions are accepted; a failing callback is logged
        and does not stop the others. Returns the callback (usable as a decorator).

        Raises:
            ConfigurationError: ``callback`` is not callable.
        """
        return _add(self._payment_callbacks, callback)

    def on_refund(self, callback: PaymentCallback) -> PaymentCallback:
        """Call ``callback(result)`` (status REFUNDED) once when a payment is refunded."""
        return _add(self._refund_callbacks, callback)

    def _require_gateway(self) -> PaymentGateway:
        if self.gateway is None:
            raise ConfigurationError(
                "no bot is attached: pass bot_instance= to create_neonpay() to send invoices"
            )
        return self.gateway

    # --- invoices ------------------------------------------------------------------------------
    def _invoice(
        self, quote: Quote, payload: str, *, subscription_period: int | None = None
    ) -> Invoice:
        stage = quote.stage
        description = stage.description
        if quote.promo_code is not None:
            note = f" (promo {quote.promo_code}: -{quote.discount} Stars)"
            if len(description) + len(note) <= MAX_DESCRIPTION:
                description += note
        return Invoice(
            title=stage.title,
            description=description,
            payload=payload,
            label=stage.label,
            amount=quote.price,
            photo_url=stage.photo_url,
            start_parameter=stage.start_parameter,
            subscription_period=subscription_period,
        )

    async def send_invoice(
        self,
        user_id: int,
        stage_id: str,
        promo_code: str | None = None,
        *,
        chat_id: int | None = None,
    ) -> Any:
        """Send ``user_id`` a Stars invoice for ``stage_id`` (to ``chat_id``, by default
        the user's private chat); returns the framework's message object.

        Raises:
            ValidationError: a bad user id, or the promo code cannot be used by this user.
            NotFoundError: no such stage or promo code.
            ConfigurationError: no bot is attached.
            BotAPIError: Telegram refused the invoice.
        """
        if isinstance(user_id, bool) or not isinstance(user_id, int) or not 0 < user_id <= MAX_INT:
            raise ValidationError("user_id", "must be a positive 64-bit whole number")
        gateway = self._require_gateway()

        def prepare() -> tuple[Quote, str]:
            quote = make_quote(
                self._stages, self._promotions, stage_id, promo_code=promo_code, user_id=user_id
            )
            _, payload = self.signer().issue(
                InvoiceKind.CHAT,
                stage_id,
                quote.price,
                promo_code=quote.promo_code,
                user_id=user_id,
            )
            return quote, payload

        quote, payload = await asyncio.to_thread(prepare)
        message = await gateway.send_invoice(
            user_id if chat_id is None else chat_id, self._invoice(quote, payload)
        )
        logger.info(
            "invoice for stage %r sent to user %s: %s Stars%s",
            stage_id,
            user_id,
            quote.price,
            f" with promo code {quote.promo_code}" if quote.promo_code else "",
        )
        return message

    async def send_payment(
        self, user_id: int, stage_id: str, promo_code: str | None = None
    ) -> bool:
        """Send a Stars invoice (the neonpay 2.x call): True when it was sent.

        Failures a user can cause (unknown stage, unusable promo code, Telegram refusing)
        are logged and give False, as in 2.x; :meth:`send_invoice` raises them instead.

        Raises:
            ConfigurationError: no bot is attached.
            ValidationError: ``user_id`` is not a positive whole number.
        """
        if isinstance(user_id, bool) or not isinstance(user_id, int) or not 0 < user_id <= MAX_INT:
            raise ValidationError("user_id", "must be a positive 64-bit whole number")
        self._require_gateway()
        try:
            await self.send_invoice(user_id, stage_id, promo_code)
        except (NotFoundError, ValidationError, BotAPIError) as exc:
            logger.warning("no invoice sent for stage %r to user %s: %s", stage_id, user_id, exc)
            return False
        return True

    async def create_invoice_link(
        self,
        stage_id: str,
        promo_code: str | None = None,
        subscription_period: int | None = None,
    ) -> str:
        """An invoice link for ``stage_id`` that anyone may pay (a 30-day subscription
        when ``subscription_period`` is 2592000).

        A promo code limited to some users cannot be put on a link.

        Raises:
            ValidationError: ``subscription_period`` is not 2592000, or the promo code
                cannot be used.
            NotFoundError: no such stage or promo code.
            ConfigurationError: no bot is attached.
            BotAPIError: Telegram refused the link.
        """
        if subscription_period is not None and (
            isinstance(subscription_period, bool) or subscription_period != SUBSCRIPTION_PERIOD
        ):
            raise ValidationError(
                "subscription_period", f"must be {SUBSCRIPTION_PERIOD} (30 days) when given"
            )
        gateway = self._require_gateway()
        kind = InvoiceKind.LINK if subscription_period is None else InvoiceKind.SUBSCRIPTION

        def prepare() -> tuple[Quote, str]:
            quote = make_quote(self._stages, self._promotions, stage_id, promo_code=promo_code)
            _, payload = self.signer().issue(
                kind, stage_id, quote.price, promo_code=quote.promo_code
            )
            return quote, payload

        quote, payload = await asyncio.to_thread(prepare)
        return await gateway.create_invoice_link(
            self._invoice(quote, payload, subscription_period=subscription_period)
        )

    # --- refunds -------------------------------------------------------------------------------
    async def refund(self, charge_id: str) -> Payment:
        """Refund a recorded payment with ``refundStarPayment`` and record the refund.

        Telegram's ``CHARGE_ALREADY_REFUNDED`` counts as done; a payment already recorded
        as refunded is returned without calling Telegram.

        Raises:
            NotFoundError: no payment with this charge id was recorded here.
            ConfigurationError: no bot is attached.
            BotAPIError: Telegram refused the refund for another reason.
        """
        payment = await asyncio.to_thread(self.history.get, charge_id)
        if payment is None:
            raise NotFoundError(f"no recorded payment with charge id {charge_id!r}")
        if payment.refunded:
            return payment
        gateway = self._require_gateway()
        try:
            await gateway.refund_star_payment(payment.user_id, charge_id)
        except BotAPIError as exc:
            if not exc.has_reason("CHARGE_ALREADY_REFUNDED"):
                raise
            logger.info("payment %s was already refunded on Telegram's side", charge_id)
        marked = await asyncio.to_thread(self.checkout.record_refund, charge_id)
        if marked is not None:
            await self._notify(self._refund_callbacks, _refund_result(marked))
        refreshed = await asyncio.to_thread(self.history.get, charge_id)
        return refreshed if refreshed is not None else payment

    # --- updates from the adapters -----------------------------------------------------
    async def handle_pre_checkout(
        self, read: Callable[[], PreCheckoutQuery], answer: AnswerPreCheckout
    ) -> CheckoutAnswer:
        """Decide and answer one pre-checkout query; always answers.

        ``read`` converts the framework's query (inside the guard, so a conversion error
        is answered too); any failure while deciding is answered ``ok=false`` with
        "Internal error, please try again.". The review runs in a worker thread; when it
        takes longer than ``pre_checkout_budget`` the query is refused with
        :data:`BUSY_MESSAGE` (nothing is recorded for a refused query). Returns the answer
        given.
        """
        try:
            query = read()
            decision = await self._review_in_time(query)
        except asyncio.CancelledError:
            # cancelled while the review waits in its thread (the bot stops, or the
            # framework gave up on the handler): answer before the cancellation goes on
            with contextlib.suppress(Exception):
                await answer(False, BUSY_MESSAGE)
            raise
        except Exception as exc:  # the query must be answered whatever happened
            logger.error("pre-checkout failed, refusing: %s", mask_secrets(repr(exc)))
            decision = CheckoutAnswer.refuse(
                INTERNAL_ERROR, f"internal error: {type(exc).__name__}"
            )
        else:
            if decision.ok:
                logger.info("pre-checkout %s approved (user %s)", query.id, query.user_id)
            else:
                logger.info("pre-checkout %s refused: %s", query.id, decision.reason)
        try:
            # No asyncio.wait_for here: on Python < 3.12 it can swallow a cancellation that
            # arrives as the answer completes; the frameworks time their own requests out.
            await answer(decision.ok, decision.error_message)
        except Exception as exc:  # nothing more can be done: log without the token
            logger.error("answering a pre-checkout query failed: %s", mask_secrets(str(exc)))
        return decision

    async def handle_successful_payment(
        self, read: Callable[[], SuccessfulPayment], reply: Reply | None = None
    ) -> PaymentResult | None:
        """Record a successful payment, then (only when it is new) run the callbacks and
        send the thank-you message through ``reply``.

        Returns the result, or None for a payment recorded before.

        Raises:
            InvalidInvoice: the payload is not NEONPAY's (nothing recorded).
            StorageError: the payment could not be recorded after retries.
        """
        payment = read()
        result = await self._record(payment)
        if result is None:
            return None
        logger.info(
            "payment %s recorded: user %s paid %s Stars for stage %r",
            payment.charge_id,
            payment.user_id,
            payment.total_amount,
            result.stage_id,
        )
        await self._notify(self._payment_callbacks, result)
        text = self._thank_you()
        if text and reply is not None:
            try:
                await reply(text)
            except Exception as exc:  # the payment is recorded; a lost thank-you is logged
                logger.warning("sending the thank-you message failed: %s", mask_secrets(str(exc)))
        return result

    async def handle_refunded_payment(self, read: Callable[[], RefundedPayment]) -> Payment | None:
        """Record a ``refunded_payment`` message; the payment when this marked it refunded.

        Raises:
            StorageError: the store failed.
        """
        refunded = read()
        marked = await asyncio.to_thread(self.checkout.record_refund, refunded.charge_id)
        if marked is None:
            logger.info("refund of %s: unknown or already recorded", refunded.charge_id)
            return None
        logger.info("payment %s refunded", refunded.charge_id)
        await self._notify(self._refund_callbacks, _refund_result(marked))
        return marked

    async def _record(self, payment: SuccessfulPayment) -> PaymentResult | None:
        for delay in (*_RECORD_DELAYS, None):
            try:
                return await asyncio.to_thread(self.checkout.record, payment)
            except StorageError:
                if delay is None:
                    logger.error(
                        "payment %s (user %s, %s Stars) could not be recorded; reconcile it "
                        "with getStarTransactions",
                        payment.charge_id,
                        payment.user_id,
                        payment.total_amount,
                    )
                    raise
                logger.warning("recording payment %s failed; retrying", payment.charge_id)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _review_in_time(self, query: PreCheckoutQuery) -> CheckoutAnswer:
        """``checkout.review(query)`` in a worker thread, within the budget."""
        review = asyncio.get_running_loop().run_in_executor(None, self.checkout.review, query)
        # asyncio.wait (not wait_for): the review is not cancelled, it runs to its end in
        # its thread and what it returns late is dropped; a late failure is only logged.
        done, _ = await asyncio.wait({review}, timeout=self.pre_checkout_budget)
        if not done:
            review.add_done_callback(_drop_late_review)
            logger.warning(
                "pre-checkout %s: the store did not answer within %.1f s; refused with a "
                "request to try again",
                query.id,
                self.pre_checkout_budget,
            )
            return CheckoutAnswer.refuse(BUSY_MESSAGE, "the store did not answer in time")
        return review.result()

    async def _notify(self, callbacks: list[PaymentCallback], result: PaymentResult) -> None:
        for callback in list(callbacks):
            try:
                outcome = callback(result)
                if inspect.isawaitable(outcome):
                    await outcome
            except Exception:
                logger.exception("payment callback %s failed", _name(callback))


def _drop_late_review(review: asyncio.Future[CheckoutAnswer]) -> None:
    if not review.cancelled() and review.exception() is not None:
        logger.warning("a late pre-checkout review failed: %s", review.exception())


def _add(callbacks: list[PaymentCallback], callback: PaymentCallback) -> PaymentCallback:
    if not callable(callback):
        raise ConfigurationError("a payment callback must be callable")
    if callback not in callbacks:
        callbacks.append(callback)
    return callback


def _name(callback: object) -> str:
    return getattr(callback, "__qualname__", None) or type(callback).__name__


def _refund_result(payment: Payment) -> PaymentResult:
    return PaymentResult(
        user_id=payment.user_id,
        amount=payment.amount,
        currency=payment.currency,
        status=PaymentStatus.REFUNDED,
        transaction_id=payment.charge_id,
        timestamp=payment.refunded_at,
        metadata={"stage_id": payment.stage_id, "promo_code": payment.promo_code},
        stage_id=payment.stage_id,
        promo_code=payment.promo_code,
    )
