"""The client of a running emulator's control API (``neonpay emulator send|pay|...``).

Standard library only (``urllib``), so these commands work without the ``sync`` extra.
Every failure is a :class:`ControlFailed` with one line to show: the emulator cannot be
reached, or it refused the request and said why.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from neonpay.errors import NeonPayError

__all__ = ["DEFAULT_EMULATOR_URL", "REQUEST_TIMEOUT", "ControlFailed", "call"]

#: Where ``neonpay emulator`` listens by default.
DEFAULT_EMULATOR_URL = "http://127.0.0.1:8081"
#: Seconds one control request may take, on top of the reply wait it asks for (a payment
#: also waits up to the emulator's pre-checkout deadline, 10 s by default).
REQUEST_TIMEOUT = 30.0

_PREFIX = "/_control/"


class ControlFailed(NeonPayError):
    """The emulator could not be reached or refused the request."""


def _endpoint(base_url: str, route: str, query: dict[str, Any] | None) -> str:
    parsed = urllib.parse.urlsplit(base_url.strip())
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ControlFailed(
            f"--url must be the emulator's address such as {DEFAULT_EMULATOR_URL}, "
            f"not {base_url[:100]!r}"
        )
    path = parsed.path.rstrip("/") + _PREFIX + route
    params = {k: str(v) for k, v in (query or {}).items() if v is not None}
    return urllib.parse.urlunsplit(
        (parsed.scheme, parsed.netloc, path, urllib.parse.urlencode(params), "")
    )


def call(
    base_url: str,
    route: str,
    *,
    query: dict[str, Any] | None = None,
    body: dict[str, Any] | None = None,
    wait: float = 0.0,
) -> dict[str, Any]:
    """GET (``body`` None) or POST one control route; returns the emulator's answer.

    Raises:
        ControlFailed: the URL is not usable, the emulator is not reachable, or it refused
            the request (its reason is the message).
    """
    url = _endpoint(base_url, route, query)
    data = None
    headers = {"Accept": "application/json"}
    if body is not None:
        data = json.dumps({k: v for k, v in body.items() if v is not None}).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked above
        url, data=data, headers=headers, method="GET" if body is None else "POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT + wait) as reply:  # noqa: S310
            raw = reply.read()
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        raise ControlFailed(_refusal(raw, exc.code)) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ControlFailed(
            f"cannot reach the emulator at {base_url}: {reason} "
            "(is 'neonpay emulator' running there? see --url)"
        ) from None
    try:
        answer = json.loads(raw)
    except ValueError:
        raise ControlFailed(f"{base_url} did not answer like the emulator (not JSON)") from None
    if not isinstance(answer, dict):
        raise ControlFailed(f"{base_url} did not answer like the emulator")
    return answer


def _refusal(raw: bytes, status: int) -> str:
    try:
        answer = json.loads(raw)
    except ValueError:
        answer = None
    if isinstance(answer, dict) and isinstance(answer.get("error"), str):
        return str(answer["error"])
    if status == 404:
        return "no control API there (is it 'neonpay emulator' from this version?)"
    return f"the emulator answered HTTP {status}"
