"""OpenTelemetry adapters: spans for the tracing port, instruments for the metrics port.

Needs the ``[otel]`` extra (``opentelemetry-api``). Both adapters use the global tracer
and meter providers unless given their own, so an application that configured the
OpenTelemetry SDK gets deltaglider's spans and metrics next to its own.
``create_async_client(opentelemetry=True)`` (or ``DG_OPENTELEMETRY=1``) wires both.

**Spans** (``SpanKind.INTERNAL``), each the parent of the S3 calls made inside it (which
``opentelemetry-instrumentation-botocore``'s ``AiobotocoreInstrumentor`` traces):

=========================  =============================================================
``deltaglider.put``        every write (``put_object``, ``upload``, ``upload_file``, bulk
                           and copies); ``aws.s3.bucket``, ``aws.s3.key`` (logical),
                           ``deltaglider.stored_as`` (``reference``/``delta``/``direct``),
                           ``deltaglider.stored_key``, ``deltaglider.original_bytes``,
                           ``deltaglider.stored_bytes``, ``deltaglider.delta_ratio``,
                           ``deltaglider.xdelta3.encode.duration`` (seconds)
``deltaglider.get``        ``get_object`` and ``download``: the same attributes and
                           ``deltaglider.xdelta3.decode.duration`` for a delta
``deltaglider.verify``     ``verify``: ``deltaglider.valid``
``deltaglider.bulk.item``  one item of ``upload_many``/``download_many``:
                           ``deltaglider.bulk.operation``, ``.source``, ``.destination``
=========================  =============================================================

An exception leaving a span marks it ``ERROR`` and is recorded on it.

**Metrics** (meter ``deltaglider_async``): see :data:`INSTRUMENTS`; a metric name the
table does not list becomes a counter, gauge or histogram (seconds) by the port method
that reports it. Port tags become attributes.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Final, Literal

from opentelemetry import metrics, trace
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import SpanKind, TracerProvider

from .._version import __version__
from ..ports.tracing import AttributeValue, SpanPort

__all__ = ["INSTRUMENTATION_NAME", "INSTRUMENTS", "OpenTelemetryMetrics", "OpenTelemetryTracing"]

#: The instrumentation scope of deltaglider's tracer and meter.
INSTRUMENTATION_NAME: Final = "deltaglider_async"

_Kind = Literal["counter", "updown", "gauge", "histogram"]

#: The metrics deltaglider reports: name → (instrument kind, unit, description).
INSTRUMENTS: Final[Mapping[str, tuple[_Kind, str, str]]] = {
    "deltaglider.put": ("counter", "{file}", "Files stored, by stored_as"),
    "deltaglider.put.original_bytes": ("counter", "By", "Original bytes of the files stored"),
    "deltaglider.put.stored_bytes": (
        "counter",
        "By",
        "Bytes written to S3 for the files stored (deltas, references, direct objects)",
    ),
    "deltaglider.put.saved_bytes": (
        "updown",
        "By",
        "Original bytes minus stored bytes (slightly negative for a new reference)",
    ),
    "deltaglider.delta.ratio": ("gauge", "1", "Delta size / original size of the latest delta"),
    "deltaglider.xdelta3.encode": ("histogram", "s", "Time xdelta3 took to encode a delta"),
    "deltaglider.xdelta3.decode": ("histogram", "s", "Time xdelta3 took to decode a delta"),
    "deltaglider.s3.retries": ("counter", "{retry}", "S3 requests retried, by operation"),
    "deltaglider.integrity.failed": (
        "counter",
        "{read}",
        "Reads whose bytes did not match their SHA-256",
    ),
    "deltaglider.cache.hit": ("counter", "{read}", "References found in the local cache"),
    "deltaglider.cache.miss": ("counter", "{read}", "References fetched from S3"),
    "deltaglider.cache.corrupt": ("counter", "{read}", "Cached references that failed checks"),
    "deltaglider.reference.created": ("counter", "{reference}", "References created"),
    "deltaglider.reference.rebased": ("counter", "{reference}", "Directories re-baselined"),
}

#: Histogram buckets for durations in seconds (OpenTelemetry's advice for HTTP durations).
_SECONDS_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0)


class OpenTelemetryTracing:
    """:class:`~deltaglider_async.ports.TracingPort` making OpenTelemetry spans.

    ``tracer_provider`` defaults to the global one (``opentelemetry.trace``), read when
    this adapter is built.
    """

    def __init__(self, tracer_provider: TracerProvider | None = None) -> None:
        self._tracer = trace.get_tracer(
            INSTRUMENTATION_NAME, __version__, tracer_provider=tracer_provider
        )

    @contextmanager
    def span(
        self, name: str, attributes: Mapping[str, AttributeValue] | None = None
    ) -> Iterator[SpanPort]:
        """An internal span, current for the block; exceptions are recorded on it."""
        with self._tracer.start_as_current_span(
            name, kind=SpanKind.INTERNAL, attributes=attributes
        ) as span:
            yield span


class OpenTelemetryMetrics:
    """:class:`~deltaglider_async.ports.MetricsPort` recording OpenTelemetry instruments.

    ``meter_provider`` defaults to the global one (``opentelemetry.metrics``). A timing is
    also set on the current span as ``<name>.duration`` (seconds), so a put's span carries
    its xdelta3 encoding time. Safe to share between threads.
    """

    def __init__(self, meter_provider: MeterProvider | None = None) -> None:
        self._meter = metrics.get_meter(
            INSTRUMENTATION_NAME, __version__, meter_provider=meter_provider
        )
        # name → Counter, UpDownCounter, Gauge or Histogram
        self._instruments: dict[str, Any] = {}
        self._lock = threading.Lock()

    def _instrument(self, name: str, default: _Kind) -> Any:
        found = self._instruments.get(name)
        if found is not None:
            return found
        with self._lock:
            found = self._instruments.get(name)
            if found is None:
                kind, unit, description = INSTRUMENTS.get(name, (default, "", ""))
                found = self._create(
                    kind, name, unit or ("s" if kind == "histogram" else "1"), description
                )
                self._instruments[name] = found
            return found

    def _create(self, kind: _Kind, name: str, unit: str, description: str) -> Any:
        meter = self._meter
        if kind == "counter":
            return meter.create_counter(name, unit, description)
        if kind == "updown":
            return meter.create_up_down_counter(name, unit, description)
        if kind == "gauge":
            return meter.create_gauge(name, unit, description)
        return meter.create_histogram(
            name, unit, description, explicit_bucket_boundaries_advisory=_SECONDS_BUCKETS
        )

    def increment(
        self, name: str, value: float = 1.0, tags: Mapping[str, str] | None = None
    ) -> None:
        """Add ``value`` to the counter ``name`` (an up-down counter where listed so)."""
        self._instrument(name, "counter").add(value, attributes=tags)

    def gauge(self, name: str, value: float, tags: Mapping[str, str] | None = None) -> None:
        """Set the gauge ``name``."""
        self._instrument(name, "gauge").set(value, attributes=tags)

    def timing(self, name: str, seconds: float, tags: Mapping[str, str] | None = None) -> None:
        """Record ``seconds`` in the histogram ``name`` and on the current span."""
        self._instrument(name, "histogram").record(seconds, attributes=tags)
        span = trace.get_current_span()
        if span.is_recording():
            span.set_attribute(f"{name}.duration", seconds)
