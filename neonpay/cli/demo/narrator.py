"""The demo's voice: numbered steps and indented lines for people, and the same steps kept
for the ``--json`` report."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from neonpay.cli.output import Column, Output

__all__ = ["Narrator"]


@dataclass
class Narrator:
    """Prints the story through ``out`` (on stderr in JSON mode) and records it."""

    out: Output
    total_steps: int
    steps: list[dict[str, Any]] = field(default_factory=list)

    def step(self, title: str) -> None:
        """Start a numbered step."""
        self.steps.append({"title": title, "lines": []})
        self.out.line()
        self.out.heading(f"[{len(self.steps)}/{self.total_steps}] {title}")

    def say(self, text: str, *, style: str | None = None) -> None:
        """One indented line of the current step."""
        if self.steps:
            self.steps[-1]["lines"].append(text)
        self.out.line(f"  {text}", style=style)

    def good(self, text: str) -> None:
        self.say(text, style="green")

    def bad(self, text: str) -> None:
        self.say(text, style="bold red")

    def table(
        self,
        columns: Sequence[Column],
        rows: Sequence[Mapping[str, Any]],
        *,
        title: str | None = None,
    ) -> None:
        """A table inside the current step (kept in the report as rows)."""
        if self.steps:
            self.steps[-1].setdefault("tables", []).append(
                {"title": title, "rows": [dict(r) for r in rows]}
            )
        self.out.table(columns, rows, title=title)
