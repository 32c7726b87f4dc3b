"""Sync secrets: the one rule for reading them, the key they make, and a fresh one.

Every way to give a sync secret goes through :func:`resolve_secrets` (pure: no aiohttp,
so both :class:`~neonpay.sync.config.BotSyncConfig` and :mod:`neonpay.web_sync` use it):

* a string argument (``webhook_secret=``, ``secret=``, ``--secret``),
* a rotation list (``secrets=[...]``),
* a named environment variable (``webhook_secret_env=``, ``--secret-env VAR``),
* else ``NEONPAY_SYNC_SECRET``.

One rule for lists everywhere: any of these strings may hold several secrets separated by
whitespace (``"new old"``); the first signs, all verify (a key rotation). A secret itself
never contains whitespace.

A secret that starts with ``whsec_`` is read as in Standard Webhooks (the rest is the
base64 of the key); any other string is used as its UTF-8 bytes. No message here ever
holds a secret.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets as _random
from collections.abc import Mapping, Sequence

from neonpay.errors import ConfigurationError

__all__ = [
    "KEY_BYTES",
    "SECRET_ENV",
    "SECRET_PREFIX",
    "check_secret",
    "new_secret",
    "resolve_secrets",
    "secret_list",
    "secrets_from_env",
    "signing_key",
]

#: The environment variable holding the sync secret(s) when nothing else names one.
SECRET_ENV = "NEONPAY_SYNC_SECRET"  # noqa: S105 - the name of a variable, not a secret
#: The prefix of a Standard Webhooks secret: the rest is the base64 of the key.
SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
#: The random bytes of a key made by :func:`new_secret`.
KEY_BYTES = 32


def signing_key(secret: str) -> bytes:
    """The HMAC key of ``secret``: its UTF-8 bytes, or the decoded rest of ``whsec_...``.

    Raises:
        ConfigurationError: the secret is empty, holds whitespace, or is a ``whsec_``
            secret whose rest is not base64.
    """
    if not isinstance(secret, str) or not secret:
        raise ConfigurationError("a webhook secret must be a non-empty string")
    if any(c.isspace() for c in secret):
        raise ConfigurationError(
            "a webhook secret must not contain whitespace (whitespace separates the "
            "secrets of a rotation list)"
        )
    if secret.startswith(SECRET_PREFIX):
        try:
            key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ConfigurationError(
                f"a webhook secret starting with {SECRET_PREFIX!r} must continue with base64"
            ) from exc
        if not key:
            raise ConfigurationError(f"a {SECRET_PREFIX!r} webhook secret must not be empty")
        return key
    return secret.encode()


def check_secret(secret: str) -> str:
    """Return ``secret`` when it can sign (see :func:`signing_key`), else raise."""
    signing_key(secret)
    return secret


def new_secret() -> str:
    """A fresh random key: ``whsec_`` and the base64 of :data:`KEY_BYTES` random bytes."""
    return SECRET_PREFIX + base64.b64encode(_random.token_bytes(KEY_BYTES)).decode()


def secret_list(value: str, *, source: str = "the secret") -> tuple[str, ...]:
    """The secrets in ``value``, separated by whitespace, in order, repeats dropped.

    The first one signs, all of them verify. A blank string gives an empty tuple.

    Args:
        value: one secret, or several separated by whitespace (``"new old"``).
        source: where ``value`` came from, for messages (``"NEONPAY_SYNC_SECRET"``).

    Raises:
        ConfigurationError: ``value`` is not a string, or one of its secrets is unusable
            (the message names its position and ``source``, never the secret).
    """
    if not isinstance(value, str):
        raise ConfigurationError(f"{source} must be a string of secrets separated by spaces")
    parts = value.split()
    for position, part in enumerate(parts, start=1):
        try:
            check_secret(part)
        except ConfigurationError as exc:
            where = source if len(parts) == 1 else f"secret #{position} of {source}"
            raise ConfigurationError(f"{where}: {exc}") from None
    return tuple(dict.fromkeys(parts))


def secrets_from_env(
    name: str,
    *,
    who: str = "the sync server",
    environ: Mapping[str, str] | None = None,
) -> tuple[str, ...]:
    """The secrets in the environment variable ``name`` (see :func:`secret_list`).

    Raises:
        ConfigurationError: the variable is unset or blank, or holds an unusable secret.
    """
    env = os.environ if environ is None else environ
    found = secret_list(env.get(name) or "", source=f"the environment variable {name}")
    if not found:
        raise ConfigurationError(
            f"{who} takes its webhook secret from the environment variable {name}, which is not set"
        )
    return found


def resolve_secrets(
    secret: str | None = None,
    more: Sequence[str] | None = None,
    *,
    env: str | None = None,
    fallback_env: str | None = SECRET_ENV,
    insecure: bool = False,
    who: str = "the sync server",
    environ: Mapping[str, str] | None = None,
) -> tuple[str, ...]:
    """The secrets to use, the signing one first; the first source that gives any wins.

    1. ``secret`` then each of ``more`` (every string split on whitespace), else
    2. the variable named ``env`` (it must be set), else
    3. the variable ``fallback_env`` (``NEONPAY_SYNC_SECRET``; None: no fallback).

    Returns:
        The secrets in order, repeats dropped; empty only when there is none and
        ``insecure`` is true.

    Raises:
        ConfigurationError: no secret anywhere and not ``insecure``; ``env`` names an
            unset variable; an unusable secret.
    """
    given: list[str] = []
    if secret is not None:
        given += secret_list(secret, source="webhook_secret")
    if isinstance(more, str):  # a list given as one string: the same rule
        more = [more]
    for position, value in enumerate(more or (), start=1):
        given += secret_list(value, source=f"secrets[{position - 1}]")
    if not given and env is not None:
        given += secrets_from_env(env, who=who, environ=environ)
    if not given and fallback_env is not None:
        values = os.environ if environ is None else environ
        given += secret_list(values.get(fallback_env) or "", source=fallback_env)
    found = tuple(dict.fromkeys(given))
    if not found and not insecure:
        where = f"set the {fallback_env} environment variable, or " if fallback_env else ""
        raise ConfigurationError(
            f"{who} has no webhook secret: pass webhook_secret=..., or {where}pass "
            "insecure=True for a local experiment (requests are then neither signed nor "
            "checked)"
        )
    return found
