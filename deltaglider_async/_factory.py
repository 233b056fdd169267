"""Wiring: build the default adapters around an AsyncDeltaService from a config."""

from __future__ import annotations

from dataclasses import dataclass

from ._config import DeltaGliderConfig
from .adapters.clock import UtcClock
from .adapters.hashing import StdlibHasher
from .adapters.logging import StdLogger
from .adapters.metrics import NoopMetrics
from .adapters.reference_cache import EncryptedReferenceCache
from .adapters.s3_storage import S3Storage
from .adapters.xdelta3 import XDelta3Diff
from .core.service import AsyncDeltaService
from .ports.metrics import MetricsPort


@dataclass(slots=True)
class ServiceBundle:
    """An AsyncDeltaService with the adapters it was built from, closed together."""

    config: DeltaGliderConfig
    service: AsyncDeltaService
    storage: S3Storage
    cache: EncryptedReferenceCache
    diff: XDelta3Diff

    async def aclose(self) -> None:
        """Close the service, the cache and the S3 client; idempotent."""
        try:
            await self.service.aclose()
            await self.cache.aclose()
        finally:
            await self.storage.aclose()


def build_service(
    config: DeltaGliderConfig, *, metrics: MetricsPort | None = None
) -> ServiceBundle:
    """Build the default adapters and the service. Does no I/O."""
    storage = S3Storage(config)
    cache = EncryptedReferenceCache()
    diff = XDelta3Diff(
        level=config.xdelta_level,
        secondary=config.xdelta_secondary,
        max_window=config.max_window,
        max_processes=config.diff_processes,
    )
    service = AsyncDeltaService(
        storage=storage,
        diff=diff,
        hasher=StdlibHasher(),
        cache=cache,
        clock=UtcClock(),
        logger=StdLogger(),
        metrics=metrics if metrics is not None else NoopMetrics(),
        tool_version=config.tool_version,
        max_ratio=config.max_ratio,
    )
    return ServiceBundle(config=config, service=service, storage=storage, cache=cache, diff=diff)
