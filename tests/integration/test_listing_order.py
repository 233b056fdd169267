"""Logical listings in the server's order, every entry exactly once, against a model.

The bucket is filled with stored keys directly (deltas, direct objects, references,
``.deltaglider/`` files, both forms of one name); ``list_objects`` must return what a
plain listing of the *logical* names would: in the server's order (S3's UTF-8 byte
order on moto; SeaweedFS lists a directory's contents right after its name), one entry per
name, common prefixes only where something visible lives, and the same entries whatever
the page size and whether pages are chained by ``ContinuationToken`` or ``StartAfter``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deltaglider_async import AsyncDeltaGliderClient
from deltaglider_async.testing import LocalS3

TOKENS = ["a", "ab", "a.", ".", "-", " ", "é", "z", "/", "d", "lta", ".delta", ".asc", "0"]
SPECIAL = ["reference.bin", ".deltaglider/stats.json", "dir/reference.bin", "a/reference.bin"]

stored_key = st.one_of(
    st.lists(st.sampled_from(TOKENS), min_size=1, max_size=4).map("".join),
    st.sampled_from(SPECIAL),
).map(lambda k: k.lstrip("/") or "k")
key_sets = st.lists(stored_key, min_size=0, max_size=18, unique=True)
prefixes = st.sampled_from(["", "a", "a.", "a/", "ab", "é", "dir/"])
delimiters = st.sampled_from([None, "/", ".", "a", "ta", "-", "lt"])
page_sizes = st.sampled_from([1, 2, 3, 5, 1000])


def server_rank(s3_server: LocalS3) -> Callable[[str], bytes]:
    """How the server orders keys: UTF-8 bytes, or (SeaweedFS) with ``/`` ranked lowest."""
    if s3_server.name == "seaweedfs":
        return lambda key: key.replace("/", "\x00").encode("utf-8")
    return lambda key: key.encode("utf-8")


def model_listing(
    stored: set[str], prefix: str, delimiter: str | None, rank: Callable[[str], bytes]
) -> list[str]:
    """What a listing of the logical names shows; common prefixes end with the delimiter.

    Written from the storage format's rules, independently of the library's code.
    """
    entries: set[str] = set()
    for key in stored:
        name = key.rsplit("/", 1)[-1]
        if key.startswith(".deltaglider/") or name == "reference.bin":
            continue
        logical = key[: -len(".delta")] if key.endswith(".delta") and key != ".delta" else key
        if not logical.startswith(prefix):
            continue
        if delimiter:
            cut = logical.find(delimiter, len(prefix))
            if cut >= 0:
                logical = logical[: cut + len(delimiter)]
        entries.add(logical)
    return sorted(entries, key=rank)


def fill_bucket(s3_server: LocalS3, keys: list[str]) -> tuple[str, set[str]]:
    """A new bucket holding ``keys`` (empty bodies); the keys the server accepted."""
    admin = s3_server.boto3_client()
    bucket = f"l-{uuid.uuid4().hex[:12]}"
    admin.create_bucket(Bucket=bucket)

    def put(key: str) -> str | None:
        try:
            admin.put_object(Bucket=bucket, Key=key, Body=b"x")
        except ClientError:
            return None  # SeaweedFS refuses "." segments, for instance
        return key

    with ThreadPoolExecutor(8) as pool:
        accepted = {k for k in pool.map(put, keys) if k is not None}
    admin.close()
    return bucket, accepted


def drop_bucket(s3_server: LocalS3, bucket: str) -> None:
    admin = s3_server.boto3_client()
    for page in admin.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            admin.delete_object(Bucket=bucket, Key=item["Key"])
    admin.delete_bucket(Bucket=bucket)
    admin.close()


def entry_keys(response: Any, rank: Callable[[str], bytes]) -> list[str]:
    """Contents and CommonPrefixes of one response, merged in the server's order."""
    keys = [o["Key"] for o in response["Contents"]]
    prefixes = [p["Prefix"] for p in response["CommonPrefixes"]]
    assert keys == sorted(keys, key=rank)
    assert prefixes == sorted(prefixes, key=rank)
    return sorted(keys + prefixes, key=rank)


async def page_through(
    client: AsyncDeltaGliderClient,
    bucket: str,
    prefix: str,
    delimiter: str | None,
    max_keys: int,
    *,
    by_token: bool,
    rank: Callable[[str], bytes],
) -> list[str]:
    seen: list[str] = []
    kwargs: dict[str, Any] = {}
    for _ in range(200):
        response = await client.list_objects(
            Bucket=bucket, Prefix=prefix, Delimiter=delimiter, MaxKeys=max_keys, **kwargs
        )
        page = entry_keys(response, rank)
        assert len(page) == response["KeyCount"] <= max_keys
        # Objects and prefixes interleave in one order, as S3 returns them.
        seen.extend(page)
        if not response["IsTruncated"]:
            assert "NextContinuationToken" not in response
            return seen
        assert page, "a truncated page must not be empty"
        if by_token:
            kwargs = {"ContinuationToken": response["NextContinuationToken"]}
        else:
            kwargs = {"StartAfter": page[-1]}
    raise AssertionError("paging did not end")


@pytest.mark.slow
@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(keys=key_sets, prefix=prefixes, delimiter=delimiters, max_keys=page_sizes)
def test_listing_matches_the_model(
    s3_server: LocalS3, keys: list[str], prefix: str, delimiter: str | None, max_keys: int
) -> None:
    bucket, accepted = fill_bucket(s3_server, keys)
    try:
        rank = server_rank(s3_server)
        expected = model_listing(accepted, prefix, delimiter, rank)

        async def run() -> None:
            async with AsyncDeltaGliderClient(s3_server.config()) as client:
                for by_token in (True, False):
                    got = await page_through(
                        client, bucket, prefix, delimiter, max_keys, by_token=by_token, rank=rank
                    )
                    assert got == expected, (by_token, sorted(accepted))

        asyncio.run(run())
    finally:
        drop_bucket(s3_server, bucket)


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        # The instance of the issue: the delta's logical key sorts before the .asc file.
        (["rel/app.zip.delta", "rel/app.zip.asc"], ["rel/app.zip", "rel/app.zip.asc"]),
        (["a.delta", "a-1", "a.b", "a 2"], ["a", "a 2", "a-1", "a.b"]),
        # Both forms of one name, and a name that only exists as a reference directory.
        (["x.zip", "x.zip.delta", "y/reference.bin"], ["x.zip"]),
    ],
)
async def test_known_orders(s3_server: LocalS3, stored: list[str], expected: list[str]) -> None:
    bucket, accepted = fill_bucket(s3_server, stored)
    assert accepted == set(stored)
    rank = server_rank(s3_server)
    try:
        async with AsyncDeltaGliderClient(s3_server.config()) as client:
            for max_keys in (1, 2, 1000):
                for by_token in (True, False):
                    got = await page_through(
                        client, bucket, "", None, max_keys, by_token=by_token, rank=rank
                    )
                    assert got == expected
    finally:
        drop_bucket(s3_server, bucket)


async def test_a_directory_holding_only_hidden_objects_is_not_a_common_prefix(
    s3_server: LocalS3,
) -> None:
    bucket, _ = fill_bucket(
        s3_server, ["gone/reference.bin", ".deltaglider/stats_quick.json", "kept/a.zip.delta"]
    )
    try:
        async with AsyncDeltaGliderClient(s3_server.config()) as client:
            response = await client.list_objects(Bucket=bucket, Delimiter="/")
            assert [p["Prefix"] for p in response["CommonPrefixes"]] == ["kept/"]
            assert response["Contents"] == []
    finally:
        drop_bucket(s3_server, bucket)


async def test_a_server_listing_directories_first_loses_no_key(s3_server: LocalS3) -> None:
    # SeaweedFS lists a directory's contents right after its name ("a/x" before "a-1"),
    # unlike S3. Paging must still return every key exactly once, in the server's order.
    stored = ["a-1", "a/x.zip.delta", "a/y", "a!", "a.b", "a0", "a.delta", "b", "a/b/c"]
    bucket, _ = fill_bucket(s3_server, stored)
    rank = server_rank(s3_server)
    expected = ["a-1", "a/x.zip", "a/y", "a!", "a.b", "a0", "a", "b", "a/b/c"]
    try:
        async with AsyncDeltaGliderClient(s3_server.config()) as client:
            for max_keys in (1, 2, 3, 1000):
                paged = await page_through(
                    client, bucket, "", None, max_keys, by_token=True, rank=rank
                )
                assert paged == sorted(expected, key=rank)
    finally:
        drop_bucket(s3_server, bucket)
