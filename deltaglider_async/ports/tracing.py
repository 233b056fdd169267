"""The tracing port: spans around the core's operations (the default records nothing).

A span has a name (``deltaglider.put``...) and attributes, some known when it starts (the
bucket and key), others once the operation is done (how the file was stored, its sizes);
an exception leaving the block marks the span as failed. The OpenTelemetry adapter
(``deltaglider_async.adapters.opentelemetry``) makes them OpenTelemetry spans.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol, TypeAlias

__all__ = ["NO_TRACING", "AttributeValue", "NoTracing", "SpanPort", "TracingPort"]

#: What a span attribute may hold (OpenTelemetry's primitive attribute types).
AttributeValue: TypeAlias = str | bool | int | float


class SpanPort(Protocol):
    """An open span."""

    def set_attributes(self, attributes: Mapping[str, AttributeValue]) -> None:
        """Add or replace attributes of the span."""
        ...


class TracingPort(Protocol):
    """Opens spans; each is the current span inside its ``with`` block."""

    def span(
        self, name: str, attributes: Mapping[str, AttributeValue] | None = None
    ) -> AbstractContextManager[SpanPort]:
        """A span named ``name`` with ``attributes``, open for the ``with`` block."""
        ...


class _NoSpan:
    def set_attributes(self, attributes: Mapping[str, AttributeValue]) -> None:
        """Do nothing."""


class NoTracing:
    """:class:`TracingPort` that records nothing (the default)."""

    @contextmanager
    def span(
        self, name: str, attributes: Mapping[str, AttributeValue] | None = None
    ) -> Iterator[SpanPort]:
        """A span that records nothing."""
        yield _NoSpan()


#: The shared do-nothing tracer.
NO_TRACING: TracingPort = NoTracing()
