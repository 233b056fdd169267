"""A key list: a text file naming one object key a line, read one shard's share at a time.

The file is a local path or an ``s3://bucket/key`` object, UTF-8, lines ending in ``\\n``
(a ``\\r`` before it is dropped, empty lines are ignored). Shard ``k`` of ``n`` reads only
bytes ``[k * size // n, (k + 1) * size // n)`` of it, extended to whole lines: a line
belongs to the shard its first byte falls in. From S3 that is one ranged GET, read until
the shard's last line ends, so ``n`` shards together read the file about once.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from pathlib import Path
from typing import Final

import anyio

from .._errors import InvalidArgumentError, ObjectNotFoundError, translating_local
from .._models import S3Url
from ..ports.storage import StoragePort
from .shards import Shard, share_of

__all__ = ["read_keys"]

_CHUNK: Final = 1024 * 1024


async def _local_chunks(path: Path, start: int) -> AsyncGenerator[bytes]:
    with translating_local(path, "read the key list"):
        async with await anyio.open_file(path, "rb") as f:
            await f.seek(start)
            while chunk := await f.read(_CHUNK):
                yield chunk


async def _s3_chunks(storage: StoragePort, url: S3Url, start: int) -> AsyncGenerator[bytes]:
    body = await storage.open(url.bucket, url.key, range=f"bytes={start}-")
    try:
        async for chunk in body.iter_chunks(_CHUNK):
            yield chunk
    finally:
        with anyio.CancelScope(shield=True):
            await body.aclose()


async def _size(storage: StoragePort, location: str) -> int:
    if location.startswith("s3://"):
        url = S3Url.parse(location)
        head = await storage.head(url.bucket, url.key)
        if head is None:
            await storage.head_bucket(url.bucket)
            raise ObjectNotFoundError(f"key list {location} not found")
        return head.size
    path = Path(location)
    with translating_local(path, "read the key list"):
        stat = await anyio.Path(path).stat()
    return stat.st_size


async def read_keys(storage: StoragePort, location: str, shard: Shard | None) -> AsyncIterator[str]:
    """The keys of the list at ``location`` (local path or ``s3://``) that ``shard`` takes.

    Without a shard, every key. Raises :class:`ObjectNotFoundError` (or
    :class:`NotFoundError` for a local file) when the list is missing, and
    :class:`InvalidArgumentError` for a line that is not UTF-8.
    """
    size = await _size(storage, location)
    share = share_of(size, shard) if shard is not None else range(size)
    if not share:
        return
    # Start one byte early: a line starts in the share if the byte before it is a newline.
    start = max(share.start - 1, 0)
    position = start
    pending = b""
    skip_first = share.start > 0
    chunks = (
        _s3_chunks(storage, S3Url.parse(location), start)
        if location.startswith("s3://")
        else _local_chunks(Path(location), start)
    )
    async with aclosing(chunks):
        async for chunk in chunks:
            pending += chunk
            lines = pending.split(b"\n")
            pending = lines.pop()
            for line in lines:
                line_start, position = position, position + len(line) + 1
                if skip_first:
                    skip_first = False
                    continue
                if line_start >= share.stop:
                    return
                if key := _key(line, location, line_start):
                    yield key
    last = _key(pending, location, position) if not skip_first else ""
    if last and position < share.stop:
        yield last


def _key(line: bytes, location: str, offset: int) -> str:
    try:
        return line.removesuffix(b"\r").decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidArgumentError(
            f"key list {location}: the line at byte {offset} is not UTF-8"
        ) from None
