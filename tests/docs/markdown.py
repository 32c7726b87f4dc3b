"""Code blocks of a Markdown page: language, source, line and the heading they sit under."""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Snippet", "extract_snippets", "heading_keys", "slug"]

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")
_HEADING = re.compile(r"^(?P<marks>#{1,6})\s+(?P<text>.+?)\s*#*\s*$")
#: The languages that run; other fences (text, console, json, ...) are left alone.
RUNNABLE = ("python", "bash")


@dataclass(frozen=True)
class Snippet:
    """One fenced code block of a page."""

    doc: str  # the page, relative to docs/ (e.g. "spec/multi-bot-sync.md")
    index: int  # position among the page's runnable blocks, from 0
    lang: str
    source: str  # dedented, as a reader would copy it
    line: int  # 1-based line of the opening fence
    heading: str  # the text of the nearest heading above, emojis and marks stripped

    @property
    def test_id(self) -> str:
        page = Path(self.doc).with_suffix("").as_posix().replace("/", "-")
        return f"{page}-{self.index:02d}-{slug(self.heading)}-{self.lang}"

    @property
    def filename(self) -> str:
        """A pseudo file name for compiled code, so tracebacks point at the page."""
        return f"<docs/{self.doc}:{self.line}>"


def slug(text: str) -> str:
    """``"Manual Synchronization"`` -> ``"manual-synchronization"``."""
    words = re.findall(r"[A-Za-z0-9]+", text.lower())
    return "-".join(words) or "top"


def clean_heading(text: str) -> str:
    """A heading's words without emojis, marks or surrounding spaces."""
    kept = "".join(c for c in text if c.isascii())
    return re.sub(r"\s+", " ", kept).strip(" .:")


def extract_snippets(path: Path, doc: str) -> list[Snippet]:
    """Every ``python`` and ``bash`` block of the page at ``path``, in order.

    Raises:
        ValueError: a fence is never closed.
    """
    lines = path.read_text(encoding="utf-8").splitlines()
    snippets: list[Snippet] = []
    heading = ""
    i = 0
    while i < len(lines):
        fence = _FENCE.match(lines[i])
        if fence is None:
            match = _HEADING.match(lines[i])
            if match:
                heading = clean_heading(match.group("text"))
            i += 1
            continue
        start = i
        marker = fence.group("fence")
        lang = fence.group("info").strip().split(" ")[0].lower()
        body: list[str] = []
        i += 1
        while i < len(lines) and lines[i].strip() != marker:
            body.append(lines[i])
            i += 1
        if i >= len(lines):
            raise ValueError(f"{doc}:{start + 1}: the code block is never closed")
        i += 1
        if lang in RUNNABLE:
            source = textwrap.dedent("\n".join(body)).strip("\n") + "\n"
            snippets.append(Snippet(doc, len(snippets), lang, source, start + 1, heading))
    return snippets


def heading_keys(snippets: list[Snippet]) -> list[tuple[str, str, int]]:
    """``(page, heading, n)`` for each snippet: the n-th block under that heading."""
    seen: dict[tuple[str, str], int] = {}
    keys = []
    for snippet in snippets:
        ordinal = seen.get((snippet.doc, snippet.heading), 0)
        seen[(snippet.doc, snippet.heading)] = ordinal + 1
        keys.append((snippet.doc, snippet.heading, ordinal))
    return keys
