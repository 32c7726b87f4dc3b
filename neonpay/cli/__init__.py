"""The ``neonpay`` command line: a thin face over the public Python API."""

from __future__ import annotations

from neonpay.cli.main import main

__all__ = ["main"]
