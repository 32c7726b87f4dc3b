"""Where the sync secrets come from: one resolver for the client and the server.

The rules live in :mod:`neonpay.sync.credentials` (pure, importable without aiohttp, so
that :class:`~neonpay.sync.config.BotSyncConfig` uses the same ones); this module names
them for the HTTP side. Any string may hold several secrets separated by whitespace: the
first signs, all verify.
"""

from __future__ import annotations

from neonpay.sync.credentials import (
    KEY_BYTES,
    SECRET_ENV,
    SECRET_PREFIX,
    new_secret,
    resolve_secrets,
    secret_list,
    secrets_from_env,
)

__all__ = [
    "KEY_BYTES",
    "SECRET_ENV",
    "SECRET_PREFIX",
    "new_secret",
    "resolve_secrets",
    "secret_list",
    "secrets_from_env",
]
