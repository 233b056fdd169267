"""Byte-exact round trips through a real S3 server and xdelta3, and the stored format (SPEC §2)."""

from __future__ import annotations

import gzip
import lzma
import random
import re
import tarfile
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio
import pytest

from deltaglider_async._models import DeltaSpace, ObjectKey, StoredAs
from deltaglider_async.core.service import AsyncDeltaService
from tests.archives import ARCHIVE_FORMATS, make_versions

from .conftest import BundleFactory
from .support import (
    ZERO_DIFF_NOTE,
    head_metadata,
    key_of,
    list_keys,
    md5_bytes,
    read_object,
    sha256_bytes,
    sha256_file,
)

#: Formats whose files start with a signature xdelta3 decompresses (gzip, xz).
COMPRESSED_FORMATS = ("tar.gz", "gz", "xz")
CREATED_AT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
COMMON_KEYS = {"dg-tool", "dg-file-sha256", "dg-file-size", "dg-md5", "dg-created-at"}
REFERENCE_KEYS = COMMON_KEYS | {"dg-source-name", "dg-note"}
DELTA_KEYS = COMMON_KEYS | {
    "dg-original-name",
    "dg-ref-key",
    "dg-ref-path",
    "dg-ref-sha256",
    "dg-delta-size",
    "dg-delta-cmd",
}
DIRECT_KEYS = COMMON_KEYS | {"dg-original-name", "dg-note", "dg-compression"}


async def read_back(service: AsyncDeltaService, key: ObjectKey, out: Path) -> bytes:
    """Get ``key`` into ``out`` and return the bytes written."""
    await service.get(key, out)
    return await anyio.Path(out).read_bytes()


@pytest.mark.parametrize("fmt", ARCHIVE_FORMATS)
async def test_archive_versions_round_trip(
    service: AsyncDeltaService,
    make_bundle: BundleFactory,
    bucket: str,
    s3_admin: Any,
    tmp_path: Path,
    fmt: str,
) -> None:
    paths = make_versions(tmp_path / "src", 3, fmt, seed=11)
    space = DeltaSpace(bucket, f"releases/{fmt}")
    if fmt in COMPRESSED_FORMATS:
        # By default these are stored direct (6.x could not decode deltas against them);
        # the opt-in stores them as deltas only this package reads, byte-exactly.
        service = make_bundle(compressed_references=True).service

    summaries = [await service.put(path, space) for path in paths]

    assert [s.action for s in summaries] == ["create_reference", "create_delta", "create_delta"]
    for path, summary in zip(paths, summaries, strict=True):
        assert summary.key == f"releases/{fmt}/{path.name}.delta"
        assert summary.logical_key == f"releases/{fmt}/{path.name}"
        assert summary.file_sha256 == sha256_file(path)
        assert summary.file_size == path.stat().st_size
    for summary in summaries[1:]:
        # Similar versions must cost a small fraction of a full copy.
        assert summary.delta_size is not None
        assert summary.delta_size < summary.file_size * 0.25, summary
    assert set(list_keys(s3_admin, bucket)) == {
        f"releases/{fmt}/reference.bin",
        *(s.key for s in summaries),
    }

    # A fresh client (cold reference cache) reads every version back from the bucket alone,
    # by the name the user stored and by the stored .delta name.
    reader = make_bundle().service
    for path, summary in zip(paths, summaries, strict=True):
        expected = path.read_bytes()
        logical = ObjectKey(bucket, summary.logical_key)
        got = await reader.get(logical, tmp_path / "out-logical")
        assert (tmp_path / "out-logical").read_bytes() == expected
        assert got.sha256 == sha256_bytes(expected)
        assert got.stored_as is StoredAs.DELTA
        by_delta = await read_back(reader, ObjectKey(bucket, summary.key), tmp_path / "out-d")
        assert by_delta == expected
        assert (await reader.verify(logical)).valid


@pytest.mark.parametrize("fmt", COMPRESSED_FORMATS)
async def test_compressed_files_are_stored_direct_unless_allowed(
    service: AsyncDeltaService, bucket: str, s3_admin: Any, tmp_path: Path, fmt: str
) -> None:
    # xdelta3 without -D (as 6.x decodes) decompresses a gzip/xz/bzip2 reference: such a
    # file never becomes a reference by default, so 6.x can read every delta written.
    paths = make_versions(tmp_path / "src", 2, fmt, seed=5)
    space = DeltaSpace(bucket, f"pkgs/{fmt}")
    summaries = [await service.put(path, space) for path in paths]
    assert [s.action for s in summaries] == ["upload_direct", "upload_direct"]
    assert f"pkgs/{fmt}/reference.bin" not in list_keys(s3_admin, bucket)
    for path in paths:
        key = ObjectKey(bucket, f"pkgs/{fmt}/{path.name}")
        assert await read_back(service, key, tmp_path / "o") == path.read_bytes()


async def test_first_upload_writes_reference_and_zero_diff_delta(
    service: AsyncDeltaService, bucket: str, s3_admin: Any, tmp_path: Path
) -> None:
    first, second = make_versions(tmp_path, 2, "zip", seed=3)
    space = DeltaSpace(bucket, "releases/app")

    summary = await service.put(first, space)

    assert summary.action == "create_reference"
    assert summary.stored_as is StoredAs.DELTA
    assert set(list_keys(s3_admin, bucket)) == {
        "releases/app/reference.bin",
        "releases/app/app-1.0.0.zip.delta",
    }
    assert read_object(s3_admin, bucket, "releases/app/reference.bin") == first.read_bytes()
    zero = head_metadata(s3_admin, bucket, "releases/app/app-1.0.0.zip.delta")
    assert zero["dg-note"] == ZERO_DIFF_NOTE
    assert zero["dg-ref-sha256"] == zero["dg-file-sha256"] == sha256_file(first)

    later = await service.put(second, space)

    assert later.action == "create_delta"
    delta_meta = head_metadata(s3_admin, bucket, "releases/app/app-1.0.1.zip.delta")
    assert "dg-note" not in delta_meta
    assert delta_meta["dg-ref-sha256"] == sha256_file(first)


async def test_metadata_written_exactly_per_spec(
    service: AsyncDeltaService, bucket: str, s3_admin: Any, tmp_path: Path
) -> None:
    first, second = make_versions(tmp_path, 2, "zip", seed=5)
    notes = tmp_path / "notes.txt"
    notes.write_bytes(b"release notes\n" * 20)
    space = DeltaSpace(bucket, "builds/app")
    user = {"Build": "42", "commit": "abc123"}

    ref_summary = await service.put(first, space, metadata=user, content_type="application/zip")
    delta_summary = await service.put(second, space, metadata=user, content_type="application/zip")
    direct_summary = await service.put(notes, space, metadata=user, content_type="text/plain")

    assert direct_summary.action == "upload_direct"
    assert set(list_keys(s3_admin, bucket)) == {
        "builds/app/reference.bin",
        "builds/app/app-1.0.0.zip.delta",
        "builds/app/app-1.0.1.zip.delta",
        "builds/app/notes.txt",
    }
    tool = service.tool_version
    assert tool.startswith("deltaglider-async/")
    user_keys = {"user-build", "user-commit"}

    ref = head_metadata(s3_admin, bucket, "builds/app/reference.bin")
    assert set(ref) == REFERENCE_KEYS
    assert ref["dg-note"] == "reference"
    assert ref["dg-source-name"] == first.name
    assert_common(ref, tool, first.read_bytes())

    for path, summary in ((first, ref_summary), (second, delta_summary)):
        head = s3_admin.head_object(Bucket=bucket, Key=summary.key)
        meta = head["Metadata"]
        zero_diff = path == first
        assert set(meta) == DELTA_KEYS | user_keys | ({"dg-note"} if zero_diff else set())
        assert_common(meta, tool, path.read_bytes())
        assert meta["dg-original-name"] == path.name
        assert meta["dg-ref-key"] == "builds/app/reference.bin"
        assert meta["dg-ref-path"] == "reference.bin"
        assert meta["dg-ref-sha256"] == sha256_file(first)
        assert meta["dg-delta-size"] == str(head["ContentLength"])
        assert summary.delta_size == head["ContentLength"]
        assert meta["dg-delta-cmd"].startswith("xdelta3 -e")
        assert " -s reference.bin " in meta["dg-delta-cmd"]
        assert meta["dg-delta-cmd"].endswith(f"{path.name} {path.name}.delta")
        assert meta["user-build"] == "42"
        assert meta["user-commit"] == "abc123"
        assert head["ContentType"] == "application/zip"

    head = s3_admin.head_object(Bucket=bucket, Key="builds/app/notes.txt")
    direct = head["Metadata"]
    assert set(direct) == DIRECT_KEYS | user_keys
    assert_common(direct, tool, notes.read_bytes())
    assert direct["dg-original-name"] == "notes.txt"
    assert direct["dg-note"] == "passthrough"
    assert direct["dg-compression"] == "none"
    assert direct["user-build"] == "42"
    assert head["ContentType"] == "text/plain"
    assert head["ContentLength"] == notes.stat().st_size


def assert_common(meta: dict[str, str], tool: str, original: bytes) -> None:
    """The keys every stored object carries, checked against the original bytes."""
    assert meta["dg-tool"] == tool
    assert meta["dg-file-sha256"] == sha256_bytes(original)
    assert meta["dg-file-size"] == str(len(original))
    assert meta["dg-md5"] == md5_bytes(original)
    assert CREATED_AT.match(meta["dg-created-at"]), meta["dg-created-at"]
    assert all(value.isascii() for value in meta.values())


async def test_non_ascii_names_round_trip(
    service: AsyncDeltaService,
    make_bundle: BundleFactory,
    bucket: str,
    s3_admin: Any,
    tmp_path: Path,
) -> None:
    names = ["версия-1.zip", "версия-2.zip"]
    paths = make_versions(tmp_path / "src", 2, "zip", seed=9, names=names)
    notes = tmp_path / "src" / "заметки.txt"
    notes.write_bytes("примечания к выпуску\n".encode() * 10)
    space = DeltaSpace(bucket, "релизы/app")

    summaries = [await service.put(path, space) for path in [*paths, notes]]

    assert [s.action for s in summaries] == [
        "create_reference",
        "create_delta",
        "upload_direct",
    ]
    assert set(list_keys(s3_admin, bucket)) == {
        "релизы/app/reference.bin",
        "релизы/app/версия-1.zip.delta",
        "релизы/app/версия-2.zip.delta",
        "релизы/app/заметки.txt",
    }
    ref = head_metadata(s3_admin, bucket, "релизы/app/reference.bin")
    assert ref["dg-source-name"] == quote("версия-1.zip")
    for name, key in (
        ("версия-2.zip", "релизы/app/версия-2.zip.delta"),
        ("заметки.txt", "релизы/app/заметки.txt"),
    ):
        meta = head_metadata(s3_admin, bucket, key)
        assert meta["dg-original-name"] == quote(name)
        assert meta["dg-original-name"].isascii()

    reader = make_bundle().service
    for path in [*paths, notes]:
        out = tmp_path / "out" / path.name
        out.parent.mkdir(exist_ok=True)
        assert await read_back(reader, key_of(space, path.name), out) == path.read_bytes()
    delta_name = ObjectKey(bucket, "релизы/app/версия-2.zip.delta")
    assert await read_back(reader, delta_name, tmp_path / "d") == paths[1].read_bytes()


async def test_empty_files_round_trip(
    service: AsyncDeltaService, bucket: str, s3_admin: Any, tmp_path: Path
) -> None:
    space = DeltaSpace(bucket, "empty")
    paths = []
    for name in ("empty-1.zip", "empty-2.tar", "empty.txt"):
        path = tmp_path / name
        path.write_bytes(b"")
        paths.append(path)

    summaries = [await service.put(path, space) for path in paths]

    # Nothing to delta an empty file against: each is stored as it is.
    assert [s.action for s in summaries] == ["upload_direct"] * 3
    assert set(list_keys(s3_admin, bucket)) == {
        "empty/empty-1.zip",
        "empty/empty-2.tar",
        "empty/empty.txt",
    }
    for path in paths:
        meta = head_metadata(s3_admin, bucket, f"empty/{path.name}")
        assert meta["dg-file-size"] == "0"
        assert meta["dg-file-sha256"] == sha256_bytes(b"")
        out = tmp_path / "out"
        out.write_bytes(b"sentinel")
        got = await service.get(key_of(space, path.name), out)
        assert out.read_bytes() == b""
        assert got.size == 0
        assert (await service.verify(key_of(space, path.name))).valid


async def test_one_byte_files_round_trip(
    service: AsyncDeltaService,
    make_bundle: BundleFactory,
    bucket: str,
    s3_admin: Any,
    tmp_path: Path,
) -> None:
    space = DeltaSpace(bucket, "tiny")
    first, second = tmp_path / "tiny-1.zip", tmp_path / "tiny-2.zip"
    first.write_bytes(b"\x01")
    second.write_bytes(b"\x02")

    ops = [(await service.put(path, space)).action for path in (first, second)]

    # A 1-byte file becomes the reference; a delta of another 1-byte file is never
    # smaller than half of it, so the second one is stored direct.
    assert ops == ["create_reference", "upload_direct"]
    assert set(list_keys(s3_admin, bucket)) == {
        "tiny/reference.bin",
        "tiny/tiny-1.zip.delta",
        "tiny/tiny-2.zip",
    }
    reader = make_bundle().service
    assert await read_back(reader, key_of(space, "tiny-1.zip"), tmp_path / "o1") == b"\x01"
    assert await read_back(reader, key_of(space, "tiny-2.zip"), tmp_path / "o2") == b"\x02"


async def test_reupload_replaces_the_other_form(
    service: AsyncDeltaService, bucket: str, s3_admin: Any, tmp_path: Path
) -> None:
    first, second = make_versions(tmp_path / "src", 2, "zip", seed=4)
    unrelated = random.Random(4).randbytes(first.stat().st_size)
    space = DeltaSpace(bucket, "app")
    target = tmp_path / "app.zip"

    target.write_bytes(first.read_bytes())
    assert (await service.put(target, space)).action == "create_reference"
    assert set(list_keys(s3_admin, bucket)) == {"app/reference.bin", "app/app.zip.delta"}

    # The same name with unrelated bytes: the delta is too large, it is stored direct
    # and the old .delta goes, with the reference no delta needs any more.
    target.write_bytes(unrelated)
    assert (await service.put(target, space)).action == "upload_direct"
    assert set(list_keys(s3_admin, bucket)) == {"app/app.zip"}
    assert await read_back(service, key_of(space, "app.zip"), tmp_path / "o") == unrelated

    # And back to a delta: the direct object goes.
    target.write_bytes(second.read_bytes())
    assert (await service.put(target, space)).action == "create_reference"
    assert set(list_keys(s3_admin, bucket)) == {"app/reference.bin", "app/app.zip.delta"}
    assert await read_back(service, key_of(space, "app.zip"), tmp_path / "o") == second.read_bytes()


async def test_root_deltaspace_round_trip(
    service: AsyncDeltaService,
    make_bundle: BundleFactory,
    bucket: str,
    s3_admin: Any,
    tmp_path: Path,
) -> None:
    paths = make_versions(tmp_path, 2, "tar", seed=2)
    space = DeltaSpace(bucket, "")

    ops = [(await service.put(path, space)).action for path in paths]

    assert ops == ["create_reference", "create_delta"]
    assert set(list_keys(s3_admin, bucket)) == {
        "reference.bin",
        "app-1.0.0.tar.delta",
        "app-1.0.1.tar.delta",
    }
    assert head_metadata(s3_admin, bucket, "app-1.0.1.tar.delta")["dg-ref-key"] == "reference.bin"
    reader = make_bundle().service
    for path in paths:
        out = tmp_path / f"out-{path.name}"
        assert await read_back(reader, ObjectKey(bucket, path.name), out) == path.read_bytes()


@pytest.mark.parametrize("fmt", ARCHIVE_FORMATS)
def test_generated_archives_are_valid_and_deterministic(tmp_path: Path, fmt: str) -> None:
    """The inputs above are real archives, and the same seed gives the same bytes."""
    first = make_versions(tmp_path / "a", 2, fmt, seed=13)
    again = make_versions(tmp_path / "b", 2, fmt, seed=13)
    other = make_versions(tmp_path / "c", 2, fmt, seed=14)
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in again]
    assert first[0].read_bytes() != first[1].read_bytes()
    assert first[0].read_bytes() != other[0].read_bytes()
    for path in first:
        data = path.read_bytes()
        if fmt in ("zip", "jar", "whl"):
            with zipfile.ZipFile(path) as archive:
                assert archive.testzip() is None
                names = archive.namelist()
            assert any(n.endswith("VERSION") for n in names)
            if fmt == "whl":
                assert any(n.endswith(".dist-info/WHEEL") for n in names)
        elif fmt in ("tar", "tar.gz"):
            with tarfile.open(path) as archive:
                assert "VERSION" in archive.getnames()
        elif fmt == "gz":
            assert b"=== VERSION ===" in gzip.decompress(data)
        else:
            assert b"=== VERSION ===" in lzma.decompress(data)


async def test_downloads_write_into_devices_and_fifos_instead_of_replacing_them(
    s3_config: Any, bucket: str, tmp_path: Path
) -> None:
    """``/dev/null`` stays a device and a FIFO stays a FIFO; the reader gets the bytes."""
    import os
    import stat
    import threading

    from deltaglider_async import AsyncDeltaGliderClient
    from tests.archives import make_zip_versions

    versions = make_zip_versions(tmp_path / "src", 2, size=60_000)
    async with AsyncDeltaGliderClient(s3_config) as client:
        for path in versions:
            await client.upload(path, f"s3://{bucket}/rel/")
        url = f"s3://{bucket}/rel/{versions[1].name}"
        await client.download(url, Path(os.devnull))
        assert stat.S_ISCHR(os.stat(os.devnull).st_mode)
        fifo = tmp_path / "pipe"
        os.mkfifo(fifo)
        received: list[bytes] = []
        reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
        reader.start()
        await client.download(url, fifo)
        reader.join(timeout=30)
        assert stat.S_ISFIFO(fifo.stat().st_mode)
        assert received == [versions[1].read_bytes()]
