"""OpenTelemetry: spans and metrics of real puts, gets, verifications and bulk items.

Both servers. The SDK's in-memory span exporter and metric reader are installed as the
process's global providers (what an application configuring OpenTelemetry does), and
``create_async_client(opentelemetry=True)`` reports to them. The S3 calls underneath are
traced by ``opentelemetry-instrumentation-botocore`` and must nest under deltaglider's
spans.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import metrics, trace
from opentelemetry.instrumentation.botocore import AiobotocoreInstrumentor as _Instrumentor
from opentelemetry.sdk.metrics import Counter, Histogram, MeterProvider, UpDownCounter
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from deltaglider_async import (
    AsyncDeltaGliderClient,
    AsyncDeltaService,
    DeltaGliderConfig,
    InvalidArgumentError,
    ObjectNotFoundError,
    create_async_client,
)
from deltaglider_async.adapters.clock import UtcClock
from deltaglider_async.adapters.hashing import StdlibHasher
from deltaglider_async.adapters.logging import StdLogger
from deltaglider_async.adapters.opentelemetry import OpenTelemetryMetrics, OpenTelemetryTracing
from deltaglider_async.adapters.reference_cache import EncryptedReferenceCache
from deltaglider_async.adapters.s3_storage import S3Storage
from deltaglider_async.adapters.xdelta3 import XDelta3Diff
from deltaglider_async.testing import LocalS3
from deltaglider_async.testing_proxy import FaultProxy, ProxyRequest
from tests.archives import make_zip_versions

from .support import list_keys

# The instrumentation package ships without type annotations.
AiobotocoreInstrumentor: Any = _Instrumentor


@dataclass
class Telemetry:
    """The process's global OpenTelemetry SDK, reading into memory."""

    spans: InMemorySpanExporter
    reader: InMemoryMetricReader
    tracer_provider: TracerProvider

    def finished(self, name: str | None = None) -> list[ReadableSpan]:
        return [s for s in self.spans.get_finished_spans() if name is None or s.name == name]

    def points(self, name: str) -> list[Any]:
        """The data points of metric ``name`` since the last call (delta temporality)."""
        data = self.reader.get_metrics_data()
        found: list[Any] = []
        for resource in data.resource_metrics if data else []:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        found.extend(metric.data.data_points)
        return found

    def metrics(self) -> dict[str, list[Any]]:
        """Every metric's data points since the last call."""
        data = self.reader.get_metrics_data()
        found: dict[str, list[Any]] = {}
        for resource in data.resource_metrics if data else []:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    found.setdefault(metric.name, []).extend(metric.data.data_points)
        return found


_DELTA = AggregationTemporality.DELTA


@pytest.fixture(scope="session")
def global_telemetry() -> Telemetry:
    """Installed once per test process: OpenTelemetry's globals can be set only once."""
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    trace.set_tracer_provider(tracer_provider)
    reader = InMemoryMetricReader(
        preferred_temporality={Counter: _DELTA, UpDownCounter: _DELTA, Histogram: _DELTA}
    )
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    return Telemetry(spans, reader, tracer_provider)


@pytest.fixture
def telemetry(global_telemetry: Telemetry) -> Telemetry:
    """The global telemetry, emptied of what earlier tests reported."""
    global_telemetry.spans.clear()
    global_telemetry.reader.get_metrics_data()
    return global_telemetry


@pytest.fixture
async def client(s3_server: LocalS3, telemetry: Telemetry) -> AsyncIterator[AsyncDeltaGliderClient]:
    config = s3_server.config()
    async with create_async_client(
        endpoint_url=config.endpoint_url,
        aws_access_key_id=config.aws_access_key_id,
        aws_secret_access_key=config.aws_secret_access_key,
        region_name=config.region_name,
        opentelemetry=True,
    ) as opened:
        yield opened


@pytest.fixture
def zips(tmp_path: Path) -> list[Path]:
    return make_zip_versions(tmp_path / "dist", 3, size=80_000)


def _attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


async def test_put_spans_say_how_each_file_was_stored(
    client: AsyncDeltaGliderClient,
    telemetry: Telemetry,
    bucket: str,
    zips: list[Path],
    s3_admin: Any,
) -> None:
    for path in zips[:2]:
        await client.put_object(Bucket=bucket, Key=f"app/{path.name}", Body=path)
    await client.put_object(Bucket=bucket, Key="app/notes.txt", Body=b"release notes")
    first, second, notes = telemetry.finished("deltaglider.put")

    assert _attrs(first)["aws.s3.bucket"] == bucket
    assert _attrs(first)["aws.s3.key"] == f"app/{zips[0].name}"
    assert _attrs(first)["deltaglider.stored_as"] == "reference"
    assert _attrs(first)["deltaglider.original_bytes"] == zips[0].stat().st_size

    delta = _attrs(second)
    stored_delta = s3_admin.head_object(Bucket=bucket, Key=f"app/{zips[1].name}.delta")
    assert delta["deltaglider.stored_as"] == "delta"
    assert delta["deltaglider.stored_key"] == f"app/{zips[1].name}.delta"
    assert delta["deltaglider.original_bytes"] == zips[1].stat().st_size
    assert delta["deltaglider.stored_bytes"] == stored_delta["ContentLength"]
    assert delta["deltaglider.delta_ratio"] == pytest.approx(
        stored_delta["ContentLength"] / zips[1].stat().st_size
    )
    assert delta["deltaglider.delta_ratio"] < 0.5
    assert delta["deltaglider.xdelta3.encode.duration"] > 0

    assert _attrs(notes)["deltaglider.stored_as"] == "direct"
    assert _attrs(notes)["deltaglider.stored_bytes"] == len(b"release notes")
    assert "deltaglider.xdelta3.encode.duration" not in _attrs(notes)
    assert all(span.status.status_code is not StatusCode.ERROR for span in (first, second, notes))


async def test_get_verify_and_download_spans(
    client: AsyncDeltaGliderClient,
    telemetry: Telemetry,
    bucket: str,
    zips: list[Path],
    tmp_path: Path,
) -> None:
    for path in zips[:2]:
        await client.put_object(Bucket=bucket, Key=f"app/{path.name}", Body=path)
    telemetry.spans.clear()
    response = await client.get_object(Bucket=bucket, Key=f"app/{zips[1].name}")
    async with response["Body"] as body:
        assert await body.read() == zips[1].read_bytes()
    assert await client.verify(f"s3://{bucket}/app/{zips[1].name}")
    await client.download(f"s3://{bucket}/app/{zips[0].name}", tmp_path / "out.zip")

    (get_span, download_span) = telemetry.finished("deltaglider.get")
    got = _attrs(get_span)
    assert got["aws.s3.key"] == f"app/{zips[1].name}"
    assert got["deltaglider.stored_as"] == "delta"
    assert got["deltaglider.original_bytes"] == zips[1].stat().st_size
    assert 0 < got["deltaglider.stored_bytes"] < got["deltaglider.original_bytes"] / 2
    assert got["deltaglider.xdelta3.decode.duration"] > 0
    assert _attrs(download_span)["deltaglider.stored_as"] == "delta"
    assert _attrs(download_span)["deltaglider.original_bytes"] == zips[0].stat().st_size
    (verify_span,) = telemetry.finished("deltaglider.verify")
    assert _attrs(verify_span)["deltaglider.valid"] is True
    assert _attrs(verify_span)["aws.s3.key"] == f"app/{zips[1].name}"


async def test_a_failed_get_is_an_error_span(
    client: AsyncDeltaGliderClient, telemetry: Telemetry, bucket: str
) -> None:
    with pytest.raises(ObjectNotFoundError):
        await client.get_object(Bucket=bucket, Key="app/missing.zip")
    (span,) = telemetry.finished("deltaglider.get")
    assert span.status.status_code is StatusCode.ERROR
    assert [event.name for event in span.events] == ["exception"]
    assert _attrs(span)["aws.s3.key"] == "app/missing.zip"


async def test_bulk_items_are_spans_around_their_puts_and_gets(
    client: AsyncDeltaGliderClient,
    telemetry: Telemetry,
    bucket: str,
    zips: list[Path],
    tmp_path: Path,
) -> None:
    results = await client.upload_many(zips, f"s3://{bucket}/app/")
    assert all(result.error is None for result in results)
    urls = [f"s3://{bucket}/app/{path.name}" for path in zips]
    await client.download_many(urls, tmp_path / "back")

    items = telemetry.finished("deltaglider.bulk.item")
    assert (
        sorted(_attrs(s)["deltaglider.bulk.operation"] for s in items)
        == ["download"] * 3 + ["upload"] * 3
    )
    by_id = {span.context.span_id: span for span in items}
    children = telemetry.finished("deltaglider.put") + telemetry.finished("deltaglider.get")
    assert len(children) == 6
    for child in children:
        assert child.parent is not None
        parent = by_id[child.parent.span_id]
        item = _attrs(parent)
        expected = "upload" if child.name == "deltaglider.put" else "download"
        assert item["deltaglider.bulk.operation"] == expected
        url = f"s3://{bucket}/{_attrs(child)['aws.s3.key']}"
        assert url in (item["deltaglider.bulk.source"], item["deltaglider.bulk.destination"])


async def test_s3_calls_traced_by_the_botocore_instrumentation_nest_under_deltaglider_spans(
    client: AsyncDeltaGliderClient, telemetry: Telemetry, bucket: str, zips: list[Path]
) -> None:
    instrumentor = AiobotocoreInstrumentor()
    instrumentor.instrument(tracer_provider=telemetry.tracer_provider)
    try:
        await client.put_object(Bucket=bucket, Key=f"app/{zips[0].name}", Body=zips[0])
        await client.put_object(Bucket=bucket, Key=f"app/{zips[1].name}", Body=zips[1])
    finally:
        instrumentor.uninstrument()
    puts = telemetry.finished("deltaglider.put")
    s3_spans = [s for s in telemetry.finished() if s.attributes and "rpc.method" in s.attributes]
    assert {_attrs(s)["rpc.method"] for s in s3_spans} >= {"PutObject", "HeadObject"}
    by_id = {span.context.span_id: span for span in telemetry.finished()}
    for s3_span in s3_spans:
        ancestor = s3_span
        while ancestor.parent is not None and ancestor.name != "deltaglider.put":
            ancestor = by_id[ancestor.parent.span_id]
        assert ancestor in puts, s3_span.name
    # The delta put wrote its .delta with a traced PutObject under its own span.
    delta_put = puts[1]
    assert any(
        s.parent is not None
        and s.parent.span_id == delta_put.context.span_id
        and _attrs(s)["rpc.method"] == "PutObject"
        for s in s3_spans
    )


async def test_metrics_count_bytes_saved_delta_ratio_and_xdelta3_time(
    client: AsyncDeltaGliderClient,
    telemetry: Telemetry,
    bucket: str,
    zips: list[Path],
    s3_admin: Any,
) -> None:
    for path in zips:
        await client.put_object(Bucket=bucket, Key=f"app/{path.name}", Body=path)
    seen = telemetry.metrics()
    stored_bytes = sum(
        s3_admin.head_object(Bucket=bucket, Key=key)["ContentLength"]
        for key in list_keys(s3_admin, bucket)
    )
    original = sum(path.stat().st_size for path in zips)

    def total(name: str) -> float:
        return float(sum(point.value for point in seen[name]))

    assert total("deltaglider.put.original_bytes") == original
    assert total("deltaglider.put.stored_bytes") == stored_bytes
    assert total("deltaglider.put.saved_bytes") == original - stored_bytes
    assert total("deltaglider.put") == 3
    ratios = seen["deltaglider.delta.ratio"]
    assert ratios
    assert all(0 <= point.value < 0.5 for point in ratios)
    (encode,) = seen["deltaglider.xdelta3.encode"]
    assert encode.count == 3  # a new reference's zero-diff delta is encoded too
    assert encode.sum > 0


async def test_retries_are_counted_by_operation(
    s3_server: LocalS3, telemetry: Telemetry, bucket: str, zips: list[Path]
) -> None:
    refused: list[str] = []

    def first_put(request: ProxyRequest) -> bool:
        if request.method == "PUT" and not refused:
            refused.append(request.target)
            return True
        return False

    with FaultProxy(s3_server.endpoint_url, seed=3) as proxy:
        proxy.configure(fault_rate=1.0, faults=("500",), fault_filter=first_put)
        config = proxy.wrap(s3_server).config(opentelemetry=True)
        async with AsyncDeltaGliderClient(config) as client:
            await client.put_object(Bucket=bucket, Key="app/notes.txt", Body=b"notes")
    assert len(refused) == 1
    retries = telemetry.points("deltaglider.s3.retries")
    assert [(dict(p.attributes), p.value) for p in retries] == [({"operation": "PutObject"}, 1)]


async def test_explicit_providers_through_the_service_constructor(
    s3_server: LocalS3, bucket: str, zips: list[Path]
) -> None:
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    meter = OpenTelemetryMetrics(MeterProvider(metric_readers=[reader]))
    config = s3_server.config()
    service = AsyncDeltaService(
        S3Storage(config, metrics=meter),
        XDelta3Diff(),
        StdlibHasher(),
        EncryptedReferenceCache(),
        UtcClock(),
        StdLogger(),
        meter,
        tracing=OpenTelemetryTracing(tracer_provider),
    )
    async with AsyncDeltaGliderClient(service) as client:
        await client.upload(zips[0], f"s3://{bucket}/app/")
    (span,) = spans.get_finished_spans()
    assert span.name == "deltaglider.put"
    assert dict(span.attributes or {})["deltaglider.stored_as"] == "reference"
    data = reader.get_metrics_data()
    assert data is not None
    names = {m.name for r in data.resource_metrics for s in r.scope_metrics for m in s.metrics}
    assert {"deltaglider.put", "deltaglider.put.original_bytes"} <= names


def test_opentelemetry_without_the_extra_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    monkeypatch.delitem(sys.modules, "deltaglider_async.adapters.opentelemetry", raising=False)
    with pytest.raises(InvalidArgumentError, match=r"deltaglider-async\[otel\]"):
        AsyncDeltaGliderClient(DeltaGliderConfig(opentelemetry=True))


def test_dg_opentelemetry_turns_it_on() -> None:
    assert DeltaGliderConfig.from_env({"DG_OPENTELEMETRY": "1"}).opentelemetry
    assert not DeltaGliderConfig.from_env({}).opentelemetry
    with pytest.raises(InvalidArgumentError, match="DG_OPENTELEMETRY"):
        DeltaGliderConfig.from_env({"DG_OPENTELEMETRY": "maybe"})


@pytest.fixture(autouse=True)
def _no_leftover_instrumentation() -> Iterator[None]:
    yield
    assert not AiobotocoreInstrumentor().is_instrumented_by_opentelemetry
