"""The demo's local network: a Bot API emulator and three bots, each with its own SQLite
store and sync server on 127.0.0.1, wired together as the spec's examples are.

Everything is built from the public API (``create_neonpay``, ``SyncServer``,
``MultiBotSyncManager``, ``BotSyncConfig``, ``RawBotAPI``, ``BotAPIEmulator``) and owned
by :class:`DemoNetwork`, whose :meth:`~DemoNetwork.close` stops every server, task and
session it started.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
from collections.abc import Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from neonpay.core import NeonPay, create_neonpay
from neonpay.errors import ConfigurationError

if TYPE_CHECKING:
    from neonpay.adapters.raw import RawBotAPI
    from neonpay.sync.config import BotSyncConfig
    from neonpay.sync.multi import MultiBotSyncManager
    from neonpay.testing import BotAPIEmulator
    from neonpay.web_sync import SyncServer

__all__ = ["BOT_NAMES", "DemoBot", "DemoNetwork"]

#: The store chain of the demo: the main bot, a second store and a support bot.
BOT_NAMES = ("main", "store-2", "support")
#: How often auto sync runs in the demo (minutes; the library's floor is 0.01).
AUTO_SYNC_MINUTES = 0.02


@dataclass
class DemoBot:
    """One bot of the demo: its token, store, sync server and (for main) Bot API client."""

    name: str
    token: str
    storage: str
    neonpay: NeonPay
    server: SyncServer | None = None
    api: RawBotAPI | None = None

    @property
    def url(self) -> str:
        """The bot's sync base URL."""
        if self.server is None:
            raise ConfigurationError(f"the sync server of {self.name} is not running")
        return self.server.url


@dataclass
class DemoNetwork:
    """The emulator and the bots, in a directory of their own.

    Args:
        directory: where the SQLite files go; None makes a temporary directory that
            :meth:`close` removes unless ``keep_files``.
        keep_files: leave the directory in place on close.
    """

    directory: Path | None = None
    keep_files: bool = False
    secret: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)
    bots: dict[str, DemoBot] = field(default_factory=dict)
    emulator: BotAPIEmulator | None = None
    manager: MultiBotSyncManager | None = None
    _temporary: bool = False

    # --- lifecycle ------------------------------------------------------------------------
    async def start(self) -> None:
        """Create the stores, start the emulator, the sync servers and main's Bot API
        client, and configure main's peers.

        Raises:
            ConfigurationError: ``directory`` already holds demo stores, or a port
                cannot be bound.
        """
        from neonpay.adapters.raw import RawBotAPI
        from neonpay.sync.multi import MultiBotSyncManager
        from neonpay.testing import BotAPIEmulator
        from neonpay.web_sync import SyncServer

        self._make_directory()
        self.emulator = BotAPIEmulator(port=0)
        await self.emulator.start()
        for number, name in enumerate(BOT_NAMES, start=1):
            token = f"{700000 + number}:{secrets.token_urlsafe(32)}"
            storage = f"sqlite:///{self.path / (name + '.db')}"
            api = None
            if name == "main":
                api = RawBotAPI(token, api_base=self.emulator.base_url, request_timeout=10.0)
            neonpay = create_neonpay(
                bot_instance=api,
                storage=storage,
                node_id=name,
                thank_you_message="Thank you for your purchase!",
            )
            bot = DemoBot(name, token, storage, neonpay, api=api)
            self.bots[name] = bot
            bot.server = SyncServer(neonpay, "127.0.0.1", 0, self.secret)
            await bot.server.start()
        self.manager = MultiBotSyncManager(self.bots["main"].neonpay)
        for config in self.peer_configs():
            self.manager.add_bot(config)

    def peer_configs(self) -> list[BotSyncConfig]:
        """main's peers, as in the spec: a store bot (bidirectional, merge) and a support
        bot (push only). Both auto-sync on a short interval once auto sync starts."""
        from neonpay.sync.config import BotSyncConfig, ConflictResolution, SyncDirection

        store, support = self.bots["store-2"], self.bots["support"]
        return [
            BotSyncConfig(
                target_bot_token=store.token,
                target_bot_name="store-2",
                direction=SyncDirection.BIDIRECTIONAL,
                conflict_resolution=ConflictResolution.MERGE,
                auto_sync=True,
                sync_interval_minutes=AUTO_SYNC_MINUTES,
                webhook_url=store.url,
                webhook_secret=self.secret,
            ),
            BotSyncConfig(
                target_bot_token=support.token,
                target_bot_name="support",
                direction=SyncDirection.PUSH,
                auto_sync=True,
                sync_interval_minutes=AUTO_SYNC_MINUTES,
                webhook_url=support.url,
                webhook_secret=self.secret,
            ),
        ]

    async def close(self) -> None:
        """Stop polling, auto sync, servers and the emulator; close stores and sessions;
        remove a temporary directory. Idempotent; every step runs even if one fails."""
        errors: list[BaseException] = []
        manager, self.manager = self.manager, None
        if manager is not None:
            await _collect(errors, manager.close())
        for bot in self.bots.values():
            if bot.api is not None:
                await _collect(errors, bot.api.stop_polling())
                await _collect(errors, bot.api.close())
            if bot.server is not None:
                await _collect(errors, bot.server.close())
            try:
                bot.neonpay.close()
            except Exception as exc:  # keep closing the others
                errors.append(exc)
        self.bots.clear()
        emulator, self.emulator = self.emulator, None
        if emulator is not None:
            await _collect(errors, emulator.close())
        if self._temporary and not self.keep_files and self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
        if errors:
            raise errors[0]

    async def __aenter__(self) -> DemoNetwork:
        try:
            await self.start()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # --- helpers ---------------------------------------------------------------------------
    @property
    def path(self) -> Path:
        """The directory of the stores."""
        if self.directory is None:
            raise ConfigurationError("the demo network has not started")
        return self.directory

    def _make_directory(self) -> None:
        if self.directory is None:
            self.directory = Path(tempfile.mkdtemp(prefix="neonpay-demo-"))
            self._temporary = True
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        taken = [f"{n}.db" for n in BOT_NAMES if (self.directory / f"{n}.db").exists()]
        if taken:
            raise ConfigurationError(
                f"{self.directory} already holds demo stores ({', '.join(taken)}); "
                "remove them or choose another --dir"
            )


async def _collect(errors: list[BaseException], step: Awaitable[object]) -> None:
    try:
        await step
    except Exception as exc:
        errors.append(exc)
