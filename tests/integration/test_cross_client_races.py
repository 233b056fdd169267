"""Writers in different clients (processes, machines) never undo each other's success.

One client talks through a proxy that holds one of its requests back, which replays the
interleaving with a second client exactly; the second client talks to the server
directly. What one client reports as stored must read back, from a fresh client.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from deltaglider_async import AsyncDeltaGliderClient
from deltaglider_async.testing import LocalS3
from deltaglider_async.testing_proxy import FaultProxy, ProxyRequest
from tests.archives import make_zip_versions

from .support import list_keys

HOLD = 2.0


@pytest.fixture
def proxy(s3_server: LocalS3) -> Iterator[FaultProxy]:
    with FaultProxy(s3_server.endpoint_url) as running:
        yield running


@pytest.fixture
async def slow(s3_server: LocalS3, proxy: FaultProxy) -> AsyncIterator[AsyncDeltaGliderClient]:
    async with AsyncDeltaGliderClient(proxy.wrap(s3_server).config()) as client:
        yield client


@pytest.fixture
async def fast(s3_server: LocalS3) -> AsyncIterator[AsyncDeltaGliderClient]:
    async with AsyncDeltaGliderClient(s3_server.config()) as client:
        yield client


@pytest.fixture
def zips(tmp_path: Path) -> list[bytes]:
    return [p.read_bytes() for p in make_zip_versions(tmp_path / "z", 3, size=30_000)]


def hold_once(when: str, method: str, path_end: str, held: threading.Event | None = None) -> Any:
    """An ``extra_delay`` holding back the first ``method`` request to a path ending in
    ``path_end``, once a PUT to a path ending in ``when`` was seen (``""``: at once);
    ``held`` is set when the request is held."""
    lock = threading.Lock()
    state = {"armed": when == "", "held": False}

    def delay(_: int, request: ProxyRequest) -> float:
        path = request.target.partition("?")[0]
        with lock:
            if not state["armed"] and path.endswith(when) and request.method == "PUT":
                state["armed"] = True
                return 0.0
            if (
                state["armed"]
                and not state["held"]
                and request.method == method
                and path.endswith(path_end)
            ):
                state["held"] = True
                if held is not None:
                    held.set()
                return HOLD
        return 0.0

    return delay


async def read_fresh(config: Any, bucket: str, key: str) -> bytes:
    async with AsyncDeltaGliderClient(config) as fresh:
        response = await fresh.get_object(Bucket=bucket, Key=key)
        async with response["Body"] as body:
            data: bytes = await body.read()
        assert await fresh.verify(f"s3://{bucket}/{key}")
        return data


async def test_a_put_racing_the_delete_of_the_last_delta_keeps_its_reference(
    slow: AsyncDeltaGliderClient,
    fast: AsyncDeltaGliderClient,
    proxy: FaultProxy,
    s3_server: LocalS3,
    s3_admin: Any,
    bucket: str,
    zips: list[bytes],
) -> None:
    await fast.put_object(Bucket=bucket, Key="r/x.zip", Body=zips[0])
    await fast.put_object(Bucket=bucket, Key="r/y.zip", Body=zips[1])
    await fast.delete_object(Bucket=bucket, Key="r/y.zip")
    assert sorted(list_keys(s3_admin, bucket)) == ["r/reference.bin", "r/x.zip.delta"]
    # The deleter of the last delta has listed the directory (no delta left) and is held
    # before its HEAD of the reference; meanwhile a writer stores a delta against it.
    proxy.configure(extra_delay=hold_once("", "HEAD", "/r/reference.bin"))

    async def delete_last() -> None:
        response = await slow.delete_object(Bucket=bucket, Key="r/x.zip")
        assert response["DeltaGliderInfo"]["ReferenceDeleted"] is False

    async with anyio.create_task_group() as tg:
        tg.start_soon(delete_last)
        await anyio.sleep(HOLD / 2)
        put = await fast.put_object(Bucket=bucket, Key="r/z.zip", Body=zips[2])
        assert put["DeltaGliderInfo"]["IsDelta"]

    assert await read_fresh(s3_server.config(), bucket, "r/z.zip") == zips[2]
    assert "r/reference.bin" in list_keys(s3_admin, bucket)
    # The temporary copy of the reference is gone too.
    assert list_keys(s3_admin, bucket, ".deltaglider/") == {}


async def test_dropping_an_unused_reference_leaves_nothing(
    fast: AsyncDeltaGliderClient, s3_admin: Any, bucket: str, zips: list[bytes]
) -> None:
    await fast.put_object(Bucket=bucket, Key="r/x.zip", Body=zips[0])
    response = await fast.delete_object(Bucket=bucket, Key="r/x.zip")
    assert response["DeltaGliderInfo"]["ReferenceDeleted"] is True
    assert list_keys(s3_admin, bucket) == {}


async def test_a_cancelled_put_never_deletes_another_writers_version(
    slow: AsyncDeltaGliderClient,
    fast: AsyncDeltaGliderClient,
    proxy: FaultProxy,
    s3_server: LocalS3,
    bucket: str,
    zips: list[bytes],
) -> None:
    await fast.put_object(Bucket=bucket, Key="r/base.zip", Body=zips[0])
    # The slow writer's delta PUT goes through; its confirmation (the HEAD of the
    # reference) is held, and it is cancelled while held, after the fast writer stored
    # its own version of the same name.
    held = threading.Event()
    proxy.configure(extra_delay=hold_once("/r/x.zip.delta", "HEAD", "/r/reference.bin", held))

    async with anyio.create_task_group() as tg:
        tg.start_soon(
            functools.partial(slow.put_object, Bucket=bucket, Key="r/x.zip", Body=zips[1])
        )
        await anyio.to_thread.run_sync(held.wait, 10.0)
        assert held.is_set()
        await fast.put_object(Bucket=bucket, Key="r/x.zip", Body=zips[2])
        tg.cancel_scope.cancel()  # the slow put, still waiting for its confirmation

    assert await read_fresh(s3_server.config(), bucket, "r/x.zip") == zips[2]
