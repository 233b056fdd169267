"""upload_many / download_many (SPEC §8): a bounded pool, per-item results, one reference per space.

Against moto and SeaweedFS with the real xdelta3.
"""

from __future__ import annotations

import random
import tempfile
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest

from deltaglider_async import (
    AsyncDeltaGliderClient,
    BucketNotFoundError,
    DeltaGliderConfig,
    InvalidArgumentError,
    InvalidRatioError,
    InvalidURLError,
    NotFoundError,
    ObjectNotFoundError,
    ReservedKeyError,
)
from deltaglider_async.adapters.reference_cache import EncryptedReferenceCache
from deltaglider_async.core.bulk import ItemResult, Progress
from deltaglider_async.core.keys import reference_generation, reference_space_prefix
from tests.archives import make_zip_versions

from .support import MIB, child_processes, files_under, list_keys, open_uploads

SPACES = ("alpha", "beta", "gamma")
VERSIONS = 10


@pytest.fixture
async def client(s3_config: DeltaGliderConfig) -> AsyncIterator[AsyncDeltaGliderClient]:
    """An opened client on ``s3_server``."""
    async with AsyncDeltaGliderClient(s3_config) as opened:
        yield opened


@pytest.fixture
def releases(tmp_path: Path) -> list[tuple[Path, str]]:
    """30 small release zips, 10 successive versions in each of 3 deltaspaces.

    Given in interleaved order (alpha 0, beta 0, gamma 0, alpha 1, ...), as
    ``(path, "<space>/<file name>")`` pairs.
    """
    per_space = {
        space: make_zip_versions(tmp_path / space, VERSIONS, size=24_000, seed=n, package=space)
        for n, space in enumerate(SPACES)
    }
    return [
        (per_space[s][v], f"{s}/{per_space[s][v].name}") for v in range(VERSIONS) for s in SPACES
    ]


def references(keys: dict[str, str]) -> Counter[str]:
    """Number of first ``reference.bin`` objects per deltaspace prefix."""
    return Counter(
        reference_space_prefix(k)
        for k in keys
        if k.rpartition("/")[2] == "reference.bin" and reference_generation(k) == 0
    )


def generations(keys: dict[str, str]) -> Counter[tuple[str, int]]:
    """Number of references per (deltaspace prefix, generation)."""
    return Counter(
        (reference_space_prefix(k), reference_generation(k))
        for k in keys
        if k.rpartition("/")[2] == "reference.bin"
    )


async def test_upload_many_one_reference_per_space_and_exact_round_trip(
    client: AsyncDeltaGliderClient,
    bucket: str,
    s3_admin: Any,
    releases: list[tuple[Path, str]],
    tmp_path: Path,
) -> None:
    events: list[Progress] = []

    results = await client.upload_many(
        releases, f"s3://{bucket}/rel/", max_concurrency=8, progress=events.append
    )

    # One result per input, in input order, all successful.
    assert [r.source for r in results] == [str(p) for p, _ in releases]
    assert [r.destination for r in results] == [f"s3://{bucket}/rel/{k}" for _, k in releases]
    assert all(r.ok for r in results), [r.error for r in results if not r.ok]
    keys = list_keys(s3_admin, bucket)
    assert references(keys) == {f"rel/{space}": 1 for space in SPACES}
    # Re-baselining (on by default) may add later references to these fast-drifting
    # series, but concurrent uploads of one client never store two of one generation:
    # one writer decides, the others encode against its reference.
    assert set(generations(keys).values()) == {1}
    # The first file of each space became its reference; the others are deltas against it.
    operations = {space: [] for space in SPACES}  # type: dict[str, list[str]]
    for result, (_, relative) in zip(results, releases, strict=True):
        assert result.value is not None
        operations[relative.partition("/")[0]].append(result.value.action)
    later = generations(keys)
    for space in SPACES:
        assert operations[space][0] == "create_reference"
        # A file that became a later reference reports it; every other one is a delta.
        rebased = sum(n for (prefix, gen), n in later.items() if prefix == f"rel/{space}" and gen)
        assert operations[space][1:].count("create_reference") == rebased
        assert set(operations[space][1:]) <= {"create_delta", "create_reference"}
    assert sum(1 for k in keys if k.endswith(".delta")) == len(releases)
    # The progress callback ran once per item.
    assert len(events) == len(releases)
    assert [e.done for e in events] == list(range(1, len(releases) + 1))
    assert {e.total for e in events} == {len(releases)}
    assert sorted(e.source for e in events) == sorted(str(p) for p, _ in releases)
    assert all(e.ok for e in events)
    assert sum(e.bytes for e in events) == sum(p.stat().st_size for p, _ in releases)

    downloads = await client.download_many(
        [(f"s3://{bucket}/rel/{k}", k) for _, k in releases],
        tmp_path / "out",
        max_concurrency=8,
    )
    assert all(r.ok for r in downloads), [r.error for r in downloads if not r.ok]
    assert [r.destination for r in downloads] == [str(tmp_path / "out" / k) for _, k in releases]
    for (path, relative), got in zip(releases, downloads, strict=True):
        assert (tmp_path / "out" / relative).read_bytes() == path.read_bytes()
        assert got.value is not None
        assert got.value.size == path.stat().st_size


async def test_bad_items_are_reported_and_the_others_succeed(
    client: AsyncDeltaGliderClient, bucket: str, s3_admin: Any, tmp_path: Path
) -> None:
    good = make_zip_versions(tmp_path / "src", 3, size=8_000, seed=3)
    missing = tmp_path / "src" / "missing.zip"
    calls: list[Progress] = []

    def broken_progress(event: Progress) -> None:
        calls.append(event)
        raise RuntimeError("a broken progress bar")

    items: list[Any] = [good[0], missing, (good[1], "sub/reference.bin"), good[1], good[2]]
    results = await client.upload_many(
        items, f"s3://{bucket}/app", max_concurrency=4, progress=broken_progress
    )

    assert [r.ok for r in results] == [True, False, False, True, True]
    assert isinstance(results[1].error, NotFoundError)
    assert str(missing) in str(results[1].error)
    assert isinstance(results[2].error, ReservedKeyError)
    assert len(calls) == len(items)
    assert set(list_keys(s3_admin, bucket)) == {
        "app/reference.bin",
        *(f"app/{p.name}.delta" for p in good),
    }
    # download_many: a missing object, a bad URL, a path leaving the destination and a
    # duplicate destination are item errors; the rest is written.
    got = await client.download_many(
        [
            f"s3://{bucket}/app/{good[0].name}",
            f"s3://{bucket}/app/nope.zip",
            "not-a-url",
            (f"s3://{bucket}/app/{good[1].name}", "../escape.zip"),
            (f"s3://{bucket}/app/{good[2].name}.delta", "nested/dir/two.zip"),
            (f"s3://{bucket}/app/{good[1].name}", good[0].name),
        ],
        tmp_path / "dest",
    )
    assert [r.ok for r in got] == [True, False, False, False, True, False]
    assert isinstance(got[1].error, ObjectNotFoundError)
    assert isinstance(got[2].error, InvalidURLError)
    assert isinstance(got[3].error, InvalidArgumentError)
    assert isinstance(got[5].error, InvalidArgumentError)
    assert (tmp_path / "dest" / good[0].name).read_bytes() == good[0].read_bytes()
    assert (tmp_path / "dest" / "nested/dir/two.zip").read_bytes() == good[2].read_bytes()
    assert not (tmp_path / "escape.zip").exists()
    assert sorted(p.name for p in files_under(tmp_path / "dest")) == sorted(
        [good[0].name, "two.zip"]
    )


async def test_arguments_of_the_whole_call_raise(
    client: AsyncDeltaGliderClient, bucket: str, tmp_path: Path
) -> None:
    path = tmp_path / "a.txt"
    path.write_bytes(b"a")
    with pytest.raises(InvalidURLError):
        await client.upload_many([path], "bucket/no-scheme")
    with pytest.raises(InvalidRatioError):
        await client.upload_many([path], f"s3://{bucket}/", max_ratio=2)
    with pytest.raises(InvalidArgumentError):
        await client.upload_many([path], f"s3://{bucket}/", max_concurrency=0)
    with pytest.raises(InvalidArgumentError):
        await client.upload_many([42], f"s3://{bucket}/")  # type: ignore[list-item]
    with pytest.raises(BucketNotFoundError):
        await client.upload_many([path], f"s3://{bucket}-missing/")
    assert await client.upload_many([], f"s3://{bucket}/") == []
    assert await client.download_many([], tmp_path / "none") == []


async def test_items_never_wait_for_another_space(
    client: AsyncDeltaGliderClient,
    bucket: str,
    releases: list[tuple[Path, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """While alpha's reference is stuck, every beta and gamma file is uploaded.

    With 2 workers, alpha's other files must not take a worker while they wait for the
    reference: otherwise both workers would wait on alpha and nothing would progress.
    """
    storage = client.service.storage
    real_put = storage.put_file
    release = anyio.Event()
    stuck = anyio.Event()

    async def put_file(bucket_: str, key: str, src: Path, **kwargs: Any) -> Any:
        if key == "rel/alpha/reference.bin":
            stuck.set()
            await release.wait()
        return await real_put(bucket_, key, src, **kwargs)

    monkeypatch.setattr(storage, "put_file", put_file)
    others = {str(p) for p, k in releases if not k.startswith("alpha/")}
    finished: set[str] = set()

    def progress(event: Progress) -> None:
        finished.add(event.source)

    results: list[ItemResult[Any]] = []

    async def run() -> None:
        results.extend(
            await client.upload_many(
                releases, f"s3://{bucket}/rel", max_concurrency=2, progress=progress
            )
        )

    async with anyio.create_task_group() as tg:
        tg.start_soon(run)
        with anyio.fail_after(60):
            await stuck.wait()
            while not others <= finished:  # noqa: ASYNC110  (progress is a plain callback)
                await anyio.sleep(0.01)
        # Nothing of alpha finished while its reference was stuck.
        assert not any(k.startswith("alpha/") for p, k in releases if str(p) in finished)
        release.set()
    assert all(r.ok for r in results), [r.error for r in results if not r.ok]


async def test_cancelled_upload_many_leaves_nothing_behind(
    s3_config: DeltaGliderConfig,
    bucket: str,
    s3_admin: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    temp_root = tmp_path / "system-tmp"
    temp_root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp_root))
    rng = random.Random(7)
    files = []
    for space in ("one", "two"):
        data = bytearray(rng.randbytes(12 * MIB))
        for version in range(3):
            data[version * MIB : version * MIB + 64] = rng.randbytes(64)
            path = tmp_path / space / f"big-{version}.zip"
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(data)
            files.append((path, f"{space}/{path.name}"))
    config = s3_config.with_changes(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB)

    async with AsyncDeltaGliderClient(config) as client:
        cache = client.service.cache
        assert isinstance(cache, EncryptedReferenceCache)
        scope = anyio.CancelScope()
        finished = False

        async def run() -> None:
            nonlocal finished
            with scope:
                await client.upload_many(files, f"s3://{bucket}/big/", max_concurrency=4)
                finished = True

        async def under_way() -> bool:
            if child_processes("xdelta3"):
                return True
            return bool(await anyio.to_thread.run_sync(open_uploads, s3_admin, bucket))

        async with anyio.create_task_group() as tg:
            tg.start_soon(run)
            with anyio.fail_after(60):
                while not finished and not await under_way():  # noqa: ASYNC110
                    await anyio.sleep(0.005)
            scope.cancel()
        assert not finished, "the upload completed before it could be cancelled"
        assert scope.cancelled_caught

        assert child_processes("xdelta3") == []
        assert open_uploads(s3_admin, bucket) == []
        cache_dir = cache.directory
        leftovers = [
            p for p in files_under(temp_root) if cache_dir is None or cache_dir not in p.parents
        ]
        assert leftovers == []
        keys = list_keys(s3_admin, bucket)
        for key in keys:
            if key.endswith(".delta"):
                assert f"{key.rpartition('/')[0]}/reference.bin" in keys, key
        # The client still works, and a rerun completes the job.
        results = await client.upload_many(files, f"s3://{bucket}/big/", max_concurrency=4)
        assert all(r.ok for r in results), [r.error for r in results if not r.ok]
        out = await client.download_many(
            [(f"s3://{bucket}/big/{k}", k) for _, k in files], tmp_path / "out"
        )
        assert all(r.ok for r in out)
        for path, relative in files:
            assert (tmp_path / "out" / relative).read_bytes() == path.read_bytes()
    assert files_under(temp_root) == []


async def test_async_progress_callback_is_awaited(
    client: AsyncDeltaGliderClient, bucket: str, tmp_path: Path
) -> None:
    paths = []
    for n in range(5):
        path = tmp_path / f"note-{n}.txt"
        path.write_bytes(b"note %d\n" % n)
        paths.append(path)
    seen: list[int] = []

    async def progress(event: Progress) -> None:
        await anyio.sleep(0.001)
        seen.append(event.done)

    results = await client.upload_many(paths, f"s3://{bucket}/notes/", progress=progress)

    assert all(r.ok for r in results)
    assert sorted(seen) == [1, 2, 3, 4, 5]
    assert [r.value.action for r in results if r.value] == ["upload_direct"] * 5
