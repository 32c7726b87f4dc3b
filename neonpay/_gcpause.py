"""Pausing the cyclic garbage collector while a batch of records is in flight.

Receiving a page makes thousands of small objects (a few per record) that all live until
the page is written, then die together. While they live, the collector's young
collections keep finding them alive and promote them, until a full collection walks
every object of the process (tens of milliseconds in a large process) only to find them
gone. None of them form cycles: reference counting frees them all. So the collector is
paused while a page is handled and resumed at once after; the objects are freed before
it looks again.

The pause is shared: nested or concurrent pauses (threads) resume collection when the
last one ends, and never turn on a collector that was off when the first one began.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["collection_paused"]

_lock = threading.Lock()
_depth = 0
_resume = False


@contextmanager
def collection_paused() -> Iterator[None]:
    """Within this block the cyclic garbage collector does not run (reference counting
    still frees everything); it runs again when the last such block ends."""
    global _depth, _resume
    with _lock:
        if _depth == 0:
            _resume = gc.isenabled()
            if _resume:
                gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _resume:
                gc.enable()
