"""``python -m neonpay.testing --port 8081`` runs the Bot API emulator."""

from __future__ import annotations

from .runner import main

if __name__ == "__main__":
    raise SystemExit(main())
