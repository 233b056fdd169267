"""S3Storage against real S3 protocol servers: moto and SeaweedFS (via ``s3_server``)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from deltaglider_async._config import DeltaGliderConfig
from deltaglider_async._errors import (
    AccessDeniedError,
    BucketAlreadyExistsError,
    BucketNotEmptyError,
    BucketNotFoundError,
    ClientClosedError,
    ConditionalWriteNotSupportedError,
    InvalidArgumentError,
    ObjectNotFoundError,
    PreconditionFailedError,
    StorageError,
)
from deltaglider_async.adapters.s3_storage import S3Storage, translate_error
from deltaglider_async.testing import LocalS3, MotoServer, free_port

MIB = 1024 * 1024
MissingBucket = "t-missing-0000000000"

StorageFactory = Callable[..., Awaitable[S3Storage]]


@pytest.fixture
async def storage(s3_config: DeltaGliderConfig) -> AsyncIterator[S3Storage]:
    async with S3Storage(s3_config) as s:
        yield s


@pytest.fixture
async def make_storage(s3_server: LocalS3) -> AsyncIterator[StorageFactory]:
    """Build S3Storage objects with config overrides; all are closed at teardown."""
    async with AsyncExitStack() as stack:

        async def make(
            *, parts_in_flight: int = 4, delete_batch_size: int = 1000, **cfg: Any
        ) -> S3Storage:
            storage = S3Storage(
                s3_server.config(**cfg),
                parts_in_flight=parts_in_flight,
                delete_batch_size=delete_batch_size,
            )
            return await stack.enter_async_context(storage)

        yield make


def multipart_config() -> dict[str, Any]:
    return {"multipart_threshold": 5 * MIB, "multipart_chunksize": 5 * MIB}


def write_file(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


async def hook(storage: S3Storage, event: str, handler: Callable[..., Any]) -> None:
    """Register an aiobotocore event handler (sync or async) on the storage's client."""
    client = await storage._s3()
    events: Any = client.meta.events
    events.register(event, handler)


def open_uploads(s3_admin: Any, bucket: str) -> list[dict[str, Any]]:
    uploads: list[dict[str, Any]] = s3_admin.list_multipart_uploads(Bucket=bucket).get(
        "Uploads", []
    )
    return uploads


# -- head / metadata -----------------------------------------------------------------


async def test_head_present_and_missing(storage: S3Storage, bucket: str, s3_admin: Any) -> None:
    s3_admin.put_object(Bucket=bucket, Key="dir/a.bin", Body=b"hello")

    head = await storage.head(bucket, "dir/a.bin")
    assert head is not None
    assert head.key == "dir/a.bin"
    assert head.size == 5
    assert head.etag == '"' + hashlib.md5(b"hello").hexdigest() + '"'
    assert head.last_modified.tzinfo is not None
    assert head.last_modified.utcoffset() is not None
    assert await storage.head(bucket, "dir/missing.bin") is None


async def test_missing_bucket_raises_bucket_not_found(storage: S3Storage, tmp_path: Path) -> None:
    # HEAD answers a bare 404 for a missing bucket too: head() says "absent" and
    # head_bucket() is how a caller tells the two apart.
    assert await storage.head(MissingBucket, "a") is None
    with pytest.raises(BucketNotFoundError, match=MissingBucket):
        await storage.head_bucket(MissingBucket)
    with pytest.raises(BucketNotFoundError, match=MissingBucket):
        await storage.list_page(MissingBucket)
    with pytest.raises(BucketNotFoundError, match=MissingBucket):
        await storage.open(MissingBucket, "a")
    with pytest.raises(BucketNotFoundError, match=MissingBucket):
        await storage.put_bytes(MissingBucket, "a", b"x")
    with pytest.raises(BucketNotFoundError, match=MissingBucket):
        await storage.put_file(MissingBucket, "a", write_file(tmp_path / "f", b"x"), metadata={})
    with pytest.raises(BucketNotFoundError, match=MissingBucket):
        await storage.delete(MissingBucket, "a")
    with pytest.raises(BucketNotFoundError, match=MissingBucket):
        await storage.delete_many(MissingBucket, ["a", "b"])
    with pytest.raises(BucketNotFoundError, match=MissingBucket):
        await storage.delete_bucket(MissingBucket)


async def test_metadata_round_trip_lower_case_and_content_type(
    storage: S3Storage, bucket: str, tmp_path: Path
) -> None:
    meta = {"dg-file-sha256": "ab" * 32, "dg-note": "reference", "user-owner": "me"}
    src = write_file(tmp_path / "a.zip", b"PK\x03\x04 data")
    await storage.put_file(bucket, "a.zip", src, metadata=meta, content_type="application/zip")
    await storage.put_bytes(bucket, "b.txt", b"b", metadata={"Mixed-Case": "V"})

    head = await storage.head(bucket, "a.zip")
    assert head is not None
    assert dict(head.metadata) == meta
    assert head.content_type == "application/zip"
    head_b = await storage.head(bucket, "b.txt")
    assert head_b is not None
    assert dict(head_b.metadata) == {"mixed-case": "V"}

    async with await storage.open(bucket, "a.zip") as body:
        assert dict(body.head.metadata) == meta
        assert body.head.content_type == "application/zip"
        assert await body.read() == b"PK\x03\x04 data"


async def test_non_ascii_metadata_is_refused_before_any_request(
    storage: S3Storage, bucket: str, s3_admin: Any
) -> None:
    with pytest.raises(InvalidArgumentError, match="ASCII"):
        await storage.put_bytes(bucket, "k", b"x", metadata={"dg-original-name": "café.zip"})
    assert s3_admin.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


async def test_head_of_missing_object_when_head_bucket_is_denied(
    storage: S3Storage, bucket: str
) -> None:
    """Prefix-scoped policies may deny HeadBucket: a 404 on the object still means None."""

    def deny(**_: Any) -> None:
        raise client_error("AccessDenied", 403)

    await hook(storage, "before-parameter-build.s3.HeadBucket", deny)
    assert await storage.head(bucket, "missing") is None
    with pytest.raises(AccessDeniedError, match=bucket):
        await storage.head_bucket(bucket)


async def test_empty_object(storage: S3Storage, bucket: str, tmp_path: Path) -> None:
    await storage.put_file(bucket, "empty", write_file(tmp_path / "e", b""), metadata={})
    head = await storage.head(bucket, "empty")
    assert head is not None
    assert head.size == 0
    async with await storage.open(bucket, "empty") as body:
        assert await body.read() == b""
        assert [c async for c in body.iter_chunks()] == []
    dest = write_file(tmp_path / "out", b"stale")
    await storage.get_to_file(bucket, "empty", dest)
    assert dest.read_bytes() == b""
    with pytest.raises(InvalidArgumentError, match="InvalidRange"):
        await storage.open(bucket, "empty", range="bytes=0-")


async def test_special_characters_in_keys(storage: S3Storage, bucket: str) -> None:
    key = "dir with space/ü+plus%25 &=.bin"
    await storage.put_bytes(bucket, key, b"payload")
    page = await storage.list_page(bucket, "dir with space/")
    assert [o.key for o in page.objects] == [key]
    head = await storage.head(bucket, key)
    assert head is not None
    assert head.size == 7
    async with await storage.open(bucket, key) as body:
        assert await body.read() == b"payload"


# -- listing ---------------------------------------------------------------------------


async def test_list_paging_returns_each_key_once(
    storage: S3Storage, bucket: str, s3_admin: Any
) -> None:
    keys = [f"p/k{i}" for i in range(7)]
    for key in keys:
        s3_admin.put_object(Bucket=bucket, Key=key, Body=key.encode())
    s3_admin.put_object(Bucket=bucket, Key="other/x", Body=b"x")

    seen: list[str] = []
    token: str | None = None
    pages = 0
    while True:
        page = await storage.list_page(bucket, "p/", max_keys=2, continuation_token=token)
        pages += 1
        assert len(page.objects) <= 2
        assert page.key_count == len(page.objects)
        seen.extend(o.key for o in page.objects)
        if not page.is_truncated:
            assert page.next_continuation_token is None
            break
        token = page.next_continuation_token
        assert token
    assert seen == keys
    assert pages == 4
    info = {o.key: o for o in (await storage.list_page(bucket, "p/")).objects}
    assert info["p/k3"].size == 4
    assert info["p/k3"].etag == '"' + hashlib.md5(b"p/k3").hexdigest() + '"'

    streamed = [o.key async for o in storage.iter_objects(bucket, "p/", page_size=2)]
    assert streamed == keys


async def test_list_delimiter_and_common_prefixes(
    storage: S3Storage, bucket: str, s3_admin: Any
) -> None:
    for key in ["d/a.txt", "d/sub1/x", "d/sub2/y", "d/sub2/z", "e/q"]:
        s3_admin.put_object(Bucket=bucket, Key=key, Body=b"1")
    page = await storage.list_page(bucket, "d/", delimiter="/")
    assert [o.key for o in page.objects] == ["d/a.txt"]
    assert list(page.common_prefixes) == ["d/sub1/", "d/sub2/"]
    assert not page.is_truncated

    root = await storage.list_page(bucket, "", delimiter="/")
    assert root.objects == []
    assert list(root.common_prefixes) == ["d/", "e/"]


async def test_list_start_after(storage: S3Storage, bucket: str, s3_admin: Any) -> None:
    for key in ["a", "b", "c", "d"]:
        s3_admin.put_object(Bucket=bucket, Key=key, Body=b"1")
    page = await storage.list_page(bucket, start_after="b")
    assert [o.key for o in page.objects] == ["c", "d"]


# -- reading ---------------------------------------------------------------------------


async def test_open_full_ranged_and_chunks(storage: S3Storage, bucket: str, s3_admin: Any) -> None:
    data = bytes(range(256)) * 40  # 10240 bytes
    s3_admin.put_object(Bucket=bucket, Key="blob", Body=data, ContentType="x/y")

    async with await storage.open(bucket, "blob") as body:
        assert body.content_length == len(data)
        assert body.content_range is None
        assert body.head.size == len(data)
        assert body.head.content_type == "x/y"
        assert await body.read(100) == data[:100]
        assert await body.read(None) == data[100:]
        assert await body.read(10) == b""

    body = await storage.open(bucket, "blob", range="bytes=1000-1999")
    try:
        assert body.content_length == 1000
        assert body.content_range == f"bytes 1000-1999/{len(data)}"
        assert body.head.size == len(data)
        chunks = [c async for c in body.iter_chunks(300)]
    finally:
        await body.aclose()
    assert [len(c) for c in chunks] == [300, 300, 300, 100]
    assert b"".join(chunks) == data[1000:2000]

    async with await storage.open(bucket, "blob", range="bytes=-10") as tail:
        assert await tail.read() == data[-10:]
        assert tail.head.size == len(data)
    async with await storage.open(bucket, "blob", range="bytes=10000-") as rest:
        assert await rest.read() == data[10000:]


async def test_open_errors(storage: S3Storage, bucket: str, s3_admin: Any) -> None:
    s3_admin.put_object(Bucket=bucket, Key="small", Body=b"0123456789")
    with pytest.raises(ObjectNotFoundError, match=f"s3://{bucket}/nope"):
        await storage.open(bucket, "nope")
    with pytest.raises(InvalidArgumentError, match="range"):
        await storage.open(bucket, "small", range="garbage")
    with pytest.raises(InvalidArgumentError, match="InvalidRange"):
        await storage.open(bucket, "small", range="bytes=100-200")


async def test_range_ignored_by_the_server(storage: S3Storage, bucket: str, s3_admin: Any) -> None:
    """A 200 without Content-Range is accepted only when the range asked for everything."""
    s3_admin.put_object(Bucket=bucket, Key="r", Body=b"0123456789")

    def drop_content_range(parsed: dict[str, Any], **_: Any) -> None:
        parsed.pop("ContentRange", None)

    await hook(storage, "after-call.s3.GetObject", drop_content_range)
    with pytest.raises(StorageError, match=f"s3://{bucket}/r: asked for bytes=2-4"):
        await storage.open(bucket, "r", range="bytes=2-4")
    async with await storage.open(bucket, "r", range="bytes=0-") as whole:
        assert whole.head.size == 10
        assert await whole.read() == b"0123456789"


async def test_closed_body_refuses_reads_and_connection_is_reusable(
    storage: S3Storage, bucket: str, s3_admin: Any
) -> None:
    s3_admin.put_object(Bucket=bucket, Key="big", Body=os.urandom(3 * MIB))
    body = await storage.open(bucket, "big")
    assert len(await body.read(10)) == 10
    await body.aclose()
    await body.aclose()
    with pytest.raises(ClientClosedError):
        await body.read(10)
    # The half-read connection was dropped, not handed back to the pool mid-body.
    for _ in range(3):
        assert await storage.head(bucket, "big") is not None


async def test_get_to_file(storage: S3Storage, bucket: str, s3_admin: Any, tmp_path: Path) -> None:
    data = os.urandom(2 * MIB + 123)
    s3_admin.put_object(Bucket=bucket, Key="obj", Body=data, Metadata={"k": "v"})
    dest = write_file(tmp_path / "out", b"old content that must be truncated" * 100_000)

    head = await storage.get_to_file(bucket, "obj", dest)
    assert dest.read_bytes() == data
    assert head.size == len(data)
    assert dict(head.metadata) == {"k": "v"}


async def test_get_to_file_missing_object_leaves_dest_untouched(
    storage: S3Storage, bucket: str, tmp_path: Path
) -> None:
    dest = write_file(tmp_path / "keep", b"precious")
    with pytest.raises(ObjectNotFoundError):
        await storage.get_to_file(bucket, "missing", dest)
    assert dest.read_bytes() == b"precious"
    absent = tmp_path / "absent"
    with pytest.raises(ObjectNotFoundError):
        await storage.get_to_file(bucket, "missing", absent)
    assert not absent.exists()


# -- writing ---------------------------------------------------------------------------


async def test_put_file_below_threshold(
    make_storage: StorageFactory, bucket: str, s3_admin: Any, tmp_path: Path
) -> None:
    storage = await make_storage(**multipart_config())
    data = os.urandom(5 * MIB - 1)
    result = await storage.put_file(
        bucket, "small.bin", write_file(tmp_path / "s", data), metadata={}
    )
    assert result.etag == '"' + hashlib.md5(data).hexdigest() + '"'
    got = s3_admin.get_object(Bucket=bucket, Key="small.bin")["Body"].read()
    assert got == data


async def test_put_file_multipart_byte_exact(
    make_storage: StorageFactory, bucket: str, s3_admin: Any, tmp_path: Path
) -> None:
    storage = await make_storage(**multipart_config())
    data = os.urandom(12 * MIB + 17)
    src = write_file(tmp_path / "big.bin", data)
    result = await storage.put_file(
        bucket, "big.bin", src, metadata={"dg-file-size": str(len(data))}, content_type="a/b"
    )
    assert result.etag.startswith('"')
    assert result.etag.endswith('-3"')  # a multipart ETag: three parts

    out = tmp_path / "readback"
    head = await storage.get_to_file(bucket, "big.bin", out)
    assert hashlib.sha256(out.read_bytes()).digest() == hashlib.sha256(data).digest()
    assert head.size == len(data)
    assert dict(head.metadata) == {"dg-file-size": str(len(data))}
    assert head.content_type == "a/b"
    assert open_uploads(s3_admin, bucket) == []


async def test_multipart_bounds_parts_in_flight(
    make_storage: StorageFactory, bucket: str, tmp_path: Path
) -> None:
    storage = await make_storage(parts_in_flight=2, **multipart_config())
    in_flight = 0
    peak = 0

    async def before(params: dict[str, Any], **_: Any) -> None:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await anyio.sleep(0.05)  # keep the part in flight so that others could overlap

    def after(**_: Any) -> None:
        nonlocal in_flight
        in_flight -= 1

    await hook(storage, "before-parameter-build.s3.UploadPart", before)
    await hook(storage, "after-call.s3.UploadPart", after)
    data = os.urandom(20 * MIB)
    await storage.put_file(bucket, "f", write_file(tmp_path / "f", data), metadata={})
    assert peak == 2
    assert in_flight == 0
    async with await storage.open(bucket, "f") as body:
        assert await body.read() == data


async def test_conditional_put_twice_single_part(
    storage: S3Storage, bucket: str, s3_admin: Any, tmp_path: Path
) -> None:
    first = write_file(tmp_path / "1", b"first")
    second = write_file(tmp_path / "2", b"second")
    await storage.put_file(bucket, "ref", first, metadata={}, if_none_match=True)
    with pytest.raises(PreconditionFailedError, match=f"s3://{bucket}/ref"):
        await storage.put_file(bucket, "ref", second, metadata={}, if_none_match=True)
    assert s3_admin.get_object(Bucket=bucket, Key="ref")["Body"].read() == b"first"


async def test_conditional_put_twice_multipart(
    make_storage: StorageFactory, bucket: str, s3_admin: Any, tmp_path: Path
) -> None:
    storage = await make_storage(**multipart_config())
    first = os.urandom(6 * MIB)
    await storage.put_file(
        bucket, "ref", write_file(tmp_path / "1", first), metadata={}, if_none_match=True
    )
    with pytest.raises(PreconditionFailedError, match=f"s3://{bucket}/ref"):
        await storage.put_file(
            bucket,
            "ref",
            write_file(tmp_path / "2", os.urandom(6 * MIB)),
            metadata={},
            if_none_match=True,
        )
    assert open_uploads(s3_admin, bucket) == []
    assert s3_admin.get_object(Bucket=bucket, Key="ref")["Body"].read() == first


async def test_conditional_multipart_loses_a_race_at_completion(
    make_storage: StorageFactory, bucket: str, s3_admin: Any, tmp_path: Path
) -> None:
    """Another writer creates the key after our pre-check: the server's 412 decides."""
    storage = await make_storage(**multipart_config())

    def other_writer_wins(**_: Any) -> None:
        s3_admin.put_object(Bucket=bucket, Key="ref", Body=b"the other writer")

    await hook(storage, "before-parameter-build.s3.CompleteMultipartUpload", other_writer_wins)
    src = write_file(tmp_path / "mine", os.urandom(6 * MIB))
    with pytest.raises(PreconditionFailedError, match=f"CompleteMultipartUpload s3://{bucket}/ref"):
        await storage.put_file(bucket, "ref", src, metadata={}, if_none_match=True)
    assert open_uploads(s3_admin, bucket) == []
    assert s3_admin.get_object(Bucket=bucket, Key="ref")["Body"].read() == b"the other writer"


async def _hold_parts_after_first(storage: S3Storage) -> anyio.Event:
    """Let part 1 through, hold every later part until cancelled; return "part 1 done"."""
    first_done = anyio.Event()

    async def before(params: dict[str, Any], **_: Any) -> None:
        if params["PartNumber"] != 1:
            await anyio.sleep_forever()

    def after(**_: Any) -> None:
        first_done.set()

    await hook(storage, "before-parameter-build.s3.UploadPart", before)
    await hook(storage, "after-call.s3.UploadPart", after)
    return first_done


async def test_cancelled_multipart_put_is_aborted(
    make_storage: StorageFactory, bucket: str, s3_admin: Any, tmp_path: Path
) -> None:
    storage = await make_storage(**multipart_config())
    first_done = await _hold_parts_after_first(storage)
    src = write_file(tmp_path / "big", os.urandom(12 * MIB))

    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: storage.put_file(bucket, "big", src, metadata={}))
            await first_done.wait()
            assert len(open_uploads(s3_admin, bucket)) == 1  # the upload is really open
            scope.cancel()
    assert scope.cancelled_caught
    assert open_uploads(s3_admin, bucket) == []
    assert await storage.head(bucket, "big") is None


async def test_natively_cancelled_multipart_put_is_aborted(
    make_storage: StorageFactory, bucket: str, s3_admin: Any, tmp_path: Path
) -> None:
    storage = await make_storage(**multipart_config())
    first_done = await _hold_parts_after_first(storage)
    src = write_file(tmp_path / "big", os.urandom(12 * MIB))

    task = asyncio.ensure_future(storage.put_file(bucket, "big", src, metadata={}))
    await first_done.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert open_uploads(s3_admin, bucket) == []


async def test_failed_part_aborts_the_upload(
    make_storage: StorageFactory, bucket: str, s3_admin: Any, tmp_path: Path
) -> None:
    storage = await make_storage(**multipart_config())

    def fail_part_two(params: dict[str, Any], **_: Any) -> None:
        if params["PartNumber"] == 2:
            raise EndpointConnectionError(endpoint_url="http://injected.invalid")

    await hook(storage, "before-parameter-build.s3.UploadPart", fail_part_two)
    src = write_file(tmp_path / "big", os.urandom(12 * MIB))
    with pytest.raises(StorageError, match=f"UploadPart 2/3 s3://{bucket}/big") as info:
        await storage.put_file(bucket, "big", src, metadata={})
    assert type(info.value) is StorageError
    assert isinstance(info.value.__cause__, EndpointConnectionError)
    assert open_uploads(s3_admin, bucket) == []
    assert await storage.head(bucket, "big") is None


async def test_put_bytes_and_delete(storage: S3Storage, bucket: str) -> None:
    result = await storage.put_bytes(bucket, "k", b"abc", content_type="text/plain")
    assert result.etag == '"' + hashlib.md5(b"abc").hexdigest() + '"'
    head = await storage.head(bucket, "k")
    assert head is not None
    assert head.content_type == "text/plain"
    await storage.delete(bucket, "k")
    assert await storage.head(bucket, "k") is None
    await storage.delete(bucket, "k")  # deleting a missing key is not an error


async def test_delete_many(storage: S3Storage, bucket: str, s3_admin: Any) -> None:
    keys = [f"x/{i}" for i in range(5)]
    for key in keys:
        s3_admin.put_object(Bucket=bucket, Key=key, Body=b"1")
    s3_admin.put_object(Bucket=bucket, Key="keep", Body=b"1")
    assert await storage.delete_many(bucket, [*keys, "x/never-existed"]) == []
    assert await storage.delete_many(bucket, []) == []
    remaining = [o["Key"] for o in s3_admin.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert remaining == ["keep"]


async def test_delete_many_splits_batches(
    make_storage: StorageFactory, bucket: str, s3_admin: Any
) -> None:
    storage = await make_storage(delete_batch_size=2)
    batches: list[list[str]] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        batches.append([o["Key"] for o in params["Delete"]["Objects"]])

    await hook(storage, "before-parameter-build.s3.DeleteObjects", record)
    keys = [f"k{i}" for i in range(5)]
    for key in keys:
        s3_admin.put_object(Bucket=bucket, Key=key, Body=b"1")
    assert await storage.delete_many(bucket, keys) == []
    assert batches == [["k0", "k1"], ["k2", "k3"], ["k4"]]
    assert s3_admin.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_delete_batch_size_is_bounded(s3_config: DeltaGliderConfig) -> None:
    with pytest.raises(InvalidArgumentError):
        S3Storage(s3_config, delete_batch_size=1001)
    with pytest.raises(InvalidArgumentError):
        S3Storage(s3_config, parts_in_flight=0)


# -- buckets ---------------------------------------------------------------------------


async def test_bucket_lifecycle(storage: S3Storage, s3_admin: Any) -> None:
    name = f"t-life-{os.urandom(4).hex()}"
    try:
        await storage.create_bucket(name)
        await storage.create_bucket(name)  # already ours: quiet success
        await storage.head_bucket(name)
        assert name in [b.name for b in await storage.list_buckets()]
        created = next(b for b in await storage.list_buckets() if b.name == name)
        assert created.creation_date is not None
        assert created.creation_date.tzinfo is not None

        await storage.put_bytes(name, "obj", b"1")
        with pytest.raises(BucketNotEmptyError, match=name):
            await storage.delete_bucket(name)
        await storage.delete(name, "obj")
        await storage.delete_bucket(name)
        with pytest.raises(BucketNotFoundError, match=name):
            await storage.head_bucket(name)
        with pytest.raises(BucketNotFoundError, match=name):
            await storage.delete_bucket(name)
    finally:
        try:
            s3_admin.delete_object(Bucket=name, Key="obj")
            s3_admin.delete_bucket(Bucket=name)
        except ClientError:
            pass


async def test_create_bucket_outside_us_east_1(
    storage: S3Storage, s3_server: LocalS3, s3_admin: Any
) -> None:
    sent: list[dict[str, Any]] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        sent.append(dict(params))

    await hook(storage, "before-parameter-build.s3.CreateBucket", record)
    name = f"t-eu-{os.urandom(4).hex()}"
    try:
        await storage.create_bucket(name, region="eu-west-1")
        await storage.create_bucket(name, region="eu-west-1")  # BucketAlreadyOwnedByYou
        await storage.head_bucket(name)
        if s3_server.name == "moto":  # SeaweedFS accepts the constraint but does not record it
            location = s3_admin.get_bucket_location(Bucket=name)["LocationConstraint"]
            assert location == "eu-west-1"
    finally:
        s3_admin.delete_bucket(Bucket=name)
    assert [p.get("CreateBucketConfiguration") for p in sent] == [
        {"LocationConstraint": "eu-west-1"}
    ] * 2


async def test_bucket_acl(storage: S3Storage, bucket: str) -> None:
    acl = await storage.get_bucket_acl(bucket)
    assert set(acl) == {"Owner", "Grants"}
    assert acl["Owner"].get("ID")
    assert any(g["Permission"] == "FULL_CONTROL" for g in acl["Grants"])
    await storage.put_bucket_acl(bucket, ACL="private")
    again = await storage.get_bucket_acl(bucket)
    assert any(g["Permission"] == "FULL_CONTROL" for g in again["Grants"])


async def test_presigned_get(storage: S3Storage, bucket: str) -> None:
    await storage.put_bytes(bucket, "dir/file.txt", b"presigned body")
    url = await storage.presign(
        "get_object", {"Bucket": bucket, "Key": "dir/file.txt"}, expires_in=300
    )
    assert url.startswith(storage.config.endpoint_url or "")

    def fetch() -> bytes:
        with urllib.request.urlopen(url, timeout=10) as response:
            data: bytes = response.read()
            return data

    assert await anyio.to_thread.run_sync(fetch) == b"presigned body"


# -- credentials, transport and lifecycle ---------------------------------------------


async def test_wrong_secret_is_access_denied_on_seaweedfs(seaweed_server: LocalS3) -> None:
    """SeaweedFS enforces SigV4; moto accepts any secret, so this is SeaweedFS-only."""
    admin = seaweed_server.boto3_client()
    name = f"t-auth-{os.urandom(4).hex()}"
    admin.create_bucket(Bucket=name)
    admin.put_object(Bucket=name, Key="k", Body=b"1")
    try:
        bad = seaweed_server.config(aws_secret_access_key="definitely-wrong")
        async with S3Storage(bad) as storage:
            with pytest.raises(AccessDeniedError, match=name):
                await storage.head(name, "k")
            with pytest.raises(AccessDeniedError, match=name):
                await storage.list_page(name)
            with pytest.raises(AccessDeniedError, match=f"s3://{name}/k"):
                await storage.open(name, "k")
            with pytest.raises(AccessDeniedError, match=f"s3://{name}/new"):
                await storage.put_bytes(name, "new", b"x")
        unknown = seaweed_server.config(aws_access_key_id="unknown-key")
        async with S3Storage(unknown) as storage:
            with pytest.raises(AccessDeniedError, match="InvalidAccessKeyId"):
                await storage.list_page(name)
        assert [o["Key"] for o in admin.list_objects_v2(Bucket=name)["Contents"]] == ["k"]
    finally:
        admin.delete_object(Bucket=name, Key="k")
        admin.delete_bucket(Bucket=name)
        admin.close()


async def test_unreachable_endpoint_is_storage_error_naming_the_key() -> None:
    config = DeltaGliderConfig(
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        region_name="us-east-1",
        aws_access_key_id="a",
        aws_secret_access_key="b",
        max_attempts=1,
        connect_timeout=2,
    )
    async with S3Storage(config) as storage:
        with pytest.raises(StorageError, match="HeadObject s3://bkt/some/key") as info:
            await storage.head("bkt", "some/key")
    assert not isinstance(info.value, AccessDeniedError | BucketNotFoundError)


async def test_closed_storage_raises_client_closed(s3_config: DeltaGliderConfig) -> None:
    storage = S3Storage(s3_config)  # no I/O until first use
    await storage.list_buckets()
    await storage.aclose()
    await storage.aclose()  # idempotent
    with pytest.raises(ClientClosedError):
        await storage.list_buckets()
    with pytest.raises(ClientClosedError):
        async with storage:
            pass

    never_opened = S3Storage(s3_config)
    await never_opened.aclose()
    with pytest.raises(ClientClosedError):
        await never_opened.head("b", "k")


async def test_constructor_does_no_io_and_a_missing_profile_fails_on_first_use() -> None:
    # Building a session would raise ProfileNotFound: the constructor must not build one.
    storage = S3Storage(DeltaGliderConfig(profile_name="no-such-profile"))
    async with storage:
        with pytest.raises(InvalidArgumentError, match="no-such-profile"):
            await storage.head_bucket("b")


# -- error translation (no server) -----------------------------------------------------


def client_error(code: str, status: int, message: str = "msg") -> ClientError:
    response: Any = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, "Op")


@pytest.mark.parametrize(
    ("code", "status", "key", "conditional", "expected"),
    [
        ("NoSuchBucket", 404, "k", False, BucketNotFoundError),
        ("NoSuchKey", 404, "k", False, ObjectNotFoundError),
        ("404", 404, "k", False, ObjectNotFoundError),
        ("404", 404, None, False, BucketNotFoundError),
        ("AccessDenied", 403, "k", False, AccessDeniedError),
        ("403", 403, "k", False, AccessDeniedError),
        ("InvalidAccessKeyId", 403, "k", False, AccessDeniedError),
        ("SignatureDoesNotMatch", 403, "k", False, AccessDeniedError),
        ("PreconditionFailed", 412, "k", True, PreconditionFailedError),
        ("412", 412, "k", True, PreconditionFailedError),
        ("NotImplemented", 501, "k", True, ConditionalWriteNotSupportedError),
        ("NotImplemented", 501, "k", False, StorageError),
        ("InvalidBucketName", 400, None, False, InvalidArgumentError),
        ("BucketAlreadyExists", 409, None, False, BucketAlreadyExistsError),
        ("BucketNotEmpty", 409, None, False, BucketNotEmptyError),
        ("InternalError", 500, "k", False, StorageError),
    ],
)
def test_translate_client_errors(
    code: str, status: int, key: str | None, conditional: bool, expected: type[Exception]
) -> None:
    exc = client_error(code, status)
    got = translate_error(
        exc, operation="PutObject", bucket="bkt", key=key, conditional=conditional
    )
    assert type(got) is expected
    assert "bkt" in str(got)
    assert "PutObject" in str(got)


def test_translate_transport_errors() -> None:
    timeout = ReadTimeoutError(endpoint_url="http://x")
    got = translate_error(timeout, operation="GetObject", bucket="b", key="k")
    assert type(got) is StorageError
    assert "GetObject s3://b/k" in str(got)
    got = translate_error(TimeoutError(), operation="GetObject", bucket="b", key="k")
    assert type(got) is StorageError
    assert "timed out" in str(got)
    ours = ObjectNotFoundError("x")
    assert translate_error(ours, operation="GetObject") is ours


# -- deltaglider_async.testing ---------------------------------------------------------


def test_local_s3_config_and_env() -> None:
    s3 = LocalS3("x", "http://127.0.0.1:1", "AK", "SK", "eu-west-1")
    config = s3.config(max_ratio=0.25)
    assert config.endpoint_url == "http://127.0.0.1:1"
    assert config.aws_access_key_id == "AK"
    assert config.aws_secret_access_key == "SK"
    assert config.region_name == "eu-west-1"
    assert config.max_ratio == 0.25
    assert s3.env() == {
        "AWS_ENDPOINT_URL": "http://127.0.0.1:1",
        "AWS_ACCESS_KEY_ID": "AK",
        "AWS_SECRET_ACCESS_KEY": "SK",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }


def test_moto_server_reset_forgets_buckets() -> None:
    server = MotoServer()
    with server as s3:
        assert server.s3 is s3
        admin = s3.boto3_client()
        admin.create_bucket(Bucket="will-be-forgotten")
        server_buckets = [b["Name"] for b in admin.list_buckets()["Buckets"]]
        assert server_buckets == ["will-be-forgotten"]
        server.reset()
        assert admin.list_buckets()["Buckets"] == []
        admin.close()
    with pytest.raises(RuntimeError, match="not running"):
        server.reset()
