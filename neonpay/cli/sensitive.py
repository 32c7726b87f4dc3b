"""Tokens and secrets on the command line, kept out of ``ps`` and shell history.

Every option that takes a token or a secret has three forms:

- ``--token VALUE``: works, but the value shows in the process list and the shell
  history, so the command warns;
- ``--token -``: read the value from the first line of standard input
  (``pass show bot | neonpay sync add-bot --token - ...``);
- ``--token-env VAR``: read it from the environment variable ``VAR``.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TextIO

from neonpay.cli.arguments import required_text
from neonpay.cli.output import Output
from neonpay.errors import ConfigurationError

__all__ = ["STDIN", "add_sensitive_option", "read_sensitive", "warn_if_on_command_line"]

#: The value that means "read it from standard input".
STDIN = "-"


def add_sensitive_option(
    parser: argparse.ArgumentParser, flag: str, what: str, *, required: bool
) -> None:
    """Add ``--FLAG VALUE|-`` and ``--FLAG-env VAR`` (one of them, ``required`` or not)."""
    name = flag.lstrip("-").replace("-", "_")
    group = parser.add_mutually_exclusive_group(required=required)
    group.add_argument(
        flag,
        dest=name,
        type=required_text,
        metavar="VALUE",
        help=f"{what}; '-' reads it from standard input (prefer that or {flag}-env: a value "
        "here shows in the process list and your shell history)",
    )
    group.add_argument(
        f"{flag}-env",
        dest=f"{name}_env_var",
        type=required_text,
        metavar="VAR",
        help=f"the environment variable that holds {what}",
    )


def read_sensitive(
    args: argparse.Namespace, flag: str, *, stdin: TextIO | None = None
) -> str | None:
    """The value given with ``flag`` (as a value, ``-`` or ``flag-env``), or None.

    Raises:
        ConfigurationError: the variable is unset or empty, or standard input is empty.
    """
    name = flag.lstrip("-").replace("-", "_")
    variable = getattr(args, f"{name}_env_var", None)
    if variable:
        from_env = os.environ.get(variable, "").strip()
        if not from_env:
            raise ConfigurationError(f"{flag}-env {variable}: the variable is not set or empty")
        return from_env
    value: str | None = getattr(args, name, None)
    if value is None:
        return None
    if value == STDIN:
        line = (stdin or sys.stdin).readline().strip()
        if not line:
            raise ConfigurationError(f"{flag} -: nothing was read from standard input")
        return line
    return str(value)


def warn_if_on_command_line(args: argparse.Namespace, flag: str, out: Output) -> None:
    """Warn when ``flag``'s value was written on the command line itself (call it once the
    command succeeded: a refused command prints only its error)."""
    value = getattr(args, flag.lstrip("-").replace("-", "_"), None)
    if value is not None and value != STDIN:
        out.warn(
            f"{flag} on the command line shows in the process list and your shell history; "
            f"use {flag}-env VAR or {flag} - (standard input) instead"
        )
