"""Building the command tree: every command gets help, an example and the common options.

A leaf command stores its handler in the parsed arguments (``args.handler``); a group
(``neonpay sync``) run without an action prints its help and exits with 2.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

from neonpay.cli.options import common_options

if TYPE_CHECKING:
    from typing import TypeAlias

    from neonpay.cli.context import Context

    #: The object ``add_subparsers`` returns.
    Subparsers: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]

__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_USAGE",
    "Handler",
    "HelpFormatter",
    "add_command",
    "add_group",
    "walk",
]

#: Exit codes: success, an operation or sync failed, bad usage.
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

#: A command: takes the run's context, returns the exit code.
Handler = Callable[["Context"], int]


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the line breaks of descriptions and examples."""


def _epilog(examples: Sequence[str]) -> str:
    title = "example:" if len(examples) == 1 else "examples:"
    return "\n".join([title, *(f"  {example}" for example in examples)])


def add_command(
    subparsers: Subparsers,
    name: str,
    *,
    help: str,
    examples: Sequence[str],
    handler: Handler,
    description: str | None = None,
    reads_only: bool = False,
) -> argparse.ArgumentParser:
    """Add a leaf command with its one-line ``help``, ``examples`` and handler.

    A ``reads_only`` command refuses a SQLite store file that does not exist (a mistyped
    path) instead of creating an empty store; see :meth:`Context.open_neonpay`.
    """
    parser = subparsers.add_parser(
        name,
        help=help,
        description=description or help[:1].upper() + help[1:] + ".",
        epilog=_epilog(examples),
        formatter_class=HelpFormatter,
        parents=[common_options()],
    )
    parser.set_defaults(handler=handler, reads_only=reads_only)
    return parser


def add_group(
    subparsers: Subparsers,
    name: str,
    *,
    help: str,
    examples: Sequence[str],
    description: str | None = None,
) -> Subparsers:
    """Add a command group (``neonpay sync``); returns its subparsers for the actions."""
    parser = subparsers.add_parser(
        name,
        help=help,
        description=description or help[:1].upper() + help[1:] + ".",
        epilog=_epilog(examples),
        formatter_class=HelpFormatter,
        parents=[common_options()],
    )

    def show_help(ctx: Context) -> int:
        parser.print_help(ctx.out.stderr)
        return EXIT_USAGE

    parser.set_defaults(handler=show_help)
    return parser.add_subparsers(title="actions", metavar="ACTION")


def walk(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ("neonpay",)
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser, str | None]]:
    """Every command under ``parser``: (path, parser, one-line help), depth first."""
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        helps = {choice.dest: choice.help for choice in action._choices_actions}
        for name, sub in action.choices.items():
            sub_path = (*path, name)
            yield sub_path, sub, helps.get(name)
            yield from walk(sub, sub_path)
