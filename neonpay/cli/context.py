"""The context of one command run: its arguments, its printer, and the store it opens."""

from __future__ import annotations

import argparse
from pathlib import Path
from types import TracebackType

from neonpay.cli.options import sqlite_file, storage_url
from neonpay.cli.output import Output
from neonpay.core import NeonPay, create_neonpay
from neonpay.errors import ConfigurationError

__all__ = ["Context"]


class Context:
    """What a command handler gets: ``args``, ``out`` and a lazily opened ``neonpay``.

    The store is opened on first use of :meth:`open_neonpay` and closed when the
    context ends. Commands that only read (``args.reads_only``) never create a store: a
    SQLite file that does not exist is most likely a mistyped path.
    """

    def __init__(self, args: argparse.Namespace, out: Output) -> None:
        self.args = args
        self.out = out
        self._neonpay: NeonPay | None = None
        self._created: Path | None = None  # a SQLite file this run created

    @property
    def storage_url(self) -> str:
        """The store URL this run uses."""
        return storage_url(self.args)

    def open_neonpay(self) -> NeonPay:
        """The catalog-only NEONPAY facade over the chosen store (opened once).

        Raises:
            ConfigurationError: the URL cannot be used, or a reading command names a
                SQLite file that does not exist.
            MissingExtraError: PostgreSQL support is not installed.
        """
        if self._neonpay is None:
            url = self.storage_url
            if getattr(self.args, "reads_only", False):
                _require_existing(url)
            path = sqlite_file(url)
            if path is not None and not path.exists():
                self._created = path.absolute()
            self._neonpay = create_neonpay(storage=url)
        return self._neonpay

    def close(self) -> None:
        """Close the store if it was opened. Idempotent."""
        neonpay, self._neonpay = self._neonpay, None
        if neonpay is not None:
            neonpay.close()

    def __enter__(self) -> Context:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
        if exc is None and self._created is not None:
            # a write command in a folder without a store: say so once it succeeded
            self.out.note(f"created a new store at {self._created}")


def _require_existing(url: str) -> None:
    path = sqlite_file(url)
    if path is not None and not path.exists():
        raise ConfigurationError(
            f"no store at {path.absolute()} (create one with a write command such as "
            "'neonpay stages add', or check --storage / NEONPAY_STORAGE)"
        )
