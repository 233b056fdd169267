"""The logging adapter: structured messages on the standard ``deltaglider`` logger.

``log.info("stored delta", key="a.zip", ratio=0.02)`` emits the message
``stored delta key=a.zip ratio=0.02`` and also passes the fields as ``extra`` so that
structured handlers can pick them up. The library never prints.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from typing import Any, Final

__all__ = ["LOGGER_NAME", "StdLogger"]

LOGGER_NAME: Final = "deltaglider"
_BARE: Final = re.compile(r"[^\s=\"']+")
# Attributes of LogRecord: ``extra`` may not overwrite them (logging raises KeyError).
_RESERVED: Final = frozenset(
    {*logging.LogRecord("", 0, "", 0, "", None, None).__dict__, "message", "asctime"}
)


def _render_value(value: object) -> str:
    text = value if isinstance(value, str) else str(value)
    if _BARE.fullmatch(text):
        return text
    return json.dumps(text, ensure_ascii=False)


def render_fields(fields: Mapping[str, Any]) -> str:
    """``key=value`` pairs separated by spaces; values with spaces or quotes are quoted."""
    return " ".join(f"{key}={_render_value(value)}" for key, value in fields.items())


def _extra(fields: Mapping[str, Any]) -> dict[str, Any]:
    return {(f"field_{key}" if key in _RESERVED else key): value for key, value in fields.items()}


class StdLogger:
    """:class:`~deltaglider_async.ports.LoggerPort` on ``logging.getLogger(name)``."""

    def __init__(self, name: str = LOGGER_NAME) -> None:
        self._logger = logging.getLogger(name)

    @property
    def logger(self) -> logging.Logger:
        """The underlying standard logger."""
        return self._logger

    def _log(self, level: int, message: str, fields: Mapping[str, Any]) -> None:
        if not self._logger.isEnabledFor(level):
            return
        text = f"{message} {render_fields(fields)}" if fields else message
        # stacklevel=3: attribute the record to the caller of debug()/info()/...
        self._logger.log(level, "%s", text, extra=_extra(fields), stacklevel=3)

    def debug(self, message: str, **fields: Any) -> None:
        """Log at DEBUG."""
        self._log(logging.DEBUG, message, fields)

    def info(self, message: str, **fields: Any) -> None:
        """Log at INFO."""
        self._log(logging.INFO, message, fields)

    def warning(self, message: str, **fields: Any) -> None:
        """Log at WARNING."""
        self._log(logging.WARNING, message, fields)

    def error(self, message: str, **fields: Any) -> None:
        """Log at ERROR."""
        self._log(logging.ERROR, message, fields)
