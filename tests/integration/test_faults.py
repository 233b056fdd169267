"""Bulk operations through a proxy that fails a share of the requests (503, 500, drops).

Retries (botocore's standard mode, async sleeps) absorb most faults; whatever still fails
is reported per item, and the bucket never holds anything partial: no open multipart
upload, no delta without its reference, every stored object reads back exactly.

The retry schedule is botocore's (exponential backoff with jitter, slept with
``asyncio.sleep``), scaled down tenfold here so the suite stays fast.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.retries.standard import ExponentialBackoff

from deltaglider_async import AsyncDeltaGliderClient, DeltaGliderError
from deltaglider_async.testing import LocalS3
from deltaglider_async.testing_proxy import FaultKind, FaultProxy, ProxyRequest
from tests.archives import make_zip_versions

from .support import MIB, list_keys, open_uploads

FAULT_RATE = 0.2


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore's backoff delays divided by ten (same growth and jitter)."""
    delay_amount = ExponentialBackoff.delay_amount

    def scaled(self: ExponentialBackoff, context: Any) -> float:
        return 0.1 * float(delay_amount(self, context))

    monkeypatch.setattr(ExponentialBackoff, "delay_amount", scaled)


@pytest.fixture
def proxy(s3_server: LocalS3) -> Iterator[FaultProxy]:
    """A proxy to ``s3_server``, faultless until a test configures it."""
    with FaultProxy(s3_server.endpoint_url, seed=20240) as running:
        yield running


@pytest.fixture
async def faulty(s3_server: LocalS3, proxy: FaultProxy) -> AsyncIterator[AsyncDeltaGliderClient]:
    """A client talking through the proxy (multipart from 5 MiB, so parts are retried too)."""
    config = proxy.wrap(s3_server).config(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB)
    async with AsyncDeltaGliderClient(config) as client:
        yield client


@pytest.fixture
async def clean(s3_server: LocalS3) -> AsyncIterator[AsyncDeltaGliderClient]:
    """A client talking to the server directly, to arrange and check."""
    async with AsyncDeltaGliderClient(s3_server.config()) as client:
        yield client


@pytest.fixture
def files(tmp_path: Path) -> list[tuple[Path, str]]:
    """12 small release zips over 3 deltaspaces, and one 11 MiB file sent in 3 parts."""
    items = []
    for n, space in enumerate(("one", "two", "three")):
        for path in make_zip_versions(tmp_path / space, 4, size=10_000, seed=n):
            items.append((path, f"{space}/{path.name}"))
    big = tmp_path / "big.bin"
    big.write_bytes(random.Random(5).randbytes(11 * MIB))
    items.append((big, "blobs/big.bin"))
    return items


async def assert_consistent(
    clean: AsyncDeltaGliderClient,
    s3_admin: Any,
    bucket: str,
    expected: dict[str, bytes],
    tmp_path: Path,
) -> set[str]:
    """No open upload, no orphan delta, every stored object reads back as ``expected``.

    ``expected`` maps logical keys to their bytes; returns the logical keys present.
    """
    assert open_uploads(s3_admin, bucket) == []
    keys = set(list_keys(s3_admin, bucket))
    logical = set()
    for key in keys:
        space, _, name = key.rpartition("/")
        if name == "reference.bin":
            continue
        if key.endswith(".delta"):
            assert f"{space}/reference.bin" in keys, f"{key} has no reference"
        logical.add(key.removesuffix(".delta"))
    assert logical <= set(expected), logical - set(expected)
    out = tmp_path / "check"
    ordered = sorted(logical)
    results = await clean.download_many(
        [(f"s3://{bucket}/{k}", f"f{n}") for n, k in enumerate(ordered)], out
    )
    assert all(r.ok for r in results), [r.error for r in results if not r.ok]
    for n, key in enumerate(ordered):
        assert (out / f"f{n}").read_bytes() == expected[key], key
    return logical


@pytest.mark.parametrize(
    "faults", [("503", "500", "drop"), ("drop-response",)], ids=["refused", "lost-answers"]
)
async def test_bulk_upload_under_faults(
    faulty: AsyncDeltaGliderClient,
    clean: AsyncDeltaGliderClient,
    proxy: FaultProxy,
    s3_admin: Any,
    bucket: str,
    files: list[tuple[Path, str]],
    tmp_path: Path,
    faults: tuple[FaultKind, ...],
) -> None:
    proxy.configure(fault_rate=FAULT_RATE, faults=faults)

    results = await faulty.upload_many(files, f"s3://{bucket}/up/", max_concurrency=8)

    proxy.configure(fault_rate=0.0)
    assert proxy.stats().total_faults > 0
    assert [r.source for r in results] == [str(p) for p, _ in files]
    for result in results:
        assert result.ok == (result.error is None)
        if not result.ok:
            assert isinstance(result.error, DeltaGliderError)
    expected = {f"up/{k}": p.read_bytes() for p, k in files}
    # A CreateMultipartUpload whose answer was lost leaves an upload nobody can tell from
    # another writer's: never aborted automatically, removed by `cleanup`.
    assert (await clean.cleanup(f"s3://{bucket}/", older_than=0)).ok
    present = await assert_consistent(clean, s3_admin, bucket, expected, tmp_path)
    # Every success is in the bucket; a failure may have been rolled back or not started.
    assert {f"up/{k}" for (_, k), r in zip(files, results, strict=True) if r.ok} <= present


async def test_migration_under_faults(
    faulty: AsyncDeltaGliderClient,
    clean: AsyncDeltaGliderClient,
    proxy: FaultProxy,
    s3_admin: Any,
    bucket: str,
    files: list[tuple[Path, str]],
    tmp_path: Path,
) -> None:
    # The source: deltaglider objects (written cleanly) and plain ones; no big file.
    files = files[:-1]
    uploaded = await clean.upload_many(files[:7], f"s3://{bucket}/src/")
    assert all(r.ok for r in uploaded)
    for path, relative in files[7:]:
        s3_admin.put_object(Bucket=bucket, Key=f"src/{relative}", Body=path.read_bytes())
    expected = {f"src/{k}": p.read_bytes() for p, k in files}
    expected |= {f"dst/{k}": p.read_bytes() for p, k in files}
    proxy.configure(fault_rate=FAULT_RATE)

    report = await faulty.migrate(f"s3://{bucket}/src/", f"s3://{bucket}/dst/")

    proxy.configure(fault_rate=0.0)
    assert proxy.stats().total_faults > 0
    assert len(report.migrated) + len(report.failed) == len(files)
    present = await assert_consistent(clean, s3_admin, bucket, expected, tmp_path)
    assert {r.destination.removeprefix(f"s3://{bucket}/") for r in report.migrated} <= present
    # A rerun without faults completes the job and copies nothing twice.
    rerun = await clean.migrate(f"s3://{bucket}/src/", f"s3://{bucket}/dst/")
    assert rerun.ok
    assert {r.source for r in rerun.migrated} <= {r.source for r in report.failed}
    assert len(rerun.migrated) + len(rerun.skipped) == len(files)
    await assert_consistent(clean, s3_admin, bucket, expected, tmp_path / "again")


async def test_lost_answers_to_multipart_calls_abort_no_other_writer(
    faulty: AsyncDeltaGliderClient,
    clean: AsyncDeltaGliderClient,
    proxy: FaultProxy,
    s3_admin: Any,
    bucket: str,
    files: list[tuple[Path, str]],
    tmp_path: Path,
) -> None:
    """The server starts (then completes) an upload, the answer is lost, botocore retries.

    The retried CompleteMultipartUpload (answered NoSuchUpload) must be seen as the
    success it was. The upload the lost CreateMultipartUpload started cannot be told
    from another writer's live upload of the same key: it is left open (never another
    writer's aborted) and ``cleanup`` removes it.
    """
    big, relative = files[-1]
    # Another writer's uploads of every key this put may use, in flight all along.
    others = {
        s3_admin.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
        for key in ("lost/reference.bin", f"lost/{relative}", f"lost/{relative}.delta")
    }
    dropped: list[str] = []

    def first_create_and_complete(request: ProxyRequest) -> bool:
        if request.method != "POST":
            return False
        kind = "complete" if "uploadId=" in request.target else "create"
        if kind in dropped:
            return False
        dropped.append(kind)
        return True

    proxy.configure(
        fault_rate=1.0, faults=("drop-response",), fault_filter=first_create_and_complete
    )

    results = await faulty.upload_many([(big, relative)], f"s3://{bucket}/lost/")

    proxy.configure(fault_rate=0.0)
    assert dropped == ["create", "complete"]
    assert results[0].ok, results[0].error
    still_open = {u["UploadId"] for u in open_uploads(s3_admin, bucket)}
    assert others < still_open, "another writer's upload was aborted"
    assert len(still_open - others) == 1, "the lost CreateMultipartUpload left no upload"
    report = await clean.cleanup(f"s3://{bucket}/lost/", older_than=0)
    assert report.ok
    assert len(report.aborted) == 4
    await assert_consistent(
        clean, s3_admin, bucket, {f"lost/{relative}": big.read_bytes()}, tmp_path
    )
