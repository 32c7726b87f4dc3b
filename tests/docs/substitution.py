"""What the snippet runner may change in a snippet: tokens, URLs, hosts and ports. Nothing else.

* A bot token placeholder (``"STORE_BOT_TOKEN"`` given as a token, ``--token "BOT_TOKEN"``)
  becomes a well-formed fake token, the same one for the same placeholder. A placeholder
  read from the environment (``os.getenv("STORE_BOT_TOKEN")``) is left alone; the runner
  sets that variable instead.
* A sync URL of a remote host (``https://store-bot.example.com/sync``) becomes the URL of
  a real sync server on 127.0.0.1 standing in for that host.
* A PostgreSQL URL of a remote host becomes the test database's URL.
* The listen-everywhere host ``0.0.0.0`` becomes ``127.0.0.1``; a literal port (``port=8080``,
  ``--port 8080``, ``127.0.0.1:8080``) becomes a free port, the same one for the same
  literal.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Substitutions", "fake_token"]

LOOPBACK = ("127.0.0.1", "localhost")
_PLACEHOLDER = re.compile(r"""(?P<q>["'])(?P<name>[A-Z][A-Z0-9_]*TOKEN)(?P=q)""")
_BASH_TOKEN = re.compile(r"""(?P<flag>--token[ =])(?P<q>["']?)(?P<name>[^\s"']+)(?P=q)""")
_ENV_READ = re.compile(r"""(getenv|environ\.get|environ\[)\(?\s*$""")
_SYNC_URL = re.compile(
    r"(?P<scheme>https?)://(?P<host>[A-Za-z0-9.-]+)(?::(?P<port>\d+))?(?P<path>/sync\b)"
)
_LOOPBACK_URL = re.compile(r"(?P<prefix>https?://(?:127\.0\.0\.1|localhost)):(?P<port>\d{2,5})\b")
_POSTGRES_URL = re.compile(r"""postgres(?:ql)?://[^\s"'@]+@(?P<host>[A-Za-z0-9.-]+)[^\s"']*""")
_PORT_ARG = re.compile(r"(?P<prefix>\bport\s*=\s*|--port[ =])(?P<port>\d{2,5})\b")
_ANY_HOST = re.compile(r"""(?P<q>["']?)0\.0\.0\.0(?P=q)""")
_ENV_NAME = re.compile(
    r"""(?:getenv|environ\.get)\(\s*["'](?P<a>[A-Z][A-Z0-9_]*)["']|environ\[\s*["'](?P<b>[A-Z][A-Z0-9_]*)["']"""
)


def fake_token(placeholder: str, number: int) -> str:
    """A well-formed bot token (``123456789:AbC...``), stable for a placeholder."""
    digest = hashlib.sha256(placeholder.encode()).hexdigest()
    return f"{7_000_000_000 + number}:AA{digest[:33]}"


@dataclass
class Substitutions:
    """The substitutions of one page, filled as the page's hosts and ports are met.

    Args:
        sync_base: gives the local sync base URL (``http://127.0.0.1:PORT/sync``) standing
            in for a remote host.
        free_port: gives a free port on 127.0.0.1.
        postgres_url: the test database URL, or None when there is none.
    """

    sync_base: Callable[[str], str]
    free_port: Callable[[], int]
    postgres_url: str | None = None
    tokens: dict[str, str] = field(default_factory=dict)
    ports: dict[int, int] = field(default_factory=dict)
    applied: list[str] = field(default_factory=list)

    def token(self, placeholder: str) -> str:
        """The fake token standing in for ``placeholder``."""
        if placeholder not in self.tokens:
            self.tokens[placeholder] = fake_token(placeholder, len(self.tokens) + 1)
        return self.tokens[placeholder]

    def port(self, literal: int) -> int:
        """The free port standing in for ``literal``."""
        if literal not in self.ports:
            self.ports[literal] = self.free_port()
        return self.ports[literal]

    def apply(self, source: str, lang: str) -> str:
        """``source`` with tokens, URLs, hosts and ports swapped; each swap is logged."""
        text = source
        text = self._tokens(text, lang)
        text = _POSTGRES_URL.sub(self._postgres, text)
        # Ports before remote sync URLs, whose stand-ins carry ports of their own.
        text = _LOOPBACK_URL.sub(self._loopback_url, text)
        text = _PORT_ARG.sub(self._port_arg, text)
        text = _ANY_HOST.sub(self._any_host, text)
        return _SYNC_URL.sub(self._sync_url, text)

    # --- one rule each ------------------------------------------------------------------
    def _tokens(self, text: str, lang: str) -> str:
        if lang == "bash":
            return _BASH_TOKEN.sub(
                lambda m: self._log(
                    m.group(0), f"{m['flag']}{m['q']}{self.token(m['name'])}{m['q']}"
                ),
                text,
            )

        def swap(match: re.Match[str]) -> str:
            if _ENV_READ.search(text[max(0, match.start() - 20) : match.start()]):
                return match.group(0)  # an environment variable's name, not a token
            quote = match["q"]
            return self._log(match.group(0), f"{quote}{self.token(match['name'])}{quote}")

        return _PLACEHOLDER.sub(swap, text)

    def _postgres(self, match: re.Match[str]) -> str:
        if match["host"] in LOOPBACK or self.postgres_url is None:
            return match.group(0)
        return self._log(match.group(0), self.postgres_url)

    def _sync_url(self, match: re.Match[str]) -> str:
        host = match["host"]
        if host in LOOPBACK or host == "0.0.0.0":  # noqa: S104 - a pattern, nothing binds
            return match.group(0)
        return self._log(match.group(0), self.sync_base(host))

    def _loopback_url(self, match: re.Match[str]) -> str:
        return self._log(match.group(0), f"{match['prefix']}:{self.port(int(match['port']))}")

    def _port_arg(self, match: re.Match[str]) -> str:
        port = int(match["port"])
        return self._log(match.group(0), f"{match['prefix']}{self.port(port)}")

    def _any_host(self, match: re.Match[str]) -> str:
        quote = match["q"]
        return self._log(match.group(0), f"{quote}127.0.0.1{quote}")

    def _log(self, old: str, new: str) -> str:
        if old != new:
            self.applied.append(f"{old} -> {new}")
        return new


def environment_names(source: str) -> list[str]:
    """The environment variables a snippet reads by name (``os.getenv("X")``)."""
    return [m["a"] or m["b"] for m in _ENV_NAME.finditer(source)]
