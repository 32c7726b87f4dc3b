"""A peer written with the ``standardwebhooks`` library talks to a real NEONPAY server.

docs/protocol.md says where NEONPAY's signed string differs from Standard Webhooks: the
content after ``{id}.{timestamp}.`` is ``{METHOD} {target}\\n{node}\\n{body}`` for a
request and ``{status} {request id}\\n{body}`` for an answer. Here the library's own
``Webhook.sign`` signs requests over that string, a server from ``create_sync_app`` on
127.0.0.1 accepts them, and the library's ``Webhook.verify`` checks our answers. The
library takes the payload as text, so the bodies are sent uncompressed (UTF-8 JSON) and
answers are asked for without gzip (see the page).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from neonpay import PaymentStage, create_neonpay
from neonpay.core.neonpay import NeonPay
from neonpay.sync.credentials import new_secret
from neonpay.web_sync import create_sync_app
from neonpay.web_sync.signing import NODE_HEADER, new_message_id

CLIENT = "sw-client"
#: A secret that is not ``whsec_``: its key is its UTF-8 bytes, which the library takes
#: only as ``bytes`` (a ``str`` secret is always base64 to it).
PLAIN = "a-plain-text-secret-used-as-utf8"


@pytest.fixture
def node(tmp_path: Path) -> Iterator[NeonPay]:
    opened = create_neonpay(storage=f"sqlite:///{tmp_path / 'server'}.db", node_id="server")
    opened.create_payment_stage("premium", PaymentStage("Premium", "Monthly plan", 50))
    yield opened
    opened.close()


async def serve(node: NeonPay, secret: str) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(create_sync_app(node, webhook_secret=secret))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


def library(secret: str) -> Webhook:
    """The library's signer for one of our secrets (see :data:`PLAIN`)."""
    return Webhook(secret) if secret.startswith("whsec_") else Webhook(secret.encode())


async def call(
    session: aiohttp.ClientSession,
    origin: str,
    signer: Webhook,
    method: str,
    target: str,
    body: str = "",
    *,
    payload: str | None = None,
) -> tuple[int, dict[str, str], str, str]:
    """Send one request signed by the library over the documented string (or over
    ``payload``); returns the status, the answer's headers, its body and the request id."""
    msg_id = new_message_id()
    stamp = int(time.time())
    signed = f"{method} {target}\n{CLIENT}\n{body}" if payload is None else payload
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": signer.sign(
            msg_id, datetime.fromtimestamp(stamp, tz=timezone.utc), signed
        ),
        NODE_HEADER: CLIENT,
        "Accept-Encoding": "identity",  # the library verifies text: no gzipped answer
    }
    if method == "POST":
        headers["Content-Type"] = "application/json"
    async with session.request(
        method, origin + target, data=body.encode() if body else None, headers=headers
    ) as answer:
        text = (await answer.read()).decode()
        return answer.status, dict(answer.headers), text, msg_id


def stage_record(key: str, title: str) -> dict[str, object]:
    now = time.time()
    return {
        "kind": "payment_stage",
        "key": key,
        "deleted": False,
        "fields": {
            "title": title,
            "description": "Sent by a Standard Webhooks peer",
            "price": 30,
            "label": "Payment",
            "payload": None,
            "photo_url": None,
            "start_parameter": None,
        },
        "field_hlcs": {},
        "hlc": f"{int(now * 1000):015d}.000000.{CLIENT}",
        "origin": CLIENT,
        "resolution": False,
        "updated_at": now,
        "version": {CLIENT: 1},
    }


@pytest.mark.parametrize("secret", [new_secret(), PLAIN], ids=["whsec", "plain"])
async def test_a_standard_webhooks_peer_reads_and_writes(node: NeonPay, secret: str) -> None:
    runner, origin = await serve(node, secret)
    signer = library(secret)
    try:
        async with aiohttp.ClientSession(auto_decompress=False) as session:
            # A read: the change feed, with a query string covered by the signature.
            target = "/sync/changes?since=0&limit=10&kinds=payment_stage"
            status, headers, text, request_id = await call(session, origin, signer, "GET", target)
            assert status == 200, text
            page = json.loads(text)
            assert [change["key"] for change in page["changes"]] == ["premium"]
            assert page["changes"][0]["fields"]["title"] == "Premium"
            # Our answer verifies with the library over "{status} {request id}\n{body}".
            signer.verify(f"{status} {request_id}\n{text}", headers, json_parse=False)
            with pytest.raises(WebhookVerificationError):  # bound to its own request
                signer.verify(f"{status} msg_other\n{text}", headers, json_parse=False)

            # A write: a record pushed, applied, and the answer verified.
            body = json.dumps({"records": [stage_record("basic", "Basic")]})
            status, headers, text, request_id = await call(
                session, origin, signer, "POST", "/sync/changes", body
            )
            assert status == 200, text
            signer.verify(f"{status} {request_id}\n{text}", headers, json_parse=False)
            assert json.loads(text)["results"][0]["outcome"] == "applied"
            stage = node.get_payment_stage("basic")
            assert stage is not None
            assert stage.title == "Basic"

            # Plain Standard Webhooks (the signature over the body alone) is refused:
            # method, target and node are part of what NEONPAY signs.
            body = json.dumps({"records": [stage_record("other", "Other")]})
            status, _, text, _ = await call(
                session, origin, signer, "POST", "/sync/changes", body, payload=body
            )
            assert status == 401, text
            assert json.loads(text)["error"]["code"] == "bad_signature"
            assert node.get_payment_stage("other") is None
    finally:
        await runner.cleanup()
