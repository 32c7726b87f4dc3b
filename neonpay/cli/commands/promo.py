"""``neonpay promo list|add|remove``: the promo codes of the store."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from neonpay.cli.arguments import moment, number, user_ids
from neonpay.cli.tree import EXIT_FAILED, EXIT_OK, add_command, add_group
from neonpay.cli.views import PROMO_COLUMNS, format_time, promo_row, promo_view
from neonpay.core import DiscountType

if TYPE_CHECKING:
    from neonpay.cli.context import Context
    from neonpay.cli.tree import Subparsers

__all__ = ["register"]


def register(subparsers: Subparsers) -> None:
    """Add ``neonpay promo``."""
    actions = add_group(
        subparsers,
        "promo",
        help="list and edit promo codes",
        examples=["neonpay promo add SPRING25 --percent 25 --max-uses 100"],
    )
    add_command(
        actions,
        "list",
        help="list the promo codes with their network-wide uses",
        handler=list_promos,
        reads_only=True,
        examples=["neonpay promo list", "neonpay promo list --json"],
    )
    add = add_command(
        actions,
        "add",
        help="create (or replace) a promo code",
        handler=add_promo,
        examples=[
            "neonpay promo add SPRING25 --percent 25 --max-uses 100 --expires 2030-06-01",
            "neonpay promo add MINUS10 --fixed 10 --min-amount 50",
        ],
    )
    add.add_argument("code", metavar="CODE", help="3-32 characters of A-Z, 0-9, _ and -")
    kind = add.add_mutually_exclusive_group(required=True)
    kind.add_argument("--percent", type=number, help="percentage off (1-100)")
    kind.add_argument("--fixed", type=number, help="Stars off the price")
    add.add_argument("--max-uses", type=number, help="uses allowed over all bots")
    add.add_argument(
        "--expires",
        type=moment,
        metavar="WHEN",
        help="expiry: ISO date/time (UTC unless given) or Unix timestamp",
    )
    add.add_argument("--min-amount", type=number, help="lowest price it applies to")
    add.add_argument(
        "--users", type=user_ids, metavar="ID,ID", help="only these Telegram user ids may use it"
    )
    add.add_argument("--description", default="", help="a note for people")
    add.add_argument("--inactive", action="store_true", help="create it switched off")
    remove = add_command(
        actions,
        "remove",
        help="delete a promo code (the delete syncs to peers)",
        handler=remove_promo,
        examples=["neonpay promo remove SPRING25"],
    )
    remove.add_argument("code", metavar="CODE", help="the promo code")


def list_promos(ctx: Context) -> int:
    promos = sorted(ctx.open_neonpay().promotions.list_promo_codes(), key=lambda p: p.code)
    ctx.out.listing(
        [promo_view(p) for p in promos],
        PROMO_COLUMNS,
        [promo_row(p) for p in promos],
        title="Promo codes",
        empty="none",
    )
    return EXIT_OK


def add_promo(ctx: Context) -> int:
    args = ctx.args
    if args.percent is not None:
        discount_type, value = DiscountType.PERCENTAGE, args.percent
    else:
        discount_type, value = DiscountType.FIXED_AMOUNT, args.fixed
    promo = ctx.open_neonpay().promotions.create_promo_code(
        args.code,
        discount_type,
        value,
        max_uses=args.max_uses,
        expires_at=args.expires,
        min_amount=args.min_amount,
        allowed_user_ids=args.users,
        description=args.description,
        active=not args.inactive,
    )
    if ctx.out.json_mode:
        ctx.out.json(promo_view(promo))
    else:
        row = promo_row(promo)
        ctx.out.success(f"saved promo code {promo.code}: {row['discount']} off")
    if promo.expires_at is not None and promo.expires_at <= time.time():
        ctx.out.warn(
            f"{promo.code} is already expired ({format_time(promo.expires_at)}): nobody can "
            "use it; give a later --expires to fix it"
        )
    return EXIT_OK


def remove_promo(ctx: Context) -> int:
    code = ctx.args.code
    removed = ctx.open_neonpay().promotions.remove_promo_code(code)
    if ctx.out.json_mode:
        ctx.out.json({"code": code.upper(), "removed": removed})
    if not removed:
        ctx.out.error(f"no promo code {code.upper()!r}")
        return EXIT_FAILED
    if not ctx.out.json_mode:
        ctx.out.success(f"removed promo code {code.upper()}")
    return EXIT_OK
