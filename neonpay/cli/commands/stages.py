"""``neonpay stages list|add|update|remove``: the payment stages (products) of the store."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from neonpay.cli.arguments import json_value, number
from neonpay.cli.tree import EXIT_FAILED, EXIT_OK, EXIT_USAGE, add_command, add_group
from neonpay.cli.views import STAGE_COLUMNS, stage_view
from neonpay.core import PaymentStage

if TYPE_CHECKING:
    from neonpay.cli.context import Context
    from neonpay.cli.tree import Subparsers

__all__ = ["register"]

#: Options that map to stage fields: (flag, field, type, help).
_FIELDS: list[tuple[str, str, Any, str]] = [
    ("--title", "title", str, "title shown on the invoice (1-32 characters)"),
    ("--description", "description", str, "description (1-255 characters)"),
    ("--price", "price", number, "price in whole Stars (1-10000)"),
    ("--label", "label", str, "price label (default 'Payment')"),
    ("--photo-url", "photo_url", str, "http(s) URL of a photo"),
    ("--payload", "payload", json_value, "JSON value handed to on_payment (max 128 bytes)"),
    ("--start-parameter", "start_parameter", str, "deep-link start parameter"),
]


def register(subparsers: Subparsers) -> None:
    """Add ``neonpay stages``."""
    actions = add_group(
        subparsers,
        "stages",
        help="list and edit payment stages (the products sold for Stars)",
        examples=[
            "neonpay stages add premium --title Premium --description 'All features' --price 100"
        ],
    )
    add_command(
        actions,
        "list",
        help="list the payment stages",
        handler=list_stages,
        reads_only=True,
        examples=["neonpay stages list", "neonpay stages list --json"],
    )
    add = add_command(
        actions,
        "add",
        help="create a payment stage",
        handler=add_stage,
        examples=[
            "neonpay stages add premium --title Premium --description 'All features' --price 100"
        ],
    )
    add.add_argument("stage_id", metavar="ID", help="the stage id (letters, digits, _ and -)")
    for flag, field, kind, text in _FIELDS:
        required = field in ("title", "description", "price")
        add.add_argument(flag, dest=field, type=kind, required=required, help=text)
    add.add_argument("--replace", action="store_true", help="replace a stage that already exists")
    update = add_command(
        actions,
        "update",
        help="change fields of a payment stage",
        handler=update_stage,
        examples=["neonpay stages update premium --price 120"],
    )
    update.add_argument("stage_id", metavar="ID", help="the stage id")
    for flag, field, kind, text in _FIELDS:
        update.add_argument(flag, dest=field, type=kind, default=argparse.SUPPRESS, help=text)
    remove = add_command(
        actions,
        "remove",
        help="delete a payment stage (the delete syncs to peers)",
        handler=remove_stage,
        examples=["neonpay stages remove premium"],
    )
    remove.add_argument("stage_id", metavar="ID", help="the stage id")


def list_stages(ctx: Context) -> int:
    stages = ctx.open_neonpay().list_payment_stages()
    rows = [stage_view(stage_id, stage) for stage_id, stage in sorted(stages.items())]
    ctx.out.listing(rows, STAGE_COLUMNS, rows, title="Payment stages", empty="none")
    return EXIT_OK


def add_stage(ctx: Context) -> int:
    args = ctx.args
    neonpay = ctx.open_neonpay()
    if not args.replace and neonpay.get_payment_stage(args.stage_id) is not None:
        ctx.out.error(
            f"payment stage {args.stage_id!r} exists; change it with 'neonpay stages update' "
            "or pass --replace"
        )
        return EXIT_FAILED
    fields = {field: getattr(args, field) for _, field, _, _ in _FIELDS}
    fields = {name: value for name, value in fields.items() if value is not None}
    stage = neonpay.create_payment_stage(args.stage_id, PaymentStage(**fields))
    _report(ctx, "saved", args.stage_id, stage)
    return EXIT_OK


def update_stage(ctx: Context) -> int:
    args = ctx.args
    changes = {field: getattr(args, field) for _, field, _, _ in _FIELDS if hasattr(args, field)}
    if not changes:
        ctx.out.error(
            "nothing to change: give at least one of " + ", ".join(flag for flag, *_ in _FIELDS)
        )
        return EXIT_USAGE
    stage = ctx.open_neonpay().update_payment_stage(args.stage_id, **changes)
    _report(ctx, "updated", args.stage_id, stage)
    return EXIT_OK


def remove_stage(ctx: Context) -> int:
    stage_id = ctx.args.stage_id
    removed = ctx.open_neonpay().remove_payment_stage(stage_id)
    if ctx.out.json_mode:
        ctx.out.json({"id": stage_id, "removed": removed})
    if not removed:
        ctx.out.error(f"no payment stage {stage_id!r}")
        return EXIT_FAILED
    if not ctx.out.json_mode:
        ctx.out.success(f"removed payment stage {stage_id}")
    return EXIT_OK


def _report(ctx: Context, verb: str, stage_id: str, stage: PaymentStage) -> None:
    if ctx.out.json_mode:
        ctx.out.json(stage_view(stage_id, stage))
    else:
        ctx.out.success(f"{verb} payment stage {stage_id}: {stage.title}, {stage.price} Stars")
