"""AsyncDeltaGliderClient against real S3 servers (moto and SeaweedFS) and the real xdelta3.

Each documented behaviour of each public method, and at least one bad input per method
with the exception the docstring promises.
"""

from __future__ import annotations

import hashlib
import io
import logging
import tempfile
import urllib.request
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest

from deltaglider_async import (
    AsyncDeltaGliderClient,
    AsyncDeltaService,
    AsyncStreamingBody,
    BucketNotEmptyError,
    BucketNotFoundError,
    ClientClosedError,
    ClientState,
    DeltaGliderConfig,
    DeltaGliderError,
    IntegrityError,
    InvalidArgumentError,
    InvalidRatioError,
    InvalidURLError,
    NotFoundError,
    ObjectNotFoundError,
    ReservedKeyError,
    UploadSummary,
    create_async_client,
)
from deltaglider_async.testing import LocalS3
from tests.archives import make_zip_versions

from .support import files_under, flip_byte, list_keys, md5_bytes, read_object, rewrite_object

TEXT = b"plain text that is never delta-compressed\n" * 50


@pytest.fixture
async def client(s3_config: DeltaGliderConfig) -> AsyncIterator[AsyncDeltaGliderClient]:
    """An opened client on ``s3_server``, closed after the test."""
    async with AsyncDeltaGliderClient(s3_config) as opened:
        yield opened


@pytest.fixture
def zips(tmp_path: Path) -> list[Path]:
    """Four successive ~100 KB release zips."""
    return make_zip_versions(tmp_path / "zips", 4, size=100_000)


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory that ``tempfile`` uses for the duration of the test."""
    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


async def read_all(response: Any) -> bytes:
    """Read and close the Body of a get_object response."""
    async with response["Body"] as body:
        data: bytes = await body.read()
    return data


async def put_versions(
    client: AsyncDeltaGliderClient, bucket: str, prefix: str, paths: list[Path]
) -> list[dict[str, Any]]:
    """put_object each path as ``prefix/<name>``; return the responses."""
    return [
        dict(await client.put_object(Bucket=bucket, Key=f"{prefix}/{p.name}", Body=p))
        for p in paths
    ]


# ------------------------------------------------------------------------- factory


def test_create_async_client_reads_arguments_then_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("DG_MAX_RATIO", "0.25")
    monkeypatch.setenv("DG_MAX_CONCURRENCY", "3")
    monkeypatch.setenv("DG_LOG_LEVEL", "debug")
    client = create_async_client(tool_version="custom/1", aws_access_key_id="k")
    assert client.state is ClientState.UNOPENED
    cfg = client.config
    assert (cfg.endpoint_url, cfg.region_name, cfg.max_ratio) == (
        "http://127.0.0.1:1",
        "eu-west-1",
        0.25,
    )
    assert (cfg.max_concurrency, cfg.tool_version, cfg.aws_access_key_id) == (3, "custom/1", "k")
    logger = logging.getLogger("deltaglider")
    assert logger.level == logging.DEBUG
    assert any(isinstance(h, logging.NullHandler) for h in logger.handlers)

    explicit = create_async_client(
        endpoint_url="http://127.0.0.1:2", log_level="WARNING", max_ratio=0.1
    )
    assert explicit.config.endpoint_url == "http://127.0.0.1:2"
    assert explicit.config.max_ratio == 0.1
    assert explicit.config.log_level == "WARNING"
    # Levels are per client: the DEBUG client still logs at DEBUG (the logger lets its
    # records through), the WARNING one filters its own records.
    assert logger.level == logging.DEBUG


def test_create_async_client_rejects_bad_arguments() -> None:
    with pytest.raises(InvalidArgumentError, match="bogus_option"):
        create_async_client(bogus_option=1)
    with pytest.raises(InvalidRatioError):
        create_async_client(max_ratio=1.5)
    with pytest.raises(InvalidArgumentError):
        create_async_client(log_level="LOUD")


async def test_lifecycle_open_close_no_reopen(moto_s3: LocalS3) -> None:
    client = create_async_client(
        endpoint_url="http://127.0.0.1:1",  # opening and closing must not touch the network
        aws_access_key_id="x",
        aws_secret_access_key="y",
    )
    states = [client.state]
    async with client as opened:
        assert opened is client
        states.append(client.state)
        assert isinstance(client.service, AsyncDeltaService)
        with pytest.raises(DeltaGliderError):
            await client.__aenter__()
    states.append(client.state)
    assert states == [ClientState.UNOPENED, ClientState.OPENED, ClientState.CLOSED]
    await client.aclose()  # idempotent
    with pytest.raises(ClientClosedError):
        await client.head_bucket(Bucket="anything")
    with pytest.raises(ClientClosedError):
        _ = client.service
    with pytest.raises(ClientClosedError):
        async with client:
            pass

    # Used without `async with`, then closed explicitly.
    direct = AsyncDeltaGliderClient(moto_s3.config())
    try:
        assert isinstance(await direct.list_buckets(), dict)
    finally:
        await direct.aclose()
    assert direct.state is ClientState.CLOSED


# ------------------------------------------------------------------------- put_object


async def test_put_object_accepts_every_body_type(
    client: AsyncDeltaGliderClient, bucket: str, tmp_path: Path
) -> None:
    source = tmp_path / "source.bin"
    source.write_bytes(TEXT)

    async def chunks() -> AsyncIterator[bytes | bytearray]:
        yield TEXT[:100]
        yield bytearray(TEXT[100:])

    class AsyncReader:
        def __init__(self) -> None:
            self._data = io.BytesIO(TEXT)

        async def read(self, size: int = -1) -> bytes:
            return self._data.read(size)

    bodies: dict[str, Any] = {
        "bytes": TEXT,
        "bytearray": bytearray(TEXT),
        "memoryview": memoryview(TEXT),
        "str": TEXT.decode("utf-8"),
        "path": source,
        "async-iterator": chunks(),
        "async-reader": AsyncReader(),
    }
    with source.open("rb") as fileobj:
        bodies["file-object"] = fileobj
        for name, body in bodies.items():
            response = await client.put_object(Bucket=bucket, Key=f"bodies/{name}.txt", Body=body)
            assert response["ETag"] == f'"{md5_bytes(TEXT)}"', name
            assert response["DeltaGliderInfo"]["StoredAs"] == "direct"
    for name in bodies:
        got = await read_all(await client.get_object(Bucket=bucket, Key=f"bodies/{name}.txt"))
        assert got == TEXT, name


async def test_put_object_refuses_bad_bodies_and_reserved_keys(
    client: AsyncDeltaGliderClient, bucket: str, s3_admin: Any, tmp_path: Path
) -> None:
    for body in (12345, [b"a", b"b"], {"a": 1}):
        with pytest.raises(InvalidArgumentError, match=type(body).__name__):
            await client.put_object(Bucket=bucket, Key="bad.txt", Body=body)
    # Body=None stores an empty object, as boto3 does.
    await client.put_object(Bucket=bucket, Key="empty.txt", Body=None)
    assert (await client.head_object(Bucket=bucket, Key="empty.txt"))["ContentLength"] == 0
    await client.delete_object(Bucket=bucket, Key="empty.txt")
    text_file = tmp_path / "text.txt"
    text_file.write_text("hello")
    with text_file.open("r") as handle, pytest.raises(InvalidArgumentError, match="binary"):
        await client.put_object(Bucket=bucket, Key="bad.txt", Body=handle)
    with pytest.raises(NotFoundError):
        await client.put_object(Bucket=bucket, Key="bad.txt", Body=tmp_path / "missing.zip")

    consumed = []

    async def never_read() -> AsyncIterator[bytes]:
        consumed.append(True)
        yield b"x"

    for key in ("rel/reference.bin", "reference.bin", "rel/a.zip.delta", "dir/"):
        with pytest.raises(ReservedKeyError, match=r"reserved|directory"):
            await client.put_object(Bucket=bucket, Key=key, Body=never_read())
    assert not consumed
    assert list_keys(s3_admin, bucket) == {}


async def test_put_object_missing_bucket(client: AsyncDeltaGliderClient, zips: list[Path]) -> None:
    with pytest.raises(BucketNotFoundError):
        await client.put_object(Bucket=f"missing-{uuid.uuid4().hex[:8]}", Key="a.txt", Body=b"x")
    with pytest.raises(BucketNotFoundError):
        await client.put_object(Bucket=f"missing-{uuid.uuid4().hex[:8]}", Key="a.zip", Body=zips[0])


async def test_put_object_reports_how_it_stored(
    client: AsyncDeltaGliderClient, bucket: str, s3_admin: Any, zips: list[Path]
) -> None:
    first, second = await put_versions(client, bucket, "rel", zips[:2])
    info = first["DeltaGliderInfo"]
    assert (info["StoredAs"], info["Operation"], info["IsDelta"]) == (
        "reference",
        "create_reference",
        True,
    )
    info = second["DeltaGliderInfo"]
    assert (info["StoredAs"], info["Operation"], info["IsDelta"]) == ("delta", "create_delta", True)
    assert info["DeltaRatio"] < 0.5
    assert info["SavingsPercent"] > 50
    assert info["StoredSizeMB"] < info["OriginalSizeMB"]
    assert info["StoredKey"] == f"rel/{zips[1].name}.delta"
    assert second["ETag"] == f'"{md5_bytes(zips[1].read_bytes())}"'

    direct = await client.put_object(
        Bucket=bucket,
        Key="rel/notes.txt",
        Body=TEXT,
        Metadata={"Build": "42"},
        ContentType="text/plain",
    )
    assert direct["DeltaGliderInfo"]["StoredAs"] == "direct"
    assert direct["DeltaGliderInfo"]["IsDelta"] is False
    assert set(list_keys(s3_admin, bucket)) == {
        "rel/reference.bin",
        f"rel/{zips[0].name}.delta",
        f"rel/{zips[1].name}.delta",
        "rel/notes.txt",
    }
    head = await client.head_object(Bucket=bucket, Key="rel/notes.txt")
    assert head["Metadata"] == {"build": "42"}
    assert head["ContentType"] == "text/plain"


# ------------------------------------------------------------------------- get_object


async def test_get_object_streams_a_delta_with_ranges(
    client: AsyncDeltaGliderClient, bucket: str, zips: list[Path], private_tmp: Path
) -> None:
    await put_versions(client, bucket, "rel", zips[:2])
    data = zips[1].read_bytes()
    for key in (f"rel/{zips[1].name}", f"rel/{zips[1].name}.delta"):
        response = await client.get_object(Bucket=bucket, Key=key)
        assert response["ContentLength"] == len(data)
        assert response["ETag"] == f'"{md5_bytes(data)}"'
        assert isinstance(response["LastModified"], datetime)
        assert response["DeltaGlider"]["IsDelta"] is True
        body = response["Body"]
        assert isinstance(body, AsyncStreamingBody)
        got = b"".join([chunk async for chunk in body.iter_chunks(10_000)])
        assert got == data
        await body.aclose()
        with pytest.raises(ClientClosedError):
            await body.read()

    cases = {
        "bytes=0-99": (0, 99),
        "bytes=1000-": (1000, len(data) - 1),
        "bytes=-50": (len(data) - 50, len(data) - 1),
        f"bytes=10-{len(data) * 2}": (10, len(data) - 1),
    }
    for spec, (start, end) in cases.items():
        response = await client.get_object(Bucket=bucket, Key=f"rel/{zips[1].name}", Range=spec)
        assert response["ContentRange"] == f"bytes {start}-{end}/{len(data)}"
        assert response["ContentLength"] == end - start + 1
        assert response["ResponseMetadata"]["HTTPStatusCode"] == 206
        async with response["Body"] as body:
            first = await body.aread(7)
            rest = b"".join([c async for c in body.aiter_chunks(1000)])
        assert first + rest == data[start : end + 1]
    # Every reconstructed temp file is gone once its body is closed.
    assert [p for p in files_under(private_tmp) if "deltaglider-client-" in str(p)] == []


async def test_get_object_streams_direct_and_plain_objects_with_ranges(
    client: AsyncDeltaGliderClient, bucket: str, s3_admin: Any
) -> None:
    await client.put_object(Bucket=bucket, Key="docs/a.txt", Body=TEXT, Metadata={"k": "v"})
    s3_admin.put_object(Bucket=bucket, Key="docs/plain.bin", Body=TEXT, Metadata={"Owner": "me"})
    for key in ("docs/a.txt", "docs/plain.bin"):
        response = await client.get_object(Bucket=bucket, Key=key)
        assert await read_all(response) == TEXT
        response = await client.get_object(Bucket=bucket, Key=key, Range="bytes=5-14")
        assert response["ContentRange"] == f"bytes 5-14/{len(TEXT)}"
        assert await read_all(response) == TEXT[5:15]
        response = await client.get_object(Bucket=bucket, Key=key, Range="bytes=-3")
        assert await read_all(response) == TEXT[-3:]
    plain = await client.get_object(Bucket=bucket, Key="docs/plain.bin")
    assert plain["Metadata"] == {"owner": "me"}
    assert plain["DeltaGlider"]["StoredAs"] == "plain"
    await plain["Body"].close()
    direct = await client.get_object(Bucket=bucket, Key="docs/a.txt")
    assert direct["Metadata"] == {"k": "v"}
    assert direct["DeltaGlider"]["StoredAs"] == "direct"
    await direct["Body"].close()


async def test_get_object_bad_inputs(
    client: AsyncDeltaGliderClient, bucket: str, zips: list[Path]
) -> None:
    await client.put_object(Bucket=bucket, Key="a.txt", Body=TEXT)
    await put_versions(client, bucket, "rel", zips[:1])
    for spec in ("bytes=abc", "items=0-1", "bytes=9-2", "bytes=-", "bytes=0-1,5-6", 12):
        with pytest.raises(InvalidArgumentError, match="Range"):
            await client.get_object(Bucket=bucket, Key="a.txt", Range=spec)  # type: ignore[arg-type]
    for key in ("a.txt", f"rel/{zips[0].name}"):
        with pytest.raises(InvalidArgumentError, match="not satisfiable"):
            await client.get_object(Bucket=bucket, Key=key, Range="bytes=10000000-")
    with pytest.raises(ObjectNotFoundError):
        await client.get_object(Bucket=bucket, Key="missing.txt")
    with pytest.raises(BucketNotFoundError):
        await client.get_object(Bucket=f"missing-{uuid.uuid4().hex[:8]}", Key="a.txt")
    with pytest.raises(InvalidArgumentError):
        await client.get_object(Bucket="", Key="a.txt")


async def test_get_object_detects_corruption(
    client: AsyncDeltaGliderClient, bucket: str, s3_admin: Any, zips: list[Path]
) -> None:
    await client.put_object(Bucket=bucket, Key="a.txt", Body=TEXT)
    rewrite_object(s3_admin, bucket, "a.txt", body=flip_byte(TEXT, len(TEXT) - 1))
    response = await client.get_object(Bucket=bucket, Key="a.txt")
    async with response["Body"] as body:
        first = await body.read(100)
        assert first == TEXT[:100]  # streamed before the end is reached
        with pytest.raises(IntegrityError):
            await body.read()

    await put_versions(client, bucket, "rel", zips[:2])
    delta_key = f"rel/{zips[1].name}.delta"
    rewrite_object(s3_admin, bucket, delta_key, body=b"\x00" * 64)
    with pytest.raises(IntegrityError):
        await client.get_object(Bucket=bucket, Key=f"rel/{zips[1].name}")


async def test_open_bodies_are_closed_with_the_client(
    s3_config: DeltaGliderConfig, bucket: str, zips: list[Path], private_tmp: Path
) -> None:
    async with AsyncDeltaGliderClient(s3_config) as client:
        await put_versions(client, bucket, "rel", zips[:2])
        await client.put_object(Bucket=bucket, Key="a.txt", Body=TEXT)
        delta = (await client.get_object(Bucket=bucket, Key=f"rel/{zips[1].name}"))["Body"]
        direct = (await client.get_object(Bucket=bucket, Key="a.txt"))["Body"]
        assert files_under(private_tmp)
    assert delta.closed
    assert direct.closed
    assert files_under(private_tmp) == []


# ------------------------------------------------------------------------- head_object


async def test_head_object_describes_the_original(
    client: AsyncDeltaGliderClient, bucket: str, zips: list[Path]
) -> None:
    await put_versions(client, bucket, "rel", zips[:2])
    data = zips[1].read_bytes()
    for key in (f"rel/{zips[1].name}", f"rel/{zips[1].name}.delta"):
        head = await client.head_object(Bucket=bucket, Key=key)
        assert head["ContentLength"] == len(data)
        assert head["ETag"] == f'"{md5_bytes(data)}"'
        assert isinstance(head["LastModified"], datetime)
        assert head["LastModified"].tzinfo is not None
        assert head["Metadata"] == {}
        info = head["DeltaGlider"]
        assert info["IsDelta"] is True
        assert info["StoredKey"] == f"rel/{zips[1].name}.delta"
        assert info["Sha256"] == hashlib.sha256(data).hexdigest()
        assert info["StoredSize"] < len(data)
    with pytest.raises(ObjectNotFoundError):
        await client.head_object(Bucket=bucket, Key="rel/missing.zip")
    with pytest.raises(BucketNotFoundError):
        await client.head_object(Bucket=f"missing-{uuid.uuid4().hex[:8]}", Key="a.zip")


# ------------------------------------------------------------------------- list_objects


async def seven_objects(client: AsyncDeltaGliderClient, bucket: str, zips: list[Path]) -> set[str]:
    """4 deltas and 3 direct objects in one space (plus its hidden reference.bin)."""
    await put_versions(client, bucket, "rel", zips)
    for name in ("a.txt", "m.txt", "z.txt"):
        await client.put_object(Bucket=bucket, Key=f"rel/{name}", Body=TEXT)
    return {f"rel/{p.name}" for p in zips} | {"rel/a.txt", "rel/m.txt", "rel/z.txt"}


async def test_list_objects_hides_internals_and_strips_delta(
    client: AsyncDeltaGliderClient, bucket: str, s3_admin: Any, zips: list[Path]
) -> None:
    expected = await seven_objects(client, bucket, zips)
    s3_admin.put_object(Bucket=bucket, Key=".deltaglider/stats_quick.json", Body=b"{}")
    response = await client.list_objects(Bucket=bucket)
    assert {o["Key"] for o in response["Contents"]} == expected
    assert response["KeyCount"] == 7
    assert response["IsTruncated"] is False
    assert "NextContinuationToken" not in response
    for entry in response["Contents"]:
        assert isinstance(entry["LastModified"], datetime)
        assert entry["StorageClass"]
        assert entry["DeltaGlider"]["IsDelta"] == entry["Key"].endswith(".zip")

    rooted = await client.list_objects(Bucket=bucket, Delimiter="/")
    assert rooted["CommonPrefixes"] == [{"Prefix": "rel/"}]
    assert rooted["Contents"] == []


async def test_list_objects_pages_with_continuation_token_and_start_after(
    client: AsyncDeltaGliderClient, bucket: str, zips: list[Path]
) -> None:
    expected = await seven_objects(client, bucket, zips)

    seen: list[str] = []
    token: str | None = None
    pages = 0
    while True:
        kwargs: dict[str, Any] = {"ContinuationToken": token} if token else {}
        page = await client.list_objects(Bucket=bucket, Prefix="rel/", MaxKeys=2, **kwargs)
        pages += 1
        assert page["KeyCount"] == len(page["Contents"]) <= 2
        seen += [o["Key"] for o in page["Contents"]]
        if not page["IsTruncated"]:
            break
        token = page["NextContinuationToken"]
    assert sorted(seen) == sorted(expected)
    assert len(seen) == len(set(seen)) == 7
    assert pages == 4

    seen = []
    after: str | None = None
    while True:
        page = await client.list_objects(Bucket=bucket, MaxKeys=2, StartAfter=after)
        seen += [o["Key"] for o in page["Contents"]]
        if not page["IsTruncated"]:
            break
        after = page["Contents"][-1]["Key"]
    assert sorted(seen) == sorted(expected)
    assert len(seen) == 7


async def test_list_objects_pages_common_prefixes(
    client: AsyncDeltaGliderClient, bucket: str
) -> None:
    for key in ("a/1.txt", "a/2.txt", "b/1.txt", "c/d/1.txt", "root.txt", "x.txt"):
        await client.put_object(Bucket=bucket, Key=key, Body=TEXT)
    seen: list[str] = []
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"ContinuationToken": token} if token else {}
        page = await client.list_objects(Bucket=bucket, Delimiter="/", MaxKeys=1, **kwargs)
        seen += [p["Prefix"] for p in page["CommonPrefixes"]]
        seen += [o["Key"] for o in page["Contents"]]
        if not page["IsTruncated"]:
            break
        token = page["NextContinuationToken"]
    assert seen == ["a/", "b/", "c/", "root.txt", "x.txt"]


async def test_list_objects_fetch_metadata(
    client: AsyncDeltaGliderClient, bucket: str, zips: list[Path]
) -> None:
    await seven_objects(client, bucket, zips)
    plain = {o["Key"]: o for o in (await client.list_objects(Bucket=bucket))["Contents"]}
    rich = {
        o["Key"]: o
        for o in (await client.list_objects(Bucket=bucket, FetchMetadata=True))["Contents"]
    }
    for path in zips:
        key = f"rel/{path.name}"
        size = path.stat().st_size
        assert plain[key]["Size"] < size
        assert rich[key]["Size"] == rich[key]["DeltaGlider"]["OriginalSize"] == size
        stored = rich[key]["DeltaGlider"]["StoredSize"]
        assert rich[key]["DeltaGlider"]["DeltaRatio"] == pytest.approx(stored / size)
        assert rich[key]["DeltaGlider"]["CompressionRatio"] == pytest.approx(1 - stored / size)
        assert rich[key]["ETag"] == f'"{md5_bytes(path.read_bytes())}"'
    assert rich["rel/a.txt"].pop("Metadata") == {"deltaglider-is-delta": "false"}
    assert rich["rel/a.txt"] == plain["rel/a.txt"]
    assert "OriginalSize" not in rich["rel/a.txt"]["DeltaGlider"]


async def test_list_objects_max_keys_zero_is_not_truncated(
    client: AsyncDeltaGliderClient, bucket: str
) -> None:
    await client.put_object(Bucket=bucket, Key="a.txt", Body=TEXT)
    page = await client.list_objects(Bucket=bucket, MaxKeys=0)
    assert page["Contents"] == []
    assert page["IsTruncated"] is False
    capped = await client.list_objects(Bucket=bucket, MaxKeys=5000)
    assert capped["MaxKeys"] == 1000


async def test_list_objects_bad_inputs(client: AsyncDeltaGliderClient, bucket: str) -> None:
    with pytest.raises(InvalidArgumentError, match="ContinuationToken"):
        await client.list_objects(Bucket=bucket, ContinuationToken="not-a-token")
    with pytest.raises(InvalidArgumentError, match="MaxKeys"):
        await client.list_objects(Bucket=bucket, MaxKeys=-1)
    with pytest.raises(BucketNotFoundError):
        await client.list_objects(Bucket=f"missing-{uuid.uuid4().hex[:8]}")


# ------------------------------------------------------------------------- deletes


async def test_delete_object(
    client: AsyncDeltaGliderClient, bucket: str, s3_admin: Any, zips: list[Path]
) -> None:
    await put_versions(client, bucket, "rel", zips[:2])
    with pytest.raises(ReservedKeyError, match="still the reference"):
        await client.delete_object(Bucket=bucket, Key="rel/reference.bin")

    first = await client.delete_object(Bucket=bucket, Key=f"rel/{zips[0].name}")
    assert first["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert first["DeltaGliderInfo"]["Deleted"] is True
    assert first["DeltaGliderInfo"]["Type"] == "delta"
    assert first["DeltaGliderInfo"]["ReferenceDeleted"] is False
    assert "rel/reference.bin" in list_keys(s3_admin, bucket)

    last = await client.delete_object(Bucket=bucket, Key=f"rel/{zips[1].name}.delta")
    assert last["DeltaGliderInfo"]["ReferenceDeleted"] is True
    assert list_keys(s3_admin, bucket) == {}

    missing = await client.delete_object(Bucket=bucket, Key="rel/never-existed.zip")
    assert missing["DeltaGliderInfo"]["Deleted"] is False
    with pytest.raises(BucketNotFoundError):
        await client.delete_object(Bucket=f"missing-{uuid.uuid4().hex[:8]}", Key="a.zip")


async def test_delete_objects(
    client: AsyncDeltaGliderClient, bucket: str, s3_admin: Any, zips: list[Path]
) -> None:
    await put_versions(client, bucket, "rel", zips[:3])
    await client.put_object(Bucket=bucket, Key="rel/a.txt", Body=TEXT)
    await client.put_object(Bucket=bucket, Key="keep.txt", Body=TEXT)
    keys = [
        f"rel/{zips[0].name}",
        f"rel/{zips[1].name}.delta",
        "rel/missing.zip",
        "rel/a.txt",
    ]
    response = await client.delete_objects(
        Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys]}
    )
    assert [d["Key"] for d in response["Deleted"]] == keys
    assert response["Errors"] == []
    assert response["DeltaGliderInfo"] == {
        "DeltasDeleted": 2,
        "DirectDeleted": 1,
        "ReferencesDeleted": 0,
    }
    assert set(list_keys(s3_admin, bucket)) == {
        "keep.txt",
        "rel/reference.bin",
        f"rel/{zips[2].name}.delta",
    }

    quiet = await client.delete_objects(
        Bucket=bucket,
        Delete={"Objects": [{"Key": f"rel/{zips[2].name}"}, {"Key": "keep.txt"}], "Quiet": True},
    )
    assert quiet["Deleted"] == []
    assert quiet["Errors"] == []
    assert quiet["DeltaGliderInfo"]["ReferencesDeleted"] == 1
    assert list_keys(s3_admin, bucket) == {}

    with pytest.raises(BucketNotFoundError):
        await client.delete_objects(
            Bucket=f"missing-{uuid.uuid4().hex[:8]}", Delete={"Objects": [{"Key": "a"}]}
        )
    with pytest.raises(InvalidArgumentError):
        await client.delete_objects(Bucket=bucket, Delete={"Keys": ["a"]})


async def test_delete_objects_reports_references_in_use(
    client: AsyncDeltaGliderClient, bucket: str, s3_admin: Any, zips: list[Path]
) -> None:
    await put_versions(client, bucket, "rel", zips[:2])
    response = await client.delete_objects(
        Bucket=bucket, Delete={"Objects": [{"Key": "rel/reference.bin"}]}
    )
    assert [e["Code"] for e in response["Errors"]] == ["ReferenceInUse"]
    assert "rel/reference.bin" in list_keys(s3_admin, bucket)


async def test_delete_objects_recursive(
    client: AsyncDeltaGliderClient, bucket: str, s3_admin: Any, zips: list[Path]
) -> None:
    await put_versions(client, bucket, "rel/v1", zips[:2])
    await put_versions(client, bucket, "rel/v2", zips[2:])
    await client.put_object(Bucket=bucket, Key="rel/v1/notes.txt", Body=TEXT)
    s3_admin.put_object(Bucket=bucket, Key=".deltaglider/stats_quick.json", Body=b"{}")

    response = await client.delete_objects_recursive(Bucket=bucket, Prefix="rel/v1/")
    assert response["DeletedCount"] == 4
    assert response["FailedCount"] == 0
    assert response["DeltaGliderInfo"] == {
        "DeltasDeleted": 2,
        "ReferencesDeleted": 1,
        "OtherDeleted": 1,
    }
    assert not any(k.startswith("rel/v1/") for k in list_keys(s3_admin, bucket))
    assert "rel/v2/reference.bin" in list_keys(s3_admin, bucket)

    everything = await client.delete_objects_recursive(Bucket=bucket, Prefix="")
    assert everything["DeletedCount"] == 4
    assert list_keys(s3_admin, bucket) == {}
    with pytest.raises(BucketNotFoundError):
        await client.delete_objects_recursive(Bucket=f"missing-{uuid.uuid4().hex[:8]}", Prefix="")


async def test_recursive_delete_drops_a_reference_outside_the_prefix(
    client: AsyncDeltaGliderClient, bucket: str, s3_admin: Any, zips: list[Path]
) -> None:
    await put_versions(client, bucket, "rel", zips[:1])
    response = await client.delete_objects_recursive(Bucket=bucket, Prefix="rel/app")
    assert response["DeltaGliderInfo"]["ReferencesDeleted"] == 1
    assert list_keys(s3_admin, bucket) == {}


# ------------------------------------------------------------------------- copy_object


async def test_copy_object_between_prefixes_and_buckets(
    client: AsyncDeltaGliderClient, bucket: str, s3_admin: Any, zips: list[Path]
) -> None:
    await put_versions(client, bucket, "src", zips[:2])
    await client.put_object(
        Bucket=bucket, Key="src/a.txt", Body=TEXT, Metadata={"team": "x"}, ContentType="text/plain"
    )

    copied = await client.copy_object(
        Bucket=bucket,
        Key=f"dst/{zips[1].name}",
        CopySource={"Bucket": bucket, "Key": f"src/{zips[1].name}"},
    )
    assert copied["DeltaGliderInfo"]["StoredAs"] == "reference"  # first file of dst/
    assert copied["CopyObjectResult"]["ETag"] == f'"{md5_bytes(zips[1].read_bytes())}"'
    assert "dst/reference.bin" in list_keys(s3_admin, bucket)
    got = await read_all(await client.get_object(Bucket=bucket, Key=f"dst/{zips[1].name}"))
    assert got == zips[1].read_bytes()

    other = f"t-{uuid.uuid4().hex[:12]}"
    await client.create_bucket(Bucket=other)
    try:
        await client.copy_object(Bucket=other, Key="copy.txt", CopySource=f"{bucket}/src/a.txt")
        head = await client.head_object(Bucket=other, Key="copy.txt")
        assert (head["Metadata"], head["ContentType"]) == ({"team": "x"}, "text/plain")
        await client.copy_object(
            Bucket=other,
            Key="replaced.txt",
            CopySource={"Bucket": bucket, "Key": "src/a.txt"},
            Metadata={"new": "1"},
            MetadataDirective="REPLACE",
        )
        head = await client.head_object(Bucket=other, Key="replaced.txt")
        assert head["Metadata"] == {"new": "1"}
        assert await read_all(await client.get_object(Bucket=other, Key="replaced.txt")) == TEXT
    finally:
        await client.delete_objects_recursive(Bucket=other, Prefix="")
        await client.delete_bucket(Bucket=other)

    with pytest.raises(ObjectNotFoundError):
        await client.copy_object(Bucket=bucket, Key="x.txt", CopySource=f"{bucket}/missing.txt")
    with pytest.raises(ReservedKeyError):
        await client.copy_object(Bucket=bucket, Key="dst/x.delta", CopySource=f"{bucket}/src/a.txt")
    with pytest.raises(InvalidArgumentError, match="MetadataDirective"):
        await client.copy_object(
            Bucket=bucket, Key="x.txt", CopySource=f"{bucket}/src/a.txt", MetadataDirective="MOVE"
        )
    with pytest.raises(InvalidArgumentError, match="CopySource"):
        await client.copy_object(Bucket=bucket, Key="x.txt", CopySource=42)  # type: ignore[arg-type]


# ------------------------------------------------------------------------- buckets


async def test_bucket_lifecycle(client: AsyncDeltaGliderClient, s3_admin: Any) -> None:
    name = f"t-{uuid.uuid4().hex[:12]}"
    created = await client.create_bucket(Bucket=name)
    assert created["Location"] == f"/{name}"
    try:
        await client.create_bucket(Bucket=name)  # idempotent for its owner
        await client.head_bucket(Bucket=name)
        names = [b["Name"] for b in (await client.list_buckets())["Buckets"]]
        assert name in names

        await client.put_object(Bucket=name, Key="a.txt", Body=TEXT)
        with pytest.raises(BucketNotEmptyError):
            await client.delete_bucket(Bucket=name)
        await client.delete_object(Bucket=name, Key="a.txt")
        # The stats cache is deltaglider's own: it does not keep a bucket "non-empty".
        s3_admin.put_object(Bucket=name, Key=".deltaglider/stats_quick.json", Body=b"{}")
        await client.delete_bucket(Bucket=name)
    finally:
        await client.delete_bucket(Bucket=name)  # deleting a missing bucket is a no-op
    with pytest.raises(BucketNotFoundError):
        await client.head_bucket(Bucket=name)
    with pytest.raises(InvalidArgumentError):
        await client.create_bucket(Bucket="")
    with pytest.raises(InvalidArgumentError):
        await client.create_bucket(Bucket=name, CreateBucketConfiguration="eu")  # type: ignore[arg-type]


async def test_bucket_acl_on_moto(moto_s3: LocalS3) -> None:
    async with AsyncDeltaGliderClient(moto_s3.config()) as client:
        name = f"t-{uuid.uuid4().hex[:12]}"
        await client.create_bucket(Bucket=name)
        try:
            await client.put_bucket_acl(Bucket=name, ACL="public-read")
            acl = await client.get_bucket_acl(Bucket=name)
            assert acl["Owner"]
            uris = {g["Grantee"].get("URI") for g in acl["Grants"]}
            assert "http://acs.amazonaws.com/groups/global/AllUsers" in uris
        finally:
            await client.delete_bucket(Bucket=name)
        with pytest.raises(BucketNotFoundError):
            await client.get_bucket_acl(Bucket=name)
        with pytest.raises(BucketNotFoundError):
            await client.put_bucket_acl(Bucket=name, ACL="private")


# ------------------------------------------------------------------------- presigned URLs


async def test_generate_presigned_url(
    client: AsyncDeltaGliderClient, bucket: str, zips: list[Path]
) -> None:
    await client.put_object(Bucket=bucket, Key="docs/a.txt", Body=TEXT)
    url = await client.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "docs/a.txt"}, ExpiresIn=300
    )

    def fetch() -> bytes:
        with urllib.request.urlopen(url, timeout=10) as reply:
            data: bytes = reply.read()
        return data

    assert await anyio.to_thread.run_sync(fetch) == TEXT

    await put_versions(client, bucket, "rel", zips[:2])
    for key in (f"rel/{zips[1].name}", f"rel/{zips[1].name}.delta"):
        with pytest.raises(InvalidArgumentError, match="delta"):
            await client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key})
    with pytest.raises(ObjectNotFoundError):
        await client.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": "missing.txt"}
        )
    with pytest.raises(ReservedKeyError):
        await client.generate_presigned_url(
            "put_object", Params={"Bucket": bucket, "Key": "rel/reference.bin"}
        )
    with pytest.raises(InvalidArgumentError, match="ExpiresIn"):
        await client.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": "docs/a.txt"}, ExpiresIn=0
        )


# ------------------------------------------------------------------------- simple API


async def test_upload_treats_the_url_as_a_prefix(
    client: AsyncDeltaGliderClient, bucket: str, s3_admin: Any, zips: list[Path]
) -> None:
    first = await client.upload(zips[0], f"s3://{bucket}/rel/v1/")
    assert isinstance(first, UploadSummary)
    assert (first.operation, first.action, first.stored_key, first.is_delta) == (
        "PUT_DELTA",
        "create_reference",
        f"rel/v1/{zips[0].name}.delta",
        True,
    )
    # The key users list and download by, as the API reference prints it.
    assert first.key == f"rel/v1/{zips[0].name}"
    second = await client.upload(str(zips[1]), f"s3://{bucket}/rel/v1")
    assert second.action == "create_delta"
    assert second.stored_key == f"rel/v1/{zips[1].name}.delta"
    assert second.savings_percent > 50
    assert second.stored_size_mb < second.original_size_mb
    root = await client.upload(zips[2], f"s3://{bucket}", tags={"ignored": "yes"})
    assert root.stored_key == f"{zips[2].name}.delta"
    assert root.key == zips[2].name
    direct = await client.upload(zips[3], f"s3://{bucket}/strict/", max_ratio=0.0)
    assert direct.action == "create_reference"
    strict = await client.upload(zips[2], f"s3://{bucket}/strict/", max_ratio=0.0)
    assert (strict.operation, strict.action, strict.is_delta) == ("PUT", "upload_direct", False)
    assert f"strict/{zips[2].name}" in list_keys(s3_admin, bucket)

    with pytest.raises(InvalidRatioError):
        await client.upload(zips[0], f"s3://{bucket}/rel/", max_ratio=1.5)
    with pytest.raises(InvalidURLError):
        await client.upload(zips[0], f"https://{bucket}/rel/")
    with pytest.raises(NotFoundError):
        await client.upload(zips[0].with_name("missing.zip"), f"s3://{bucket}/rel/")
    with pytest.raises(BucketNotFoundError):
        await client.upload(zips[0], f"s3://missing-{uuid.uuid4().hex[:8]}/rel/")


async def test_download_verify_and_clear_cache(
    client: AsyncDeltaGliderClient, bucket: str, s3_admin: Any, zips: list[Path], tmp_path: Path
) -> None:
    await client.upload(zips[0], f"s3://{bucket}/rel/")
    await client.upload(zips[1], f"s3://{bucket}/rel/")
    out = tmp_path / "out"
    out.mkdir()
    await client.download(f"s3://{bucket}/rel/{zips[1].name}", out / "logical.zip")
    assert (out / "logical.zip").read_bytes() == zips[1].read_bytes()
    await client.clear_cache()
    await client.download(f"s3://{bucket}/rel/{zips[1].name}.delta", out)
    assert (out / zips[1].name).read_bytes() == zips[1].read_bytes()

    assert await client.verify(f"s3://{bucket}/rel/{zips[1].name}") is True
    assert await client.verify(f"s3://{bucket}/rel/{zips[0].name}.delta") is True

    with pytest.raises(ObjectNotFoundError):
        await client.download(f"s3://{bucket}/rel/missing.zip", out / "m.zip")
    assert not (out / "m.zip").exists()
    with pytest.raises(InvalidURLError):
        await client.download(f"s3://{bucket}/rel/", out / "x")
    with pytest.raises(InvalidURLError):
        await client.download("rel/a.zip", out / "x")
    with pytest.raises(NotFoundError):
        await client.download(f"s3://{bucket}/rel/{zips[1].name}", out / "no" / "dir.zip")
    with pytest.raises(ObjectNotFoundError):
        await client.verify(f"s3://{bucket}/rel/missing.zip")
    with pytest.raises(InvalidURLError):
        await client.verify("s3:///rel/a.zip")

    delta_key = f"rel/{zips[1].name}.delta"
    tampered = flip_byte(read_object(s3_admin, bucket, delta_key), 40)
    rewrite_object(s3_admin, bucket, delta_key, body=tampered)
    assert await client.verify(f"s3://{bucket}/rel/{zips[1].name}") is False
    before = (out / zips[1].name).read_bytes()
    with pytest.raises(IntegrityError):
        await client.download(f"s3://{bucket}/rel/{zips[1].name}", out)
    assert (out / zips[1].name).read_bytes() == before
    assert sorted(p.name for p in out.iterdir()) == sorted(["logical.zip", zips[1].name])


def test_client_state_names() -> None:
    assert [s.value for s in ClientState] == ["unopened", "opened", "closed"]
