"""Options every command takes: ``--storage``, ``--json``, ``--no-color`` and ``--debug``.

They are accepted before the command (``neonpay --storage URL sync list-bots``) and after
it (``neonpay sync list-bots --storage URL``). The root parser sets the defaults; the
copies on subcommands default to ``SUPPRESS`` so that a value given before the command
is not overwritten by a subcommand's default.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from neonpay.store import STORAGE_ENV, default_storage_url

__all__ = ["add_root_options", "common_options", "sqlite_file", "storage_url"]

_STORAGE_HELP = (
    f"store URL: sqlite:///path.db, a plain path.db, or postgresql://... (default: ${STORAGE_ENV}, "
    "else sqlite:///neonpay.db in the working directory)"
)
_JSON_HELP = "print machine-readable JSON on stdout (notes go to stderr)"
_COLOUR_HELP = "no colours (also off when stdout is not a terminal, or NO_COLOR is set)"
_DEBUG_HELP = "show the full traceback of an unexpected error (for a bug report)"


def add_root_options(parser: argparse.ArgumentParser) -> None:
    """The common options on the root parser, with their real defaults."""
    group = parser.add_argument_group("common options (also accepted after the command)")
    group.add_argument("--storage", metavar="URL", default=None, help=_STORAGE_HELP)
    group.add_argument("--json", action="store_true", default=False, help=_JSON_HELP)
    group.add_argument(
        "--no-color",
        "--no-colour",
        dest="no_color",
        action="store_true",
        default=False,
        help=_COLOUR_HELP,
    )
    group.add_argument("--debug", action="store_true", default=False, help=_DEBUG_HELP)


def common_options() -> argparse.ArgumentParser:
    """A parent parser with the common options for subcommands (defaults suppressed)."""
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("common options")
    group.add_argument("--storage", metavar="URL", default=argparse.SUPPRESS, help=_STORAGE_HELP)
    group.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help=_JSON_HELP)
    group.add_argument(
        "--no-color",
        "--no-colour",
        dest="no_color",
        action="store_true",
        default=argparse.SUPPRESS,
        help=_COLOUR_HELP,
    )
    group.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=_DEBUG_HELP)
    return parent


def storage_url(args: argparse.Namespace) -> str:
    """The store URL chosen by ``--storage``, ``$NEONPAY_STORAGE`` or the default."""
    url = getattr(args, "storage", None)
    return str(url) if url else default_storage_url()


def sqlite_file(url: str) -> Path | None:
    """The file a ``sqlite:///`` URL names (as ``open_store`` reads it), else None
    (PostgreSQL, or a SQLite URL without a usable path, which opening reports)."""
    if "://" not in url and url.strip():
        return Path(url)  # a plain path names a SQLite file (see open_store)
    if not url.startswith("sqlite://"):
        return None
    path = url[len("sqlite://") :]
    if path.startswith("/"):
        path = path[1:]
    if not path or path == ":memory:":
        return None
    return Path(path)
