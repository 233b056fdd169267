"""get_bucket_stats (SPEC §5): quick, sampled and detailed figures, and the stats cache."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from deltaglider_async import (
    AsyncDeltaGliderClient,
    BucketNotFoundError,
    BucketStats,
    DeltaGliderConfig,
    InvalidArgumentError,
)
from deltaglider_async.core.stats import cache_key
from deltaglider_async.testing import LocalS3
from deltaglider_async.testing_proxy import FaultProxy
from tests.archives import make_zip_versions

from .support import read_object

SPACES = {"releases/app": 4, "releases/lib": 3, "": 2}
TEXTS = {"docs/readme.txt": b"read me\n" * 300, "notes.txt": b"n" * 1234}


@dataclass
class Layout:
    """What the test bucket holds, as computed from the local files."""

    originals: dict[str, int]  # delta key -> original size
    direct: dict[str, int]  # direct key -> size

    def stored(self, s3_admin: Any, bucket: str) -> dict[str, int]:
        """Stored key -> size, .deltaglider/ excluded."""
        sizes: dict[str, int] = {}
        for page in s3_admin.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for item in page.get("Contents", []):
                if not item["Key"].startswith(".deltaglider/"):
                    sizes[item["Key"]] = item["Size"]
        return sizes


@pytest.fixture
async def client(s3_config: DeltaGliderConfig) -> AsyncIterator[AsyncDeltaGliderClient]:
    """An opened client on ``s3_server``."""
    async with AsyncDeltaGliderClient(s3_config) as opened:
        yield opened


@pytest.fixture
async def layout(
    client: AsyncDeltaGliderClient, bucket: str, s3_admin: Any, tmp_path: Path
) -> Layout:
    """Deltas in three deltaspaces (one at the root), direct objects, a stale cache."""
    originals: dict[str, int] = {}
    for n, (space, count) in enumerate(SPACES.items()):
        paths = make_zip_versions(tmp_path / f"s{n}", count, size=12_000 + 3_000 * n, seed=n)
        url = f"s3://{bucket}/{space}/" if space else f"s3://{bucket}/"
        results = await client.upload_many(paths, url)
        assert all(r.ok and r.value and r.value.is_delta for r in results)
        for path in paths:
            key = f"{space}/{path.name}.delta" if space else f"{path.name}.delta"
            originals[key] = path.stat().st_size
    for key, data in TEXTS.items():
        await client.put_object(Bucket=bucket, Key=key, Body=data)
    # A plain object written by another tool counts as a direct object.
    s3_admin.put_object(Bucket=bucket, Key="plain/other.bin", Body=b"x" * 500)
    direct = {k: len(v) for k, v in TEXTS.items()} | {"plain/other.bin": 500}
    # A stale cache of every mode: its validation matches nothing.
    for mode in ("quick", "sampled", "detailed"):
        s3_admin.put_object(
            Bucket=bucket,
            Key=cache_key(mode),
            Body=cache_document(mode, {"object_count": 1, "compressed_size": 2}, marker=7),
        )
    return Layout(originals, direct)


def cache_document(mode: str, validation: dict[str, int], *, marker: int) -> bytes:
    """A cache file whose figures are all ``marker``."""
    stats = {
        "bucket": "elsewhere",
        "object_count": marker,
        "total_size": marker,
        "compressed_size": marker,
        "space_saved": marker,
        "average_compression_ratio": 0.5,
        "delta_objects": marker,
        "direct_objects": marker,
        "mode": mode,
    }
    document = {
        "version": "1.0",
        "mode": mode,
        "computed_at": "2020-01-01T00:00:00.000000Z",
        "validation": validation,
        "stats": stats,
    }
    return json.dumps(document).encode()


def expected(layout: Layout, stored: dict[str, int], mode: str, bucket: str) -> BucketStats:
    """The figures get_bucket_stats must report, computed independently."""
    total = sum(layout.direct.values())
    for space in SPACES:
        deltas = [k for k in layout.originals if k.rpartition("/")[0] == space]
        reference = stored[f"{space}/reference.bin" if space else "reference.bin"]
        if mode == "quick":
            total += reference * len(deltas)
        elif mode == "detailed":
            total += sum(layout.originals[k] for k in deltas)
        else:
            sample = max(sorted(deltas, reverse=True), key=lambda k: stored[k])
            total += layout.originals[sample] * len(deltas)
    compressed = sum(stored.values())
    return BucketStats(
        bucket=bucket,
        object_count=len(layout.originals) + len(layout.direct),
        total_size=total,
        compressed_size=compressed,
        space_saved=total - compressed,
        average_compression_ratio=(total - compressed) / total,
        delta_objects=len(layout.originals),
        direct_objects=len(layout.direct),
        mode=mode,
    )


@pytest.mark.parametrize("mode", ["quick", "sampled", "detailed"])
async def test_figures_of_each_mode_and_the_cache_they_write(
    client: AsyncDeltaGliderClient, bucket: str, s3_admin: Any, layout: Layout, mode: str
) -> None:
    stored = layout.stored(s3_admin, bucket)

    stats = await client.get_bucket_stats(bucket, mode)  # type: ignore[arg-type]

    want = expected(layout, stored, mode, bucket)
    assert stats == want
    assert stats.space_saved > 0
    assert 0 < stats.average_compression_ratio < 1
    # The stale cache was replaced by one describing this listing.
    document = json.loads(read_object(s3_admin, bucket, cache_key(mode)))
    assert set(document) == {"version", "mode", "computed_at", "validation", "stats"}
    assert document["version"] == "1.0"
    assert document["mode"] == mode
    assert document["validation"] == {
        "object_count": len(stored),
        "compressed_size": sum(stored.values()),
    }
    assert document["stats"] == {
        "bucket": bucket,
        "object_count": want.object_count,
        "total_size": want.total_size,
        "compressed_size": want.compressed_size,
        "space_saved": want.space_saved,
        "average_compression_ratio": want.average_compression_ratio,
        "delta_objects": want.delta_objects,
        "direct_objects": want.direct_objects,
        "mode": mode,
    }
    assert document["computed_at"].endswith("Z")


async def test_detailed_is_exact_and_quick_is_an_estimate(
    client: AsyncDeltaGliderClient, bucket: str, layout: Layout
) -> None:
    detailed = await client.get_bucket_stats(bucket, "detailed", use_cache=False)
    assert detailed.total_size == sum(layout.originals.values()) + sum(layout.direct.values())
    quick = await client.get_bucket_stats(bucket, "quick", use_cache=False)
    assert quick.compressed_size == detailed.compressed_size
    assert quick.object_count == detailed.object_count


async def test_a_valid_cache_is_returned_without_computing(
    client: AsyncDeltaGliderClient, bucket: str, s3_admin: Any, layout: Layout, tmp_path: Path
) -> None:
    stored = layout.stored(s3_admin, bucket)
    validation = {"object_count": len(stored), "compressed_size": sum(stored.values())}
    s3_admin.put_object(
        Bucket=bucket,
        Key=cache_key("detailed"),
        Body=cache_document("detailed", validation, marker=123456789),
    )

    cached = await client.get_bucket_stats(bucket, "detailed")
    assert cached.total_size == 123456789
    assert cached.bucket == bucket
    assert cached.mode == "detailed"

    # use_cache=False neither reads nor writes it.
    fresh = await client.get_bucket_stats(bucket, "detailed", use_cache=False)
    assert fresh == expected(layout, stored, "detailed", bucket)
    assert b"123456789" in read_object(s3_admin, bucket, cache_key("detailed"))
    # refresh_cache recomputes and rewrites it.
    assert await client.get_bucket_stats(bucket, "detailed", refresh_cache=True) == fresh
    assert b"123456789" not in read_object(s3_admin, bucket, cache_key("detailed"))
    assert await client.get_bucket_stats(bucket, "detailed") == fresh

    # Any change to the bucket makes the cache stale.
    s3_admin.put_object(
        Bucket=bucket,
        Key=cache_key("detailed"),
        Body=cache_document("detailed", validation, marker=123456789),
    )
    # The next version of releases/app (same generator as the layout's).
    extra = make_zip_versions(tmp_path / "extra", SPACES["releases/app"] + 1, size=12_000, seed=0)
    await client.upload_many(extra[-1:], f"s3://{bucket}/releases/app/")
    again = await client.get_bucket_stats(bucket, "detailed")
    assert again.total_size != 123456789
    assert again.delta_objects == fresh.delta_objects + 1


async def test_cache_hit_sends_no_head(s3_server: LocalS3, bucket: str, layout: Layout) -> None:
    """Counted at the wire: a cache hit costs a LIST and a GET, no HEAD at all."""
    with FaultProxy(s3_server.endpoint_url) as proxy:
        async with AsyncDeltaGliderClient(proxy.wrap(s3_server).config()) as counted:
            first = await counted.get_bucket_stats(bucket, "detailed")
            assert proxy.stats().requests["HEAD"] == len(layout.originals)
            proxy.reset_stats()
            assert await counted.get_bucket_stats(bucket, "detailed") == first
            seen = proxy.stats().requests
            assert seen["HEAD"] == 0
            assert seen["GET"] == 2  # one LIST page and the cache file
            assert seen["PUT"] == 0
            proxy.reset_stats()
            await counted.get_bucket_stats(bucket, "sampled", use_cache=False)
            assert proxy.stats().requests["HEAD"] == len(SPACES)


async def test_missing_bucket_raises_in_every_mode(client: AsyncDeltaGliderClient) -> None:
    for mode in ("quick", "sampled", "detailed"):
        with pytest.raises(BucketNotFoundError):
            await client.get_bucket_stats("no-such-bucket-dg-stats", mode)
    with pytest.raises(InvalidArgumentError):
        await client.get_bucket_stats("whatever", "fast")  # type: ignore[arg-type]


async def test_empty_bucket(client: AsyncDeltaGliderClient, bucket: str) -> None:
    stats = await client.get_bucket_stats(bucket, "detailed")
    assert stats == BucketStats(bucket, 0, 0, 0, 0, 0.0, 0, 0, "detailed")


async def test_more_than_one_listing_page(moto_s3: LocalS3) -> None:
    """Buckets beyond 1000 keys are paged through, with no object cap."""
    admin = moto_s3.boto3_client()
    name = "dg-stats-paging"
    admin.create_bucket(Bucket=name)
    try:
        with ThreadPoolExecutor(16) as pool:
            list(
                pool.map(
                    lambda n: admin.put_object(Bucket=name, Key=f"k/{n:05d}", Body=b"ab"),
                    range(1_005),
                )
            )
        async with AsyncDeltaGliderClient(moto_s3.config()) as client:
            stats = await client.get_bucket_stats(name, use_cache=False)
        assert stats.object_count == stats.direct_objects == 1_005
        assert stats.total_size == stats.compressed_size == 2_010
    finally:
        keys = [{"Key": f"k/{n:05d}"} for n in range(1_005)]
        for start in range(0, len(keys), 1000):
            admin.delete_objects(Bucket=name, Delete={"Objects": keys[start : start + 1000]})
        admin.delete_bucket(Bucket=name)
        admin.close()
