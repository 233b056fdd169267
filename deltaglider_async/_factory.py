"""Wiring: build the default adapters around an AsyncDeltaService from a config."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ._config import DeltaGliderConfig
from ._errors import InvalidArgumentError
from .adapters.clock import UtcClock
from .adapters.hashing import StdlibHasher
from .adapters.logging import StdLogger
from .adapters.metrics import NoopMetrics
from .adapters.reference_cache import EncryptedReferenceCache
from .adapters.s3_storage import S3Storage
from .adapters.xdelta3 import XDelta3Diff
from .core.service import AsyncDeltaService
from .ports.cache import ReferenceCachePort
from .ports.diff import DiffPort
from .ports.metrics import MetricsPort
from .ports.storage import StoragePort
from .ports.tracing import TracingPort


@dataclass(slots=True)
class ServiceBundle:
    """An AsyncDeltaService with the default adapters it was built from, closed together."""

    config: DeltaGliderConfig
    service: AsyncDeltaService
    storage: StoragePort
    cache: EncryptedReferenceCache
    diff: XDelta3Diff

    async def aclose(self) -> None:
        """Close the service, the cache and the S3 client; idempotent."""
        try:
            await self.service.aclose()
            await self.cache.aclose()
        finally:
            close = getattr(self.storage, "aclose", None)
            if close is not None:
                await close()


@dataclass(slots=True)
class GivenService:
    """An AsyncDeltaService built by the caller, with the adapters it holds.

    Closing it closes the service and every adapter that has an ``aclose``.
    """

    config: DeltaGliderConfig
    service: AsyncDeltaService
    storage: StoragePort
    cache: ReferenceCachePort
    diff: DiffPort

    @classmethod
    def of(cls, config: DeltaGliderConfig, service: AsyncDeltaService) -> GivenService:
        """Wrap ``service``."""
        return cls(config, service, service.storage, service.cache, service.diff)

    async def aclose(self) -> None:
        """Close the service, then every adapter that can be closed; idempotent."""
        try:
            await self.service.aclose()
            await self.cache.aclose()
        finally:
            for port in (self.service.hasher, self.service.metrics, self.storage):
                aclose = getattr(port, "aclose", None)
                if aclose is not None:
                    await aclose()


def build_service(
    config: DeltaGliderConfig,
    *,
    metrics: MetricsPort | None = None,
    storage: StoragePort | None = None,
) -> ServiceBundle:
    """Build the default adapters and the service (over ``storage`` when given, else
    :class:`S3Storage`). Does no I/O.

    With ``config.opentelemetry`` the spans and (unless ``metrics`` is given) the metrics
    go to OpenTelemetry; :class:`InvalidArgumentError` when it is not installed.
    """
    tracing: TracingPort | None = None
    if config.opentelemetry:
        tracing, otel_metrics = _opentelemetry()
        metrics = otel_metrics if metrics is None else metrics
    storage = S3Storage(config, metrics=metrics) if storage is None else storage
    cache = EncryptedReferenceCache()
    logger = StdLogger(level=config.log_level or logging.NOTSET)
    diff = XDelta3Diff(
        level=config.xdelta_level,
        secondary=config.xdelta_secondary,
        max_window=config.max_window,
        max_processes=config.diff_processes,
        logger=logger,
    )
    service = AsyncDeltaService(
        storage=storage,
        diff=diff,
        hasher=StdlibHasher(),
        cache=cache,
        clock=UtcClock(),
        logger=logger,
        metrics=metrics if metrics is not None else NoopMetrics(),
        tool_version=config.tool_version,
        max_ratio=config.max_ratio,
        compressed_references=config.compressed_references,
        rebase_ratio=config.rebase_ratio,
        tracing=tracing,
    )
    return ServiceBundle(config=config, service=service, storage=storage, cache=cache, diff=diff)


def _opentelemetry() -> tuple[TracingPort, MetricsPort]:
    """The OpenTelemetry adapters over the global providers (imported only when asked)."""
    try:
        from .adapters.opentelemetry import OpenTelemetryMetrics, OpenTelemetryTracing
    except ImportError as exc:
        raise InvalidArgumentError(
            f"opentelemetry=True needs OpenTelemetry: pip install 'deltaglider-async[otel]' ({exc})"
        ) from exc
    return OpenTelemetryTracing(), OpenTelemetryMetrics()
