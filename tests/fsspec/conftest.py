"""Fixtures of the dg:// filesystem tests: a filesystem and a client per test, on each server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from deltaglider import DeltaGliderClient, create_client
from deltaglider_async.filesystem import DeltaGliderFileSystem
from deltaglider_async.testing import LocalS3


def storage_options(s3: LocalS3) -> dict[str, Any]:
    """The s3fs-style options that point a dg:// filesystem at ``s3``."""
    return {
        "endpoint_url": s3.endpoint_url,
        "key": s3.access_key,
        "secret": s3.secret_key,
        "client_kwargs": {"region_name": s3.region},
    }


def raw_keys(admin: Any, bucket: str) -> dict[str, int]:
    """Every stored key of ``bucket`` (references and deltas included), with its size."""
    found: dict[str, int] = {}
    for page in admin.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            found[item["Key"]] = item["Size"]
    return found


def corrupt(admin: Any, bucket: str, key: str) -> None:
    """Flip one byte of a stored object, keeping its metadata (bit rot, a bad copy...)."""
    head = admin.head_object(Bucket=bucket, Key=key)
    body = bytearray(admin.get_object(Bucket=bucket, Key=key)["Body"].read())
    body[len(body) // 2] ^= 0xFF
    admin.put_object(Bucket=bucket, Key=key, Body=bytes(body), Metadata=head["Metadata"])


@pytest.fixture
def dg_fs(s3_server: LocalS3) -> Iterator[DeltaGliderFileSystem]:
    """A blocking dg:// filesystem on ``s3_server``, its own instance, closed after the test."""
    fs = DeltaGliderFileSystem(skip_instance_cache=True, **storage_options(s3_server))
    try:
        yield fs
    finally:
        fs.close()


@pytest.fixture
def dg_client(s3_server: LocalS3) -> Iterator[DeltaGliderClient]:
    """A blocking deltaglider client on ``s3_server`` (what users ``upload()`` with)."""
    with create_client(
        endpoint_url=s3_server.endpoint_url,
        aws_access_key_id=s3_server.access_key,
        aws_secret_access_key=s3_server.secret_key,
        region_name=s3_server.region,
    ) as client:
        yield client
