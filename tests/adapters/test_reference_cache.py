"""EncryptedReferenceCache: content-addressed, encrypted at rest, verified on every use."""

from __future__ import annotations

import gc
import hashlib
import json
import os
import random
import stat
import subprocess
import sys
import tempfile
import weakref
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import anyio
import pytest

from deltaglider_async._errors import ClientClosedError, IntegrityError, InvalidArgumentError
from deltaglider_async._scratch import OWNER_FILE
from deltaglider_async.adapters.reference_cache import CHUNK_SIZE, EncryptedReferenceCache
from deltaglider_async.ports.cache import ReferenceCachePort

MiB = 1024 * 1024
HEADER = 5 + 8  # magic + nonce prefix
SEALED_CHUNK = CHUNK_SIZE + 16  # ciphertext + GCM tag
REPO_ROOT = Path(__file__).resolve().parents[2]


def entries(directory: Path) -> list[Path]:
    """The cache directory's files, without its owner record."""
    return [p for p in directory.iterdir() if p.name != OWNER_FILE]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _file(path: Path, data: bytes) -> tuple[Path, str]:
    path.write_bytes(data)
    return path, _sha(data)


@pytest.fixture
async def cache(tmp_path: Path) -> AsyncIterator[EncryptedReferenceCache]:
    """A cache under tmp_path, closed after the test."""
    instance = EncryptedReferenceCache(root=tmp_path / "cache-root")
    yield instance
    await instance.aclose()


def _entry(cache: EncryptedReferenceCache, sha: str) -> Path:
    assert cache.directory is not None
    return cache.directory / sha


async def _assert_rejected(cache: EncryptedReferenceCache, sha: str, tmp_path: Path) -> None:
    """Fetching ``sha`` raises IntegrityError naming it, evicts it and leaves no dest."""
    dest = tmp_path / "fetched"
    with pytest.raises(IntegrityError, match=sha):
        await cache.fetch(sha, dest)
    assert not dest.exists()
    assert not await cache.contains(sha)
    assert not _entry(cache, sha).exists()
    assert await cache.fetch(sha, dest) is False


async def test_round_trip(cache: EncryptedReferenceCache, tmp_path: Path) -> None:
    port: ReferenceCachePort = cache  # mypy checks the adapter against the port
    src, sha = _file(tmp_path / "ref", b"reference bytes " * 1000)
    assert await port.contains(sha) is False
    assert await port.fetch(sha, tmp_path / "out") is False
    assert not (tmp_path / "out").exists()
    await port.store(sha, src)
    assert await port.contains(sha) is True
    assert await port.fetch(sha, tmp_path / "out") is True
    assert (tmp_path / "out").read_bytes() == src.read_bytes()
    # Fetching twice works: entries are not consumed.
    assert await port.fetch(sha, tmp_path / "again") is True
    assert (tmp_path / "again").read_bytes() == src.read_bytes()


@pytest.mark.parametrize(
    "size",
    [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, 2 * CHUNK_SIZE, 3 * MiB + MiB // 2],
    ids=["empty", "one-byte", "chunk-minus-one", "one-chunk", "two-chunks", "3.5MiB"],
)
async def test_round_trip_sizes(cache: EncryptedReferenceCache, tmp_path: Path, size: int) -> None:
    src, sha = _file(tmp_path / "ref", random.Random(size).randbytes(size))
    await cache.store(sha, src)
    # Every chunk but the last holds CHUNK_SIZE bytes; the last is shorter, maybe empty.
    chunks = size // CHUNK_SIZE + 1
    assert _entry(cache, sha).stat().st_size == HEADER + size + 16 * chunks
    assert await cache.fetch(sha, tmp_path / "out")
    assert (tmp_path / "out").read_bytes() == src.read_bytes()


async def test_no_plaintext_on_disk(cache: EncryptedReferenceCache, tmp_path: Path) -> None:
    rng = random.Random(1)
    plaintext = b"".join(
        rng.randbytes(4096) if i % 2 else b"deltaglider reference line\n" * 150 for i in range(40)
    )
    src, sha = _file(tmp_path / "ref", plaintext)
    await cache.store(sha, src)
    on_disk = _entry(cache, sha).read_bytes()
    disk_windows = {on_disk[i : i + 64] for i in range(len(on_disk) - 63)}
    leaks = [i for i in range(len(plaintext) - 63) if plaintext[i : i + 64] in disk_windows]
    assert leaks == []
    assert sha.encode() not in on_disk
    assert bytes.fromhex(sha) not in on_disk


async def test_directory_and_entries_are_private(
    cache: EncryptedReferenceCache, tmp_path: Path
) -> None:
    assert cache.directory is None  # nothing is created before the first store
    src, sha = _file(tmp_path / "ref", b"private")
    await cache.store(sha, src)
    directory = cache.directory
    assert directory is not None
    assert directory.name.startswith("deltaglider-")
    assert directory.parent == tmp_path / "cache-root"
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE(_entry(cache, sha).stat().st_mode) == 0o600
    assert sorted(p.name for p in entries(directory)) == [sha]


async def test_default_directory_is_a_private_temp_dir(tmp_path: Path) -> None:
    cache = EncryptedReferenceCache()
    try:
        src, sha = _file(tmp_path / "ref", b"x")
        await cache.store(sha, src)
        directory = cache.directory
        assert directory is not None
        assert directory.name.startswith("deltaglider-")
        assert directory.parent == Path(tempfile.gettempdir())
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    finally:
        await cache.aclose()
    assert cache.directory is None
    assert not directory.exists()


@pytest.mark.parametrize(
    "where", ["header", "first-chunk", "tag-of-first-chunk", "last-chunk", "last-byte"]
)
async def test_a_flipped_byte_is_detected(
    cache: EncryptedReferenceCache, tmp_path: Path, where: str
) -> None:
    src, sha = _file(tmp_path / "ref", random.Random(2).randbytes(2 * MiB + 100))
    await cache.store(sha, src)
    entry = _entry(cache, sha)
    data = bytearray(entry.read_bytes())
    at = {
        "header": 2,
        "first-chunk": HEADER + 1000,
        "tag-of-first-chunk": HEADER + SEALED_CHUNK - 1,
        "last-chunk": HEADER + 2 * SEALED_CHUNK + 50,
        "last-byte": len(data) - 1,
    }[where]
    data[at] ^= 0x01
    entry.write_bytes(bytes(data))
    await _assert_rejected(cache, sha, tmp_path)


@pytest.mark.parametrize(
    "keep",
    ["nothing", "header-only", "one-chunk-boundary", "two-chunk-boundary", "mid-chunk", "minus-1"],
)
async def test_truncation_is_detected(
    cache: EncryptedReferenceCache, tmp_path: Path, keep: str
) -> None:
    src, sha = _file(tmp_path / "ref", random.Random(3).randbytes(2 * MiB + 100))
    await cache.store(sha, src)
    entry = _entry(cache, sha)
    data = entry.read_bytes()
    length = {
        "nothing": 0,
        "header-only": HEADER,
        "one-chunk-boundary": HEADER + SEALED_CHUNK,
        "two-chunk-boundary": HEADER + 2 * SEALED_CHUNK,
        "mid-chunk": HEADER + SEALED_CHUNK + 1000,
        "minus-1": len(data) - 1,
    }[keep]
    entry.write_bytes(data[:length])
    await _assert_rejected(cache, sha, tmp_path)


async def test_an_entry_that_ends_exactly_on_a_chunk_is_not_truncatable(
    cache: EncryptedReferenceCache, tmp_path: Path
) -> None:
    """Plaintext of exactly two chunks: dropping the empty final chunk is still detected."""
    src, sha = _file(tmp_path / "ref", random.Random(4).randbytes(2 * CHUNK_SIZE))
    await cache.store(sha, src)
    entry = _entry(cache, sha)
    data = entry.read_bytes()
    assert len(data) == HEADER + 2 * SEALED_CHUNK + 16
    entry.write_bytes(data[:-16])
    await _assert_rejected(cache, sha, tmp_path)


async def test_appended_bytes_are_detected(cache: EncryptedReferenceCache, tmp_path: Path) -> None:
    src, sha = _file(tmp_path / "ref", b"short reference")
    await cache.store(sha, src)
    entry = _entry(cache, sha)
    entry.write_bytes(entry.read_bytes() + b"\x00")
    await _assert_rejected(cache, sha, tmp_path)


async def test_reordered_chunks_are_detected(
    cache: EncryptedReferenceCache, tmp_path: Path
) -> None:
    src, sha = _file(tmp_path / "ref", random.Random(5).randbytes(3 * CHUNK_SIZE + 10))
    await cache.store(sha, src)
    entry = _entry(cache, sha)
    data = entry.read_bytes()
    first = data[HEADER : HEADER + SEALED_CHUNK]
    second = data[HEADER + SEALED_CHUNK : HEADER + 2 * SEALED_CHUNK]
    entry.write_bytes(data[:HEADER] + second + first + data[HEADER + 2 * SEALED_CHUNK :])
    await _assert_rejected(cache, sha, tmp_path)


async def test_swapped_entries_are_detected(cache: EncryptedReferenceCache, tmp_path: Path) -> None:
    src_a, sha_a = _file(tmp_path / "a", b"reference A " * 1000)
    src_b, sha_b = _file(tmp_path / "b", b"reference B " * 1000)
    await cache.store(sha_a, src_a)
    await cache.store(sha_b, src_b)
    entry_a, entry_b = _entry(cache, sha_a), _entry(cache, sha_b)
    a_bytes, b_bytes = entry_a.read_bytes(), entry_b.read_bytes()
    entry_a.write_bytes(b_bytes)
    entry_b.write_bytes(a_bytes)
    await _assert_rejected(cache, sha_a, tmp_path)
    await _assert_rejected(cache, sha_b, tmp_path)


async def test_an_entry_from_another_cache_is_rejected(tmp_path: Path) -> None:
    """Each cache has its own key: a file planted from elsewhere does not decrypt."""
    src, sha = _file(tmp_path / "ref", b"same plaintext " * 1000)
    first = EncryptedReferenceCache(root=tmp_path / "one")
    second = EncryptedReferenceCache(root=tmp_path / "two")
    try:
        await first.store(sha, src)
        await second.store(sha, src)
        foreign = _entry(first, sha).read_bytes()
        assert foreign != _entry(second, sha).read_bytes()
        _entry(second, sha).write_bytes(foreign)
        await _assert_rejected(second, sha, tmp_path)
        assert await first.fetch(sha, tmp_path / "ok")
    finally:
        await first.aclose()
        await second.aclose()


async def test_an_entry_whose_content_does_not_match_its_name_is_rejected(
    cache: EncryptedReferenceCache, tmp_path: Path
) -> None:
    src, _ = _file(tmp_path / "ref", b"actual content")
    claimed = _sha(b"something else")
    await cache.store(claimed, src)
    await _assert_rejected(cache, claimed, tmp_path)


async def test_a_failed_fetch_does_not_evict_a_fresh_replacement(
    cache: EncryptedReferenceCache, tmp_path: Path
) -> None:
    """Eviction removes the file that failed, not one a concurrent store put in its place."""
    src, sha = _file(tmp_path / "ref", random.Random(6).randbytes(32 * MiB))
    await cache.store(sha, src)
    entry = _entry(cache, sha)
    good = entry.read_bytes()
    bad = bytearray(good)
    bad[-1] ^= 0x01
    entry.write_bytes(bytes(bad))
    staged = entry.with_name(".tmp-staged")
    staged.write_bytes(good)
    dest = tmp_path / "fetched"
    async with anyio.create_task_group() as tg:

        async def fetch_bad() -> None:
            with pytest.raises(IntegrityError):
                await cache.fetch(sha, dest)

        tg.start_soon(fetch_bad)
        for _ in range(5000):
            if dest.exists():  # the fetch has opened the bad file
                break
            await anyio.sleep(0.001)
        else:
            pytest.fail("the fetch never opened its destination")
        os.replace(staged, entry)  # what a concurrent store does
    assert not dest.exists()
    assert await cache.fetch(sha, tmp_path / "good")
    assert (tmp_path / "good").read_bytes() == src.read_bytes()


async def test_concurrent_stores_and_fetches_of_one_entry(
    cache: EncryptedReferenceCache, tmp_path: Path
) -> None:
    data = random.Random(7).randbytes(3 * MiB + 11)
    src, sha = _file(tmp_path / "ref", data)
    results: list[bool] = []

    async def fetch(i: int) -> None:
        dest = tmp_path / f"out{i}"
        if await cache.fetch(sha, dest):
            assert dest.read_bytes() == data
            results.append(True)
        else:
            assert not dest.exists()
            results.append(False)

    async with anyio.create_task_group() as tg:
        for i in range(8):
            tg.start_soon(cache.store, sha, src)
            tg.start_soon(fetch, i)
            tg.start_soon(fetch, 100 + i)
    assert len(results) == 16
    assert await cache.fetch(sha, tmp_path / "final")
    assert (tmp_path / "final").read_bytes() == data
    assert cache.directory is not None
    assert sorted(p.name for p in entries(cache.directory)) == [sha]


async def _cancel_when(condition: Callable[[], bool], scope: anyio.CancelScope) -> None:
    for _ in range(10_000):
        if condition():
            scope.cancel()
            return
        await anyio.sleep(0.001)
    pytest.fail("the operation never reached the point to cancel it at")


async def test_cancelled_store_and_fetch_leave_nothing_behind(
    cache: EncryptedReferenceCache, tmp_path: Path
) -> None:
    src, sha = _file(tmp_path / "ref", os.urandom(48 * MiB))

    def writing_temp_file() -> bool:
        directory = cache.directory
        if directory is None:
            return False
        try:
            return any(
                p.name.startswith(".tmp-") and p.stat().st_size > 0 for p in entries(directory)
            )
        except FileNotFoundError:  # renamed into place meanwhile
            return False

    async with anyio.create_task_group() as tg:
        tg.start_soon(cache.store, sha, src)
        await _cancel_when(writing_temp_file, tg.cancel_scope)
    assert cache.directory is not None
    assert list(entries(cache.directory)) == []

    await cache.store(sha, src)
    dest = tmp_path / "fetched"

    def writing_dest() -> bool:
        return dest.exists() and dest.stat().st_size > 0

    async with anyio.create_task_group() as tg:
        tg.start_soon(cache.fetch, sha, dest)
        await _cancel_when(writing_dest, tg.cancel_scope)
    assert not dest.exists()
    assert await cache.contains(sha)  # a cancelled fetch does not evict
    assert await cache.fetch(sha, dest)
    assert dest.read_bytes() == src.read_bytes()


async def test_clear_removes_every_entry(cache: EncryptedReferenceCache, tmp_path: Path) -> None:
    await cache.clear()  # nothing yet: a no-op
    shas = []
    for i in range(3):
        src, sha = _file(tmp_path / f"ref{i}", f"reference {i}".encode() * 100)
        await cache.store(sha, src)
        shas.append(sha)
    await cache.clear()
    assert cache.directory is not None
    assert cache.directory.is_dir()
    assert list(entries(cache.directory)) == []
    for sha in shas:
        assert not await cache.contains(sha)
        assert await cache.fetch(sha, tmp_path / "out") is False
    src, sha = _file(tmp_path / "again", b"usable after clear")
    await cache.store(sha, src)
    assert await cache.fetch(sha, tmp_path / "out")


async def test_aclose_removes_the_directory_and_is_idempotent(tmp_path: Path) -> None:
    cache = EncryptedReferenceCache(root=tmp_path)
    src, sha = _file(tmp_path / "ref", b"bytes")
    await cache.store(sha, src)
    directory = cache.directory
    assert directory is not None
    assert directory.is_dir()
    await cache.aclose()
    assert not directory.exists()
    await cache.aclose()
    with pytest.raises(ClientClosedError):
        await cache.fetch(sha, tmp_path / "out")
    with pytest.raises(ClientClosedError):
        await cache.store(sha, src)
    with pytest.raises(ClientClosedError):
        await cache.contains(sha)
    with pytest.raises(ClientClosedError):
        await cache.clear()


async def test_aclose_before_any_use(tmp_path: Path) -> None:
    cache = EncryptedReferenceCache(root=tmp_path / "root")
    await cache.aclose()
    assert not (tmp_path / "root").exists()  # the constructor and aclose did no I/O


async def test_a_vanished_directory_is_recreated(
    cache: EncryptedReferenceCache, tmp_path: Path
) -> None:
    src, sha = _file(tmp_path / "ref", b"bytes")
    await cache.store(sha, src)
    old = cache.directory
    assert old is not None
    for p in old.iterdir():
        p.unlink()
    old.rmdir()  # e.g. a tmp cleaner
    assert await cache.fetch(sha, tmp_path / "out") is False
    await cache.store(sha, src)
    assert cache.directory is not None
    assert cache.directory != old
    assert stat.S_IMODE(cache.directory.stat().st_mode) == 0o700
    assert await cache.fetch(sha, tmp_path / "out")


@pytest.mark.parametrize(
    "bad",
    ["", "abc", "A" * 64, "g" * 64, "0" * 63, "0" * 65, "../" + "0" * 61, "0" * 63 + "\n"],
)
async def test_keys_must_be_sha256_hex(
    cache: EncryptedReferenceCache, tmp_path: Path, bad: str
) -> None:
    src, _ = _file(tmp_path / "ref", b"x")
    with pytest.raises(InvalidArgumentError):
        await cache.store(bad, src)
    with pytest.raises(InvalidArgumentError):
        await cache.fetch(bad, tmp_path / "out")
    with pytest.raises(InvalidArgumentError):
        await cache.contains(bad)


def test_the_cache_is_not_kept_alive_by_its_exit_handler(tmp_path: Path) -> None:
    async def use() -> weakref.ref[EncryptedReferenceCache]:
        cache = EncryptedReferenceCache(root=tmp_path)
        src, sha = _file(tmp_path / "ref", b"x")
        await cache.store(sha, src)
        return weakref.ref(cache)

    ref = anyio.run(use)
    gc.collect()
    assert ref() is None


def test_directory_is_removed_at_exit_without_aclose(tmp_path: Path) -> None:
    script = """
import anyio, json, sys
from pathlib import Path
from deltaglider_async.adapters.reference_cache import EncryptedReferenceCache

cache = EncryptedReferenceCache(root=Path(sys.argv[1]))

async def main() -> None:
    src = Path(sys.argv[1]) / "src"
    src.write_bytes(b"x")
    await cache.store("2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881", src)
    print(json.dumps(str(cache.directory)))

anyio.run(main)
"""
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        timeout=60,
    )
    directory = Path(json.loads(done.stdout))
    assert directory.parent == tmp_path
    assert not directory.exists()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
@pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")
def test_a_forked_child_gets_its_own_directory_and_key(tmp_path: Path) -> None:
    cache = EncryptedReferenceCache(root=tmp_path)
    src, sha = _file(tmp_path / "ref", b"parent data " * 100)
    anyio.run(cache.store, sha, src)
    parent_dir = cache.directory
    assert parent_dir is not None

    async def in_child() -> dict[str, object]:
        report: dict[str, object] = {"sees_parent_entry": await cache.contains(sha)}
        child_src, child_sha = _file(tmp_path / "child-ref", b"child data " * 100)
        await cache.store(child_sha, child_src)
        report["dir"] = str(cache.directory)
        report["fetched"] = await cache.fetch(child_sha, tmp_path / "child-out")
        await cache.aclose()
        report["child_dir_removed"] = not await anyio.Path(str(report["dir"])).exists()
        return report

    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report, then leave without running the parent's exit handlers
        code = 0
        try:
            os.close(read_end)
            os.write(write_end, json.dumps(anyio.run(in_child)).encode())
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        raw = pipe.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    report = json.loads(raw)
    assert report["sees_parent_entry"] is False
    assert report["dir"] != str(parent_dir)
    assert report["fetched"] is True
    assert report["child_dir_removed"] is True
    # The parent's cache is untouched and still works.
    assert parent_dir.is_dir()
    assert anyio.run(cache.fetch, sha, tmp_path / "parent-out")
    assert (tmp_path / "parent-out").read_bytes() == src.read_bytes()
    anyio.run(cache.aclose)
    assert not parent_dir.exists()
