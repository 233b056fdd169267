"""Tampered deltas, references and cache entries: an integrity error, never a wrong byte."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from deltaglider_async._errors import IntegrityError
from deltaglider_async._factory import ServiceBundle
from deltaglider_async._models import DeltaSpace, ObjectKey
from deltaglider_async._scratch import OWNER_FILE
from deltaglider_async.core.service import AsyncDeltaService
from tests.archives import make_versions

from .conftest import BundleFactory
from .support import flip_byte, key_of, read_object, rewrite_object

SENTINEL = b"sentinel: the previous download, which must survive\n"


def tamper(s3_admin: Any, bucket: str, key: str) -> None:
    """Invert a few bytes in the middle of a stored object, keeping its metadata."""
    data = read_object(s3_admin, bucket, key)
    middle = len(data) // 2
    for offset in (middle, middle + 7, len(data) - 1):
        data = flip_byte(data, offset)
    rewrite_object(s3_admin, bucket, key, body=data)


def place_sentinel(dest: Path) -> list[str]:
    """Put a previous download at ``dest``; return the listing of its directory."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(SENTINEL)
    return listing(dest.parent)


def listing(directory: Path) -> list[str]:
    """Names in ``directory``, sorted."""
    return sorted(p.name for p in directory.iterdir())


async def assert_get_refused(service: AsyncDeltaService, key: ObjectKey, dest: Path) -> None:
    """get() raises IntegrityError and leaves ``dest`` and its directory as they were."""
    before = place_sentinel(dest)

    with pytest.raises(IntegrityError) as info:
        await service.get(key, dest)

    assert isinstance(info.value, IOError)
    assert await anyio.Path(dest).read_bytes() == SENTINEL
    assert listing(dest.parent) == before


async def stored_versions(
    service: AsyncDeltaService, bucket: str, tmp_path: Path
) -> tuple[DeltaSpace, list[Path]]:
    """Three zip versions stored in ``bucket``/``app``: a reference and two deltas."""
    paths = make_versions(tmp_path / "src", 3, "zip", seed=41)
    space = DeltaSpace(bucket, "app")
    operations = [(await service.put(path, space)).action for path in paths]
    assert operations == ["create_reference", "create_delta", "create_delta"]
    return space, paths


async def test_tampered_delta_is_refused(
    service: AsyncDeltaService,
    make_bundle: BundleFactory,
    bucket: str,
    s3_admin: Any,
    tmp_path: Path,
) -> None:
    space, paths = await stored_versions(service, bucket, tmp_path)
    tampered = paths[1].name
    tamper(s3_admin, bucket, f"app/{tampered}.delta")

    for reader in (service, make_bundle().service):
        await assert_get_refused(reader, key_of(space, tampered), tmp_path / "dl" / tampered)
        result = await reader.verify(key_of(space, tampered))
        assert not result.valid
        assert result.expected_sha256
        # The other versions are unaffected.
        out = tmp_path / "ok"
        await reader.get(key_of(space, paths[2].name), out)
        assert out.read_bytes() == paths[2].read_bytes()


async def test_tampered_reference_is_refused(
    service: AsyncDeltaService,
    make_bundle: BundleFactory,
    bucket: str,
    s3_admin: Any,
    tmp_path: Path,
) -> None:
    space, paths = await stored_versions(service, bucket, tmp_path)
    tamper(s3_admin, bucket, "app/reference.bin")

    # A client without a cached copy must fetch the stored reference, and refuse it.
    reader = make_bundle().service
    for path in paths:
        await assert_get_refused(reader, key_of(space, path.name), tmp_path / "dl" / path.name)
        assert not (await reader.verify(key_of(space, path.name))).valid
        # verify() judges the bucket, even where a good copy of the reference is cached.
        assert not (await service.verify(key_of(space, path.name))).valid


async def test_tampered_cache_entry_is_refused_then_evicted(
    bundle: ServiceBundle, bucket: str, tmp_path: Path
) -> None:
    service = bundle.service
    space, paths = await stored_versions(service, bucket, tmp_path)
    warm = tmp_path / "warm"
    assert (await service.get(key_of(space, paths[1].name), warm)).reference_cache_hit
    directory = bundle.cache.directory
    assert directory is not None
    entries = [p for p in directory.iterdir() if p.is_file() and p.name != OWNER_FILE]
    assert len(entries) == 1, entries
    (entry,) = entries
    data = entry.read_bytes()
    entry.write_bytes(flip_byte(data, len(data) // 2))

    await assert_get_refused(service, key_of(space, paths[2].name), tmp_path / "dl" / "v3")

    # The bad entry is gone: the next read fetches the reference again and succeeds.
    assert not entry.exists()
    out = tmp_path / "dl" / "v3"
    summary = await service.get(key_of(space, paths[2].name), out)
    assert not summary.reference_cache_hit
    assert out.read_bytes() == paths[2].read_bytes()
