"""Cancelling half-way (SPEC §3.6, §8): no xdelta3 left, no temp file, no open multipart upload.

Each operation is cancelled only once it is observably under way (an xdelta3 child of
this process exists, a multipart upload is open, a partial download exists), and the
test fails if the operation finished before it could be cancelled.
"""

from __future__ import annotations

import random
import re
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from deltaglider_async._factory import ServiceBundle
from deltaglider_async._models import DeltaSpace

from .conftest import BundleFactory
from .support import MIB, child_processes, files_under, key_of, list_keys, open_uploads

BIG = 24 * MIB
SENTINEL = b"the previous download\n"
START_TIMEOUT = 60.0


@pytest.fixture
def temp_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private system temp dir: every work dir and cache made during the test lands here."""
    root = tmp_path / "system-tmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


def big_versions(directory: Path, name: str) -> tuple[Path, Path]:
    """Two 24 MiB files, the second the first with 16 bytes changed every MiB."""
    rng = random.Random(61)
    data = bytearray(rng.randbytes(BIG))
    first = directory / f"{name}-1.zip"
    first.write_bytes(data)
    for offset in range(0, BIG - 16, MIB):
        data[offset : offset + 16] = rng.randbytes(16)
    second = directory / f"{name}-2.zip"
    second.write_bytes(data)
    return first, second


def leftover_temp_files(temp_root: Path, *bundles: ServiceBundle) -> list[Path]:
    """Files under the temp root other than complete entries of the bundles' caches."""
    caches = {b.cache.directory for b in bundles} - {None}
    return [
        p
        for p in files_under(temp_root)
        if not (p.parent in caches and re.fullmatch(r"[0-9a-f]{64}", p.name))
    ]


async def cancel_once_started(
    operation: Callable[[], Awaitable[object]],
    started: Callable[[], Awaitable[bool]],
) -> None:
    """Run ``operation`` and cancel it as soon as ``started()`` is true.

    Fails when the operation completes (or a minute passes) before that.
    """
    finished = False
    scope = anyio.CancelScope()

    async def run() -> None:
        nonlocal finished
        with scope:
            await operation()
            finished = True

    async with anyio.create_task_group() as tg:
        tg.start_soon(run)
        with anyio.fail_after(START_TIMEOUT):
            # Polling: what is watched (/proc, the server) cannot signal an event.
            while not finished and not await started():  # noqa: ASYNC110
                await anyio.sleep(0.002)
        scope.cancel()
    assert not finished, "the operation completed before it could be cancelled"
    assert scope.cancelled_caught


async def xdelta3_running() -> bool:
    """True while an xdelta3 child of this process exists."""
    return bool(child_processes("xdelta3"))


async def test_cancelled_delta_put_kills_xdelta3_and_cleans_up(
    make_bundle: BundleFactory, bucket: str, s3_admin: Any, tmp_path: Path, temp_root: Path
) -> None:
    first, second = big_versions(tmp_path, "big")
    bundle = make_bundle()
    space = DeltaSpace(bucket, "big")
    assert (await bundle.service.put(first, space)).action == "create_reference"
    before = list_keys(s3_admin, bucket)

    await cancel_once_started(lambda: bundle.service.put(second, space), xdelta3_running)

    assert child_processes("xdelta3") == []
    assert leftover_temp_files(temp_root, bundle) == []
    assert list_keys(s3_admin, bucket) == before
    assert open_uploads(s3_admin, bucket) == []
    # The service still works after the cancellation.
    assert (await bundle.service.put(second, space)).action == "create_delta"


async def test_cancelled_multipart_put_aborts_the_upload(
    make_bundle: BundleFactory, bucket: str, s3_admin: Any, tmp_path: Path, temp_root: Path
) -> None:
    source = tmp_path / "big.bin"
    source.write_bytes(random.Random(62).randbytes(BIG))
    bundle = make_bundle(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB)
    space = DeltaSpace(bucket, "direct")

    async def upload_open() -> bool:
        return bool(await anyio.to_thread.run_sync(open_uploads, s3_admin, bucket))

    await cancel_once_started(lambda: bundle.service.put(source, space), upload_open)

    assert open_uploads(s3_admin, bucket) == []
    assert list_keys(s3_admin, bucket) == {}
    assert leftover_temp_files(temp_root, bundle) == []


@pytest.mark.parametrize("stored", ["delta", "direct"])
async def test_cancelled_get_leaves_destination_untouched(
    make_bundle: BundleFactory, bucket: str, tmp_path: Path, temp_root: Path, stored: str
) -> None:
    first, second = big_versions(tmp_path, "big")
    space = DeltaSpace(bucket, "big")
    writer = make_bundle()
    await writer.service.put(first, space)
    expected = "create_delta" if stored == "delta" else "upload_direct"
    assert (
        await writer.service.put(second, space, allow_delta=stored == "delta")
    ).action == expected
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    dest = downloads / second.name
    dest.write_bytes(SENTINEL)
    reader = make_bundle()

    async def under_way() -> bool:
        # Either a partial download appeared beside the destination, or xdelta3 runs.
        partial = any(p.name != dest.name for p in downloads.iterdir())
        return partial or bool(child_processes("xdelta3"))

    await cancel_once_started(
        lambda: reader.service.get(key_of(space, second.name), dest), under_way
    )

    assert child_processes("xdelta3") == []
    assert [p.name for p in downloads.iterdir()] == [dest.name]
    assert dest.read_bytes() == SENTINEL
    assert leftover_temp_files(temp_root, reader, writer) == []
