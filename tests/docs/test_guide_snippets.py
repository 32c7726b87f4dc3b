"""Every python and bash block of the home page and the guide runs, page by page, in order.

Each page runs in a world of its own (see ``environment.py``); its snippets check
themselves with ``assert`` where the page states a result, and the checks below look at
what the command-line blocks printed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from neonpay.sync.credentials import new_secret

from .environment import BlockRun, PageRun
from .markdown import Snippet, heading_keys
from .pages import DOCS, Pages, page_snippets, pages_fixture

#: The pages, in reading order.
GUIDE = (
    "index.md",
    "guide/payments.md",
    "guide/catalog.md",
    "guide/sync.md",
    "guide/conflicts.md",
    "guide/security.md",
    "guide/postgres.md",
    "guide/emulator.md",
    "guide/migration.md",
)
#: The pair secrets the franchise example of guide/security.md has its reader export
#: (``export HQ_F1_SYNC_SECRET=$(neonpay sync new-secret)`` ...) on the owners' machines.
FRANCHISE_SECRETS = ("HQ_F1_SYNC_SECRET", "HQ_F2_SYNC_SECRET", "F1_F2_SYNC_SECRET")


def franchise_secrets(page: PageRun) -> None:
    for name in FRANCHISE_SECRETS:
        page.setenv(name, new_secret())


SNIPPETS = page_snippets(*(doc for doc in GUIDE if (DOCS / doc).exists()))
pages = pages_fixture({"guide/security.md": franchise_secrets})

Check = Callable[[PageRun, BlockRun], Awaitable[None]]


async def listed_conflict(page: PageRun, block: BlockRun) -> None:
    shown = block.commands[0].stdout
    assert "premium" in shown
    assert "store-2" in shown


async def listed_peer(page: PageRun, block: BlockRun) -> None:
    listing = block.commands[1].stdout
    assert "store-3" in listing
    assert all(token not in listing for token in page.subs.tokens.values())


CHECKS: dict[tuple[str, str, int], Check] = {
    ("guide/conflicts.md", "Ask the user", 2): listed_conflict,
    ("guide/sync.md", "Running it for real", 2): listed_peer,
}
KEYS = heading_keys(SNIPPETS)


def test_every_page_of_the_guide_exists() -> None:
    missing = [doc for doc in GUIDE if not (DOCS / doc).exists()]
    assert missing == []


def test_every_check_has_its_block() -> None:
    assert sorted(set(CHECKS) - set(KEYS)) == []


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize(
    ("snippet", "key"), list(zip(SNIPPETS, KEYS, strict=True)), ids=[s.test_id for s in SNIPPETS]
)
async def test_guide_snippet(pages: Pages, snippet: Snippet, key: tuple[str, str, int]) -> None:
    page = await pages.get(snippet)
    block = await page.run(snippet)
    check = CHECKS.get(key)
    if check is not None:
        await check(page, block)
