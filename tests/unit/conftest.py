"""Fixtures of the core's unit tests: an AsyncDeltaService wired to in-memory fakes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from deltaglider_async.core.service import AsyncDeltaService
from tests.fakes import (
    FakeDiff,
    FakeHasher,
    FixedClock,
    InMemoryReferenceCache,
    InMemoryStorage,
    RecordingLogger,
    RecordingMetrics,
)

from .support import BUCKET, TOOL, Harness

MakeHarness = Callable[..., Harness]


@pytest.fixture
def storage() -> InMemoryStorage:
    """An in-memory object store holding one empty bucket."""
    return InMemoryStorage(buckets=[BUCKET])


@pytest.fixture
async def make_harness(
    storage: InMemoryStorage, tmp_path: Path
) -> AsyncIterator[Callable[..., Harness]]:
    """Build services over fakes; every one shares ``storage`` unless given another.

    Each service gets its own cache, diff, work directory and local files. At teardown
    the services are closed and no GET body may be left open.
    """
    made: list[Harness] = []

    def make(
        *,
        store: InMemoryStorage | None = None,
        max_ratio: float = 0.5,
        cache: InMemoryReferenceCache | None = None,
    ) -> Harness:
        index = len(made)
        root = tmp_path / f"svc{index}"
        work_root = root / "work"
        work_root.mkdir(parents=True)
        store = store if store is not None else storage
        diff, hasher, clock = FakeDiff(), FakeHasher(), FixedClock()
        cache = cache if cache is not None else InMemoryReferenceCache()
        logger, metrics = RecordingLogger(), RecordingMetrics()
        service = AsyncDeltaService(
            storage=store,
            diff=diff,
            hasher=hasher,
            cache=cache,
            clock=clock,
            logger=logger,
            metrics=metrics,
            tool_version=TOOL,
            max_ratio=max_ratio,
            work_root=work_root,
        )
        harness = Harness(
            service, store, diff, cache, hasher, clock, logger, metrics, work_root, root
        )
        made.append(harness)
        return harness

    yield make
    for harness in made:
        await harness.service.aclose()
    assert not storage.open_bodies, "a GET body was left open"


@pytest.fixture
def h(make_harness: MakeHarness) -> Harness:
    """One service over fakes, sharing the ``storage`` fixture."""
    return make_harness()
