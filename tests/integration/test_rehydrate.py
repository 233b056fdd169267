"""Presigned URLs for deltas (rehydration), its purge, and 6.x's batch names (both servers)."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from deltaglider_async import AsyncDeltaGliderClient, InvalidArgumentError
from deltaglider_async._rehydrate import TEMP_PREFIX, purge_expired
from deltaglider_async.testing import LocalS3
from tests.archives import make_zip_versions

from .support import list_keys


@pytest.fixture
async def client(s3_server: LocalS3) -> AsyncIterator[AsyncDeltaGliderClient]:
    async with AsyncDeltaGliderClient(s3_server.config()) as opened:
        yield opened


@pytest.fixture
def zips(tmp_path: Path) -> list[Path]:
    return make_zip_versions(tmp_path / "z", 2, size=20_000)


def fetch(url: str) -> tuple[bytes, str]:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read(), response.headers.get("Content-Disposition", "")


async def test_a_presigned_url_serves_the_file_of_a_delta(
    client: AsyncDeltaGliderClient, bucket: str, s3_admin: Any, zips: list[Path]
) -> None:
    for path in zips:
        await client.upload(path, f"s3://{bucket}/rel/")
    key = f"rel/{zips[1].name}"
    url = await client.generate_presigned_url_with_rehydration(bucket, key, ExpiresIn=600)
    data, disposition = await anyio.to_thread.run_sync(fetch, url)
    assert data == zips[1].read_bytes()
    assert zips[1].name in disposition
    # The copy is hidden from listings and statistics, and reused by the next link.
    copies = [k for k in list_keys(s3_admin, bucket) if k.startswith(TEMP_PREFIX)]
    assert len(copies) == 1
    listed = await client.list_objects(Bucket=bucket)
    assert [o["Key"] for o in listed["Contents"]] == [f"rel/{p.name}" for p in zips]
    stats = await client.get_bucket_stats(bucket, use_cache=False)
    assert stats.object_count == 2
    await client.generate_presigned_url_with_rehydration(bucket, key, ExpiresIn=60)
    assert [k for k in list_keys(s3_admin, bucket) if k.startswith(TEMP_PREFIX)] == copies
    # A direct object needs no copy: its own key is presigned.
    await client.put_object(Bucket=bucket, Key="notes.txt", Body=b"notes")
    assert await client.rehydrate_for_download(bucket, "notes.txt") is None
    direct = await client.generate_presigned_url_with_rehydration(bucket, "notes.txt")
    assert (await anyio.to_thread.run_sync(fetch, direct))[0] == b"notes"
    with pytest.raises(InvalidArgumentError, match="ExpiresIn"):
        await client.generate_presigned_url_with_rehydration(bucket, key, ExpiresIn=10**9)


async def test_purge_removes_expired_copies_only(
    client: AsyncDeltaGliderClient, bucket: str, s3_admin: Any, zips: list[Path]
) -> None:
    for path in zips:
        await client.upload(path, f"s3://{bucket}/rel/")
    kept = await client.rehydrate_for_download(bucket, f"rel/{zips[1].name}", ExpiresIn=3600)
    assert kept is not None
    expired = f"{TEMP_PREFIX}{'a' * 64}/{int(time.time()) - 10}/old.zip"
    s3_admin.put_object(Bucket=bucket, Key=expired, Body=b"x" * 100)

    result = await client.purge_temp_files(bucket)

    assert (result["deleted_count"], result["expired_count"], result["error_count"]) == (1, 1, 0)
    assert result["total_size_freed"] == 100
    remaining = [k for k in list_keys(s3_admin, bucket) if k.startswith(TEMP_PREFIX)]
    assert remaining == [kept]
    later = await purge_expired(client.service.storage, bucket, now=time.time() + 7200)
    assert later.deleted_count == 1
    assert not [k for k in list_keys(s3_admin, bucket) if k.startswith(TEMP_PREFIX)]


async def test_batch_names_of_6x(
    client: AsyncDeltaGliderClient, bucket: str, s3_admin: Any, zips: list[Path], tmp_path: Path
) -> None:
    seen: list[tuple[str, int, int]] = []
    summaries = await client.upload_batch(
        zips, f"s3://{bucket}/batch/", progress_callback=lambda *a: seen.append(a)
    )
    # All in one directory (6.x made one per file), so the second is a delta of the first.
    assert [s.key for s in summaries] == [f"batch/{p.name}" for p in zips]
    assert [s.action for s in summaries] == ["create_reference", "create_delta"]
    assert sorted(seen) == sorted((p.name, i + 1, 2) for i, p in enumerate(zips))
    paths = await client.download_batch(
        [f"s3://{bucket}/batch/{p.name}" for p in zips], tmp_path / "out"
    )
    assert [p.read_bytes() for p in paths] == [p.read_bytes() for p in zips]
    with pytest.raises(FileNotFoundError):
        await client.upload_batch([tmp_path / "missing.zip"], f"s3://{bucket}/batch/")
