"""Never serve wrong bytes: objects whose deltaglider metadata was lost or broken (both servers).

Tools that copy objects between providers (rclone, ``copy_object`` with
``MetadataDirective=REPLACE``) may drop ``x-amz-meta-*``. A ``.delta`` object without its
metadata holds VCDIFF bytes; they must never be handed out as the file, by any entry
point, and the error must say what is wrong and how to repair it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from deltaglider_async import (
    AsyncDeltaGliderClient,
    IntegrityError,
    ObjectKey,
    UnverifiableObjectError,
)
from deltaglider_async.testing import LocalS3
from tests.archives import make_zip_versions

from .support import flip_byte, head_metadata, read_object

VCDIFF_MAGIC = b"\xd6\xc3\xc4\x00"


@pytest.fixture
async def client(s3_server: LocalS3) -> AsyncIterator[AsyncDeltaGliderClient]:
    async with AsyncDeltaGliderClient(s3_server.config()) as opened:
        yield opened


@pytest.fixture
def versions(tmp_path: Path) -> list[Path]:
    return make_zip_versions(tmp_path / "src", 2, size=40_000)


async def store_two_versions(
    client: AsyncDeltaGliderClient, bucket: str, versions: list[Path]
) -> str:
    for path in versions:
        await client.upload(path, f"s3://{bucket}/rel/")
    return f"rel/{versions[1].name}"


def drop_metadata(s3_admin: Any, bucket: str, key: str, keep: dict[str, str] | None = None) -> None:
    """What rclone or ``copy_object(MetadataDirective="REPLACE")`` does to an object."""
    s3_admin.copy_object(
        Bucket=bucket,
        Key=key,
        CopySource={"Bucket": bucket, "Key": key},
        Metadata=keep or {},
        MetadataDirective="REPLACE",
    )


def assert_repair_hint(error: BaseException, stored_key: str) -> None:
    text = str(error)
    assert stored_key in text
    assert "metadata" in text
    assert "upload" in text  # how to repair: upload again, or restore the metadata
    assert "restore" in text


async def every_read_refuses(
    client: AsyncDeltaGliderClient, bucket: str, name: str, tmp_path: Path
) -> list[str]:
    """Drive every read entry point on ``name``; return the ones that did NOT refuse."""
    out = tmp_path / "out.zip"
    served: list[str] = []
    reads: dict[str, Callable[[], Awaitable[Any]]] = {
        "get_object": lambda: client.get_object(Bucket=bucket, Key=name),
        "get_object range": lambda: client.get_object(Bucket=bucket, Key=name, Range="bytes=0-9"),
        "head_object": lambda: client.head_object(Bucket=bucket, Key=name),
        "download": lambda: client.download(f"s3://{bucket}/{name}", out),
        "copy_object": lambda: client.copy_object(
            Bucket=bucket, Key="copy/x.zip", CopySource={"Bucket": bucket, "Key": name}
        ),
        "presign": lambda: client.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": name}
        ),
    }
    for label, read in reads.items():
        try:
            result = await read()
        except UnverifiableObjectError as exc:
            assert_repair_hint(exc, name if name.endswith(".delta") else f"{name}.delta")
            continue
        if isinstance(result, dict) and "Body" in result:
            await result["Body"].close()
        served.append(label)
    assert not out.exists()
    return served


async def test_a_delta_that_lost_its_metadata_is_never_served(
    client: AsyncDeltaGliderClient,
    bucket: str,
    s3_admin: Any,
    versions: list[Path],
    tmp_path: Path,
) -> None:
    name = await store_two_versions(client, bucket, versions)
    drop_metadata(s3_admin, bucket, name + ".delta")
    assert read_object(s3_admin, bucket, name + ".delta").startswith(VCDIFF_MAGIC)

    assert await every_read_refuses(client, bucket, name, tmp_path) == []
    # By its exact stored name too: that name still means "the file" to deltaglider.
    assert await every_read_refuses(client, bucket, name + ".delta", tmp_path) == []
    result = await client.service.verify(ObjectKey(bucket, name))
    assert not result.valid
    assert "metadata" in result.message
    assert not await client.verify(f"s3://{bucket}/{name}")
    # It still lists (and can be deleted), so the user can see and repair it.
    listed = await client.list_objects(Bucket=bucket, Prefix="rel/")
    assert name in [o["Key"] for o in listed["Contents"]]
    await client.delete_object(Bucket=bucket, Key=name)
    assert (await client.list_objects(Bucket=bucket, Prefix="rel/"))["KeyCount"] == 1


@pytest.mark.parametrize(
    "kept",
    [
        {"dg-ref-key": "rel/reference.bin", "dg-tool": "x"},  # claimed, nothing to verify
        {"dg-file-sha256": "not a sha", "dg-ref-key": "rel/reference.bin"},  # malformed
        {"dg-ref-path": "reference.bin", "dg-file-size": "40000"},
    ],
)
async def test_other_broken_metadata_is_refused_too(
    client: AsyncDeltaGliderClient,
    bucket: str,
    s3_admin: Any,
    versions: list[Path],
    tmp_path: Path,
    kept: dict[str, str],
) -> None:
    name = await store_two_versions(client, bucket, versions)
    drop_metadata(s3_admin, bucket, name + ".delta", keep=kept)
    assert await every_read_refuses(client, bucket, name, tmp_path) == []
    assert not await client.verify(f"s3://{bucket}/{name}")


async def test_a_direct_object_that_lost_its_metadata_is_a_plain_object(
    client: AsyncDeltaGliderClient, bucket: str, s3_admin: Any
) -> None:
    # Its bytes are the file's own: it reads as a plain S3 object, as deltaglider never
    # claimed it (nothing says otherwise).
    await client.put_object(Bucket=bucket, Key="docs/readme.txt", Body=b"hello")
    drop_metadata(s3_admin, bucket, "docs/readme.txt")
    response = await client.get_object(Bucket=bucket, Key="docs/readme.txt")
    async with response["Body"] as body:
        assert await body.read() == b"hello"


async def test_a_range_of_a_tampered_direct_object_is_refused(
    client: AsyncDeltaGliderClient, bucket: str, s3_admin: Any
) -> None:
    # A range cannot be checked alone: it is served from a verified copy, so a tampered
    # object yields an error, not wrong bytes.
    data = bytes(range(256)) * 100
    await client.put_object(Bucket=bucket, Key="d/data.bin", Body=data)
    metadata = head_metadata(s3_admin, bucket, "d/data.bin")
    s3_admin.put_object(
        Bucket=bucket, Key="d/data.bin", Body=flip_byte(data, 5000), Metadata=metadata
    )
    with pytest.raises(IntegrityError):
        await client.get_object(Bucket=bucket, Key="d/data.bin", Range="bytes=4990-5010")
    # An intact object's range is served as asked.
    await client.put_object(Bucket=bucket, Key="d/ok.bin", Body=data)
    response = await client.get_object(Bucket=bucket, Key="d/ok.bin", Range="bytes=4990-5010")
    async with response["Body"] as body:
        assert await body.read() == data[4990:5011]
    assert response["ContentRange"] == f"bytes 4990-5010/{len(data)}"


def replace_metadata(s3_admin: Any, bucket: str, key: str, change: dict[str, str | None]) -> None:
    """The object's metadata with ``change`` applied (None removes a name)."""
    metadata = dict(s3_admin.head_object(Bucket=bucket, Key=key)["Metadata"])
    for name, value in change.items():
        if value is None:
            metadata.pop(name, None)
        else:
            metadata[name] = value
    drop_metadata(s3_admin, bucket, key, keep=metadata)


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"dg-file-size": "abc"}, id="size-not-a-number"),
        pytest.param({"dg-file-size": "-3"}, id="size-negative"),
    ],
)
async def test_unreadable_delta_metadata_is_refused_by_every_read_and_verify(
    client: AsyncDeltaGliderClient,
    bucket: str,
    s3_admin: Any,
    versions: list[Path],
    tmp_path: Path,
    change: dict[str, str | None],
) -> None:
    name = await store_two_versions(client, bucket, versions)
    replace_metadata(s3_admin, bucket, name + ".delta", change)
    # head_object included: it would report the patch's size and ETag as the file's.
    assert await every_read_refuses(client, bucket, name, tmp_path) == []
    assert not await client.verify(f"s3://{bucket}/{name}")


async def test_a_recorded_size_that_contradicts_the_bytes_fails_reads_and_verify_alike(
    client: AsyncDeltaGliderClient,
    bucket: str,
    s3_admin: Any,
    versions: list[Path],
    tmp_path: Path,
) -> None:
    name = await store_two_versions(client, bucket, versions)
    replace_metadata(s3_admin, bucket, name + ".delta", {"dg-file-size": "5"})
    with pytest.raises(IntegrityError, match="5 are recorded"):
        await client.download(f"s3://{bucket}/{name}", tmp_path / "out.zip")
    assert not (tmp_path / "out.zip").exists()
    result = await client.service.verify(ObjectKey(bucket, name))
    assert not result.valid
    assert "5 are recorded" in (result.details or "")


@pytest.mark.parametrize(
    "metadata",
    [
        {"ref-key": "something"},
        {"ref_key": "rel/reference.bin"},
        {"file-sha256": "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="},
        {"tool": "my-own-tool", "note": "hello"},
        {"dg-owner": "team"},
    ],
)
async def test_plain_objects_whose_metadata_looks_like_deltaglider_are_served(
    client: AsyncDeltaGliderClient, bucket: str, s3_admin: Any, metadata: dict[str, str]
) -> None:
    s3_admin.put_object(Bucket=bucket, Key="plain/data.bin", Body=b"plain bytes", Metadata=metadata)
    response = await client.get_object(Bucket=bucket, Key="plain/data.bin")
    async with response["Body"] as body:
        assert await body.read() == b"plain bytes"
    assert response["Metadata"] == metadata
    head = await client.head_object(Bucket=bucket, Key="plain/data.bin")
    assert head["ContentLength"] == len(b"plain bytes")
    assert head["DeltaGlider"]["StoredAs"] == "plain"
    assert await client.verify(f"s3://{bucket}/plain/data.bin")
