"""Executing one Bot API call: method lookup, handler, error shaping, call record."""

from __future__ import annotations

import logging
import time
from typing import Any

from . import methods as _methods
from .core import EmulatorCore
from .errors import ApiError, not_found
from .params import Params, normalize_for_record
from .registry import MethodContext, lookup
from .state import BotState, CallRecord

__all__ = ["Dispatcher"]

logger = logging.getLogger("neonpay.testing")
del _methods  # imported for its side effect: registering the handlers


class Dispatcher:
    """Runs Bot API methods against an :class:`~neonpay.testing.core.EmulatorCore`."""

    def __init__(self, core: EmulatorCore) -> None:
        self.core = core
        core.executor = self.execute

    async def execute(
        self, bot: BotState, method: str, params: Params, source: str = "http"
    ) -> tuple[int, dict[str, Any]]:
        """Run ``method`` for ``bot``; returns the HTTP status and Telegram's JSON body."""
        found = lookup(method)
        name = found[0] if found is not None else method
        result: Any = None
        try:
            if found is None:
                raise not_found()
            result = await found[1](MethodContext(self.core, bot, params))
        except ApiError as error:
            status, body = error.error_code, error.to_payload()
        except Exception:
            logger.exception("emulator bug while handling %s", name)
            status, body = 500, ApiError(500, "Internal Server Error").to_payload()
        else:
            status, body = 200, {"ok": True, "result": result}
        raw = params.raw()
        self.core.record_call(
            CallRecord(
                bot_id=bot.id,
                method=name,
                params=normalize_for_record(raw),
                raw_params=raw,
                time=time.time(),
                status=status,
                ok=status == 200,
                result=result if status == 200 else None,
                description=body.get("description"),
                source=source,
            )
        )
        logger.debug("%s %s -> %s", bot.masked_token, name, status)
        return status, body
