"""A read racing a write sees one whole version, verified; never a false integrity error.

One task overwrites a name 40 times (alternating versions that are stored as deltas and
versions stored direct) while another downloads it, reads it with ``get_object`` and
verifies it 40 times. Every stored version is intact, so every read must return one of the
versions, and ``verify()`` must say True every time.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from deltaglider_async import AsyncDeltaGliderClient, ObjectKey
from deltaglider_async.testing import LocalS3
from tests.archives import make_zip_versions

ROUNDS = 40


@pytest.fixture
async def clients(s3_server: LocalS3) -> AsyncIterator[tuple[AsyncDeltaGliderClient, ...]]:
    async with (
        AsyncDeltaGliderClient(s3_server.config()) as writer,
        AsyncDeltaGliderClient(s3_server.config()) as reader,
    ):
        yield writer, reader


@pytest.mark.slow
@pytest.mark.parametrize("form", ["delta", "direct", "mixed"])
async def test_reads_during_overwrites_return_whole_versions(
    clients: tuple[AsyncDeltaGliderClient, ...], bucket: str, tmp_path: Path, form: str
) -> None:
    writer, reader = clients
    zips = [p.read_bytes() for p in make_zip_versions(tmp_path / "z", 4, size=30_000)]
    rng = random.Random(7)
    unrelated = [b"PK\x03\x04" + rng.randbytes(30_000) for _ in range(2)]
    versions = {"delta": zips[1:], "direct": unrelated, "mixed": zips[1:] + unrelated}[form]
    await writer.put_object(Bucket=bucket, Key="race/base.zip", Body=zips[0])
    await writer.put_object(Bucket=bucket, Key="race/x.zip", Body=versions[0])
    problems: list[str] = []

    async def overwrite() -> None:
        for n in range(ROUNDS):
            await writer.put_object(
                Bucket=bucket, Key="race/x.zip", Body=versions[n % len(versions)]
            )

    async def read() -> None:
        for n in range(ROUNDS):
            out = tmp_path / f"out-{n}.zip"
            await reader.download(f"s3://{bucket}/race/x.zip", out)
            if out.read_bytes() not in versions:
                problems.append(f"download {n}: not a version written")
            response = await reader.get_object(Bucket=bucket, Key="race/x.zip")
            async with response["Body"] as body:
                data = await body.read()
            if data not in versions:
                problems.append(f"get_object {n}: not a version written")
            if response["ContentLength"] != len(data):
                problems.append(f"get_object {n}: ContentLength of another version")
            result = await reader.service.verify(ObjectKey(bucket, "race/x.zip"))
            if not result.valid:
                problems.append(f"verify {n}: False for intact data: {result.details}")

    async with anyio.create_task_group() as tg:
        tg.start_soon(overwrite)
        tg.start_soon(read)
    assert problems == []
