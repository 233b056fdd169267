"""boto3's managed transfer calls: ``upload_file``, ``download_file``, ``upload_fileobj``,
``download_fileobj``.

boto3 adds these four to its S3 client (from ``s3transfer``); code written for boto3
calls them more than ``put_object``. Here they are thin layers over ``put_object`` and
``get_object``, so every byte is delta-compressed on the way in and verified on the way
out, with boto3's parameters:

* ``ExtraArgs`` takes the keys boto3 allows for the call (``S3Transfer.ALLOWED_UPLOAD_ARGS``
  or ``ALLOWED_DOWNLOAD_ARGS`` of the installed boto3); any other key raises
  :class:`InvalidArgumentError` naming it, as boto3 raises ``ValueError``. Allowed keys
  are then honoured, set on the stored object or refused with a reason exactly as
  ``put_object``/``get_object`` do.
* ``Callback`` is called with the number of bytes transferred since its previous call,
  as boto3 calls it; the amounts of one call add up to the file's size.
* ``Config`` is ``None`` or a ``boto3.s3.transfer.TransferConfig``. Its part sizes and
  thread counts shape boto3's own HTTP transfers; here the client's configuration
  (``multipart_threshold``, ``multipart_chunksize``, ``max_concurrency``) decides them,
  since what is sent is a delta, not the file. ``io_chunksize`` sets the size of the reads
  (and so how often ``Callback`` is called); a ``max_bandwidth`` is refused, not ignored.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import AsyncIterable, AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any, Final, Protocol

import anyio
import anyio.to_thread
from boto3.s3.transfer import S3Transfer
from s3transfer.manager import TransferConfig

from . import _arguments as args
from . import _responses as shape
from ._errors import InvalidArgumentError, ObjectNotFoundError, translating_local
from .core.bulk import check_local_file
from .core.context import partial_path, remove_quietly

__all__ = ["TransferMethods"]

#: Bytes per read when ``Config`` does not say (as ``iter_chunks``).
DEFAULT_IO_CHUNK: Final = args.CHUNK
ALLOWED_UPLOAD_ARGS: Final = frozenset(S3Transfer.ALLOWED_UPLOAD_ARGS)
ALLOWED_DOWNLOAD_ARGS: Final = frozenset(S3Transfer.ALLOWED_DOWNLOAD_ARGS)

#: boto3's ``Callback``: called with the bytes transferred since its last call. An
#: ``async def`` callback is awaited on the async client.
TransferCallback = Callable[[int], object]


class _ObjectCalls(Protocol):
    """What the transfer calls need of the client they are part of."""

    async def put_object(
        self,
        Bucket: str,
        Key: str,
        Body: Any = None,
        Metadata: Mapping[str, str] | None = None,
        ContentType: str | None = None,
        **kwargs: Any,
    ) -> shape.PutObjectResponse: ...

    async def get_object(
        self, Bucket: str, Key: str, Range: str | None = None, **kwargs: Any
    ) -> shape.GetObjectResponse: ...


def _extra_args(
    method: str, extra: Mapping[str, Any] | None, allowed: frozenset[str]
) -> dict[str, Any]:
    if extra is None:
        return {}
    if not isinstance(extra, Mapping):
        raise InvalidArgumentError(
            f"{method}() ExtraArgs must be a dict, got {type(extra).__name__}"
        )
    invalid = sorted(str(name) for name in extra if name not in allowed)
    if invalid:
        raise InvalidArgumentError(
            f"{method}() got invalid ExtraArgs key(s) {', '.join(invalid)}: must be one of "
            f"{', '.join(sorted(allowed))}"
        )
    return dict(extra)


def _io_chunk(method: str, config: Any) -> int:
    """The read size ``Config`` asks for; refuses what cannot be honoured."""
    if config is None:
        return DEFAULT_IO_CHUNK
    if not isinstance(config, TransferConfig):
        raise InvalidArgumentError(
            f"{method}() Config must be a boto3.s3.transfer.TransferConfig, got "
            f"{type(config).__name__}"
        )
    if getattr(config, "max_bandwidth", None) is not None:
        raise InvalidArgumentError(
            f"{method}() does not support TransferConfig.max_bandwidth: deltaglider does not "
            "throttle transfers"
        )
    chunk = getattr(config, "io_chunksize", DEFAULT_IO_CHUNK)
    if not isinstance(chunk, int) or chunk <= 0:
        raise InvalidArgumentError(
            f"{method}() TransferConfig.io_chunksize must be a positive int, got {chunk!r}"
        )
    return chunk


def _callback(method: str, callback: Any) -> TransferCallback | None:
    if callback is not None and not callable(callback):
        raise InvalidArgumentError(
            f"{method}() Callback must be callable, got {type(callback).__name__}"
        )
    return callback  # type: ignore[no-any-return]


async def _report(callback: TransferCallback | None, amount: int) -> None:
    if callback is None or amount == 0:
        return
    result = callback(amount)
    if inspect.isawaitable(result):
        await result


async def _counted(
    chunks: AsyncIterable[bytes], callback: TransferCallback | None
) -> AsyncIterator[bytes]:
    """``chunks`` as they are consumed, each reported to ``callback``."""
    async for chunk in chunks:
        await _report(callback, len(chunk))
        yield chunk


async def _reader_chunks(read: Callable[[int], Any], size: int) -> AsyncIterator[bytes]:
    is_async = inspect.iscoroutinefunction(read)
    while True:
        chunk = await read(size) if is_async else await anyio.to_thread.run_sync(read, size)
        if isinstance(chunk, str):
            raise InvalidArgumentError("Fileobj returns str: open it in binary mode")
        if not chunk:
            return
        yield bytes(chunk)


def _as_head_404(exc: ObjectNotFoundError) -> None:
    """boto3's downloads HEAD the object first: a missing one fails with code ``404``."""
    exc.from_s3("404", 404, "HeadObject")


class TransferMethods:
    """The four managed transfer calls of boto3's S3 client, as coroutines."""

    async def upload_file(
        self: _ObjectCalls,
        Filename: str | os.PathLike[str],
        Bucket: str,
        Key: str,
        ExtraArgs: Mapping[str, Any] | None = None,
        Callback: TransferCallback | None = None,
        Config: Any = None,
    ) -> None:
        """Store the local file ``Filename`` at ``Key``, as boto3's ``upload_file`` does.

        The file is delta-compressed exactly as by :meth:`put_object` (``ExtraArgs`` holds
        its parameters: ``Metadata``, ``ContentType``, ``ACL``, ``Tagging``...).
        ``Callback(bytes)`` is called as the file is read; the amounts add up to its size.
        Returns ``None``, as boto3's does.

        Raises :class:`NotFoundError` (a ``FileNotFoundError``) for a missing file,
        :class:`InvalidArgumentError` for an ``ExtraArgs`` key boto3 does not allow or one
        deltaglider refuses, and whatever :meth:`put_object` raises (a reserved key, a
        missing bucket...). See :mod:`deltaglider_async._transfers` for ``Config``.
        """
        extra = _extra_args("upload_file", ExtraArgs, ALLOWED_UPLOAD_ARGS)
        chunk = _io_chunk("upload_file", Config)
        callback = _callback("upload_file", Callback)
        path = Path(os.fspath(Filename))
        await check_local_file(path)  # a missing file or a directory fails here, by name
        with translating_local(path, "read"):
            async with await anyio.open_file(path, "rb") as f:
                body = _counted(_reader_chunks(f.read, chunk), callback)
                await self.put_object(Bucket=Bucket, Key=Key, Body=body, **extra)

    async def upload_fileobj(
        self: _ObjectCalls,
        Fileobj: Any,
        Bucket: str,
        Key: str,
        ExtraArgs: Mapping[str, Any] | None = None,
        Callback: TransferCallback | None = None,
        Config: Any = None,
    ) -> None:
        """Store the bytes read from the binary file object ``Fileobj`` at ``Key``.

        ``Fileobj`` needs ``read(size)`` returning bytes (an ``async def read`` is
        awaited; a blocking one runs in a worker thread); it is read to its end from its
        current position and not closed. Otherwise as :meth:`upload_file`. Raises
        :class:`InvalidArgumentError` when ``Fileobj`` has no ``read`` or returns str.
        """
        extra = _extra_args("upload_fileobj", ExtraArgs, ALLOWED_UPLOAD_ARGS)
        chunk = _io_chunk("upload_fileobj", Config)
        callback = _callback("upload_fileobj", Callback)
        read = getattr(Fileobj, "read", None)
        if not callable(read):
            raise InvalidArgumentError(
                f"upload_fileobj() Fileobj must implement read, got {type(Fileobj).__name__}"
            )
        body = _counted(_reader_chunks(read, chunk), callback)
        await self.put_object(Bucket=Bucket, Key=Key, Body=body, **extra)

    async def download_file(
        self: _ObjectCalls,
        Bucket: str,
        Key: str,
        Filename: str | os.PathLike[str],
        ExtraArgs: Mapping[str, Any] | None = None,
        Callback: TransferCallback | None = None,
        Config: Any = None,
    ) -> None:
        """Write the verified bytes of ``Key`` (logical or ``.delta`` name) to ``Filename``.

        As boto3's ``download_file``: the bytes go to a temp file beside ``Filename``,
        renamed over it once complete, so a failure never leaves a partial or unverified
        file (a delta is reconstructed and verified before the first byte is written; a
        direct object's SHA-256 is checked before the rename). ``ExtraArgs`` holds
        :meth:`get_object`'s parameters (``ChecksumMode``...). ``Callback(bytes)`` is
        called as bytes are written; the amounts add up to the file's size.

        Raises :class:`ObjectNotFoundError` whose ``response["Error"]["Code"]`` is
        ``"404"`` (boto3's, from its HEAD), :class:`IntegrityError`,
        :class:`NotFoundError` for a missing local directory, and
        :class:`InvalidArgumentError` for an ``ExtraArgs`` key boto3 does not allow.
        """
        extra = _extra_args("download_file", ExtraArgs, ALLOWED_DOWNLOAD_ARGS)
        chunk = _io_chunk("download_file", Config)
        callback = _callback("download_file", Callback)
        destination = Path(os.fspath(Filename))
        try:
            response = await self.get_object(Bucket=Bucket, Key=Key, **extra)
        except ObjectNotFoundError as exc:
            _as_head_404(exc)
            raise
        partial = partial_path(destination)
        try:
            async with response["Body"] as body:
                with translating_local(destination, "write"):
                    async with await anyio.open_file(partial, "xb") as out:
                        async for data in body.iter_chunks(chunk):
                            await out.write(data)
                            await _report(callback, len(data))
                    await anyio.Path(partial).replace(destination)
        except BaseException:
            await remove_quietly(partial)
            raise

    async def download_fileobj(
        self: _ObjectCalls,
        Bucket: str,
        Key: str,
        Fileobj: Any,
        ExtraArgs: Mapping[str, Any] | None = None,
        Callback: TransferCallback | None = None,
        Config: Any = None,
    ) -> None:
        """Write the bytes of ``Key`` into the binary file object ``Fileobj``.

        ``Fileobj`` needs ``write(bytes)`` (an ``async def write`` is awaited; a blocking
        one runs in a worker thread); it is not closed. A delta is reconstructed and
        verified before the first byte is written; a direct object streams and its
        SHA-256 is checked at the end, so on an :class:`IntegrityError` the bytes already
        written must be discarded (use :meth:`download_file` for all-or-nothing). Otherwise
        as :meth:`download_file`.
        """
        extra = _extra_args("download_fileobj", ExtraArgs, ALLOWED_DOWNLOAD_ARGS)
        chunk = _io_chunk("download_fileobj", Config)
        callback = _callback("download_fileobj", Callback)
        write = getattr(Fileobj, "write", None)
        if not callable(write):
            raise InvalidArgumentError(
                f"download_fileobj() Fileobj must implement write, got {type(Fileobj).__name__}"
            )
        is_async = inspect.iscoroutinefunction(write)
        try:
            response = await self.get_object(Bucket=Bucket, Key=Key, **extra)
        except ObjectNotFoundError as exc:
            _as_head_404(exc)
            raise
        async with response["Body"] as body:
            async for data in body.iter_chunks(chunk):
                if is_async:
                    await write(data)
                else:
                    await anyio.to_thread.run_sync(write, data)
                await _report(callback, len(data))
