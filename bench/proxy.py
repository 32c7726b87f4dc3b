"""A counting TCP proxy on 127.0.0.1: bytes both ways at the socket, and HTTP requests.

Benchmarks point a node at the proxy instead of at its peer, so whatever the nodes do
(compression, headers, retries, keep-alive) the figures are the bytes that crossed the
wire. Requests are counted by following HTTP/1.1 framing in the client's stream
(:class:`HttpRequestCounter`), without decoding anything else.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from dataclasses import dataclass

__all__ = ["CountingProxy", "HttpRequestCounter", "TrafficStats"]

_HEAD, _LENGTH, _CHUNK_SIZE, _CHUNK_DATA, _TRAILER, _LOST = range(6)
_MAX_HEAD = 1024 * 1024


@dataclass
class TrafficStats:
    """Traffic through the proxy: payload bytes each way, HTTP requests, connections."""

    bytes_up: int = 0  # client -> server
    bytes_down: int = 0  # server -> client
    requests: int = 0
    connections: int = 0

    @property
    def bytes_total(self) -> int:
        return self.bytes_up + self.bytes_down

    def copy(self) -> TrafficStats:
        return dataclasses.replace(self)

    def since(self, earlier: TrafficStats) -> TrafficStats:
        """The traffic between ``earlier`` (a snapshot) and now."""
        return TrafficStats(
            self.bytes_up - earlier.bytes_up,
            self.bytes_down - earlier.bytes_down,
            self.requests - earlier.requests,
            self.connections - earlier.connections,
        )

    def to_json(self) -> dict[str, int]:
        return {
            "bytes_up": self.bytes_up,
            "bytes_down": self.bytes_down,
            "bytes_total": self.bytes_total,
            "requests": self.requests,
            "connections": self.connections,
        }


def _framing(head: bytes) -> tuple[int, bool]:
    """(Content-Length, chunked?) of a request head."""
    length = 0
    chunked = False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value.strip())
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    return length, chunked


class HttpRequestCounter:
    """Counts the requests in one HTTP/1.1 client-to-server byte stream (no I/O).

    Feed it the bytes in order; ``requests`` counts complete request heads. Bodies are
    skipped by ``Content-Length`` or chunked framing. A stream that stops looking like
    HTTP stops being counted (``lost`` is then True).
    """

    def __init__(self) -> None:
        self.requests = 0
        self._state = _HEAD
        self._remaining = 0
        self._buf = bytearray()

    @property
    def lost(self) -> bool:
        return self._state == _LOST

    def feed(self, data: bytes) -> None:
        if self._state == _LOST:
            return
        buf = self._buf
        buf += data
        pos = 0
        try:
            pos = self._consume(buf)
        except ValueError:
            self._state = _LOST
            buf.clear()
            return
        del buf[:pos]
        if self._state == _HEAD and len(buf) > _MAX_HEAD:
            self._state = _LOST
            buf.clear()

    def _consume(self, buf: bytearray) -> int:
        pos = 0
        while True:
            state = self._state
            if state in (_LENGTH, _CHUNK_DATA):
                take = min(self._remaining, len(buf) - pos)
                pos += take
                self._remaining -= take
                if self._remaining:
                    return pos
                self._state = _HEAD if state == _LENGTH else _CHUNK_SIZE
                continue
            if state == _HEAD:
                end = buf.find(b"\r\n\r\n", pos)
                if end < 0:
                    return pos
                head = bytes(buf[pos:end])
                pos = end + 4
                if not head.strip():
                    continue
                self.requests += 1
                length, chunked = _framing(head)
                if chunked:
                    self._state = _CHUNK_SIZE
                elif length:
                    self._state = _LENGTH
                    self._remaining = length
                continue
            end = buf.find(b"\r\n", pos)
            if end < 0:
                return pos
            line = bytes(buf[pos:end])
            pos = end + 2
            if state == _CHUNK_SIZE:
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    self._state = _TRAILER
                else:
                    self._state = _CHUNK_DATA
                    self._remaining = size + 2  # the data and its CRLF
            elif not line:  # _TRAILER: an empty line ends the message
                self._state = _HEAD


class _Pipe(asyncio.Protocol):
    """One side of a proxied connection; forwards what it reads to ``peer``."""

    def __init__(self, proxy: CountingProxy, *, upstream: bool) -> None:
        self.proxy = proxy
        self.upstream = upstream  # True: this side reads the client
        self.transport: asyncio.Transport | None = None
        self.peer: _Pipe | None = None
        self.counter = HttpRequestCounter() if upstream else None
        self._pending: list[bytes] = []
        self._eof = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.proxy._transports.add(transport)
        if self.upstream:
            self.proxy.stats.connections += 1
            transport.pause_reading()
            task = asyncio.get_running_loop().create_task(self._connect())
            self.proxy._tasks.add(task)
            task.add_done_callback(self.proxy._tasks.discard)

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, peer = await loop.create_connection(
                lambda: _Pipe(self.proxy, upstream=False),
                self.proxy.target_host,
                self.proxy.target_port,
            )
        except OSError:
            if self.transport is not None:
                self.transport.close()
            return
        peer.peer = self
        self.peer = peer
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()
        else:
            assert peer.transport is not None
            peer.transport.close()

    def data_received(self, data: bytes) -> None:
        stats = self.proxy.stats
        if self.upstream:
            stats.bytes_up += len(data)
            assert self.counter is not None
            before = self.counter.requests
            self.counter.feed(data)
            stats.requests += self.counter.requests - before
        else:
            stats.bytes_down += len(data)
        peer = self.peer
        if peer is not None and peer.transport is not None:
            peer.transport.write(data)

    def eof_received(self) -> bool:
        peer = self.peer
        if peer is not None and peer.transport is not None and peer.transport.can_write_eof():
            peer.transport.write_eof()
            return True
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is not None:
            self.proxy._transports.discard(self.transport)
        peer = self.peer
        if peer is not None and peer.transport is not None:
            peer.transport.close()

    def pause_writing(self) -> None:
        peer = self.peer
        if peer is not None and peer.transport is not None:
            peer.transport.pause_reading()

    def resume_writing(self) -> None:
        peer = self.peer
        if peer is not None and peer.transport is not None:
            peer.transport.resume_reading()


class CountingProxy:
    """Listens on 127.0.0.1 and forwards every connection to ``target``, counting.

    Use ``async with CountingProxy(port) as proxy`` (or :meth:`start` and :meth:`close`);
    point clients at ``proxy.url``; read ``proxy.stats`` or take ``proxy.snapshot()``
    before an operation and ``proxy.stats.since(snapshot)`` after it.
    """

    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.stats = TrafficStats()
        self.port = 0
        self._server: asyncio.Server | None = None
        self._transports: set[asyncio.Transport] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def snapshot(self) -> TrafficStats:
        return self.stats.copy()

    async def start(self) -> CountingProxy:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Pipe(self, upstream=True), "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def close(self) -> None:
        """Stop listening and close every proxied connection. Idempotent."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for transport in list(self._transports):
            transport.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if server is not None:
            await server.wait_closed()
        await asyncio.sleep(0)

    async def __aenter__(self) -> CountingProxy:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
