"""Four ``deltaglider migrate --shard auto`` processes at once, as an Indexed Job runs them.

Each process gets ``JOB_COMPLETION_INDEX=k`` (k = 0..3) and ``--shards 4``, as the pods of
a Kubernetes Indexed Job do, and all four run concurrently against one server. Over 520
objects in 40 directories, from a plain bucket (partitioned listing) and from a
deltaglider bucket (an S3 Inventory report): every object ends in exactly one shard's
report, each directory gets one reference, a killed shard's rerun completes, and a full
rerun migrates nothing.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from deltaglider_async import AsyncDeltaGliderClient
from deltaglider_async.testing import LocalS3

from .support import list_keys

pytestmark = pytest.mark.slow

SHARDS = 4
DIRECTORIES = [f"team{t}/app{a}" for t in range(4) for a in range(10)]
PER_DIRECTORY = 13


def _objects() -> dict[str, bytes]:
    """520 small objects, 13 builds of one artifact in each of 40 directories."""
    objects = {}
    for d, directory in enumerate(DIRECTORIES):
        base = b"".join(f"{directory} line {n:04d}\n".encode() for n in range(120))
        for v in range(PER_DIRECTORY):
            objects[f"{directory}/build-{v:02d}.zip"] = base + f"build {v} of {d}\n".encode()
    return objects


OBJECTS = _objects()


@pytest.fixture
def s3(seaweed_server: LocalS3) -> LocalS3:
    """The one server every shard process talks to (SeaweedFS, the quicker of the two)."""
    return seaweed_server


@pytest.fixture
def admin(s3: LocalS3) -> Iterator[Any]:
    """A boto3 client for the server."""
    client = s3.boto3_client()
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def buckets(admin: Any) -> Iterator[tuple[str, str]]:
    """A source and a destination bucket, removed afterwards."""
    names = (f"src-{uuid.uuid4().hex[:10]}", f"dst-{uuid.uuid4().hex[:10]}")
    for name in names:
        admin.create_bucket(Bucket=name)
    try:
        yield names
    finally:
        for name in names:
            keys = list(list_keys(admin, name))
            for start in range(0, len(keys), 1000):
                batch = [{"Key": k} for k in keys[start : start + 1000]]
                admin.delete_objects(Bucket=name, Delete={"Objects": batch, "Quiet": True})
            admin.delete_bucket(Bucket=name)


@pytest.fixture
async def client(s3: LocalS3) -> AsyncIterator[AsyncDeltaGliderClient]:
    """An opened client on the server."""
    async with AsyncDeltaGliderClient(s3.config()) as opened:
        yield opened


def start_shard(s3: LocalS3, index: int, *args: str) -> subprocess.Popen[bytes]:
    """``deltaglider migrate ARGS --shard auto --shards 4`` as pod ``index`` of a Job."""
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": s3.access_key,
        "AWS_SECRET_ACCESS_KEY": s3.secret_key,
        "AWS_DEFAULT_REGION": s3.region,
        "JOB_COMPLETION_INDEX": str(index),
    }
    argv = [sys.executable, "-m", "deltaglider", "--endpoint-url", s3.endpoint_url, "migrate"]
    argv += [*args, "--yes", "--json", "--shard", "auto", "--shards", str(SHARDS)]
    return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish(process: subprocess.Popen[bytes]) -> dict[str, Any]:
    """Wait for a shard; it must succeed; its ``--json`` document."""
    out, err = process.communicate(timeout=240)
    assert process.returncode == 0, err.decode()
    document: dict[str, Any] = json.loads(out)
    return document


def read_reports(location: Path) -> list[dict[str, Any]]:
    """The four shards' reports, in shard order."""
    return [
        json.loads((location / f"shard-{k:05d}-of-{SHARDS:05d}.json").read_text())
        for k in range(SHARDS)
    ]


def assert_each_object_once(
    reports: list[dict[str, Any]], expected_sources: set[str]
) -> Counter[str]:
    """Every expected source is in exactly one report; the outcomes, counted."""
    sources = [item["source"] for report in reports for item in report["objects"]]
    assert len(sources) == len(set(sources)), "an object is in two reports"
    assert set(sources) == expected_sources
    assert all(report["status"] == "complete" for report in reports)
    return Counter(item["outcome"] for report in reports for item in report["objects"])


def assert_one_reference_per_directory(admin: Any, bucket: str, prefix: str) -> None:
    keys = list_keys(admin, bucket)
    references = sorted(k for k in keys if k.endswith("reference.bin"))
    assert references == sorted(f"{prefix}{d}/reference.bin" for d in DIRECTORIES)


async def assert_contents(
    client: AsyncDeltaGliderClient, bucket: str, prefix: str, tmp_path: Path
) -> None:
    """Every object reads back; one per directory is compared byte for byte."""
    listed = []
    token: dict[str, str] = {}
    while True:
        page = await client.list_objects(Bucket=bucket, Prefix=prefix, **token)  # type: ignore[arg-type]
        listed += [o["Key"].removeprefix(prefix) for o in page.get("Contents", [])]
        if not page.get("IsTruncated"):
            break
        token = {"ContinuationToken": page["NextContinuationToken"]}
    assert sorted(listed) == sorted(OBJECTS)
    sample = [f"{d}/build-{(n * 5) % PER_DIRECTORY:02d}.zip" for n, d in enumerate(DIRECTORIES)]
    results = await client.download_many(
        [(f"s3://{bucket}/{prefix}{key}", key) for key in sample], tmp_path / "read"
    )
    assert all(r.ok for r in results), [r.error for r in results if not r.ok]
    for key in sample:
        assert (tmp_path / "read" / key).read_bytes() == OBJECTS[key], key


async def test_plain_bucket_by_partitioned_listing_with_a_killed_shard(
    s3: LocalS3,
    admin: Any,
    buckets: tuple[str, str],
    client: AsyncDeltaGliderClient,
    tmp_path: Path,
) -> None:
    source_bucket, dest_bucket = buckets
    for key, data in OBJECTS.items():
        admin.put_object(Bucket=source_bucket, Key=f"legacy/{key}", Body=data)
    source, dest = f"s3://{source_bucket}/legacy/", f"s3://{dest_bucket}/moved/"
    reports = tmp_path / "reports"
    common = (source, dest, "--report", str(reports), "--report-interval", "0.1")

    # Shard 2 runs one object at a time, so that it is still running when it is killed.
    processes = [start_shard(s3, k, *common, "-j", "1" if k == 2 else "6") for k in range(SHARDS)]
    killed = reports / f"shard-00002-of-{SHARDS:05d}.json"
    deadline = time.monotonic() + 120
    while True:
        if killed.exists() and len(json.loads(killed.read_text())["objects"]) >= 10:
            break
        assert processes[2].poll() is None, "shard 2 ended before it could be killed"
        assert time.monotonic() < deadline, "shard 2 never saved a report"
        await anyio.sleep(0.02)
    processes[2].send_signal(signal.SIGKILL)
    processes[2].communicate(timeout=30)
    assert processes[2].returncode == -signal.SIGKILL
    partial = json.loads(killed.read_text())
    first = [finish(p) for k, p in enumerate(processes) if k != 2]

    assert partial["status"] == "running"
    assert all(document["list_requests"] > 0 for document in first)
    rerun = finish(start_shard(s3, 2, *common))

    expected = {f"{source}{key}" for key in OBJECTS}
    outcomes = assert_each_object_once(read_reports(reports), expected)
    # What the killed run recorded stays migrated; what it wrote without recording it
    # yet is found at the destination by the rerun (skipped); nothing failed.
    assert set(outcomes) <= {"migrated", "skipped"}
    final = read_reports(reports)
    for k in (0, 1, 3):
        assert {r["outcome"] for r in final[k]["objects"]} == {"migrated"}
    assert {r["source"] for r in partial["objects"]} <= {
        r["source"] for r in final[2]["objects"] if r["outcome"] == "migrated"
    }
    assert len(rerun["results"]) + len(rerun["skipped"]) == len(final[2]["objects"])
    assert rerun["shard"] == f"2/{SHARDS}"
    assert_one_reference_per_directory(admin, dest_bucket, "moved/")
    await assert_contents(client, dest_bucket, "moved/", tmp_path)

    # A full rerun (fresh reports, so every object is checked at the destination).
    again = tmp_path / "again"
    processes = [start_shard(s3, k, source, dest, "--report", str(again)) for k in range(SHARDS)]
    documents = [finish(p) for p in processes]
    assert all(document["results"] == [] for document in documents)
    outcomes = assert_each_object_once(read_reports(again), expected)
    assert outcomes == Counter({"skipped": len(OBJECTS)})
    assert_one_reference_per_directory(admin, dest_bucket, "moved/")


def write_inventory(admin: Any, source_bucket: str, inventory_bucket: str) -> str:
    """An S3 Inventory report of ``source_bucket`` in CSV, three data files; its manifest URL."""
    rows = []
    for page in admin.get_paginator("list_objects_v2").paginate(Bucket=source_bucket):
        for item in page.get("Contents", []):
            rows.append([source_bucket, item["Key"], str(item["Size"]), item["ETag"].strip('"')])
    files = []
    for n in range(3):
        part = rows[n::3]
        text = "".join(",".join(f'"{value}"' for value in row) + "\n" for row in part)
        data = gzip.compress(text.encode())
        key = f"inventory/{source_bucket}/all/data/part-{n}.csv.gz"
        admin.put_object(Bucket=inventory_bucket, Key=key, Body=data)
        md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
        files.append({"key": key, "size": len(data), "MD5checksum": md5})
    manifest = {
        "sourceBucket": source_bucket,
        "destinationBucket": f"arn:aws:s3:::{inventory_bucket}",
        "version": "2016-11-30",
        "creationTimestamp": "1700000000000",
        "fileFormat": "CSV",
        "fileSchema": "Bucket, Key, Size, ETag",
        "files": files,
    }
    key = f"inventory/{source_bucket}/all/2026-01-01T00-00Z/manifest.json"
    admin.put_object(Bucket=inventory_bucket, Key=key, Body=json.dumps(manifest).encode())
    return f"s3://{inventory_bucket}/{key}"


async def test_deltaglider_bucket_from_an_inventory_report(
    s3: LocalS3,
    admin: Any,
    buckets: tuple[str, str],
    client: AsyncDeltaGliderClient,
    tmp_path: Path,
) -> None:
    source_bucket, dest_bucket = buckets
    local = tmp_path / "files"
    items = []
    for key, data in OBJECTS.items():
        (local / key).parent.mkdir(parents=True, exist_ok=True)
        (local / key).write_bytes(data)
        items.append((local / key, key))
    uploaded = await client.upload_many(items, f"s3://{source_bucket}/dg/", max_concurrency=8)
    assert all(r.ok for r in uploaded)
    # Written by deltaglider: references and deltas; the inventory lists those stored keys.
    assert sum(k.endswith(".delta") for k in list_keys(admin, source_bucket)) > len(OBJECTS) // 2
    manifest = write_inventory(admin, source_bucket, dest_bucket)
    source, dest = f"s3://{source_bucket}/dg/", f"s3://{dest_bucket}/copy/"
    reports = f"s3://{dest_bucket}/reports/"
    args = (source, dest, "--inventory", manifest, "--report", reports, "-j", "6")

    documents = [finish(p) for p in [start_shard(s3, k, *args) for k in range(SHARDS)]]

    # Three data files for four shards: two shards share one file, split by directory.
    assert all(document["list_requests"] == 0 for document in documents)
    assert all(document["results"] for document in documents), "every shard had work"
    expected = {f"{source}{key}" for key in OBJECTS}
    sources = {
        r["source"].removesuffix(".delta")
        for d in documents
        for r in d["results"]
        if r["action"] == "migrate"
    }
    assert sources == expected
    downloaded = []
    for k in range(SHARDS):
        body = admin.get_object(
            Bucket=dest_bucket, Key=f"reports/shard-{k:05d}-of-{SHARDS:05d}.json"
        )["Body"].read()
        downloaded.append(json.loads(body))
    logical = [r["source"].removesuffix(".delta") for d in downloaded for r in d["objects"]]
    assert sorted(logical) == sorted(expected)
    assert Counter(r["outcome"] for d in downloaded for r in d["objects"]) == Counter(
        {"migrated": len(OBJECTS)}
    )
    assert_one_reference_per_directory(admin, dest_bucket, "copy/")
    await assert_contents(client, dest_bucket, "copy/", tmp_path)
