"""Wire errors and the one mapping from exceptions to HTTP statuses and error codes.

Every error answer of the sync server has the body
``{"error": {"code": "...", "message": "..."}}``; :data:`ERROR_CODES` lists the codes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from neonpay.errors import (
    AccessDenied,
    ConfigurationError,
    InvalidSignature,
    NeonPayError,
    NotFoundError,
    ReplayedRequest,
    SignatureError,
    StaleTimestamp,
    StorageError,
    ValidationError,
)

__all__ = ["ERROR_CODES", "Problem", "WireError", "error_body", "problem_for"]

logger = logging.getLogger("neonpay.web_sync")

#: Every error code the server answers with: code -> (status, when).
ERROR_CODES: dict[str, tuple[int, str]] = {
    "malformed_json": (400, "the body is not JSON"),
    "bad_encoding": (400, "the gzip stream is corrupt or truncated"),
    "bad_parameter": (
        400,
        "a query parameter is malformed or out of range (or names an unknown kind)",
    ),
    "bad_node": (400, "the X-NeonPay-Node header is missing or not a node id"),
    "bad_cursor": (400, "the cursor is ahead of this node's change log"),
    "client_gone": (400, "the client hung up in the middle of its request (logged at INFO)"),
    "invalid_argument": (400, "the engine refused an argument"),
    "bad_signature": (401, "a signature header is missing or malformed, or no signature matches"),
    "stale_timestamp": (401, "webhook-timestamp is outside the tolerance window"),
    "replayed_request": (401, "this webhook-id was already seen"),
    "forbidden": (
        403,
        "the signer may not do this here: outside its grant (direction or kinds), or it "
        "claims a node it may not speak for",
    ),
    "not_found": (404, "no such endpoint"),
    "unknown_peer": (404, "the peer parameter names a peer that is not configured"),
    "method_not_allowed": (405, "the endpoint does not take this method"),
    "body_too_large": (413, "the body as sent is larger than max_body"),
    "inflated_too_large": (413, "the body inflates to more than max_inflated"),
    "batch_too_large": (413, "the batch holds more than max_batch records"),
    "unsupported_encoding": (415, "Content-Encoding is neither gzip nor identity"),
    "unsupported_media_type": (415, "Content-Type is not application/json"),
    "bad_schema": (422, "the JSON does not have the documented shape"),
    "unknown_kind": (422, "a record's kind is not a known kind"),
    "wrong_kind": (422, "a record's kind does not belong on this endpoint"),
    "record_too_large": (422, "a record is larger than a limit (fields, keys, versions)"),
    "clock_ahead": (422, "a record's clock stamp is too far ahead of this node's clock"),
    "internal": (500, "an unexpected error; the server logged it"),
    "storage_unavailable": (503, "the store failed; retry later"),
    "server_busy": (
        503,
        "the bytes of request bodies not yet verified are at their bound; retry after "
        "Retry-After seconds",
    ),
}


class WireError(NeonPayError):
    """A request (or response) broke the protocol; ``code`` is one of :data:`ERROR_CODES`."""

    def __init__(self, code: str, message: str, *, status: int | None = None) -> None:
        self.code = code
        self.status = status if status is not None else ERROR_CODES[code][0]
        super().__init__(message)


@dataclass(frozen=True)
class Problem:
    """What an error answer says: status, code and a message a person can act on."""

    status: int
    code: str
    message: str


_SIGNATURE_CODES: dict[type[SignatureError], str] = {
    StaleTimestamp: "stale_timestamp",
    ReplayedRequest: "replayed_request",
    InvalidSignature: "bad_signature",
}


def problem_for(exc: BaseException) -> Problem:
    """Map any exception a handler raised to the answer the client gets.

    Unexpected exceptions are logged here and answered with a generic 500 that reveals
    nothing about the server.
    """
    if isinstance(exc, WireError):
        return Problem(exc.status, exc.code, str(exc))
    if isinstance(exc, (ConnectionResetError, ConnectionAbortedError, BrokenPipeError)):
        return Problem(400, "client_gone", "the client hung up in the middle of its request")
    if isinstance(exc, SignatureError):
        for cls, code in _SIGNATURE_CODES.items():
            if isinstance(exc, cls):
                return Problem(401, code, str(exc))
        return Problem(401, "bad_signature", str(exc))
    if isinstance(exc, AccessDenied):
        return Problem(403, "forbidden", str(exc))
    if isinstance(exc, ValidationError):
        code = "bad_cursor" if exc.field in ("since", "cursor") else "invalid_argument"
        return Problem(400, code, str(exc))
    if isinstance(exc, NotFoundError):
        return Problem(404, "not_found", str(exc))
    if isinstance(exc, StorageError):
        logger.error("the store failed while serving a sync request: %s", exc)
        return Problem(503, "storage_unavailable", "the store failed; retry later")
    if isinstance(exc, ConfigurationError):
        logger.error("sync server misconfigured: %s", exc)
        return Problem(500, "internal", "the sync server is misconfigured; see its log")
    logger.error("unexpected error in a sync request", exc_info=exc)
    return Problem(500, "internal", "unexpected server error; see the server log")


def error_body(problem: Problem) -> dict[str, Any]:
    """The JSON body of an error answer."""
    return {"error": {"code": problem.code, "message": problem.message}}
