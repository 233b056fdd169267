"""The hashing adapter: SHA-256 and MD5 in one pass, with file I/O in worker threads.

Each batch of about 1 MiB is read (or written) and hashed in one worker-thread call:
``hashlib`` releases the GIL on large updates, memory stays constant, and a cancelled
call stops between two batches.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import AsyncIterable
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Final

import anyio
import anyio.to_thread

from .._errors import InvalidArgumentError
from ..ports.hash import FileDigest

if TYPE_CHECKING:
    from _hashlib import HASH

__all__ = ["BATCH_SIZE", "StdlibHasher"]

BATCH_SIZE: Final = 1024 * 1024


def _open_read(path: Path) -> BinaryIO:
    return open(path, "rb")


def _open_write(path: Path) -> BinaryIO:
    return open(path, "wb")


class _Digests:
    """SHA-256, MD5 and byte count fed together."""

    __slots__ = ("_md5", "_sha256", "size")

    def __init__(self) -> None:
        self._sha256: HASH = hashlib.sha256()
        self._md5: HASH = hashlib.md5(usedforsecurity=False)
        self.size = 0

    def update(self, data: bytes) -> None:
        self._sha256.update(data)
        self._md5.update(data)
        self.size += len(data)

    def result(self) -> FileDigest:
        return FileDigest(
            sha256=self._sha256.hexdigest(), md5=self._md5.hexdigest(), size=self.size
        )


def _read_batch(file: BinaryIO, digests: _Digests) -> int:
    data = file.read(BATCH_SIZE)
    digests.update(data)
    return len(data)


def _write_batch(file: BinaryIO, digests: _Digests, data: bytes) -> None:
    digests.update(data)
    file.write(data)


def _close_and_remove(file: BinaryIO, path: Path) -> None:
    # Best effort: a failure here must not hide the error that made us clean up.
    with contextlib.suppress(OSError):
        file.close()
    with contextlib.suppress(OSError):
        path.unlink()


class StdlibHasher:
    """:class:`~deltaglider_async.ports.HashPort` using ``hashlib``, off the event loop."""

    async def hash_file(self, path: Path) -> FileDigest:
        """SHA-256, MD5 and size of the file at ``path``, read once in ~1 MiB batches."""
        file: BinaryIO = await anyio.to_thread.run_sync(_open_read, path)
        try:
            digests = _Digests()
            while await anyio.to_thread.run_sync(_read_batch, file, digests):
                pass
            return digests.result()
        finally:
            file.close()

    async def write_and_hash(self, chunks: AsyncIterable[bytes], dest: Path) -> FileDigest:
        """Write ``chunks`` to ``dest`` (created or truncated) and digest them in one pass.

        ``dest`` is closed on every path; if anything fails or the call is cancelled,
        ``dest`` is removed. Chunks must be bytes-like (``bytes``, ``bytearray``,
        ``memoryview``); anything else raises :class:`InvalidArgumentError`.
        """
        file: BinaryIO = await anyio.to_thread.run_sync(_open_write, dest)
        try:
            digests = _Digests()
            pending: list[bytes] = []
            pending_size = 0
            async for chunk in chunks:
                if not isinstance(chunk, bytes | bytearray | memoryview):
                    raise InvalidArgumentError(
                        f"body chunks must be bytes-like, got {type(chunk).__name__}"
                    )
                if not chunk:
                    continue
                if not isinstance(chunk, bytes):
                    # Batches are written later: copy buffers the producer may reuse.
                    chunk = bytes(chunk)
                pending.append(chunk)
                pending_size += len(chunk)
                if pending_size >= BATCH_SIZE:
                    # One large update releases the GIL; many small ones would not.
                    batch = pending[0] if len(pending) == 1 else b"".join(pending)
                    pending = []
                    pending_size = 0
                    await anyio.to_thread.run_sync(_write_batch, file, digests, batch)
            if pending:
                batch = pending[0] if len(pending) == 1 else b"".join(pending)
                await anyio.to_thread.run_sync(_write_batch, file, digests, batch)
            await anyio.to_thread.run_sync(file.close)
        except BaseException:
            _close_and_remove(file, dest)
            raise
        return digests.result()
