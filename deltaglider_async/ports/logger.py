"""The logging port (the default adapter logs to the standard ``deltaglider`` logger)."""

from __future__ import annotations

from typing import Any, Final, Protocol

#: The standard-library logger every part of the package logs under.
LOGGER_NAME: Final = "deltaglider"


class LoggerPort(Protocol):
    """Structured logging: a message plus keyword fields."""

    def debug(self, message: str, **fields: Any) -> None:
        """Log at DEBUG."""
        ...

    def info(self, message: str, **fields: Any) -> None:
        """Log at INFO."""
        ...

    def warning(self, message: str, **fields: Any) -> None:
        """Log at WARNING."""
        ...

    def error(self, message: str, **fields: Any) -> None:
        """Log at ERROR."""
        ...
