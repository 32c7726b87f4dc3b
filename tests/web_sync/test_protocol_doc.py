"""docs/protocol.md stays true: its worked exchange verifies with our own functions."""

from __future__ import annotations

import re
from pathlib import Path

from neonpay.web_sync import codec
from neonpay.web_sync.signing import request_payload, response_payload, signing_key, verify

DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"


def messages() -> list[tuple[str, dict[str, str], bytes]]:
    text = DOC.read_text()
    section = text[text.index("## A worked exchange") :]
    blocks = re.findall(r"```http\n(.*?)```", section, re.S)
    out = []
    for block in blocks:
        head, _, body = block.partition("\n\n")
        first, *lines = head.splitlines()
        headers = {}
        for line in lines:
            name, _, value = line.partition(": ")
            headers[name.lower()] = value
        out.append((first, headers, body.rstrip("\n").encode()))
    return out


def test_the_worked_exchange_verifies() -> None:
    text = DOC.read_text()
    secret = re.search(r"Secret `(whsec_[A-Za-z0-9+/=]+)`", text).group(1)  # type: ignore[union-attr]
    assert signing_key(secret) == b"neonpay protocol example key 32b"
    exchange = messages()
    assert len(exchange) == 4
    request_id = ""
    for first, headers, body in exchange:
        if first.startswith("HTTP/1.1"):
            status = int(first.split()[1])
            payload = response_payload(status, request_id, body)
        else:
            method, target, _ = first.split()
            payload = request_payload(method, target, headers.get("x-neonpay-node", ""), body)
            request_id = headers["webhook-id"]
        stamp = int(headers["webhook-timestamp"])
        verify(
            [secret],
            headers["webhook-id"],
            headers["webhook-timestamp"],
            headers["webhook-signature"],
            payload,
            now=stamp,
        )
        if body:
            codec.load(body)
    push_body = exchange[0][2]
    assert f"the body is {len(push_body)} bytes" in text
    assert len(codec.records_from_wire(codec.load(push_body))) == 1
