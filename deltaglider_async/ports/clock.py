"""The clock port."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol


class ClockPort(Protocol):
    """Where the core gets the current time from."""

    def now(self) -> datetime:
        """The current time as an aware UTC datetime."""
        ...
