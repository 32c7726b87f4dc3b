"""The aiohttp application serving ``/bot<token>/<method>``.

Accepts GET and POST, query-string parameters, and JSON, url-encoded or multipart
bodies (body values win over query values). Answers in Telegram's JSON shape. The
aiohttp access log is off because request paths contain bot tokens; the emulator logs
with masked tokens instead.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from .body import MAX_BODY_SIZE, parse_body
from .control import CONTROL_PREFIX
from .core import EmulatorCore
from .dispatch import Dispatcher
from .errors import ApiError, bad_request, not_found
from .params import Params
from .tokens import mask_token

__all__ = ["EmulatorServer"]

logger = logging.getLogger("neonpay.testing")

_PATH_RE = re.compile(r"/bot([^/]*)/([^/]*)/?")


def _json(status: int, body: dict[str, Any]) -> web.Response:
    return web.json_response(body, status=status)


class EmulatorServer:
    """Binds the Bot API HTTP surface to a host/port and runs it in the current loop."""

    def __init__(self, core: EmulatorCore, host: str, port: int) -> None:
        self.core = core
        self.dispatcher = Dispatcher(core)
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None
        #: Answers ``/_control/...`` requests (see :mod:`neonpay.testing.control`).
        self.control: Callable[[web.Request], Awaitable[web.StreamResponse]] | None = None

    def make_app(self) -> web.Application:
        """The aiohttp application (one catch-all route)."""
        app = web.Application(client_max_size=MAX_BODY_SIZE)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    async def start(self) -> int:
        """Start listening; returns the bound port."""
        runner = web.AppRunner(self.make_app(), access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        addresses = runner.addresses
        if addresses:
            self.port = int(addresses[0][1])
        return self.port

    async def stop(self) -> None:
        """Stop listening and close connections (in-flight long polls were woken)."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if self.control is not None and request.path.startswith(CONTROL_PREFIX):
            return await self.control(request)
        match = _PATH_RE.fullmatch(request.path)
        if match is None:
            return _json(404, not_found().to_payload())
        token, method_name = match.group(1), match.group(2)
        try:
            bot = self.core.authenticate(token)
        except ApiError as error:
            logger.debug("%s %s -> %s", mask_token(token), method_name, error.error_code)
            return _json(error.error_code, error.to_payload())
        values: dict[str, Any] = dict(request.query)
        try:
            values.update(await parse_body(request.headers, request.content))
        except ApiError as error:
            return _json(error.error_code, error.to_payload())
        except (ValueError, LookupError, RuntimeError):
            return _json(400, bad_request("can't parse request body").to_payload())
        status, body = await self.dispatcher.execute(bot, method_name, Params(values))
        return _json(status, body)
