"""Reading request bodies before their signature is checked.

Anyone who can reach the sync server can send a body; only once it is read can its
signature be checked. Two rules keep that cheap for the server:

- **A bounded total.** The bytes held by all requests still being read are counted
  against one budget per server, :data:`MAX_UNVERIFIED_BYTES` (32 MiB, twice the largest
  body). A request that would pass it is answered ``503 server_busy`` with
  ``Retry-After`` at once, so a flood of unsigned uploads cannot grow memory past the
  budget. (Once a body is read, its signature is checked before the next request runs:
  nothing else waits in between.)
- **A hang-up is not a server error.** A client that disconnects (or resets the
  connection) in the middle of its body is logged at INFO as ``client_gone``, never as a
  500 with a traceback.
"""

from __future__ import annotations

import weakref

from aiohttp import ClientPayloadError, web
from aiohttp.http_exceptions import HttpProcessingError

from neonpay.web_sync.errors import WireError

__all__ = ["MAX_UNVERIFIED_BYTES", "RETRY_AFTER", "BodyBudget", "budget_for", "read_body"]

#: Bytes all requests being read (signature not yet checked) may hold together, per server.
MAX_UNVERIFIED_BYTES = 32 * 1024 * 1024
#: Seconds a client told ``503 server_busy`` is asked to wait (the ``Retry-After`` header).
RETRY_AFTER = 1
_READ_CHUNK = 64 * 1024
#: What aiohttp raises when the client goes away in the middle of its body.
_HANG_UPS = (ConnectionResetError, ConnectionAbortedError, ClientPayloadError, HttpProcessingError)


class BodyBudget:
    """The bytes that request bodies being read may hold together."""

    def __init__(self, limit: int = MAX_UNVERIFIED_BYTES) -> None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"the budget must be a positive whole number of bytes: {limit!r}")
        self.limit = limit
        self.held = 0

    def take(self, size: int) -> bool:
        """Count ``size`` more bytes as held; False (nothing counted) when over budget."""
        if self.held + size > self.limit:
            return False
        self.held += size
        return True

    def give_back(self, size: int) -> None:
        """The bytes of a body no longer held unverified."""
        self.held = max(0, self.held - size)


_BUDGETS: weakref.WeakKeyDictionary[web.Application, BodyBudget] = weakref.WeakKeyDictionary()


def budget_for(app: web.Application) -> BodyBudget:
    """The budget shared by every request of ``app`` (made on first use)."""
    budget = _BUDGETS.get(app)
    if budget is None:
        budget = _BUDGETS[app] = BodyBudget()
    return budget


async def read_body(request: web.Request, max_body: int, budget: BodyBudget | None = None) -> bytes:
    """The body of ``request``, at most ``max_body`` bytes, held within ``budget``
    (default: :func:`budget_for` the request's application) while it is read.

    Raises:
        WireError: ``body_too_large`` (413), ``server_busy`` (503: the budget is spent;
            answer with :data:`RETRY_AFTER`), ``client_gone`` (the client hung up).
    """
    declared = request.content_length
    if declared is not None and declared > max_body:
        raise WireError(
            "body_too_large", f"the body is {declared} bytes, more than {max_body}: split it"
        )
    if budget is None:
        budget = budget_for(request.app)
    body = bytearray()
    try:
        async for chunk in request.content.iter_chunked(_READ_CHUNK):
            if not budget.take(len(chunk)):
                raise WireError(
                    "server_busy",
                    "too many request bodies are being received at once; retry in a moment",
                )
            body += chunk
            if len(body) > max_body:
                raise WireError("body_too_large", f"the body is more than {max_body} bytes")
    except _HANG_UPS as exc:
        raise WireError(
            "client_gone", f"the client hung up after {len(body)} bytes of its body"
        ) from exc
    finally:
        budget.give_back(len(body))
    return bytes(body)
