"""The dg:// filesystem on both servers: logical names, original sizes, verified reads and
delta-compressed writes, through fsspec's own entry points."""

from __future__ import annotations

import asyncio
import pickle
import uuid
from pathlib import Path
from typing import Any

import anyio
import fsspec
import pytest
from fsspec.asyn import sync

from deltaglider import DeltaGliderClient
from deltaglider_async import (
    BucketNotEmptyError,
    ClientState,
    IntegrityError,
    InvalidArgumentError,
    InvalidRatioError,
    ReservedKeyError,
)
from deltaglider_async.filesystem import _CLOSING, DeltaGliderFile, DeltaGliderFileSystem
from deltaglider_async.testing import LocalS3
from tests.archives import make_zip_versions

from .conftest import corrupt, raw_keys, storage_options


@pytest.fixture
def releases(tmp_path: Path) -> list[Path]:
    """Three successive versions of a release zip (about 300 kB each)."""
    return make_zip_versions(tmp_path / "dist", 3, size=300_000)


@pytest.fixture
def uploaded(dg_client: DeltaGliderClient, bucket: str, releases: list[Path]) -> list[Path]:
    """The releases stored with ``upload()`` under ``rel/``: a reference and deltas."""
    for path in releases:
        dg_client.upload(path, f"s3://{bucket}/rel/")
    return releases


# ---------------------------------------------------------------------- construction


def test_the_dg_protocol_is_registered_through_the_entry_point() -> None:
    assert fsspec.get_filesystem_class("dg") is DeltaGliderFileSystem
    fs = fsspec.filesystem("dg", endpoint_url="http://127.0.0.1:9", skip_instance_cache=True)
    assert isinstance(fs, DeltaGliderFileSystem)
    assert fs.config.endpoint_url == "http://127.0.0.1:9"


def test_options_map_to_the_client_configuration() -> None:
    fs = DeltaGliderFileSystem(
        key="AK",
        secret="SK",
        token="ST",
        client_kwargs={"endpoint_url": "http://127.0.0.1:9", "region_name": "eu-west-3"},
        max_ratio=0.2,
        max_concurrency=3,
        skip_instance_cache=True,
    )
    config = fs.config
    assert (config.aws_access_key_id, config.aws_secret_access_key) == ("AK", "SK")
    assert config.aws_session_token == "ST"
    assert (config.endpoint_url, config.region_name) == ("http://127.0.0.1:9", "eu-west-3")
    assert (config.max_ratio, config.max_concurrency) == (0.2, 3)


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"anon": True}, "anon"),
        ({"client_kwargs": {"verify": False}}, "verify"),
        ({"key": "A", "client_kwargs": {"aws_access_key_id": "B"}}, "aws_access_key_id"),
        ({"endpoint_url": "http://a", "config_kwargs": {}}, "config_kwargs"),
    ],
)
def test_bad_options_are_refused_by_name(options: dict[str, Any], named: str) -> None:
    with pytest.raises(InvalidArgumentError, match=named):
        DeltaGliderFileSystem(skip_instance_cache=True, **options)


def test_a_ratio_outside_zero_one_is_refused() -> None:
    with pytest.raises(InvalidRatioError):
        DeltaGliderFileSystem(max_ratio=1.5, skip_instance_cache=True)


# ---------------------------------------------------------------------- listing


def test_listing_shows_logical_names_and_original_sizes(
    dg_fs: DeltaGliderFileSystem, bucket: str, uploaded: list[Path], s3_admin: Any
) -> None:
    stored = raw_keys(s3_admin, bucket)
    assert "rel/reference.bin" in stored
    assert f"rel/{uploaded[1].name}.delta" in stored

    names = [f"{bucket}/rel/{p.name}" for p in uploaded]
    listing = dg_fs.ls(f"{bucket}/rel", detail=True)
    assert [entry["name"] for entry in listing] == names
    assert [entry["size"] for entry in listing] == [p.stat().st_size for p in uploaded]
    assert all(entry["type"] == "file" for entry in listing)
    later = listing[2]
    assert later["IsDelta"] is True
    assert later["StoredSize"] == stored[f"rel/{uploaded[2].name}.delta"] < later["size"] // 10

    info = dg_fs.info(names[2])
    assert (info["type"], info["size"]) == ("file", uploaded[2].stat().st_size)
    assert info["StoredAs"] == "delta"
    assert dg_fs.info(f"{bucket}/rel") == {"name": f"{bucket}/rel", "size": 0, "type": "directory"}
    assert dg_fs.ls(bucket, detail=False) == [f"{bucket}/rel"]
    assert bucket in dg_fs.ls("", detail=False)
    assert dg_fs.ls(names[0], detail=False) == [names[0]]

    assert dg_fs.find(bucket) == names
    assert dg_fs.find(bucket, withdirs=True) == [bucket, f"{bucket}/rel", *names]
    assert dg_fs.find(f"{bucket}/rel", maxdepth=1, detail=True)[names[0]]["size"] == (
        uploaded[0].stat().st_size
    )
    assert dg_fs.glob(f"{bucket}/**/*1.zip") == [names[1]]
    assert dg_fs.glob(f"dg://{bucket}/rel/app-*") == names
    assert dg_fs.du(bucket) == sum(p.stat().st_size for p in uploaded)
    assert dg_fs.size(names[1]) == uploaded[1].stat().st_size
    assert dg_fs.modified(names[1]).tzinfo is not None

    # The stored forms are not names of this filesystem.
    assert not dg_fs.exists(f"{bucket}/rel/reference.bin")
    assert not dg_fs.exists(f"{bucket}/rel/{uploaded[1].name}.delta")
    with pytest.raises(FileNotFoundError):
        dg_fs.info(f"{bucket}/rel/missing.zip")
    with pytest.raises(FileNotFoundError):
        dg_fs.ls(f"{bucket}/nothing-here")


def test_a_listing_longer_than_one_page_is_complete(
    dg_fs: DeltaGliderFileSystem, bucket: str
) -> None:
    dg_fs.pipe({f"{bucket}/many/f{n:04d}.txt": b"x" * n for n in range(1, 1006)})
    assert len(dg_fs.ls(f"{bucket}/many", detail=False)) == 1005
    found = dg_fs.find(f"{bucket}/many", detail=True)
    assert len(found) == 1005
    assert found[f"{bucket}/many/f1005.txt"]["size"] == 1005


# ---------------------------------------------------------------------- reads


def test_reads_return_the_exact_bytes(
    dg_fs: DeltaGliderFileSystem, bucket: str, uploaded: list[Path], tmp_path: Path
) -> None:
    path = f"{bucket}/rel/{uploaded[2].name}"
    original = uploaded[2].read_bytes()

    assert dg_fs.cat(path) == original
    assert dg_fs.cat_file(path, start=100, end=600) == original[100:600]
    assert dg_fs.cat_file(path, start=-50) == original[-50:]
    assert dg_fs.cat_file(path, start=10, end=-10) == original[10:-10]
    assert dg_fs.cat_file(path, start=len(original) + 5) == b""
    assert dg_fs.read_block(path, 1000, 2000) == original[1000:3000]

    with dg_fs.open(path, "rb", block_size=4096) as f:
        assert isinstance(f, DeltaGliderFile)
        f.seek(-100, 2)
        assert f.read() == original[-100:]
        f.seek(5000)
        assert f.read(10_000) == original[5000:15_000]
        assert f.tell() == 15_000

    dg_fs.get(path, str(tmp_path / "out.zip"))
    assert (tmp_path / "out.zip").read_bytes() == original
    dg_fs.get(f"{bucket}/rel/", str(tmp_path / "mirror"), recursive=True)
    assert sorted(p.name for p in (tmp_path / "mirror").iterdir()) == [p.name for p in uploaded]


def test_open_reads_a_delta_with_one_reconstruction(
    dg_fs: DeltaGliderFileSystem,
    bucket: str,
    uploaded: list[Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = f"{bucket}/rel/{uploaded[1].name}"
    original = uploaded[1].read_bytes()
    fetched: list[str] = []
    fetch = dg_fs._read_into

    async def counting(path: str, target: Any, etag: str | None = None) -> None:
        fetched.append(path)
        await fetch(path, target, etag)

    monkeypatch.setattr(dg_fs, "_read_into", counting)
    with dg_fs.open(path, "rb", block_size=1024, cache_type="none") as f:
        parts = [f.read(1024) for _ in range(len(original) // 1024 + 1)]
    assert b"".join(parts) == original
    assert fetched == [path]


@pytest.mark.parametrize("stored_as", ["delta", "direct"])
def test_reads_refuse_corrupted_data(
    dg_fs: DeltaGliderFileSystem,
    dg_client: DeltaGliderClient,
    bucket: str,
    uploaded: list[Path],
    s3_admin: Any,
    tmp_path: Path,
    stored_as: str,
) -> None:
    if stored_as == "delta":
        path, key = f"{bucket}/rel/{uploaded[1].name}", f"rel/{uploaded[1].name}.delta"
    else:
        notes = tmp_path / "notes.txt"
        notes.write_bytes(b"release notes\n" * 1000)
        dg_client.upload(notes, f"s3://{bucket}/rel/")
        path, key = f"{bucket}/rel/notes.txt", "rel/notes.txt"
    corrupt(s3_admin, bucket, key)

    with pytest.raises(IntegrityError):
        dg_fs.cat(path)
    with pytest.raises(IntegrityError):
        dg_fs.cat_file(path, start=0, end=10)
    with pytest.raises(IntegrityError), dg_fs.open(path, "rb") as f:
        f.read(10)
    with pytest.raises(IntegrityError):
        dg_fs.get(path, str(tmp_path / "restored"))
    assert not (tmp_path / "restored").exists()


def test_reading_a_directory_or_a_missing_file_fails_clearly(
    dg_fs: DeltaGliderFileSystem, bucket: str, uploaded: list[Path]
) -> None:
    with pytest.raises(IsADirectoryError):
        dg_fs.open(f"{bucket}/rel", "rb")
    with pytest.raises(IsADirectoryError):
        dg_fs.cat_file(bucket)
    with pytest.raises(FileNotFoundError):
        dg_fs.cat(f"{bucket}/rel/missing.zip")
    with pytest.raises(FileNotFoundError):
        dg_fs.open(f"{bucket}/rel/missing.zip", "rb")


# ---------------------------------------------------------------------- writes


def test_writes_are_delta_compressed(
    dg_fs: DeltaGliderFileSystem, bucket: str, releases: list[Path], s3_admin: Any
) -> None:
    dg_fs.put(str(releases[0]), f"{bucket}/put/")
    dg_fs.pipe(f"{bucket}/put/{releases[1].name}", releases[1].read_bytes())
    with dg_fs.open(f"{bucket}/put/{releases[2].name}", "wb", block_size=64 * 1024) as f:
        data = releases[2].read_bytes()
        for start in range(0, len(data), 50_000):
            f.write(data[start : start + 50_000])

    stored = raw_keys(s3_admin, bucket)
    assert set(stored) == {"put/reference.bin", *(f"put/{p.name}.delta" for p in releases)}
    later = sum(stored[f"put/{p.name}.delta"] for p in releases[1:])
    assert later < sum(p.stat().st_size for p in releases[1:]) // 10
    for path in releases:
        assert dg_fs.cat(f"{bucket}/put/{path.name}") == path.read_bytes()


def test_max_ratio_option_applies_to_writes(
    s3_server: LocalS3, bucket: str, releases: list[Path], s3_admin: Any
) -> None:
    fs = DeltaGliderFileSystem(
        skip_instance_cache=True, max_ratio=0.0, **storage_options(s3_server)
    )
    try:
        for path in releases[:2]:  # one after the other: the first becomes the reference
            fs.put(str(path), f"{bucket}/strict/")
    finally:
        fs.close()
    stored = raw_keys(s3_admin, bucket)
    assert f"strict/{releases[1].name}" in stored
    assert f"strict/{releases[1].name}.delta" not in stored


def test_create_mode_refuses_an_existing_file(dg_fs: DeltaGliderFileSystem, bucket: str) -> None:
    path = f"{bucket}/notes.txt"
    dg_fs.pipe_file(path, b"first", mode="create")
    with pytest.raises(FileExistsError):
        dg_fs.pipe_file(path, b"second", mode="create")
    with pytest.raises(FileExistsError), dg_fs.open(path, "xb") as f:
        f.write(b"third")
    assert dg_fs.cat(path) == b"first"


def test_append_extends_the_verified_content(dg_fs: DeltaGliderFileSystem, bucket: str) -> None:
    path = f"{bucket}/log.txt"
    dg_fs.pipe(path, b"one\n")
    with dg_fs.open(path, "ab") as f:
        f.write(b"two\n")
    assert dg_fs.cat(path) == b"one\ntwo\n"


def test_a_transaction_stores_its_files_when_it_ends(
    dg_fs: DeltaGliderFileSystem, bucket: str
) -> None:
    with dg_fs.transaction:
        with dg_fs.open(f"{bucket}/tx/a.txt", "wb") as f:
            f.write(b"in a transaction")
        assert not dg_fs.exists(f"{bucket}/tx/a.txt")
    assert dg_fs.cat(f"{bucket}/tx/a.txt") == b"in a transaction"


def test_text_mode_and_put_object_options(dg_fs: DeltaGliderFileSystem, bucket: str) -> None:
    with dg_fs.open(f"{bucket}/doc/readme.md", "w", ContentType="text/markdown") as f:
        f.write("# héllo\n")
    with dg_fs.open(f"{bucket}/doc/readme.md", "r", encoding="utf-8") as f:
        assert f.read() == "# héllo\n"
    assert dg_fs.info(f"{bucket}/doc/readme.md")["ContentType"] == "text/markdown"
    with pytest.raises(InvalidArgumentError, match="NotAParameter"):
        dg_fs.pipe(f"{bucket}/doc/x.txt", b"x", NotAParameter=1)
    assert not dg_fs.exists(f"{bucket}/doc/x.txt")


def test_reserved_names_are_refused_and_nothing_is_written(
    dg_fs: DeltaGliderFileSystem, bucket: str, s3_admin: Any
) -> None:
    for name in ("rel/reference.bin", "rel/app.zip.delta"):
        with pytest.raises(ReservedKeyError):
            dg_fs.pipe(f"{bucket}/{name}", b"data")
    with pytest.raises(IsADirectoryError):
        dg_fs.pipe(bucket, b"data")
    assert raw_keys(s3_admin, bucket) == {}


def test_copy_within_the_filesystem_reconstructs_and_compresses(
    dg_fs: DeltaGliderFileSystem, bucket: str, uploaded: list[Path], s3_admin: Any
) -> None:
    dg_fs.cp(f"{bucket}/rel/", f"{bucket}/mirror/", recursive=True)

    stored = raw_keys(s3_admin, bucket)
    assert "mirror/reference.bin" in stored
    assert all(f"mirror/{p.name}.delta" in stored for p in uploaded)
    for path in uploaded:
        assert dg_fs.cat(f"{bucket}/mirror/{path.name}") == path.read_bytes()


# ---------------------------------------------------------------------- removal, buckets


def test_rm_takes_references_with_the_last_delta(
    dg_fs: DeltaGliderFileSystem, bucket: str, uploaded: list[Path], s3_admin: Any
) -> None:
    dg_fs.rm(f"{bucket}/rel/{uploaded[0].name}")
    assert "rel/reference.bin" in raw_keys(s3_admin, bucket)
    assert not dg_fs.exists(f"{bucket}/rel/{uploaded[0].name}")
    with pytest.raises(FileNotFoundError):
        dg_fs.rm_file(f"{bucket}/rel/{uploaded[0].name}")

    dg_fs.rm(f"{bucket}/rel", recursive=True)
    assert raw_keys(s3_admin, bucket) == {}
    assert not dg_fs.exists(f"{bucket}/rel")


def test_buckets_are_the_directories_mkdir_and_rmdir_make(
    dg_fs: DeltaGliderFileSystem, s3_admin: Any
) -> None:
    name = f"fs-{uuid.uuid4().hex[:12]}"
    dg_fs.mkdir(name)
    try:
        assert dg_fs.isdir(name)
        assert name in dg_fs.ls("", detail=False)
        with pytest.raises(FileExistsError):
            dg_fs.makedirs(name)
        dg_fs.makedirs(f"{name}/a/b", exist_ok=False)  # nothing to store: S3 has no empty dirs
        assert not dg_fs.exists(f"{name}/a")

        dg_fs.pipe(f"{name}/a/b/file.txt", b"data")
        with pytest.raises(BucketNotEmptyError):
            dg_fs.rmdir(name)
        with pytest.raises(OSError, match="not empty"):
            dg_fs.rmdir(f"{name}/a")
        dg_fs.rm(f"{name}/a", recursive=True)
        with pytest.raises(FileNotFoundError):
            dg_fs.rmdir(f"{name}/a")
        dg_fs.rmdir(name)
        assert not dg_fs.exists(name)
    finally:
        if name in {b["Name"] for b in s3_admin.list_buckets()["Buckets"]}:
            dg_fs.rm(name, recursive=True)
    with pytest.raises(FileNotFoundError):
        dg_fs.rmdir(name)


# ---------------------------------------------------------------------- clients and loops


async def test_coroutines_on_the_callers_loop(s3_server: LocalS3, bucket: str) -> None:
    fs = DeltaGliderFileSystem(
        asynchronous=True, skip_instance_cache=True, **storage_options(s3_server)
    )
    try:
        await fs._pipe_file(f"{bucket}/async/a.txt", b"alpha")
        assert await fs._cat_file(f"{bucket}/async/a.txt") == b"alpha"
        assert await fs._ls(f"{bucket}/async", detail=False) == [f"{bucket}/async/a.txt"]
        first = await fs._client()
        assert await fs._client() is first
        with pytest.raises(NotImplementedError, match="asynchronous"):
            fs.open(f"{bucket}/async/a.txt", "rb")
    finally:
        await fs.aclose()
    assert first.state is ClientState.CLOSED


def test_a_pickled_filesystem_reads_the_same_store(
    dg_fs: DeltaGliderFileSystem, bucket: str
) -> None:
    dg_fs.pipe(f"{bucket}/p.txt", b"pickled")
    copy = pickle.loads(pickle.dumps(dg_fs))
    try:
        assert copy.cat(f"{bucket}/p.txt") == b"pickled"
    finally:
        copy.close()


def test_close_releases_the_client_and_a_later_call_opens_another(
    dg_fs: DeltaGliderFileSystem, bucket: str
) -> None:
    dg_fs.pipe(f"{bucket}/c.txt", b"one")
    dg_fs.close()
    assert dg_fs.cat(f"{bucket}/c.txt") == b"one"


def test_closing_from_the_clients_own_loop_thread_still_closes_it(
    dg_fs: DeltaGliderFileSystem, bucket: str
) -> None:
    # A filesystem may be garbage-collected on fsspec's IO thread, where its finalizer
    # cannot wait for the loop it runs on.
    dg_fs.pipe(f"{bucket}/x.txt", b"x")
    client = sync(dg_fs.loop, dg_fs._client)

    async def close_on_the_loop() -> None:
        dg_fs._clients.close_all()
        scheduled = list(_CLOSING)
        assert len(scheduled) == 1
        with anyio.fail_after(30):
            await asyncio.gather(*scheduled)

    sync(dg_fs.loop, close_on_the_loop)
    assert client.state is ClientState.CLOSED
