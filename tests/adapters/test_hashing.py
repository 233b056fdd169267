"""StdlibHasher: one-pass SHA-256 + MD5, file I/O off the event loop."""

from __future__ import annotations

import hashlib
import os
import random
import time
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest

from deltaglider_async._errors import InvalidArgumentError
from deltaglider_async.adapters.hashing import BATCH_SIZE, StdlibHasher
from deltaglider_async.ports.hash import FileDigest, HashPort

MiB = 1024 * 1024


def _expected(data: bytes) -> FileDigest:
    return FileDigest(
        sha256=hashlib.sha256(data).hexdigest(), md5=hashlib.md5(data).hexdigest(), size=len(data)
    )


async def _aiter(chunks: Iterable[bytes | bytearray | memoryview]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        await anyio.lowlevel.checkpoint()
        yield chunk  # type: ignore[misc]


@pytest.mark.parametrize(
    ("data", "sha256", "md5"),
    [
        (
            b"",
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "d41d8cd98f00b204e9800998ecf8427e",
        ),
        (
            b"abc",
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            "900150983cd24fb0d6963f7d28e17f72",
        ),
    ],
    ids=["empty", "abc"],
)
async def test_known_vectors(tmp_path: Path, data: bytes, sha256: str, md5: str) -> None:
    path = tmp_path / "f"
    path.write_bytes(data)
    expected = FileDigest(sha256=sha256, md5=md5, size=len(data))
    hasher: HashPort = StdlibHasher()  # mypy checks the adapter against the port
    assert await hasher.hash_file(path) == expected
    assert await hasher.write_and_hash(_aiter([data]), tmp_path / "w") == expected
    assert (tmp_path / "w").read_bytes() == data


@pytest.mark.parametrize(
    "size", [BATCH_SIZE - 1, BATCH_SIZE, 2 * BATCH_SIZE, 3 * MiB + MiB // 2 + 17]
)
async def test_multi_batch_file(tmp_path: Path, size: int) -> None:
    data = random.Random(size).randbytes(size)
    path = tmp_path / "f"
    path.write_bytes(data)
    assert await StdlibHasher().hash_file(path) == _expected(data)


async def test_write_and_hash_equals_hash_file(tmp_path: Path) -> None:
    rng = random.Random(1)
    chunks: list[bytes | bytearray | memoryview] = [
        b"x",
        rng.randbytes(100_000),
        b"",
        rng.randbytes(3 * MiB + 5),
        bytearray(rng.randbytes(7)),
        memoryview(rng.randbytes(2 * MiB)),
        *(rng.randbytes(1000) for _ in range(2000)),
    ]
    data = b"".join(bytes(c) for c in chunks)
    dest = tmp_path / "out"
    hasher = StdlibHasher()
    written = await hasher.write_and_hash(_aiter(chunks), dest)
    assert written == _expected(data)
    assert written == await hasher.hash_file(dest)
    assert dest.read_bytes() == data


async def test_write_and_hash_truncates_an_existing_file(tmp_path: Path) -> None:
    dest = tmp_path / "out"
    dest.write_bytes(b"old content that is longer")
    assert await StdlibHasher().write_and_hash(_aiter([b"new"]), dest) == _expected(b"new")
    assert dest.read_bytes() == b"new"


async def test_a_reused_producer_buffer_is_copied(tmp_path: Path) -> None:
    """A producer that refills one bytearray between yields must not corrupt the file."""

    async def reuse() -> AsyncIterator[bytes]:
        buffer = bytearray(64 * 1024)
        for i in range(40):
            buffer[:] = bytes([i]) * len(buffer)
            yield buffer  # type: ignore[misc]

    expected = b"".join(bytes([i]) * 64 * 1024 for i in range(40))
    dest = tmp_path / "out"
    assert await StdlibHasher().write_and_hash(reuse(), dest) == _expected(expected)
    assert dest.read_bytes() == expected


async def test_cancellation_removes_dest(tmp_path: Path) -> None:
    dest = tmp_path / "out"
    produced = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal produced
        while True:
            produced += 1
            yield os.urandom(256 * 1024)
            await anyio.sleep(0.001)

    with anyio.move_on_after(0.3) as scope:
        await StdlibHasher().write_and_hash(endless(), dest)
    assert scope.cancelled_caught
    assert produced > 2 * BATCH_SIZE // (256 * 1024), "some batches should have been written"
    assert not dest.exists()


async def test_a_failing_source_removes_dest(tmp_path: Path) -> None:
    async def failing() -> AsyncIterator[bytes]:
        yield os.urandom(3 * MiB)
        raise ConnectionResetError("peer went away")

    dest = tmp_path / "out"
    with pytest.raises(ConnectionResetError):
        await StdlibHasher().write_and_hash(failing(), dest)
    assert not dest.exists()


async def test_non_bytes_chunks_are_refused_and_dest_removed(tmp_path: Path) -> None:
    dest = tmp_path / "out"
    with pytest.raises(InvalidArgumentError, match="str"):
        await StdlibHasher().write_and_hash(_aiter([b"ok", "text"]), dest)  # type: ignore[list-item]
    assert not dest.exists()


async def test_missing_file_raises_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        await StdlibHasher().hash_file(tmp_path / "absent")


async def test_unwritable_dest_is_not_removed_and_error_propagates(tmp_path: Path) -> None:
    directory = tmp_path / "a-directory"
    directory.mkdir()
    with pytest.raises(IsADirectoryError):
        await StdlibHasher().write_and_hash(_aiter([b"x"]), directory)
    assert directory.is_dir()


async def test_the_event_loop_keeps_running_while_hashing(tmp_path: Path) -> None:
    data = os.urandom(64 * MiB)
    path = tmp_path / "big"
    path.write_bytes(data)
    gaps: list[float] = []
    done = anyio.Event()

    async def ticker() -> None:
        last = time.monotonic()
        while not done.is_set():
            await anyio.sleep(0.005)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    async with anyio.create_task_group() as tg:
        tg.start_soon(ticker)
        started = time.monotonic()
        digest = await StdlibHasher().hash_file(path)
        elapsed = time.monotonic() - started
        done.set()
    assert digest == _expected(data)
    assert len(gaps) >= 5
    # Hashing 64 MiB on the loop would stall it for the whole `elapsed`.
    assert max(gaps) < max(0.1, elapsed / 3)
