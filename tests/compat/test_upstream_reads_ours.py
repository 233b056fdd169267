"""What this package writes must be readable by the original ``deltaglider==6.2.0``.

Each case uploads one kind of file with this package (several versions where it makes
deltas), then downloads every logical key with upstream 6.2.0's own ``download()`` in its
own virtual environment (see ``upstream.py``) and compares the SHA-256 with the original
bytes. Both local servers (moto and SeaweedFS) are used, a fresh bucket per case.

Two rules keep this true:

1. Compressed references. 6.2.0 decodes with ``xdelta3 -d -s reference.bin delta out``,
without ``-D``. xdelta3 then pipes a *source* whose first bytes are a gzip (``1f 8b``),
bzip2 (``BZh``), xz (``fd 37 7a 58 5a 00``) or compress (``1f 9d``) signature through
``gzip -dc``, ``bzip2 -dc``, ``xz -dc`` or ``uncompress -c`` and decodes against the
decompressed bytes: every delta that copies from such a reference fails its window
checksum, and a reference that does not decompress at all (a plain tar whose first member
is named ``BZh...``) breaks every delta against it. So such a file never becomes a
reference (it is stored direct) unless the caller opts into ``compressed_references``.
The target's own compression does not matter: this package encodes with ``-D -A`` (no
application header), so nothing is recompressed on decode. The ``test_xdelta3_*`` tests
at the end pin down that behaviour of the xdelta3 binary itself.

2. The one documented exception: deltas in a directory whose name is not ASCII. S3
metadata values are ASCII, so ``dg-ref-key`` is percent-encoded; 6.2.0 uses it verbatim
and looks for ``donn%C3%A9es/reference.bin``. 6.2.0 cannot write such a delta itself
(botocore refuses the non-ASCII metadata). Direct files there, and non-ASCII file names,
read fine. That case is marked ``xfail(strict=True, raises=UpstreamReadError)``: it fails
that way only when 6.2.0 fails on exactly the keys listed.
"""

from __future__ import annotations

import bz2
import functools
import gzip
import hashlib
import io
import lzma
import os
import random
import subprocess
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import pytest

from deltaglider_async import AsyncDeltaGliderClient
from deltaglider_async.testing import LocalS3
from tests.archives import archive_bytes, source_tree_files

from .upstream import (
    UPSTREAM_VERSION,
    PyPIUnreachableError,
    UpstreamRead,
    UpstreamReader,
    ensure_upstream_python,
    read_once,
)

REFERENCE = "create_reference"
DELTA = "create_delta"
DIRECT = "upload_direct"
#: A later version of a re-baselining series: a delta, or the directory's next reference
#: (when exactly depends on LastModified seconds; at least one must re-baseline).
EITHER = "delta-or-reference"

# Sizes: ~160 KB of generated source text per release, plus a 120 KB binary asset in the
# zip-like and tar archives, so files weigh 60-300 KB and successive versions differ by a
# few percent.
_FILES = 40
_FILE_SIZE = 4000
_ASSET = 120_000


# --------------------------------------------------------------------------- contents


def _tree(version: int, *, seed: int, asset: bool) -> dict[str, bytes]:
    return source_tree_files(
        seed, version, files=_FILES, file_size=_FILE_SIZE, asset_size=_ASSET if asset else 0
    )


def _bz2_bytes(files: dict[str, bytes]) -> bytes:
    """One text dump of the tree, one bzip2 stream per file (as ``archive_bytes`` does gz/xz)."""
    return b"".join(
        bz2.compress(f"=== {name} ===\n".encode() + data, 9)
        for name, data in files.items()
        if not name.endswith(".bin")
    )


def release(fmt: str, version: int, *, seed: int = 1) -> bytes:
    """Version ``version`` of a generated project as a ``fmt`` archive (deterministic)."""
    if fmt == "bz2":
        return _bz2_bytes(_tree(version, seed=seed, asset=False))
    asset = fmt in ("zip", "jar", "whl", "tar", "tar.gz")
    return archive_bytes(_tree(version, seed=seed, asset=asset), fmt)


def _tar(entries: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1577836800
            info.mode = 0o644
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _unrelated_zip(seed: int, size: int = 200_000) -> bytes:
    """A zip of incompressible bytes sharing nothing with the generated releases."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        info = zipfile.ZipInfo("payload.bin", date_time=(2020, 1, 1, 0, 0, 0))
        archive.writestr(info, random.Random(seed).randbytes(size))
    return buffer.getvalue()


# --------------------------------------------------------------------------- cases


@dataclass(frozen=True, slots=True)
class Upload:
    """One file uploaded with ``client.upload(path, s3://bucket/<directory>/)``."""

    directory: str  # "" is the bucket root
    name: str
    data: bytes
    stored: str  # the action this package reports: REFERENCE, DELTA or DIRECT

    @property
    def key(self) -> str:
        """The logical key, the name upstream is asked to download."""
        return f"{self.directory}/{self.name}" if self.directory else self.name


@dataclass(frozen=True, slots=True)
class Case:
    """A kind of object; ``upstream_fails`` lists the logical keys 6.2.0 cannot read today."""

    id: str
    build: Callable[[], list[Upload]]
    upstream_fails: frozenset[str] = field(default_factory=frozenset)
    reason: str = ""


def _direct_versions(fmt: str, directory: str, count: int, seed: int = 0) -> list[Upload]:
    """Versions of a format xdelta3 decompresses: stored direct, never a reference."""
    return [
        Upload(directory, u.name, u.data, DIRECT)
        for u in _versions(fmt, directory, count, seed=seed)
    ]


def _versions(fmt: str, directory: str, count: int, *, seed: int = 1) -> list[Upload]:
    """``count`` releases of one project in one directory: a reference, then deltas."""
    uploads = []
    for version in range(count):
        number = f"1.0.{version}"
        name = f"app-{number}-py3-none-any.whl" if fmt == "whl" else f"app-{number}.{fmt}"
        stored = REFERENCE if version == 0 else DELTA
        uploads.append(Upload(directory, name, release(fmt, version, seed=seed), stored))
    return uploads


def _directories() -> list[Upload]:
    return [
        Upload("", "app-1.0.0.zip", release("zip", 0, seed=2), REFERENCE),  # bucket root
        Upload("", "app-1.0.1.zip", release("zip", 1, seed=2), DELTA),
        Upload("a", "app-1.0.0.zip", release("zip", 0, seed=3), REFERENCE),
        Upload("a/b", "app-1.0.0.zip", release("zip", 0, seed=4), REFERENCE),
        Upload("a/b", "app-1.0.1.zip", release("zip", 1, seed=4), DELTA),
        Upload("a/b/c", "lib-2.0.0.jar", release("jar", 0, seed=5), REFERENCE),
        Upload("x-y_z.1/2024-01", "app-1.0.0.tar", release("tar", 0, seed=6), REFERENCE),
        Upload("x-y_z.1/2024-01", "app-1.0.1.tar", release("tar", 1, seed=6), DELTA),
    ]


def _non_ascii_name() -> list[Upload]:
    return [
        Upload("intl", "é-ü.zip", release("zip", 0, seed=7), REFERENCE),
        Upload("intl", "é-ü-1.0.1.zip", release("zip", 1, seed=7), DELTA),
        Upload("intl", "日本語-ñ.zip", release("zip", 2, seed=7), DELTA),
        Upload("intl", "notes-ñ.txt", "déjà vu, 日本\n".encode() * 100, DIRECT),
    ]


def _non_ascii_directory() -> list[Upload]:
    return [
        Upload("données/été", "app-1.0.0.zip", release("zip", 0, seed=8), REFERENCE),
        Upload("données/été", "app-1.0.1.zip", release("zip", 1, seed=8), DELTA),
        Upload("données/été", "lisez-moi.txt", b"bonjour\n" * 50, DIRECT),
    ]


def _percent_looking_directories() -> list[Upload]:
    # ASCII names that also read as percent-encodings (of "pcté", of a control character):
    # written as they are, as 6.x writes them, so 6.x finds the reference.
    uploads = []
    for n, directory in enumerate(["pct%C3%A9", "a%01b", "100%", "x%2Fy"]):
        uploads.append(
            Upload(directory, "app-1.0.0.zip", release("zip", 0, seed=20 + n), REFERENCE)
        )
        uploads.append(Upload(directory, "app-1.0.1.zip", release("zip", 1, seed=20 + n), DELTA))
    uploads.append(Upload("pct%C3%A9", "%41%42-1.0.2.zip", release("zip", 2, seed=20), DELTA))
    return uploads


def drifting_series(count: int, size: int = 300_000, *, seed: int = 21) -> list[bytes]:
    """``count`` versions of an incompressible file, each replacing another tenth of the
    first one: the delta against version 0 grows by about 10 % a version."""
    rng = random.Random(seed)
    data = bytearray(rng.randbytes(size))
    versions = [bytes(data)]
    step = size // 10
    for version in range(1, count):
        start = (version - 1) % 10 * step
        data[start : start + step] = rng.randbytes(step)
        versions.append(bytes(data))
    return versions


def _rebased() -> list[Upload]:
    # Deltas against the first file grow ~10 % a version: the 5th file (40 %, above 0.25
    # and above the 32 % the first reference has cost per upload so far) and the 9th
    # become the directory's next references, at
    # rebased/.deltaglider/refs/<generation>-<sha>/reference.bin; 6.2.0 reads the deltas
    # from the directory of their dg-ref-key.
    stored = [REFERENCE, *[EITHER] * 9]
    versions = drifting_series(len(stored))
    return [
        Upload("rebased", f"app-1.0.{n}.zip", data, kind)
        for n, (data, kind) in enumerate(zip(versions, stored, strict=True))
    ]


def _too_different() -> list[Upload]:
    # The second zip shares nothing with the reference: its delta is ~100 % of its size,
    # above max_ratio (0.5), so it is stored direct beside the reference's deltas.
    return [
        Upload("mixed", "app-1.0.0.zip", release("zip", 0, seed=9), REFERENCE),
        Upload("mixed", "app-1.0.1.zip", release("zip", 1, seed=9), DELTA),
        Upload("mixed", "other-9.9.9.zip", _unrelated_zip(seed=9), DIRECT),
    ]


def _compressed_target_plain_reference() -> list[Upload]:
    # The reference is a plain tar bundling the tarball; the next tarball's delta copies
    # from it. The target starts with 1f 8b, the reference does not.
    bundle = _tar([("README", b"bundle\n"), ("app-1.0.0.tar.gz", release("tar.gz", 0, seed=10))])
    return [
        Upload("bundle", "bundle-1.0.0.tar", bundle, REFERENCE),
        Upload("bundle", "app-1.0.1.tar.gz", release("tar.gz", 1, seed=10), DELTA),
    ]


def _plain_target_compressed_reference() -> list[Upload]:
    # The reverse order: the tarball (1f 8b) comes first but may not become the
    # reference (stored direct); the plain tar bundling the next tarball becomes it.
    bundle = _tar([("README", b"bundle\n"), ("app-1.0.1.tar.gz", release("tar.gz", 1, seed=11))])
    return [
        Upload("bundle", "app-1.0.0.tar.gz", release("tar.gz", 0, seed=11), DIRECT),
        Upload("bundle", "bundle-1.0.1.tar", bundle, REFERENCE),
    ]


def _tar_named_bzh() -> list[Upload]:
    # A plain tar starts with its first member's name: "BZh..." is bzip2's signature.
    def tar(version: int) -> bytes:
        files = _tree(version, seed=12, asset=False)
        return _tar([(f"BZhelper-1.0.{version}/{name}", data) for name, data in files.items()])

    return [
        Upload("bzh", "BZhelper-1.0.0.tar", tar(0), DIRECT),
        Upload("bzh", "BZhelper-1.0.1.tar", tar(1), DIRECT),
    ]


def _fails(*keys: str) -> frozenset[str]:
    return frozenset(keys)


_NON_ASCII_REF_KEY = (
    f"deltaglider {UPSTREAM_VERSION} uses dg-ref-key verbatim; S3 metadata is ASCII, so "
    "this package percent-encodes it and 6.2.0 looks for 'donn%C3%A9es/...' (6.2.0 itself "
    "cannot write a delta there: botocore refuses non-ASCII metadata)"
)


CASES = [
    Case("zip", lambda: _versions("zip", "releases/zip", 2)),
    Case("jar", lambda: _versions("jar", "releases/jar", 2)),
    Case("whl", lambda: _versions("whl", "releases/whl", 2)),
    Case("tar", lambda: _versions("tar", "releases/tar", 2)),
    Case("tar.gz", lambda: _direct_versions("tar.gz", "releases/targz", 2)),
    Case("gz", lambda: _direct_versions("gz", "releases/gz", 2)),
    Case("xz", lambda: _direct_versions("xz", "releases/xz", 2)),
    Case("bz2", lambda: _direct_versions("bz2", "releases/bz2", 2)),
    Case("text", lambda: [Upload("docs", "notes.txt", b"release notes\n" * 400, DIRECT)]),
    Case(
        "empty",
        lambda: [
            Upload("empty", "empty.txt", b"", DIRECT),
            Upload("empty", "empty.zip", b"", DIRECT),  # empty files are never deltas
        ],
    ),
    Case("non-ascii-name", _non_ascii_name),
    Case(
        "non-ascii-directory",
        _non_ascii_directory,
        _fails("données/été/app-1.0.0.zip", "données/été/app-1.0.1.zip"),
        _NON_ASCII_REF_KEY,
    ),
    Case("directories", _directories),
    Case("percent-looking-directories", _percent_looking_directories),
    Case("many-versions", lambda: _versions("zip", "releases/many", 5, seed=13)),
    Case("too-different", _too_different),
    Case("rebased", _rebased),
    Case("compressed-target-plain-reference", _compressed_target_plain_reference),
    Case("plain-target-compressed-reference", _plain_target_compressed_reference),
    Case("tar-named-BZh", _tar_named_bzh),
]


class UpstreamReadError(AssertionError):
    """Upstream failed on exactly the keys the case expects it to fail on."""


def _case_params() -> Iterator[Any]:
    for case in CASES:
        marks = []
        if case.upstream_fails:
            marks.append(
                pytest.mark.xfail(strict=True, raises=UpstreamReadError, reason=case.reason)
            )
        yield pytest.param(case, id=case.id, marks=marks)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def upstream_python() -> Path:
    """The interpreter of the cached deltaglider 6.2.0 venv; skip only without PyPI."""
    try:
        return ensure_upstream_python()
    except PyPIUnreachableError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def upstream_readers() -> Iterator[dict[str, UpstreamReader]]:
    """One long-lived upstream reader per S3 endpoint, closed at the end of the session."""
    readers: dict[str, UpstreamReader] = {}
    try:
        yield readers
    finally:
        for reader in readers.values():
            reader.close()


@pytest.fixture
def upstream(
    s3_server: LocalS3, upstream_python: Path, upstream_readers: dict[str, UpstreamReader]
) -> UpstreamReader:
    """The upstream reader for ``s3_server``."""
    reader = upstream_readers.get(s3_server.endpoint_url)
    if reader is None or not reader.alive:
        if reader is not None:
            reader.close()
        reader = UpstreamReader(
            upstream_python, endpoint_url=s3_server.endpoint_url, env=s3_server.env()
        )
        upstream_readers[s3_server.endpoint_url] = reader
    return reader


# --------------------------------------------------------------------------- tests


async def _upload(
    s3_server: LocalS3, bucket: str, uploads: list[Upload], workdir: Path
) -> dict[str, str]:
    """Upload with this package; return logical key -> sha256 of the original bytes."""
    expected: dict[str, str] = {}
    rebased = 0
    # Re-baselining on (the recommended threshold), so that the "rebased" case writes
    # later references; the other cases never reach it.
    async with AsyncDeltaGliderClient(s3_server.config(rebase_ratio=0.25)) as client:
        for index, item in enumerate(uploads):
            source = workdir / str(index) / item.name
            source.parent.mkdir()
            source.write_bytes(item.data)
            url = f"s3://{bucket}/{item.directory}/" if item.directory else f"s3://{bucket}"
            summary = await client.upload(source, url)
            stored_key = item.key if item.stored == DIRECT else f"{item.key}.delta"
            if item.stored == EITHER:
                assert summary.action in (REFERENCE, DELTA), item.key
                assert summary.stored_key == stored_key, item.key
                rebased += summary.action == REFERENCE
            else:
                assert (summary.action, summary.stored_key) == (item.stored, stored_key), item.key
            expected[item.key] = hashlib.sha256(item.data).hexdigest()
    if any(item.stored == EITHER for item in uploads):
        assert rebased >= 1, "the drifting series never re-baselined"
    return expected


def _check(case: Case, expected: dict[str, str], results: dict[str, UpstreamRead]) -> None:
    failures = {}
    for key, sha256 in expected.items():
        result = results[key]
        if result.error is not None:
            failures[key] = result.error
        elif result.sha256 != sha256:
            failures[key] = f"wrong bytes: sha256 {result.sha256}, expected {sha256}"
    if not failures:
        return  # for an xfail case: XPASS(strict), the incompatibility is gone
    report = "\n".join(f"  {key}: {problem}" for key, problem in sorted(failures.items()))
    if set(failures) != case.upstream_fails:
        pytest.fail(
            f"deltaglider {UPSTREAM_VERSION} failed on {sorted(failures)}, expected "
            f"{sorted(case.upstream_fails)}:\n{report}",
            pytrace=False,
        )
    raise UpstreamReadError(f"deltaglider {UPSTREAM_VERSION} cannot read:\n{report}")


@pytest.mark.parametrize("case", list(_case_params()))
async def test_upstream_620_reads_what_we_write(
    case: Case, s3_server: LocalS3, bucket: str, upstream: UpstreamReader, tmp_path: Path
) -> None:
    expected = await _upload(s3_server, bucket, case.build(), tmp_path)
    results = await upstream.aread(bucket, list(expected))
    _check(case, expected, results)


def test_upstream_reader_one_shot_mode(
    s3_server: LocalS3, bucket: str, upstream_python: Path, s3_admin: Any
) -> None:
    """The reader's documented command line (one process, keys on stdin) works too."""
    s3_admin.put_object(Bucket=bucket, Key="plain/object.bin", Body=b"plain S3 object")
    results = read_once(
        upstream_python,
        endpoint_url=s3_server.endpoint_url,
        env=s3_server.env(),
        bucket=bucket,
        keys=["plain/object.bin", "plain/missing.zip"],
    )
    assert results["plain/object.bin"].sha256 == hashlib.sha256(b"plain S3 object").hexdigest()
    assert results["plain/missing.zip"].error is not None
    assert results["plain/missing.zip"].error.startswith("NotFoundError")


# --------------------------------------------------------------------------- xdelta3 itself
#
# Why the cases above fail: how `xdelta3 -d -s REF DELTA OUT` without -D (6.2.0's decode)
# treats a delta made the way this package makes them.

_ENCODE = ["xdelta3", "-e", "-9", "-D", "-A", "-f", "-B", "524288"]
_DECODE_620 = ["xdelta3", "-d", "-f"]
_DECODE_OURS = ["xdelta3", "-d", "-D", "-R", "-f", "-B", "524288"]

_COMPRESSORS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": lambda data: gzip.compress(data, mtime=0),
    "bzip2": bz2.compress,
    "xz": lambda data: lzma.compress(data, format=lzma.FORMAT_XZ),
    "lzma-alone": lambda data: lzma.compress(data, format=lzma.FORMAT_ALONE),
}
# First bytes xdelta3 3.0.x recognises as externally compressed ("lzma-alone", 5d 00 00,
# is not among them).
_SIGNATURES = {
    "gzip": b"\x1f\x8b",
    "bzip2": b"BZh",
    "xz": b"\xfd7zXZ\x00",
    "compress": b"\x1f\x9d",
    "lzma-alone": b"\x5d\x00\x00",
}
_DECOMPRESSED_BY_XDELTA3 = {"gzip", "bzip2", "xz", "compress"}


@functools.cache
def _parts(version: int) -> tuple[bytes, ...]:
    files = _tree(version, seed=20, asset=False)
    return tuple(f"=== {name} ===\n".encode() + data for name, data in files.items())


def _dump(fmt: str, version: int) -> bytes:
    """A text dump compressed as one stream per file, so that versions share bytes."""
    return b"".join(_COMPRESSORS[fmt](part) for part in _parts(version))


def _xdelta3(tmp_path: Path, reference: bytes, target: bytes) -> tuple[bool, bool, int]:
    """Encode as this package does; (6.2.0's decode exact, our decode exact, delta size)."""
    ref, tgt, delta, out = (tmp_path / name for name in ("ref", "target", "delta", "out"))
    ref.write_bytes(reference)
    tgt.write_bytes(target)
    subprocess.run([*_ENCODE, "-s", ref, tgt, delta], check=True, capture_output=True)
    outcomes = []
    for decode in (_DECODE_620, _DECODE_OURS):
        out.unlink(missing_ok=True)
        result = subprocess.run([*decode, "-s", ref, delta, out], capture_output=True, check=False)
        outcomes.append(result.returncode == 0 and out.read_bytes() == target)
    return outcomes[0], outcomes[1], delta.stat().st_size


@pytest.mark.parametrize("fmt", sorted(_COMPRESSORS))
def test_xdelta3_without_D_decompresses_a_compressed_reference(fmt: str, tmp_path: Path) -> None:
    """Compressed reference and target (v1 -> v2, a small edit): the delta copies a lot."""
    target = _dump(fmt, 1)
    upstream_ok, ours_ok, delta_size = _xdelta3(tmp_path, _dump(fmt, 0), target)
    assert ours_ok
    assert delta_size < len(target) / 4
    assert upstream_ok is (fmt not in _DECOMPRESSED_BY_XDELTA3)


@pytest.mark.parametrize("fmt", sorted(_SIGNATURES))
def test_xdelta3_without_D_is_triggered_by_the_first_bytes_alone(fmt: str, tmp_path: Path) -> None:
    """A reference that merely starts with a signature breaks even a delta with no copies."""
    reference = _SIGNATURES[fmt] + random.Random(21).randbytes(100_000)
    upstream_ok, ours_ok, _ = _xdelta3(tmp_path, reference, b"".join(_parts(0)))
    assert ours_ok
    assert upstream_ok is (fmt not in _DECOMPRESSED_BY_XDELTA3)


@pytest.mark.parametrize("fmt", ["gzip", "bzip2", "xz"])
def test_xdelta3_without_D_ignores_a_compressed_target(fmt: str, tmp_path: Path) -> None:
    """A plain reference (a tar bundling v1) and a compressed target (v2) that copies it."""
    reference = _tar([("README", b"bundle\n"), ("dump", _dump(fmt, 0))])
    target = _dump(fmt, 1)
    upstream_ok, ours_ok, delta_size = _xdelta3(tmp_path, reference, target)
    assert ours_ok
    assert delta_size < len(target) / 4
    assert upstream_ok


def test_xdelta3_without_D_fails_on_a_plain_target_copying_a_compressed_reference(
    tmp_path: Path,
) -> None:
    """The reverse: a gzip reference (v1) and a plain tar bundling v2 fail to decode."""
    target = _tar([("README", b"bundle\n"), ("dump.gz", _dump("gzip", 1))])
    upstream_ok, ours_ok, delta_size = _xdelta3(tmp_path, _dump("gzip", 0), target)
    assert ours_ok
    assert delta_size < len(target) / 4
    assert not upstream_ok


_UPSTREAM_WRITER = """
import sys
from deltaglider import create_client

client = create_client(endpoint_url=sys.argv[1], log_level="WARNING")
for path in sys.argv[3:]:
    client.upload(path, sys.argv[2])
"""


async def test_a_directory_written_by_620_and_repaired_by_rebase_reads_back_in_620(
    s3_server: LocalS3,
    bucket: str,
    upstream: UpstreamReader,
    upstream_python: Path,
    s3_admin: Any,
    tmp_path: Path,
) -> None:
    """6.2.0 writes a drifting series (every delta against the first file, the later ones
    stored whole); ``rebase`` re-encodes it against new references; 6.2.0 reads every
    version back byte for byte, and so do we."""
    versions = drifting_series(10)
    paths = []
    for n, data in enumerate(versions):
        path = tmp_path / f"app-1.0.{n}.zip"
        path.write_bytes(data)
        paths.append(str(path))
    env = {**os.environ, **s3_server.env()}
    command = [str(upstream_python), "-I", "-c", _UPSTREAM_WRITER, s3_server.endpoint_url]
    done = await anyio.run_process(
        [*command, f"s3://{bucket}/legacy/", *paths], env=env, check=False
    )
    assert done.returncode == 0, done.stderr.decode()
    written = {o["Key"]: o["Size"] for o in s3_admin.list_objects_v2(Bucket=bucket)["Contents"]}
    assert all(k.startswith("legacy/") for k in written)

    async with AsyncDeltaGliderClient(s3_server.config()) as client:
        report = await client.rebase(f"s3://{bucket}/legacy/")
        assert report.saved > 0
        assert [s.applied for s in report.spaces] == [True]
        after = s3_admin.list_objects_v2(Bucket=bucket)["Contents"]
        assert sum(o["Size"] for o in after) == sum(written.values()) - report.saved
        assert any("/.deltaglider/refs/" in o["Key"] for o in after)
        for n, data in enumerate(versions):
            response = await client.get_object(Bucket=bucket, Key=f"legacy/app-1.0.{n}.zip")
            async with response["Body"] as body:
                assert await body.read() == data
    expected = {
        f"legacy/app-1.0.{n}.zip": hashlib.sha256(data).hexdigest()
        for n, data in enumerate(versions)
    }
    results = await upstream.aread(bucket, list(expected))
    for key, sha256 in expected.items():
        assert results[key].error is None, (key, results[key].error)
        assert results[key].sha256 == sha256, key
