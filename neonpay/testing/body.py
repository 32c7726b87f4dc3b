"""Decoding of HTTP bodies into Bot API parameters.

Handles the three encodings Telegram accepts (JSON, ``application/x-www-form-urlencoded``
and ``multipart/form-data``) independently of the HTTP method, because some clients send
a form body with GET. The same code decodes webhook answers that carry a method call.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import BodyPartReader, MultipartReader, StreamReader, hdrs

from .errors import ApiError, bad_request
from .params import UploadedFile

__all__ = ["MAX_BODY_SIZE", "parse_body"]

#: Largest body accepted (Telegram's upload limit for bots is 50 MB).
MAX_BODY_SIZE = 50 * 1024 * 1024


def _too_large() -> ApiError:
    return ApiError(413, "Request Entity Too Large")


async def _read_limited(stream: StreamReader, max_size: int) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while True:
        chunk = await stream.read(65536)
        if not chunk:
            break
        total += len(chunk)
        if total > max_size:
            raise _too_large()
        chunks.append(chunk)
    return b"".join(chunks)


async def _read_part(part: BodyPartReader, budget: int) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while True:
        chunk = await part.read_chunk()
        if not chunk:
            break
        total += len(chunk)
        if total > budget:
            raise _too_large()
        chunks.append(chunk)
    return b"".join(chunks)


async def _parse_multipart(
    headers: Mapping[str, str], stream: StreamReader, max_size: int
) -> dict[str, Any]:
    values: dict[str, Any] = {}
    reader = MultipartReader(headers, stream)
    budget = max_size
    while True:
        part = await reader.next()
        if part is None:
            break
        if not isinstance(part, BodyPartReader):
            raise bad_request("nested multipart bodies are not supported")
        name = part.name
        data = await _read_part(part, budget)
        budget -= len(data)
        if not name:
            continue
        if part.filename is not None:
            values[name] = UploadedFile(
                field_name=name,
                filename=part.filename,
                content_type=part.headers.get(hdrs.CONTENT_TYPE),
                data=data,
            )
        else:
            charset = part.get_charset(default="utf-8")
            try:
                values[name] = data.decode(charset)
            except (UnicodeDecodeError, LookupError):
                raise bad_request(f"can't decode parameter {name}") from None
    return values


def _parse_json(data: bytes) -> dict[str, Any]:
    try:
        decoded = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise bad_request("can't parse JSON request body") from None
    if not isinstance(decoded, dict):
        raise bad_request("JSON request body must be an object")
    return decoded


def _parse_urlencoded(data: bytes) -> dict[str, Any]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise bad_request("can't decode request body") from None
    return dict(parse_qsl(text, keep_blank_values=True))


async def parse_body(
    headers: Mapping[str, str], stream: StreamReader, *, max_size: int = MAX_BODY_SIZE
) -> dict[str, Any]:
    """Decode a request (or webhook answer) body into a parameter dict.

    Form values stay strings; :class:`~neonpay.testing.params.Params` converts them later.
    Raises :class:`~neonpay.testing.errors.ApiError` on malformed or oversized bodies.
    """
    content_type = headers.get(hdrs.CONTENT_TYPE, "")
    mime = content_type.split(";", 1)[0].strip().lower()
    if mime.startswith("multipart/"):
        return await _parse_multipart(headers, stream, max_size)
    data = await _read_limited(stream, max_size)
    if not data.strip():
        return {}
    if mime == "application/json" or (not mime and data.lstrip()[:1] == b"{"):
        return _parse_json(data)
    return _parse_urlencoded(data)
