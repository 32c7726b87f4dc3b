"""A small aiogram shop bot for the ``neonpay emulator`` user-action tests, run as a process.

``/start`` greets, ``/buy`` sends the Stars invoice of the ``premium`` stage through
NEONPAY, which answers the pre-checkout query, records the payment in the SQLite store
given by ``--storage`` and thanks the buyer. Runs until SIGTERM.

    python tests/cli/emulator_shop_bot.py --api http://127.0.0.1:8081 \\
        --token 123456:ABC... --storage sqlite:///shop.db
"""

from __future__ import annotations

import argparse
import asyncio
import signal

from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.filters import Command, CommandStart
from aiogram.types import Message

from neonpay import PaymentStage, create_neonpay

GREETING = "Hello! Send /buy for Premium (25 Stars)."
THANK_YOU = "Thank you! Premium is yours."
PRICE = 25


async def main(api: str, token: str, storage: str) -> None:
    bot = Bot(token, session=AiohttpSession(api=TelegramAPIServer.from_base(api)))
    dp = Dispatcher()
    neonpay = create_neonpay(
        bot_instance=bot, dispatcher=dp, storage=storage, thank_you_message=THANK_YOU
    )
    if neonpay.get_payment_stage("premium") is None:
        neonpay.create_payment_stage(
            "premium", PaymentStage(title="Premium", description="30 days", price=PRICE)
        )

    async def start(message: Message) -> None:
        await message.answer(GREETING)

    async def buy(message: Message) -> None:
        await neonpay.send_payment(user_id=message.chat.id, stage_id="premium")

    dp.message.register(start, CommandStart())
    dp.message.register(buy, Command("buy"))
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stopping.set)
    polling = asyncio.create_task(
        dp.start_polling(bot, polling_timeout=1, handle_signals=False, close_bot_session=True)
    )
    try:
        await stopping.wait()
    finally:
        await dp.stop_polling()
        await asyncio.wait_for(polling, 10)
        neonpay.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--api", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--storage", required=True)
    args = parser.parse_args()
    asyncio.run(main(args.api, args.token, args.storage))
