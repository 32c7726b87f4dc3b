"""Where the sync secrets come from: arguments, else the ``NEONPAY_SYNC_SECRET`` variable."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from neonpay.errors import ConfigurationError
from neonpay.sync.config import BotSyncConfig
from neonpay.web_sync.signing import check_secret

__all__ = ["SECRET_ENV", "peer_secrets", "resolve_secrets"]

#: The environment variable holding the sync secret(s), separated by whitespace; the
#: first signs, all verify (several during a rotation).
SECRET_ENV = "NEONPAY_SYNC_SECRET"  # noqa: S105 - the name of a variable, not a secret


def resolve_secrets(
    secret: str | None,
    more: Sequence[str] | None = None,
    *,
    insecure: bool = False,
    who: str = "the sync server",
    environ: Mapping[str, str] | None = None,
) -> tuple[str, ...]:
    """The secrets to use, first one first: ``secret`` and ``more``, else the variable.

    Returns an empty tuple only when there is no secret and ``insecure`` is true.

    Raises:
        ConfigurationError: no secret anywhere and not ``insecure``, or an unusable secret.
    """
    given = [s for s in (secret, *(more or ())) if s is not None]
    if not given:
        env = os.environ if environ is None else environ
        given = (env.get(SECRET_ENV) or "").split()
    unique = tuple(dict.fromkeys(check_secret(s) for s in given))
    if not unique and not insecure:
        raise ConfigurationError(
            f"{who} has no webhook secret: pass webhook_secret=..., or set the "
            f"{SECRET_ENV} environment variable, or pass insecure=True for a local "
            "experiment (requests are then neither signed nor checked)"
        )
    return unique


def peer_secrets(config: BotSyncConfig) -> tuple[str, ...]:
    """A configured peer's own secrets, first one first (it signs; all verify); empty
    when the peer has none of its own.

    Raises:
        ConfigurationError: its ``webhook_secret_env`` is not set, or a secret is unusable.
    """
    value = config.secret()
    if not value:
        return ()
    return tuple(dict.fromkeys(check_secret(s) for s in value.split()))
