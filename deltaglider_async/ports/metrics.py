"""The metrics port (the default adapter does nothing)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol


class MetricsPort(Protocol):
    """Counters, gauges and timings."""

    def increment(
        self, name: str, value: float = 1.0, tags: Mapping[str, str] | None = None
    ) -> None:
        """Add ``value`` to a counter."""
        ...

    def gauge(self, name: str, value: float, tags: Mapping[str, str] | None = None) -> None:
        """Set a gauge."""
        ...

    def timing(self, name: str, seconds: float, tags: Mapping[str, str] | None = None) -> None:
        """Record a duration."""
        ...
