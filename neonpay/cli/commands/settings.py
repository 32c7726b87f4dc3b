"""``neonpay settings get|set``: the bot's settings (JSON values, synced like the catalog)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from neonpay.cli.tree import EXIT_FAILED, EXIT_OK, add_command, add_group
from neonpay.errors import ValidationError
from neonpay.limits import DuplicateKeyError, TooDeepError, loads_checked

if TYPE_CHECKING:
    from neonpay.cli.context import Context
    from neonpay.cli.tree import Subparsers

__all__ = ["register"]

_MISSING = object()


def register(subparsers: Subparsers) -> None:
    """Add ``neonpay settings``."""
    actions = add_group(
        subparsers,
        "settings",
        help="read and change settings",
        examples=["neonpay settings set thank_you_message 'Thanks for your order!'"],
    )
    get = add_command(
        actions,
        "get",
        help="show one setting, or all of them",
        handler=get_setting,
        reads_only=True,
        examples=["neonpay settings get", "neonpay settings get thank_you_message"],
    )
    get.add_argument("name", metavar="NAME", nargs="?", help="the setting (all when omitted)")
    set_ = add_command(
        actions,
        "set",
        help="change a setting (the value is JSON, else taken as text)",
        handler=set_setting,
        examples=[
            "neonpay settings set thank_you_message 'Thanks for your order!'",
            "neonpay settings set max_stages 500",
            'neonpay settings set opening_hours \'{"from": 9, "to": 18}\'',
        ],
    )
    set_.add_argument("name", metavar="NAME", help="the setting")
    set_.add_argument("value", metavar="VALUE", help="a JSON value, or plain text")
    set_.add_argument("--text", action="store_true", help="take VALUE as text, never as JSON")


def get_setting(ctx: Context) -> int:
    settings = ctx.open_neonpay().settings
    name = ctx.args.name
    if name is None:
        values = settings.list()
        rows = [
            {"name": key, "value": json.dumps(value, ensure_ascii=False)}
            for key, value in sorted(values.items())
        ]
        ctx.out.listing(
            values, [("name", "Name"), ("value", "Value")], rows, title="Settings", empty="none"
        )
        return EXIT_OK
    value = settings.get(name, _MISSING)
    if value is _MISSING:
        ctx.out.error(f"no setting {name!r}")
        return EXIT_FAILED
    if ctx.out.json_mode:
        ctx.out.json({"name": name, "value": value})
    else:
        ctx.out.line(value if isinstance(value, str) else json.dumps(value, ensure_ascii=False))
    return EXIT_OK


def set_setting(ctx: Context) -> int:
    args = ctx.args
    value: object = args.value
    if not args.text:
        try:
            value = loads_checked(args.value)
        except (DuplicateKeyError, TooDeepError) as exc:
            raise ValidationError(args.name, str(exc), kind="setting") from exc
        except ValueError:
            value = args.value
    stored = ctx.open_neonpay().settings.set(args.name, value)
    if ctx.out.json_mode:
        ctx.out.json({"name": args.name, "value": stored})
    else:
        ctx.out.success(f"set {args.name} = {json.dumps(stored, ensure_ascii=False)}")
    return EXIT_OK
