"""A store bot on python-telegram-bot: sells with Telegram Stars, takes promo codes, syncs.

The same shop as ``aiogram_store_bot.py``, written for python-telegram-bot 21/22: ``/start``
or ``/catalog`` lists the products with Buy buttons, ``/promo CODE`` applies a promo code,
a Buy button sends a Stars invoice, and NEONPAY (registered on the ``Application``) answers
the pre-checkout query, records the payment once and thanks the buyer. The catalog syncs
both ways with a peer bot, each bot running its own sync server.

See it work on this machine, with no network and no tokens: a local Telegram Bot API
emulator, this bot, the aiogram store bot as its peer, and simulated customers::

    python examples/ptb_store_bot.py --emulator

Run it for real::

    export BOT_TOKEN=... NEONPAY_SYNC_SECRET=...
    python examples/ptb_store_bot.py --storage sqlite:///ptb-store.db \\
        --sync-port 8082 --peer-name aiogram-store --peer-url https://aiogram-store.example.com/sync
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from typing import Any

import aiohttp
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, ContextTypes

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

NAME = "ptb-store"
#: What this bot sells; created at every start (writing the same stage again is a no-op).
CATALOG = {
    "gift-card": PaymentStage("Gift card", "A gift card worth 100 Stars of goods", price=90),
}
THANK_YOU = "Thank you! Your purchase is active."
App = Application[Any, Any, Any, Any, Any, Any]


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


class PtbStore:
    """The bot: handlers on a python-telegram-bot ``Application``, payments and sync
    through NEONPAY."""

    name = NAME

    def __init__(self, token: str, storage: str, *, api_base: str | None = None) -> None:
        builder = Application.builder().token(token)
        if api_base:
            builder = builder.base_url(f"{api_base}/bot")
        self.app: App = builder.build()
        self.app.add_handler(CommandHandler(["start", "catalog"], self._show_catalog))
        self.app.add_handler(CommandHandler("promo", self._apply_promo))
        self.app.add_handler(CallbackQueryHandler(self._buy, pattern=r"^buy:"))
        self.neonpay = create_neonpay(
            bot_instance=self.app.bot,
            application=self.app,
            storage=storage,
            thank_you_message=THANK_YOU,
        )
        self.neonpay.on_payment(self._paid)
        self.multi_sync = MultiBotSyncManager(self.neonpay)
        self.promo_codes: dict[int, str] = {}  # user id -> applied promo code
        self.sales: list[PaymentResult] = []
        self._server: asyncio.Task[None] | None = None
        self._started = False

    # --- the catalog ----------------------------------------------------------------------
    def stock(self) -> None:
        """Create this bot's products and its loyalty promo code (idempotent)."""
        for stage_id, stage in CATALOG.items():
            if self.neonpay.get_payment_stage(stage_id) is None:
                self.neonpay.create_payment_stage(stage_id, stage)
        if self.neonpay.promotions.get_promo_code("LOYAL5") is None:
            self.neonpay.promotions.create_promo_code(
                "LOYAL5", DiscountType.FIXED_AMOUNT, 5, min_amount=20, description="5 Stars off"
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
    async def _show_catalog(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is None:
            return
        user_id = message.chat.id
        text, offered = catalog_view(self.neonpay, user_id, self.promo_codes.get(user_id))
        buttons = [
            [InlineKeyboardButton(f"Buy {stage_id}", callback_data=f"buy:{stage_id}")]
            for stage_id in offered
        ]
        await message.reply_text(text, reply_markup=InlineKeyboardMarkup(buttons))

    async def _apply_promo(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is None:
            return
        code, reply = promo_reply(self.neonpay, context.args[0] if context.args else None)
        if code is not None:
            self.promo_codes[message.chat.id] = code
        await message.reply_text(reply)

    async def _buy(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        if query is None:
            return
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
        self._server = asyncio.create_task(server, name=f"{NAME} sync server")
        await wait_until_serving(f"http://127.0.0.1:{sync_port}/health", self._server)
        await self.app.initialize()
        await self.app.start()
        self._started = True
        assert self.app.updater is not None
        await self.app.updater.start_polling(poll_interval=0, timeout=1)

    async def stop(self) -> None:
        """Stop syncing, polling and serving; close the store."""
        await self.multi_sync.close()
        if self._started:
            assert self.app.updater is not None
            await self.app.updater.stop()
            await self.app.stop()
            await self.app.shutdown()
        if self._server is not None:
            self._server.cancel()
            await asyncio.gather(self._server, return_exceptions=True)
        self.neonpay.close()


def make_store(token: str, storage: str, api_base: str) -> PtbStore:
    """A :class:`PtbStore` talking to the Bot API at ``api_base``."""
    return PtbStore(token, storage, api_base=api_base)


# --- the command line -------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--emulator",
        action="store_true",
        help="run against a local Bot API emulator with the aiogram store bot as peer, then exit",
    )
    parser.add_argument("--storage", default="sqlite:///ptb-store.db", help="store URL")
    parser.add_argument("--sync-port", type=int, default=8082, help="sync server port")
    parser.add_argument("--peer-name", help="the peer bot's name")
    parser.add_argument("--peer-url", help="the peer bot's sync URL (https://host/sync)")
    parser.add_argument("--peer-token", default="", help="the peer bot's token (display only)")
    return parser.parse_args(argv)


async def run_for_real(args: argparse.Namespace) -> int:
    token = os.environ.get("BOT_TOKEN")
    if not token:
        print("set BOT_TOKEN (and NEONPAY_SYNC_SECRET), or try --emulator", file=sys.stderr)
        return 2
    store = PtbStore(token, args.storage)
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
        from aiogram_store_bot import make_store as make_aiogram_store
        from aiogram_store_bot import run_emulated_chain

        return asyncio.run(run_emulated_chain(make_store, make_aiogram_store))
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(run_for_real(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
