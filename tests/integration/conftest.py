"""Fixtures of the integration tests: services wired to a real S3 server and real xdelta3."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any, Protocol

import pytest

from deltaglider_async._config import DeltaGliderConfig
from deltaglider_async._factory import ServiceBundle, build_service
from deltaglider_async.adapters.s3_storage import S3Storage
from deltaglider_async.core.service import AsyncDeltaService
from deltaglider_async.ports.metrics import MetricsPort


class BundleFactory(Protocol):
    """The ``make_bundle`` fixture's callable."""

    def __call__(
        self,
        config: DeltaGliderConfig | None = None,
        *,
        storage_type: type[S3Storage] | None = None,
        metrics: MetricsPort | None = None,
        **changes: Any,
    ) -> ServiceBundle: ...


def bundle_with_storage(
    config: DeltaGliderConfig, storage: S3Storage, metrics: MetricsPort | None = None
) -> ServiceBundle:
    """The default wiring of ``build_service`` around a given storage adapter."""
    return build_service(config, storage=storage, metrics=metrics)


@pytest.fixture
async def bundle(s3_config: DeltaGliderConfig) -> AsyncIterator[ServiceBundle]:
    """The default service and its adapters for ``s3_server``, closed after the test."""
    built = build_service(s3_config)
    try:
        yield built
    finally:
        await built.aclose()


@pytest.fixture
async def service(bundle: ServiceBundle) -> AsyncDeltaService:
    """An AsyncDeltaService on ``s3_server`` (function-scoped: its client belongs to this loop)."""
    return bundle.service


@pytest.fixture
async def make_bundle(s3_config: DeltaGliderConfig) -> AsyncIterator[BundleFactory]:
    """Build more independent services (own S3 client, cache and locks), all closed at the end.

    Call it with no argument for ``s3_config``, with a config, or with keyword changes to
    ``s3_config`` (``make_bundle(max_ratio=0.1)``). ``storage_type`` swaps in a subclass
    of S3Storage (to observe requests); ``metrics`` a metrics adapter.
    """
    async with AsyncExitStack() as stack:

        def factory(
            config: DeltaGliderConfig | None = None,
            *,
            storage_type: type[S3Storage] | None = None,
            metrics: MetricsPort | None = None,
            **changes: Any,
        ) -> ServiceBundle:
            base = s3_config if config is None else config
            if changes:
                base = base.with_changes(**changes)
            if storage_type is None:
                result = build_service(base, metrics=metrics)
            else:
                result = bundle_with_storage(base, storage_type(base), metrics)
            stack.push_async_callback(result.aclose)
            return result

        yield factory
