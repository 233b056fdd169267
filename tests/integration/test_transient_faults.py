"""Transient faults botocore's own retry does not see, and what S3-compatible stores need.

Through the fault proxy, on both servers: bodies cut mid-transfer are resumed (and a
version replaced meanwhile is never stitched to the old one), 429 throttling is retried,
listings whose truncated pages lack a continuation token go on after the last key,
DeleteObjects keys failed with a per-key SlowDown are sent again, and the requests carry
what every store accepts (Content-MD5 on DeleteObjects, no ``Expect: 100-continue``).
"""

from __future__ import annotations

import random
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.retries.standard import ExponentialBackoff

from deltaglider_async import (
    AsyncDeltaGliderClient,
    ObjectChangedError,
    StorageError,
)
from deltaglider_async.adapters import s3_compat
from deltaglider_async.testing import LocalS3
from deltaglider_async.testing_proxy import FaultProxy, ProxyRequest
from tests.archives import make_zip_versions

from .support import MIB, list_keys


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retry delays a hundred times shorter (same growth), so the suite stays fast."""
    delay_amount = ExponentialBackoff.delay_amount

    def scaled(self: ExponentialBackoff, context: Any) -> float:
        return 0.01 * float(delay_amount(self, context))

    monkeypatch.setattr(ExponentialBackoff, "delay_amount", scaled)
    monkeypatch.setattr(s3_compat, "backoff_delay", lambda attempt: 0.01 * attempt)


@pytest.fixture
def proxy(s3_server: LocalS3) -> Iterator[FaultProxy]:
    with FaultProxy(s3_server.endpoint_url, seed=7) as running:
        yield running


@pytest.fixture
async def faulty(s3_server: LocalS3, proxy: FaultProxy) -> AsyncIterator[AsyncDeltaGliderClient]:
    async with AsyncDeltaGliderClient(proxy.wrap(s3_server).config(max_attempts=3)) as client:
        yield client


@pytest.fixture
async def clean(s3_server: LocalS3) -> AsyncIterator[AsyncDeltaGliderClient]:
    async with AsyncDeltaGliderClient(s3_server.config()) as client:
        yield client


def once_per(select: Callable[[ProxyRequest], str | None]) -> Callable[[ProxyRequest], bool]:
    """A fault filter faulting the first request of each name ``select`` gives."""
    seen: set[str] = set()
    lock = threading.Lock()

    def chosen(request: ProxyRequest) -> bool:
        name = select(request)
        with lock:
            if name is None or name in seen:
                return False
            seen.add(name)
            return True

    return chosen


def whole_gets(request: ProxyRequest) -> str | None:
    """The target of a GET of a whole object (not a resuming ranged GET, not a LIST)."""
    if request.method != "GET" or "range" in request.headers or "?" in request.target:
        return None
    return request.target


# --------------------------------------------------------------------------- cut bodies


async def test_bodies_cut_mid_transfer_are_resumed(
    faulty: AsyncDeltaGliderClient,
    clean: AsyncDeltaGliderClient,
    proxy: FaultProxy,
    bucket: str,
    tmp_path: Path,
) -> None:
    zips = [p.read_bytes() for p in make_zip_versions(tmp_path / "z", 2, size=300_000)]
    direct = random.Random(3).randbytes(3 * MIB)
    await clean.put_object(Bucket=bucket, Key="rel/v1.zip", Body=zips[0])
    await clean.put_object(Bucket=bucket, Key="rel/v2.zip", Body=zips[1])
    await clean.put_object(Bucket=bucket, Key="blobs/data.bin", Body=direct)
    proxy.configure(fault_rate=1.0, faults=("truncate",), fault_filter=once_per(whole_gets))

    # A delta: its own GET and its reference's are both cut once.
    await faulty.download(f"s3://{bucket}/rel/v2.zip", tmp_path / "v2.zip")
    assert (tmp_path / "v2.zip").read_bytes() == zips[1]
    # A direct object, streamed.
    response = await faulty.get_object(Bucket=bucket, Key="blobs/data.bin")
    async with response["Body"] as body:
        assert await body.read() == direct
    assert proxy.stats().faults["truncate"] == 3
    # verify() reads the bucket again (never a cached reference): cut once more each.
    proxy.configure(fault_filter=once_per(lambda r: None if whole_gets(r) is None else "v"))
    assert await faulty.verify(f"s3://{bucket}/rel/v2.zip")
    assert proxy.stats().faults["truncate"] == 4


async def test_a_cut_body_is_never_completed_from_another_version(
    faulty: AsyncDeltaGliderClient,
    proxy: FaultProxy,
    s3_admin: Any,
    bucket: str,
    tmp_path: Path,
) -> None:
    old, new = random.Random(1).randbytes(2 * MIB), random.Random(2).randbytes(2 * MIB)
    s3_admin.put_object(Bucket=bucket, Key="x.bin", Body=old)
    replaced: list[str] = []

    def cut_then_replace(request: ProxyRequest) -> bool:
        if request.method != "GET" or not request.target.endswith("/x.bin"):
            return False
        if "range" not in request.headers:
            return not replaced  # cut the first whole read
        if not replaced:
            # Before the resuming GET reaches the server, another writer replaces x.bin.
            s3_admin.put_object(Bucket=bucket, Key="x.bin", Body=new)
            replaced.append("x.bin")
        return False

    proxy.configure(fault_rate=1.0, faults=("truncate",), fault_filter=cut_then_replace)
    response = await faulty.get_object(Bucket=bucket, Key="x.bin")
    with pytest.raises(ObjectChangedError, match="replaced while being read"):
        async with response["Body"] as body:
            await body.read()
    assert replaced == ["x.bin"]

    # download() starts over and returns the new version whole.
    s3_admin.put_object(Bucket=bucket, Key="x.bin", Body=old)
    replaced.clear()
    await faulty.download(f"s3://{bucket}/x.bin", tmp_path / "x.bin")
    assert (tmp_path / "x.bin").read_bytes() == new


# --------------------------------------------------------------------------- throttling


async def test_429_throttling_is_retried(
    faulty: AsyncDeltaGliderClient, proxy: FaultProxy, bucket: str, tmp_path: Path
) -> None:
    zips = [p.read_bytes() for p in make_zip_versions(tmp_path / "z", 2, size=20_000)]
    throttled: list[str] = []

    def first_two_puts(request: ProxyRequest) -> bool:
        if request.method == "PUT" and len(throttled) < 2:
            throttled.append(request.target)
            return True
        return False

    proxy.configure(fault_rate=1.0, faults=("429",), fault_filter=first_two_puts)
    for n, data in enumerate(zips):
        await faulty.put_object(Bucket=bucket, Key=f"rel/v{n}.zip", Body=data)
    assert len(throttled) == 2
    proxy.configure(fault_rate=0.0)
    for n, data in enumerate(zips):
        got = await faulty.get_object(Bucket=bucket, Key=f"rel/v{n}.zip")
        async with got["Body"] as body:
            assert await body.read() == data


async def test_429_without_end_fails_after_the_configured_attempts(
    faulty: AsyncDeltaGliderClient, proxy: FaultProxy, s3_admin: Any, bucket: str
) -> None:
    proxy.configure(fault_rate=1.0, faults=("429",), fault_filter=lambda r: r.method == "PUT")
    with pytest.raises(StorageError) as raised:
        await faulty.put_object(Bucket=bucket, Key="a.txt", Body=b"data")
    assert raised.value.response["Error"]["Code"] == "TooManyRequests"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    # max_attempts=3: the first try and three retries.
    assert proxy.stats().requests["PUT"] == 4
    assert list_keys(s3_admin, bucket) == {}


# --------------------------------------------------------------------------- listings


@pytest.mark.parametrize("delimiter", [None, "/"])
async def test_truncated_pages_without_a_token_continue_after_the_last_key(
    faulty: AsyncDeltaGliderClient,
    clean: AsyncDeltaGliderClient,
    proxy: FaultProxy,
    bucket: str,
    delimiter: str | None,
) -> None:
    # More than a server page holds (a LIST of MaxKeys=2 asks the server for 11).
    keys = [f"{d}/{n}.txt" for d in "abc" for n in range(8)]
    keys += [f"top{n}.txt" for n in range(10)] + ["e/f/g.txt"]
    for key in keys:
        await clean.put_object(Bucket=bucket, Key=key, Body=key.encode())
    expected = await clean.list_objects(Bucket=bucket, Delimiter=delimiter, MaxKeys=1000)
    proxy.configure(fault_rate=1.0, faults=("no-token",))
    seen: list[str] = []
    token = None
    while True:
        params: dict[str, Any] = {"Bucket": bucket, "MaxKeys": 2}
        if delimiter:
            params["Delimiter"] = delimiter
        if token:
            params["ContinuationToken"] = token
        page = await faulty.list_objects(**params)
        seen += [o["Key"] for o in page.get("Contents", [])]
        seen += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
        if not page["IsTruncated"]:
            break
        token = page["NextContinuationToken"]
    want = [o["Key"] for o in expected.get("Contents", [])]
    want += [p["Prefix"] for p in expected.get("CommonPrefixes", [])]
    assert sorted(seen) == sorted(want)
    assert len(seen) == len(set(seen))
    assert proxy.stats().faults["no-token"] > 0


# --------------------------------------------------------------------------- deletes


async def test_keys_a_delete_failed_with_slowdown_are_sent_again(
    faulty: AsyncDeltaGliderClient,
    clean: AsyncDeltaGliderClient,
    proxy: FaultProxy,
    s3_admin: Any,
    bucket: str,
) -> None:
    for n in range(3):
        await clean.put_object(Bucket=bucket, Key=f"k{n}.txt", Body=b"x")
    proxy.configure(
        fault_rate=1.0,
        faults=("slowdown-keys",),
        fault_filter=once_per(lambda r: "delete" if r.method == "POST" else None),
    )
    response = await faulty.delete_objects(
        Bucket=bucket, Delete={"Objects": [{"Key": f"k{n}.txt"} for n in range(3)]}
    )
    assert response.get("Errors", []) == []
    assert proxy.stats().faults["slowdown-keys"] == 1
    assert list_keys(s3_admin, bucket) == {}


async def test_keys_that_stay_throttled_are_reported_not_lost(
    faulty: AsyncDeltaGliderClient,
    clean: AsyncDeltaGliderClient,
    proxy: FaultProxy,
    s3_admin: Any,
    bucket: str,
) -> None:
    for n in range(2):
        await clean.put_object(Bucket=bucket, Key=f"k{n}.txt", Body=b"x")
    proxy.configure(
        fault_rate=1.0, faults=("slowdown-keys",), fault_filter=lambda r: r.method == "POST"
    )
    response = await faulty.delete_objects(
        Bucket=bucket, Delete={"Objects": [{"Key": "k0.txt"}, {"Key": "k1.txt"}]}
    )
    assert sorted(e["Key"] for e in response["Errors"]) == ["k0.txt", "k1.txt"]
    assert {e["Code"] for e in response["Errors"]} == {"SlowDown"}
    assert sorted(list_keys(s3_admin, bucket)) == ["k0.txt", "k1.txt"]
    # The first request and max_attempts=3 resends.
    assert proxy.stats().requests["POST"] == 4


# --------------------------------------------------------------------------- requests


async def test_requests_carry_what_every_store_accepts(
    faulty: AsyncDeltaGliderClient, proxy: FaultProxy, bucket: str, tmp_path: Path
) -> None:
    seen: list[ProxyRequest] = []
    lock = threading.Lock()

    def spy(request: ProxyRequest) -> bool:
        with lock:
            seen.append(request)
        return False

    proxy.configure(fault_rate=1.0, faults=("500",), fault_filter=spy)  # never faults
    zips = [p.read_bytes() for p in make_zip_versions(tmp_path / "z", 2, size=20_000)]
    for n, data in enumerate(zips):
        await faulty.put_object(Bucket=bucket, Key=f"rel/v{n}.zip", Body=data)
    await faulty.delete_objects(
        Bucket=bucket, Delete={"Objects": [{"Key": "rel/v0.zip"}, {"Key": "rel/v1.zip"}]}
    )
    await faulty.put_bucket_acl(Bucket=bucket, ACL="private")

    puts = [r for r in seen if r.method == "PUT" and "?" not in r.target]
    assert puts
    assert all("expect" not in r.headers for r in puts)
    checked = [r for r in seen if r.method == "POST" or "acl" in r.target.partition("?")[2]]
    assert checked, [r.target for r in seen]
    for request in checked:
        assert "content-md5" in request.headers, request.target
        assert not any(h.startswith("x-amz-checksum-") for h in request.headers), request
        assert "x-amz-sdk-checksum-algorithm" not in request.headers
