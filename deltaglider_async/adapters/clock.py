"""The clock adapter: the system clock, in UTC."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["UtcClock"]


class UtcClock:
    """:class:`~deltaglider_async.ports.ClockPort` reading the system clock."""

    def now(self) -> datetime:
        """The current time as an aware UTC datetime."""
        return datetime.now(UTC)
