"""How this bot syncs with one peer: :class:`BotSyncConfig` and its two enums.

A config is checked when it is built (an unknown direction or strategy, an interval out
of range, a URL that cannot work are :class:`~neonpay.errors.ConfigurationError`). Every
argument has a default, so ``BotSyncConfig(conflict_resolution=...)`` works on its own;
the name and URL are required only when the config is added to a
:class:`~neonpay.sync.multi.MultiBotSyncManager` or used to sync.
"""

from __future__ import annotations

import enum
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from neonpay.errors import ConfigurationError, mask_token
from neonpay.sync.credentials import resolve_secrets, secret_list

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MAX_SYNC_INTERVAL_MINUTES",
    "MIN_SYNC_INTERVAL_MINUTES",
    "BotSyncConfig",
    "ConflictResolution",
    "SyncDirection",
]

#: The shortest interval between automatic syncs (0.6 s: loopback tests and demos).
MIN_SYNC_INTERVAL_MINUTES = 0.01
#: The longest interval between automatic syncs (one week).
MAX_SYNC_INTERVAL_MINUTES = 7 * 24 * 60
#: How many records one request carries unless told otherwise.
DEFAULT_PAGE_SIZE = 500
_MAX_PAGE_SIZE = 5000
_MAX_NAME = 100


class SyncDirection(enum.Enum):
    """Which way data flows between this bot (the source) and a peer (the target).

    ``PUSH``: we send, the peer never writes to us. ``PULL``: we receive, the peer never
    receives from us. ``BIDIRECTIONAL``: both.
    """

    PUSH = "push"
    PULL = "pull"
    BIDIRECTIONAL = "bidirectional"

    @property
    def pushes(self) -> bool:
        """Whether our changes go to the peer."""
        return self is not SyncDirection.PULL

    @property
    def pulls(self) -> bool:
        """Whether the peer's changes come to us."""
        return self is not SyncDirection.PUSH


class ConflictResolution(enum.Enum):
    """What to do when both sides changed the same record concurrently."""

    SOURCE_WINS = "source_wins"
    TARGET_WINS = "target_wins"
    MERGE = "merge"
    ASK_USER = "ask_user"


def parse_choice(cls: type[enum.Enum], value: Any, what: str) -> Any:
    """``value`` as a member of ``cls`` (members, values and names are accepted, any case).

    Raises:
        ConfigurationError: no such member; the message lists the choices.
    """
    if isinstance(value, cls):
        return value
    if isinstance(value, str):
        text = value.strip().lower().replace("-", "_")
        for member in cls:
            if text in (member.value, member.name.lower()):
                return member
    choices = ", ".join(m.value for m in cls)
    raise ConfigurationError(f"unknown {what} {value!r}: use one of {choices}")


def normalize_sync_url(url: str) -> str:
    """Check a peer's sync URL and give it the ``/sync`` path when it has none.

    Raises:
        ConfigurationError: not an absolute http(s) URL, or it carries credentials, a
            query or a fragment.
    """
    if not isinstance(url, str) or not url.strip():
        raise ConfigurationError("webhook_url must be an http(s) URL such as https://host/sync")
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(
            f"webhook_url must be an absolute http:// or https:// URL, got {url!r}"
        )
    if parts.username is not None or parts.password is not None:
        raise ConfigurationError(
            "webhook_url must not carry credentials; use webhook_secret for authentication"
        )
    if parts.query or parts.fragment:
        raise ConfigurationError(f"webhook_url must not have a query or fragment: {url!r}")
    try:
        parts.port  # noqa: B018  # raises ValueError for a malformed port
    except ValueError as exc:
        raise ConfigurationError(f"webhook_url has an invalid port: {url!r}") from exc
    path = parts.path.rstrip("/") or "/sync"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def _flag(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigurationError(f"{name} must be True or False, got {value!r}")
    return value


def _optional_text(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigurationError(f"{name} must be a string")
    return value


@dataclass(frozen=True, repr=False)
class BotSyncConfig:
    """How this bot syncs with one peer bot.

    Args:
        target_bot_token: the peer bot's token; only shown masked, never sent anywhere.
        target_bot_name: a unique name for the peer (the key of its cursors and history).
        sync_payment_stages: exchange payment stages with this peer (both ways).
        sync_promo_codes: exchange promo codes, with their usage counters.
        sync_templates: exchange templates.
        sync_settings: exchange settings.
        sync_analytics: accepted for compatibility with neonpay 2.x; there is nothing to
            sync for it (payments stay with the bot that took them).
        direction: ``SyncDirection`` (or its value, e.g. ``"push"``).
        conflict_resolution: ``ConflictResolution`` (or its value).
        auto_sync: sync on a timer and on local changes once
            ``MultiBotSyncManager.start_auto_sync_all()`` runs.
        sync_interval_minutes: the timer, 0.01 to 10080 minutes.
        webhook_url: the peer's sync base, ``https://host/sync``; a URL with no path
            gets ``/sync``.
        webhook_secret: this peer's own secret, which signs requests both ways (kept in
            the store with the peer, never shown). Several secrets separated by
            whitespace (``"new old"``) during a rotation: the first signs, all verify.
        webhook_secret_env: the name of an environment variable holding the secret(s)
            instead, by the same rule (read when the transport is created). Without
            either, the transport uses ``$NEONPAY_SYNC_SECRET``.
        page_size: records per request (1 to 5000).
        request_timeout: seconds one request may take.
        insecure: allow talking to the peer without a secret (unsigned requests); only for
            local experiments.

    Raises:
        ConfigurationError: an argument that cannot work; the message says which.
    """

    target_bot_token: str | None = None
    target_bot_name: str = ""
    sync_payment_stages: bool = True
    sync_promo_codes: bool = True
    sync_templates: bool = True
    sync_settings: bool = True
    sync_analytics: bool = False
    direction: SyncDirection = SyncDirection.BIDIRECTIONAL
    conflict_resolution: ConflictResolution = ConflictResolution.MERGE
    auto_sync: bool = False
    sync_interval_minutes: float = 60
    webhook_url: str | None = None
    webhook_secret: str | None = None
    webhook_secret_env: str | None = None
    page_size: int = DEFAULT_PAGE_SIZE
    request_timeout: float = 10.0
    insecure: bool = False

    def __post_init__(self) -> None:
        put = object.__setattr__
        put(self, "target_bot_token", _optional_text(self.target_bot_token, "target_bot_token"))
        name: Any = "" if self.target_bot_name is None else self.target_bot_name
        if not isinstance(name, str):
            raise ConfigurationError("target_bot_name must be a string")
        name = name.strip()
        if len(name) > _MAX_NAME or any(ord(c) < 32 for c in name):
            raise ConfigurationError(
                f"target_bot_name must be at most {_MAX_NAME} printable characters"
            )
        put(self, "target_bot_name", name)
        for flag in (
            "sync_payment_stages",
            "sync_promo_codes",
            "sync_templates",
            "sync_settings",
            "sync_analytics",
            "auto_sync",
            "insecure",
        ):
            _flag(getattr(self, flag), flag)
        put(self, "direction", parse_choice(SyncDirection, self.direction, "direction"))
        put(
            self,
            "conflict_resolution",
            parse_choice(ConflictResolution, self.conflict_resolution, "conflict_resolution"),
        )
        interval = self.sync_interval_minutes
        if isinstance(interval, bool) or not isinstance(interval, (int, float)):
            raise ConfigurationError("sync_interval_minutes must be a number of minutes")
        if not math.isfinite(interval) or not (
            MIN_SYNC_INTERVAL_MINUTES <= interval <= MAX_SYNC_INTERVAL_MINUTES
        ):
            raise ConfigurationError(
                f"sync_interval_minutes must be between {MIN_SYNC_INTERVAL_MINUTES} and "
                f"{MAX_SYNC_INTERVAL_MINUTES}, got {interval!r}"
            )
        if self.webhook_url is not None:
            put(self, "webhook_url", normalize_sync_url(self.webhook_url))
        put(self, "webhook_secret", _optional_text(self.webhook_secret, "webhook_secret"))
        if self.webhook_secret is not None and not secret_list(
            self.webhook_secret, source="webhook_secret"
        ):
            raise ConfigurationError("webhook_secret must not be empty; omit it instead")
        env = _optional_text(self.webhook_secret_env, "webhook_secret_env")
        if env is not None and (not env or not all(c.isalnum() or c == "_" for c in env)):
            raise ConfigurationError(
                f"webhook_secret_env must name an environment variable, got {env!r}"
            )
        page = self.page_size
        if isinstance(page, bool) or not isinstance(page, int) or not 1 <= page <= _MAX_PAGE_SIZE:
            raise ConfigurationError(f"page_size must be a whole number from 1 to {_MAX_PAGE_SIZE}")
        timeout = self.request_timeout
        if (
            isinstance(timeout, bool)
            or not isinstance(timeout, (int, float))
            or not math.isfinite(timeout)
            or not 0 < timeout <= 600
        ):
            raise ConfigurationError("request_timeout must be a number of seconds, above 0 to 600")

    # --- derived -----------------------------------------------------------------------
    @property
    def name(self) -> str:
        """The peer's name (``target_bot_name``)."""
        return self.target_bot_name

    @property
    def kinds(self) -> tuple[str, ...]:
        """The store record kinds exchanged with this peer."""
        kinds: list[str] = []
        if self.sync_payment_stages:
            kinds.append("payment_stage")
        if self.sync_promo_codes:
            kinds += ["promo_code", "promo_usage"]
        if self.sync_templates:
            kinds.append("template")
        if self.sync_settings:
            kinds.append("setting")
        return tuple(kinds)

    @property
    def sync_interval_seconds(self) -> float:
        return float(self.sync_interval_minutes) * 60.0

    def secrets(self) -> tuple[str, ...]:
        """This peer's own secrets, the signing one first: ``webhook_secret``, else
        ``$webhook_secret_env``, each split on whitespace; empty when it has neither.

        ``NEONPAY_SYNC_SECRET`` is not looked at: it is no secret of this peer's own (the
        transport falls back on it, see :meth:`HttpTransport.from_config`).

        Raises:
            ConfigurationError: ``webhook_secret_env`` names an unset variable, or a
                secret is unusable.
        """
        return resolve_secrets(
            self.webhook_secret,
            env=self.webhook_secret_env,
            fallback_env=None,
            insecure=True,
            who=f"peer {self.target_bot_name!r}",
        )

    def secret(self) -> str | None:
        """The signing secret: the first of :meth:`secrets`, or None.

        Raises:
            ConfigurationError: ``webhook_secret_env`` names an unset variable.
        """
        found = self.secrets()
        return found[0] if found else None

    def has_secret(self) -> bool:
        """Whether this peer has a usable secret of its own right now (``webhook_secret``,
        or ``webhook_secret_env`` naming a variable that is set); never raises."""
        try:
            return bool(self.secrets())
        except ConfigurationError:
            return False

    def require_name(self) -> str:
        """The peer's name. Raises ConfigurationError when it is empty."""
        if not self.target_bot_name:
            raise ConfigurationError("target_bot_name is required: give the peer a unique name")
        return self.target_bot_name

    # --- persistence ----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Everything needed to rebuild the config, secrets included (for the bot's own
        store only; use :meth:`to_public_dict` for display)."""
        return {
            "target_bot_token": self.target_bot_token,
            "target_bot_name": self.target_bot_name,
            "sync_payment_stages": self.sync_payment_stages,
            "sync_promo_codes": self.sync_promo_codes,
            "sync_templates": self.sync_templates,
            "sync_settings": self.sync_settings,
            "sync_analytics": self.sync_analytics,
            "direction": self.direction.value,
            "conflict_resolution": self.conflict_resolution.value,
            "auto_sync": self.auto_sync,
            "sync_interval_minutes": self.sync_interval_minutes,
            "webhook_url": self.webhook_url,
            "webhook_secret": self.webhook_secret,
            "webhook_secret_env": self.webhook_secret_env,
            "page_size": self.page_size,
            "request_timeout": self.request_timeout,
            "insecure": self.insecure,
        }

    def to_public_dict(self) -> dict[str, Any]:
        """The config for display: the token masked, the secret left out.

        ``has_secret`` says whether the peer has a usable secret of its own right now
        (see :meth:`has_secret`): false for a ``webhook_secret_env`` that is not set here.
        """
        data = self.to_dict()
        data["target_bot_token"] = mask_token(self.target_bot_token)
        del data["webhook_secret"]
        if self.webhook_secret or self.webhook_secret_env:
            data["has_secret"] = self.has_secret()
        else:  # a peer without its own secret signs with $NEONPAY_SYNC_SECRET when it syncs
            data["has_secret"] = not self.insecure and bool(
                os.environ.get("NEONPAY_SYNC_SECRET", "").strip()
            )
        data["kinds"] = list(self.kinds)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BotSyncConfig:
        """Rebuild from :meth:`to_dict` output; unknown keys are ignored.

        Raises:
            ConfigurationError: a value that does not pass the checks.
        """
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})

    def __repr__(self) -> str:
        secret = "set" if self.webhook_secret else ("env" if self.webhook_secret_env else "none")
        return (
            f"BotSyncConfig(name={self.target_bot_name!r}, url={self.webhook_url!r}, "
            f"token={mask_token(self.target_bot_token)!r}, direction={self.direction.value}, "
            f"conflict_resolution={self.conflict_resolution.value}, kinds={list(self.kinds)}, "
            f"auto_sync={self.auto_sync}, interval={self.sync_interval_minutes}min, "
            f"secret={secret})"
        )

    __str__ = __repr__
