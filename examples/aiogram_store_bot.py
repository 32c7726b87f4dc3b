"""A store bot on aiogram 3: sells with Telegram Stars, takes promo codes, syncs its catalog.

The customer side: ``/start`` (or ``/catalog``) shows the products with a Buy button each,
``/promo CODE`` applies a promo code to the prices, and a Buy button sends a Stars
invoice. NEONPAY answers the pre-checkout query, records the payment once and thanks the
buyer. The owner side: the catalog lives in a durable store and syncs both ways with a
peer bot (here: the python-telegram-bot store bot of ``ptb_store_bot.py``), each bot
running its own sync server.

See it work on this machine, with no network and no tokens: a local Telegram Bot API
emulator, this bot, the python-telegram-bot store bot as its peer, and simulated
customers who buy with a promo code::

    python examples/aiogram_store_bot.py --emulator

Run it for real (a peer running the same kind of bot at PEER_URL, and the same sync
secret on both sides)::

    export BOT_TOKEN=... NEONPAY_SYNC_SECRET=...
    python examples/aiogram_store_bot.py --storage sqlite:///aiogram-store.db \\
        --sync-port 8081 --peer-name ptb-store --peer-url https://ptb-store.example.com/sync
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import socket
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import aiohttp
from aiogram import Bot, Dispatcher, F, Router
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from neonpay import (
    BotSyncConfig,
    DiscountType,
    MultiBotSyncManager,
    NeonPay,
    PaymentStage,
    SyncDirection,
    create_neonpay,
)
from neonpay.core.payments import PaymentResult
from neonpay.web_sync import run_sync_server

NAME = "aiogram-store"
#: What this bot sells; created at every start (writing the same stage again is a no-op).
CATALOG = {
    "premium": PaymentStage("Premium", "30 days of premium access", price=50),
    "stickers": PaymentStage("Sticker pack", "Twelve animated stickers", price=15),
}
THANK_YOU = "Thank you! Your purchase is active."


def catalog_view(neonpay: NeonPay, user_id: int, promo: str | None) -> tuple[str, list[str]]:
    """The catalog as text lines and the stage ids to offer, priced for this user."""
    lines = ["Our products:"]
    offered: list[str] = []
    for stage_id, stage in sorted(neonpay.list_payment_stages().items()):
        price = f"{stage.price} Stars"
        if promo is not None:
            ok, _, code = neonpay.promotions.validate(promo, user_id, stage.price)
            if ok and code is not None:
                price = f"{stage.price - code.discount_for(stage.price)} Stars with {promo}"
        lines.append(f"- {stage.title}: {stage.description} ({price})")
        offered.append(stage_id)
    return "\n".join(lines), offered


def promo_reply(neonpay: NeonPay, code: str | None) -> tuple[str | None, str]:
    """The code to remember (or None) and what to tell the customer."""
    if not code:
        return None, "Send /promo CODE to apply a promo code."
    promo = neonpay.promotions.get_promo_code(code)
    if promo is None or not promo.active:
        return None, f"{code} is not a valid promo code."
    return promo.code, f"{promo.code} applied. Send /catalog to see your prices."


class AiogramStore:
    """The bot: handlers on an aiogram ``Dispatcher``, payments and sync through NEONPAY."""

    name = NAME

    def __init__(self, token: str, storage: str, *, api_base: str | None = None) -> None:
        session = AiohttpSession(api=TelegramAPIServer.from_base(api_base)) if api_base else None
        self.bot = Bot(token, session=session)
        self.dp = Dispatcher()
        self.dp.include_router(self._router())
        self.neonpay = create_neonpay(
            bot_instance=self.bot, dispatcher=self.dp, storage=storage, thank_you_message=THANK_YOU
        )
        self.neonpay.on_payment(self._paid)
        self.multi_sync = MultiBotSyncManager(self.neonpay)
        self.promo_codes: dict[int, str] = {}  # user id -> applied promo code
        self.sales: list[PaymentResult] = []
        self._tasks: list[asyncio.Task[Any]] = []
        self._polling: asyncio.Task[Any] | None = None

    # --- the catalog ----------------------------------------------------------------------
    def stock(self) -> None:
        """Create this bot's products and its welcome promo code (idempotent)."""
        for stage_id, stage in CATALOG.items():
            if self.neonpay.get_payment_stage(stage_id) is None:
                self.neonpay.create_payment_stage(stage_id, stage)
        if self.neonpay.promotions.get_promo_code("WELCOME10") is None:
            self.neonpay.promotions.create_promo_code(
                "WELCOME10", DiscountType.PERCENTAGE, 10, max_uses=100, description="10% off"
            )

    def add_peer(self, name: str, token: str, url: str, secret: str | None = None) -> None:
        """Sync the catalog with another bot, both ways, automatically."""
        self.multi_sync.add_bot(
            BotSyncConfig(
                target_bot_token=token,
                target_bot_name=name,
                webhook_url=url,
                webhook_secret=secret,
                direction=SyncDirection.BIDIRECTIONAL,
                auto_sync=True,
                sync_interval_minutes=5,
            )
        )

    # --- the customer's side ----------------------------------------------------------------
    def _router(self) -> Router:
        router = Router(name=NAME)
        router.message.register(self._show_catalog, CommandStart())
        router.message.register(self._show_catalog, Command("catalog"))
        router.message.register(self._apply_promo, Command("promo"))
        router.callback_query.register(self._buy, F.data.startswith("buy:"))
        return router

    async def _show_catalog(self, message: Message) -> None:
        user_id = message.chat.id
        text, offered = catalog_view(self.neonpay, user_id, self.promo_codes.get(user_id))
        buttons = [
            [InlineKeyboardButton(text=f"Buy {stage_id}", callback_data=f"buy:{stage_id}")]
            for stage_id in offered
        ]
        await message.answer(text, reply_markup=InlineKeyboardMarkup(inline_keyboard=buttons))

    async def _apply_promo(self, message: Message, command: CommandObject) -> None:
        code, reply = promo_reply(self.neonpay, command.args)
        if code is not None:
            self.promo_codes[message.chat.id] = code
        await message.answer(reply)

    async def _buy(self, query: CallbackQuery) -> None:
        stage_id = (query.data or "").removeprefix("buy:")
        user_id = query.from_user.id
        sent = await self.neonpay.send_payment(user_id, stage_id, self.promo_codes.get(user_id))
        await query.answer("Invoice sent" if sent else "Sorry, this product cannot be sold now")

    async def _paid(self, result: PaymentResult) -> None:
        self.sales.append(result)
        self.promo_codes.pop(result.user_id, None)  # a promo code is for one purchase
        promo = f" with {result.promo_code}" if result.promo_code else ""
        print(
            f"  [{NAME}] sold {result.stage_id} to user {result.user_id} "
            f"for {result.amount} Stars{promo}"
        )

    # --- running ------------------------------------------------------------------------------
    async def serve(self, *, sync_port: int, secret: str | None = None) -> None:
        """Start the sync server (on loopback) and the bot's polling."""
        server = run_sync_server(self.neonpay, "127.0.0.1", sync_port, webhook_secret=secret)
        self._tasks.append(asyncio.create_task(server, name=f"{NAME} sync server"))
        await wait_until_serving(f"http://127.0.0.1:{sync_port}/health", self._tasks[-1])
        polling = self.dp.start_polling(
            self.bot, handle_signals=False, close_bot_session=False, polling_timeout=1
        )
        self._polling = asyncio.create_task(polling, name=f"{NAME} polling")

    async def stop(self) -> None:
        """Stop syncing, polling and serving; close the store and the bot's session."""
        await self.multi_sync.close()
        if self._polling is not None and not self._polling.done():
            try:
                await asyncio.wait_for(self.dp.stop_polling(), 10)
            except RuntimeError:  # polling had not begun yet
                self._polling.cancel()
            await asyncio.gather(self._polling, return_exceptions=True)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.neonpay.close()
        await self.bot.session.close()


# --- shared by both example bots ----------------------------------------------------------------
class StoreBot(Protocol):
    """What the emulated run needs of a store bot (this one or the python-telegram-bot one)."""

    name: str
    neonpay: NeonPay
    multi_sync: MultiBotSyncManager
    sales: list[PaymentResult]

    def stock(self) -> None: ...
    def add_peer(self, name: str, token: str, url: str, secret: str | None = None) -> None: ...
    async def serve(self, *, sync_port: int, secret: str | None = None) -> None: ...
    async def stop(self) -> None: ...


StoreFactory = Callable[[str, str, str], StoreBot]  # (token, storage URL, API base URL)


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def wait_until_serving(url: str, task: asyncio.Task[Any], timeout: float = 15.0) -> None:
    """Wait until ``url`` answers 200 (the server ``task`` must not have died)."""
    deadline = asyncio.get_running_loop().time() + timeout
    async with aiohttp.ClientSession() as session:
        while asyncio.get_running_loop().time() < deadline:
            if task.done():
                task.result()  # raises what stopped the server
                raise RuntimeError(f"the server for {url} stopped")
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.05)
    raise TimeoutError(f"nothing answered {url} within {timeout} s")


async def eventually(condition: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    """Wait until ``condition()`` holds, at most ``timeout`` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.05)


def show_catalogs(*stores: StoreBot) -> None:
    for store in stores:
        items = ", ".join(
            f"{stage_id} {stage.price}"
            for stage_id, stage in sorted(store.neonpay.list_payment_stages().items())
        )
        print(f"  {store.name:<14} {items}")


def same_catalog(a: StoreBot, b: StoreBot) -> bool:
    return a.neonpay.list_payment_stages() == b.neonpay.list_payment_stages() and {
        p.code for p in a.neonpay.promotions.list_promo_codes()
    } == {p.code for p in b.neonpay.promotions.list_promo_codes()}


async def customer_buys(
    emu: Any, store: StoreBot, token: str, user_id: int, stage_id: str, promo: str
) -> int:
    """A simulated customer: /promo CODE, /catalog, Buy, pay. Returns the Stars paid."""
    emu.send_message_from_user(token, user_id, f"/promo {promo}")
    await emu.wait_for_message(user_id, bot=token, predicate=lambda m: promo in m["text"])
    since = len(emu.sent_messages(user_id, bot=token))
    emu.send_message_from_user(token, user_id, "/catalog")
    catalog = await emu.wait_for_message(
        user_id, bot=token, since=since, predicate=lambda m: "reply_markup" in m
    )
    print(f"  user {user_id} sees on {store.name}:")
    for line in catalog["text"].splitlines()[1:]:
        print(f"    {line}")
    invoices = len(emu.invoices(bot=token))
    emu.press_button(token, user_id, catalog, f"buy:{stage_id}")
    await eventually(lambda: len(emu.invoices(bot=token)) > invoices, "the invoice")
    invoice = emu.invoices(bot=token)[-1]
    sold = len(store.sales)
    paid = await emu.pay(user_id, invoice, bot=token)
    if not paid.approved:
        raise RuntimeError(f"the payment was refused: {paid.error_message}")
    await eventually(lambda: len(store.sales) > sold, "the on_payment callback")
    amount: int = invoice.amount
    return amount


async def run_emulated_chain(this_factory: StoreFactory, peer_factory: StoreFactory) -> int:
    """Run two store bots that sync with each other against the Bot API emulator, with
    simulated customers; print what happens. Returns the exit code (0: all went right)."""
    from neonpay.testing import BotAPIEmulator

    secret = secrets.token_urlsafe(32)
    tokens = ("1000001:AAexample-store-token-number-one-x", "1000002:AAexample-store-token-two-xyz")
    ports = (free_port(), free_port())
    with tempfile.TemporaryDirectory(prefix="neonpay-example-") as tmp:
        async with BotAPIEmulator() as emu:
            this = this_factory(tokens[0], f"sqlite:///{Path(tmp) / 'this.db'}", emu.base_url)
            peer = peer_factory(tokens[1], f"sqlite:///{Path(tmp) / 'peer.db'}", emu.base_url)
            try:
                print(f"1. Two store bots on a local Bot API emulator ({emu.base_url})")
                this.stock()
                peer.stock()
                this.add_peer(peer.name, tokens[1], f"http://127.0.0.1:{ports[1]}/sync", secret)
                peer.add_peer(this.name, tokens[0], f"http://127.0.0.1:{ports[0]}/sync", secret)
                show_catalogs(this, peer)
                await this.serve(sync_port=ports[0], secret=secret)
                await peer.serve(sync_port=ports[1], secret=secret)

                print("2. Auto sync starts: each bot gets the other's products and promo codes")
                await this.multi_sync.start_auto_sync_all()
                await peer.multi_sync.start_auto_sync_all()
                await eventually(lambda: same_catalog(this, peer), "the catalogs to converge")
                show_catalogs(this, peer)

                print(f"3. A customer buys on {this.name} with the promo code WELCOME10")
                paid = await customer_buys(emu, this, tokens[0], 1001, "premium", "WELCOME10")
                print(f"  paid {paid} Stars for premium (50 without the code)")

                print(f"4. The owner of {peer.name} changes a price; real-time sync carries it")
                peer.neonpay.update_payment_stage("stickers", price=12)
                await eventually(
                    lambda: (
                        this.neonpay.get_payment_stage("stickers")
                        == (peer.neonpay.get_payment_stage("stickers"))
                    ),
                    "the new price to arrive",
                )
                show_catalogs(this, peer)

                print(f"5. Another customer buys the cheaper stickers on {peer.name}")
                paid = await customer_buys(emu, peer, tokens[1], 1002, "stickers", "WELCOME10")
                print(f"  paid {paid} Stars for stickers (12 without the code)")

                print("6. Promo code uses are counted per bot and summed by sync")
                await eventually(
                    lambda: (
                        this.neonpay.promotions.usage("WELCOME10")
                        == peer.neonpay.promotions.usage("WELCOME10")
                        == 2
                    ),
                    "both uses to be known on both bots",
                )
                for store in (this, peer):
                    stats = store.multi_sync.get_all_sync_stats()
                    other = next(iter(stats))
                    print(
                        f"  {store.name:<14} WELCOME10 used "
                        f"{store.neonpay.promotions.usage('WELCOME10')}x, "
                        f"{len(store.sales)} sale(s), {stats[other]['total_syncs']} syncs with "
                        f"{other} ({stats[other]['success_rate']:.0f}% successful)"
                    )
                print("Done: both bots sold with Stars and kept one catalog.")
                return 0
            except (TimeoutError, RuntimeError) as exc:
                print(f"FAILED: {exc}", file=sys.stderr)
                return 1
            finally:
                await this.stop()
                await peer.stop()


def make_store(token: str, storage: str, api_base: str) -> StoreBot:
    """An :class:`AiogramStore` talking to the Bot API at ``api_base``."""
    return AiogramStore(token, storage, api_base=api_base)


# --- the command line -------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--emulator",
        action="store_true",
        help="run against a local Bot API emulator with the ptb store bot as peer, then exit",
    )
    parser.add_argument("--storage", default="sqlite:///aiogram-store.db", help="store URL")
    parser.add_argument("--sync-port", type=int, default=8081, help="sync server port")
    parser.add_argument("--peer-name", help="the peer bot's name")
    parser.add_argument("--peer-url", help="the peer bot's sync URL (https://host/sync)")
    parser.add_argument("--peer-token", default="", help="the peer bot's token (display only)")
    return parser.parse_args(argv)


async def run_for_real(args: argparse.Namespace) -> int:
    token = os.environ.get("BOT_TOKEN")
    if not token:
        print("set BOT_TOKEN (and NEONPAY_SYNC_SECRET), or try --emulator", file=sys.stderr)
        return 2
    store = AiogramStore(token, args.storage)
    try:
        store.stock()
        if args.peer_name and args.peer_url:
            store.add_peer(args.peer_name, args.peer_token, args.peer_url)
        await store.serve(sync_port=args.sync_port)  # secret: $NEONPAY_SYNC_SECRET
        await store.multi_sync.start_auto_sync_all()
        print(f"{NAME} is running; Ctrl-C stops it")
        await asyncio.Event().wait()
    finally:
        await store.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.emulator:
        from ptb_store_bot import make_store as make_ptb_store

        return asyncio.run(run_emulated_chain(make_store, make_ptb_store))
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(run_for_real(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
