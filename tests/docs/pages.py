"""The pages whose snippets run, and one :class:`PageRun` at a time per test module."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path

import pytest
import pytest_asyncio

from .environment import PageRun
from .markdown import Snippet, extract_snippets

__all__ = ["DOCS", "Pages", "page_snippets", "pages_fixture"]

DOCS = Path(__file__).resolve().parents[2] / "docs"


def page_snippets(*docs: str) -> list[Snippet]:
    """The runnable blocks of the named pages (relative to docs/), page by page."""
    found: list[Snippet] = []
    for doc in docs:
        found += extract_snippets(DOCS / doc, doc)
    return found


class Pages:
    """Hands out the :class:`PageRun` of a page; a new page closes the previous one."""

    def __init__(self, root: Path, setups: Mapping[str, Callable[[PageRun], None]]) -> None:
        self.root = root
        self.setups = setups
        self.current: PageRun | None = None

    async def get(self, snippet: Snippet) -> PageRun:
        if self.current is not None and self.current.doc != snippet.doc:
            await self.current.close()
            self.current = None
        if self.current is None:
            name = Path(snippet.doc).with_suffix("").as_posix().replace("/", "-")
            page = PageRun(
                snippet.doc,
                page_snippets(snippet.doc),
                self.root / name,
                setup=self.setups.get(snippet.doc),
            )
            self.current = page
        return self.current

    async def close(self) -> None:
        if self.current is not None:
            await self.current.close()
            self.current = None


def pages_fixture(setups: Mapping[str, Callable[[PageRun], None]] | None = None) -> object:
    """A module-scoped ``pages`` fixture (one event loop for the module); ``setups``
    prepares a page's world (e.g. what its peers already hold) before its first block."""

    @pytest_asyncio.fixture(scope="module", loop_scope="module")
    async def pages(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Pages]:
        registry = Pages(tmp_path_factory.mktemp("docs"), setups or {})
        try:
            yield registry
        finally:
            await registry.close()

    return pages
