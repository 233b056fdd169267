"""The streaming ``Body`` of ``get_object``: an async, boto3-like file object.

Two sources feed it:

* a private temp file holding a delta reconstruction that was already verified (the
  file is removed when the body is closed), optionally sliced to a byte range;
* an S3 GET of a directly stored or plain object, streamed as it arrives; when the whole
  object is read and a SHA-256 was recorded, the digest is checked at the end and a
  mismatch raises :class:`IntegrityError` from the read that reached the end.
"""

from __future__ import annotations

import hashlib
import os
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from types import TracebackType
from typing import Final, Self

import anyio
import anyio.to_thread

from ._errors import ClientClosedError, IntegrityError, InvalidArgumentError
from .ports.storage import ObjectBody

__all__ = ["DEFAULT_CHUNK_SIZE", "AsyncStreamingBody"]

DEFAULT_CHUNK_SIZE: Final = 1024 * 1024
# Hash large chunks in a worker thread: hashlib releases the GIL for them.
_THREAD_HASH_THRESHOLD: Final = 256 * 1024

OnClose = Callable[["AsyncStreamingBody"], Awaitable[None]]


class _FileSource:
    """``length`` bytes of a local file from ``offset``; the file is deleted on close.

    The file is opened for each read and closed after it, so a body kept without being
    closed holds no file descriptor; if it is garbage-collected unclosed, the file is
    removed then (a finalizer), so a long-lived client does not accumulate copies.
    """

    def __init__(self, path: Path, offset: int, length: int) -> None:
        self._path = path
        self._position = offset
        self._remaining = length
        self._finalizer = weakref.finalize(self, _remove_quietly, path, os.getpid())

    async def read(self, amt: int | None) -> bytes:
        if self._remaining <= 0:
            return b""
        size = self._remaining if amt is None else min(amt, self._remaining)
        async with await anyio.open_file(self._path, "rb") as file:
            await file.seek(self._position)
            data = await file.read(size)
        self._position += len(data)
        self._remaining -= len(data)
        if len(data) < size:
            self._remaining = 0
            raise IntegrityError(
                f"the reconstructed file {self._path} ended early: {len(data)} of {size} bytes read"
            )
        return data

    async def aclose(self) -> None:
        self._finalizer.detach()
        try:
            await anyio.Path(self._path).unlink(missing_ok=True)
        except OSError:
            pass


def _remove_quietly(path: Path, owner: int) -> None:
    """Remove ``path``, only in the process that made it (a forked child inherits the
    finalizer but not the file's ownership)."""
    if os.getpid() != owner:
        return
    try:
        os.unlink(path)
    except OSError:
        pass


class _StreamSource:
    """An S3 GET, verified against ``expected_sha256``/``expected_size`` when given."""

    def __init__(
        self,
        body: ObjectBody,
        *,
        label: str,
        expected_sha256: str | None,
        expected_size: int | None,
    ) -> None:
        self._body = body
        self._label = label
        self._expected_sha256 = expected_sha256
        self._expected_size = expected_size
        self._hash = hashlib.sha256() if expected_sha256 else None
        self._seen = 0
        self._done = False

    async def read(self, amt: int | None) -> bytes:
        if self._done:
            return b""
        data = await self._body.read(amt)
        if data:
            self._seen += len(data)
            if self._hash is not None:
                if len(data) >= _THREAD_HASH_THRESHOLD:
                    await anyio.to_thread.run_sync(self._hash.update, data)
                else:
                    self._hash.update(data)
        reached_end = self._expected_size is not None and self._seen >= self._expected_size
        if not data or amt is None or reached_end:
            self._done = True
            self._verify()
        return data

    def _verify(self) -> None:
        if self._expected_size is not None and self._seen != self._expected_size:
            raise IntegrityError(
                f"{self._label}: received {self._seen} bytes, expected {self._expected_size}"
            )
        if self._hash is not None and self._hash.hexdigest() != self._expected_sha256:
            raise IntegrityError(
                f"{self._label}: sha256 {self._hash.hexdigest()} does not match the recorded "
                f"{self._expected_sha256}: the stored object is corrupted"
            )

    async def aclose(self) -> None:
        await self._body.aclose()


class AsyncStreamingBody:
    """The ``Body`` of an async ``get_object`` response.

    Read it with ``await body.read()`` / ``await body.read(amt)`` or
    ``async for chunk in body.iter_chunks(chunk_size)`` (or ``iter_lines``/``readlines``, as
    in botocore), then ``await body.close()`` (or use
    ``async with body:``). ``aread``/``aiter_chunks``/``aclose`` are aliases named after the
    httpx convention. Closing is idempotent and releases the HTTP connection or removes
    the reconstructed temp file; the client also closes bodies left open when it closes.

    Integrity: a delta is reconstructed and verified before the response is returned, so
    every byte read is final. A directly stored object is streamed as it arrives and its
    SHA-256 is checked when the end is reached (full reads only, not ranges): a mismatch
    raises :class:`IntegrityError` from the read that reached the end, after the earlier
    bytes were handed out. Callers that need all-or-nothing should use ``download()``.
    """

    def __init__(
        self,
        source: _FileSource | _StreamSource,
        *,
        content_length: int,
        label: str,
        on_close: OnClose | None = None,
    ) -> None:
        self._source = source
        self._content_length = content_length
        self._label = label
        self._on_close = on_close
        self._closed = False
        self._pending_line = b""

    @classmethod
    def from_file(
        cls,
        path: Path,
        *,
        offset: int,
        length: int,
        label: str,
        on_close: OnClose | None = None,
    ) -> AsyncStreamingBody:
        """Serve ``length`` bytes of ``path`` from ``offset``; ``path`` is removed on close."""
        return cls(
            _FileSource(path, offset, length),
            content_length=length,
            label=label,
            on_close=on_close,
        )

    @classmethod
    def from_stream(
        cls,
        body: ObjectBody,
        *,
        label: str,
        expected_sha256: str | None = None,
        expected_size: int | None = None,
        on_close: OnClose | None = None,
    ) -> AsyncStreamingBody:
        """Serve an S3 GET, checking the digest and size at the end when they are given."""
        source = _StreamSource(
            body, label=label, expected_sha256=expected_sha256, expected_size=expected_size
        )
        return cls(source, content_length=body.content_length, label=label, on_close=on_close)

    @property
    def content_length(self) -> int:
        """Number of bytes this body carries in total."""
        return self._content_length

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closed

    async def read(self, amt: int | None = None) -> bytes:
        """Read up to ``amt`` bytes (everything left when ``None``); ``b""`` at the end.

        Raises :class:`IntegrityError` from the read that reaches the end of a direct
        object whose bytes do not match the recorded SHA-256, and
        :class:`ClientClosedError` after :meth:`close`.
        """
        if self._closed:
            raise ClientClosedError(f"the body of {self._label} is closed")
        if amt is not None and amt < 0:
            amt = None
        if amt == 0:
            return b""
        return await self._source.read(amt)

    async def iter_chunks(self, chunk_size: int = DEFAULT_CHUNK_SIZE) -> AsyncIterator[bytes]:
        """Yield the remaining bytes in chunks of at most ``chunk_size`` bytes."""
        if chunk_size <= 0:
            raise InvalidArgumentError(f"chunk_size must be positive, got {chunk_size}")
        while chunk := await self.read(chunk_size):
            yield chunk

    async def read_lines(self, chunk_size: int = 1024, keepends: bool = False) -> list[bytes]:
        """Read on until at least one line is complete and return the complete lines.

        Lines end at ``\n``, ``\r\n`` or ``\r`` (kept when ``keepends``); the last line
        needs no ending. Returns ``[]`` only at the end of the body. :meth:`iter_lines`
        and :meth:`readlines` are built on it, as the blocking body's are.
        """
        if chunk_size <= 0:
            raise InvalidArgumentError(f"chunk_size must be positive, got {chunk_size}")
        while True:
            chunk = await self.read(chunk_size)
            text = self._pending_line + chunk
            lines = text.splitlines(keepends=True)
            # The last piece may continue in the next chunk (a "\r" may be half of "\r\n").
            self._pending_line = lines.pop() if chunk and lines else b""
            if not chunk and not lines:
                return []
            if lines:
                return lines if keepends else [line.rstrip(b"\r\n") for line in lines]

    async def iter_lines(
        self, chunk_size: int = 1024, keepends: bool = False
    ) -> AsyncIterator[bytes]:
        """Yield the remaining lines, as botocore's ``StreamingBody.iter_lines`` does."""
        while lines := await self.read_lines(chunk_size, keepends):
            for line in lines:
                yield line

    async def readlines(self) -> list[bytes]:
        """All remaining lines, each with its line ending."""
        return [line async for line in self.iter_lines(DEFAULT_CHUNK_SIZE, keepends=True)]

    async def close(self) -> None:
        """Release the connection or remove the temp file; idempotent."""
        if self._closed:
            return
        self._closed = True
        with anyio.CancelScope(shield=True):
            try:
                await self._source.aclose()
            finally:
                if self._on_close is not None:
                    await self._on_close(self)

    aread = read
    aiter_chunks = iter_chunks
    aclose = close

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self.iter_chunks()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<AsyncStreamingBody {self._label} {self._content_length} bytes {state}>"
