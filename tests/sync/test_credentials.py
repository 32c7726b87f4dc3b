"""One rule for sync secrets on every route: whitespace separates them, the first signs.

Each route that gives a secret (an argument, a rotation list, ``NEONPAY_SYNC_SECRET``,
``webhook_secret_env``, a stored ``webhook_secret``) is given ``"new old"`` and must
come out as ``("new", "old")``. The HTTP side is tested over real servers in
tests/web_sync/test_secret_routes.py and the command line in
tests/cli/test_secret_commands.py.
"""

from __future__ import annotations

import base64
import subprocess
import sys

import pytest

from neonpay.errors import ConfigurationError
from neonpay.sync.config import BotSyncConfig
from neonpay.sync.credentials import (
    KEY_BYTES,
    SECRET_ENV,
    new_secret,
    resolve_secrets,
    secret_list,
    secrets_from_env,
    signing_key,
)

ROTATION = "new old"
EXPECTED = ("new", "old")


def test_secret_list_splits_on_any_whitespace_keeps_order_and_drops_repeats() -> None:
    assert secret_list(ROTATION) == EXPECTED
    assert secret_list("  new\told\nnew  ") == EXPECTED
    assert secret_list("single") == ("single",)
    assert secret_list("") == ()
    assert secret_list(" \n ") == ()


def test_a_bad_secret_in_a_list_is_named_by_position_never_shown() -> None:
    with pytest.raises(ConfigurationError) as caught:
        secret_list("good-one whsec_%%%not-base64", source="NEONPAY_SYNC_SECRET")
    message = str(caught.value)
    assert "secret #2 of NEONPAY_SYNC_SECRET" in message
    assert "base64" in message
    assert "%%%not-base64" not in message
    with pytest.raises(ConfigurationError, match="string"):
        secret_list(b"bytes")  # type: ignore[arg-type]


def test_a_single_secret_with_whitespace_cannot_sign() -> None:
    with pytest.raises(ConfigurationError, match="whitespace"):
        signing_key("new old")


@pytest.mark.parametrize(
    ("label", "kwargs", "environ"),
    [
        ("argument", {"secret": ROTATION}, {}),
        ("argument and list", {"secret": "new", "more": ["old"]}, {}),
        ("list only", {"more": [ROTATION]}, {}),
        ("list as one string", {"more": ROTATION}, {}),
        ("NEONPAY_SYNC_SECRET", {}, {SECRET_ENV: ROTATION}),
        ("named variable", {"env": "PEER_SECRET"}, {"PEER_SECRET": ROTATION}),
    ],
)
def test_every_route_gives_new_then_old(
    label: str, kwargs: dict[str, object], environ: dict[str, str]
) -> None:
    assert resolve_secrets(**kwargs, environ=environ) == EXPECTED, label  # type: ignore[arg-type]


def test_the_first_source_that_gives_secrets_wins() -> None:
    environ = {SECRET_ENV: "from-default", "PEER_SECRET": "from-named"}
    assert resolve_secrets("arg", env="PEER_SECRET", environ=environ) == ("arg",)
    assert resolve_secrets(env="PEER_SECRET", environ=environ) == ("from-named",)
    assert resolve_secrets(environ=environ) == ("from-default",)
    assert resolve_secrets(fallback_env=None, insecure=True, environ=environ) == ()


def test_a_named_variable_must_be_set() -> None:
    for environ in ({}, {"PEER_SECRET": "   "}):
        with pytest.raises(ConfigurationError) as caught:
            resolve_secrets(env="PEER_SECRET", environ=environ, who="bot 'Store'")
        assert str(caught.value) == (
            "bot 'Store' takes its webhook secret from the environment variable PEER_SECRET, "
            "which is not set"
        )
    # NEONPAY_SYNC_SECRET is not consulted when a variable is named.
    with pytest.raises(ConfigurationError, match="PEER_SECRET"):
        secrets_from_env("PEER_SECRET", environ={SECRET_ENV: "x"})


def test_no_secret_is_an_error_unless_insecure() -> None:
    with pytest.raises(ConfigurationError) as caught:
        resolve_secrets(environ={})
    message = str(caught.value)
    assert message.startswith("the sync server has no webhook secret: pass webhook_secret=...")
    assert SECRET_ENV in message
    assert "insecure=True" in message
    assert resolve_secrets(environ={}, insecure=True) == ()
    with pytest.raises(ConfigurationError) as no_fallback:
        resolve_secrets(environ={}, fallback_env=None, who="peer 'X'")
    assert SECRET_ENV not in str(no_fallback.value)


def test_repeats_across_routes_are_dropped() -> None:
    assert resolve_secrets("new old", ["old", "older new"]) == ("new", "old", "older")


def test_new_secret_is_a_fresh_standard_webhooks_key() -> None:
    first, second = new_secret(), new_secret()
    assert first != second
    for key in (first, second):
        assert key.startswith("whsec_")
        assert len(signing_key(key)) == KEY_BYTES
        assert base64.b64decode(key[len("whsec_") :], validate=True) == signing_key(key)
        assert secret_list(key) == (key,)


# --- BotSyncConfig ---------------------------------------------------------------------
def test_config_webhook_secret_is_a_list_by_the_same_rule() -> None:
    config = BotSyncConfig(target_bot_name="Peer", webhook_secret=ROTATION)
    assert config.secrets() == EXPECTED
    assert config.secret() == "new"
    assert config.has_secret()
    assert "new" not in repr(config)
    public = config.to_public_dict()
    assert public["has_secret"] is True
    assert "webhook_secret" not in public
    assert ROTATION not in str(public)


def test_config_webhook_secret_env_is_a_list_by_the_same_rule(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = BotSyncConfig(target_bot_name="Peer", webhook_secret_env="PEER_ROTATION")
    monkeypatch.setenv(SECRET_ENV, "server-wide")
    monkeypatch.delenv("PEER_ROTATION", raising=False)
    with pytest.raises(ConfigurationError, match="PEER_ROTATION"):
        config.secrets()
    assert config.has_secret() is False
    assert config.to_public_dict()["has_secret"] is False  # named, but not set here
    monkeypatch.setenv("PEER_ROTATION", ROTATION)
    assert config.secrets() == EXPECTED
    assert config.secret() == "new"
    assert config.to_public_dict()["has_secret"] is True
    monkeypatch.setenv("PEER_ROTATION", "whsec_!!!")
    assert config.to_public_dict()["has_secret"] is False  # unusable: no secret


def test_config_without_a_secret_of_its_own_has_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_ENV, "server-wide")
    config = BotSyncConfig(target_bot_name="Peer")
    assert config.secrets() == ()
    assert config.secret() is None
    # it signs with $NEONPAY_SYNC_SECRET when it syncs: it has a secret, not its own
    assert config.to_public_dict()["has_secret"] is True
    monkeypatch.delenv(SECRET_ENV)
    assert config.to_public_dict()["has_secret"] is False


@pytest.mark.parametrize("bad", ["   ", "fine whsec_%%", "whsec_"])
def test_config_refuses_an_unusable_secret_when_built(bad: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        BotSyncConfig(target_bot_name="Peer", webhook_secret=bad)
    assert "webhook_secret" in str(caught.value)
    if bad.strip() and bad != "whsec_":
        assert "%%" not in str(caught.value)


def test_the_resolver_imports_without_aiohttp() -> None:
    code = (
        "import sys; sys.modules['aiohttp'] = None\n"
        "from neonpay.sync.config import BotSyncConfig\n"
        "from neonpay.sync.credentials import resolve_secrets\n"
        "c = BotSyncConfig(target_bot_name='p', webhook_secret='new old')\n"
        "print(c.secrets(), resolve_secrets('a b'))\n"
    )
    done = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "('new', 'old') ('a', 'b')"
