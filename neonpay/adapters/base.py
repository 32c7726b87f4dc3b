"""What every adapter shares: the cashier it feeds, error translation, masked reprs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from neonpay.adapters.logs import protect_logs
from neonpay.core.gateway import BotAPIError, BotLibrary
from neonpay.errors import mask_token

if TYPE_CHECKING:
    from neonpay.core.cashier import Cashier

__all__ = ["HANDLER_GROUP", "AdapterBase", "describe_error"]

T = TypeVar("T")

#: The handler group NEONPAY uses on python-telegram-bot and Pyrogram: a group of its
#: own, run before the default group 0, so the bot's own handlers still see the updates.
HANDLER_GROUP = -100


def describe_error(exc: BaseException) -> tuple[str, int | None]:
    """Telegram's description and error code from a framework's exception, if it has them."""
    description = (
        getattr(exc, "description", None)
        or getattr(exc, "message", None)
        or getattr(exc, "MESSAGE", None)
        or str(exc)
        or type(exc).__name__
    )
    code = getattr(exc, "error_code", None)
    if not isinstance(code, int):
        code = getattr(exc, "CODE", None)
    return str(description), code if isinstance(code, int) else None


class AdapterBase:
    """Holds the cashier and the bot's token (masked in reprs; masked in log records from
    construction on, see :func:`~neonpay.adapters.logs.protect_logs`).

    Subclasses implement the :class:`~neonpay.core.gateway.PaymentGateway` calls and
    register the payment handlers on their framework.
    """

    library: BotLibrary

    def __init__(self, bot: Any, cashier: Cashier, token: str | None) -> None:
        self.bot = bot
        self.cashier = cashier
        self._token = token or ""
        if self._token:
            protect_logs(self._token)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} bot={mask_token(self._token) or type(self.bot).__name__}>"

    def describe(self, exc: BaseException) -> tuple[str, int | None]:
        """Description and code of a framework error (override for special cases)."""
        description, code = describe_error(exc)
        if self._token:
            description = description.replace(self._token, mask_token(self._token))
        return description, code

    async def call(self, method: str, awaitable: Awaitable[T]) -> T:
        """Await a framework call; its failure becomes :class:`BotAPIError`."""
        try:
            return await awaitable
        except BotAPIError:
            raise
        except Exception as exc:
            description, code = self.describe(exc)
            raise BotAPIError(method, description, error_code=code) from exc

    def answerer(
        self, answer: Callable[[bool, str | None], Awaitable[Any]]
    ) -> Callable[[bool, str | None], Awaitable[Any]]:
        """Wrap an answer call so that its failure is a :class:`BotAPIError`."""

        async def wrapped(ok: bool, error_message: str | None) -> Any:
            return await self.call("answerPreCheckoutQuery", answer(ok, error_message))

        return wrapped
