"""Running the sync server: :class:`SyncServer` (start/close) and :func:`run_sync_server`."""

from __future__ import annotations

import asyncio
import logging
import ssl as _ssl
from types import TracebackType
from typing import TYPE_CHECKING, Any

from aiohttp import web

from neonpay.errors import ConfigurationError
from neonpay.web_sync.endpoints import PREFIX
from neonpay.web_sync.server import create_sync_app

if TYPE_CHECKING:
    from neonpay.core.neonpay import NeonPay

__all__ = ["SyncServer", "run_sync_server"]

logger = logging.getLogger("neonpay.web_sync.server")


class SyncServer:
    """A running sync server on one address (``port=0`` picks a free port).

    ``async with SyncServer(neonpay, webhook_secret=...) as server:`` serves until the
    block ends; ``server.url`` is the sync base to give peers (``http://host:port/sync``).
    Arguments after ``ssl_context`` are those of
    :func:`~neonpay.web_sync.create_sync_app`.

    Raises:
        ConfigurationError: no secret and not ``insecure`` (see ``create_sync_app``), or
            the address cannot be bound.
    """

    def __init__(
        self,
        neonpay: NeonPay,
        host: str = "127.0.0.1",
        port: int = 8080,
        webhook_secret: str | None = None,
        ssl_context: _ssl.SSLContext | None = None,
        **options: Any,
    ) -> None:
        self.app = create_sync_app(neonpay, webhook_secret, **options)
        self._node_id = neonpay.node_id
        self.host = host
        self.port = port
        self.ssl_context = ssl_context
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        """The sync base URL of this server (valid once started)."""
        scheme = "https" if self.ssl_context is not None else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}{PREFIX}"

    async def start(self) -> None:
        """Bind and start serving.

        Raises:
            ConfigurationError: the address cannot be bound (in use, no permission).
        """
        if self._runner is not None:
            return
        runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, ssl_context=self.ssl_context)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise ConfigurationError(
                f"the sync server cannot listen on {self.host}:{self.port}: {exc.strerror or exc}"
            ) from exc
        self._runner = runner
        if self.port == 0 and runner.addresses:
            self.port = int(runner.addresses[0][1])
        logger.info("sync server for node %s listening on %s", self._node_id, self.url)

    async def close(self) -> None:
        """Stop serving and release the socket. Idempotent."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> SyncServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


async def run_sync_server(
    neonpay: NeonPay,
    host: str = "127.0.0.1",
    port: int = 8080,
    webhook_secret: str | None = None,
    ssl_context: _ssl.SSLContext | None = None,
    *,
    insecure: bool = False,
    **options: Any,
) -> None:
    """Serve ``neonpay``'s sync endpoints until cancelled, then shut down cleanly.

    The secret is ``webhook_secret``, else the ``NEONPAY_SYNC_SECRET`` environment
    variable (several secrets may be given there, separated by spaces); without either
    the server refuses to start unless ``insecure=True``. Other keyword arguments are
    those of :func:`~neonpay.web_sync.create_sync_app`.

    Raises:
        ConfigurationError: no secret and not ``insecure``; the address cannot be bound.
    """
    server = SyncServer(
        neonpay, host, port, webhook_secret, ssl_context, insecure=insecure, **options
    )
    try:
        await server.start()
        await asyncio.Event().wait()
    finally:
        await server.close()
