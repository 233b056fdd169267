"""Every key S3 keeps apart stays apart; every key plain boto3 can store, deltaglider can store.

The same keys go into two buckets of one server: through plain boto3 into one, through
deltaglider into the other. Listing, reading and deleting must give what plain boto3 gives
(whatever the server does with odd keys, it must do the same to both), and nothing
deltaglider writes may exceed S3's limits (1024-byte keys, 2 KB of metadata).
"""

from __future__ import annotations

import asyncio
import hashlib
import unicodedata
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deltaglider_async import AsyncDeltaGliderClient, DeltaGliderError
from deltaglider_async.core.metadata import MAX_METADATA_BYTES, metadata_size
from deltaglider_async.testing import LocalS3
from tests.archives import archive_bytes, source_tree_files

NFC = unicodedata.normalize("NFC", "é")
NFD = unicodedata.normalize("NFD", "é")
TOKENS = [
    "a", "/", "//", ".", "..", " ", "+", "%", "%41", "#", "?", "&", "~", ";", "\x01", "\x7f",
    "\t", NFC, NFD, "日本", "x.zip", "-", "=",
]  # fmt: skip
SUFFIXES = ["", ".zip", ".txt", ".tar.gz"]

logical_keys = st.builds(
    lambda parts, suffix: "".join(parts) + suffix,
    st.lists(st.sampled_from(TOKENS), min_size=1, max_size=5),
    st.sampled_from(SUFFIXES),
).filter(lambda k: not k.endswith((".delta", "/")) and k.rpartition("/")[2] != "reference.bin")


def body_for(key: str) -> bytes:
    """Content that depends on the key; archives for archive names (so deltas happen)."""
    if key.endswith((".zip", ".tar.gz")):
        version = int(hashlib.sha256(key.encode()).hexdigest()[:6], 16) % 3
        return archive_bytes(source_tree_files(7, version, files=8, file_size=1500), "zip")
    return f"content of {key!r}".encode()


class Twin:
    """Two buckets on one server: one written by plain boto3, one by deltaglider."""

    def __init__(self, s3: LocalS3) -> None:
        self.s3 = s3
        self.admin = s3.boto3_client()
        self.plain = f"p-{uuid.uuid4().hex[:12]}"
        self.dg = f"d-{uuid.uuid4().hex[:12]}"
        for name in (self.plain, self.dg):
            self.admin.create_bucket(Bucket=name)

    def put_plain(self, key: str) -> str | None:
        try:
            self.admin.put_object(Bucket=self.plain, Key=key, Body=body_for(key))
        except ClientError as exc:
            return str(exc.response.get("Error", {}).get("Code"))
        return None

    def plain_listing(self) -> list[str]:
        keys: list[str] = []
        for page in self.admin.get_paginator("list_objects_v2").paginate(Bucket=self.plain):
            keys.extend(item["Key"] for item in page.get("Contents", []))
        return keys

    def plain_read(self, key: str) -> bytes:
        data: bytes = self.admin.get_object(Bucket=self.plain, Key=key)["Body"].read()
        return data

    def stored_metadata_sizes(self) -> dict[str, int]:
        sizes = {}
        for page in self.admin.get_paginator("list_objects_v2").paginate(Bucket=self.dg):
            for item in page.get("Contents", []):
                head = self.admin.head_object(Bucket=self.dg, Key=item["Key"])
                sizes[item["Key"]] = metadata_size(head["Metadata"])
        return sizes

    def close(self) -> None:
        for bucket in (self.plain, self.dg):
            for page in self.admin.get_paginator("list_objects_v2").paginate(Bucket=bucket):
                for item in page.get("Contents", []):
                    self.admin.delete_object(Bucket=bucket, Key=item["Key"])
            self.admin.delete_bucket(Bucket=bucket)
        self.admin.close()


async def check_same_as_boto3(s3: LocalS3, keys: list[str]) -> None:
    twin = Twin(s3)
    try:
        refused = {key: twin.put_plain(key) for key in keys}
        stored = [k for k in keys if refused[k] is None]
        async with AsyncDeltaGliderClient(s3.config()) as client:
            for key in keys:
                problem: DeltaGliderError | None = None
                try:
                    await client.put_object(Bucket=twin.dg, Key=key, Body=body_for(key))
                except DeltaGliderError as exc:
                    problem = exc
                assert (problem is None) == (refused[key] is None), (key, problem, refused[key])
            listed: list[str] = []
            token: dict[str, Any] = {}
            while True:
                page = await client.list_objects(Bucket=twin.dg, MaxKeys=3, **token)
                listed.extend(o["Key"] for o in page["Contents"])
                if not page["IsTruncated"]:
                    break
                token = {"ContinuationToken": page["NextContinuationToken"]}
            assert listed == twin.plain_listing()
            for key in listed:
                response = await client.get_object(Bucket=twin.dg, Key=key)
                async with response["Body"] as body:
                    assert await body.read() == twin.plain_read(key), key
            for key, size in twin.stored_metadata_sizes().items():
                assert size <= MAX_METADATA_BYTES, key
            for key in stored:
                await client.delete_object(Bucket=twin.dg, Key=key)
            assert (await client.list_objects(Bucket=twin.dg))["KeyCount"] == 0
            assert twin.stored_metadata_sizes() == {}  # no reference left behind either
    finally:
        twin.close()


@pytest.mark.slow
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(keys=st.lists(logical_keys, min_size=1, max_size=8, unique=True))
def test_keys_behave_as_with_plain_boto3(s3_server: LocalS3, keys: list[str]) -> None:
    asyncio.run(check_same_as_boto3(s3_server, keys))


@pytest.mark.parametrize(
    "keys",
    [
        pytest.param(["a.txt", "/a.txt", "//a.txt"], id="leading-slashes"),
        pytest.param(["/dir/a.zip", "dir/a.zip", "dir//a.zip"], id="slashes-in-archives"),
        pytest.param(["dir/ctl\x01char.zip", "dir/tab\tname.zip", "cr\rkey.txt"], id="control"),
        pytest.param([f"{NFC}.zip", f"{NFD}.zip"], id="nfc-nfd"),
        pytest.param([" lead.zip", "trail.zip ", "d /x.zip", "a%01.zip"], id="spaces-percent"),
        pytest.param(["k" * 1020 + ".zip", "d" * 1000 + "/v.zip"], id="near-1024-bytes"),
        pytest.param(["é" * 300 + "/" + "ü" * 100 + ".zip"], id="long-non-ascii"),
    ],
)
async def test_known_keys_behave_as_with_plain_boto3(s3_server: LocalS3, keys: list[str]) -> None:
    await check_same_as_boto3(s3_server, keys)


async def test_batch_delete_removes_keys_xml_cannot_carry(
    s3_server: LocalS3, bucket: str, s3_admin: Any
) -> None:
    keys = ["dir/ctl\x01char.zip", "dir/plain.zip", "cr\rkey.txt"]
    async with AsyncDeltaGliderClient(s3_server.config()) as client:
        for key in keys:
            await client.put_object(Bucket=bucket, Key=key, Body=body_for(key))
        response = await client.delete_objects(
            Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys]}
        )
        assert response["Errors"] == []
        assert sorted(d["Key"] for d in response["Deleted"]) == sorted(keys)
        assert (await client.list_objects(Bucket=bucket))["KeyCount"] == 0
    assert s3_admin.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0
