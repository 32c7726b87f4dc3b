"""Results of a benchmark run: the figures, the targets, the table and the JSON file."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from bench.measure import Stat, summarize

__all__ = ["Result", "Target", "format_table", "format_targets", "write_json"]

#: The status of a target: met, missed, or not measured in this run.
PASS, MISS, NOT_RUN = "PASS", "MISS", "N/A"


@dataclass
class Result:
    """The figures of one benchmark case (each a :class:`Stat` over the repeats).

    Figure names carry their unit: ``time_s``, ``bytes_up``/``bytes_down``/``bytes``
    (on the wire, at the proxy), ``requests``, ``rss_<process>_mb`` (peak resident
    memory), ``latency_ms``. ``ratio`` is the median time over the floor's median time.
    """

    bench: str
    case: str
    figures: dict[str, Stat] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    ratio: float | None = None
    ratio_to: str = ""
    notes: list[str] = field(default_factory=list)

    def put(self, name: str, samples: Sequence[float]) -> None:
        """Summarize ``samples`` as the figure ``name`` (nothing when there are none)."""
        if samples:
            self.figures[name] = summarize(samples)

    def median(self, name: str) -> float | None:
        stat = self.figures.get(name)
        return stat.median if stat else None

    def to_json(self) -> dict[str, Any]:
        return {
            "bench": self.bench,
            "case": self.case,
            "params": self.params,
            "figures": {name: stat.to_json() for name, stat in self.figures.items()},
            "ratio_to_floor": self.ratio,
            "floor_case": self.ratio_to or None,
            "notes": self.notes,
        }


@dataclass(frozen=True)
class Target:
    """One target of the issue, checked against this run's figures."""

    name: str
    limit: str
    measured: str
    status: str  # PASS, MISS or N/A

    def to_json(self) -> dict[str, str]:
        return {
            "name": self.name,
            "limit": self.limit,
            "measured": self.measured,
            "status": self.status,
        }


def _seconds(stat: Stat | None) -> str:
    if stat is None:
        return ""
    return f"{_ms(stat.median)} ({_ms(stat.min)}-{_ms(stat.max)})"


def _ms(seconds: float) -> str:
    ms = seconds * 1000
    if ms >= 100:
        return f"{ms:.0f}"
    if ms >= 10:
        return f"{ms:.1f}"
    return f"{ms:.2f}"


def _bytes(value: float | None) -> str:
    if value is None:
        return ""
    if value >= 1024 * 1024:
        return f"{value / 1024 / 1024:.2f} MB"
    if value >= 10 * 1024:
        return f"{value / 1024:.1f} KB"
    return f"{value:.0f} B"


def _row(result: Result) -> list[str]:
    fig = result.figures
    time_text = _seconds(fig.get("time_s"))
    if "latency_ms" in fig:
        lat = fig["latency_ms"]
        p99 = fig.get("p99_ms")
        time_text = f"p50 {lat.median:.1f} p99 {p99.median if p99 else float('nan'):.1f}"
    if "max_stall_ms" in fig:
        time_text = f"stall {fig['max_stall_ms'].max:.1f}"
        answer = fig.get("pre_checkout_answer_ms")
        if answer is not None:
            time_text += f", pre-checkout {answer.median:.1f} (max {answer.max:.1f})"
    up, down = result.median("bytes_up"), result.median("bytes_down")
    wire = f"{_bytes(up)} / {_bytes(down)}" if up is not None and down is not None else ""
    requests = result.median("requests")
    rss = [
        f"{name[4:-3]} {stat.median:.0f}"
        for name, stat in fig.items()
        if name.startswith("rss_") and name.endswith("_mb")
    ]
    return [
        result.bench,
        result.case,
        time_text,
        f"{result.ratio:.2f}x" if result.ratio is not None else "",
        wire,
        f"{requests:.0f}" if requests is not None else "",
        ", ".join(rss),
    ]


_HEADER = [
    "benchmark",
    "case",
    "time ms: median (min-max)",
    "x floor",
    "wire up / down",
    "requests",
    "peak RSS MB",
]


def _grid(header: Sequence[str], rows: Iterable[Sequence[str]], *, markdown: bool) -> str:
    rows = [list(header), *[list(r) for r in rows]]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = []
    for index, row in enumerate(rows):
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row)]
        lines.append(("| " + " | ".join(cells) + " |") if markdown else "  ".join(cells))
        if index == 0:
            dashes = ["-" * w for w in widths]
            lines.append(("| " + " | ".join(dashes) + " |") if markdown else "  ".join(dashes))
    return "\n".join(line.rstrip() for line in lines)


def format_table(results: Sequence[Result], *, markdown: bool = False) -> str:
    """The figures as a text (or Markdown) table, one row per case."""
    return _grid(_HEADER, [_row(r) for r in results], markdown=markdown)


def format_targets(targets: Sequence[Target], *, markdown: bool = False) -> str:
    """The targets with PASS / MISS / N/A."""
    return _grid(
        ["target", "limit", "measured", "status"],
        [[t.name, t.limit, t.measured, t.status] for t in targets],
        markdown=markdown,
    )


def write_json(
    path: Path,
    *,
    settings: Mapping[str, Any],
    machine: Mapping[str, Any],
    results: Sequence[Result],
    targets: Sequence[Target],
    skipped: Sequence[tuple[str, str]],
    seconds: float,
) -> None:
    """Write the run to ``path`` (figures, targets, machine facts, git revision)."""
    document = {
        "generated_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "run_seconds": round(seconds, 1),
        "settings": dict(settings),
        "machine": dict(machine),
        "results": [r.to_json() for r in results],
        "targets": [t.to_json() for t in targets],
        "skipped": [{"bench": name, "reason": reason} for name, reason in skipped],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n")
