"""Writers of one name: whatever the interleaving, the name ends in exactly one whole version.

One writer stores ``pub/latest.zip`` as a delta, another as a direct object (or both the
same form). Each writer, after its PUT, must deal with the other form of the name. A
deterministic replay delays each request of writer A in turn (through the fault proxy)
while writer B does its whole put in the gap; a randomized stress runs 16 writer
processes. Afterwards exactly one form exists, it reads back as one of the versions
written, verifies, and every delta's reference is the one it records.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import sys
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from deltaglider_async import AsyncDeltaGliderClient, ObjectKey
from deltaglider_async.core import metadata as codec
from deltaglider_async.testing import LocalS3
from deltaglider_async.testing_proxy import FaultProxy, ProxyRequest
from tests.archives import make_zip_versions

from .support import list_keys, read_object

NAME = "pub/latest.zip"
DELAY = 0.4
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def contents(tmp_path: Path) -> dict[str, bytes]:
    """A base release, two versions that delta well against it, two that do not."""
    versions = make_zip_versions(tmp_path / "v", 3, size=30_000, seed=21)
    rng = random.Random(21)
    return {
        "base": versions[0].read_bytes(),
        "delta-1": versions[1].read_bytes(),
        "delta-2": versions[2].read_bytes(),
        "direct-1": b"PK\x03\x04" + rng.randbytes(30_000),
        "direct-2": b"PK\x03\x04" + rng.randbytes(30_000),
    }


async def assert_one_whole_version(
    s3: LocalS3, bucket: str, admin: Any, candidates: set[bytes]
) -> bytes:
    """Exactly one form of NAME; it reads and verifies as one of ``candidates``."""
    keys = list_keys(admin, bucket, "pub/")
    forms = [k for k in (NAME, NAME + ".delta") if k in keys]
    assert len(forms) == 1, f"forms of {NAME}: {forms}"
    for key in keys:
        if key.endswith(".delta"):
            meta = codec.decode(_head(admin, bucket, key))
            assert meta.ref_key in keys, f"{key} points at a missing reference"
            assert meta.ref_key is not None
            ref = read_object(admin, bucket, meta.ref_key)
            assert hashlib.sha256(ref).hexdigest() == meta.ref_sha256, key
    async with AsyncDeltaGliderClient(s3.config()) as reader:
        response = await reader.get_object(Bucket=bucket, Key=NAME)
        async with response["Body"] as body:
            data = await body.read()
        assert await reader.verify(f"s3://{bucket}/{NAME}")
    assert data in candidates
    return data


def _head(admin: Any, bucket: str, key: str) -> Any:
    from deltaglider_async.ports.storage import ObjectHead

    head = admin.head_object(Bucket=bucket, Key=key)
    return ObjectHead(
        key=key,
        size=head["ContentLength"],
        etag=head["ETag"],
        last_modified=head["LastModified"],
        metadata=head["Metadata"],
    )


def forget_name(admin: Any, bucket: str) -> None:
    for key in (NAME, NAME + ".delta"):
        admin.delete_object(Bucket=bucket, Key=key)


@pytest.fixture
async def proxy(s3_server: LocalS3) -> AsyncIterator[FaultProxy]:
    with FaultProxy(s3_server.endpoint_url) as running:
        yield running


async def race(
    proxy: FaultProxy,
    k: int,
    a: AsyncDeltaGliderClient,
    b: AsyncDeltaGliderClient,
    bucket: str,
    data_a: bytes,
    data_b: bytes,
) -> int:
    """A puts through the proxy, which stalls its request ``k``; B puts in that gap.

    Returns the number of requests A made.
    """
    stalled = threading.Event()

    def delay(index: int, _: ProxyRequest) -> float:
        if index != k:
            return 0.0
        stalled.set()
        return DELAY

    proxy.reset_stats()
    proxy.configure(extra_delay=delay)

    async def writer_a() -> None:
        await a.put_object(Bucket=bucket, Key=NAME, Body=data_a)
        stalled.set()  # A needed fewer than k + 1 requests: B runs after it

    async def writer_b() -> None:
        await anyio.to_thread.run_sync(stalled.wait)
        await b.put_object(Bucket=bucket, Key=NAME, Body=data_b)

    async with anyio.create_task_group() as tg:
        tg.start_soon(writer_a)
        tg.start_soon(writer_b)
    return proxy.stats().total_requests


@pytest.mark.slow
@pytest.mark.parametrize(
    ("first", "second"),
    [("direct-1", "delta-1"), ("delta-1", "direct-1"), ("delta-1", "delta-2")],
)
async def test_every_interleaving_of_two_writers_leaves_one_version(
    s3_server: LocalS3,
    bucket: str,
    s3_admin: Any,
    proxy: FaultProxy,
    contents: dict[str, bytes],
    first: str,
    second: str,
) -> None:
    async with (
        AsyncDeltaGliderClient(proxy.wrap(s3_server).config()) as a,
        AsyncDeltaGliderClient(s3_server.config()) as b,
    ):
        await b.put_object(Bucket=bucket, Key="pub/base.zip", Body=contents["base"])
        k = 0
        while True:
            forget_name(s3_admin, bucket)
            requests = await race(proxy, k, a, b, bucket, contents[first], contents[second])
            await assert_one_whole_version(
                s3_server, bucket, s3_admin, {contents[first], contents[second]}
            )
            k += 1
            if k >= requests:
                break
    assert k >= 6  # A's put made at least that many requests: all were replayed


@pytest.mark.slow
async def test_sixteen_writer_processes_leave_one_version(
    s3_server: LocalS3, bucket: str, s3_admin: Any, contents: dict[str, bytes], tmp_path: Path
) -> None:
    files = []
    for name in ("delta-1", "delta-2", "direct-1", "direct-2"):
        path = tmp_path / f"{name}.zip"
        path.write_bytes(contents[name])
        files.append(path)
    async with AsyncDeltaGliderClient(s3_server.config()) as client:
        await client.put_object(Bucket=bucket, Key="pub/base.zip", Body=contents["base"])
    env = {**os.environ, **s3_server.env()}
    rng = random.Random(16)
    written: set[str] = set()

    async def writer(seed: int) -> None:
        order = [str(p) for p in rng.sample(files, len(files))]
        module = "tests.integration.same_name_writer"
        command = [sys.executable, "-m", module, bucket, NAME, "3", str(seed), *order]
        with anyio.fail_after(120):
            done = await anyio.run_process(command, cwd=ROOT, env=env, check=False)
        assert done.returncode == 0, done.stderr.decode()
        written.update(json.loads(done.stdout.decode().strip().splitlines()[-1])["written"])

    async with anyio.create_task_group() as tg:
        for seed in range(16):
            tg.start_soon(writer, seed)
    data = await assert_one_whole_version(
        s3_server, bucket, s3_admin, {contents[n] for n in contents if n != "base"}
    )
    assert hashlib.sha256(data).hexdigest() in written


async def test_a_name_reads_as_its_newest_version_after_sequential_writes(
    s3_server: LocalS3, bucket: str, s3_admin: Any, contents: dict[str, bytes]
) -> None:
    # Sequential writes always end with the last one, whatever form each takes.
    async with AsyncDeltaGliderClient(s3_server.config()) as client:
        await client.put_object(Bucket=bucket, Key="pub/base.zip", Body=contents["base"])
        for name in ("delta-1", "direct-1", "delta-2", "direct-2", "delta-1"):
            await client.put_object(Bucket=bucket, Key=NAME, Body=contents[name])
            assert (
                await assert_one_whole_version(s3_server, bucket, s3_admin, {contents[name]})
                == contents[name]
            )
        key = ObjectKey(bucket, NAME)
        assert (await client.service.resolve(key)).shadowed is None
