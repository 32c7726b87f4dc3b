"""Library error messages in the command line's terms: flags, not Python API names.

The library speaks to Python callers (``pass webhook_secret=...``, ``target_bot_name is
required``, ``add it with add_bot()``); someone at a terminal needs the flag or command
that fixes it. :func:`in_cli_terms` rewrites the API names and hints it knows and leaves
everything else as the library wrote it, so a library message it does not know still
reaches the user unchanged.
"""

from __future__ import annotations

import re

__all__ = ["FLAG_OF_FIELD", "in_cli_terms"]

#: ``BotSyncConfig`` fields and the ``neonpay sync add-bot`` flag that sets each.
FLAG_OF_FIELD = {
    "target_bot_token": "--token",
    "target_bot_name": "--name",
    "webhook_url": "--webhook",
    "sync_interval_minutes": "--interval",
    "webhook_secret_env": "--secret-env",
    "webhook_secret": "--secret",
    "conflict_resolution": "--conflict",
}

_FIELD = re.compile(r"\b(" + "|".join(map(re.escape, FLAG_OF_FIELD)) + r")\b")

# "<who> has no webhook secret: pass webhook_secret=..., or set the X environment
# variable, or pass insecure=True for a local experiment (...)"
_NO_SECRET = re.compile(
    r"(?P<who>.*?) has no webhook secret: "
    r"pass webhook_secret=\.\.\., or set the (?P<env>\w+) environment variable, "
    r"or pass insecure=True for a local experiment(?: \([^)]*\))?"
)
_SERVER_HINT = (
    "{who} has no secret: set {env} (or give another variable with "
    "--secret-env VAR), or pass --insecure for a local experiment (requests are then "
    "neither signed nor checked)"
)
_PEER_HINT = (
    "{who} has no secret: set {env} where you sync, or add the bot again with "
    "'neonpay sync add-bot ... --secret-env VAR'"
)

# "no sync peer named 'X'; add it with add_bot()": one wording with the CLI's own
# "no bot named 'X' (see 'neonpay sync list-bots')".
_NO_PEER = re.compile(
    r"no sync peer named ('(?:[^'\\]|\\.)*'|\"[^\"]*\")(?:; add it with add_bot\(\))?"
)

#: Fixed hints of the Python API and what to say instead.
_HINTS = {
    "add it with add_bot()": "see 'neonpay sync list-bots'",
}


def in_cli_terms(message: str) -> str:
    """``message`` with the Python API names and hints it names replaced by flags and
    commands (``sync_interval_minutes`` → ``--interval``)."""

    def no_secret(match: re.Match[str]) -> str:
        who = match["who"]
        template = _SERVER_HINT if who.endswith("the sync server") else _PEER_HINT
        return template.format(who=who, env=match["env"])

    text = _NO_SECRET.sub(no_secret, message)
    text = _NO_PEER.sub(r"no bot named \1 (see 'neonpay sync list-bots')", text)
    for hint, replacement in _HINTS.items():
        text = text.replace(hint, replacement)
    return _FIELD.sub(lambda match: FLAG_OF_FIELD[match[1]], text)
