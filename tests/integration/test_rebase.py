"""Re-baselining: a drifting directory gets new references, and every operation knows them.

A series whose deltas against the first file grow ~10 % a version (``drifting_series``):
with ``rebase_ratio=0.25`` (the default is off) later files become the directory's next
references (the 5th and 9th when each upload lands in its own second), at
``<dir>/.deltaglider/refs/<generation>-<sha>/reference.bin``.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from deltaglider_async import AsyncDeltaGliderClient, AsyncDeltaService, DeltaSpace, ObjectKey
from deltaglider_async.core.keys import reference_generation
from deltaglider_async.testing import LocalS3
from tests.compat.test_upstream_reads_ours import drifting_series

from .support import list_keys, stored_bytes, upload_versions

COUNT = 10
ROOT = Path(__file__).resolve().parents[2]


REBASE = 0.25


@pytest.fixture
async def client(s3_server: LocalS3) -> AsyncIterator[AsyncDeltaGliderClient]:
    async with AsyncDeltaGliderClient(s3_server.config(rebase_ratio=REBASE)) as opened:
        yield opened


async def upload_series(
    client: AsyncDeltaGliderClient, bucket: str, prefix: str, tmp_path: Path
) -> list[bytes]:
    versions = drifting_series(COUNT)
    await upload_versions(client, bucket, prefix, versions, tmp_path)
    return versions


async def test_a_drifting_series_gets_new_references_and_reads_back(
    client: AsyncDeltaGliderClient,
    s3_server: LocalS3,
    bucket: str,
    s3_admin: Any,
    tmp_path: Path,
) -> None:
    versions = await upload_series(client, bucket, "rel", tmp_path)
    keys = list_keys(s3_admin, bucket)
    rebased = sorted(k for k in keys if reference_generation(k) > 0)
    # Where exactly depends on LastModified seconds (the average-cost condition counts
    # what was stored since the newest reference); 10 versions drift past it at least once.
    generations = [reference_generation(k) for k in rebased]
    assert generations == list(range(1, len(generations) + 1))
    assert generations
    assert all(k.startswith("rel/.deltaglider/refs/") for k in rebased)
    # Hidden from listings; every version reads back byte for byte and verifies.
    listed = await client.list_objects(Bucket=bucket, Prefix="rel/", Delimiter="/")
    assert [o["Key"] for o in listed["Contents"]] == [f"rel/app-1.0.{n}.zip" for n in range(COUNT)]
    assert listed["CommonPrefixes"] == []
    (tmp_path / "out").mkdir()
    for n, data in enumerate(versions):
        out = tmp_path / "out" / f"{n}.zip"
        await client.download(f"s3://{bucket}/rel/app-1.0.{n}.zip", out)
        assert out.read_bytes() == data
        assert await client.verify(f"s3://{bucket}/rel/app-1.0.{n}.zip")
    # Later uploads encode against the newest reference.
    head = await client.head_object(Bucket=bucket, Key=f"rel/app-1.0.{COUNT - 1}.zip")
    assert head["DeltaGlider"]["ReferenceKey"] == rebased[-1]
    # Cheaper than the same series without re-baselining.
    async with AsyncDeltaGliderClient(s3_server.config(rebase_ratio=1.0)) as plain:
        await upload_series(plain, bucket, "plain", tmp_path)
    assert not any(reference_generation(k) for k in list_keys(s3_admin, bucket, "plain/"))
    with_rebase, without = (
        stored_bytes(s3_admin, bucket, "rel/"),
        stored_bytes(s3_admin, bucket, "plain/"),
    )
    assert with_rebase < without * 0.8, (with_rebase, without)
    # Statistics count every reference as stored bytes.
    stats = await client.get_bucket_stats(bucket, "detailed", use_cache=False)
    assert stats.object_count == 2 * COUNT
    assert stats.compressed_size == with_rebase + without
    assert stats.total_size == 2 * sum(len(v) for v in versions)


async def test_deleting_the_last_delta_drops_every_reference(
    client: AsyncDeltaGliderClient, bucket: str, s3_admin: Any, tmp_path: Path
) -> None:
    await upload_series(client, bucket, "rel", tmp_path)
    (tmp_path / "check").mkdir()
    for n in range(COUNT - 1):
        await client.delete_object(Bucket=bucket, Key=f"rel/app-1.0.{n}.zip")
        # Every remaining version still reads (its reference is kept).
        for m in range(n + 1, COUNT):
            out = tmp_path / "check" / f"{n}-{m}.zip"
            await client.download(f"s3://{bucket}/rel/app-1.0.{m}.zip", out)
    await client.delete_object(Bucket=bucket, Key=f"rel/app-1.0.{COUNT - 1}.zip")
    assert list_keys(s3_admin, bucket, "rel/") == {}


async def test_recursive_delete_and_migrate_handle_several_references(
    client: AsyncDeltaGliderClient, bucket: str, s3_admin: Any, tmp_path: Path
) -> None:
    versions = await upload_series(client, bucket, "rel", tmp_path)
    report = await client.migrate(f"s3://{bucket}/rel/", f"s3://{bucket}/copy/")
    assert report.ok
    assert len(report.migrated) == COUNT
    for n, data in enumerate(versions):
        response = await client.get_object(Bucket=bucket, Key=f"copy/app-1.0.{n}.zip")
        async with response["Body"] as body:
            got = await body.read()
        assert hashlib.sha256(got).hexdigest() == hashlib.sha256(data).hexdigest()
    await client.delete_objects_recursive(Bucket=bucket, Prefix="rel/")
    assert list_keys(s3_admin, bucket, "rel/") == {}
    await client.delete_objects_recursive(Bucket=bucket, Prefix="copy/")
    assert list_keys(s3_admin, bucket) == {}


WRITERS = 16
ROUNDS = 5


async def test_concurrent_writers_across_a_rebaselining_point_lose_nothing(
    make_bundle: Any, bucket: str, s3_admin: Any, tmp_path: Path
) -> None:
    """16 writers (each its own S3 client, cache and locks) store files that all drift past
    the threshold at once: each may create a next reference; none is lost, and every
    delta names a reference whose bytes have its recorded SHA-256."""
    bundles = [make_bundle(rebase_ratio=REBASE) for _ in range(WRITERS)]
    for bundle in bundles:
        await bundle.storage.head_bucket(bucket)
    base = drifting_series(1, seed=5)[0]
    for round_number in range(ROUNDS):
        space = DeltaSpace(bucket, f"race/round-{round_number}")
        first = tmp_path / f"r{round_number}" / "app-0.zip"
        first.parent.mkdir(parents=True)
        first.write_bytes(base)
        await bundles[0].service.put(first, space)
        # Three drifting versions first, so the first reference has cost ~32 % an upload.
        for n, drifted in enumerate(drifting_series(4, seed=5)[1:], start=1):
            step = tmp_path / f"r{round_number}" / f"step-{n}.zip"
            step.write_bytes(drifted)
            await bundles[0].service.put(step, space)
        rng = random.Random(round_number)
        files = {}
        for writer in range(WRITERS):
            data = bytearray(base)
            start = rng.randrange(0, len(base) // 2)
            data[start : start + len(base) * 45 // 100] = rng.randbytes(len(base) * 45 // 100)
            path = tmp_path / f"r{round_number}" / f"app-{writer + 1}.zip"
            path.write_bytes(bytes(data[: len(base)]))
            files[path.name] = path
        go = anyio.Event()
        async with anyio.create_task_group() as tg:
            for writer, path in enumerate(files.values()):
                tg.start_soon(_put_when, go, bundles[writer].service, path, space)
            await anyio.wait_all_tasks_blocked()
            go.set()

        prefix = f"{space.prefix}/"
        keys = list_keys(s3_admin, bucket, prefix)
        assert reference_generation(max(keys, key=reference_generation)) >= 1
        for name, path in {"app-0.zip": first, **files}.items():
            delta = f"{prefix}{name}.delta"
            assert delta in keys, (round_number, name)
            meta = s3_admin.head_object(Bucket=bucket, Key=delta)["Metadata"]
            ref = s3_admin.get_object(Bucket=bucket, Key=meta["dg-ref-key"])["Body"].read()
            assert hashlib.sha256(ref).hexdigest() == meta["dg-ref-sha256"], (round_number, name)
            out = tmp_path / f"r{round_number}" / f"back-{name}"
            await bundles[round_number].service.get(ObjectKey(bucket, f"{prefix}{name}"), out)
            assert out.read_bytes() == path.read_bytes(), (round_number, name)


async def _put_when(
    go: anyio.Event, service: AsyncDeltaService, path: Path, space: DeltaSpace
) -> None:
    await go.wait()
    await service.put(path, space)


@pytest.mark.slow
async def test_sixteen_writer_processes_across_a_rebaselining_point_lose_nothing(
    s3_server: LocalS3, bucket: str, s3_admin: Any, tmp_path: Path
) -> None:
    """16 writer processes store, 5 rounds running, one file each into a directory whose
    next upload crosses the re-baselining threshold, all starting each round together.
    Every file is stored once and reads back byte for byte; every delta's reference has
    its recorded SHA-256; each round's directory was re-baselined."""
    size = 64_000  # small: 80 concurrent uploads on a 2-core machine
    base = drifting_series(1, size, seed=5)[0]
    async with AsyncDeltaGliderClient(s3_server.config(rebase_ratio=REBASE)) as client:
        for round_number in range(ROUNDS):
            # The first file, then three drifting versions (the first reference has cost
            # ~32 % an upload): the next file past 25 % may become the next reference.
            for n, version in enumerate(drifting_series(4, size, seed=5)):
                path = tmp_path / f"setup-{round_number}" / f"step-{n}.zip"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(version)
                await client.upload(path, f"s3://{bucket}/race/round-{round_number}/")
    rng = random.Random(16)
    files: dict[int, list[Path]] = {}
    for writer in range(WRITERS):
        files[writer] = []
        for round_number in range(ROUNDS):
            data = bytearray(base)
            start = rng.randrange(0, len(base) // 2)
            data[start : start + len(base) * 45 // 100] = rng.randbytes(len(base) * 45 // 100)
            path = tmp_path / f"w{writer}" / f"app-{writer}.zip"
            path = path.with_name(f"app-{writer}-r{round_number}.zip")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(bytes(data[: len(base)]))
            files[writer].append(path)
    sync = tmp_path / "sync"
    sync.mkdir()
    env = {**os.environ, **s3_server.env(), "DG_REBASE_RATIO": str(REBASE)}
    stored: dict[str, str] = {}

    async def writer_process(writer: int) -> None:
        command = [
            sys.executable,
            "-m",
            "tests.integration.rebase_writer",
            bucket,
            str(sync),
            str(writer),
            *map(str, files[writer]),
        ]
        with anyio.fail_after(240):
            done = await anyio.run_process(command, cwd=ROOT, env=env, check=False)
        assert done.returncode == 0, done.stderr.decode()
        stored.update(json.loads(done.stdout.decode().strip().splitlines()[-1])["stored"])

    async def starter() -> None:
        for round_number in range(ROUNDS):
            with anyio.fail_after(240):
                # A barrier across processes: files, polled (no Event crosses processes).
                while len(list(sync.glob(f"ready-{round_number}-*"))) < WRITERS:  # noqa: ASYNC110
                    await anyio.sleep(0.01)
            (sync / f"go-{round_number}").touch()

    async with anyio.create_task_group() as tg:
        for writer in range(WRITERS):
            tg.start_soon(writer_process, writer)
        tg.start_soon(starter)

    assert len(stored) == WRITERS * ROUNDS
    async with AsyncDeltaGliderClient(s3_server.config()) as reader:
        for round_number in range(ROUNDS):
            prefix = f"race/round-{round_number}/"
            keys = list_keys(s3_admin, bucket, prefix)
            assert any(reference_generation(k) > 0 for k in keys), round_number
            for key in keys:
                if not key.endswith(".delta"):
                    continue
                meta = s3_admin.head_object(Bucket=bucket, Key=key)["Metadata"]
                ref = s3_admin.get_object(Bucket=bucket, Key=meta["dg-ref-key"])["Body"].read()
                assert hashlib.sha256(ref).hexdigest() == meta["dg-ref-sha256"], key
        for key, sha in stored.items():
            response = await reader.get_object(Bucket=bucket, Key=key)
            async with response["Body"] as body:
                assert hashlib.sha256(await body.read()).hexdigest() == sha, key
