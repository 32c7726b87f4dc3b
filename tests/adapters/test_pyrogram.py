"""Pyrogram (kurigram): the adapter at the client's method boundary.

Pyrogram speaks MTProto, which the HTTP emulator cannot serve and which cannot run
without Telegram's servers. So these tests use a real ``pyrogram.Client`` whose
``invoke`` (the single exit to the network) and ``resolve_peer`` (which would ask the
network) record and answer instead; everything between NEONPAY and that boundary is
pyrogram's own code, and the updates are real ``pyrogram.types`` objects handed to the
handlers NEONPAY registered on the client, after their filters.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from pyrogram import Client, enums, types
from pyrogram import raw as pyrogram_raw
from pyrogram.errors.exceptions.bad_request_400 import ChargeAlreadyRefunded

from neonpay import NeonPay, PaymentStage, create_neonpay
from neonpay.adapters.base import HANDLER_GROUP
from neonpay.adapters.pyrogram import PyrogramAdapter
from neonpay.core.payments import PaymentResult

from .flow import TOKEN, USER_ID, eventually

PRICE = 25
#: pyrogram's generated TL classes are not re-exported for mypy; use them untyped.
raw: Any = pyrogram_raw


class Network:
    """Stands in for Telegram at ``Client.invoke``: records each request, answers it."""

    def __init__(self) -> None:
        self.requests: list[Any] = []
        self.fail_with: BaseException | None = None

    async def invoke(self, query: Any, *args: Any, **kwargs: Any) -> Any:
        self.requests.append(query)
        if self.fail_with is not None:
            error, self.fail_with = self.fail_with, None
            raise error
        if isinstance(query, raw.functions.payments.ExportInvoice):
            return raw.types.payments.ExportedInvoice(url="https://t.me/$abc")
        if isinstance(query, raw.functions.messages.SendMessage):
            return raw.types.UpdateShortSentMessage(id=7, pts=1, pts_count=1, date=0, out=True)
        if isinstance(query, raw.functions.messages.SendMedia):
            return raw.types.Updates(updates=[], users=[], chats=[], date=0, seq=0)
        return True

    async def resolve_peer(self, peer_id: Any) -> Any:
        return raw.types.InputPeerUser(user_id=int(peer_id), access_hash=0)

    def of(self, kind: type) -> list[Any]:
        return [r for r in self.requests if isinstance(r, kind)]


@pytest_asyncio.fixture
async def client() -> AsyncIterator[tuple[Client, Network]]:
    client = Client("neonpay-test", api_id=1, api_hash="0" * 32, bot_token=TOKEN, in_memory=True)
    network = Network()
    client.invoke = network.invoke  # type: ignore[method-assign]
    client.resolve_peer = network.resolve_peer  # type: ignore[method-assign]
    yield client, network


@pytest_asyncio.fixture
async def shop(client: tuple[Client, Network], sqlite_url: str) -> AsyncIterator[NeonPay]:
    neonpay = create_neonpay(bot_instance=client[0], storage=sqlite_url)
    neonpay.create_payment_stage("premium", PaymentStage("Premium", "30 days", price=PRICE))
    await eventually(
        lambda: len(client[0].dispatcher.groups.get(HANDLER_GROUP, [])) == 3, "the handlers"
    )
    yield neonpay
    neonpay.close()


async def dispatch(client: Client, update: Any) -> int:
    """Hand ``update`` to the matching handlers in NEONPAY's group, as the dispatcher
    does; returns how many ran."""
    ran = 0
    for handler in client.dispatcher.groups[HANDLER_GROUP]:
        if isinstance(update, types.PreCheckoutQuery) != (
            type(handler).__name__ == "PreCheckoutQueryHandler"
        ):
            continue
        if await handler.check(client, update):
            await handler.callback(client, update)
            ran += 1
    return ran


def user() -> types.User:
    return types.User(id=USER_ID, is_bot=False, first_name="Ada")


def query(client: Client, payload: str, amount: int = PRICE) -> types.PreCheckoutQuery:
    return types.PreCheckoutQuery(
        client=client,
        id="5551212",
        from_user=user(),
        currency="XTR",
        total_amount=amount,
        invoice_payload=payload,
    )


def payment_message(client: Client, payload: str, charge: str) -> types.Message:
    return types.Message(
        id=10,
        client=client,
        chat=types.Chat(id=USER_ID, type=enums.ChatType.PRIVATE),
        from_user=user(),
        successful_payment=types.SuccessfulPayment(
            currency="XTR",
            total_amount=PRICE,  # type: ignore[arg-type]
            invoice_payload=payload,
            telegram_payment_charge_id=charge,
            provider_payment_charge_id="",
        ),
    )


async def test_invoice_goes_out_as_a_stars_invoice(
    client: tuple[Client, Network], shop: NeonPay
) -> None:
    _, network = client
    assert isinstance(shop.adapter, PyrogramAdapter)
    assert await shop.send_payment(USER_ID, "premium") is True
    (request,) = network.of(raw.functions.messages.SendMedia)
    media = request.media
    assert media.invoice.currency == "XTR"
    assert [(p.label, p.amount) for p in media.invoice.prices] == [("Payment", PRICE)]
    assert media.invoice.max_tip_amount is None
    assert not media.provider
    assert media.payload.decode().startswith("np1c|premium|")
    assert request.peer.user_id == USER_ID
    link = await shop.create_invoice_link("premium", subscription_period=2_592_000)
    assert link == "https://t.me/$abc"
    (export,) = network.of(raw.functions.payments.ExportInvoice)
    assert export.invoice_media.invoice.subscription_period == 2_592_000


async def test_pre_checkout_payment_redelivery_and_refund(
    client: tuple[Client, Network], shop: NeonPay
) -> None:
    app, network = client
    seen: list[PaymentResult] = []
    shop.on_payment(seen.append)
    assert await shop.send_payment(USER_ID, "premium")
    payload = network.of(raw.functions.messages.SendMedia)[0].media.payload.decode()

    assert await dispatch(app, query(app, payload)) == 1
    (answer,) = network.of(raw.functions.messages.SetBotPrecheckoutResults)
    assert (answer.query_id, answer.success, answer.error) == (5551212, True, None)

    message = payment_message(app, payload, "charge-1")
    assert await dispatch(app, message) == 1
    assert await dispatch(app, message) == 1  # delivered twice
    assert [p.charge_id for p in shop.payments.list()] == ["charge-1"]
    assert len(seen) == 1
    (thanks,) = network.of(raw.functions.messages.SendMessage)
    assert thanks.message == shop.thank_you_message

    shop.update_payment_stage("premium", price=PRICE + 1)
    assert await dispatch(app, query(app, payload)) == 1
    refused = network.of(raw.functions.messages.SetBotPrecheckoutResults)[-1]
    assert not refused.success
    assert "price has changed" in refused.error

    network.fail_with = ChargeAlreadyRefunded()
    refunded = await shop.refund("charge-1")
    assert refunded.refunded
    (refund,) = network.of(raw.functions.payments.RefundStarsCharge)
    assert refund.charge_id == "charge-1"
    assert refund.user_id.user_id == USER_ID
    assert (await shop.refund("charge-1")).refunded
    assert len(network.of(raw.functions.payments.RefundStarsCharge)) == 1


async def test_foreign_invoices_are_left_alone(
    client: tuple[Client, Network], shop: NeonPay
) -> None:
    app, network = client
    assert await dispatch(app, query(app, "order-1")) == 0
    assert await dispatch(app, payment_message(app, "order-1", "charge-9")) == 0
    assert network.requests == []
    assert shop.payments.list() == []


async def test_a_failing_answer_is_logged_not_raised(
    client: tuple[Client, Network], shop: NeonPay, caplog: pytest.LogCaptureFixture
) -> None:
    app, network = client
    assert await shop.send_payment(USER_ID, "premium")
    payload = network.of(raw.functions.messages.SendMedia)[0].media.payload.decode()
    network.fail_with = ConnectionError("network down")
    await dispatch(app, query(app, payload))
    assert any("answering a pre-checkout query failed" in r.getMessage() for r in caplog.records)
    assert shop.payments.list() == []
