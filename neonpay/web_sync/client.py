"""The HTTP transport: the sync engine's calls to one peer, as signed HTTP requests.

:class:`HttpTransport` implements :class:`neonpay.sync.protocol.Transport`. It owns one
``aiohttp.ClientSession`` (opened on the first request, closed by :meth:`close`), puts a
timeout on every request, retries connection errors, timeouts, 429 and 5xx with
exponential backoff and jitter (never other 4xx), signs every request, and refuses any
successful answer whose signature does not check out, so nobody but the peer can feed a
pull.

Errors::

    PeerUnreachable   connection refused, timeouts, 5xx/429 still failing after the retries
    PeerRejected      the peer answered 4xx (or 5xx after the retries): .status, .reason
    SignatureError    the peer's answer is not signed with our secret, stale, or tampered
    SyncError         the peer's answer is signed but does not follow the protocol
"""

from __future__ import annotations

import asyncio
import io
import logging
import ssl as _ssl
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from types import TracebackType
from typing import Any, ClassVar, TypeVar
from urllib.parse import quote

import aiohttp
from yarl import URL

from neonpay._gcpause import collection_paused
from neonpay._version import __version__
from neonpay.errors import (
    ConfigurationError,
    PeerRejected,
    PeerUnreachable,
    SignatureError,
    SyncError,
)
from neonpay.store.base import KINDS, Record
from neonpay.sync.protocol import ChangesPage, PeerInfo, PushResult, TransportStats
from neonpay.web_sync import codec
from neonpay.web_sync.backoff import RetryPolicy, is_retryable_status, parse_retry_after
from neonpay.web_sync.compression import GZIP, content_encoding, gzip_compress, inflate
from neonpay.web_sync.credentials import resolve_secrets
from neonpay.web_sync.endpoints import CHANGES, INFO, PREFIX, STATUS, VIEWS, relative
from neonpay.web_sync.errors import WireError
from neonpay.web_sync.limits import DEFAULT_LIMITS, Limits
from neonpay.web_sync.signing import (
    DEFAULT_TOLERANCE,
    ID_HEADER,
    NODE_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    new_message_id,
    request_payload,
    response_payload,
    signed_headers,
    verify,
)

__all__ = ["HttpTransport", "normalize_base_url"]

logger = logging.getLogger("neonpay.web_sync.client")

_T = TypeVar("_T")
_MIB = 1024 * 1024
_READ_CHUNK = 64 * 1024
_MAX_ERROR_TEXT = 300


def normalize_base_url(url: str) -> str:
    """A peer's sync base URL without a trailing slash; a URL with no path gets ``/sync``.

    Raises:
        ConfigurationError: not an absolute http(s) URL, or it has a query or fragment.
    """
    if not isinstance(url, str) or not url:
        raise ConfigurationError("a peer URL must be a non-empty string")
    try:
        parsed = URL(url)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"not a URL: {url!r}") from exc
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ConfigurationError(
            f"a peer URL must be absolute http:// or https:// (like "
            f"https://host/sync): {_shown(url)!r}"
        )
    if parsed.query_string or parsed.fragment:
        raise ConfigurationError(f"a peer URL takes no query or fragment: {_shown(url)!r}")
    path = parsed.path.rstrip("/")
    if not path:
        path = PREFIX
    return str(parsed.with_path(path))


def _shown(url: str) -> str:
    """``url`` fit for messages: any user name and password dropped."""
    try:
        return str(URL(url).with_user(None))
    except (TypeError, ValueError):
        return "<unparseable URL>"


class HttpTransport:
    """A connection to one peer's sync server over HTTP(S).

    Args:
        base_url: the peer's sync base, like ``https://store-bot.example.com/sync``.
        secret: the webhook secret (default: ``$NEONPAY_SYNC_SECRET``). Several secrets
            separated by whitespace (``"new old"``) during a rotation: the first signs
            requests, every one is accepted on answers.
        secrets: more secrets accepted on answers, after ``secret`` (a rotation list).
        insecure: allow running with no secret at all (unsigned; local experiments).
        timeout: seconds for each request, all included.
        retries: retries after the first attempt (ignored when ``retry_policy`` is given).
        compress_threshold: request bodies larger than this many bytes are gzipped.
        page_limit: the most changes asked for in one pull.
        batch_size: the most records sent in one push request (a larger push is split).
        max_batch_bytes: the most JSON bytes of records in one push request.
        tolerance: seconds the peer's signed timestamp may be away from our clock.
        retry_policy: the full retry policy, to tune the backoff.
        limits: bounds on the answers read (size before and after inflating, records).
        ssl: an ``ssl.SSLContext``, or False to skip certificate checks (never in
            production).
        name: the peer's name, for messages.
        node_id: our node id, sent (signed) in ``X-NeonPay-Node`` with every request so
            the peer applies our grant; a pull or push names it too and updates it.

    Raises:
        ConfigurationError: a bad URL or option, or no secret and not ``insecure``.
    """

    #: The records of pulled pages are built by the wire codec, which has checked their
    #: types and formats; the engine then checks only what the codec cannot know.
    wire_checked: ClassVar[bool] = True

    def __init__(
        self,
        base_url: str,
        *,
        secret: str | None = None,
        secrets: Sequence[str] | None = None,
        insecure: bool = False,
        timeout: float = 30.0,
        retries: int = 3,
        compress_threshold: int = 512,
        page_limit: int = 500,
        batch_size: int = 500,
        max_batch_bytes: int = 8 * _MIB,
        tolerance: float = DEFAULT_TOLERANCE,
        retry_policy: RetryPolicy | None = None,
        limits: Limits = DEFAULT_LIMITS,
        ssl: _ssl.SSLContext | bool = True,
        name: str | None = None,
        node_id: str | None = None,
    ) -> None:
        self.base_url = normalize_base_url(base_url)
        self.name = name
        self.node_id = node_id
        where = f"the transport to {self._peer}"
        self._secrets = resolve_secrets(secret, secrets, insecure=insecure, who=where)
        self._secret = self._secrets[0] if self._secrets else None
        if not timeout > 0:
            raise ConfigurationError(f"timeout must be positive: {timeout!r}")
        for option, value in (
            ("page_limit", page_limit),
            ("batch_size", batch_size),
            ("max_batch_bytes", max_batch_bytes),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigurationError(f"{option} must be a positive whole number: {value!r}")
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ConfigurationError(f"retries must be a whole number >= 0: {retries!r}")
        self.timeout = float(timeout)
        self.retry_policy = retry_policy or RetryPolicy(attempts=retries + 1)
        self.compress_threshold = compress_threshold
        self.page_limit = page_limit
        self.batch_size = batch_size
        self.max_batch_bytes = max_batch_bytes
        self.tolerance = tolerance
        # a record's clock stamp may be as far ahead as a signed timestamp: one setting
        self.limits = replace(limits, max_clock_ahead=float(tolerance))
        self.stats = TransportStats()
        self._ssl = ssl
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    @classmethod
    def from_config(cls, config: Any, **options: Any) -> HttpTransport:
        """A transport for a :class:`~neonpay.sync.config.BotSyncConfig` (duck-typed).

        Uses ``webhook_url``; the secrets are ``webhook_secret``, else the variable named
        by ``webhook_secret_env``, else ``$NEONPAY_SYNC_SECRET``, each read by
        :func:`~neonpay.sync.credentials.resolve_secrets` (whitespace separates the
        secrets of a rotation: the first signs, all verify); ``request_timeout`` and
        ``page_size`` (capped at the protocol's default page and batch limit, 1000) when
        the config has them. ``options`` override the constructor's arguments.

        Raises:
            ConfigurationError: no ``webhook_url``, a ``webhook_secret_env`` that is not
                set, or no secret at all (and not ``insecure``).
        """
        name = getattr(config, "target_bot_name", None) or None
        url = getattr(config, "webhook_url", None)
        if not url:
            raise ConfigurationError(
                f"bot {name!r} has no webhook_url: set it to the peer's sync base, "
                "like https://store-bot.example.com/sync"
            )
        keys = resolve_secrets(
            getattr(config, "webhook_secret", None),
            env=getattr(config, "webhook_secret_env", None) or None,
            insecure=True,  # the constructor says what is missing, with the peer's URL
            who=f"bot {name!r}",
        )
        timeout = getattr(config, "request_timeout", None)
        if timeout is not None:
            options.setdefault("timeout", timeout)
        page_size = getattr(config, "page_size", None)
        if page_size is not None:  # within what a default server accepts
            options.setdefault("page_limit", min(page_size, DEFAULT_LIMITS.max_page))
            options.setdefault("batch_size", min(page_size, DEFAULT_LIMITS.max_batch))
        options.setdefault("insecure", bool(getattr(config, "insecure", False)))
        options.setdefault("name", name)
        if keys:
            options.setdefault("secrets", keys)
        return cls(url, **options)

    @property
    def _peer(self) -> str:
        shown = _shown(self.base_url)
        return f"peer {self.name!r} at {shown}" if self.name else f"peer {shown}"

    @property
    def signed(self) -> bool:
        """Whether requests are signed and answers checked (a secret is configured)."""
        return self._secret is not None

    def __repr__(self) -> str:
        return f"<HttpTransport {_shown(self.base_url)} signed={self.signed}>"

    # --- lifecycle ----------------------------------------------------------------------
    async def close(self) -> None:
        """Close the HTTP session. Idempotent; the transport cannot be used afterwards."""
        self._closed = True
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def __aenter__(self) -> HttpTransport:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def _client(self) -> aiohttp.ClientSession:
        if self._closed:
            raise ConfigurationError(f"the transport to {self._peer} is closed")
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                auto_decompress=False,
                connector=aiohttp.TCPConnector(ssl=self._ssl),
                headers={"User-Agent": f"neonpay/{__version__}"},  # short: sent every call
            )
        return self._session

    # --- the Transport protocol -------------------------------------------------------------
    async def info(self) -> PeerInfo:
        """The peer's node id and the head of its change log (``GET /sync/info``)."""
        answer, _ = await self._call("GET", INFO, node=self.node_id)
        return self._decode(lambda: codec.peer_info_from_wire(answer))

    async def status(self) -> dict[str, Any]:
        """The peer's sync status (``GET /sync/status``): a JSON object."""
        answer, _ = await self._call("GET", STATUS, node=self.node_id)
        if not isinstance(answer, dict):
            raise SyncError(f"{self._peer} answered /sync/status with something not an object")
        return answer

    async def pull(
        self,
        since: int,
        limit: int,
        kinds: Sequence[str] | None = None,
        *,
        requester: str | None = None,
    ) -> ChangesPage:
        """One page of the peer's changes after ``since`` (``GET /sync/changes``).

        ``kinds=None`` asks for every kind; ``requester`` is our node id, so the peer
        leaves out what it received from us.
        """
        query = self._page_query(since, limit)
        wanted: tuple[str, ...] = KINDS
        if kinds is not None:
            wanted = tuple(dict.fromkeys(kinds))
            if set(wanted) != set(KINDS):  # every kind is what no ``kinds`` asks for
                query.append(("kinds", ",".join(wanted)))
        if requester:
            self.node_id = requester
        answer, size = await self._call("GET", CHANGES, query=query, node=self.node_id)
        return self._decode(
            lambda: codec.page_from_wire(
                answer, limits=self.limits, kinds=wanted, now=time.time(), source_bytes=size
            )
        )

    async def pull_view(self, endpoint: str, since: int = 0, limit: int = 500) -> ChangesPage:
        """One page of a per-kind view (``GET /sync/payment_stages`` and its siblings)."""
        kind = VIEWS.get(endpoint)
        if kind is None:
            raise ConfigurationError(f"not a view: {endpoint!r} (use one of {', '.join(VIEWS)})")
        answer, size = await self._call(
            "GET", endpoint, query=self._page_query(since, limit), node=self.node_id
        )
        return self._decode(
            lambda: codec.page_from_wire(
                answer, limits=self.limits, kinds=(kind,), now=time.time(), source_bytes=size
            )
        )

    def _page_query(self, since: int, limit: int) -> list[tuple[str, str]]:
        if isinstance(since, bool) or not isinstance(since, int) or since < 0:
            raise ConfigurationError(f"since must be a whole number >= 0: {since!r}")
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ConfigurationError(f"limit must be a positive whole number: {limit!r}")
        return [("since", str(since)), ("limit", str(min(limit, self.page_limit)))]

    async def push(self, records: Sequence[Record], *, sender: str) -> PushResult:
        """Offer ``records`` to the peer (``POST /sync/changes``), in bounded batches.

        Returns one item result per record, in order. An empty push is still one
        request: it tells who the peer is (``node_id``) and that it is there.
        """
        return await self.push_to(CHANGES, records, sender=sender)

    async def push_to(self, endpoint: str, records: Sequence[Record], *, sender: str) -> PushResult:
        """Like :meth:`push`, to another POST endpoint (``/sync/changes`` or a view)."""
        node_id = ""
        results = []
        self.node_id = sender
        for body, batch in self._batches(records):
            answer, _ = await self._call("POST", endpoint, body=body, node=sender)
            result = self._decode(
                lambda: codec.push_result_from_wire(
                    answer,  # noqa: B023 - used at once, inside this iteration
                    batch,  # noqa: B023
                    limits=self.limits,
                    now=time.time(),
                )
            )
            node_id = result.node_id
            results.extend(result.results)
        return PushResult(node_id=node_id, results=results)

    def _batches(self, records: Sequence[Record]) -> Iterator[tuple[bytes, list[Record]]]:
        batch: list[Record] = []
        parts: list[bytes] = []
        size = 0
        for record in records:
            part = codec.dump(codec.record_to_wire(record))
            if batch and (
                len(batch) >= self.batch_size or size + len(part) + 1 > self.max_batch_bytes
            ):
                yield b'{"records":[' + b",".join(parts) + b"]}", batch
                batch, parts, size = [], [], 0
            batch.append(record)
            parts.append(part)
            size += len(part) + 1
        if batch or not records:
            yield b'{"records":[' + b",".join(parts) + b"]}", batch

    def _decode(self, parse: Callable[[], _T]) -> _T:
        try:
            with collection_paused():  # a page's records are made at once (neonpay._gcpause)
                return parse()
        except WireError as exc:
            raise SyncError(
                f"{self._peer} answered with something that does not follow the sync "
                f"protocol: {exc}"
            ) from exc

    # --- one call: retries, signing, verification ----------------------------------------
    async def _call(
        self,
        method: str,
        endpoint: str,
        *,
        query: Sequence[tuple[str, str]] = (),
        body: bytes | None = None,
        node: str | None = None,
    ) -> tuple[Any, int]:
        """Send a request (with retries); return the verified, decoded JSON answer and
        the length of its JSON text."""
        query_string = "&".join(f"{quote(k, safe='')}={quote(v, safe=',')}" for k, v in query)
        target = endpoint + (f"?{query_string}" if query_string else "")
        url = URL(
            self.base_url + relative(endpoint) + (f"?{query_string}" if query else ""), encoded=True
        )
        wire_body = body
        headers = {"Accept-Encoding": GZIP}
        if body is not None:
            headers["Content-Type"] = "application/json"
            if len(body) > self.compress_threshold:
                wire_body = gzip_compress(body)
                headers["Content-Encoding"] = GZIP
        if node:
            headers[NODE_HEADER] = node
        policy = self.retry_policy
        failure = ""
        for attempt in range(policy.attempts):
            retry_after: float | None = None
            msg_id = new_message_id()
            sent_headers = dict(headers)
            if self._secret is not None:
                sent_headers.update(
                    signed_headers(
                        self._secret,
                        msg_id,
                        int(time.time()),
                        request_payload(method, target, node or "", wire_body or b""),
                    )
                )
            try:
                status, answer_headers, raw = await self._send(method, url, sent_headers, wire_body)
            except (
                aiohttp.ClientConnectionError,
                aiohttp.ClientPayloadError,
                asyncio.TimeoutError,
            ) as exc:
                failure = _describe(exc) or type(exc).__name__
            except aiohttp.ClientError as exc:
                raise PeerUnreachable(
                    f"{self._peer}: {method} {endpoint} failed: {_describe(exc)}"
                ) from exc
            else:
                if not is_retryable_status(status):
                    return self._answer(method, endpoint, status, answer_headers, raw, msg_id)
                retry_after = parse_retry_after(answer_headers.get("Retry-After"), now=time.time())
                failure = f"HTTP {status}"
                if attempt + 1 == policy.attempts:
                    problem = _error_text(answer_headers, raw, self.limits)
                    raise PeerRejected(
                        f"{self._peer} answered {method} {endpoint} with {status} "
                        f"{problem[0]} after {policy.attempts} attempt(s): {problem[1]}",
                        status=status,
                        reason=problem[0],
                    )
            if attempt + 1 < policy.attempts:
                wait = policy.delay(attempt, retry_after)
                logger.info(
                    "%s: %s %s failed (%s); retry %d of %d in %.2f s",
                    self._peer,
                    method,
                    endpoint,
                    failure,
                    attempt + 1,
                    policy.attempts - 1,
                    wait,
                )
                await policy.sleep(wait)
        raise PeerUnreachable(
            f"{self._peer} is unreachable: {method} {endpoint} failed {policy.attempts} "
            f"time(s), last with {failure}. Check that its sync server runs and the URL "
            "is right; the next sync will deliver what was missed"
        )

    async def _send(
        self, method: str, url: URL, headers: dict[str, str], body: bytes | None
    ) -> tuple[int, Any, bytes]:
        session = self._client()
        self.stats.requests += 1
        # A BytesIO body: aiohttp streams it (and warns about raw bytes above 1 MiB).
        data = io.BytesIO(body) if body is not None else None
        async with session.request(
            method, url, data=data, headers=headers, allow_redirects=False
        ) as response:
            if body:
                self.stats.bytes_sent += len(body)
            limit = self.limits.max_body
            if response.content_length is not None and response.content_length > limit:
                raise SyncError(
                    f"{self._peer} answered with {response.content_length} bytes, more than {limit}"
                )
            raw = bytearray()
            async for chunk in response.content.iter_chunked(_READ_CHUNK):
                raw += chunk
                if len(raw) > limit:
                    raise SyncError(f"{self._peer} answered with more than {limit} bytes")
            self.stats.bytes_received += len(raw)
            return response.status, response.headers, bytes(raw)

    def _answer(
        self,
        method: str,
        endpoint: str,
        status: int,
        headers: Any,
        raw: bytes,
        msg_id: str,
    ) -> tuple[Any, int]:
        if not 200 <= status <= 299:
            code, message = _error_text(headers, raw, self.limits)
            hint = ""
            if status == 401 and "secret" not in message and "clock" not in message:
                # (a NEONPAY server's own message already says what to check)
                hint = "; check that both sides use the same webhook secret and clocks agree"
            elif code == "http_error" and status in (404, 405):
                # Not a NEONPAY answer: most often a webhook_url that is not the sync base.
                message = "not a NEONPAY sync server at this address"
                hint = "; webhook_url must be the peer's sync base, such as https://host/sync"
            path = "…" + relative(endpoint)  # under the peer's base URL, named just before
            raise PeerRejected(
                f"{self._peer} refused {method} {path}: {status} {code}: {message}{hint}",
                status=status,
                reason=code,
            )
        if self._secret is not None:
            try:
                verify(
                    self._secrets,
                    headers.get(ID_HEADER),
                    headers.get(TIMESTAMP_HEADER),
                    headers.get(SIGNATURE_HEADER),
                    response_payload(status, msg_id, raw),
                    now=time.time(),
                    tolerance=self.tolerance,
                )
            except SignatureError as exc:
                raise type(exc)(
                    f"the answer of {self._peer} to {method} {endpoint} failed verification: "
                    f"{exc}; nothing from it was used"
                ) from exc
        try:
            body = inflate(
                raw, content_encoding(headers.get("Content-Encoding")), self.limits.max_inflated
            )
            return codec.load(body), len(body)
        except WireError as exc:
            raise SyncError(f"{self._peer} answered {method} {endpoint} unreadably: {exc}") from exc


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text[:_MAX_ERROR_TEXT]


def _error_text(headers: Any, raw: bytes, limits: Limits) -> tuple[str, str]:
    """The error code and message of an error answer, as far as they can be read."""
    try:
        body = inflate(
            raw, content_encoding(headers.get("Content-Encoding")), min(limits.max_inflated, _MIB)
        )
        error = codec.load(body)["error"]
        code, message = error["code"], error["message"]
        if isinstance(code, str) and isinstance(message, str):
            return code[:60], message[:_MAX_ERROR_TEXT]
    except (WireError, KeyError, TypeError):
        pass
    text = raw[:_MAX_ERROR_TEXT].decode(errors="replace").strip()
    return "http_error", text or "(no error body)"
