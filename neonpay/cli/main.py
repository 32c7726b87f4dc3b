"""Entry point of the ``neonpay`` console script: the parser and the dispatch.

Exit codes: 0 success, 1 an operation or a sync failed (one line per reason on stderr),
2 bad usage (argparse's own errors, or a command group given without an action).

No command shows a Python traceback: an unexpected error is one line on stderr with a
hint to rerun with ``--debug``, which shows the traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from collections.abc import Sequence

from neonpay._version import __version__
from neonpay.cli.commands import register_all
from neonpay.cli.context import Context
from neonpay.cli.options import add_root_options
from neonpay.cli.output import Output, colour_wanted, is_terminal
from neonpay.cli.tree import EXIT_FAILED, EXIT_USAGE, HelpFormatter
from neonpay.cli.wording import in_cli_terms
from neonpay.errors import NeonPayError, mask_secrets

__all__ = ["build_parser", "main"]

_EXAMPLES = """\
examples:
  neonpay demo                       see three bots sync and sell on this machine
  neonpay stages list                the payment stages of ./neonpay.db
  neonpay sync add-bot --token-env STORE_TOKEN --name "Store Bot" \\
      --webhook https://store-bot.example.com/sync --direction bidirectional
  neonpay sync sync-all              sync with every configured bot
  neonpay serve --secret-env NEONPAY_SYNC_SECRET

Every command takes --help, and the common options before or after it."""


def build_parser() -> argparse.ArgumentParser:
    """The whole command tree."""
    parser = argparse.ArgumentParser(
        prog="neonpay",
        description="Telegram Stars payments and multi-bot catalog sync.",
        epilog=_EXAMPLES,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"neonpay {__version__}")
    add_root_options(parser)
    parser.set_defaults(handler=None)
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    register_all(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    arguments = sys.argv[1:] if argv is None else list(argv)
    library = logging.getLogger("neonpay")
    saved = (library.level, library.propagate, list(library.handlers))
    try:
        return _run(arguments)
    except Exception as exc:  # the last resort: a bug, or an error nobody translated
        if "--debug" in arguments:
            traceback.print_exc(file=sys.stderr)
        detail = " ".join(mask_secrets(str(exc)).split())[:300]
        print(
            f"error: unexpected {type(exc).__name__}{': ' + detail if detail else ''} "
            "(rerun with --debug to see where; please report it)",
            file=sys.stderr,
            flush=True,
        )
        return EXIT_FAILED
    finally:  # main() called in-process (tests, scripts) leaves logging as it found it
        library.setLevel(saved[0])
        library.propagate = saved[1]
        library.handlers[:] = saved[2]


def _run(argv: list[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    out = Output(
        json_mode=args.json,
        colour=colour_wanted(sys.stdout, disabled=args.no_color),
        terminal=is_terminal(sys.stdout),
    )
    if args.handler is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    _quiet_library_logs()
    try:
        with Context(args, out) as ctx:
            code: int = args.handler(ctx)
            return code
    except NeonPayError as exc:
        out.error(in_cli_terms(str(exc)) or type(exc).__name__)
        return EXIT_FAILED
    except KeyboardInterrupt:
        out.error("interrupted")
        return 130
    except BrokenPipeError:
        # The reader went away (``neonpay export | head``): stop quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILED
    except OSError as exc:
        out.error(str(exc))
        return EXIT_FAILED


def _quiet_library_logs() -> None:
    """Commands report outcomes themselves (one line per failure), so the library's own
    warnings would only repeat them: show its errors only (``neonpay serve`` sets its
    own level with ``--log-level``)."""
    library = logging.getLogger("neonpay")
    library.setLevel(logging.ERROR)
    if not any(getattr(h, "neonpay_cli", False) for h in library.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("neonpay: %(levelname)s: %(message)s"))
        handler.neonpay_cli = True  # type: ignore[attr-defined]  # marks our own handler
        library.addHandler(handler)
        library.propagate = False


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
