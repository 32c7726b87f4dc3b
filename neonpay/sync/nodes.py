"""Node ids: what one looks like, checked fast.

A node id is 1-64 ASCII letters, digits, ``-`` or ``_``. Every record state a node
receives names a few node ids (its version vector, its origin), and a network has only
a handful, so the ids already seen to be well formed are remembered: a set lookup
instead of a regex match per record.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["NODE_ID_RE", "is_node_id"]

#: The exact form of a node id.
NODE_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}", re.ASCII)

_KNOWN: set[str] = set()
#: At most this many ids are remembered, so a peer that sends ever new ids only costs
#: the regex, never memory.
_KNOWN_MAX = 4096


def is_node_id(value: Any) -> bool:
    """Whether ``value`` is a node id (a string of 1-64 of ``A-Z a-z 0-9 - _``)."""
    if type(value) is not str:
        return isinstance(value, str) and NODE_ID_RE.fullmatch(value) is not None
    if value in _KNOWN:
        return True
    if NODE_ID_RE.fullmatch(value) is None:
        return False
    if len(_KNOWN) < _KNOWN_MAX:
        _KNOWN.add(value)
    return True
