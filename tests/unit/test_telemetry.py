"""The core's spans and metrics, over fakes: what each put, get and verify reports."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from deltaglider_async import DeltaSpace, ObjectKey
from deltaglider_async.core.service import AsyncDeltaService
from deltaglider_async.ports.tracing import AttributeValue, SpanPort
from tests.fakes import (
    FakeDiff,
    FakeHasher,
    FixedClock,
    InMemoryReferenceCache,
    InMemoryStorage,
    RecordingLogger,
    RecordingMetrics,
)

from .support import BUCKET, TOOL, archive, chunks_of, variant


@dataclass
class RecordedSpan:
    name: str
    attributes: dict[str, AttributeValue]
    error: BaseException | None = None

    def set_attributes(self, attributes: Mapping[str, AttributeValue]) -> None:
        self.attributes.update(attributes)


@dataclass
class RecordingTracing:
    spans: list[RecordedSpan] = field(default_factory=list)

    @contextmanager
    def span(
        self, name: str, attributes: Mapping[str, AttributeValue] | None = None
    ) -> Iterator[SpanPort]:
        span = RecordedSpan(name, dict(attributes or {}))
        self.spans.append(span)
        try:
            yield span
        except BaseException as exc:
            span.error = exc
            raise


@pytest.fixture
def parts(
    storage: InMemoryStorage, tmp_path: Path
) -> tuple[AsyncDeltaService, RecordingTracing, RecordingMetrics]:
    tracing, metrics = RecordingTracing(), RecordingMetrics()
    service = AsyncDeltaService(
        storage,
        FakeDiff(),
        FakeHasher(),
        InMemoryReferenceCache(),
        FixedClock(),
        RecordingLogger(),
        metrics,
        TOOL,
        work_root=tmp_path,
        tracing=tracing,
    )
    return service, tracing, metrics


async def test_puts_report_how_the_file_was_stored_and_the_bytes_saved(
    parts: tuple[AsyncDeltaService, RecordingTracing, RecordingMetrics],
) -> None:
    service, tracing, metrics = parts
    first = archive(1, 20_000)
    second = variant(first, 2)
    space = DeltaSpace(BUCKET, "rel")
    ref = await service.put_stream(chunks_of(first), space, "a.zip")
    delta = await service.put_stream(chunks_of(second), space, "b.zip")
    direct = await service.put_stream(chunks_of(b"notes"), space, "notes.txt")

    assert [s.name for s in tracing.spans] == ["deltaglider.put"] * 3
    a, b, n = (s.attributes for s in tracing.spans)
    assert a["aws.s3.bucket"] == BUCKET
    assert a["aws.s3.key"] == "rel/a.zip"
    assert a["deltaglider.stored_as"] == "reference"
    assert b["deltaglider.stored_as"] == "delta"
    assert b["deltaglider.stored_key"] == "rel/b.zip.delta"
    assert b["deltaglider.stored_bytes"] == delta.delta_size
    assert b["deltaglider.delta_ratio"] == delta.delta_ratio
    assert n["deltaglider.stored_as"] == "direct"
    assert n["deltaglider.original_bytes"] == 5

    summaries = (ref, delta, direct)
    original = sum(s.file_size for s in summaries)
    stored = sum(s.stored_size for s in summaries)
    assert metrics.counters["deltaglider.put.original_bytes"] == original
    assert metrics.counters["deltaglider.put.stored_bytes"] == stored
    assert metrics.counters["deltaglider.put.saved_bytes"] == original - stored
    assert metrics.gauges["deltaglider.delta.ratio"] == delta.delta_ratio


async def test_get_and_verify_spans_and_a_failed_get(
    parts: tuple[AsyncDeltaService, RecordingTracing, RecordingMetrics], tmp_path: Path
) -> None:
    service, tracing, _ = parts
    first = archive(1, 20_000)
    space = DeltaSpace(BUCKET, "rel")
    await service.put_stream(chunks_of(first), space, "a.zip")
    await service.put_stream(chunks_of(variant(first, 2)), space, "b.zip")
    tracing.spans.clear()
    summary = await service.get(ObjectKey(BUCKET, "rel/b.zip"), tmp_path / "b.zip")
    result = await service.verify(ObjectKey(BUCKET, "rel/b.zip"))
    with pytest.raises(FileNotFoundError):
        await service.get(ObjectKey(BUCKET, "rel/missing.zip"), tmp_path / "m.zip")

    get, verify, failed = tracing.spans
    assert get.name == "deltaglider.get"
    assert get.attributes["deltaglider.stored_as"] == "delta"
    assert get.attributes["deltaglider.original_bytes"] == summary.size
    assert get.attributes["deltaglider.stored_bytes"] == summary.stored_size > 0
    assert verify.name == "deltaglider.verify"
    assert verify.attributes["deltaglider.valid"] is result.valid is True
    assert failed.attributes["aws.s3.key"] == "rel/missing.zip"
    assert isinstance(failed.error, FileNotFoundError)
