"""Bot API method handlers, grouped by topic.

Importing this package registers every handler in :mod:`neonpay.testing.registry`.
"""

from __future__ import annotations

from . import basic, messages, payments, updates

__all__ = ["basic", "messages", "payments", "updates"]
