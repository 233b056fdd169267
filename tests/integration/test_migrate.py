"""migrate(): S3 to S3 with delta compression, resumable, filtered, sharded."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from deltaglider_async import (
    AsyncDeltaGliderClient,
    BucketNotFoundError,
    DeltaGliderConfig,
    InvalidArgumentError,
    ObjectNotFoundError,
    Shard,
)
from deltaglider_async.core.bulk import Progress
from deltaglider_async.core.migrate import shard_of
from tests.archives import make_zip_versions

from .support import list_keys
from .test_upstream_fixture import load_fixture_bucket, user_objects

SPACES = ("apps/a", "apps/b", "libs/c", "tools/d", "tools/e", "")
TEXTS = {"docs/readme.txt": b"read me\n" * 100, "apps/a/notes/changes.txt": b"- fixed\n" * 40}


@pytest.fixture
async def client(s3_config: DeltaGliderConfig) -> AsyncIterator[AsyncDeltaGliderClient]:
    """An opened client on ``s3_server``."""
    async with AsyncDeltaGliderClient(s3_config) as opened:
        yield opened


def empty_bucket(s3_admin: Any, name: str) -> None:
    """Delete every object of ``name`` and the bucket itself."""
    for page in s3_admin.get_paginator("list_objects_v2").paginate(Bucket=name):
        keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
        if keys:
            s3_admin.delete_objects(Bucket=name, Delete={"Objects": keys, "Quiet": True})
    s3_admin.delete_bucket(Bucket=name)


@pytest.fixture
def source_bucket(s3_admin: Any) -> Iterator[str]:
    """A second fresh bucket on the same server, for the migration's source."""
    name = f"src-{uuid.uuid4().hex[:12]}"
    s3_admin.create_bucket(Bucket=name)
    try:
        yield name
    finally:
        empty_bucket(s3_admin, name)


@pytest.fixture
def plain_source(s3_admin: Any, source_bucket: str, tmp_path: Path) -> dict[str, bytes]:
    """A plain bucket (no deltaglider metadata): release zips in six "directories" and texts.

    Returns every key with its bytes.
    """
    objects: dict[str, bytes] = {}
    for n, space in enumerate(SPACES):
        for path in make_zip_versions(tmp_path / f"v{n}", 3, size=8_000, seed=n):
            key = f"{space}/{path.name}" if space else path.name
            objects[key] = path.read_bytes()
    objects.update(TEXTS)
    for key, data in objects.items():
        s3_admin.put_object(
            Bucket=source_bucket,
            Key=key,
            Body=data,
            Metadata={"owner": "team-a"},
            ContentType="application/x-test",
        )
    # What a console leaves behind: a "directory" marker object.
    s3_admin.put_object(Bucket=source_bucket, Key="apps/", Body=b"")
    return objects


async def read_back(
    client: AsyncDeltaGliderClient, urls: dict[str, str], tmp_path: Path
) -> dict[str, bytes]:
    """Download ``{name: s3 url}`` and return ``{name: bytes}``."""
    out = tmp_path / f"read-{uuid.uuid4().hex[:6]}"
    results = await client.download_many(
        [(url, f"f{n}") for n, url in enumerate(urls.values())], out
    )
    assert all(r.ok for r in results), [r.error for r in results if not r.ok]
    return {name: (out / f"f{n}").read_bytes() for n, name in enumerate(urls)}


async def test_plain_bucket_is_migrated_and_a_rerun_copies_nothing(
    client: AsyncDeltaGliderClient,
    bucket: str,
    source_bucket: str,
    plain_source: dict[str, bytes],
    s3_admin: Any,
    tmp_path: Path,
) -> None:
    source, dest = f"s3://{source_bucket}", f"s3://{bucket}/imported/"

    planned = await client.migrate(source, dest, dry_run=True)
    assert len(planned.planned) == len(plain_source)
    assert not planned.migrated
    assert not planned.failed
    assert not planned.skipped
    assert list_keys(s3_admin, bucket) == {}

    events: list[Progress] = []
    report = await client.migrate(source, dest, max_concurrency=6, progress=events.append)

    assert report.ok, [r.error for r in report.failed]
    assert sorted(r.source for r in report.migrated) == sorted(
        f"s3://{source_bucket}/{k}" for k in plain_source
    )
    assert report.skipped == report.planned == []
    # The directory marker is no file: reported as not migrated, with the reason.
    assert [r.source for r in report.refused] == [f"s3://{source_bucket}/apps/"]
    assert "directory marker" in str(report.refused[0].error)
    assert report.bytes_in == sum(len(v) for v in plain_source.values())
    assert 0 < report.bytes_stored < report.bytes_in
    assert len(events) == len(plain_source) + 1
    keys = list_keys(s3_admin, bucket)
    # One reference per deltaspace of zips; every zip a delta, the texts direct.
    assert sorted(k for k in keys if k.endswith("reference.bin")) == sorted(
        f"imported/{s}/reference.bin" if s else "imported/reference.bin" for s in SPACES
    )
    assert all(f"imported/{k}" in keys for k in TEXTS)
    urls = {k: f"s3://{bucket}/imported/{k}" for k in plain_source}
    assert await read_back(client, urls, tmp_path) == plain_source
    head = await client.head_object(Bucket=bucket, Key="imported/apps/b/app-1.0.2.zip")
    assert head["Metadata"] == {"owner": "team-a"}
    assert head["ContentType"] == "application/x-test"

    rerun = await client.migrate(source, dest)
    assert rerun.migrated == []
    assert rerun.failed == []
    assert len(rerun.skipped) == len(plain_source)
    assert list_keys(s3_admin, bucket) == keys

    # A source object changed in place (same size) and one that grew are copied again.
    changed = "apps/a/app-1.0.1.zip"
    data = bytearray(plain_source[changed])
    data[-100] ^= 0xFF
    s3_admin.put_object(Bucket=source_bucket, Key=changed, Body=bytes(data))
    s3_admin.put_object(Bucket=source_bucket, Key="docs/readme.txt", Body=b"longer\n" * 200)
    third = await client.migrate(source, dest)
    assert sorted(r.source for r in third.migrated) == [
        f"s3://{source_bucket}/{changed}",
        f"s3://{source_bucket}/docs/readme.txt",
    ]
    assert len(third.skipped) == len(plain_source) - 2
    assert (await read_back(client, {changed: urls[changed]}, tmp_path))[changed] == data


async def test_two_shards_cover_everything_exactly_once(
    client: AsyncDeltaGliderClient,
    bucket: str,
    source_bucket: str,
    plain_source: dict[str, bytes],
    s3_admin: Any,
) -> None:
    spaces = {k.rpartition("/")[0] for k in plain_source}
    assert {shard_of(s, 2) for s in spaces} == {0, 1}, "both shards must have work"
    source, dest = f"s3://{source_bucket}/", f"s3://{bucket}/"

    first = await client.migrate(source, dest, shard=(0, 2))
    second = await client.migrate(source, dest, shard=(1, 2))

    done = [r.source for r in first.migrated], [r.source for r in second.migrated]
    assert first.ok
    assert second.ok
    assert not set(done[0]) & set(done[1])
    assert sorted(done[0] + done[1]) == sorted(f"s3://{source_bucket}/{k}" for k in plain_source)
    assert first.skipped == second.skipped == []
    # A deltaspace is never split between shards.
    for report, k in ((first, 0), (second, 1)):
        for result in report.migrated:
            relative = result.source.removeprefix(f"s3://{source_bucket}/")
            assert shard_of(relative.rpartition("/")[0], 2) == k
    # Every space got exactly one reference.
    refs = [k for k in list_keys(s3_admin, bucket) if k.endswith("reference.bin")]
    assert len(refs) == len(SPACES)

    for bad in [(2, 2), (-1, 2), (0, 0), (True, 2), "0/2", (0, 1, 2)]:
        with pytest.raises(InvalidArgumentError):
            await client.migrate(source, dest, shard=bad)  # type: ignore[arg-type]


async def test_include_and_exclude_patterns(
    client: AsyncDeltaGliderClient,
    bucket: str,
    source_bucket: str,
    plain_source: dict[str, bytes],
) -> None:
    report = await client.migrate(
        f"s3://{source_bucket}/apps",
        f"s3://{bucket}/only-apps/",
        include=["*.zip", "*.txt"],
        exclude=["b/*", "*1.0.0*"],
        dry_run=True,
    )
    wanted = {
        k
        for k in plain_source
        if k.startswith("apps/") and not k.startswith("apps/b/") and "1.0.0" not in k
    }
    assert {r.source.removeprefix(f"s3://{source_bucket}/") for r in report.planned} == wanted
    assert {r.destination for r in report.planned} == {
        f"s3://{bucket}/only-apps/{k.removeprefix('apps/')}" for k in wanted
    }


async def test_deltaglider_bucket_with_the_6_2_0_fixture(
    client: AsyncDeltaGliderClient,
    bucket: str,
    source_bucket: str,
    s3_admin: Any,
    fixtures_dir: Path,
    tmp_path: Path,
) -> None:
    manifest = load_fixture_bucket(s3_admin, source_bucket, fixtures_dir)
    originals = manifest["originals"]

    report = await client.migrate(f"s3://{source_bucket}", f"s3://{bucket}/copy")

    assert report.ok, [r.error for r in report.failed]
    logical = sorted(o["key"].removesuffix(".delta") for o in user_objects(manifest))
    assert sorted(r.destination for r in report.migrated) == [
        f"s3://{bucket}/copy/{k}" for k in logical
    ]
    urls = {k: f"s3://{bucket}/copy/{k}" for k in logical}
    for key, data in (await read_back(client, urls, tmp_path)).items():
        original = originals[key.rpartition("/")[2]]
        assert hashlib.sha256(data).hexdigest() == original["sha256"], key
        assert len(data) == original["size"]
    keys = list_keys(s3_admin, bucket)
    assert any(k.endswith("reference.bin") for k in keys)

    rerun = await client.migrate(f"s3://{source_bucket}", f"s3://{bucket}/copy")
    assert rerun.migrated == []
    assert rerun.failed == []
    assert len(rerun.skipped) == len(logical)
    assert list_keys(s3_admin, bucket) == keys


async def test_whole_call_errors(
    client: AsyncDeltaGliderClient, bucket: str, source_bucket: str
) -> None:
    with pytest.raises(InvalidArgumentError):
        await client.migrate(f"s3://{bucket}/a/", f"s3://{bucket}/a/b/")
    with pytest.raises(InvalidArgumentError):
        await client.migrate(f"s3://{bucket}", f"s3://{bucket}/x/")
    with pytest.raises(BucketNotFoundError):
        await client.migrate(f"s3://{bucket}-none", f"s3://{source_bucket}/")
    with pytest.raises(BucketNotFoundError):
        await client.migrate(f"s3://{source_bucket}", f"s3://{bucket}-none/")
    empty = await client.migrate(f"s3://{source_bucket}", f"s3://{bucket}/")
    assert empty.total == 0
    assert empty.ok


def test_shard_of_is_a_stable_hash() -> None:
    """The same on every machine and Python: SHA-256 of the relative space, not hash()."""
    spaces = ["", "apps/a", "apps/b", "libs/c", "tools/d"]
    assert [shard_of(s, 7) for s in spaces] == [1, 2, 5, 2, 1]
    assert all(shard_of(s, 1) == 0 for s in spaces)


async def test_nothing_the_user_owns_is_dropped_or_renamed(
    client: AsyncDeltaGliderClient, bucket: str, source_bucket: str, s3_admin: Any
) -> None:
    # A plain bucket whose objects happen to carry names the storage format reserves.
    plain = {
        "reference.bin": b"my own reference data",
        "maps/reference.bin": b"another one",
        "game-1.1.delta": b"\xd6\xc3\xc4\x00 a user's own xdelta patch",
        "both/x.zip": b"direct form",
        "both/x.zip.delta": b"not a deltaglider delta",
        "docs/": b"",
        "docs/guide.txt": b"guide",
    }
    for key, data in plain.items():
        s3_admin.put_object(Bucket=source_bucket, Key=key, Body=data)
    src = f"s3://{source_bucket}"

    report = await client.migrate(src, f"s3://{bucket}/copy/")

    assert report.ok, [r.error for r in report.failed]
    migrated = sorted(r.source for r in report.migrated)
    refused = {r.source: str(r.error) for r in report.refused}
    # Every source object is in exactly one list.
    assert sorted(migrated + list(refused)) == sorted(f"{src}/{k}" for k in plain)
    assert migrated == [f"{src}/both/x.zip", f"{src}/docs/guide.txt"]
    assert "reserved" in refused[f"{src}/reference.bin"]
    assert "reserved" in refused[f"{src}/maps/reference.bin"]
    assert "reserves for deltas" in refused[f"{src}/game-1.1.delta"]
    assert "also exists as both/x.zip" in refused[f"{src}/both/x.zip.delta"]
    assert "directory marker" in refused[f"{src}/docs/"]
    # Nothing was renamed: no 'game-1.1' appeared at the destination.
    listed = await client.list_objects(Bucket=bucket, Prefix="copy/")
    assert [o["Key"] for o in listed["Contents"]] == ["copy/both/x.zip", "copy/docs/guide.txt"]
    assert not any("game" in k for k in list_keys(s3_admin, bucket))
    # A dry run reports the same.
    dry = await client.migrate(src, f"s3://{bucket}/again/", dry_run=True)
    assert sorted(r.source for r in dry.refused) == sorted(refused)


async def test_key_list_split_over_shards_with_reports_that_resume(
    client: AsyncDeltaGliderClient,
    bucket: str,
    source_bucket: str,
    plain_source: dict[str, bytes],
    s3_admin: Any,
    tmp_path: Path,
) -> None:
    apps = sorted(k for k in plain_source if k.startswith("apps/"))
    lines = [*apps, "", "docs/readme.txt", "apps/ghost.zip"]
    s3_admin.put_object(Bucket=bucket, Key="lists/keys.txt", Body="\n".join(lines).encode())
    source, dest = f"s3://{source_bucket}/apps/", f"s3://{bucket}/copy/"
    reports = tmp_path / "reports"

    runs = [
        await client.migrate(
            source,
            dest,
            shard=(k, 3),
            from_list=f"s3://{bucket}/lists/keys.txt",
            report=str(reports),
        )
        for k in range(3)
    ]

    migrated = [r.source for run in runs for r in run.migrated]
    assert sorted(migrated) == [f"s3://{source_bucket}/{k}" for k in apps]
    assert all(run.ok and run.list_requests == 0 for run in runs)
    refused = {r.source: r.error for run in runs for r in run.refused}
    assert set(refused) == {
        f"s3://{source_bucket}/docs/readme.txt",
        f"s3://{source_bucket}/apps/ghost.zip",
    }
    assert "not under the source prefix" in str(refused[f"s3://{source_bucket}/docs/readme.txt"])
    assert isinstance(refused[f"s3://{source_bucket}/apps/ghost.zip"], ObjectNotFoundError)
    documents = [
        json.loads((reports / f"shard-{k:05d}-of-00003.json").read_text()) for k in range(3)
    ]
    assert [run.report_url for run in runs] == [
        str(reports / f"shard-{k:05d}-of-00003.json") for k in range(3)
    ]
    assert all(d["status"] == "complete" and d["input"].startswith("key list") for d in documents)
    recorded = sorted(item["source"] for d in documents for item in d["objects"])
    assert recorded == sorted([*migrated, *refused])

    # A rerun of one shard finds everything at the destination and keeps the record of
    # what the first run migrated (a key list has no ETag to trust, so it checks).
    again = await client.migrate(
        source, dest, shard=(1, 3), from_list=f"s3://{bucket}/lists/keys.txt", report=str(reports)
    )
    assert again.migrated == []
    assert len(again.skipped) == len(runs[1].migrated)
    after = json.loads((reports / "shard-00001-of-00003.json").read_text())
    assert [item["outcome"] for item in after["objects"]] == [
        item["outcome"] for item in documents[1]["objects"]
    ]


async def test_listing_report_resumes_without_touching_what_is_done(
    client: AsyncDeltaGliderClient,
    bucket: str,
    source_bucket: str,
    plain_source: dict[str, bytes],
    s3_admin: Any,
) -> None:
    source, dest = f"s3://{source_bucket}/", f"s3://{bucket}/copy/"
    reports = f"s3://{bucket}/reports"
    first = await client.migrate(source, dest, report=reports, shard=(0, 1))
    assert first.ok
    changed = "tools/d/app-1.0.1.zip"
    s3_admin.put_object(Bucket=source_bucket, Key=changed, Body=b"a new build")
    # Remove a migrated object at the destination: the report (source unchanged) is
    # trusted, so the rerun does not look for it; a run without the report does.
    s3_admin.delete_object(Bucket=bucket, Key="copy/docs/readme.txt")

    rerun = await client.migrate(source, dest, report=reports, shard=(0, 1))

    assert [r.source for r in rerun.migrated] == [f"s3://{source_bucket}/{changed}"]
    assert len(rerun.skipped) == len(plain_source) - 1
    body = s3_admin.get_object(Bucket=bucket, Key="reports/shard-00000-of-00001.json")["Body"]
    document = json.loads(body.read())
    assert document["shard"] == {"index": 0, "count": 1}
    assert {item["outcome"] for item in document["objects"]} == {"migrated", "refused"}
    plain = await client.migrate(source, dest)
    assert [r.source for r in plain.migrated] == [f"s3://{source_bucket}/docs/readme.txt"]
    with pytest.raises(InvalidArgumentError, match="report of another migration"):
        await client.migrate(source, f"s3://{bucket}/elsewhere/", report=reports, shard=(0, 1))


async def test_shard_auto_from_the_job_engine(
    client: AsyncDeltaGliderClient,
    bucket: str,
    source_bucket: str,
    plain_source: dict[str, bytes],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source, dest = f"s3://{source_bucket}/", f"s3://{bucket}/"
    with pytest.raises(InvalidArgumentError, match="JOB_COMPLETION_INDEX"):
        await client.migrate(source, dest, shard="auto", shards=2, dry_run=True)
    planned: set[str] = set()
    for k in range(2):
        monkeypatch.setenv("AWS_BATCH_JOB_ARRAY_INDEX", str(k))
        monkeypatch.setenv("AWS_BATCH_JOB_ARRAY_SIZE", "2")
        report = await client.migrate(source, dest, shard="auto", dry_run=True)
        assert report.shard == Shard(k, 2)
        assert report.list_requests > 0
        assert not planned & {r.source for r in report.planned}
        planned |= {r.source for r in report.planned}
    assert planned == {f"s3://{source_bucket}/{k}" for k in plain_source}
