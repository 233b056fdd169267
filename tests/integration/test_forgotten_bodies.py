"""Bodies kept open without being closed never freeze the client.

Each ``get_object`` body of a directly stored object holds a pooled connection until it
is read to the end or closed. Past half the pool, the least recently read idle bodies
give their connection back (they are *parked*) and resume with a ranged ``If-Match``
GET on their next read: later calls answer at once, and every kept body still yields
exactly its own bytes, or ObjectChangedError when its version was replaced meanwhile.
"""

from __future__ import annotations

import gc
import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from deltaglider_async import AsyncDeltaGliderClient, ObjectChangedError
from deltaglider_async._scratch import OWNER_FILE
from deltaglider_async.testing import LocalS3
from tests.archives import make_zip_versions

# Large enough that a body is not already complete in the socket buffers when returned.
SIZE = 1024 * 1024
KEPT = 40
# A hang guard only: without parking the 33rd call waits forever.
GUARD_SECONDS = 120


def payload(index: int) -> bytes:
    seed = hashlib.sha256(str(index).encode()).digest()
    return (seed * (SIZE // len(seed) + 1))[:SIZE]


@pytest.fixture
async def client(s3_server: LocalS3) -> AsyncIterator[AsyncDeltaGliderClient]:
    async with AsyncDeltaGliderClient(s3_server.config()) as opened:
        yield opened


async def test_forty_unclosed_bodies_leave_the_client_responsive(
    client: AsyncDeltaGliderClient, bucket: str, s3_admin: Any
) -> None:
    for index in range(KEPT):
        s3_admin.put_object(Bucket=bucket, Key=f"plain/{index}.bin", Body=payload(index))
    kept = []
    with anyio.fail_after(GUARD_SECONDS):
        for index in range(KEPT):
            response = await client.get_object(Bucket=bucket, Key=f"plain/{index}.bin")
            assert await response["Body"].read(10) == payload(index)[:10]
            kept.append(response["Body"])
        head = await client.head_object(Bucket=bucket, Key="plain/0.bin")
        assert head["ContentLength"] == SIZE
        listed = await client.list_objects(Bucket=bucket, Prefix="plain/")
        assert listed["KeyCount"] == KEPT
        # Every kept body still gives the rest of its own object, in order.
        for index, body in enumerate(kept):
            assert await body.read() == payload(index)[10:]
            await body.close()


async def test_a_parked_body_never_mixes_in_a_newer_version(
    client: AsyncDeltaGliderClient, bucket: str, s3_admin: Any
) -> None:
    for index in range(KEPT):
        s3_admin.put_object(Bucket=bucket, Key=f"plain/{index}.bin", Body=payload(index))
    kept = []
    with anyio.fail_after(GUARD_SECONDS):
        for index in range(KEPT):
            response = await client.get_object(Bucket=bucket, Key=f"plain/{index}.bin")
            await response["Body"].read(10)
            kept.append(response["Body"])
        # The oldest bodies were parked to make room; replace the first object now.
        s3_admin.put_object(Bucket=bucket, Key="plain/0.bin", Body=payload(1000))
        with pytest.raises(ObjectChangedError, match="replaced while being read"):
            await kept[0].read()
        for index, body in enumerate(kept[1:], start=1):
            assert await body.read() == payload(index)[10:]
        for body in kept:
            await body.close()


@pytest.mark.parametrize("concurrency", [None, 2], ids=["default", "max_concurrency=2"])
async def test_many_gets_started_at_once_all_answer(
    s3_server: LocalS3, bucket: str, s3_admin: Any, concurrency: int | None
) -> None:
    """More GETs at once than the pool has connections: the bodies that answered first
    are parked while idle, so the others get a connection instead of waiting forever."""
    count = 60
    for index in range(count):
        s3_admin.put_object(Bucket=bucket, Key=f"burst/{index}.bin", Body=payload(index))
    config = s3_server.config(max_concurrency=concurrency) if concurrency else s3_server.config()
    async with AsyncDeltaGliderClient(config) as client:
        responses: dict[int, Any] = {}

        async def get(index: int) -> None:
            responses[index] = await client.get_object(Bucket=bucket, Key=f"burst/{index}.bin")

        with anyio.fail_after(GUARD_SECONDS):
            async with anyio.create_task_group() as tg:
                for index in range(count):
                    tg.start_soon(get, index)
            for index in range(count):
                body = responses[index]["Body"]
                assert await body.read() == payload(index)
                await body.close()


async def test_forgotten_delta_bodies_hold_no_descriptor_and_leave_no_file(
    s3_server: LocalS3, bucket: str, tmp_path: Path
) -> None:
    """A delta's body is a verified local file: kept unclosed it holds no file descriptor,
    and dropped unclosed its file is removed when it is collected."""
    versions = make_zip_versions(tmp_path / "src", 2, size=100_000)
    async with AsyncDeltaGliderClient(s3_server.config()) as client:
        for path in versions:
            await client.upload(path, f"s3://{bucket}/rel/")
        key = f"rel/{versions[1].name}"
        descriptors = len(os.listdir("/proc/self/fd"))
        kept = []
        for _ in range(100):
            response = await client.get_object(Bucket=bucket, Key=key)
            await response["Body"].read(10)
            kept.append(response["Body"])
        assert len(os.listdir("/proc/self/fd")) < descriptors + 20
        assert await kept[-1].read() == versions[1].read_bytes()[10:]
        work = client._work.created
        assert work is not None
        staged = [p for p in work.iterdir() if p.name != OWNER_FILE]
        assert len(staged) == 100
        kept.clear()
        del response
        gc.collect()
        assert [p for p in work.iterdir() if p.name != OWNER_FILE] == []
