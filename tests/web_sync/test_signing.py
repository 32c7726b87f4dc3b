"""Signing and verification (pure functions) against vectors computed here with hmac."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from neonpay.errors import ConfigurationError, InvalidSignature, StaleTimestamp
from neonpay.web_sync import signing
from neonpay.web_sync.signing import (
    check_secret,
    request_payload,
    response_payload,
    sign,
    signing_key,
    verify,
)

MSG_ID = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"
STAMP = 1_700_000_000


def expected(key: bytes, msg_id: str, stamp: int, payload: bytes) -> str:
    digest = hmac.new(key, f"{msg_id}.{stamp}.".encode() + payload, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def test_plain_secret_signs_with_its_utf8_bytes() -> None:
    payload = b'{"records":[]}'
    assert sign("späť-secret", MSG_ID, STAMP, payload) == expected(
        "späť-secret".encode(), MSG_ID, STAMP, payload
    )


def test_whsec_secret_signs_with_the_decoded_key() -> None:
    raw = bytes(range(32))
    secret = "whsec_" + base64.b64encode(raw).decode()
    payload = b"GET /sync/changes?since=0\nnode-a\n"
    assert signing_key(secret) == raw
    assert sign(secret, MSG_ID, STAMP, payload) == expected(raw, MSG_ID, STAMP, payload)


def test_standard_webhooks_published_vector() -> None:
    # The example of the Standard Webhooks specification.
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    assert sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body) == (
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )


def test_payloads_are_exactly_as_documented() -> None:
    assert request_payload("get", "/sync/changes?since=5", "node-a", b"") == (
        b"GET /sync/changes?since=5\nnode-a\n"
    )
    assert request_payload("POST", "/sync/changes", "", b"{}") == b"POST /sync/changes\n\n{}"
    assert response_payload(200, MSG_ID, b"{}") == f"200 {MSG_ID}\n{{}}".encode()


@pytest.mark.parametrize("secret", ["", "whsec_", "whsec_not base64!"])
def test_unusable_secrets_are_configuration_errors(secret: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        check_secret(secret)
    if len(secret) > 6:
        assert secret not in str(caught.value)


def test_verify_accepts_a_good_signature_and_reports_the_secret() -> None:
    payload = b"POST /sync/changes\nnode-a\n{}"
    header = sign("new-secret", MSG_ID, STAMP, payload)
    result = verify(
        ["old-secret", "new-secret"], MSG_ID, str(STAMP), header, payload, now=STAMP + 10
    )
    assert (result.secret_index, result.timestamp) == (1, STAMP)


def test_verify_accepts_any_of_several_signatures() -> None:
    payload = b"x"
    header = " ".join(["v1,bm90LWl0", "v2,whatever", sign("s2", MSG_ID, STAMP, payload), "garbage"])
    assert verify(["s2"], MSG_ID, str(STAMP), header, payload, now=STAMP).secret_index == 0


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"payload": b"y"}, InvalidSignature),
        ({"msg_id": "msg_other"}, InvalidSignature),
        ({"secrets": ["wrong"]}, InvalidSignature),
        ({"timestamp": str(STAMP + 1)}, InvalidSignature),
        ({"now": STAMP + 301}, StaleTimestamp),
        ({"now": STAMP - 301}, StaleTimestamp),
        ({"timestamp": "17e8"}, InvalidSignature),
        ({"timestamp": ""}, InvalidSignature),
        ({"msg_id": "bad id with spaces"}, InvalidSignature),
        ({"signature": ""}, InvalidSignature),
        ({"signature": "v1,"}, InvalidSignature),
        ({"signature": "v1,!!!notbase64"}, InvalidSignature),
    ],
)
def test_verify_refuses(change: dict[str, object], error: type[Exception]) -> None:
    payload = b"x"
    args: dict[str, object] = {
        "secrets": ["s"],
        "msg_id": MSG_ID,
        "timestamp": str(STAMP),
        "signature": sign("s", MSG_ID, STAMP, payload),
        "payload": payload,
        "now": STAMP,
    }
    args.update(change)
    with pytest.raises(error):
        verify(
            args["secrets"],  # type: ignore[arg-type]
            args["msg_id"],  # type: ignore[arg-type]
            args["timestamp"],  # type: ignore[arg-type]
            args["signature"],  # type: ignore[arg-type]
            args["payload"],  # type: ignore[arg-type]
            now=args["now"],  # type: ignore[arg-type]
        )


def test_tolerance_is_inclusive_both_ways() -> None:
    header = sign("s", MSG_ID, STAMP, b"")
    for now in (STAMP - 300, STAMP + 300):
        verify(["s"], MSG_ID, str(STAMP), header, b"", now=now, tolerance=300)


def test_verification_uses_compare_digest(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)  # the module signing uses
    header = sign("s", MSG_ID, STAMP, b"")
    verify(["other", "s"], MSG_ID, str(STAMP), header, b"", now=STAMP)
    assert len(calls) == 2
    with pytest.raises(InvalidSignature):
        verify(["other"], MSG_ID, str(STAMP), header, b"", now=STAMP)
    assert len(calls) == 3


def test_message_ids_are_unique_and_valid() -> None:
    ids = {signing.new_message_id() for _ in range(1000)}
    assert len(ids) == 1000
    for msg_id in list(ids)[:10]:
        verify(["s"], msg_id, str(STAMP), sign("s", msg_id, STAMP, b""), b"", now=STAMP)
