"""The logging adapter: structured messages on the standard ``deltaglider`` logger.

``log.info("stored delta", key="a.zip", ratio=0.02)`` emits the message
``stored delta key=a.zip ratio=0.02`` and also passes the fields as ``extra`` so that
structured handlers can pick them up. The library never prints.

Levels are per client. Each client logs through its own :class:`StdLogger`, which drops
records below the client's ``log_level``; the ``deltaglider`` logger itself is set to the
most verbose level any open client asked for (:func:`hold_log_level`), so one client at
``DEBUG`` and another at ``INFO`` each log at their own level, from the moment they are
created. What each level shows: ``DEBUG`` every operation step and every xdelta3 command
line; ``INFO`` what was stored or read and the compression achieved; ``WARNING``
fallbacks and retries worth knowing about.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import weakref
from collections.abc import Mapping
from typing import Any, Final

from ..ports.logger import LOGGER_NAME

__all__ = ["LOGGER_NAME", "StdLogger", "hold_log_level", "level_number", "release_log_level"]

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


def level_number(level: str | int) -> int:
    """``"DEBUG"``/``"info"``/``10`` as a ``logging`` level number."""
    if isinstance(level, int):
        return level
    number = logging.getLevelNamesMapping().get(level.upper())
    if number is None:
        raise ValueError(f"unknown log level {level!r}")
    return number


_held: weakref.WeakKeyDictionary[object, int] = weakref.WeakKeyDictionary()
_held_lock = threading.Lock()


def hold_log_level(owner: object, level: str | int) -> None:
    """Let ``owner`` (a client) log at ``level``: the ``deltaglider`` logger passes it.

    The logger's level becomes the most verbose one held by any live owner; an owner that
    is garbage-collected or :func:`release_log_level`-d no longer counts, and once no
    owner holds one the logger gets back the level it had before. The library adds
    only a ``NullHandler`` (records go where the application's logging sends them).
    """
    number = level_number(level)
    with _held_lock:
        _held[owner] = number
        _apply_held()


def release_log_level(owner: object) -> None:
    """Forget the level ``owner`` held (at close)."""
    with _held_lock:
        _held.pop(owner, None)
        _apply_held()


#: The logger's own level before any client held one, restored when none does.
_unheld_level: int | None = None


def _apply_held() -> None:
    global _unheld_level
    logger = logging.getLogger(LOGGER_NAME)
    if _held:
        if _unheld_level is None:
            _unheld_level = logger.level
        logger.setLevel(min(_held.values()))
    elif _unheld_level is not None:
        logger.setLevel(_unheld_level)
        _unheld_level = None
    if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
        logger.addHandler(logging.NullHandler())


class StdLogger:
    """:class:`~deltaglider_async.ports.LoggerPort` on ``logging.getLogger(name)``.

    Records below ``level`` are dropped here, whatever the logger's own level.
    """

    def __init__(self, name: str = LOGGER_NAME, level: str | int = logging.NOTSET) -> None:
        self._logger = logging.getLogger(name)
        self._threshold = level_number(level)

    @property
    def logger(self) -> logging.Logger:
        """The underlying standard logger."""
        return self._logger

    def _log(self, level: int, message: str, fields: Mapping[str, Any]) -> None:
        if level < self._threshold or not self._logger.isEnabledFor(level):
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
