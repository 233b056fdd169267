"""AsyncDeltaGliderClient: the documented API as coroutines, shaped like boto3's S3 client.

Two families of methods share one :class:`AsyncDeltaService`:

* boto3-shaped (``put_object``, ``get_object``, ``list_objects``...): CamelCase parameters
  and dict responses with boto3's keys, plus deltaglider's own figures under
  ``DeltaGliderInfo``/``DeltaGlider``;
* the simple API of deltaglider 6.x: ``upload``, ``download``, ``verify``, ``clear_cache``.

Lifecycle: a client is *unopened* when built, *opened* inside ``async with`` and *closed*
after :meth:`AsyncDeltaGliderClient.aclose` (or leaving the block). Opening does no I/O:
the S3 client is created on first use. A closed client cannot be reopened; every method
then raises :class:`ClientClosedError`.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import logging
import os
import weakref
from collections.abc import (
    Awaitable,
    Callable,
    Coroutine,
    Iterable,
    Mapping,
    Sequence,
)
from datetime import timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Literal, ParamSpec, Self, TypeVar, cast
from urllib.parse import quote

import anyio
import anyio.to_thread

from . import _arguments as args
from . import _cleanup
from . import _paginators as paging
from . import _rehydrate as rehydrate
from . import _responses as shape
from ._body import AsyncStreamingBody
from ._boto3_params import OBJECT_SETTINGS, Accepted, accept
from ._conditions import READ_CONDITIONS, check_read, check_write, etag_matches, same_second
from ._config import DeltaGliderConfig
from ._errors import (
    BucketNotFoundError,
    ClientClosedError,
    DeltaGliderError,
    IntegrityError,
    InvalidArgumentError,
    ObjectChangedError,
    ObjectNotFoundError,
    PreconditionFailedError,
    single_errors,
    translating_local,
)
from ._errors import exceptions as boto3_exceptions
from ._factory import GivenService, ServiceBundle, build_service
from ._models import (
    DELTA_SUFFIX,
    BucketStats,
    DeltaSpace,
    DirectoryStats,
    GetSummary,
    ObjectKey,
    S3Url,
    UploadSummary,
)
from ._response_metadata import recording
from ._scratch import ScratchDir, sweep_once
from ._transfers import TransferMethods
from .adapters.logging import hold_log_level, release_log_level
from .core import bulk as _bulk
from .core import bulk_delete, telemetry
from .core import metadata as meta_codec
from .core import migrate as _migrate
from .core import rebase as _rebase
from .core import stats as _stats
from .core.bulk import DownloadItem, ItemResult, Progress, ProgressCallback, UploadItem
from .core.hidden import HiddenObject, find_hidden
from .core.keys import KeyRole, is_hidden, role
from .core.listing import Cursor, ListingOrder, LogicalPage, list_logical
from .core.migrate import MigrationReport
from .core.operations import Operations
from .core.planner import check_user_key, validate_ratio
from .core.pool import for_each
from .core.rebase import RebaseReport
from .core.service import AsyncDeltaService, ResolvedObject
from .core.stats import StatsMode
from .ports.logger import LOGGER_NAME
from .ports.storage import BucketsPort, MultipartUploadsPort, ObjectHead, ObjectInfo
from .ports.tracing import SpanPort

__all__ = ["AsyncDeltaGliderClient", "ClientState"]

_log = logging.getLogger(LOGGER_NAME)

CHUNK: Final = args.CHUNK
MAX_KEYS: Final = args.MAX_KEYS
#: Reads of a name whose stored form keeps changing under them, before giving up.
_READ_ATTEMPTS: Final = 3
#: Upper bound on closing everything in :meth:`AsyncDeltaGliderClient.aclose`.
CLOSE_TIMEOUT: Final = 30.0

_P = ParamSpec("_P")
_R = TypeVar("_R")
_T = TypeVar("_T")


class ClientState(enum.Enum):
    """Where a client is in its life: built, inside ``async with``, or closed for good."""

    UNOPENED = "unopened"
    OPENED = "opened"
    CLOSED = "closed"


def _api(method: Callable[_P, Awaitable[_R]]) -> Callable[_P, Coroutine[Any, Any, _R]]:
    """Refuse calls on a closed client; re-raise task-group failures as single errors;
    collect the S3 responses behind the call for its ``ResponseMetadata``."""

    @functools.wraps(method)
    async def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        cast("AsyncDeltaGliderClient", args[0])._check_usable()
        with single_errors(), recording():
            return await method(*args, **kwargs)

    return wrapper


class AsyncDeltaGliderClient(TransferMethods):
    """Delta-compressed S3 storage with a boto3-like async API.

    Build it with :func:`create_async_client` (recommended), from a
    :class:`DeltaGliderConfig`, or over an :class:`AsyncDeltaService` and its adapters
    (``AsyncDeltaGliderClient(service, endpoint_url=None)``, as the API reference
    documents; the client then closes the service's adapters with itself), and use it as
    ``async with client:``. The constructor does no I/O. One client may serve many
    concurrent tasks of one event loop; it must not be shared across event loops.

    boto3's managed transfers (``upload_file``, ``download_file``, ``upload_fileobj``,
    ``download_fileobj``) come from :class:`~deltaglider_async._transfers.TransferMethods`.

    Errors are the :class:`DeltaGliderError` tree (``ObjectNotFoundError`` is a
    ``FileNotFoundError``, ``InvalidArgumentError`` a ``ValueError``...); an
    ``ExceptionGroup`` never escapes a method. Each error has boto3's ``response`` and
    ``operation_name``, and :attr:`exceptions` names the classes as boto3's
    ``client.exceptions`` does (``client.exceptions.NoSuchKey``...).
    """

    #: The error classes under boto3's names: ``ClientError`` (every error),
    #: ``NoSuchKey``, ``NoSuchBucket``, ``BucketAlreadyExists``.
    exceptions: Any = boto3_exceptions

    def __init__(
        self,
        service: AsyncDeltaService | DeltaGliderConfig | None = None,
        endpoint_url: str | None = None,
    ) -> None:
        if isinstance(service, AsyncDeltaService):
            # The API reference's DeltaGliderClient(service, endpoint_url): the client runs
            # on the given service and its adapters, and closes them with itself.
            self._config = DeltaGliderConfig.of_service(
                service.storage,
                tool_version=service.tool_version,
                max_ratio=service.max_ratio,
                endpoint_url=endpoint_url,
            ).with_changes(rebase_ratio=service.rebase_ratio)
            self._bundle: ServiceBundle | GivenService = GivenService.of(self._config, service)
        else:
            config = service if service is not None else DeltaGliderConfig.from_env()
            if endpoint_url is not None:
                config = config.with_changes(endpoint_url=endpoint_url)
            self._config = config
            self._bundle = build_service(self._config)
        if self._config.log_level is not None:
            hold_log_level(self, self._config.log_level)
        self._state = ClientState.UNOPENED
        # Weak: a body the caller dropped unclosed is collected (its source cleans up).
        self._bodies: weakref.WeakSet[AsyncStreamingBody] = weakref.WeakSet()
        self._work = ScratchDir("client")
        self._key_order = ListingOrder()

    # ------------------------------------------------------------------ lifecycle

    @property
    def config(self) -> DeltaGliderConfig:
        """The configuration this client was built with."""
        return self._config

    @property
    def state(self) -> ClientState:
        """``UNOPENED``, ``OPENED`` or ``CLOSED``."""
        return self._state

    @property
    def service(self) -> AsyncDeltaService:
        """The :class:`AsyncDeltaService` behind this client (put/get/verify/delete)."""
        self._check_usable()
        return self._bundle.service

    def _buckets(self) -> BucketsPort:
        """The storage's bucket administration (``S3Storage`` has it; a custom storage
        without it cannot create, list or delete buckets, nor presign)."""
        storage = self._bundle.storage
        if not isinstance(storage, BucketsPort):
            raise InvalidArgumentError(
                f"{type(storage).__name__} offers no bucket operations (BucketsPort)"
            )
        return storage

    def _operations(self) -> Operations:
        """The service and this client's bounds, for the operations over many objects."""
        config = self._bundle.config
        return Operations(self.service, config.concurrency, config.metadata_concurrency)

    def _check_usable(self) -> None:
        if self._state is ClientState.CLOSED:
            raise ClientClosedError("this deltaglider client is closed; create a new one")

    async def __aenter__(self) -> Self:
        self._check_usable()
        if self._state is ClientState.OPENED:
            raise DeltaGliderError("this deltaglider client is already open (one `async with`)")
        self._state = ClientState.OPENED
        # Staged copies left by killed processes of this user (see _scratch).
        await anyio.to_thread.run_sync(sweep_once)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close open bodies, the S3 client and the local caches; idempotent.

        Shielded from cancellation and bounded in time, so it is safe in ``finally``.
        """
        if self._state is ClientState.CLOSED:
            return
        self._state = ClientState.CLOSED
        with anyio.move_on_after(CLOSE_TIMEOUT, shield=True):
            for body in list(self._bodies):
                try:
                    await body.close()
                except Exception as exc:  # closing is best effort
                    _log.warning("closing a response body failed: %s", exc)
            try:
                await self._bundle.aclose()
            finally:
                release_log_level(self)
                await anyio.to_thread.run_sync(self._work.remove)

    async def _forget_body(self, body: AsyncStreamingBody) -> None:
        self._bodies.discard(body)

    # ------------------------------------------------------------------ objects

    @_api
    async def put_object(
        self,
        Bucket: str,
        Key: str,
        Body: Any = None,
        Metadata: Mapping[str, str] | None = None,
        ContentType: str | None = None,
        **kwargs: Any,
    ) -> shape.PutObjectResponse:
        """Store ``Body`` at ``Key``, as a delta against the key's deltaspace when eligible.

        ``Body`` may be ``bytes``/``bytearray``/``memoryview``, ``str`` (UTF-8), a
        ``pathlib.Path`` (or any ``os.PathLike``) naming a local file, a binary file object
        (its blocking ``read`` runs in a worker thread; an ``async def read`` is awaited),
        an async iterator of bytes, or ``None`` (an empty object, as boto3 stores).
        Anything else raises :class:`InvalidArgumentError` naming the type. ``Metadata`` is
        stored as ``user-<name>`` metadata and returned without the prefix;
        ``ContentType`` becomes the object's Content-Type.

        boto3's other parameters: ``ACL``, ``StorageClass``, ``Tagging``,
        ``ServerSideEncryption``, ``SSEKMSKeyId``, ``CacheControl``, ``ContentDisposition``,
        ``ContentEncoding``, ``ContentLanguage``, ``Expires``, ``Grant*`` are set on the
        stored object (server-side encryption also on a reference this put creates);
        ``ContentMD5``, ``ChecksumSHA256`` and ``ContentLength`` are checked against the
        bytes before anything is stored; ``IfNoneMatch="*"`` and ``IfMatch`` are checked
        against the name's current ETag (before the write); ``ChecksumAlgorithm="SHA256"``
        adds ``ChecksumSHA256`` to the response, and any other algorithm is refused (the
        file's SHA-256 is what deltaglider records). Others raise
        :class:`InvalidArgumentError` naming them (see :mod:`deltaglider_async._boto3_params`).

        Returns ``ETag`` (the quoted MD5 of the original bytes) and ``DeltaGliderInfo``:
        ``IsDelta``, ``StoredAs`` (``reference`` for the first file of a deltaspace,
        ``delta`` or ``direct``), ``OriginalSizeMB``, ``StoredSizeMB``, ``SavingsPercent``,
        ``DeltaRatio``, ``Operation`` and ``StoredKey``.

        Raises :class:`ReservedKeyError` for keys named ``reference.bin`` or ending in
        ``.delta`` before anything is read or written, :class:`BucketNotFoundError` for a
        missing bucket, :class:`PreconditionFailedError` when a condition does not hold.
        """
        bucket, key = args.bucket_name(Bucket), args.key_name(Key)
        check_user_key(key)
        extra = await accept("put_object", kwargs, honoured=_PUT_HONOURED, settings=OBJECT_SETTINGS)
        checks = args.content_checks(extra.honoured)
        target = ObjectKey(bucket, key)
        await self._check_write_conditions(target, extra.honoured)
        chunks = await args.body_chunks(b"" if Body is None else Body)
        summary = await self._bundle.service.put_stream(
            chunks,
            target.space,
            target.name,
            metadata=Metadata,
            content_type=ContentType,
            settings=extra.settings,
            checks=checks,
        )
        want_sha = "ChecksumSHA256" in extra.honoured or "ChecksumAlgorithm" in extra.honoured
        return shape.put_response(summary, checksum_sha256=want_sha)

    async def _check_write_conditions(self, target: ObjectKey, honoured: Mapping[str, Any]) -> None:
        if "IfNoneMatch" not in honoured and "IfMatch" not in honoured:
            return
        try:
            current: str | None = (await self._bundle.service.resolve(target)).etag
        except ObjectNotFoundError:
            current = None
        check_write(target.url, honoured, current)

    @_api
    async def get_object(
        self, Bucket: str, Key: str, Range: str | None = None, **kwargs: Any
    ) -> shape.GetObjectResponse:
        """Open ``Key`` (its logical or ``.delta`` name) for streaming reads.

        The response carries ``Body`` (an :class:`AsyncStreamingBody`: ``read``,
        ``iter_chunks``, ``close``, ``async with``), ``ContentLength``, ``ContentType``,
        ``ETag`` (quoted MD5 of the original), ``LastModified``, ``Metadata`` (the caller's
        own, without prefix), the object settings S3 returns (``CacheControl``,
        ``StorageClass``, ``ServerSideEncryption``...) and, for ranges, ``ContentRange``.
        Close the body when done.

        A delta is reconstructed into a private temp file and verified *before* this
        returns, so every byte read is final; the file is removed when the body closes. A
        directly stored object streams from S3 and its SHA-256 is checked at the end of a
        full read: a mismatch raises :class:`IntegrityError` from the last read, after the
        earlier bytes were handed out. Use :meth:`download` when you need all-or-nothing.
        Plain S3 objects (not written by deltaglider) stream as they are.

        ``Range`` accepts ``bytes=START-END``, ``bytes=START-`` and ``bytes=-SUFFIX``, for
        deltas too; a malformed or unsatisfiable range raises :class:`InvalidArgumentError`.
        A range of a deltaglider object (delta or direct) is served from a verified local
        copy, since a range alone cannot be checked against the whole file's SHA-256; a
        range of a plain S3 object is fetched as it is.

        boto3's ``IfMatch``, ``IfNoneMatch``, ``IfModifiedSince``, ``IfUnmodifiedSince``
        apply to the file's ETag and LastModified (:class:`PreconditionFailedError`,
        :class:`NotModifiedError`); ``Response*`` parameters set the response's headers;
        ``ChecksumMode="ENABLED"`` adds the file's ``ChecksumSHA256`` (and, for an object
        stored direct, the checksums S3 keeps for it) to a whole-object response; the
        SHA-256 is checked on every read anyway. Others raise :class:`InvalidArgumentError`
        naming them.

        An object deltaglider wrote but whose metadata was lost (a ``.delta`` copied by a
        tool that dropped ``x-amz-meta-*``) raises :class:`UnverifiableObjectError`: its
        bytes are never handed out as the file.
        """
        bucket, key = args.bucket_name(Bucket), args.key_name(Key)
        extra = await accept("get_object", kwargs, honoured=_READ_HONOURED)
        wanted = None if Range is None else args.parse_range(Range)
        start = telemetry.object_attributes(bucket, key)
        with self._bundle.service.tracing.span("deltaglider.get", start) as span:
            return await self._get_object(bucket, key, wanted, Range, extra, span)

    async def _get_object(
        self,
        bucket: str,
        key: str,
        wanted: tuple[int | None, int | None] | None,
        spec: Any,
        extra: Accepted,
        span: SpanPort,
    ) -> shape.GetObjectResponse:
        # A writer may replace the name between our HEAD and GET (a delta becoming a
        # direct object, or back): the form we resolved is then gone, and the name is
        # resolved again rather than reported missing.
        for attempt in range(1, _READ_ATTEMPTS + 1):
            resolved = await self._bundle.service.resolve(ObjectKey(bucket, key))
            resolved.check_readable()
            check_read(
                resolved.stored.url, extra.honoured, resolved.etag, shape.last_modified(resolved)
            )
            kind = resolved.meta.kind
            span.set_attributes(telemetry.resolved_attributes(resolved))
            try:
                if kind is meta_codec.ObjectKind.DELTA or (
                    wanted is not None and kind is not meta_codec.ObjectKind.PLAIN
                ):
                    response = await self._get_reconstructed(resolved, wanted, spec, extra)
                else:
                    response = await self._get_streamed(resolved, wanted, spec, extra)
            except (ObjectNotFoundError, ObjectChangedError):
                if attempt == _READ_ATTEMPTS:
                    raise
                continue
            return shape.with_overrides(response, extra.honoured)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _get_reconstructed(
        self,
        resolved: ResolvedObject,
        wanted: tuple[int | None, int | None] | None,
        spec: Any,
        extra: Accepted,
    ) -> shape.GetObjectResponse:
        label = f"s3://{resolved.stored.bucket}/{resolved.logical_key}"
        path = self._work.new_path("get")
        try:
            summary, served = await self._bundle.service.reconstruct_current(resolved, path)
            if served.etag != resolved.etag:
                check_read(
                    served.stored.url, extra.honoured, served.etag, shape.last_modified(served)
                )
            resolved = served
            size = summary.size
            span = None if wanted is None else args.span(wanted, size, spec, label)
            offset, length = (0, size) if span is None else (span[0], span[1] - span[0] + 1)
            body = AsyncStreamingBody.from_file(
                path, offset=offset, length=length, label=label, on_close=self._forget_body
            )
        except BaseException:
            await _unlink_quietly(path)
            raise
        self._bodies.add(body)
        content_range = None if span is None else f"bytes {span[0]}-{span[1]}/{size}"
        return shape.with_checksums(
            shape.get_response(resolved, body, content_range), resolved, extra.honoured
        )

    async def _get_streamed(
        self,
        resolved: ResolvedObject,
        wanted: tuple[int | None, int | None] | None,
        spec: Any,
        extra: Accepted,
    ) -> shape.GetObjectResponse:
        bucket, key = resolved.stored.bucket, resolved.stored.key
        label = f"s3://{bucket}/{key}"
        size = resolved.head.size
        span = None if wanted is None else args.span(wanted, size, spec, label)
        http_range = None if span is None else f"bytes={span[0]}-{span[1]}"
        obj = await self._bundle.storage.open(bucket, key, range=http_range)
        try:
            # The GET's own headers describe the bytes it carries, even if the object was
            # replaced since the HEAD.
            live = ResolvedObject(
                resolved.stored, resolved.logical_key, obj.head, meta_codec.decode(obj.head)
            )
            live.check_readable()
            if live.etag != resolved.etag:
                check_read(live.stored.url, extra.honoured, live.etag, shape.last_modified(live))
            expected_sha = expected_size = None
            if span is None and live.meta.kind is not meta_codec.ObjectKind.PLAIN:
                expected_sha, expected_size = live.meta.file_sha256, live.meta.file_size
                if expected_size is not None and obj.content_length != expected_size:
                    raise IntegrityError(
                        f"{label} holds {obj.content_length} bytes but its metadata records "
                        f"{expected_size}: the stored object is corrupted"
                    )
            body = AsyncStreamingBody.from_stream(
                obj,
                label=label,
                expected_sha256=expected_sha,
                expected_size=expected_size,
                on_close=self._forget_body,
            )
        except BaseException:
            with anyio.CancelScope(shield=True):
                await obj.aclose()
            raise
        self._bodies.add(body)
        content_range = None if span is None else f"bytes {span[0]}-{span[1]}/{obj.head.size}"
        # The server's checksums come from the HEAD: the same version if the ETag agrees.
        described = resolved if live.etag == resolved.etag else live
        return shape.with_checksums(
            shape.get_response(live, body, content_range), described, extra.honoured
        )

    @_api
    async def head_object(self, Bucket: str, Key: str, **kwargs: Any) -> shape.HeadObjectResponse:
        """Describe ``Key`` (logical or ``.delta`` name) as the user stored it.

        ``ContentLength`` is the original size, ``ETag`` the quoted MD5 of the original
        bytes, ``LastModified`` a datetime (``dg-created-at``, else the object's own),
        ``ContentType``, ``Metadata`` (user metadata without prefix) and the object
        settings S3 returns; ``DeltaGlider`` tells how it is stored. The conditional and
        ``Response*`` parameters of boto3 apply as in :meth:`get_object`. Raises
        :class:`ObjectNotFoundError` or :class:`BucketNotFoundError`, and
        :class:`UnverifiableObjectError` for an object whose deltaglider metadata was lost
        (its size and ETag would be the patch's).
        """
        extra = await accept("head_object", kwargs, honoured=_READ_HONOURED)
        try:
            resolved = await self._bundle.service.resolve(
                ObjectKey(args.bucket_name(Bucket), args.key_name(Key))
            )
        except ObjectNotFoundError as exc:
            # boto3's HEAD of a missing key fails with the bare status as its code.
            exc.from_s3("404", 404, "HeadObject")
            raise
        resolved.check_readable()
        check_read(
            resolved.stored.url, extra.honoured, resolved.etag, shape.last_modified(resolved)
        )
        response = shape.with_checksums(shape.head_response(resolved), resolved, extra.honoured)
        return shape.with_overrides(response, extra.honoured)

    @_api
    async def list_objects(
        self,
        Bucket: str,
        Prefix: str = "",
        Delimiter: str | None = None,
        MaxKeys: int = MAX_KEYS,
        ContinuationToken: str | None = None,
        StartAfter: str | None = None,
        FetchMetadata: bool = False,
        **kwargs: Any,
    ) -> shape.ListObjectsResponse:
        """List objects by their logical names, in the shape of ListObjectsV2.

        ``reference.bin`` files and everything under ``.deltaglider/`` are hidden and
        ``.delta`` is stripped from keys. Paging is real: pass ``NextContinuationToken``
        back as ``ContinuationToken`` (an opaque token; it wins over ``StartAfter``), or
        pass the last ``Key`` seen as ``StartAfter``; either way every key is returned
        exactly once. Hidden objects never shorten a page: underlying pages are read until
        ``MaxKeys`` (at most 1000) entries are found or the listing ends, and
        ``IsTruncated`` is True only if another visible entry exists.

        ``Size`` is the stored size. With ``FetchMetadata=True`` the deltas of the page
        (and only they) are HEADed concurrently: their ``Size`` becomes the original size,
        ``ETag`` the original's, and ``DeltaGlider`` gains ``OriginalSize``, ``DeltaRatio``
        (stored/original) and ``CompressionRatio`` (1 - DeltaRatio); every entry then has
        ``Metadata`` as deltaglider 6.x reports it: ``deltaglider-is-delta`` (``"true"`` or
        ``"false"``) and, for deltas, ``deltaglider-original-size`` (bytes) and
        ``deltaglider-compression-ratio`` (the fraction saved, four decimals).

        boto3's ``EncodingType="url"`` URL-encodes the keys of the response, as S3 does;
        ``FetchOwner=True`` adds ``Owner`` to each entry. Other boto3 parameters raise
        :class:`InvalidArgumentError` naming them.
        """
        extra = await accept("list_objects", kwargs, honoured={"EncodingType", "FetchOwner"})
        encoding = extra.honoured.get("EncodingType")
        if encoding not in (None, "url"):
            raise InvalidArgumentError(f"EncodingType must be 'url', got {encoding!r}")
        bucket = args.bucket_name(Bucket)
        prefix = args.text_value("Prefix", Prefix)
        delimiter = args.text_value("Delimiter", Delimiter) or None
        max_keys = args.max_keys(MaxKeys)
        if ContinuationToken is not None:
            cursor = shape.decode_token(args.text_value("ContinuationToken", ContinuationToken))
        else:
            cursor = Cursor.start_after(args.text_value("StartAfter", StartAfter) or None)
        if max_keys == 0:
            # Nothing can be returned, so nothing is "left": a token would loop forever.
            await self._bundle.storage.head_bucket(bucket)
            page = LogicalPage([])
        else:
            page = await list_logical(
                self._bundle.storage,
                bucket,
                prefix,
                delimiter=delimiter,
                max_keys=max_keys,
                cursor=cursor,
                learnt=self._key_order,
                concurrency=self._config.metadata_concurrency,
                fetch_owner=bool(extra.honoured.get("FetchOwner")),
            )
        objects = page.objects
        heads = await self._head_deltas(bucket, objects) if FetchMetadata else {}
        response: shape.ListObjectsResponse = {
            "Name": bucket,
            "Prefix": prefix,
            "MaxKeys": max_keys,
            "KeyCount": len(page.entries),
            "IsTruncated": page.is_truncated,
            "Contents": [
                shape.listed_object(o, heads.get(o.key), fetched=FetchMetadata) for o in objects
            ],
            "CommonPrefixes": [{"Prefix": p} for p in page.common_prefixes],
            "ResponseMetadata": shape.meta(),
        }
        if delimiter:
            response["Delimiter"] = delimiter
        if ContinuationToken is not None:
            response["ContinuationToken"] = ContinuationToken
        if StartAfter:
            response["StartAfter"] = StartAfter
        if page.next is not None:
            response["NextContinuationToken"] = shape.encode_token(page.next)
        return shape.url_encoded(response) if encoding == "url" else response

    def get_paginator(self, operation_name: str) -> Any:
        """A paginator for ``operation_name``, as boto3's ``client.get_paginator``.

        ``"list_objects_v2"`` is supported: ``paginate(Bucket=..., Prefix=...,
        Delimiter=..., StartAfter=..., FetchMetadata=..., PaginationConfig={"MaxItems": n,
        "PageSize": n, "StartingToken": token})`` returns the pages of :meth:`list_objects`
        (logical names). It is botocore's own paginator: on this client aiobotocore's, whose
        ``paginate()`` is an async iterator of pages (``async for page in ...``) with
        ``build_full_result()`` (a coroutine), ``search(expression)`` (an async iterator)
        and ``resume_token``; on the blocking client botocore's, a plain iterator.

        Raises :class:`InvalidArgumentError` for any other operation name.
        """
        self._check_usable()
        return paging.make_paginator(operation_name, self.list_objects)

    def can_paginate(self, operation_name: str) -> bool:
        """True when :meth:`get_paginator` supports ``operation_name`` (``list_objects_v2``)."""
        return paging.can_paginate(operation_name)

    async def _head_deltas(
        self, bucket: str, objects: Sequence[ObjectInfo]
    ) -> dict[str, ObjectHead | None]:
        heads: dict[str, ObjectHead | None] = {}

        async def head(key: str) -> None:
            heads[key] = await self._bundle.storage.head(bucket, key)

        deltas = [o.key for o in objects if role(o.key) is KeyRole.DELTA]
        await for_each(deltas, head, self._config.metadata_concurrency)
        return heads

    @_api
    async def delete_object(
        self, Bucket: str, Key: str, **kwargs: Any
    ) -> shape.DeleteObjectResponse:
        """Delete ``Key`` (logical or ``.delta`` name); the reference goes with the last delta.

        S3 semantics: deleting a key that does not exist succeeds (HTTP 204) with
        ``DeltaGliderInfo["Deleted"]`` False; a missing bucket raises
        :class:`BucketNotFoundError`. A ``reference.bin`` key is deleted only when no delta
        in its deltaspace needs it any more, else :class:`ReservedKeyError` is raised.
        boto3's ``IfMatch``, ``IfMatchSize`` and ``IfMatchLastModifiedTime`` compare the
        file's ETag, size and LastModified (:class:`PreconditionFailedError` when they
        differ; nothing is deleted).
        """
        extra = await accept("delete_object", kwargs, honoured=_DELETE_CONDITIONS)
        bucket, key = args.bucket_name(Bucket), args.key_name(Key)
        service = self._bundle.service
        if extra.honoured:
            await self._check_delete_conditions(ObjectKey(bucket, key), extra.honoured)
        if role(key) is KeyRole.REFERENCE:
            deleted = await bulk_delete.delete_reference(service, ObjectKey(bucket, key).space)
            return _delete_response(deleted, "reference" if deleted else None, key, deleted)
        try:
            summary = await service.delete(ObjectKey(bucket, key))
        except ObjectNotFoundError:
            return _delete_response(False, None, None, False)
        return _delete_response(
            True, summary.stored_as.value, summary.key, summary.reference_deleted
        )

    async def _check_delete_conditions(
        self, target: ObjectKey, honoured: Mapping[str, Any]
    ) -> None:
        try:
            resolved = await self._bundle.service.resolve(target)
        except ObjectNotFoundError:
            if "IfMatch" in honoured:
                raise
            return
        if "IfMatch" in honoured and not etag_matches(str(honoured["IfMatch"]), resolved.etag):
            raise PreconditionFailedError(f"{target.url}: ETag does not match If-Match")
        size = honoured.get("IfMatchSize")
        if size is not None and size != resolved.original_size:
            raise PreconditionFailedError(f"{target.url}: size is not {size}")
        when = honoured.get("IfMatchLastModifiedTime")
        if when is not None and not same_second(when, shape.last_modified(resolved)):
            raise PreconditionFailedError(f"{target.url}: LastModified is not {when}")

    @_api
    async def delete_objects(
        self, Bucket: str, Delete: Mapping[str, Any], **kwargs: Any
    ) -> shape.DeleteObjectsResponse:
        """Batch delete: ``Delete={"Objects": [{"Key": ...}, ...], "Quiet": False}``.

        Keys may be logical or ``.delta`` names. They are resolved concurrently, removed
        with S3 batch deletes of at most 1000 keys each, and references left without
        deltas are removed too. As in S3, keys that do not exist are reported as
        ``Deleted``; per-key failures go to ``Errors`` (``Key``, ``Code``, ``Message``).
        With ``Quiet`` only errors are reported. A ``reference.bin`` key still used by
        deltas is reported in ``Errors`` with code ``ReferenceInUse``. A missing bucket
        raises :class:`BucketNotFoundError`. boto3's ``ChecksumAlgorithm`` is accepted:
        the requests' integrity checksums are chosen per server by the S3 adapter.
        """
        await accept("delete_objects", kwargs, honoured={"ChecksumAlgorithm"})
        bucket = args.bucket_name(Bucket)
        requested, quiet = args.parse_delete(Delete)
        await self._bundle.storage.head_bucket(bucket)
        done = await bulk_delete.delete_keys(
            self._bundle.service, bucket, requested, self._config.concurrency
        )
        return {
            "Deleted": [] if quiet else [{"Key": k} for k in done.deleted],
            "Errors": [{"Key": e.key, "Code": e.code, "Message": e.message} for e in done.errors],
            "DeltaGliderInfo": {
                "DeltasDeleted": done.deltas,
                "DirectDeleted": done.direct,
                "ReferencesDeleted": done.references,
            },
            "ResponseMetadata": shape.meta(),
        }

    @_api
    async def delete_objects_recursive(
        self, Bucket: str, Prefix: str
    ) -> shape.DeleteRecursiveResponse:
        """Delete every object whose key starts with ``Prefix``, hidden ones included.

        References and ``.deltaglider/`` objects under the prefix go too; a reference
        outside the prefix is removed when the prefix held the last delta that used it.
        An empty ``Prefix`` empties the bucket. Returns ``DeletedCount``, ``FailedCount``,
        ``Errors`` and counts by stored form in ``DeltaGliderInfo``.
        """
        bucket, prefix = args.bucket_name(Bucket), args.text_value("Prefix", Prefix)
        done = await bulk_delete.delete_prefix(
            self._bundle.service, bucket, prefix, self._config.concurrency
        )
        return {
            "DeletedCount": len(done.deleted),
            "FailedCount": len(done.errors),
            "Errors": [{"Key": e.key, "Code": e.code, "Message": e.message} for e in done.errors],
            "DeltaGliderInfo": {
                "DeltasDeleted": done.deltas,
                "ReferencesDeleted": done.references,
                "OtherDeleted": done.other,
            },
            "ResponseMetadata": shape.meta(),
        }

    @_api
    async def copy_object(
        self,
        Bucket: str,
        Key: str,
        CopySource: str | Mapping[str, str],
        Metadata: Mapping[str, str] | None = None,
        MetadataDirective: str = "COPY",
        ContentType: str | None = None,
        **kwargs: Any,
    ) -> shape.CopyObjectResponse:
        """Copy an object: reconstruct and verify the source, then store it at ``Key``.

        ``CopySource`` is ``{"Bucket": ..., "Key": ...}`` or ``"bucket/key"`` (logical or
        ``.delta`` name). The copy is delta-compressed against the destination's own
        deltaspace, in any bucket. ``MetadataDirective="COPY"`` keeps the source's user
        metadata and Content-Type; ``"REPLACE"`` uses ``Metadata`` and ``ContentType``.
        boto3's ``CopySourceIf*`` parameters apply to the source file, ``IfMatch`` and
        ``IfNoneMatch="*"`` to the destination name, and the object settings (``ACL``,
        ``StorageClass``, ``ServerSideEncryption``...) to the copy, as in :meth:`put_object`.
        Raises :class:`ObjectNotFoundError` for a missing source, :class:`ReservedKeyError`
        for a reserved destination key, :class:`PreconditionFailedError` when a condition
        does not hold and :class:`IntegrityError` for a corrupted source.
        """
        extra = await accept(
            "copy_object", kwargs, honoured=_COPY_HONOURED, settings=OBJECT_SETTINGS
        )
        bucket, key = args.bucket_name(Bucket), args.key_name(Key)
        check_user_key(key)
        source = args.copy_source(CopySource)
        directive = args.text_value("MetadataDirective", MetadataDirective).upper()
        if directive not in ("COPY", "REPLACE"):
            raise InvalidArgumentError(
                f"MetadataDirective must be COPY or REPLACE, got {MetadataDirective!r}"
            )
        service = self._bundle.service
        resolved = await service.resolve(source)
        resolved.check_readable()
        check_read(
            resolved.stored.url,
            extra.honoured,
            resolved.etag,
            shape.last_modified(resolved),
            prefix="CopySource",
        )
        metadata, content_type = Metadata, ContentType
        if directive == "COPY":
            metadata, content_type = shape.user_metadata(resolved), resolved.head.content_type
        target = ObjectKey(bucket, key)
        await self._check_write_conditions(target, extra.honoured)
        path = self._work.new_path("copy")
        try:
            await service.reconstruct(resolved, path)
            summary = await service.put(
                path,
                target.space,
                name=target.name,
                metadata=metadata,
                content_type=content_type,
                settings=extra.settings,
            )
        finally:
            await _unlink_quietly(path)
        return {
            "CopyObjectResult": {"ETag": summary.etag, "LastModified": service.clock.now()},
            "DeltaGliderInfo": shape.put_info(summary),
            "ResponseMetadata": shape.meta(),
        }

    # ------------------------------------------------------------------ buckets

    @_api
    async def create_bucket(
        self,
        Bucket: str,
        CreateBucketConfiguration: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> shape.BucketResponse:
        """Create a bucket; creating one this account already owns succeeds quietly.

        ``CreateBucketConfiguration={"LocationConstraint": region}`` picks the region
        (default: the client's). boto3's ``ACL``, ``Grant*``, ``ObjectOwnership`` and
        ``ObjectLockEnabledForBucket`` are passed to S3. A name owned by someone else
        raises :class:`BucketAlreadyExistsError`.
        """
        extra = await accept("create_bucket", kwargs, settings=_BUCKET_SETTINGS)
        bucket = args.bucket_name(Bucket)
        region = None
        if CreateBucketConfiguration is not None:
            if not isinstance(CreateBucketConfiguration, Mapping):
                raise InvalidArgumentError("CreateBucketConfiguration must be a mapping")
            region = CreateBucketConfiguration.get("LocationConstraint") or None
        await self._buckets().create_bucket(bucket, region=region, settings=extra.settings)
        return {"Location": f"/{bucket}", "ResponseMetadata": shape.meta()}

    @_api
    async def delete_bucket(self, Bucket: str, **kwargs: Any) -> shape.BucketResponse:
        """Delete an empty bucket; deleting a bucket that does not exist succeeds (idempotent).

        "Empty" means what listings show: deltaglider's own objects (the stats cache under
        ``.deltaglider/``, and ``reference.bin`` files, which no delta needs once no object
        is visible) are removed with the bucket. Any visible object makes it raise
        :class:`BucketNotEmptyError`, and nothing is deleted.
        """
        await accept("delete_bucket", kwargs)
        bucket = args.bucket_name(Bucket)
        storage = self._bundle.storage
        hidden: list[str] = []
        try:
            async for info in storage.iter_objects(bucket):
                if not is_hidden(info.key):
                    break
                hidden.append(info.key)
            else:
                if hidden:
                    await storage.delete_many(bucket, hidden)
            await self._buckets().delete_bucket(bucket)
        except BucketNotFoundError:
            pass
        return {"ResponseMetadata": shape.meta(204)}

    @_api
    async def list_buckets(self, **kwargs: Any) -> shape.ListBucketsResponse:
        """All buckets of the account, as boto3 returns them: ``Buckets`` (``Name``,
        ``CreationDate``, ``BucketRegion`` where known), ``Owner``, ``ResponseMetadata``.

        boto3's ``Prefix``, ``BucketRegion``, ``MaxBuckets`` and ``ContinuationToken``
        select and page the buckets (the token is the last name returned).
        """
        extra = await accept("list_buckets", kwargs, honoured=_LIST_BUCKETS_HONOURED)
        prefix = args.text_value("Prefix", extra.honoured.get("Prefix"))
        region = extra.honoured.get("BucketRegion")
        if region is not None:
            region = args.text_value("BucketRegion", region)
        after = args.text_value("ContinuationToken", extra.honoured.get("ContinuationToken"))
        listing = await self._buckets().list_buckets(region=region)
        chosen = [b for b in listing if b.name.startswith(prefix) and (not after or b.name > after)]
        limit = extra.honoured.get("MaxBuckets")
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 1
        ):
            raise InvalidArgumentError(f"MaxBuckets must be an int >= 1, got {limit!r}")
        response: shape.ListBucketsResponse = {
            "Buckets": shape.bucket_entries(chosen[:limit]),
            "Owner": dict(listing.owner),
            "ResponseMetadata": shape.meta(),
        }
        if prefix:
            response["Prefix"] = prefix
        if limit is not None and len(chosen) > limit:
            response["ContinuationToken"] = chosen[limit - 1].name
        return response

    @_api
    async def head_bucket(self, Bucket: str, **kwargs: Any) -> shape.BucketResponse:
        """Succeed if the bucket exists and is usable; raise :class:`BucketNotFoundError`
        or :class:`AccessDeniedError` otherwise."""
        await accept("head_bucket", kwargs)
        try:
            await self._bundle.storage.head_bucket(args.bucket_name(Bucket))
        except BucketNotFoundError as exc:
            # boto3's HEAD of a missing bucket fails with the bare status as its code.
            exc.from_s3("404", 404, "HeadBucket")
            raise
        return {"ResponseMetadata": shape.meta()}

    @_api
    async def put_bucket_acl(self, Bucket: str, **kwargs: Any) -> shape.BucketResponse:
        """Set the bucket ACL with boto3's parameters (``ACL="private"``,
        ``AccessControlPolicy={...}``, ``GrantRead=...``)."""
        await self._buckets().put_bucket_acl(args.bucket_name(Bucket), **kwargs)
        return {"ResponseMetadata": shape.meta()}

    @_api
    async def get_bucket_acl(self, Bucket: str, **kwargs: Any) -> shape.GetBucketAclResponse:
        """The bucket ACL: ``Owner`` and ``Grants`` as boto3 returns them."""
        await accept("get_bucket_acl", kwargs)
        acl = await self._buckets().get_bucket_acl(args.bucket_name(Bucket))
        return {
            "Owner": dict(acl.get("Owner", {})),
            "Grants": list(acl.get("Grants", [])),
            "ResponseMetadata": shape.meta(),
        }

    @_api
    async def generate_presigned_url(
        self,
        ClientMethod: str,
        Params: Mapping[str, Any] | None = None,
        ExpiresIn: int = 3600,
        HttpMethod: str | None = None,
    ) -> str:
        """A presigned URL for ``ClientMethod`` (e.g. ``"get_object"``) with ``Params``.

        For ``get_object``/``head_object`` the key is looked up first: a directly stored or
        plain object gets a URL serving its bytes as they are. A key stored as a *delta*
        raises :class:`InvalidArgumentError`: the stored bytes are an xdelta3 patch that only
        deltaglider can turn back into the file, so a presigned URL would hand out the
        patch, not the file. Missing objects raise :class:`ObjectNotFoundError`. For
        ``put_object`` a reserved key raises :class:`ReservedKeyError`; note that an upload
        through a presigned URL bypasses delta compression.
        """
        method = args.text_value("ClientMethod", ClientMethod)
        params = dict(Params or {})
        if isinstance(ExpiresIn, bool) or not isinstance(ExpiresIn, int) or ExpiresIn <= 0:
            raise InvalidArgumentError(f"ExpiresIn must be a positive int, got {ExpiresIn!r}")
        if method in ("get_object", "head_object"):
            key = ObjectKey(
                args.bucket_name(params.get("Bucket")), args.key_name(params.get("Key"))
            )
            resolved = await self._bundle.service.resolve(key)
            resolved.check_readable()
            if resolved.meta.kind is meta_codec.ObjectKind.DELTA:
                raise InvalidArgumentError(
                    f"s3://{key.bucket}/{key.key} is stored as an xdelta3 delta that only "
                    "deltaglider can reconstruct; a presigned URL would serve the delta, not "
                    "the file. Use get_object()/download() instead, or store it with "
                    "delta compression disabled"
                )
            params["Key"] = resolved.stored.key
        elif method == "put_object":
            check_user_key(args.key_name(params.get("Key")))
        return await self._buckets().presign(
            method, params, expires_in=ExpiresIn, http_method=HttpMethod
        )

    @_api
    async def rehydrate_for_download(
        self, Bucket: str, Key: str, ExpiresIn: int = 3600
    ) -> str | None:
        """A plain, verified copy of a delta that lives ``ExpiresIn`` seconds; its key.

        For a file stored as a delta, the file is reconstructed, checked against its
        SHA-256 and stored as a plain object under ``.deltaglider/tmp/`` (hidden from
        listings and statistics; reused while it lives long enough). Returns None for a
        file stored direct or a plain object, whose own key serves its bytes. deltaglider
        6.x's name. Raises :class:`ObjectNotFoundError`, :class:`IntegrityError`,
        :class:`UnverifiableObjectError`, :class:`InvalidArgumentError` for an
        ``ExpiresIn`` outside 1 s to 7 days.
        """
        key = ObjectKey(args.bucket_name(Bucket), args.key_name(Key))
        rehydrate.check_key(key)
        rehydrate.check_expires_in(ExpiresIn)
        resolved = await self._bundle.service.resolve(key)
        resolved.check_readable()
        if resolved.meta.kind is not meta_codec.ObjectKind.DELTA:
            return None
        return await rehydrate.rehydrated_copy(
            self._bundle.service, resolved, ExpiresIn, self._work.new_path("rehydrate")
        )

    @_api
    async def generate_presigned_url_with_rehydration(
        self, Bucket: str, Key: str, ExpiresIn: int = 3600
    ) -> str:
        """A presigned GET URL serving the file ``Key``, whether stored direct or as a delta.

        A delta is rehydrated first (:meth:`rehydrate_for_download`: reconstructed, verified,
        stored as a hidden plain copy living at least as long as the URL) and the URL
        serves that copy, with ``Content-Disposition`` naming the original file. A direct
        or plain object is presigned as it is. Expired copies are removed by
        :meth:`purge_temp_files` (or a lifecycle rule on ``.deltaglider/tmp/``).
        """
        bucket = args.bucket_name(Bucket)
        temp = await self.rehydrate_for_download(bucket, Key, ExpiresIn)
        if temp is None:
            return await self.generate_presigned_url(
                "get_object", Params={"Bucket": bucket, "Key": Key}, ExpiresIn=ExpiresIn
            )
        name = args.key_name(Key).removesuffix(DELTA_SUFFIX).rpartition("/")[2]
        params = {
            "Bucket": bucket,
            "Key": temp,
            "ResponseContentDisposition": (f"attachment; filename*=UTF-8''{quote(name, safe='')}"),
        }
        return await self._buckets().presign("get_object", params, expires_in=ExpiresIn)

    @_api
    async def purge_temp_files(self, Bucket: str) -> dict[str, Any]:
        """Delete the expired rehydrated copies of ``Bucket`` (under ``.deltaglider/tmp/``).

        Returns ``deleted_count``, ``expired_count``, ``error_count``,
        ``total_size_freed`` (bytes), ``duration_seconds`` and ``errors`` (deltaglider
        6.x's shape). Copies still valid are kept.
        """
        result = await rehydrate.purge_expired(self._bundle.storage, args.bucket_name(Bucket))
        return dataclasses.asdict(result)

    # ------------------------------------------------------------------ simple API

    @_api
    async def upload(
        self,
        file_path: str | os.PathLike[str],
        s3_url: str,
        tags: Mapping[str, str] | None = None,
        max_ratio: float | None = None,
        rebase_ratio: float | None = None,
    ) -> UploadSummary:
        """Upload a local file into the "directory" ``s3_url``, delta-compressed when it pays.

        ``s3_url`` is always a prefix, as in deltaglider 6.x: ``s3://b/rel/v1/`` and
        ``s3://b/rel/v1`` both store ``rel/v1/<file name>``; ``s3://b`` stores at the
        bucket root. ``max_ratio`` (default: the client's, 0.5 unless configured) is the
        largest delta/file size ratio kept as a delta; ``rebase_ratio`` (default: the
        client's, 0.25 unless configured; 1 turns it off) the delta/file size ratio above
        which the file becomes its directory's next reference. ``tags`` (``{"env": "prod"}``) are
        stored as the object's S3 tags (``get_object_tagging`` shows them), as boto3's
        ``Tagging`` does; S3 allows 10 tags, keys up to 128 and values up to 256
        characters.

        Raises :class:`InvalidURLError`, :class:`InvalidRatioError`,
        :class:`InvalidArgumentError` for tags that are not strings or that S3 refuses,
        :class:`NotFoundError` for a missing local file and :class:`BucketNotFoundError`.
        """
        url = S3Url.parse(s3_url)
        ratio = None if max_ratio is None else validate_ratio(max_ratio)
        settings = {} if not tags else {"Tagging": args.tagging(tags)}
        source = Path(file_path)
        await _bulk.check_local_file(source)
        prefix = url.key[:-1] if url.key.endswith("/") else url.key
        space = DeltaSpace(url.bucket, prefix)
        summary = await self._bundle.service.put(
            source, space, ratio, settings=settings, rebase_ratio=rebase_ratio
        )
        return UploadSummary.from_put(summary)

    @_api
    async def download(self, s3_url: str, output_path: str | os.PathLike[str]) -> None:
        """Reconstruct ``s3_url`` (logical or ``.delta`` name) into ``output_path``.

        Atomic: the bytes go to a temp file beside ``output_path``, are verified against
        the recorded SHA-256, then renamed over it, so a failure never leaves a partial or
        wrong file. When ``output_path`` is an existing directory the file is written into
        it under its logical name. Raises :class:`InvalidURLError`,
        :class:`ObjectNotFoundError`, :class:`NotFoundError` for a missing local directory
        and :class:`IntegrityError`.
        """
        key = args.object_url(s3_url)
        out = anyio.Path(output_path)
        with translating_local(out, "write"):
            if await out.is_dir():
                out = out / key.name.removesuffix(DELTA_SUFFIX)
        await _bulk.check_local_directory(Path(out.parent))
        await self._bundle.service.get(key, Path(out))

    @_api
    async def verify(self, s3_url: str) -> bool:
        """Reconstruct ``s3_url`` and check its SHA-256: False when the stored data is corrupt.

        Raises :class:`ObjectNotFoundError` when there is nothing to verify.
        """
        result = await self._bundle.service.verify(args.object_url(s3_url))
        return result.valid

    @_api
    async def rebase(
        self,
        s3_url: str,
        *,
        recursive: bool = False,
        dry_run: bool = False,
        rebase_ratio: float | None = None,
        progress: ProgressCallback | None = None,
    ) -> RebaseReport:
        """Re-encode the deltas of the directory ``s3_url`` against better references.

        For directories whose deltas drifted away from their first file (written by
        deltaglider 6.x, or with re-baselining off): the directory's files are replayed in
        the order they were written, later files become new references where the
        re-baselining rule says so, and every delta that comes out smaller replaces the
        stored one, after it was decoded and its SHA-256 checked. ``s3://b/rel/app/`` (or
        ``s3://b/rel/app``) names the directory; ``recursive`` adds every directory below
        it. ``dry_run`` writes nothing and reports the bytes it would save. Safe to kill
        and resumable: run it again. ``rebase_ratio``: the threshold (default: the client's,
        0.25 when the client's is off). ``progress`` is called once per directory.

        Raises :class:`InvalidURLError`, :class:`InvalidRatioError`,
        :class:`BucketNotFoundError`; a directory that fails is listed in
        :attr:`RebaseReport.failed` and the others are repaired all the same.
        """
        url = S3Url.parse(s3_url)
        return await _rebase.rebase(
            self._operations(),
            url.bucket,
            url.key,
            recursive=recursive,
            dry_run=dry_run,
            rebase_ratio=rebase_ratio,
            progress=progress,
        )

    @_api
    async def clear_cache(self) -> None:
        """Empty the local reference cache (the next read fetches references again)."""
        await self._bundle.cache.clear()

    # ------------------------------------------------------------------ bulk operations

    @_api
    async def upload_many(
        self,
        files: Iterable[UploadItem],
        s3_url: str,
        *,
        max_concurrency: int | None = None,
        max_ratio: float | None = None,
        allow_delta: bool = True,
        progress: ProgressCallback | None = None,
    ) -> list[ItemResult[UploadSummary]]:
        """Upload many local files under the prefix ``s3_url`` on a bounded worker pool.

        ``files`` holds local paths (stored as ``<prefix>/<file name>``) or
        ``(path, relative_key)`` pairs (stored as ``<prefix>/<relative_key>``). Files of one
        deltaspace compress against the same reference: the first creates it, the others
        wait only for that. At most ``max_concurrency`` files are in flight (default: the
        client's ``max_concurrency``); ``allow_delta=False`` stores every file direct.
        ``progress`` is called after each file with a :class:`Progress`.

        Returns one :class:`ItemResult` per file, in input order (a failed file carries
        its error and leaves nothing partial; the others complete). Raises before starting
        for a bad URL, ratio or concurrency and for a missing bucket. See
        :func:`deltaglider_async.core.bulk.upload_many`.
        """
        return await _bulk.upload_many(
            self._operations(),
            files,
            s3_url,
            max_concurrency=max_concurrency,
            max_ratio=max_ratio,
            allow_delta=allow_delta,
            progress=progress,
        )

    @_api
    async def download_many(
        self,
        items: Iterable[DownloadItem],
        dest_dir: str | os.PathLike[str],
        *,
        max_concurrency: int | None = None,
        progress: ProgressCallback | None = None,
    ) -> list[ItemResult[GetSummary]]:
        """Download many objects into ``dest_dir`` on a bounded worker pool.

        ``items`` holds S3 URLs (written to ``dest_dir/<name>``) or ``(s3_url,
        relative_path)`` pairs. Every file is verified and renamed into place atomically.
        Returns one :class:`ItemResult` per item, in input order.
        """
        return await _bulk.download_many(
            self._operations(),
            items,
            Path(dest_dir),
            max_concurrency=max_concurrency,
            progress=progress,
        )

    @_api
    async def migrate(
        self,
        source_url: str,
        dest_url: str,
        *,
        include: Iterable[str] = (),
        exclude: Iterable[str] = (),
        dry_run: bool = False,
        shard: tuple[int, int] | Literal["auto"] | None = None,
        shards: int | None = None,
        from_list: str | None = None,
        inventory: str | None = None,
        report: str | None = None,
        report_interval: float = 30.0,
        max_concurrency: int | None = None,
        max_ratio: float | None = None,
        progress: ProgressCallback | None = None,
    ) -> MigrationReport:
        """Copy every object under ``source_url`` to ``dest_url``, delta-compressed there.

        The source may be a plain bucket or a deltaglider one (objects are reconstructed
        and verified first). Resumable: objects already at the destination with the same
        SHA-256 are skipped. ``include``/``exclude`` are fnmatch patterns on the key
        relative to the source prefix (exclude wins). ``dry_run`` writes nothing and lists
        what would be copied.

        ``shard=(k, n)`` does part ``k`` of ``n``, so ``n`` processes split one job;
        ``shard="auto"`` takes ``k`` from ``JOB_COMPLETION_INDEX`` (Kubernetes Indexed
        Job) or ``AWS_BATCH_JOB_ARRAY_INDEX`` (AWS Batch array job) and ``n`` from
        ``shards`` or ``AWS_BATCH_JOB_ARRAY_SIZE``. Each shard reads only its part of the
        source: of the key list ``from_list`` (local path or ``s3://``, one key a line),
        of the S3 Inventory report whose ``manifest.json`` is ``inventory`` (CSV format),
        or else of a listing cut by prefix. ``report`` (``s3://`` prefix or local
        directory) keeps this run's JSON report there, saved atomically every
        ``report_interval`` seconds and at the end; a rerun of the same shard resumes
        from it. Raises :class:`InvalidArgumentError` for a bad ``shard`` or no shard in
        the environment; see :func:`deltaglider_async.core.migrate.migrate`.
        """
        return await _migrate.migrate(
            self._operations(),
            source_url,
            dest_url,
            include=include,
            exclude=exclude,
            dry_run=dry_run,
            shard=shard,
            shards=shards,
            environ=os.environ,
            from_list=None if from_list is None else os.fspath(from_list),
            inventory=None if inventory is None else os.fspath(inventory),
            report=None if report is None else os.fspath(report),
            report_interval=report_interval,
            max_concurrency=max_concurrency,
            max_ratio=max_ratio,
            progress=progress,
        )

    @_api
    async def upload_batch(
        self,
        files: Iterable[str | os.PathLike[str]],
        s3_url: str,
        max_ratio: float | None = None,
        progress_callback: Callable[[str, int, int], object] | None = None,
    ) -> list[UploadSummary]:
        """Upload local files into the "directory" ``s3_url``; deltaglider 6.x's name.

        A thin name over :meth:`upload_many`: each file is stored as
        ``<prefix>/<file name>``, all in one directory so that they delta against one
        reference. ``progress_callback(file name, files done, total)`` follows each file.
        Returns the summaries in input order; if any file failed, the others are still
        uploaded and the first failure is raised.
        """
        results = await self.upload_many(
            list(files),
            s3_url,
            max_ratio=max_ratio,
            progress=_batch_progress(progress_callback),
        )
        return [_unwrap(result) for result in results]

    @_api
    async def download_batch(
        self,
        s3_urls: Iterable[str],
        output_dir: str | os.PathLike[str],
        progress_callback: Callable[[str, int, int], object] | None = None,
    ) -> list[Path]:
        """Download objects into ``output_dir`` under their names; deltaglider 6.x's name.

        A thin name over :meth:`download_many`; every file is verified and renamed into
        place atomically. Returns the local paths in input order; if any download failed,
        the others are still written and the first failure is raised.
        """
        results = await self.download_many(
            list(s3_urls), output_dir, progress=_batch_progress(progress_callback)
        )
        for result in results:
            _unwrap(result)
        return [Path(result.destination) for result in results]

    @_api
    async def get_bucket_stats(
        self,
        bucket: str,
        mode: StatsMode = "quick",
        use_cache: bool = True,
        refresh_cache: bool = False,
    ) -> BucketStats:
        """Storage statistics of ``bucket`` (SPEC §5).

        ``quick`` lists only (a delta's original size is estimated as its reference's),
        ``sampled`` HEADs one delta per deltaspace, ``detailed`` HEADs every delta
        concurrently with a bound. Results are cached in ``.deltaglider/stats_{mode}.json``
        and reused while the bucket's object count and stored size are unchanged;
        ``use_cache=False`` neither reads nor writes the cache, ``refresh_cache=True``
        recomputes it. A missing bucket raises :class:`BucketNotFoundError`.
        """
        return await _stats.get_bucket_stats(
            self._operations(), bucket, mode, use_cache=use_cache, refresh_cache=refresh_cache
        )

    @_api
    async def get_directory_stats(
        self,
        bucket: str,
        prefix: str = "",
        mode: StatsMode = "quick",
        recent: int = _stats.RECENT_DELTAS,
    ) -> list[DirectoryStats]:
        """Per-directory statistics of ``bucket``: references, stored vs original bytes and
        the worst delta/original ratio of the ``recent`` newest deltas, to see which
        directories drift (and would gain from :meth:`rebase`).

        One LIST of the bucket, one HEAD per recent delta (plus what ``mode`` asks, as
        :meth:`get_bucket_stats`); directories under ``prefix`` that hold references or
        deltas, in key order; not cached. Raises :class:`BucketNotFoundError`,
        :class:`InvalidArgumentError`.
        """
        return await _stats.get_directory_stats(self._operations(), bucket, prefix, mode, recent)

    @_api
    async def list_hidden_objects(self, Bucket: str, Prefix: str = "") -> list[HiddenObject]:
        """The objects under ``Prefix`` that :meth:`list_objects` does not show although
        deltaglider did not write them, each with the reason (sorted by stored key).

        These are a ``reference.bin`` another tool wrote (the name is reserved for each
        directory's reference), directory markers (keys ending in ``/``) and the
        ``.delta`` form of a name that also exists direct. Copies report them as skipped
        instead of dropping them silently. One listing of ``Prefix`` plus one HEAD per
        ``reference.bin``. Raises :class:`BucketNotFoundError`.
        """
        return await find_hidden(
            self._bundle.storage,
            args.bucket_name(Bucket),
            str(Prefix),
            concurrency=self._bundle.config.metadata_concurrency,
        )

    @_api
    async def cleanup(
        self,
        s3_url: str,
        older_than: timedelta | float | str = _cleanup.DEFAULT_OLDER_THAN,
        dry_run: bool = False,
    ) -> _cleanup.CleanupReport:
        """Abort the incomplete multipart uploads under ``s3_url`` older than ``older_than``.

        ``s3_url`` is ``s3://bucket/`` or ``s3://bucket/prefix`` (keys as stored, so a
        prefix ``rel/`` covers ``rel/app.zip.delta`` too). ``older_than`` is a timedelta,
        seconds, or text such as ``24h``/``7d`` (default 24 hours): a process killed
        mid-upload leaves its upload open and billed, and only its age tells it from
        another writer's live upload of the same key. ``dry_run`` reports without
        aborting. Returns a :class:`CleanupReport` (``aborted``, ``kept``, ``failed``).

        Raises :class:`InvalidURLError`, :class:`InvalidArgumentError` for a bad age,
        :class:`BucketNotFoundError`; an abort that fails is in ``failed``.
        """
        url = S3Url.parse(s3_url)
        age = _cleanup.parse_age(older_than)
        storage = self._bundle.storage
        if not isinstance(storage, MultipartUploadsPort):
            raise InvalidArgumentError(
                f"{type(storage).__name__} has no multipart uploads to clean up"
            )
        return await _cleanup.abort_stale_uploads(
            storage,
            url.bucket,
            url.key,
            older_than=age,
            now=self._bundle.service.clock.now(),
            dry_run=dry_run,
        )


# ---------------------------------------------------------------------------------------
# Argument checks and helpers
# ---------------------------------------------------------------------------------------

#: boto3 parameters of put_object that deltaglider applies itself.
_PUT_HONOURED: Final = frozenset(
    {"ContentMD5", "ChecksumSHA256", "ChecksumAlgorithm", "ContentLength", "IfNoneMatch", "IfMatch"}
)
#: boto3 parameters of copy_object that deltaglider applies itself.
_COPY_HONOURED: Final = frozenset(
    {f"CopySource{name}" for name in READ_CONDITIONS} | {"IfMatch", "IfNoneMatch"}
)
#: boto3 parameters of create_bucket passed to S3.
_BUCKET_SETTINGS: Final = frozenset(
    {
        "ACL",
        "GrantFullControl",
        "GrantRead",
        "GrantReadACP",
        "GrantWrite",
        "GrantWriteACP",
        "ObjectLockEnabledForBucket",
        "ObjectOwnership",
    }
)
#: boto3 parameters of list_buckets that deltaglider applies itself.
_LIST_BUCKETS_HONOURED: Final = frozenset(
    {"Prefix", "BucketRegion", "MaxBuckets", "ContinuationToken"}
)
#: boto3 parameters of delete_object that deltaglider applies itself.
_DELETE_CONDITIONS: Final = frozenset({"IfMatch", "IfMatchSize", "IfMatchLastModifiedTime"})
#: boto3 parameters of get_object/head_object that deltaglider applies itself.
_READ_HONOURED: Final = READ_CONDITIONS | shape.RESPONSE_OVERRIDES.keys() | {"ChecksumMode"}


def _batch_progress(
    callback: Callable[[str, int, int], object] | None,
) -> ProgressCallback | None:
    """A bulk ``progress`` callback calling 6.x's ``callback(file name, done, total)``."""
    if callback is None:
        return None

    def report(event: Progress) -> object:
        name = event.source.rstrip("/").rpartition("/")[2].removesuffix(DELTA_SUFFIX)
        return callback(name, event.done, event.total)

    return report


def _unwrap(result: ItemResult[_T]) -> _T:
    """The value of a bulk item, or its error raised."""
    if result.error is not None:
        raise result.error
    assert result.value is not None
    return result.value


def _delete_response(
    deleted: bool, kind: str | None, stored: str | None, reference_deleted: bool
) -> shape.DeleteObjectResponse:
    return {
        "DeltaGliderInfo": {
            "Deleted": deleted,
            "Type": kind,
            "StoredKey": stored,
            "ReferenceDeleted": reference_deleted,
        },
        "ResponseMetadata": shape.meta(204),
    }


async def _unlink_quietly(path: Path) -> None:
    with anyio.CancelScope(shield=True):
        try:
            await anyio.Path(path).unlink(missing_ok=True)
        except OSError:
            pass


def create_async_client(
    endpoint_url: str | None = None, log_level: str | None = None, **kwargs: Any
) -> AsyncDeltaGliderClient:
    """An unopened :class:`AsyncDeltaGliderClient`; use it as ``async with create_async_client():``.

    Keyword arguments: ``tool_version``, ``max_ratio``, ``rebase_ratio``, ``aws_access_key_id``,
    ``aws_secret_access_key``, ``aws_session_token``, ``region_name``, ``profile_name``,
    ``max_concurrency`` and any other :class:`DeltaGliderConfig` field. What is not given
    comes from the environment (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``,
    ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``AWS_DEFAULT_REGION``,
    ``AWS_PROFILE``, ``DG_LOG_LEVEL``, ``DG_MAX_RATIO``, ``DG_REBASE_RATIO``,
    ``DG_MAX_CONCURRENCY``), then from
    the defaults. ``log_level`` (default ``DG_LOG_LEVEL``) sets the level this client logs
    at; when neither is given the application's logging configuration alone decides.

    No I/O happens here or when the client is opened: the S3 client is created on first
    use. Unknown keyword arguments raise :class:`InvalidArgumentError` naming them; a
    ``max_ratio`` outside ``[0, 1]`` raises :class:`InvalidRatioError`.
    """
    config = DeltaGliderConfig.from_env(endpoint_url=endpoint_url, log_level=log_level, **kwargs)
    return AsyncDeltaGliderClient(config)
