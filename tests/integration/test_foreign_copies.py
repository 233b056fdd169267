"""Copies made by other tools keep working after the original is gone (both servers).

``aws s3 sync``, rclone and S3 replication copy every stored key with its metadata: the
copied deltas still name the original's ``dg-ref-key``. Once the original directory is
removed they must read against the copy's own ``reference.bin`` (``dg-ref-path``), whose
SHA-256 is the one they record.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from deltaglider_async import AsyncDeltaGliderClient, IntegrityError
from deltaglider_async.testing import LocalS3
from tests.archives import make_zip_versions

from .support import head_metadata, list_keys, rewrite_object, sha256_file
from .test_upstream_fixture import load_fixture_bucket, user_objects


@pytest.fixture
async def client(s3_server: LocalS3) -> AsyncIterator[AsyncDeltaGliderClient]:
    async with AsyncDeltaGliderClient(s3_server.config()) as opened:
        yield opened


@pytest.fixture
def other_bucket(s3_admin: Any) -> Iterator[str]:
    name = f"o-{uuid.uuid4().hex[:12]}"
    s3_admin.create_bucket(Bucket=name)
    try:
        yield name
    finally:
        for key in list_keys(s3_admin, name):
            s3_admin.delete_object(Bucket=name, Key=key)
        s3_admin.delete_bucket(Bucket=name)


def copy_tree(admin: Any, bucket: str, prefix: str, dest_bucket: str, dest_prefix: str) -> None:
    """What ``aws s3 sync`` does server side: every stored key, metadata kept."""
    for key in list_keys(admin, bucket, prefix):
        admin.copy_object(
            Bucket=dest_bucket,
            Key=dest_prefix + key[len(prefix) :],
            CopySource={"Bucket": bucket, "Key": key},
            MetadataDirective="COPY",
        )


@pytest.mark.parametrize(
    ("same_bucket", "dest_prefix"),
    [
        pytest.param(True, "backup/", id="same-bucket"),
        pytest.param(False, "backup/", id="cross-bucket-new-prefix"),
        pytest.param(False, "releases/", id="replication-same-keys"),
    ],
)
async def test_a_copied_directory_survives_the_original(
    client: AsyncDeltaGliderClient,
    bucket: str,
    other_bucket: str,
    s3_admin: Any,
    tmp_path: Path,
    same_bucket: bool,
    dest_prefix: str,
) -> None:
    versions = make_zip_versions(tmp_path / "v", 3, size=30_000, seed=31)
    for path in versions:
        await client.upload(path, f"s3://{bucket}/releases/")
    dest_bucket = bucket if same_bucket else other_bucket
    copy_tree(s3_admin, bucket, "releases/", dest_bucket, dest_prefix)
    copied = f"{dest_prefix}{versions[1].name}.delta"
    assert head_metadata(s3_admin, dest_bucket, copied)["dg-ref-key"] == "releases/reference.bin"

    await client.delete_objects_recursive(Bucket=bucket, Prefix="releases/")
    assert list_keys(s3_admin, bucket, "releases/") == {}

    for path in versions:
        url = f"s3://{dest_bucket}/{dest_prefix}{path.name}"
        await client.download(url, tmp_path / "out.zip")
        assert (tmp_path / "out.zip").read_bytes() == path.read_bytes()
        assert await client.verify(url)
    # A fresh client (no cached reference) reads them from the bucket alone.
    async with AsyncDeltaGliderClient(client.config) as fresh:
        url = f"s3://{dest_bucket}/{dest_prefix}{versions[2].name}"
        response = await fresh.get_object(Bucket=dest_bucket, Key=url.split("/", 3)[3])
        async with response["Body"] as body:
            assert await body.read() == versions[2].read_bytes()


async def test_a_local_reference_with_other_bytes_is_not_used(
    client: AsyncDeltaGliderClient, bucket: str, s3_admin: Any, tmp_path: Path
) -> None:
    # Only a reference whose SHA-256 is the recorded one may decode a delta.
    versions = make_zip_versions(tmp_path / "v", 2, size=30_000, seed=32)
    for path in versions:
        await client.upload(path, f"s3://{bucket}/releases/")
    copy_tree(s3_admin, bucket, "releases/", bucket, "backup/")
    rewrite_object(s3_admin, bucket, "backup/reference.bin", body=b"PK\x03\x04 other bytes")
    await client.delete_objects_recursive(Bucket=bucket, Prefix="releases/")
    await client.clear_cache()
    with pytest.raises(IntegrityError, match="no reference with its recorded sha256"):
        await client.download(f"s3://{bucket}/backup/{versions[1].name}", tmp_path / "x")
    assert not (tmp_path / "x").exists()
    assert not await client.verify(f"s3://{bucket}/backup/{versions[1].name}")


async def test_a_copied_6x_directory_survives_the_original(
    client: AsyncDeltaGliderClient,
    bucket: str,
    other_bucket: str,
    s3_admin: Any,
    fixtures_dir: Path,
    tmp_path: Path,
) -> None:
    # 6.x records dg-ref-key only (no dg-ref-path): the copy's own directory is still
    # where its reference is looked for once the recorded one is gone.
    manifest = load_fixture_bucket(s3_admin, bucket, fixtures_dir)
    copy_tree(s3_admin, bucket, "releases/", bucket, "backup/")
    copy_tree(s3_admin, bucket, "releases/", other_bucket, "x/")
    await client.delete_objects_recursive(Bucket=bucket, Prefix="releases/")
    assert list_keys(s3_admin, bucket, "releases/") == {}
    for obj in user_objects(manifest):
        logical = obj["key"].removesuffix(".delta")
        original = manifest["originals"][logical.rpartition("/")[2]]
        for url in (
            f"s3://{bucket}/backup/{logical.removeprefix('releases/')}",
            f"s3://{other_bucket}/x/{logical.removeprefix('releases/')}",
        ):
            out = tmp_path / "out"
            await client.download(url, out)
            assert sha256_file(out) == original["sha256"], url
            assert await client.verify(url), url
