"""Metrics adapters: one that discards everything, one that keeps it in memory."""

from __future__ import annotations

import threading
from collections.abc import Mapping

__all__ = ["NoopMetrics", "RecordingMetrics"]

_TagKey = tuple[tuple[str, str], ...]


def _tag_key(tags: Mapping[str, str] | None) -> _TagKey:
    return tuple(sorted(tags.items())) if tags else ()


class NoopMetrics:
    """:class:`~deltaglider_async.ports.MetricsPort` that records nothing (the default)."""

    def increment(
        self, name: str, value: float = 1.0, tags: Mapping[str, str] | None = None
    ) -> None:
        """Do nothing."""

    def gauge(self, name: str, value: float, tags: Mapping[str, str] | None = None) -> None:
        """Do nothing."""

    def timing(self, name: str, seconds: float, tags: Mapping[str, str] | None = None) -> None:
        """Do nothing."""


class RecordingMetrics:
    """:class:`~deltaglider_async.ports.MetricsPort` keeping counters, gauges and timings.

    Series are keyed by name and tags (tag order does not matter); the readers take
    ``tags=None`` to mean "every tag set". Safe to share between threads. Meant for tests
    and benchmarks.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[tuple[str, _TagKey], float] = {}
        self._gauges: dict[tuple[str, _TagKey], float] = {}
        self._timings: dict[tuple[str, _TagKey], list[float]] = {}

    def increment(
        self, name: str, value: float = 1.0, tags: Mapping[str, str] | None = None
    ) -> None:
        """Add ``value`` to the counter ``name`` with ``tags``."""
        key = (name, _tag_key(tags))
        with self._lock:
            self._counters[key] = self._counters.get(key, 0.0) + value

    def gauge(self, name: str, value: float, tags: Mapping[str, str] | None = None) -> None:
        """Set the gauge ``name`` with ``tags`` to ``value``."""
        with self._lock:
            self._gauges[(name, _tag_key(tags))] = value

    def timing(self, name: str, seconds: float, tags: Mapping[str, str] | None = None) -> None:
        """Append a duration to the timing series ``name`` with ``tags``."""
        key = (name, _tag_key(tags))
        with self._lock:
            self._timings.setdefault(key, []).append(seconds)

    def counter(self, name: str, tags: Mapping[str, str] | None = None) -> float:
        """A counter's value: of the series with exactly ``tags``, or summed over every
        tag set when ``tags`` is ``None`` (0.0 when never incremented)."""
        with self._lock:
            if tags is None:
                return sum(value for (n, _), value in self._counters.items() if n == name)
            return self._counters.get((name, _tag_key(tags)), 0.0)

    def gauge_value(self, name: str, tags: Mapping[str, str] | None = None) -> float | None:
        """The last value of the gauge series with exactly ``tags`` (none: untagged)."""
        with self._lock:
            return self._gauges.get((name, _tag_key(tags)))

    def timings(self, name: str, tags: Mapping[str, str] | None = None) -> list[float]:
        """Recorded durations: of the series with exactly ``tags``, or of every tag set
        (series by series, each in recording order) when ``tags`` is ``None``."""
        with self._lock:
            if tags is None:
                return [
                    seconds
                    for (n, _), series in self._timings.items()
                    if n == name
                    for seconds in series
                ]
            return list(self._timings.get((name, _tag_key(tags)), ()))

    def names(self) -> set[str]:
        """Every metric name recorded so far."""
        with self._lock:
            return {n for n, _ in (*self._counters, *self._gauges, *self._timings)}

    def reset(self) -> None:
        """Forget everything."""
        with self._lock:
            self._counters.clear()
            self._gauges.clear()
            self._timings.clear()
