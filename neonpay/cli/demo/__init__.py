"""``neonpay demo``: a local network of three bots that sync their catalog and sell."""

from __future__ import annotations

from neonpay.cli.demo.network import BOT_NAMES, DemoBot, DemoNetwork
from neonpay.cli.demo.story import DemoStory

__all__ = ["BOT_NAMES", "DemoBot", "DemoNetwork", "DemoStory"]
