"""A real HTTP proxy in front of a sync server that can fail, delay or tamper on cue."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

__all__ = ["Proxy", "Reply", "running_proxy"]

_HOP = {"host", "content-length", "transfer-encoding", "connection"}


@dataclass
class Reply:
    """What the proxy answers instead of (or after) forwarding."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


#: Decides for request number n (from 0): None forwards; a Reply answers directly;
#: a callable gets the upstream answer (status, headers, body) and returns a Reply;
#: "hang" never answers (until the proxy stops).
Rule = Callable[[int], "Reply | Callable[[int, dict[str, str], bytes], Reply] | str | None"]


@dataclass
class Proxy:
    upstream: str
    rule: Rule
    seen: list[str] = field(default_factory=list)
    url: str = ""
    release: asyncio.Event = field(default_factory=asyncio.Event)


_PROXY = web.AppKey("proxy", Proxy)
_SESSION = web.AppKey("session", aiohttp.ClientSession)


async def _handle(request: web.Request) -> web.StreamResponse:
    proxy = request.app[_PROXY]
    session = request.app[_SESSION]
    number = len(proxy.seen)
    proxy.seen.append(f"{request.method} {request.path_qs}")
    decision = proxy.rule(number)
    if decision == "hang":
        await proxy.release.wait()
        return web.Response(status=504)
    if isinstance(decision, Reply):
        return web.Response(status=decision.status, body=decision.body, headers=decision.headers)
    body = await request.read()
    headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
    async with session.request(
        request.method, proxy.upstream + request.path_qs, data=body or None, headers=headers
    ) as upstream:
        raw = await upstream.read()
        answer = {k: v for k, v in upstream.headers.items() if k.lower() not in _HOP}
        status = upstream.status
    if callable(decision):
        reply = decision(status, answer, raw)
        status, answer, raw = reply.status, reply.headers, reply.body
    return web.Response(status=status, body=raw, headers=answer)


@asynccontextmanager
async def running_proxy(upstream: str, rule: Rule) -> AsyncIterator[Proxy]:
    """A proxy on 127.0.0.1 in front of ``upstream`` (``http://host:port``)."""
    proxy = Proxy(upstream, rule)
    app = web.Application(handler_args={"auto_decompress": False})
    app[_PROXY] = proxy
    app.router.add_route("*", "/{tail:.*}", _handle)
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        app[_SESSION] = session
        runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        proxy.url = f"http://127.0.0.1:{port}/sync"
        try:
            yield proxy
        finally:
            proxy.release.set()
            await runner.cleanup()
