"""``rebase``: repairing a directory written without re-baselining.

A drifting series (``drifting_series``: each version replaces another tenth of the first)
is uploaded with re-baselining off, so every delta is encoded against the first file and
they grow ~10 % a version. ``rebase`` must then store fewer bytes, keep every version
byte-exact, write nothing on a dry run, converge (a second run changes nothing), and lose
nothing when killed after any of its writes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from deltaglider_async import AsyncDeltaGliderClient, RebaseReport
from deltaglider_async.core.keys import reference_generation
from deltaglider_async.testing import LocalS3
from tests.compat.test_upstream_reads_ours import drifting_series

from .support import list_keys, stored_bytes, upload_versions

COUNT = 10


@pytest.fixture
async def plain(s3_server: LocalS3) -> AsyncIterator[AsyncDeltaGliderClient]:
    """A client that never re-baselines (writes the drifted directory)."""
    async with AsyncDeltaGliderClient(s3_server.config(rebase_ratio=1.0)) as opened:
        yield opened


async def upload_drifted(
    client: AsyncDeltaGliderClient, bucket: str, prefix: str, tmp_path: Path, count: int = COUNT
) -> list[bytes]:
    versions = drifting_series(count)
    await upload_versions(client, bucket, prefix, versions, tmp_path)
    return versions


async def assert_reads_back(
    client: AsyncDeltaGliderClient, bucket: str, prefix: str, versions: list[bytes], out: Path
) -> None:
    await anyio.Path(out).mkdir(parents=True, exist_ok=True)
    for n, data in enumerate(versions):
        target = out / f"{n}.zip"
        await client.download(f"s3://{bucket}/{prefix}/app-1.0.{n}.zip", target)
        assert target.read_bytes() == data, n
        assert await client.verify(f"s3://{bucket}/{prefix}/app-1.0.{n}.zip"), n


async def test_dry_run_writes_nothing_and_the_repair_saves_what_it_announced(
    plain: AsyncDeltaGliderClient, bucket: str, s3_admin: Any, tmp_path: Path
) -> None:
    versions = await upload_drifted(plain, bucket, "rel", tmp_path)
    before = list_keys(s3_admin, bucket)
    stored_before = stored_bytes(s3_admin, bucket, "rel/")

    planned = await plain.rebase(f"s3://{bucket}/rel/", dry_run=True)
    assert list_keys(s3_admin, bucket) == before  # same keys, same ETags
    assert planned.dry_run
    assert planned.stored_before == stored_before
    assert planned.saved > stored_before * 0.2, (planned.saved, stored_before)
    assert planned.reencoded > 0
    [space] = planned.spaces
    assert space.references_before == 1
    assert space.references_after > 1
    assert not space.applied

    done = await plain.rebase(f"s3://{bucket}/rel/")
    assert [s.applied for s in done.spaces] == [True]
    assert done.saved == planned.saved
    assert stored_bytes(s3_admin, bucket, "rel/") == stored_before - done.saved
    keys = list_keys(s3_admin, bucket, "rel/")
    assert any(reference_generation(k) > 0 for k in keys)
    assert sorted(k for k in keys if k.endswith(".delta")) == sorted(
        f"rel/app-1.0.{n}.zip.delta" for n in range(COUNT)
    )
    await assert_reads_back(plain, bucket, "rel", versions, tmp_path / "out")
    # Listings still show the files, never the new references.
    listed = await plain.list_objects(Bucket=bucket, Prefix="rel/")
    assert [o["Key"] for o in listed["Contents"]] == [f"rel/app-1.0.{n}.zip" for n in range(COUNT)]

    # Converged: a second run finds nothing better.
    again = await plain.rebase(f"s3://{bucket}/rel/")
    assert again.reencoded == 0
    assert again.saved == 0
    assert list_keys(s3_admin, bucket, "rel/") == keys


async def test_new_uploads_after_a_repair_use_the_newest_reference(
    s3_server: LocalS3, plain: AsyncDeltaGliderClient, bucket: str, tmp_path: Path
) -> None:
    versions = drifting_series(COUNT + 1)
    await upload_drifted(plain, bucket, "rel", tmp_path)
    await plain.rebase(f"s3://{bucket}/rel/")
    async with AsyncDeltaGliderClient(s3_server.config()) as client:
        path = tmp_path / f"app-1.0.{COUNT}.zip"
        path.write_bytes(versions[COUNT])
        await client.upload(path, f"s3://{bucket}/rel/")
        head = await client.head_object(Bucket=bucket, Key=f"rel/app-1.0.{COUNT}.zip")
        assert reference_generation(head["DeltaGlider"]["ReferenceKey"] or "") > 0
        await assert_reads_back(client, bucket, "rel", versions, tmp_path / "out")


async def test_recursive_repairs_every_directory_and_leaves_others_alone(
    plain: AsyncDeltaGliderClient, bucket: str, s3_admin: Any, tmp_path: Path
) -> None:
    a = await upload_drifted(plain, bucket, "rel/a", tmp_path, 6)
    b = await upload_drifted(plain, bucket, "rel/b", tmp_path, 6)
    other = await upload_drifted(plain, bucket, "other", tmp_path, 6)
    untouched = list_keys(s3_admin, bucket, "other/")
    only_rel = await plain.rebase(f"s3://{bucket}/rel", dry_run=True)
    assert only_rel.spaces == []  # not recursive: rel/ itself holds no delta
    report = await plain.rebase(f"s3://{bucket}/rel/", recursive=True)
    assert [s.prefix for s in report.spaces] == ["rel/a/", "rel/b/"]
    assert report.failed == []
    assert list_keys(s3_admin, bucket, "other/") == untouched
    await assert_reads_back(plain, bucket, "rel/a", a, tmp_path / "a")
    await assert_reads_back(plain, bucket, "rel/b", b, tmp_path / "b")
    await assert_reads_back(plain, bucket, "other", other, tmp_path / "o")


async def test_bad_arguments_are_refused_by_name(
    plain: AsyncDeltaGliderClient, bucket: str
) -> None:
    from deltaglider_async import (
        BucketNotFoundError,
        InvalidRatioError,
        InvalidURLError,
        NotFoundError,
    )

    with pytest.raises(InvalidURLError):
        await plain.rebase("not-a-url")
    with pytest.raises(InvalidRatioError, match="rebase_ratio"):
        await plain.rebase(f"s3://{bucket}/rel/", rebase_ratio=2)
    with pytest.raises(BucketNotFoundError):
        await plain.rebase("s3://no-such-bucket-for-rebase/rel/")
    # A directory that does not exist is no successful repair.
    with pytest.raises(NotFoundError, match="nothing under"):
        await plain.rebase(f"s3://{bucket}/no-such-dir/")
    with pytest.raises(NotFoundError):
        await plain.rebase(f"s3://{bucket}/no-such-dir/", recursive=True)


class _Killed(BaseException):
    """Stands for the process dying: nothing after it runs."""


async def test_killed_after_any_write_loses_nothing_and_a_rerun_completes(
    s3_server: LocalS3, bucket: str, s3_admin: Any, tmp_path: Path
) -> None:
    """The repair is stopped after its 1st, 2nd, ... write (PUT, COPY or DELETE): every
    version still reads back, and running it again ends where an uninterrupted run ends."""
    count = 7
    async with AsyncDeltaGliderClient(s3_server.config(rebase_ratio=1.0)) as client:
        versions = await upload_drifted(client, bucket, "whole", tmp_path, count)
        complete = await client.rebase(f"s3://{bucket}/whole/")
        final = stored_bytes(s3_admin, bucket, "whole/")
        writes = _count_writes(complete)
        assert writes >= 3
    for stop_after in range(1, writes + 1):
        prefix = f"k{stop_after}"
        async with AsyncDeltaGliderClient(s3_server.config(rebase_ratio=1.0)) as client:
            await upload_drifted(client, bucket, prefix, tmp_path, count)
            storage: Any = client.service.storage
            done = 0

            def counting(method: Any, stop_after: int = stop_after) -> Any:
                async def wrapper(*args: Any, **kwargs: Any) -> Any:
                    nonlocal done
                    if done >= stop_after:
                        raise _Killed
                    result = await method(*args, **kwargs)
                    done += 1
                    return result

                return wrapper

            originals = {n: getattr(storage, n) for n in ("put_file", "copy", "delete")}
            for name, method in originals.items():
                setattr(storage, name, counting(method))
            with pytest.raises(_Killed):
                await client.rebase(f"s3://{bucket}/{prefix}/")
            for name, method in originals.items():
                setattr(storage, name, method)
            await assert_reads_back(client, bucket, prefix, versions, tmp_path / f"o{stop_after}")
            resumed = await client.rebase(f"s3://{bucket}/{prefix}/")
            assert stored_bytes(s3_admin, bucket, f"{prefix}/") == final, stop_after
            # Its figures describe what is stored (a half-converted file counted once).
            assert resumed.stored_after == final, stop_after
            await assert_reads_back(client, bucket, prefix, versions, tmp_path / f"p{stop_after}")


def _count_writes(report: RebaseReport) -> int:
    """Writes of an uninterrupted repair: new references, replaced deltas, and at least
    one request per dropped reference."""
    [space] = report.spaces
    replaced = sum(1 for f in space.files if f.outcome in ("re-encoded", "new-reference"))
    return replaced + (space.references_after - space.references_before)


async def test_directory_stats_show_the_drift_and_its_repair(
    plain: AsyncDeltaGliderClient, bucket: str, s3_admin: Any, tmp_path: Path
) -> None:
    versions = await upload_drifted(plain, bucket, "rel", tmp_path)
    steady = drifting_series(2, seed=3)
    for n, data in enumerate([steady[0]] * 3):
        path = tmp_path / "steady" / f"app-{n}.zip"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        await plain.upload(path, f"s3://{bucket}/steady/")

    drifted, calm = await plain.get_directory_stats(bucket, mode="detailed")
    assert (drifted.prefix, calm.prefix) == ("rel/", "steady/")
    assert drifted.references == 1
    assert drifted.stored_bytes == stored_bytes(s3_admin, bucket, "rel/")
    assert drifted.original_bytes == sum(len(v) for v in versions)
    assert drifted.delta_objects + drifted.direct_objects == COUNT
    assert drifted.recent == 5
    # The newest deltas against the first file are large: the directory drifts.
    assert drifted.worst_recent_ratio is not None
    assert drifted.worst_recent_ratio > 0.3
    assert calm.worst_recent_ratio is not None
    assert calm.worst_recent_ratio < 0.01
    assert [d.prefix for d in await plain.get_directory_stats(bucket, "steady/")] == ["steady/"]

    await plain.rebase(f"s3://{bucket}/rel/")
    [repaired] = await plain.get_directory_stats(bucket, "rel/", mode="detailed")
    assert repaired.references > 1
    assert repaired.stored_bytes == stored_bytes(s3_admin, bucket, "rel/")
    assert repaired.stored_bytes < drifted.stored_bytes
    assert repaired.original_bytes == drifted.original_bytes
    assert repaired.worst_recent_ratio is not None
    assert repaired.worst_recent_ratio < drifted.worst_recent_ratio
    # The bucket's own figures count every reference as stored bytes.
    stats = await plain.get_bucket_stats(bucket, "detailed", use_cache=False)
    assert stats.compressed_size == stored_bytes(s3_admin, bucket, "")


async def test_a_user_directory_can_never_take_the_key_of_a_later_reference(
    plain: AsyncDeltaGliderClient, bucket: str, s3_admin: Any, tmp_path: Path
) -> None:
    """Files can't be stored under ``<dir>/.deltaglider/`` (where later references live):
    otherwise that directory's own reference.bin would be taken for one of ``<dir>``'s and
    dropped by ``rebase`` or ``rm`` as unneeded."""
    from deltaglider_async import ReservedKeyError

    versions = await upload_drifted(plain, bucket, "app", tmp_path, 3)
    nested = "app/.deltaglider/refs/00000001-0123456789abcdef"
    path = tmp_path / "app-9.zip"
    path.write_bytes(versions[0])
    before = list_keys(s3_admin, bucket)
    with pytest.raises(ReservedKeyError, match=r"\.deltaglider/"):
        await plain.upload(path, f"s3://{bucket}/{nested}/")
    with pytest.raises(ReservedKeyError):
        await plain.put_object(Bucket=bucket, Key=f"{nested}/x.zip", Body=versions[1])
    results = await plain.upload_many([path], f"s3://{bucket}/{nested}/")
    assert isinstance(results[0].error, ReservedKeyError)
    assert list_keys(s3_admin, bucket) == before
    await plain.rebase(f"s3://{bucket}/app/")
    await assert_reads_back(plain, bucket, "app", versions, tmp_path / "out")


async def test_recent_means_most_recently_written_not_last_by_name(
    plain: AsyncDeltaGliderClient, bucket: str, tmp_path: Path
) -> None:
    """Files written within one second (LastModified ties) are ordered by their write
    time: with ``recent=1`` the ratio is the last upload's, whatever its name."""
    versions = drifting_series(5, 64_000)
    names = ["z-0.zip", "y-1.zip", "x-2.zip", "w-3.zip", "a-4.zip"]  # last written sorts first
    ratios = {}
    for name, data in zip(names, versions, strict=True):
        path = tmp_path / name
        path.write_bytes(data)
        summary = await plain.upload(path, f"s3://{bucket}/rel/")
        ratios[name] = summary.delta_ratio
    [directory] = await plain.get_directory_stats(bucket, recent=1)
    assert directory.recent == 1
    assert directory.worst_recent_ratio == pytest.approx(ratios["a-4.zip"], abs=1e-3)
