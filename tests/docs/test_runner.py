"""The snippet runner itself: what it extracts, what it swaps, and what it leaves alone."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .markdown import extract_snippets, heading_keys
from .pages import DOCS
from .shell import ShellError, commands, run_bash
from .substitution import Substitutions, environment_names, fake_token

TOKEN_RE = re.compile(r"\d{8,10}:[A-Za-z0-9_-]{35}")


def subs() -> Substitutions:
    ports = iter(range(40001, 40100))
    return Substitutions(
        sync_base=lambda host: f"http://127.0.0.1:{39000 + len(host)}/sync",
        free_port=lambda: next(ports),
        postgres_url="postgresql://u:p@127.0.0.1:5432/test?options=x",
    )


def test_extraction_keeps_order_headings_and_indented_fences(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "# Title\n\n## 🔧 Setup\n\n```python\nx = 1\n```\n\n1. Step:\n   ```bash\n"
        "   neonpay sync list-bots\n   ```\n\n```json\n{}\n```\n\n### Next\n\n```python\n"
        "# not a heading\ny = x\n```\n",
        encoding="utf-8",
    )
    found = extract_snippets(page, "page.md")
    assert [(s.lang, s.heading, s.source) for s in found] == [
        ("python", "Setup", "x = 1\n"),
        ("bash", "Setup", "neonpay sync list-bots\n"),
        ("python", "Next", "# not a heading\ny = x\n"),
    ]
    assert [key[2] for key in heading_keys(found)] == [0, 1, 0]
    assert found[1].test_id == "page-01-setup-bash"


def test_an_unclosed_fence_is_an_error(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("```python\nx = 1\n", encoding="utf-8")
    with pytest.raises(ValueError, match="never closed"):
        extract_snippets(page, "page.md")


def test_tokens_are_swapped_but_environment_names_are_not() -> None:
    s = subs()
    source = (
        'BotSyncConfig(target_bot_token="STORE_BOT_TOKEN")\n'
        'os.getenv("STORE_BOT_TOKEN")\n'
        "BotSyncConfig(target_bot_token='STORE_BOT_TOKEN')\n"
    )
    out = s.apply(source, "python")
    token = s.tokens["STORE_BOT_TOKEN"]
    assert TOKEN_RE.fullmatch(token)
    assert out.splitlines() == [
        f'BotSyncConfig(target_bot_token="{token}")',
        'os.getenv("STORE_BOT_TOKEN")',
        f"BotSyncConfig(target_bot_token='{token}')",
    ]
    assert environment_names(source) == ["STORE_BOT_TOKEN"]
    bash = s.apply('neonpay sync add-bot --token "BOT_TOKEN" --name x', "bash")
    assert bash == f'neonpay sync add-bot --token "{s.tokens["BOT_TOKEN"]}" --name x'


def test_sync_urls_hosts_and_ports_are_swapped_consistently() -> None:
    s = subs()
    source = (
        'webhook_url="https://store-bot.example.com/sync"\n'
        'photo_url="https://example.com/stickers.png"\n'
        'SyncServer(bot, host="0.0.0.0", port=8082)\n'
        'webhook_url="http://127.0.0.1:8082/sync"\n'
        'await run_sync_server(bot, host="0.0.0.0", port=8080)\n'
    )
    out = s.apply(source, "python").splitlines()
    assert out[0] == f'webhook_url="http://127.0.0.1:{39000 + len("store-bot.example.com")}/sync"'
    assert out[1] == 'photo_url="https://example.com/stickers.png"'  # not a sync URL
    port = s.ports[8082]
    assert out[2] == f'SyncServer(bot, host="127.0.0.1", port={port})'
    assert out[3] == f'webhook_url="http://127.0.0.1:{port}/sync"'
    assert out[4] == f'await run_sync_server(bot, host="127.0.0.1", port={s.ports[8080]})'
    assert s.ports[8080] != port


def test_remote_postgres_urls_become_the_test_database() -> None:
    s = subs()
    out = s.apply(
        'create_neonpay(storage="postgresql://neonpay:secret@db.example.com:5432/shop")', "python"
    )
    assert out == 'create_neonpay(storage="postgresql://u:p@127.0.0.1:5432/test?options=x")'


def test_fake_tokens_are_stable_and_distinct() -> None:
    assert fake_token("A_TOKEN", 1) == fake_token("A_TOKEN", 1)
    assert fake_token("A_TOKEN", 1) != fake_token("B_TOKEN", 2)


def test_bash_commands_are_split_and_unknown_ones_refused(tmp_path: Path) -> None:
    source = 'python3 -m venv .venv && pip install -e ".[sync]" && neonpay demo \\\n  --keep\n'
    assert commands(source) == [
        ["python3", "-m", "venv", ".venv"],
        ["pip", "install", "-e", ".[sync]"],
        ["neonpay", "demo", "--keep"],
    ]
    with pytest.raises(ShellError, match="does not know how to run"):
        run_bash("curl https://example.com\n", cwd=tmp_path, env={})
    with pytest.raises(ShellError, match="no extra"):
        run_bash('pip install -e ".[nonexistent]"\n', cwd=tmp_path, env={})
    with pytest.raises(ShellError, match="published neonpay 2"):
        run_bash('pip install "neonpay[sync]"\n', cwd=tmp_path, env={})
    with pytest.raises(ShellError, match="published neonpay 2"):
        run_bash("pip install neonpay\n", cwd=tmp_path, env={})
    run_bash('pip install "dist/neonpay-3.0.0-py3-none-any.whl[sync]"\n', cwd=tmp_path, env={})
    with pytest.raises(ShellError, match="not neonpay"):
        run_bash("pip install requests\n", cwd=tmp_path, env={})


def test_every_page_is_in_the_site_navigation() -> None:
    config = (DOCS.parent / "mkdocs.yml").read_text(encoding="utf-8")
    in_nav = set(re.findall(r"^\s*- (?:[^:\n]+: )?([\w./-]+\.md)\s*$", config, re.MULTILINE))
    pages = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}
    assert sorted(pages - in_nav) == []
    assert sorted(in_nav - pages) == []
