"""Figures from samples: median/min/max, percentiles, and peak memory of a process.

Memory is read from ``/proc/<pid>/status`` (Linux): ``VmHWM`` is the peak resident set
size of the process since it started, ``VmRSS`` the current one.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Stat", "current_rss", "peak_rss", "percentile", "summarize"]


@dataclass(frozen=True)
class Stat:
    """A figure measured several times: median, min, max and how many samples."""

    median: float
    min: float
    max: float
    n: int

    def to_json(self) -> dict[str, float | int]:
        return {"median": self.median, "min": self.min, "max": self.max, "n": self.n}


def summarize(samples: Sequence[float]) -> Stat:
    """The median, min and max of ``samples``.

    Raises:
        ValueError: no samples.
    """
    if not samples:
        raise ValueError("no samples to summarize")
    values = [float(x) for x in samples]
    return Stat(statistics.median(values), min(values), max(values), len(values))


def percentile(samples: Sequence[float], q: float) -> float:
    """The nearest-rank ``q``-th percentile (0 < q <= 100) of ``samples``.

    Raises:
        ValueError: no samples, or q out of range.
    """
    if not samples:
        raise ValueError("no samples")
    if not 0 < q <= 100:
        raise ValueError(f"percentile must be in (0, 100]: {q}")
    ordered = sorted(samples)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return float(ordered[rank - 1])


def _status_field(pid: int, name: str) -> int:
    """A ``kB`` field of ``/proc/<pid>/status`` in bytes (0 when unavailable)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith(name + ":"):
            parts = line.split()
            return int(parts[1]) * 1024
    return 0


def peak_rss(pid: int) -> int:
    """Peak resident memory of process ``pid`` in bytes (0 if it cannot be read)."""
    return _status_field(pid, "VmHWM")


def current_rss(pid: int) -> int:
    """Current resident memory of process ``pid`` in bytes (0 if it cannot be read)."""
    return _status_field(pid, "VmRSS")
