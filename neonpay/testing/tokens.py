"""Bot token parsing and masking.

The emulator never logs or echoes a full token: :func:`mask_token` keeps the bot id and
two characters at each end of the secret part (``123456:AB…yz``).
"""

from __future__ import annotations

import re

__all__ = ["TOKEN_PATTERN", "mask_token", "parse_token"]

#: ``<bot id>:<secret>``. Real secrets are 35 characters; any 1-64 of ``A-Za-z0-9_-`` are
#: accepted here, so test tokens such as ``123456789:anything`` work.
TOKEN_PATTERN = re.compile(r"(\d{1,20}):([A-Za-z0-9_-]{1,64})")


def parse_token(token: str) -> int | None:
    """Return the bot id encoded in ``token``, or ``None`` if the token is malformed."""
    match = TOKEN_PATTERN.fullmatch(token)
    if match is None:
        return None
    bot_id = int(match.group(1))
    return bot_id if bot_id > 0 else None


def mask_token(token: str) -> str:
    """Mask a bot token for logs: ``123456:ABCDEF…`` becomes ``123456:AB…yz``."""
    bot_part, sep, secret = token.partition(":")
    if not sep:
        return "…" if len(token) <= 4 else f"{token[:2]}…{token[-2:]}"
    if len(secret) <= 4:
        return f"{bot_part}:…"
    return f"{bot_part}:{secret[:2]}…{secret[-2:]}"
