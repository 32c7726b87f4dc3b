"""What the command line prints: tables for people, JSON for scripts, one-line errors.

Tables are drawn with ``rich`` when it is installed and as plain aligned text otherwise.
Colours are used only when standard output is a terminal and ``NO_COLOR`` is not set.
In ``--json`` mode standard output carries exactly one JSON document; everything meant
for people (progress, notes) goes to standard error so that a pipe stays parseable.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from neonpay.errors import mask_secrets, mask_token

__all__ = [
    "Column",
    "Output",
    "colour_wanted",
    "is_terminal",
    "mask_token",
    "masked",
    "render_plain_table",
]

#: A column of a table: (JSON key of the row, header shown to people).
Column = tuple[str, str]


def is_terminal(stream: TextIO) -> bool:
    """Whether ``stream`` is an interactive terminal."""
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


def colour_wanted(stream: TextIO, *, disabled: bool = False) -> bool:
    """Whether to colour ``stream``: a terminal, no ``NO_COLOR``, not turned off."""
    if disabled or os.environ.get("NO_COLOR"):
        return False
    return is_terminal(stream)


def cell_text(value: Any) -> str:
    """How one value looks in a table cell."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.1f}"
    if isinstance(value, (list, tuple)):
        return ", ".join(cell_text(v) for v in value) or "-"
    if isinstance(value, Mapping):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def render_plain_table(
    columns: Sequence[Column], rows: Sequence[Mapping[str, Any]], *, title: str | None = None
) -> str:
    """A table as aligned plain text (the fallback when ``rich`` is missing)."""
    headers = [header for _, header in columns]
    body = [[cell_text(row.get(key)) for key, _ in columns] for row in rows]
    widths = [len(h) for h in headers]
    for line in body:
        widths = [max(w, len(cell)) for w, cell in zip(widths, line, strict=True)]
    lines = []
    if title:
        lines.append(title)
    lines.append("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    lines.append("  ".join("-" * w for w in widths))
    for line in body:
        lines.append("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())
    return "\n".join(lines)


class Output:
    """The printer of one command run.

    Args:
        json_mode: print JSON documents on stdout, and people's text on stderr.
        colour: colour and style (see :func:`colour_wanted`).
        terminal: stdout is a terminal: tables are drawn with rich (when installed);
            otherwise they are plain aligned text that is easy to grep and diff.
        stdout, stderr: the streams (the process's own by default).
    """

    def __init__(
        self,
        *,
        json_mode: bool = False,
        colour: bool = False,
        terminal: bool = False,
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
    ) -> None:
        self.json_mode = json_mode
        self.colour = colour
        self.stdout = stdout if stdout is not None else sys.stdout
        self.stderr = stderr if stderr is not None else sys.stderr
        self._console: Any = None
        if terminal:
            try:
                from rich.console import Console
            except ImportError:  # pragma: no cover - rich comes with the sync extra
                pass
            else:
                self._console = Console(
                    file=self.stdout,
                    color_system="auto" if colour else None,
                    no_color=not colour,
                    highlight=False,
                    emoji=False,
                    markup=False,
                )

    @property
    def people(self) -> TextIO:
        """Where text for people goes: stdout, or stderr in JSON mode."""
        return self.stderr if self.json_mode else self.stdout

    # --- text -------------------------------------------------------------------------
    def line(self, text: str = "", *, style: str | None = None) -> None:
        """One line for people (tokens masked)."""
        text = mask_secrets(text)
        if self._console is not None and not self.json_mode and style and self.colour:
            from rich.text import Text

            self._console.print(Text(text, style=style), soft_wrap=True)
            return
        print(text, file=self.people, flush=True)

    def heading(self, text: str) -> None:
        """A section title."""
        self.line(text, style="bold cyan")

    def success(self, text: str) -> None:
        self.line(text, style="green")

    def note(self, text: str) -> None:
        """A note for people on stderr (stdout stays for the command's own output)."""
        print(f"note: {mask_secrets(text)}", file=self.stderr, flush=True)

    def warn(self, text: str) -> None:
        """A warning on stderr."""
        print(f"warning: {mask_secrets(text)}", file=self.stderr, flush=True)

    def error(self, text: str) -> None:
        """A one-line error on stderr."""
        message = " ".join(mask_secrets(text).split())
        print(f"error: {message}", file=self.stderr, flush=True)

    # --- data -------------------------------------------------------------------------
    def json(self, data: Any) -> None:
        """One JSON document on stdout (sorted keys, two-space indent)."""
        text = json.dumps(data, ensure_ascii=False, sort_keys=True, indent=2, default=_jsonable)
        print(text, file=self.stdout, flush=True)

    def table(
        self,
        columns: Sequence[Column],
        rows: Sequence[Mapping[str, Any]],
        *,
        title: str | None = None,
        empty: str = "(none)",
    ) -> None:
        """A table for people; ``empty`` is printed when there are no rows."""
        if title and not rows:
            self.line(f"{title}: {empty}")
            return
        if not rows:
            self.line(empty)
            return
        if self._console is None or self.json_mode:
            print(render_plain_table(columns, rows, title=title), file=self.people, flush=True)
            return
        from rich import box
        from rich.table import Table
        from rich.text import Text

        table = Table(
            title=title,
            title_justify="left",
            header_style="bold" if self.colour else "",
            box=box.ROUNDED,
        )
        for _, header in columns:
            table.add_column(header, overflow="fold")
        for row in rows:
            table.add_row(*(Text(cell_text(row.get(key))) for key, _ in columns))
        self._console.print(table)

    def listing(
        self,
        data: Any,
        columns: Sequence[Column],
        rows: Sequence[Mapping[str, Any]],
        *,
        title: str | None = None,
        empty: str = "(none)",
    ) -> None:
        """``data`` as JSON in JSON mode, else ``rows`` as a table."""
        if self.json_mode:
            self.json(data)
        else:
            self.table(columns, rows, title=title, empty=empty)


def _jsonable(value: Any) -> Any:
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if hasattr(value, "value") and not callable(value.value):  # enums
        return value.value
    return str(value)


def masked(token: str | None) -> str:
    """A bot token or secret as it may be shown (``123456:AB…yz``; '-' when absent)."""
    return mask_token(token) or "-"
