"""The in-memory storage shipped in ``deltaglider_async.testing``: a client without a server.

Users unit-test code that uses the client with ``memory_client()``; it must behave as the
client does on S3: deltas, logical listings, verified reads, boto3-shaped errors.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from deltaglider_async import AsyncDeltaGliderClient, ObjectNotFoundError
from deltaglider_async.testing import InMemoryStorage, memory_client
from tests.archives import make_zip_versions


async def test_a_client_over_memory_stores_deltas_and_reads_them_back(tmp_path: Path) -> None:
    storage = InMemoryStorage()
    versions = [p.read_bytes() for p in make_zip_versions(tmp_path, 3, size=120_000)]
    client: AsyncDeltaGliderClient = memory_client(storage)
    async with client:
        await client.create_bucket(Bucket="mem")
        for n, data in enumerate(versions):
            await client.put_object(Bucket="mem", Key=f"rel/app-{n}.zip", Body=data)
        listed = await client.list_objects(Bucket="mem", Prefix="rel/")
        assert [o["Key"] for o in listed["Contents"]] == [f"rel/app-{n}.zip" for n in range(3)]
        for n, data in enumerate(versions):
            response = await client.get_object(Bucket="mem", Key=f"rel/app-{n}.zip")
            async with response["Body"] as body:
                assert await body.read() == data
        assert await client.verify("s3://mem/rel/app-2.zip") is True
        with pytest.raises(ObjectNotFoundError) as missing:
            await client.get_object(Bucket="mem", Key="rel/none.zip")
        assert missing.value.code == "NoSuchKey"
    stored = storage.keys("mem")
    assert "rel/reference.bin" in stored
    assert "rel/app-1.zip.delta" in stored
    # Deltas are small: the later versions cost a fraction of their size.
    delta = storage.data("mem", "rel/app-2.zip.delta")
    assert len(delta) < len(versions[2]) / 2
