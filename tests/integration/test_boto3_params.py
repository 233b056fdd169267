"""boto3's own parameters on the boto3-shaped methods: honoured, passed on, or refused by name.

Both servers. Nothing boto3 accepts is ignored silently.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from deltaglider_async import (
    AsyncDeltaGliderClient,
    InvalidArgumentError,
    NotModifiedError,
    PreconditionFailedError,
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


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


async def test_object_settings_reach_the_stored_object(
    client: AsyncDeltaGliderClient, bucket: str, s3_admin: Any, zips: list[bytes]
) -> None:
    await client.put_object(Bucket=bucket, Key="app/v1.zip", Body=zips[0])
    await client.put_object(
        Bucket=bucket,
        Key="app/v2.zip",
        Body=zips[1],
        CacheControl="max-age=60",
        ContentDisposition="attachment",
        ContentLanguage="en",
        Tagging="team=a",
    )
    stored = s3_admin.head_object(Bucket=bucket, Key="app/v2.zip.delta")
    assert stored["CacheControl"] == "max-age=60"
    assert stored["ContentDisposition"] == "attachment"
    head = await client.head_object(Bucket=bucket, Key="app/v2.zip")
    assert head["CacheControl"] == "max-age=60"
    assert head["ContentLanguage"] == "en"
    assert head["ContentLength"] == len(zips[1])


async def test_content_checks_store_nothing_when_wrong(
    client: AsyncDeltaGliderClient, bucket: str, s3_admin: Any
) -> None:
    data = b"the bytes"
    right = await client.put_object(
        Bucket=bucket,
        Key="a.txt",
        Body=data,
        ContentMD5=b64(hashlib.md5(data).digest()),
        ChecksumSHA256=b64(hashlib.sha256(data).digest()),
        ContentLength=len(data),
    )
    assert right["ChecksumSHA256"] == b64(hashlib.sha256(data).digest())
    bad: dict[str, Any] = {
        "ContentMD5": b64(hashlib.md5(b"other").digest()),
        "ChecksumSHA256": b64(hashlib.sha256(b"other").digest()),
        "ContentLength": len(data) + 1,
    }
    for name, value in bad.items():
        with pytest.raises(InvalidArgumentError, match="BadDigest"):
            await client.put_object(Bucket=bucket, Key="b.txt", Body=data, **{name: value})
    assert set(list_keys(s3_admin, bucket)) == {"a.txt"}


async def test_write_conditions(
    client: AsyncDeltaGliderClient, bucket: str, zips: list[bytes]
) -> None:
    first = await client.put_object(Bucket=bucket, Key="d/x.zip", Body=zips[0], IfNoneMatch="*")
    with pytest.raises(PreconditionFailedError):
        await client.put_object(Bucket=bucket, Key="d/x.zip", Body=zips[1], IfNoneMatch="*")
    with pytest.raises(PreconditionFailedError):
        await client.put_object(Bucket=bucket, Key="d/x.zip", Body=zips[1], IfMatch='"0000"')
    await client.put_object(Bucket=bucket, Key="d/x.zip", Body=zips[1], IfMatch=first["ETag"])
    response = await client.get_object(Bucket=bucket, Key="d/x.zip")
    async with response["Body"] as body:
        assert await body.read() == zips[1]


async def test_read_conditions_and_response_headers(
    client: AsyncDeltaGliderClient, bucket: str, zips: list[bytes]
) -> None:
    await client.put_object(Bucket=bucket, Key="r/x.zip", Body=zips[0])
    head = await client.head_object(Bucket=bucket, Key="r/x.zip")
    etag = head["ETag"]
    for method in (client.get_object, client.head_object):
        with pytest.raises(PreconditionFailedError):
            await method(Bucket=bucket, Key="r/x.zip", IfMatch='"nope"')
        with pytest.raises(NotModifiedError):
            await method(Bucket=bucket, Key="r/x.zip", IfNoneMatch=etag)
        with pytest.raises(NotModifiedError):
            await method(
                Bucket=bucket, Key="r/x.zip", IfModifiedSince=datetime.now(UTC) + timedelta(1)
            )
        with pytest.raises(PreconditionFailedError):
            await method(
                Bucket=bucket, Key="r/x.zip", IfUnmodifiedSince=datetime(2000, 1, 1, tzinfo=UTC)
            )
    response = await client.get_object(
        Bucket=bucket,
        Key="r/x.zip",
        IfMatch=etag,
        ResponseContentType="application/zip",
        ResponseCacheControl="no-cache",
        ChecksumMode="ENABLED",
    )
    async with response["Body"] as body:
        assert await body.read() == zips[0]
    assert response["ContentType"] == "application/zip"
    assert response["CacheControl"] == "no-cache"


async def test_unknown_and_unsupported_parameters_are_refused_by_name(
    client: AsyncDeltaGliderClient, bucket: str
) -> None:
    await client.put_object(Bucket=bucket, Key="k.txt", Body=b"x")
    cases: list[tuple[Any, dict[str, Any], str]] = [
        (client.put_object, {"Key": "k2.txt", "Body": b"x", "Colour": "red"}, "Colour"),
        (client.put_object, {"Key": "k2.txt", "Body": b"x", "SSECustomerKey": "k"}, "SSE-C"),
        (client.get_object, {"Key": "k.txt", "VersionId": "v1"}, "VersionId"),
        (client.head_object, {"Key": "k.txt", "PartNumber": 1}, "PartNumber"),
        (client.list_objects, {"RequestPayer": "requester"}, "RequestPayer"),
        (client.delete_object, {"Key": "k.txt", "MFA": "x"}, "MFA"),
        (client.head_bucket, {"ExpectedBucketOwner": "1"}, "ExpectedBucketOwner"),
    ]
    for method, kwargs, named in cases:
        with pytest.raises(InvalidArgumentError, match=named):
            await method(Bucket=bucket, **kwargs)
    assert (await client.head_object(Bucket=bucket, Key="k.txt"))["ContentLength"] == 1


async def test_listing_parameters(
    client: AsyncDeltaGliderClient, bucket: str, zips: list[bytes]
) -> None:
    await client.put_object(Bucket=bucket, Key="dir/a b+c.zip", Body=zips[0])
    encoded = await client.list_objects(Bucket=bucket, EncodingType="url", FetchOwner=True)
    assert [o["Key"] for o in encoded["Contents"]] == ["dir/a%20b%2Bc.zip"]
    assert encoded["EncodingType"] == "url"
    assert "Owner" in encoded["Contents"][0]
    plain = await client.list_objects(Bucket=bucket)
    assert [o["Key"] for o in plain["Contents"]] == ["dir/a b+c.zip"]
    assert "Owner" not in plain["Contents"][0]


async def test_conditional_delete(
    client: AsyncDeltaGliderClient, bucket: str, zips: list[bytes]
) -> None:
    put = await client.put_object(Bucket=bucket, Key="c/x.zip", Body=zips[0])
    with pytest.raises(PreconditionFailedError):
        await client.delete_object(Bucket=bucket, Key="c/x.zip", IfMatch='"other"')
    with pytest.raises(PreconditionFailedError):
        await client.delete_object(Bucket=bucket, Key="c/x.zip", IfMatchSize=1)
    assert (await client.head_object(Bucket=bucket, Key="c/x.zip"))["ETag"] == put["ETag"]
    await client.delete_object(
        Bucket=bucket, Key="c/x.zip", IfMatch=put["ETag"], IfMatchSize=len(zips[0])
    )
    assert (await client.list_objects(Bucket=bucket))["KeyCount"] == 0


async def test_list_buckets_shape_and_parameters(
    client: AsyncDeltaGliderClient, bucket: str
) -> None:
    response = await client.list_buckets()
    assert set(response) == {"Buckets", "Owner", "ResponseMetadata"}
    assert response["ResponseMetadata"]["RequestId"] != ""
    assert set(response["ResponseMetadata"]) == {
        "HTTPStatusCode",
        "RequestId",
        "HostId",
        "HTTPHeaders",
        "RetryAttempts",
    }
    chosen = await client.list_buckets(Prefix=bucket, MaxBuckets=1)
    assert [b["Name"] for b in chosen["Buckets"]] == [bucket]
    assert chosen["Prefix"] == bucket


async def test_an_async_client_over_a_service(
    s3_server: LocalS3, bucket: str, zips: list[bytes]
) -> None:
    from deltaglider_async._factory import build_service

    bundle = build_service(s3_server.config())
    async with AsyncDeltaGliderClient(bundle.service, endpoint_url=s3_server.endpoint_url) as c:
        await c.put_object(Bucket=bucket, Key="s/x.zip", Body=zips[0])
        assert (await c.head_object(Bucket=bucket, Key="s/x.zip"))["ContentLength"] == len(zips[0])
        assert c.config.endpoint_url == s3_server.endpoint_url
