"""The sync server: an aiohttp application over a node's :class:`SyncService`.

Each handler does three things: read and verify the request (size limits, signature,
bounded inflating, strict JSON schema, replay check), call the engine, and encode the
answer (gzipped when large and accepted, signed). Every exception a handler raises is
turned into a JSON error answer by one function, :func:`~neonpay.web_sync.errors.problem_for`.
Records enter the store only through ``SyncService.apply``, which checks every field
against the same rules as a local write.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

from aiohttp import web

from neonpay._gcpause import collection_paused
from neonpay.errors import AccessDenied, ConfigurationError, ReplayedRequest
from neonpay.store.base import KINDS, Record, Store
from neonpay.sync.grants import (
    Grant,
    UnknownPeers,
    configured_peers,
    note_inbound_node,
    parse_unknown_peers,
)
from neonpay.sync.protocol import ChangesPage, PeerInfo, PushResult
from neonpay.sync.service import SyncService
from neonpay.web_sync import codec
from neonpay.web_sync.access import identify
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
    Verified,
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
    insecure: bool
    unknown_peers: UnknownPeers
    tolerance: float
    limits: Limits
    clock: Callable[[], float]


_SETTINGS = web.AppKey("neonpay_sync_settings", _Settings)


@dataclass(frozen=True)
class _Inbound:
    """A request that passed the size limits and the signature check, bound to one
    requester (its grant) and the secret that signs the answer."""

    msg_id: str
    node: str | None
    body: bytes
    grant: Grant
    secret: str | None
    bound: bool


def create_sync_app(
    neonpay: NeonPay,
    webhook_secret: str | None = None,
    *,
    secrets: Sequence[str] | None = None,
    insecure: bool = False,
    unknown_peers: UnknownPeers | str = UnknownPeers.READ_WRITE,
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
        secrets: more server-wide secrets accepted at once (key rotation). Each answer
            is signed with the secret that verified its request.
        insecure: serve without any secret: nothing is signed or checked. Only for
            local experiments.
        unknown_peers: what a node that is not configured here as a peer may do when
            it signs with a server-wide secret: ``"read-write"`` (the default),
            ``"read"`` or ``"refuse"``. Configured peers get their own grant (see
            :mod:`neonpay.sync.grants`); a peer configured with a secret of its own
            must sign with it.
        tolerance: seconds a signed timestamp may be away from this clock.
        limits: the request limits; ``max_body``, ``max_inflated`` and ``max_batch``
            override single ones.
        service: the engine to serve (default: ``SyncService(neonpay)``).
        clock: the wall clock (Unix seconds).

    Raises:
        ConfigurationError: no secret (and not ``insecure``), an unusable secret, a bad
            tolerance, limit or policy.
    """
    policy = parse_unknown_peers(unknown_peers)
    own = _peers_with_own_secrets(neonpay.store)
    keys = resolve_secrets(webhook_secret, secrets, insecure=insecure or bool(own))
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or tolerance <= 0:
        raise ConfigurationError(f"tolerance must be a positive number of seconds: {tolerance!r}")
    if not keys and insecure:
        logger.warning(
            "the sync server runs WITHOUT a secret (insecure=True): anyone who can reach it "
            "can read and write this node's catalog"
        )
    elif not keys:
        logger.info(
            "the sync server has no server-wide secret: only the peers %s, each with its "
            "own secret, can sync",
            ", ".join(repr(name) for name in own),
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
    # one setting: a clock stamp may be as far ahead as a signed timestamp may be away
    limits = replace(limits, max_clock_ahead=float(tolerance))
    if service is None:
        service = SyncService(neonpay, max_clock_ahead=float(tolerance))
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
        insecure=insecure and not keys,
        unknown_peers=policy,
        tolerance=float(tolerance),
        limits=limits,
        clock=clock,
    )
    app.router.add_get(HEALTH, _health, allow_head=False)
    app.router.add_get(OPENAPI, _openapi, allow_head=False)
    app.router.add_get(INFO, _endpoint(INFO, _info, with_body=False), allow_head=False)
    app.router.add_get(STATUS, _endpoint(STATUS, _status, with_body=False), allow_head=False)
    app.router.add_get(CHANGES, _endpoint(CHANGES, _feed, with_body=False), allow_head=False)
    app.router.add_post(CHANGES, _endpoint(CHANGES, _push, with_body=True))
    for path, kind in VIEWS.items():
        app.router.add_get(
            path, _endpoint(path, _view_getter(kind), with_body=False), allow_head=False
        )
        app.router.add_post(path, _endpoint(path, _view_pusher(kind), with_body=True))
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
@dataclass(frozen=True)
class _Raw:
    """A request body as sent (empty for a GET), and its content encoding."""

    body: bytes
    encoding: str


async def _read(request: web.Request, *, with_body: bool) -> _Raw:
    """Check the media type and read the body within ``max_body`` (on the loop: it waits
    on the network only)."""
    if not with_body:
        return _Raw(b"", "")
    encoding = content_encoding(request.headers.get("Content-Encoding"))
    media = request.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
    if media != _JSON:
        raise WireError(
            "unsupported_media_type", f"Content-Type must be {_JSON}, not {media[:60]!r}"
        )
    return _Raw(await _read_body(request, request.app[_SETTINGS].limits.max_body), encoding)


#: The part of a handler that runs once the body is read: everything that may wait on
#: the store, in a worker thread (see :func:`_endpoint`).
_Answer = Callable[[web.Request, "_Inbound"], web.Response]


def _endpoint(
    endpoint: str, answer: _Answer, *, with_body: bool
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """An aiohttp handler: read the body on the event loop, then verify, identify and
    answer in a worker thread, so that a store waiting on a lock or the disk never
    stalls the loop (other requests, the bot's updates) meanwhile."""

    async def handle(request: web.Request) -> web.Response:
        raw = await _read(request, with_body=with_body)
        return await asyncio.to_thread(_verified_answer, request, endpoint, raw, answer)

    return handle


def _verified_answer(
    request: web.Request, endpoint: str, raw: _Raw, answer: _Answer
) -> web.Response:
    inbound = _receive(request, endpoint, raw)
    response = answer(request, inbound)
    # only an answered request says which node the peer signs as: a refused one
    # changes nothing but the replay log
    grant = inbound.grant
    if inbound.bound and grant.peer is not None and inbound.node:
        settings = request.app[_SETTINGS]
        note_inbound_node(settings.store, grant.peer, inbound.node, now=settings.clock())
    return response


def _receive(request: web.Request, endpoint: str, raw_body: _Raw) -> _Inbound:
    """Check the signature, bind the request to its requester; return the (inflated)
    body. The signature covers the body as sent, so nothing unauthenticated is inflated.
    """
    settings = request.app[_SETTINGS]
    limits = settings.limits
    raw = raw_body.body
    with_body = request.method == "POST"
    node = request.headers.get(NODE_HEADER)
    msg_id = request.headers.get(ID_HEADER, "")
    if node is not None and not codec.is_node_id(node):
        raise WireError("bad_node", f"{NODE_HEADER} must be a node id (1-64 of A-Z a-z 0-9 - _)")
    verifier = None
    if not settings.insecure:
        query = request.rel_url.raw_query_string
        target = endpoint + (f"?{query}" if query else "")
        payload = request_payload(request.method, target, node or "", raw)
        timestamp = request.headers.get(TIMESTAMP_HEADER)
        signature = request.headers.get(SIGNATURE_HEADER)

        def verifier(secrets: Sequence[str]) -> Verified:
            return verify(
                secrets,
                msg_id,
                timestamp,
                signature,
                payload,
                now=settings.clock(),
                tolerance=settings.tolerance,
            )

    who = identify(
        settings.store,
        node,
        settings.secrets,
        verifier,
        settings.unknown_peers,
    )
    if who.secret is not None and settings.secrets[1:] and who.secret in settings.secrets[1:]:
        # during a rotation: shows who still signs with an older secret
        logger.info(
            "accepted %s %s from node %s signed with an older server secret (#%d)",
            request.method,
            endpoint,
            (node or "-")[:64],
            settings.secrets.index(who.secret) + 1,
        )
    body = inflate(raw, raw_body.encoding, limits.max_inflated) if with_body else b""
    return _Inbound(
        msg_id=msg_id, node=node, body=body, grant=who.grant, secret=who.secret, bound=who.bound
    )


async def _read_body(request: web.Request, max_body: int) -> bytes:
    # bounded in total while unverified, hang-ups answered quietly: see web_sync.intake
    return await read_body(request, max_body)


def _admit(request: web.Request, inbound: _Inbound) -> None:
    """Refuse a request id seen within the replay horizon (remembered in the store).

    A request is accepted while its timestamp is within ``tolerance`` of our clock, so
    an id must be remembered for twice the tolerance.
    """
    settings = request.app[_SETTINGS]
    if settings.insecure:
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
    if inbound.secret is not None:
        headers.update(
            signed_headers(
                inbound.secret,
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


def _info(request: web.Request, inbound: _Inbound) -> web.Response:
    _query(request, ())
    _admit(request, inbound)
    info = request.app[_SETTINGS].service.info()
    return _reply(request, inbound, codec.peer_info_to_wire(info))


def _status(request: web.Request, inbound: _Inbound) -> web.Response:
    peer = _query(request, ("peer",)).get("peer")
    settings = request.app[_SETTINGS]
    grant = inbound.grant
    if peer is not None and grant.peer is not None and peer != grant.peer:
        raise AccessDenied(f"{grant.who} may see only its own status here, not {peer[:100]!r}")
    if peer is not None and grant.peer is None and grant.policy is not UnknownPeers.READ_WRITE:
        # it sees no peer at all: the same answer whether the name exists or not
        raise AccessDenied(f"{grant.who} is not a peer configured here: it sees no peer's status")
    if peer is not None and settings.store.get_peer(peer) is None:
        raise WireError("unknown_peer", f"no peer named {peer[:100]!r} is configured here")
    _admit(request, inbound)
    status = _status_for(settings.service, grant)
    if peer is not None:
        status = {
            **status,
            "peers": [p for p in status.get("peers", []) if p.get("name") == peer],
        }
    return _reply(request, inbound, status)


def _feed(request: web.Request, inbound: _Inbound) -> web.Response:
    limits = request.app[_SETTINGS].limits
    params = _query(request, _FEED_PARAMS)
    since = _whole(params, "since", 0, 0, codec.MAX_COUNTER)
    limit = _whole(params, "limit", min(_DEFAULT_PAGE, limits.max_page), 1, limits.max_page)
    kinds = _kinds(params)
    inbound.grant.check_read()
    _admit(request, inbound)
    page = _changes(request.app[_SETTINGS].service, since, limit, kinds, inbound)
    return _reply(request, inbound, codec.page_to_wire(page))


def _push(request: web.Request, inbound: _Inbound) -> web.Response:
    _query(request, ())
    return _take_push(request, inbound, KINDS)


def _take_push(request: web.Request, inbound: _Inbound, kinds: Collection[str]) -> web.Response:
    """Decode, admit and apply a pushed batch; the answer. The batch's objects all die at
    the end, so the garbage collector is paused meanwhile (see :mod:`neonpay._gcpause`)."""
    with collection_paused():
        sender = _sender(request, inbound)
        if len(kinds) == 1:
            inbound.grant.check_write(next(iter(kinds)))
        else:
            inbound.grant.check_write()
        records = _records(request, inbound, kinds)
        _admit(request, inbound)
        result = _apply(request, records, sender, inbound.grant)
        return _reply(request, inbound, codec.push_result_to_wire(result))


def _apply(request: web.Request, records: list[Record], sender: str, grant: Grant) -> PushResult:
    settings = request.app[_SETTINGS]
    service = settings.service
    if not records:
        return PushResult(node_id=service.node_id, results=[])
    if isinstance(service, SyncService):
        # the records come from codec.records_from_wire: their formats are checked
        return service.apply(records, sender=sender, wire_checked=True, grant=grant)
    return service.apply(records, sender=sender)


def _changes(
    service: SyncBackend,
    since: int,
    limit: int,
    kinds: Sequence[str] | None,
    inbound: _Inbound,
) -> ChangesPage:
    if isinstance(service, SyncService):
        return service.changes(since, limit, kinds, requester=inbound.node, grant=inbound.grant)
    return service.changes(since, limit, inbound.grant.readable(kinds), requester=inbound.node)


def _status_for(service: SyncBackend, grant: Grant) -> dict[str, Any]:
    if isinstance(service, SyncService):
        return service.status(grant=grant)
    return service.status()


def _peers_with_own_secrets(store: Store) -> list[str]:
    """The peers configured in ``store`` that sign with a secret of their own."""
    return [
        name
        for name, config in configured_peers(store).items()
        if config.webhook_secret or config.webhook_secret_env
    ]


def _view_getter(kind: str) -> _Answer:
    def get_view(request: web.Request, inbound: _Inbound) -> web.Response:
        limits = request.app[_SETTINGS].limits
        params = _query(request, _VIEW_PARAMS)
        since = _whole(params, "since", 0, 0, codec.MAX_COUNTER)
        limit = _whole(params, "limit", min(_DEFAULT_PAGE, limits.max_page), 1, limits.max_page)
        inbound.grant.check_read(kind)
        _admit(request, inbound)
        service = request.app[_SETTINGS].service
        if isinstance(service, SyncService):
            page = service.records(kind, since, limit, grant=inbound.grant)
        else:
            page = service.records(kind, since, limit)
        return _reply(request, inbound, codec.page_to_wire(page))

    return get_view


def _view_pusher(kind: str) -> _Answer:
    def push_view(request: web.Request, inbound: _Inbound) -> web.Response:
        _query(request, ())
        return _take_push(request, inbound, (kind,))

    return push_view
