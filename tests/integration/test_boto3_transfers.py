"""boto3's transfer calls and paginator: the same script sees the same thing on boto3 and here.

Both servers. One script uses ``upload_file``, ``upload_fileobj``, ``download_file``,
``download_fileobj`` (with ``Callback``) and ``get_paginator("list_objects_v2")`` (pages,
``Delimiter``, ``MaxItems`` with a resume token, ``search``). It runs once with plain boto3
on a plain bucket and once with deltaglider (blocking, and as coroutines on the async
client) on another bucket, and what it sees must be equal, while the deltaglider bucket
really holds deltas.
"""

from __future__ import annotations

import hashlib
import io
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from boto3.s3.transfer import TransferConfig

from deltaglider import DeltaGliderClient
from deltaglider_async import (
    AsyncDeltaGliderClient,
    InvalidArgumentError,
    NotFoundError,
    ObjectNotFoundError,
)
from deltaglider_async.testing import LocalS3
from tests.archives import make_zip_versions

from .support import list_keys


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Totals:
    """``Callback`` byte totals by name, as a progress bar would add them up."""

    def __init__(self) -> None:
        self.bytes: dict[str, int] = {}
        self.calls: dict[str, list[int]] = {}

    def __call__(self, name: str) -> Callable[[int], None]:
        self.bytes[name] = 0
        self.calls[name] = []

        def callback(amount: int) -> None:
            self.bytes[name] += amount
            self.calls[name].append(amount)

        return callback


def transfer_script(s3: Any, bucket: str, files: list[Path], work: Path) -> dict[str, Any]:
    """What a boto3 user types; returns what they see."""
    totals = Totals()
    for path in files:
        s3.upload_file(
            str(path),
            bucket,
            f"app/{path.name}",
            ExtraArgs={"Metadata": {"release": path.stem}, "ContentType": "application/zip"},
            Callback=totals(f"upload_file {path.name}"),
        )
    with files[-1].open("rb") as f:
        s3.upload_fileobj(f, bucket, "app/nested/copy.zip", Callback=totals("upload_fileobj"))
    s3.upload_fileobj(io.BytesIO(b"release notes\n"), bucket, "docs/readme.txt")

    seen: dict[str, Any] = {}
    out = work / "restored.zip"
    s3.download_file(bucket, f"app/{files[1].name}", str(out), Callback=totals("download_file"))
    seen["download_file"] = _sha(out.read_bytes())
    buffer = io.BytesIO()
    s3.download_fileobj(bucket, "app/nested/copy.zip", buffer, Callback=totals("download_fileobj"))
    seen["download_fileobj"] = _sha(buffer.getvalue())
    head = s3.head_object(Bucket=bucket, Key=f"app/{files[0].name}")
    seen["head"] = [head["ContentLength"], head["ContentType"], head["Metadata"]]

    paginator = s3.get_paginator("list_objects_v2")
    seen["pages"] = [
        [item["Key"] for item in page.get("Contents", [])]
        for page in paginator.paginate(
            Bucket=bucket, Prefix="app/", PaginationConfig={"PageSize": 2}
        )
    ]
    seen["delimited"] = [
        (
            [item["Key"] for item in page.get("Contents", [])],
            [common["Prefix"] for common in page.get("CommonPrefixes", [])],
        )
        for page in paginator.paginate(Bucket=bucket, Prefix="app/", Delimiter="/")
    ]
    first = paginator.paginate(
        Bucket=bucket, PaginationConfig={"MaxItems": 3, "PageSize": 2}
    ).build_full_result()
    seen["first"] = [item["Key"] for item in first["Contents"]]
    rest = paginator.paginate(
        Bucket=bucket, PaginationConfig={"StartingToken": first["NextToken"], "PageSize": 2}
    )
    seen["rest"] = list(rest.search("Contents[].Key"))

    missing = work / "missing.zip"
    try:
        s3.download_file(bucket, "app/missing.zip", str(missing))
    except s3.exceptions.ClientError as exc:
        seen["missing"] = exc.response["Error"]["Code"]
    seen["missing_left_a_file"] = missing.exists()
    seen["callbacks"] = totals.bytes
    return seen


async def async_transfer_script(
    s3: AsyncDeltaGliderClient, bucket: str, files: list[Path], work: Path
) -> dict[str, Any]:
    """:func:`transfer_script` as an aioboto3 user types it."""
    totals = Totals()
    for path in files:
        await s3.upload_file(
            str(path),
            bucket,
            f"app/{path.name}",
            ExtraArgs={"Metadata": {"release": path.stem}, "ContentType": "application/zip"},
            Callback=totals(f"upload_file {path.name}"),
        )
    with files[-1].open("rb") as f:
        await s3.upload_fileobj(f, bucket, "app/nested/copy.zip", Callback=totals("upload_fileobj"))
    await s3.upload_fileobj(io.BytesIO(b"release notes\n"), bucket, "docs/readme.txt")

    seen: dict[str, Any] = {}
    out = work / "restored.zip"
    await s3.download_file(
        bucket, f"app/{files[1].name}", str(out), Callback=totals("download_file")
    )
    seen["download_file"] = _sha(out.read_bytes())
    buffer = io.BytesIO()
    await s3.download_fileobj(
        bucket, "app/nested/copy.zip", buffer, Callback=totals("download_fileobj")
    )
    seen["download_fileobj"] = _sha(buffer.getvalue())
    head = await s3.head_object(Bucket=bucket, Key=f"app/{files[0].name}")
    seen["head"] = [head["ContentLength"], head["ContentType"], head["Metadata"]]

    paginator = s3.get_paginator("list_objects_v2")
    seen["pages"] = [
        [item["Key"] for item in page.get("Contents", [])]
        async for page in paginator.paginate(
            Bucket=bucket, Prefix="app/", PaginationConfig={"PageSize": 2}
        )
    ]
    seen["delimited"] = [
        (
            [item["Key"] for item in page.get("Contents", [])],
            [common["Prefix"] for common in page.get("CommonPrefixes", [])],
        )
        async for page in paginator.paginate(Bucket=bucket, Prefix="app/", Delimiter="/")
    ]
    first = await paginator.paginate(
        Bucket=bucket, PaginationConfig={"MaxItems": 3, "PageSize": 2}
    ).build_full_result()
    seen["first"] = [item["Key"] for item in first["Contents"]]
    rest = paginator.paginate(
        Bucket=bucket, PaginationConfig={"StartingToken": first["NextToken"], "PageSize": 2}
    )
    seen["rest"] = [key async for key in rest.search("Contents[].Key")]

    missing = work / "missing.zip"
    try:
        await s3.download_file(bucket, "app/missing.zip", str(missing))
    except s3.exceptions.ClientError as exc:
        seen["missing"] = exc.response["Error"]["Code"]
    seen["missing_left_a_file"] = missing.exists()
    seen["callbacks"] = totals.bytes
    return seen


@pytest.fixture
def files(tmp_path: Path) -> list[Path]:
    return make_zip_versions(tmp_path / "dist", 3, size=60_000)


@pytest.fixture
def other_bucket(s3_admin: Any, bucket: str) -> Iterator[str]:
    """A second fresh bucket on the same server (emptied and deleted afterwards)."""
    name = f"t-{uuid.uuid4().hex[:12]}"
    s3_admin.create_bucket(Bucket=name)
    try:
        yield name
    finally:
        for page in s3_admin.get_paginator("list_objects_v2").paginate(Bucket=name):
            for item in page.get("Contents", []):
                s3_admin.delete_object(Bucket=name, Key=item["Key"])
        s3_admin.delete_bucket(Bucket=name)


@pytest.fixture
def boto3_seen(
    s3_admin: Any, other_bucket: str, files: list[Path], tmp_path: Path
) -> dict[str, Any]:
    """What the script sees with plain boto3 on a plain bucket."""
    work = tmp_path / "boto3"
    work.mkdir()
    return transfer_script(s3_admin, other_bucket, files, work)


def _check_plain_facts(seen: dict[str, Any], files: list[Path]) -> None:
    """What both runs must see, whatever the other saw."""
    sizes = {path.name: path.stat().st_size for path in files}
    assert seen["download_file"] == _sha(files[1].read_bytes())
    assert seen["download_fileobj"] == _sha(files[-1].read_bytes())
    assert seen["callbacks"] == {
        **{f"upload_file {name}": size for name, size in sizes.items()},
        "upload_fileobj": sizes[files[-1].name],
        "download_file": sizes[files[1].name],
        "download_fileobj": sizes[files[-1].name],
    }
    names = sorted(f"app/{name}" for name in sizes)
    assert seen["pages"] == [names[:2], [names[2], "app/nested/copy.zip"]]
    assert seen["first"] + seen["rest"] == [*names, "app/nested/copy.zip", "docs/readme.txt"]
    assert len(seen["first"]) == 3


def test_blocking_client_sees_what_boto3_sees(
    s3_server: LocalS3,
    s3_admin: Any,
    bucket: str,
    files: list[Path],
    tmp_path: Path,
    boto3_seen: dict[str, Any],
) -> None:
    work = tmp_path / "deltaglider"
    work.mkdir()
    with DeltaGliderClient(s3_server.config()) as client:
        seen = transfer_script(client, bucket, files, work)
    _check_plain_facts(boto3_seen, files)
    assert seen == boto3_seen
    stored = list_keys(s3_admin, bucket)
    assert "app/reference.bin" in stored
    assert {f"app/{path.name}.delta" for path in files} <= set(stored)


async def test_async_client_sees_what_boto3_sees(
    s3_server: LocalS3,
    s3_admin: Any,
    bucket: str,
    files: list[Path],
    tmp_path: Path,
    boto3_seen: dict[str, Any],
) -> None:
    work = tmp_path / "deltaglider-async"
    work.mkdir()
    async with AsyncDeltaGliderClient(s3_server.config()) as client:
        seen = await async_transfer_script(client, bucket, files, work)
    assert seen == boto3_seen
    assert {f"app/{path.name}.delta" for path in files} <= set(list_keys(s3_admin, bucket))


# --------------------------------------------------------------------------- details


@pytest.fixture
async def client(s3_server: LocalS3) -> AsyncIterator[AsyncDeltaGliderClient]:
    async with AsyncDeltaGliderClient(s3_server.config()) as opened:
        yield opened


async def test_extra_args_boto3_does_not_allow_are_refused_by_name_and_store_nothing(
    client: AsyncDeltaGliderClient, bucket: str, s3_admin: Any, files: list[Path]
) -> None:
    with pytest.raises(InvalidArgumentError, match="IfNoneMatch"):
        await client.upload_file(files[0], bucket, "app/a.zip", ExtraArgs={"IfNoneMatch": "*"})
    with pytest.raises(InvalidArgumentError, match="Range"):
        await client.download_file(bucket, "app/a.zip", files[0], ExtraArgs={"Range": "x"})
    # Allowed by boto3, refused by deltaglider with its reason (as put_object refuses it).
    with pytest.raises(InvalidArgumentError, match="object lock"):
        await client.upload_file(
            files[0], bucket, "app/a.zip", ExtraArgs={"ObjectLockMode": "GOVERNANCE"}
        )
    assert list_keys(s3_admin, bucket) == {}


async def test_config_io_chunksize_sets_the_callback_granularity_and_max_bandwidth_is_refused(
    client: AsyncDeltaGliderClient, bucket: str, files: list[Path], tmp_path: Path
) -> None:
    totals = Totals()
    size = files[0].stat().st_size
    config = TransferConfig(io_chunksize=8192)
    await client.upload_file(files[0], bucket, "app/a.zip", Callback=totals("up"), Config=config)
    await client.download_file(
        bucket, "app/a.zip", tmp_path / "a.zip", Callback=totals("down"), Config=config
    )
    for name in ("up", "down"):
        assert sum(totals.calls[name]) == size
        assert max(totals.calls[name]) <= 8192
        assert len(totals.calls[name]) >= size // 8192
    with pytest.raises(InvalidArgumentError, match="max_bandwidth"):
        await client.upload_file(
            files[0], bucket, "app/b.zip", Config=TransferConfig(max_bandwidth=1000)
        )
    with pytest.raises(InvalidArgumentError, match="TransferConfig"):
        await client.upload_file(files[0], bucket, "app/b.zip", Config={"io_chunksize": 10})


async def test_async_callbacks_and_file_objects_are_awaited(
    client: AsyncDeltaGliderClient, bucket: str, files: list[Path]
) -> None:
    data = files[0].read_bytes()
    reported: list[int] = []

    async def callback(amount: int) -> None:
        reported.append(amount)

    class AsyncReader:
        def __init__(self) -> None:
            self._buffer = io.BytesIO(data)

        async def read(self, size: int) -> bytes:
            return self._buffer.read(size)

    class AsyncWriter:
        def __init__(self) -> None:
            self.buffer = io.BytesIO()

        async def write(self, chunk: bytes) -> int:
            return self.buffer.write(chunk)

    await client.upload_fileobj(AsyncReader(), bucket, "app/a.zip", Callback=callback)
    writer = AsyncWriter()
    await client.download_fileobj(bucket, "app/a.zip", writer, Callback=callback)
    assert writer.buffer.getvalue() == data
    assert sum(reported) == 2 * len(data)


async def test_download_file_failures_leave_nothing_behind(
    client: AsyncDeltaGliderClient, bucket: str, files: list[Path], tmp_path: Path
) -> None:
    await client.upload_file(files[0], bucket, "app/a.zip")
    with pytest.raises(NotFoundError, match="no-such-dir"):
        await client.download_file(bucket, "app/a.zip", tmp_path / "no-such-dir" / "a.zip")
    with pytest.raises(ObjectNotFoundError) as caught:
        await client.download_file(bucket, "app/b.zip", tmp_path / "b.zip")
    assert caught.value.response["Error"]["Code"] == "404"
    assert caught.value.operation_name == "HeadObject"
    target = tmp_path / "kept.zip"
    target.write_bytes(b"previous contents")
    with pytest.raises(ObjectNotFoundError):
        await client.download_file(bucket, "app/b.zip", target)
    assert target.read_bytes() == b"previous contents"
    assert [p.name async for p in anyio.Path(tmp_path).iterdir() if "dg-partial" in p.name] == []


async def test_file_objects_and_names_that_are_not_usable_are_refused(
    client: AsyncDeltaGliderClient, bucket: str, tmp_path: Path
) -> None:
    with pytest.raises(InvalidArgumentError, match="read"):
        await client.upload_fileobj(b"bytes are not a file object", bucket, "a.txt")
    with pytest.raises(InvalidArgumentError, match="binary mode"):
        await client.upload_fileobj(io.StringIO("text"), bucket, "a.txt")
    with pytest.raises(InvalidArgumentError, match="write"):
        await client.download_fileobj(bucket, "a.txt", object())
    with pytest.raises(NotFoundError, match=r"absent\.zip"):
        await client.upload_file(tmp_path / "absent.zip", bucket, "a.zip")
    with pytest.raises(InvalidArgumentError, match="list_objects_v2"):
        client.get_paginator("list_objects")
    assert client.can_paginate("list_objects_v2")
    assert not client.can_paginate("list_buckets")


async def test_paginator_pages_logical_names_with_original_sizes_on_request(
    client: AsyncDeltaGliderClient, bucket: str, files: list[Path]
) -> None:
    for path in files:
        await client.upload_file(path, bucket, f"app/{path.name}")
    pages = [
        page
        async for page in client.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, FetchMetadata=True, PaginationConfig={"PageSize": 1}
        )
    ]
    assert [len(page["Contents"]) for page in pages] == [1, 1, 1]
    listed = {item["Key"]: item["Size"] for page in pages for item in page["Contents"]}
    assert listed == {f"app/{path.name}": path.stat().st_size for path in files}
