"""The sync server: an aiohttp application over a node's :class:`SyncService`.

Each handler does three things: read and verify the request (size limits, signature,
bounded inflating, strict JSON schema, replay check), call the engine, and encode the
answer (gzipped when large and accepted, signed). Every exception a handler raises is
turned into a JSON error answer by one function, :func:`~neonpay.web_sync.errors.problem_for`.
Records enter the store only through ``SyncService.apply``, which checks every field
against the same rules as a local write.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

from aiohttp import web

from neonpay._gcpause import collection_paused
from neonpay.errors import ConfigurationError, ReplayedRequest
from neonpay.store.base import KINDS, Record, Store
from neonpay.sync.protocol import ChangesPage, PeerInfo, PushResult
from neonpay.sync.service import SyncService
from neonpay.web_sync import codec
from neonpay.web_sync.compression import (
    GZIP,
    accepts_gzip,
    content_encoding,
    gzip_compress,
    inflate,
)
from neonpay.web_sync.credentials import resolve_secrets
from neonpay.web_sync.endpoints import CHANGES, HEALTH, INFO, OPENAPI, STATUS, VIEWS
from neonpay.web_sync.errors import Problem, WireError, error_body, problem_for
from neonpay.web_sync.intake import RETRY_AFTER, read_body
from neonpay.web_sync.limits import DEFAULT_LIMITS, Limits
from neonpay.web_sync.openapi import openapi_document
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

if TYPE_CHECKING:
    from neonpay.core.neonpay import NeonPay

__all__ = ["SyncBackend", "create_sync_app"]

logger = logging.getLogger("neonpay.web_sync.server")

#: Seconds the rest of a refused, oversized upload is read and dropped before the
#: connection closes (aiohttp's default, 10 s, holds a slot for long).
_LINGER = 2.0
_DEFAULT_PAGE = 500
_JSON = "application/json"
_STATUS_CODES = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}
_FEED_PARAMS = frozenset({"since", "limit", "kinds"})
_VIEW_PARAMS = frozenset({"since", "limit"})


class SyncBackend(Protocol):
    """What the server asks of the engine (:class:`neonpay.sync.service.SyncService`)."""

    @property
    def node_id(self) -> str: ...

    def info(self) -> PeerInfo: ...

    def changes(
        self, since: int, limit: int, kinds: Sequence[str] | None, *, requester: str | None
    ) -> ChangesPage: ...

    def records(self, kind: str, since: int = ..., limit: int = ...) -> ChangesPage: ...

    def apply(self, records: Sequence[Record], *, sender: str) -> PushResult: ...

    def status(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class _Settings:
    service: SyncBackend
    store: Store
    secrets: tuple[str, ...]
    tolerance: float
    limits: Limits
    clock: Callable[[], float]


_SETTINGS = web.AppKey("neonpay_sync_settings", _Settings)


@dataclass(frozen=True)
class _Inbound:
    """A request that passed the size limits and the signature check."""

    msg_id: str
    node: str | None
    body: bytes
    secret_index: int | None


def create_sync_app(
    neonpay: NeonPay,
    webhook_secret: str | None = None,
    *,
    secrets: Sequence[str] | None = None,
    insecure: bool = False,
    tolerance: float = DEFAULT_TOLERANCE,
    limits: Limits | None = None,
    max_body: int | None = None,
    max_inflated: int | None = None,
    max_batch: int | None = None,
    service: SyncBackend | None = None,
    clock: Callable[[], float] = time.time,
) -> web.Application:
    """The aiohttp application serving ``neonpay``'s sync endpoints.

    Args:
        neonpay: the node to serve.
        webhook_secret: the shared secret (default: ``$NEONPAY_SYNC_SECRET``, which may
            hold several secrets separated by spaces).
        secrets: more secrets accepted at once (key rotation, or one per peer). Each
            answer is signed with the secret that verified its request.
        insecure: serve without any secret: nothing is signed or checked. Only for
            local experiments.
        tolerance: seconds a signed timestamp may be away from this clock.
        limits: the request limits; ``max_body``, ``max_inflated`` and ``max_batch``
            override single ones.
        service: the engine to serve (default: ``SyncService(neonpay)``).
        clock: the wall clock (Unix seconds).

    Raises:
        ConfigurationError: no secret (and not ``insecure``), an unusable secret, a bad
            tolerance or limit.
    """
    keys = resolve_secrets(webhook_secret, secrets, insecure=insecure)
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or tolerance <= 0:
        raise ConfigurationError(f"tolerance must be a positive number of seconds: {tolerance!r}")
    if not keys:
        logger.warning(
            "the sync server runs WITHOUT a secret (insecure=True): anyone who can reach it "
            "can read and write this node's catalog"
        )
    limits = limits or DEFAULT_LIMITS
    overrides = {
        name: value
        for name, value in (
            ("max_body", max_body),
            ("max_inflated", max_inflated),
            ("max_batch", max_batch),
        )
        if value is not None
    }
    if overrides:
        limits = replace(limits, **overrides)
    if service is None:
        service = SyncService(neonpay)
    app = web.Application(
        middlewares=[_error_middleware],
        # We inflate request bodies ourselves, after checking the signature and within
        # max_inflated; aiohttp's own decompression has neither bound.
        handler_args={"auto_decompress": False, "lingering_time": _LINGER},
        client_max_size=limits.max_body,
    )
    app[_SETTINGS] = _Settings(
        service=service,
        store=neonpay.store,
        secrets=keys,
        tolerance=float(tolerance),
        limits=limits,
        clock=clock,
    )
    app.router.add_get(HEALTH, _health, allow_head=False)
    app.router.add_get(OPENAPI, _openapi, allow_head=False)
    app.router.add_get(INFO, _info, allow_head=False)
    app.router.add_get(STATUS, _status, allow_head=False)
    app.router.add_get(CHANGES, _feed, allow_head=False)
    app.router.add_post(CHANGES, _push)
    for path, kind in VIEWS.items():
        app.router.add_get(path, _view_getter(path, kind), allow_head=False)
        app.router.add_post(path, _view_pusher(path, kind))
    return app


# --- errors ----------------------------------------------------------------------------------
@web.middleware
async def _error_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        problem = Problem(exc.status, _STATUS_CODES.get(exc.status, "bad_parameter"), exc.reason)
        response = _error_response(problem)
        allow = exc.headers.get("Allow")
        if allow:
            response.headers["Allow"] = allow
        return response
    except Exception as exc:  # every other error becomes a JSON answer; see problem_for
        problem = problem_for(exc)
        _log_refusal(request, problem)
        response = _error_response(problem)
        if problem.code in ("body_too_large", "server_busy"):
            # Answer at once and close the connection after a short drain (see
            # _LINGER), so the client can still read the answer.
            response.force_close()
        return response


def _log_refusal(request: web.Request, problem: Problem) -> None:
    """One line per refused request, so operators see bad secrets, replays and misuse
    (the message never holds a secret: it is what the client is told as well)."""
    level = logging.WARNING if problem.status in (401, 403) else logging.INFO
    if problem.status >= 500 and problem.code != "server_busy":
        level = logging.ERROR
    node = request.headers.get(NODE_HEADER, "-")[:64]
    logger.log(
        level,
        "refused %s %s from %s (node %s): %d %s: %s",
        request.method,
        request.path[:200],
        request.remote,
        node,
        problem.status,
        problem.code,
        problem.message[:300],
    )


def _error_response(problem: Problem) -> web.Response:
    return web.Response(
        body=codec.dump(error_body(problem)),
        status=problem.status,
        content_type=_JSON,
        headers={"Retry-After": str(RETRY_AFTER)} if problem.status == 503 else None,
    )


# --- reading a request ------------------------------------------------------------------------
async def _receive(request: web.Request, endpoint: str, *, with_body: bool) -> _Inbound:
    """Check sizes and the signature; return the (inflated) body.

    The signature covers the body as sent, so nothing unauthenticated is inflated.
    """
    settings = request.app[_SETTINGS]
    limits = settings.limits
    raw = b""
    encoding = content_encoding(request.headers.get("Content-Encoding")) if with_body else ""
    if with_body:
        media = request.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
        if media != _JSON:
            raise WireError(
                "unsupported_media_type", f"Content-Type must be {_JSON}, not {media[:60]!r}"
            )
        raw = await _read_body(request, limits.max_body)
    node = request.headers.get(NODE_HEADER)
    msg_id = request.headers.get(ID_HEADER, "")
    secret_index: int | None = None
    if settings.secrets:
        query = request.rel_url.raw_query_string
        target = endpoint + (f"?{query}" if query else "")
        verified = verify(
            settings.secrets,
            msg_id,
            request.headers.get(TIMESTAMP_HEADER),
            request.headers.get(SIGNATURE_HEADER),
            request_payload(request.method, target, node or "", raw),
            now=settings.clock(),
            tolerance=settings.tolerance,
        )
        secret_index = verified.secret_index
        if secret_index > 0:  # during a rotation: shows who still signs with an older secret
            logger.info(
                "accepted %s %s from node %s signed with secret #%d (not the first)",
                request.method,
                endpoint,
                (node or "-")[:64],
                secret_index + 1,
            )
    if node is not None and not codec.is_node_id(node):
        raise WireError("bad_node", f"{NODE_HEADER} must be a node id (1-64 of A-Z a-z 0-9 - _)")
    body = inflate(raw, encoding, limits.max_inflated) if with_body else b""
    return _Inbound(msg_id=msg_id, node=node, body=body, secret_index=secret_index)


async def _read_body(request: web.Request, max_body: int) -> bytes:
    # bounded in total while unverified, hang-ups answered quietly: see web_sync.intake
    return await read_body(request, max_body)


def _admit(request: web.Request, inbound: _Inbound) -> None:
    """Refuse a request id seen within the replay horizon (remembered in the store).

    A request is accepted while its timestamp is within ``tolerance`` of our clock, so
    an id must be remembered for twice the tolerance.
    """
    settings = request.app[_SETTINGS]
    if not settings.secrets:
        return
    now = settings.clock()
    if not settings.store.remember_request_id(inbound.msg_id, now, 2 * settings.tolerance):
        raise ReplayedRequest(f"{ID_HEADER} {inbound.msg_id!r} was already used: replay refused")


def _query(request: web.Request, allowed: Collection[str]) -> dict[str, str]:
    query = request.rel_url.query
    params: dict[str, str] = {}
    for name, value in query.items():
        if name not in allowed:
            raise WireError(
                "bad_parameter",
                f"unknown parameter {name[:40]!r} (this endpoint takes "
                f"{', '.join(sorted(allowed)) or 'none'})",
            )
        if name in params:
            raise WireError("bad_parameter", f"parameter {name!r} is given twice")
        params[name] = value
    return params


def _whole(params: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    text = params.get(name)
    if text is None:
        return default
    if not (text.isascii() and text.isdigit() and len(text) <= 19):
        raise WireError("bad_parameter", f"{name} must be a whole number, not {text[:40]!r}")
    value = int(text)
    if not low <= value <= high:
        raise WireError("bad_parameter", f"{name} must be from {low} to {high}")
    return value


def _kinds(params: Mapping[str, str]) -> list[str] | None:
    text = params.get("kinds")
    if text is None:
        return None
    kinds: list[str] = []
    for kind in text.split(",") if text else []:
        if kind not in KINDS:
            raise WireError(
                "bad_parameter", f"kinds: unknown kind {kind[:40]!r} (known: {', '.join(KINDS)})"
            )
        if kind not in kinds:
            kinds.append(kind)
    return kinds


def _records(request: web.Request, inbound: _Inbound, kinds: Collection[str]) -> list[Record]:
    settings = request.app[_SETTINGS]
    return codec.records_from_wire(
        codec.load(inbound.body),
        limits=settings.limits,
        kinds=kinds,
        now=settings.clock(),
        source_bytes=len(inbound.body),
    )


def _sender(request: web.Request, inbound: _Inbound) -> str:
    service = request.app[_SETTINGS].service
    if inbound.node is None:
        raise WireError("bad_node", f"a push needs the {NODE_HEADER} header naming the sender")
    if inbound.node == service.node_id:
        raise WireError(
            "bad_node", f"{NODE_HEADER} names this very node: a node cannot sync with itself"
        )
    return inbound.node


# --- answering ------------------------------------------------------------------------------
def _reply(request: web.Request, inbound: _Inbound, payload: Any) -> web.Response:
    """A 200 answer: JSON, gzipped when large and accepted, signed over the bytes sent."""
    settings = request.app[_SETTINGS]
    body = codec.dump(payload)
    headers = {"Content-Type": _JSON, "Vary": "Accept-Encoding"}
    if len(body) > settings.limits.compress_threshold and accepts_gzip(
        request.headers.get("Accept-Encoding")
    ):
        body = gzip_compress(body)
        headers["Content-Encoding"] = GZIP
    if inbound.secret_index is not None:
        headers.update(
            signed_headers(
                settings.secrets[inbound.secret_index],
                new_message_id(),
                int(settings.clock()),
                response_payload(200, inbound.msg_id, body),
            )
        )
    return web.Response(body=body, status=200, headers=headers)


# --- handlers ----------------------------------------------------------------------------------
async def _health(request: web.Request) -> web.Response:
    """Unsigned and without data: is the server up."""
    return web.Response(body=b'{"status":"ok"}', content_type=_JSON)


async def _openapi(request: web.Request) -> web.Response:
    """The OpenAPI 3.1 description of these endpoints (public: it holds no data)."""
    settings = request.app[_SETTINGS]
    return web.Response(body=codec.dump(openapi_document(settings.limits)), content_type=_JSON)


async def _info(request: web.Request) -> web.Response:
    inbound = await _receive(request, INFO, with_body=False)
    _query(request, ())
    _admit(request, inbound)
    info = request.app[_SETTINGS].service.info()
    return _reply(request, inbound, codec.peer_info_to_wire(info))


async def _status(request: web.Request) -> web.Response:
    inbound = await _receive(request, STATUS, with_body=False)
    peer = _query(request, ("peer",)).get("peer")
    settings = request.app[_SETTINGS]
    if peer is not None and settings.store.get_peer(peer) is None:
        raise WireError("unknown_peer", f"no peer named {peer[:100]!r} is configured here")
    _admit(request, inbound)
    status = settings.service.status()
    if peer is not None:
        status = {
            **status,
            "peers": [p for p in status.get("peers", []) if p.get("name") == peer],
        }
    return _reply(request, inbound, status)


async def _feed(request: web.Request) -> web.Response:
    inbound = await _receive(request, CHANGES, with_body=False)
    limits = request.app[_SETTINGS].limits
    params = _query(request, _FEED_PARAMS)
    since = _whole(params, "since", 0, 0, codec.MAX_COUNTER)
    limit = _whole(params, "limit", min(_DEFAULT_PAGE, limits.max_page), 1, limits.max_page)
    kinds = _kinds(params)
    _admit(request, inbound)
    page = request.app[_SETTINGS].service.changes(since, limit, kinds, requester=inbound.node)
    return _reply(request, inbound, codec.page_to_wire(page))


async def _push(request: web.Request) -> web.Response:
    inbound = await _receive(request, CHANGES, with_body=True)
    _query(request, ())
    return _take_push(request, inbound, KINDS)


def _take_push(request: web.Request, inbound: _Inbound, kinds: Collection[str]) -> web.Response:
    """Decode, admit and apply a pushed batch; the answer. The batch's objects all die at
    the end, so the garbage collector is paused meanwhile (see :mod:`neonpay._gcpause`)."""
    with collection_paused():
        sender = _sender(request, inbound)
        records = _records(request, inbound, kinds)
        _admit(request, inbound)
        result = _apply(request, records, sender)
        return _reply(request, inbound, codec.push_result_to_wire(result))


def _apply(request: web.Request, records: list[Record], sender: str) -> PushResult:
    settings = request.app[_SETTINGS]
    service = settings.service
    if not records:
        return PushResult(node_id=service.node_id, results=[])
    if isinstance(service, SyncService):
        # the records come from codec.records_from_wire: their formats are checked
        return service.apply(records, sender=sender, wire_checked=True)
    return service.apply(records, sender=sender)


def _view_getter(path: str, kind: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def get_view(request: web.Request) -> web.Response:
        inbound = await _receive(request, path, with_body=False)
        limits = request.app[_SETTINGS].limits
        params = _query(request, _VIEW_PARAMS)
        since = _whole(params, "since", 0, 0, codec.MAX_COUNTER)
        limit = _whole(params, "limit", min(_DEFAULT_PAGE, limits.max_page), 1, limits.max_page)
        _admit(request, inbound)
        page = request.app[_SETTINGS].service.records(kind, since, limit)
        return _reply(request, inbound, codec.page_to_wire(page))

    return get_view


def _view_pusher(path: str, kind: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def push_view(request: web.Request) -> web.Response:
        inbound = await _receive(request, path, with_body=True)
        _query(request, ())
        return _take_push(request, inbound, (kind,))

    return push_view
