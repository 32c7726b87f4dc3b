"""The HTTP face of sync: the aiohttp server, the client transport, signing and codec.

Serve a node::

    from neonpay.web_sync import create_sync_app, run_sync_server

    app = create_sync_app(neonpay, webhook_secret="your_secret")
    await run_sync_server(neonpay, host="0.0.0.0", port=8080)  # secret: $NEONPAY_SYNC_SECRET

Talk to one::

    async with HttpTransport("https://store-bot.example.com/sync", secret="...") as peer:
        info = await peer.info()

The wire protocol is described in docs/protocol.md. Needs the ``sync`` extra (aiohttp).
"""

from __future__ import annotations

from neonpay.errors import MissingExtraError

try:
    import aiohttp as _aiohttp  # noqa: F401 - only to fail early with a clear message
except ImportError as exc:  # pragma: no cover - exercised only without the sync extra
    raise MissingExtraError("sync", "neonpay.web_sync (the HTTP sync server and client)") from exc

from neonpay.web_sync.backoff import RetryPolicy
from neonpay.web_sync.client import HttpTransport
from neonpay.web_sync.connector import SyncConnector
from neonpay.web_sync.credentials import SECRET_ENV
from neonpay.web_sync.limits import DEFAULT_LIMITS, Limits
from neonpay.web_sync.openapi import openapi_document
from neonpay.web_sync.runner import SyncServer, run_sync_server
from neonpay.web_sync.server import create_sync_app

__all__ = [
    "DEFAULT_LIMITS",
    "SECRET_ENV",
    "HttpTransport",
    "Limits",
    "RetryPolicy",
    "SyncConnector",
    "SyncServer",
    "create_sync_app",
    "openapi_document",
    "run_sync_server",
]
