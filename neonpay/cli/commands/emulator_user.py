"""``neonpay emulator bots|send|messages|invoices|pay|refund``: acting as the user.

Each action is one request to the control API of a running ``neonpay emulator`` (see
:mod:`neonpay.testing.control`), so a person can try a bot by hand from another shell:
write ``/start``, read the bot's replies, pay its invoice, ask for a refund.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from neonpay.cli.arguments import positive_int, required_text, seconds
from neonpay.cli.control_client import DEFAULT_EMULATOR_URL, call
from neonpay.cli.tree import EXIT_FAILED, EXIT_OK, add_command

if TYPE_CHECKING:
    from neonpay.cli.context import Context
    from neonpay.cli.tree import Subparsers

__all__ = ["URL_ENV", "register_actions"]

#: The environment variable that gives ``--url`` its default.
URL_ENV = "NEONPAY_EMULATOR_URL"
#: Seconds ``send`` and ``pay`` wait for the bot's first reply by default.
DEFAULT_REPLY_WAIT = 5.0

_MESSAGE_COLUMNS = [("message_id", "id"), ("summary", "message")]


def _connection(parser: argparse.ArgumentParser, *, user: bool = True) -> None:
    parser.add_argument(
        "--url",
        default=os.environ.get(URL_ENV) or DEFAULT_EMULATOR_URL,
        metavar="URL",
        help=f"the running emulator (default ${URL_ENV}, else {DEFAULT_EMULATOR_URL})",
    )
    if not user:
        return
    parser.add_argument(
        "--bot",
        metavar="BOT",
        help="the bot's username (@ optional) or id; may be left out when only one bot is known",
    )
    parser.add_argument(
        "--user", type=positive_int, required=True, metavar="ID", help="the simulated user's id"
    )


def _wait(parser: argparse.ArgumentParser, default: float) -> None:
    parser.add_argument(
        "--wait",
        type=seconds,
        default=default,
        metavar="SECONDS",
        help=f"wait this long for the bot's first reply (default {default:g}; 0: do not wait)",
    )


def register_actions(actions: Subparsers) -> None:
    """Add the actions that act as the user to ``neonpay emulator``."""
    bots = add_command(
        actions,
        "bots",
        help="list the bots a running emulator knows (tokens masked)",
        handler=run_bots,
        examples=["neonpay emulator bots --url http://127.0.0.1:8081"],
    )
    _connection(bots, user=False)

    send = add_command(
        actions,
        "send",
        help="write a message to a bot as a user, and show its replies",
        handler=run_send,
        examples=['neonpay emulator send --bot shop_bot --user 42 "/start"'],
    )
    _connection(send)
    _wait(send, DEFAULT_REPLY_WAIT)
    send.add_argument("text", type=required_text, help="the message (a command such as /start)")

    messages = add_command(
        actions,
        "messages",
        help="show what a bot sent to a user",
        handler=run_messages,
        examples=["neonpay emulator messages --bot shop_bot --user 42"],
    )
    _connection(messages)
    messages.add_argument(
        "--since", type=int, default=0, metavar="N", help="skip the first N messages"
    )
    _wait(messages, 0.0)

    invoices = add_command(
        actions,
        "invoices",
        help="show the invoices a bot sent to a user",
        handler=run_invoices,
        examples=["neonpay emulator invoices --bot shop_bot --user 42"],
    )
    _connection(invoices)

    pay = add_command(
        actions,
        "pay",
        help="pay a bot's invoice as the user (pre-checkout, then the payment)",
        handler=run_pay,
        examples=[
            "neonpay emulator pay --bot shop_bot --user 42",
            "neonpay emulator pay --bot shop_bot --user 42 --invoice 7",
        ],
    )
    _connection(pay)
    pay.add_argument(
        "--invoice",
        type=positive_int,
        metavar="MESSAGE_ID",
        help="the invoice's message id (see 'invoices'; default: the last one)",
    )
    _wait(pay, DEFAULT_REPLY_WAIT)

    refund = add_command(
        actions,
        "refund",
        help="refund a user's payment on Telegram's side (the bot is told)",
        handler=run_refund,
        examples=["neonpay emulator refund --bot shop_bot --user 42"],
    )
    _connection(refund)
    refund.add_argument(
        "--charge",
        metavar="CHARGE_ID",
        help="the payment's charge id (default: the user's last payment not refunded)",
    )


def _who(args: argparse.Namespace) -> dict[str, Any]:
    return {"bot": args.bot, "user": args.user}


def _show_replies(ctx: Context, answer: Mapping[str, Any], wait: float) -> None:
    replies: Sequence[Mapping[str, Any]] = answer.get("replies") or []
    bot = answer.get("bot", "the bot")
    for reply in replies:
        ctx.out.line(f"@{bot}: {reply.get('summary')}")
    if not replies and wait > 0:
        ctx.out.line(f"(no reply from @{bot} within {wait:g} s; see 'neonpay emulator messages')")


def run_bots(ctx: Context) -> int:
    answer = call(ctx.args.url, "bots")
    bots = answer.get("bots") or []
    ctx.out.listing(
        answer,
        [
            ("id", "id"),
            ("username", "username"),
            ("token", "token"),
            ("star_balance", "stars"),
            ("webhook", "webhook"),
        ],
        bots,
        empty="no bot has called the emulator yet",
    )
    return EXIT_OK


def run_send(ctx: Context) -> int:
    args = ctx.args
    answer = call(
        args.url, "send", body={**_who(args), "text": args.text, "wait": args.wait}, wait=args.wait
    )
    if ctx.out.json_mode:
        ctx.out.json(answer)
        return EXIT_OK
    ctx.out.line(f"user {args.user} → @{answer.get('bot')}: {args.text}")
    _show_replies(ctx, answer, args.wait)
    return EXIT_OK


def run_messages(ctx: Context) -> int:
    args = ctx.args
    query = {**_who(args), "since": args.since, "wait": args.wait}
    answer = call(args.url, "messages", query=query, wait=args.wait)
    ctx.out.listing(
        answer,
        _MESSAGE_COLUMNS,
        answer.get("messages") or [],
        title=f"@{answer.get('bot')} → user {args.user}",
        empty="no messages",
    )
    return EXIT_OK


def run_invoices(ctx: Context) -> int:
    args = ctx.args
    answer = call(args.url, "invoices", query=_who(args))
    ctx.out.listing(
        answer,
        [
            ("message_id", "message id"),
            ("title", "title"),
            ("amount", "amount"),
            ("currency", "currency"),
            ("paid", "paid"),
        ],
        answer.get("invoices") or [],
        title=f"invoices of @{answer.get('bot')} to user {args.user}",
        empty="none",
    )
    return EXIT_OK


def run_pay(ctx: Context) -> int:
    args = ctx.args
    body = {**_who(args), "invoice": args.invoice, "wait": args.wait}
    answer = call(args.url, "pay", body=body, wait=args.wait)
    invoice = answer.get("invoice") or {}
    if ctx.out.json_mode:
        ctx.out.json(answer)
    elif answer.get("approved"):
        ctx.out.success(
            f"paid {invoice.get('amount')} {invoice.get('currency')} for "
            f"{invoice.get('title')!r} (charge {answer.get('charge_id')})"
        )
        _show_replies(ctx, answer, args.wait)
    if answer.get("approved"):
        return EXIT_OK
    reason = answer.get("error_message") or "no reason given"
    if answer.get("timed_out"):
        ctx.out.error(f"@{answer.get('bot')} did not answer the pre-checkout query in time")
    else:
        ctx.out.error(f"@{answer.get('bot')} refused the payment: {reason}")
    return EXIT_FAILED


def run_refund(ctx: Context) -> int:
    args = ctx.args
    answer = call(args.url, "refund", body={**_who(args), "charge_id": args.charge})
    if ctx.out.json_mode:
        ctx.out.json(answer)
        return EXIT_OK
    refund = answer.get("refund") or {}
    ctx.out.success(
        f"refunded {refund.get('amount')} {refund.get('currency')} to user {args.user} "
        f"(charge {refund.get('charge_id')}); @{answer.get('bot')} got the refunded_payment"
    )
    return EXIT_OK
