"""What the core reports about each operation: span attributes and metrics.

Spans (through the tracing port) and metrics (through the metrics port) are fed from the
operations' summaries here, in one place, so the write and read paths stay free of them.
Attribute names follow OpenTelemetry's: ``aws.s3.bucket`` and ``aws.s3.key`` (the logical
key, as the caller named it), then deltaglider's own under ``deltaglider.``.

Metrics of a put: the counter ``deltaglider.put`` (tag ``stored_as``), the counters
``deltaglider.put.original_bytes``, ``deltaglider.put.stored_bytes`` and
``deltaglider.put.saved_bytes`` (original minus stored: negative by a few bytes for the
file that creates a directory's reference, which is stored whole plus an empty delta), and
the gauge ``deltaglider.delta.ratio`` (delta size / original size of the latest delta).
"""

from __future__ import annotations

from .._models import GetSummary, PutSummary, StoredAs, VerifyResult
from ..ports.metrics import MetricsPort
from ..ports.tracing import AttributeValue
from .reads import ResolvedObject

__all__ = [
    "bulk_attributes",
    "get_attributes",
    "object_attributes",
    "put_attributes",
    "record_put",
    "resolved_attributes",
    "verify_attributes",
]

Attributes = dict[str, AttributeValue]


def object_attributes(bucket: str, key: str) -> Attributes:
    """What a span knows when it starts: the bucket and the logical key."""
    return {"aws.s3.bucket": bucket, "aws.s3.key": key}


def _put_stored_as(summary: PutSummary) -> str:
    return StoredAs.REFERENCE.value if summary.created_reference else summary.stored_as.value


def put_attributes(summary: PutSummary) -> Attributes:
    """How a put stored its file: form, stored key, original and stored bytes, ratio."""
    attributes: Attributes = {
        "aws.s3.key": summary.logical_key or summary.key,
        "deltaglider.stored_as": _put_stored_as(summary),
        "deltaglider.stored_key": summary.key,
        "deltaglider.original_bytes": summary.file_size,
        "deltaglider.stored_bytes": summary.stored_size,
    }
    if summary.delta_ratio is not None:
        attributes["deltaglider.delta_ratio"] = summary.delta_ratio
        attributes["deltaglider.reference_cache_hit"] = summary.cache_hit
    return attributes


def record_put(metrics: MetricsPort, summary: PutSummary) -> None:
    """The byte counters and the delta ratio of one put (see the module docstring)."""
    tags = {"stored_as": _put_stored_as(summary)}
    metrics.increment("deltaglider.put.original_bytes", summary.file_size, tags)
    metrics.increment("deltaglider.put.stored_bytes", summary.stored_size, tags)
    metrics.increment("deltaglider.put.saved_bytes", summary.file_size - summary.stored_size, tags)
    if summary.delta_ratio is not None:
        metrics.gauge("deltaglider.delta.ratio", summary.delta_ratio, tags)


def get_attributes(summary: GetSummary) -> Attributes:
    """How a read found its file: form, stored key, original and stored bytes, cache."""
    attributes: Attributes = {
        "aws.s3.key": summary.logical_key,
        "deltaglider.stored_as": summary.stored_as.value,
        "deltaglider.stored_key": summary.key,
        "deltaglider.original_bytes": summary.size,
        "deltaglider.stored_bytes": summary.stored_size,
    }
    if summary.stored_as is StoredAs.DELTA:
        attributes["deltaglider.reference_cache_hit"] = summary.reference_cache_hit
    return attributes


def resolved_attributes(resolved: ResolvedObject) -> Attributes:
    """How a name is stored, for a read served from its resolved object (``get_object``)."""
    return {
        "aws.s3.key": resolved.logical_key,
        "deltaglider.stored_as": resolved.stored_as.value,
        "deltaglider.stored_key": resolved.stored.key,
        "deltaglider.original_bytes": resolved.original_size,
        "deltaglider.stored_bytes": resolved.head.size,
    }


def bulk_attributes(operation: str, source: str, destination: str) -> Attributes:
    """One item of a bulk operation: ``upload`` or ``download``, from where to where."""
    return {
        "deltaglider.bulk.operation": operation,
        "deltaglider.bulk.source": source,
        "deltaglider.bulk.destination": destination,
    }


def verify_attributes(result: VerifyResult) -> Attributes:
    """The outcome of a verification."""
    return {"deltaglider.valid": result.valid, "deltaglider.operation": result.operation}
