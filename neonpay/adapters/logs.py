"""Keep bot tokens out of log records, including the frameworks' own.

Some frameworks put the token into log lines: python-telegram-bot logs its API URL at
DEBUG level, and httpx (which it uses) logs every request URL at INFO level, both with
``/bot<token>/`` inside. :func:`protect_logs` installs a log-record factory that, for
every record created after it:

* replaces each registered token (the bots NEONPAY is attached to) wherever it appears;
* in records of the frameworks' loggers (``aiogram``, ``telegram``, ``httpx``,
  ``TeleBot``, ``pyrogram``, ``aiohttp``...), also masks anything shaped like a bot
  token, and the text of an attached exception.

:func:`~neonpay.create_neonpay` calls it with the bot's token. A framework that logs the
token while the bot object is being built (python-telegram-bot does, at DEBUG level)
does so before NEONPAY is attached: call ``protect_logs()`` first thing at start-up
to cover that too.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from neonpay.errors import mask_secrets, mask_token

__all__ = ["FRAMEWORK_LOGGERS", "protect_logs"]

#: Logger name prefixes whose records are scanned for anything shaped like a token.
FRAMEWORK_LOGGERS: tuple[str, ...] = (
    "aiogram",
    "telegram",
    "httpx",
    "httpcore",
    "TeleBot",
    "telebot",
    "pyrogram",
    "aiohttp",
    "neonpay",
)

_lock = threading.Lock()
_tokens: set[str] = set()
_installed = False
_formatter = logging.Formatter()


def _mask_text(text: str, *, framework: bool) -> str:
    for token in _tokens:
        if token in text:
            text = text.replace(token, mask_token(token))
    return mask_secrets(text) if framework else text


def _wrap(previous: Any) -> Any:
    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record: logging.LogRecord = previous(*args, **kwargs)
        framework = record.name.startswith(FRAMEWORK_LOGGERS)
        if not framework and not _tokens:
            return record
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is the handler's business
            return record
        masked = _mask_text(message, framework=framework)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            text = _formatter.formatException(record.exc_info)
            masked = _mask_text(text, framework=framework)
            if masked != text:  # otherwise leave the formatting to the handler
                record.exc_text = masked
        return record

    return factory


def protect_logs(*tokens: str) -> None:
    """Mask ``tokens`` (and token-shaped text in framework loggers) in log records.

    Idempotent; each call adds its tokens. Installs a log-record factory on first use
    (wrapping whatever factory was set before).
    """
    global _installed
    with _lock:
        _tokens.update(t for t in tokens if t)
        if not _installed:
            logging.setLogRecordFactory(_wrap(logging.getLogRecordFactory()))
            _installed = True
