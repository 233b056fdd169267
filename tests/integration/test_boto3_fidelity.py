"""Code written for boto3 gets what boto3 gives: checksums, regions, tags, errors, request ids.

Both servers. Each test names the boto3 behaviour it holds the client to; where the
client cannot do what boto3 does, it refuses by name rather than ignoring the parameter.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from deltaglider_async import (
    AsyncDeltaGliderClient,
    BucketNotFoundError,
    DeltaGliderError,
    DeltaSpace,
    InvalidArgumentError,
    ObjectNotFoundError,
)
from deltaglider_async.testing import LocalS3
from tests.archives import make_zip_versions

from .support import list_keys


@pytest.fixture
async def client(s3_server: LocalS3) -> AsyncIterator[AsyncDeltaGliderClient]:
    async with AsyncDeltaGliderClient(s3_server.config()) as opened:
        yield opened


@pytest.fixture
def zips(tmp_path: Path) -> list[bytes]:
    return [p.read_bytes() for p in make_zip_versions(tmp_path / "z", 2, size=20_000)]


def b64_sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


# --------------------------------------------------------------------------- checksums


@pytest.mark.parametrize("algorithm", ["CRC32", "CRC32C", "SHA1", "CRC64NVME", "sha256", "bogus"])
async def test_checksum_algorithms_other_than_sha256_are_refused_and_store_nothing(
    client: AsyncDeltaGliderClient, bucket: str, s3_admin: Any, algorithm: str
) -> None:
    with pytest.raises(InvalidArgumentError, match="ChecksumAlgorithm"):
        await client.put_object(
            Bucket=bucket, Key="n.txt", Body=b"abc", ChecksumAlgorithm=algorithm
        )
    assert list_keys(s3_admin, bucket) == {}


async def test_checksum_algorithm_sha256_returns_the_files_checksum(
    client: AsyncDeltaGliderClient, bucket: str, zips: list[bytes]
) -> None:
    await client.put_object(Bucket=bucket, Key="app/v1.zip", Body=zips[0])
    put = await client.put_object(
        Bucket=bucket, Key="app/v2.zip", Body=zips[1], ChecksumAlgorithm="SHA256"
    )
    assert put["DeltaGliderInfo"]["IsDelta"]
    assert put["ChecksumSHA256"] == b64_sha256(zips[1])


@pytest.mark.parametrize("method", ["head_object", "get_object"])
async def test_checksum_mode_gives_the_files_sha256_for_deltas_and_direct_objects(
    client: AsyncDeltaGliderClient, bucket: str, zips: list[bytes], method: str
) -> None:
    await client.put_object(Bucket=bucket, Key="app/v1.zip", Body=zips[0])
    await client.put_object(Bucket=bucket, Key="app/v2.zip", Body=zips[1])
    await client.put_object(Bucket=bucket, Key="app/notes.txt", Body=b"plain text")
    for key, data in [("app/v2.zip", zips[1]), ("app/notes.txt", b"plain text")]:
        response = await getattr(client, method)(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
        if method == "get_object":
            await response["Body"].close()
        assert response["ChecksumSHA256"] == b64_sha256(data), key
        assert response["ChecksumType"] == "FULL_OBJECT"
        without = await getattr(client, method)(Bucket=bucket, Key=key)
        if method == "get_object":
            await without["Body"].close()
        assert "ChecksumSHA256" not in without


async def test_checksum_mode_on_a_delta_never_returns_the_patchs_checksums(
    client: AsyncDeltaGliderClient, bucket: str, s3_admin: Any, zips: list[bytes]
) -> None:
    await client.put_object(Bucket=bucket, Key="app/v1.zip", Body=zips[0])
    await client.put_object(Bucket=bucket, Key="app/v2.zip", Body=zips[1])
    head = await client.head_object(Bucket=bucket, Key="app/v2.zip", ChecksumMode="ENABLED")
    patch = s3_admin.get_object(Bucket=bucket, Key="app/v2.zip.delta")["Body"].read()
    patch_sums = {base64.b64encode(hashlib.sha256(patch).digest()).decode()}
    returned = {v for k, v in head.items() if k.startswith("Checksum") and k != "ChecksumType"}
    assert returned == {b64_sha256(zips[1])}
    assert not returned & patch_sums


async def test_checksum_mode_returns_what_s3_keeps_for_a_plain_object(
    client: AsyncDeltaGliderClient, bucket: str, s3_admin: Any
) -> None:
    data = b"stored by plain boto3"
    s3_admin.put_object(Bucket=bucket, Key="plain.bin", Body=data, ChecksumAlgorithm="SHA256")
    expected = s3_admin.head_object(Bucket=bucket, Key="plain.bin", ChecksumMode="ENABLED")
    head = await client.head_object(Bucket=bucket, Key="plain.bin", ChecksumMode="ENABLED")
    assert head.get("ChecksumSHA256") == expected.get("ChecksumSHA256")


async def test_checksum_mode_other_than_enabled_is_refused(
    client: AsyncDeltaGliderClient, bucket: str
) -> None:
    await client.put_object(Bucket=bucket, Key="a.txt", Body=b"x")
    with pytest.raises(InvalidArgumentError, match="ChecksumMode"):
        await client.head_object(Bucket=bucket, Key="a.txt", ChecksumMode="DISABLED")


async def test_a_range_carries_no_whole_object_checksum(
    client: AsyncDeltaGliderClient, bucket: str
) -> None:
    await client.put_object(Bucket=bucket, Key="a.txt", Body=b"0123456789")
    response = await client.get_object(
        Bucket=bucket, Key="a.txt", Range="bytes=0-3", ChecksumMode="ENABLED"
    )
    async with response["Body"] as body:
        assert await body.read() == b"0123"
    assert "ChecksumSHA256" not in response


# --------------------------------------------------------------------------- buckets


async def test_bucket_region_selects_buckets_by_their_region(
    client: AsyncDeltaGliderClient, bucket: str
) -> None:
    elsewhere = await client.list_buckets(BucketRegion="eu-central-1")
    assert bucket not in [b["Name"] for b in elsewhere["Buckets"]]
    home = await client.list_buckets(BucketRegion="us-east-1")
    assert bucket in [b["Name"] for b in home["Buckets"]]
    assert all(b.get("BucketRegion") == "us-east-1" for b in home["Buckets"])


# --------------------------------------------------------------------------- deltaspaces


@pytest.mark.parametrize("prefix", ["rel/v1", "rel/v1/"])
async def test_a_deltaspace_prefix_may_end_with_its_slash(
    client: AsyncDeltaGliderClient, bucket: str, s3_admin: Any, tmp_path: Path, prefix: str
) -> None:
    assert DeltaSpace(bucket, prefix) == DeltaSpace(bucket, "rel/v1")
    source = tmp_path / "s1.zip"
    source.write_bytes(b"PK\x03\x04" + bytes(range(256)) * 40)
    await client.service.put(source, DeltaSpace(bucket, prefix))
    assert sorted(list_keys(s3_admin, bucket)) == ["rel/v1/reference.bin", "rel/v1/s1.zip.delta"]
    listed = await client.list_objects(Bucket=bucket, Prefix="rel/")
    assert [o["Key"] for o in listed["Contents"]] == ["rel/v1/s1.zip"]


# --------------------------------------------------------------------------- upload tags


async def test_upload_stores_its_tags(
    client: AsyncDeltaGliderClient, bucket: str, s3_admin: Any, zips: list[bytes], tmp_path: Path
) -> None:
    for n, data in enumerate(zips):
        path = tmp_path / f"app-{n}.zip"
        path.write_bytes(data)
        summary = await client.upload(
            str(path), f"s3://{bucket}/rel/", tags={"env": "prod", "team": "a b+c:d/e@f"}
        )
        tagging = s3_admin.get_object_tagging(Bucket=bucket, Key=summary.stored_key)
        assert {t["Key"]: t["Value"] for t in tagging["TagSet"]} == {
            "env": "prod",
            "team": "a b+c:d/e@f",
        }
    # The reference carries none of them: it is no one's file.
    assert s3_admin.get_object_tagging(Bucket=bucket, Key="rel/reference.bin")["TagSet"] == []


async def test_upload_refuses_tags_that_are_not_strings(
    client: AsyncDeltaGliderClient, bucket: str, s3_admin: Any, tmp_path: Path
) -> None:
    path = tmp_path / "a.zip"
    path.write_bytes(b"PK\x03\x04data")
    with pytest.raises(InvalidArgumentError, match="tags"):
        await client.upload(str(path), f"s3://{bucket}/rel/", tags={"n": 1})  # type: ignore[dict-item]
    assert list_keys(s3_admin, bucket) == {}


# --------------------------------------------------------------------------- savings


async def test_the_first_file_of_a_directory_saves_zero_not_a_negative_share(
    client: AsyncDeltaGliderClient, bucket: str, zips: list[bytes], tmp_path: Path
) -> None:
    path = tmp_path / "app.zip"
    path.write_bytes(zips[0])
    summary = await client.upload(str(path), f"s3://{bucket}/rel/")
    assert summary.stored_size > summary.original_size  # the reference plus its delta
    assert summary.savings_percent == 0.0
    put = await client.put_object(Bucket=bucket, Key="other/app.zip", Body=zips[0])
    assert put["DeltaGliderInfo"]["SavingsPercent"] == 0.0


# --------------------------------------------------------------------------- errors


async def test_errors_carry_boto3s_response_and_client_exceptions(
    client: AsyncDeltaGliderClient, bucket: str
) -> None:
    with pytest.raises(client.exceptions.NoSuchKey) as got:
        await client.get_object(Bucket=bucket, Key="nope")
    assert got.value.response["Error"]["Code"] == "NoSuchKey"
    assert got.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert isinstance(got.value, FileNotFoundError)
    # boto3's HEAD of a missing key reports the bare status as its code.
    with pytest.raises(client.exceptions.ClientError) as head:
        await client.head_object(Bucket=bucket, Key="nope")
    assert head.value.response["Error"]["Code"] == "404"
    with pytest.raises(client.exceptions.NoSuchBucket) as no_bucket:
        await client.get_object(Bucket=f"{bucket}-missing", Key="k")
    assert no_bucket.value.response["Error"]["Code"] == "NoSuchBucket"
    with pytest.raises(client.exceptions.NoSuchBucket) as head_bucket:
        await client.head_bucket(Bucket=f"{bucket}-missing")
    assert head_bucket.value.response["Error"]["Code"] == "404"
    assert client.exceptions.ClientError is DeltaGliderError
    assert client.exceptions.NoSuchKey is ObjectNotFoundError
    assert client.exceptions.NoSuchBucket is BucketNotFoundError


async def test_invalid_arguments_have_a_code_too(client: AsyncDeltaGliderClient) -> None:
    with pytest.raises(InvalidArgumentError) as got:
        await client.put_object(Bucket="b", Key="x/reference.bin", Body=b"")
    assert got.value.response["Error"]["Code"] == "InvalidArgument"
    assert got.value.response["Error"]["Message"] == str(got.value)


# --------------------------------------------------------------------------- request ids


async def test_response_metadata_names_the_request_that_did_the_work(
    s3_server: LocalS3, client: AsyncDeltaGliderClient, bucket: str, s3_admin: Any
) -> None:
    plain_put = s3_admin.put_object(Bucket=bucket, Key="probe.txt", Body=b"p")
    if not plain_put["ResponseMetadata"].get("RequestId"):
        pytest.skip(f"{s3_server.name} sends no request id on PutObject")
    put = await client.put_object(Bucket=bucket, Key="a.txt", Body=b"data")
    head = await client.head_object(Bucket=bucket, Key="a.txt")
    assert put["ResponseMetadata"]["RequestId"]
    assert head["ResponseMetadata"]["RequestId"]
    assert put["ResponseMetadata"]["RequestId"] != head["ResponseMetadata"]["RequestId"]


# --------------------------------------------------------------------------- clients


async def test_presigned_expiry_must_be_whole_seconds(
    client: AsyncDeltaGliderClient, bucket: str
) -> None:
    await client.put_object(Bucket=bucket, Key="a.txt", Body=b"x")
    for bad in ("60", 1.5, True, 0):
        with pytest.raises(InvalidArgumentError, match="ExpiresIn"):
            await client.generate_presigned_url_with_rehydration(
                Bucket=bucket,
                Key="a.txt",
                ExpiresIn=bad,  # type: ignore[arg-type]
            )


async def test_a_client_without_log_level_keeps_the_applications_level(
    s3_server: LocalS3,
) -> None:
    logger = logging.getLogger("deltaglider")
    before = logger.level
    logger.setLevel(logging.WARNING)
    try:
        async with AsyncDeltaGliderClient(s3_server.config()) as quiet:
            assert quiet.config.log_level is None
            await quiet.list_buckets()
            assert logger.level == logging.WARNING
        async with AsyncDeltaGliderClient(s3_server.config(log_level="DEBUG")) as verbose:
            assert verbose.config.log_level == "DEBUG"
            assert logger.level == logging.DEBUG
        # Once no client holds a level, the application's comes back.
        assert logger.level == logging.WARNING
    finally:
        logger.setLevel(before)
