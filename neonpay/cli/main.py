"""Entry point of the ``neonpay`` console script."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from neonpay._version import __version__

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="neonpay",
        description="Telegram Stars payments and multi-bot catalog sync.",
    )
    parser.add_argument("--version", action="version", version=f"neonpay {__version__}")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    parser.parse_args(argv)
    parser.print_help()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
