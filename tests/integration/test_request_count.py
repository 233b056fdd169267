"""The local reference cache (SPEC §6): reads from one deltaspace GET reference.bin once."""

from __future__ import annotations

from pathlib import Path
from typing import cast

from deltaglider_async._models import DeltaSpace
from deltaglider_async.adapters.metrics import RecordingMetrics
from deltaglider_async.core.service import AsyncDeltaService
from tests.archives import make_versions

from .conftest import BundleFactory
from .support import RecordingStorage, key_of


async def test_second_read_does_not_get_the_reference_again(
    service: AsyncDeltaService, make_bundle: BundleFactory, bucket: str, tmp_path: Path
) -> None:
    paths = make_versions(tmp_path / "src", 3, "zip", seed=51)
    space = DeltaSpace(bucket, "app")
    for path in paths:
        await service.put(path, space)
    metrics = RecordingMetrics()
    reader = make_bundle(storage_type=RecordingStorage, metrics=metrics)
    storage = cast(RecordingStorage, reader.storage)

    first = await reader.service.get(key_of(space, paths[1].name), tmp_path / "one")
    assert storage.gets["app/reference.bin"] == 1
    second = await reader.service.get(key_of(space, paths[2].name), tmp_path / "two")
    third = await reader.service.get(key_of(space, paths[0].name), tmp_path / "three")

    assert not first.reference_cache_hit
    assert second.reference_cache_hit
    assert third.reference_cache_hit
    assert storage.gets["app/reference.bin"] == 1
    for path in paths:
        assert storage.gets[f"app/{path.name}.delta"] == 1
    assert (tmp_path / "one").read_bytes() == paths[1].read_bytes()
    assert (tmp_path / "two").read_bytes() == paths[2].read_bytes()
    assert (tmp_path / "three").read_bytes() == paths[0].read_bytes()
    assert metrics.counter("deltaglider.cache.hit") == 2
    assert metrics.counter("deltaglider.cache.miss") == 1


async def test_writer_never_gets_its_own_reference(
    make_bundle: BundleFactory, bucket: str, tmp_path: Path
) -> None:
    """The client that created a reference has it cached: puts and gets reuse it."""
    paths = make_versions(tmp_path / "src", 3, "zip", seed=52)
    space = DeltaSpace(bucket, "app")
    writer = make_bundle(storage_type=RecordingStorage)
    storage = cast(RecordingStorage, writer.storage)

    summaries = [await writer.service.put(path, space) for path in paths]
    for path in paths:
        out = tmp_path / "out"
        got = await writer.service.get(key_of(space, path.name), out)
        assert got.reference_cache_hit
        assert out.read_bytes() == path.read_bytes()

    assert [s.cache_hit for s in summaries] == [False, True, True]
    assert storage.gets["app/reference.bin"] == 0
    assert storage.conditional_puts == [("app/reference.bin", "created")]
