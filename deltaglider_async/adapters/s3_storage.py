"""The S3 storage adapter: :class:`S3Storage` implements ``StoragePort`` with aiobotocore.

One aiobotocore client per :class:`S3Storage`, created on first use and held in an
``AsyncExitStack`` until :meth:`S3Storage.aclose`. Every call goes through
:func:`translating`, which turns botocore, aiohttp and timeout errors into the
``deltaglider_async`` error tree with a message naming the operation, bucket and key:
nothing from botocore leaves this module.

Conventions of the values returned:

* ``ETag`` is the raw header value, quotes included (``"d41d8cd98f00b204e9800998ecf8427e"``);
  multipart ETags keep their ``-N`` suffix.
* Metadata keys are returned lower-cased (without ``x-amz-meta-``); they are written as
  given, and must be ASCII, as must their values.
* Datetimes are timezone-aware UTC.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import hashlib
import io
import logging
import math
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import AsyncExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, Final, Self, cast

import aioboto3
import aiohttp
import anyio
import anyio.lowlevel
import anyio.to_thread
from aiobotocore.config import AioConfig
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    CredentialRetrievalError,
    NoCredentialsError,
    ParamValidationError,
    PartialCredentialsError,
    ProfileNotFound,
)

from .._config import DeltaGliderConfig
from .._errors import (
    AccessDeniedError,
    BucketAlreadyExistsError,
    BucketNotEmptyError,
    BucketNotFoundError,
    ClientClosedError,
    ConditionalWriteNotSupportedError,
    DeltaGliderError,
    InvalidArgumentError,
    ObjectChangedError,
    ObjectNotFoundError,
    PreconditionFailedError,
    StorageError,
    unwrap_group,
)
from .._response_metadata import note
from ..ports.metrics import MetricsPort
from ..ports.storage import (
    BucketInfo,
    BucketListing,
    BucketsPort,
    DeleteFailure,
    ListPage,
    MultipartUpload,
    MultipartUploadsPort,
    ObjectBody,
    ObjectHead,
    ObjectInfo,
    PutResult,
    StoragePort,
)
from . import s3_compat
from .s3_connections import ConnectionHolders

if TYPE_CHECKING:
    from aiobotocore.response import StreamingBody
    from types_aiobotocore_s3 import S3Client
    from types_aiobotocore_s3.type_defs import GetObjectOutputTypeDef

__all__ = ["S3ObjectBody", "S3Storage", "translate_error", "translating"]

_log = logging.getLogger("deltaglider.storage")

DEFAULT_REGION: Final = "us-east-1"
#: Bytes per read when streaming a GET to a file.
DOWNLOAD_CHUNK_SIZE: Final = 1024 * 1024
#: S3 refuses more parts than this in one multipart upload.
MAX_PARTS: Final = 10_000
#: DeleteObjects accepts at most this many keys per request.
MAX_DELETE_BATCH: Final = 1000
#: Upper bound on the shielded AbortMultipartUpload after a failure or cancellation.
ABORT_TIMEOUT: Final = 30.0
#: Upper bound on closing the HTTP session in ``aclose``.
CLOSE_TIMEOUT: Final = 10.0

_MIB: Final = 1024 * 1024
_RANGE_RE: Final = re.compile(r"bytes=(?:\d+-\d*|-\d+)")
_CONTENT_RANGE_RE: Final = re.compile(r"bytes (\d+)-(\d+)/(\d+)")
#: Object settings S3 returns on HEAD and GET (boto3 names), as ObjectHead.settings.
_RETURNED_SETTINGS: Final = (
    "BucketKeyEnabled",
    "CacheControl",
    "ContentDisposition",
    "ContentEncoding",
    "ContentLanguage",
    "Expires",
    "SSEKMSKeyId",
    "ServerSideEncryption",
    "StorageClass",
)

#: Checksums S3 keeps for an object's bytes (boto3 names), as ObjectHead.checksums.
_CHECKSUMS: Final = (
    "ChecksumCRC32",
    "ChecksumCRC32C",
    "ChecksumCRC64NVME",
    "ChecksumSHA1",
    "ChecksumSHA256",
    "ChecksumType",
)

# ---------------------------------------------------------------------------------------
# Error translation: the one place where botocore/aiohttp errors become ours.
# ---------------------------------------------------------------------------------------

_BUCKET_MISSING_CODES: Final = frozenset({"NoSuchBucket"})
_NOT_FOUND_CODES: Final = frozenset({"NoSuchKey", "NotFound", "404"})
_ACCESS_DENIED_CODES: Final = frozenset(
    {
        "AccessDenied",
        "Forbidden",
        "403",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "AllAccessDisabled",
        "ExpiredToken",
        "InvalidToken",
        "TokenRefreshRequired",
        "AccountProblem",
    }
)
_PRECONDITION_CODES: Final = frozenset({"PreconditionFailed", "412"})
_NOT_IMPLEMENTED_CODES: Final = frozenset({"NotImplemented", "501"})
#: Per-key errors of DeleteObjects worth sending the key again for.
_TRANSIENT_DELETE_CODES: Final = frozenset(
    {"SlowDown", "InternalError", "ServiceUnavailable", "RequestTimeout", "TooManyRequests"}
)
#: Answers of a store that has no DeleteObjects at all.
_MULTI_DELETE_REFUSED_CODES: Final = frozenset({"NotImplemented", "InvalidArgument"})
#: Codes some stores give a request with a header they do not implement (the message
#: then names the header, or says the request "implies functionality not implemented").
_BAD_REQUEST_CODES: Final = frozenset({"InvalidArgument", "InvalidRequest", "NotImplemented"})
_CONDITION_WORDS: Final = ("if-none-match", "if-match", "not implemented", "conditional")
_INVALID_ARGUMENT_CODES: Final = frozenset(
    {
        "InvalidBucketName",
        "InvalidArgument",
        "InvalidRange",
        "InvalidStorageClass",
        "InvalidTag",
        "KeyTooLongError",
        "MetadataTooLarge",
    }
)
_TRANSPORT_ERRORS: Final = (BotoCoreError, aiohttp.ClientError, TimeoutError)


def _target(bucket: str | None, key: str | None) -> str:
    if bucket is None:
        return ""
    return f" s3://{bucket}/{key}" if key is not None else f" s3://{bucket}"


def _client_error_parts(exc: ClientError) -> tuple[str, int, str]:
    error = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return str(error.get("Code", "") or status), int(status), str(error.get("Message", "") or "")


def translate_error(
    exc: BaseException,
    *,
    operation: str,
    bucket: str | None = None,
    key: str | None = None,
    conditional: bool = False,
) -> DeltaGliderError:
    """Return the ``deltaglider_async`` error for a botocore/aiohttp/timeout error.

    ``operation`` (an S3 API name such as ``PutObject``), ``bucket`` and ``key`` go into
    the message. A bare 404 means "object missing" when a key is given and "bucket
    missing" otherwise. ``conditional`` marks a request carrying ``If-None-Match``, whose
    ``NotImplemented`` answer means the server does not support conditional writes.
    Errors that are already ours are returned unchanged.
    """
    if isinstance(exc, DeltaGliderError):
        return exc
    where = f"{operation}{_target(bucket, key)}"
    if isinstance(exc, ClientError):
        code, status, message = _client_error_parts(exc)
        return _s3_error(code, status, message, where, operation, bucket, key, conditional)
    if isinstance(exc, NoCredentialsError | PartialCredentialsError | CredentialRetrievalError):
        return AccessDeniedError(f"{where}: no usable AWS credentials: {exc}")
    if isinstance(exc, ParamValidationError | ProfileNotFound):
        return InvalidArgumentError(f"{where}: {exc}")
    if isinstance(exc, TimeoutError):
        return StorageError(f"{where} timed out: {type(exc).__name__} {exc}".rstrip())
    return StorageError(f"{where} failed: {type(exc).__name__}: {exc}")


def _s3_error(
    code: str,
    status: int,
    message: str,
    where: str,
    operation: str,
    bucket: str | None,
    key: str | None,
    conditional: bool,
) -> DeltaGliderError:
    """The error for S3's answer ``code``/``status``, carrying both (``e.response``).

    A HEAD's answer has no body, so its "code" is the bare status (``404``): the error
    then keeps the code of its class (``NoSuchKey``, ``NoSuchBucket``...), which is what
    boto3 reports for the same condition on a GET.
    """
    error = _classify(code, status, message, where, bucket, key, conditional)
    if code.isdigit():
        code = error.code
    return error.from_s3(code, status or None, operation)


def _classify(
    code: str,
    status: int,
    message: str,
    where: str,
    bucket: str | None,
    key: str | None,
    conditional: bool,
) -> DeltaGliderError:
    text = f"{where} failed: {code} (HTTP {status}): {message}".rstrip(": ")
    if code in _BUCKET_MISSING_CODES:
        return BucketNotFoundError(f"bucket {bucket!r} does not exist ({text})")
    if code in _NOT_FOUND_CODES:
        if key is None:
            return BucketNotFoundError(f"bucket {bucket!r} does not exist ({text})")
        return ObjectNotFoundError(f"object s3://{bucket}/{key} does not exist ({text})")
    if code in _ACCESS_DENIED_CODES:
        return AccessDeniedError(f"access denied: {text}")
    if code in _PRECONDITION_CODES:
        return PreconditionFailedError(f"precondition failed: {text}")
    if conditional and _refuses_condition(code, status, message):
        return ConditionalWriteNotSupportedError(
            f"the server does not support conditional writes (If-None-Match): {text}"
        )
    if code in _INVALID_ARGUMENT_CODES:
        return InvalidArgumentError(text)
    if code == "BucketAlreadyExists":
        return BucketAlreadyExistsError(
            f"bucket {bucket!r} already exists and belongs to someone else ({text})"
        )
    if code == "BucketNotEmpty":
        return BucketNotEmptyError(f"bucket {bucket!r} is not empty ({text})")
    return StorageError(text)


def _refuses_condition(code: str, status: int, message: str) -> bool:
    """Whether an answer to a conditional request means "conditions are not supported".

    Stores say so in three ways: 501 / ``NotImplemented`` (Backblaze B2, Alibaba OSS,
    StorageGRID), or 400 ``InvalidArgument``/``InvalidRequest`` naming the header.
    """
    if code in _NOT_IMPLEMENTED_CODES or status == 501:
        return True
    text = message.lower()
    return code in _BAD_REQUEST_CODES and any(word in text for word in _CONDITION_WORDS)


@contextmanager
def translating(
    operation: str,
    bucket: str | None = None,
    key: str | None = None,
    *,
    conditional: bool = False,
) -> Iterator[None]:
    """Re-raise botocore, aiohttp and timeout errors from the block via :func:`translate_error`."""
    try:
        yield
    except (ClientError, *_TRANSPORT_ERRORS) as exc:
        raise translate_error(
            exc, operation=operation, bucket=bucket, key=key, conditional=conditional
        ) from exc


def _error_code(exc: ClientError) -> str:
    return _client_error_parts(exc)[0]


# ---------------------------------------------------------------------------------------
# Small conversions
# ---------------------------------------------------------------------------------------


def _utc(value: datetime | None, where: str) -> datetime:
    if value is None:
        raise StorageError(f"{where}: the response carries no Last-Modified date")
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _note_response(parsed: Mapping[str, Any] | None = None, model: Any = None, **_: Any) -> None:
    """botocore ``after-call`` hook: report every response's metadata to the caller."""
    if parsed is not None:
        note(parsed.get("ResponseMetadata"), operation=getattr(model, "name", ""))


def _checksums(resp: Mapping[str, Any]) -> dict[str, str]:
    """The checksums a HEAD or GET response reports for the object's bytes."""
    return {name: str(resp[name]) for name in _CHECKSUMS if resp.get(name)}


def _settings(resp: Mapping[str, Any]) -> dict[str, Any]:
    """The object settings a HEAD or GET response carries."""
    return {name: resp[name] for name in _RETURNED_SETTINGS if resp.get(name) is not None}


def _read_metadata(raw: Mapping[str, str] | None) -> dict[str, str]:
    return {k.lower(): v for k, v in (raw or {}).items()}


def _check_metadata(metadata: Mapping[str, str], bucket: str, key: str) -> dict[str, str]:
    for name, value in metadata.items():
        if not (name.isascii() and value.isascii()):
            raise InvalidArgumentError(
                f"metadata of s3://{bucket}/{key} must be ASCII, got {name!r}: {value!r}"
            )
    return dict(metadata)


class _FileRange(io.RawIOBase):
    """A read-only, seekable view of ``length`` bytes of a file starting at ``offset``.

    Multipart parts are sent from such views rather than from ``bytes``: botocore and
    aiohttp then stream each part in small chunks instead of holding (and copying) whole
    parts in memory, which keeps a 1 GiB upload's footprint independent of the part size.
    Seeking is relative to the range, so botocore can rewind the body for a retry.
    """

    def __init__(self, path: Path, offset: int, length: int) -> None:
        super().__init__()
        self._fh = path.open("rb")
        self._offset = offset
        self._length = length
        self._pos = 0
        size = os.fstat(self._fh.fileno()).st_size
        if size < offset + length:
            self._fh.close()
            raise StorageError(
                f"{path} shrank while being uploaded: wanted {length} bytes at offset "
                f"{offset}, the file has {size}"
            )

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, pos: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._length}[whence]
        self._pos = min(max(0, base + pos), self._length)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        want = min(len(view), self._length - self._pos)
        if want <= 0:
            return 0
        self._fh.seek(self._offset + self._pos)
        got = self._fh.readinto(view[:want])
        self._pos += got or 0
        return got or 0

    def close(self) -> None:
        self._fh.close()
        super().close()


_XML_UNSAFE: Final = re.compile("[\x00-\x08\x0b-\x1f\ufffe\uffff\ud800-\udfff]")


#: Marks a continuation token this adapter made itself: "list again after this key".
_RESUME_AFTER: Final = "\x00start-after\x00"


def _resume_token(where: str, keys: Sequence[str], prefixes: Sequence[str]) -> str:
    """A token that continues a listing after this page, for a server that said the page
    is truncated but sent no ``NextContinuationToken`` (older Ceph RGW, Huawei OBS,
    several SeaweedFS releases; botocore's paginator silently stops there).

    The next page starts after the page's last key, or after everything under its last
    common prefix; a page with neither cannot make progress, which is an error.
    """
    candidates = list(keys) + [p + "\U0010ffff" for p in prefixes]
    if not candidates:
        raise StorageError(f"{where}: the server sent an empty truncated page without a token")
    _log.warning(
        "%s: truncated page without NextContinuationToken; continuing after its last key",
        where,
    )
    return _RESUME_AFTER + max(candidates, key=lambda k: k.encode("utf-8", "surrogatepass"))


def _xml_safe(key: str) -> bool:
    """True when an XML 1.0 request body carries ``key`` unchanged."""
    return _XML_UNSAFE.search(key) is None


def _covers_whole_object(range_header: str, size: int) -> bool:
    """True when ``bytes=0-`` or ``bytes=0-N`` (N ≥ size - 1) asks for the whole object."""
    start, _, end = range_header.removeprefix("bytes=").partition("-")
    return start == "0" and (end == "" or int(end) >= size - 1)


def _retried(response: Mapping[str, Any]) -> bool:
    """True when botocore needed more than one attempt for this response."""
    return bool(response.get("ResponseMetadata", {}).get("RetryAttempts", 0))


def _multipart_etag(parts: Mapping[int, str]) -> str | None:
    """The ETag S3 gives the object completed from ``parts``: MD5 of the part MD5s, ``-N``."""
    try:
        digests = b"".join(bytes.fromhex(parts[n].strip('"')) for n in sorted(parts))
    except ValueError:
        return None
    return f"{hashlib.md5(digests).hexdigest()}-{len(parts)}"


def _part_size(size: int, chunksize: int) -> int:
    """The configured part size, grown (in whole MiB) when the file needs > 10,000 parts."""
    if math.ceil(size / chunksize) <= MAX_PARTS:
        return chunksize
    return math.ceil(size / MAX_PARTS / _MIB) * _MIB


# ---------------------------------------------------------------------------------------
# Streaming GET body
# ---------------------------------------------------------------------------------------


#: Resumes a GET body from an absolute byte offset: the new body, or ObjectChangedError.
Resume = Callable[[int], Awaitable["StreamingBody"]]


class S3ObjectBody:
    """A streaming GetObject response (implements ``ObjectBody``).

    ``read(n)`` returns exactly ``n`` bytes unless the object ends first, like botocore's
    blocking ``StreamingBody``. Close it with :meth:`aclose` (or ``async with``): a body
    not read to the end holds an HTTP connection, which closing drops.

    A connection that fails mid-body (dropped, cut short, timed out) is resumed where it
    stopped with ``resume`` (a ranged GET conditional on this version's ETag), at most
    ``attempts`` times per body with a jittered backoff; the bytes handed out are those
    of one version, in order, or :class:`ObjectChangedError` says the version is gone.
    """

    def __init__(
        self,
        response: GetObjectOutputTypeDef,
        *,
        bucket: str,
        key: str,
        head: ObjectHead,
        resume: Resume | None = None,
        attempts: int = 0,
        holders: ConnectionHolders | None = None,
    ) -> None:
        self._stream: StreamingBody | None = response["Body"]
        self._bucket = bucket
        self._key = key
        self._head = head
        self._content_length = int(response.get("ContentLength", 0))
        self._content_range: str | None = response.get("ContentRange") or None
        match = _CONTENT_RANGE_RE.fullmatch(self._content_range or "")
        #: Absolute offset of this body's first byte within the object.
        self._first = 0 if match is None else int(match.group(1))
        self._consumed = 0
        self._resume = resume
        self._attempts_left = attempts
        self._resumes = 0
        self._eof = False
        self._closed = False
        self._busy = 0
        self._parks = 0
        self._holders = holders if resume is not None else None
        if self._holders is not None:
            self._holders.opened(self)
        elif holders is not None:
            holders.release()

    @property
    def head(self) -> ObjectHead:
        """The object's headers; for a ranged GET ``size`` is the full object size."""
        return self._head

    @property
    def content_length(self) -> int:
        """Number of bytes this response carries (the range's length for ranged GETs)."""
        return self._content_length

    @property
    def content_range(self) -> str | None:
        """The ``Content-Range`` header of a ranged GET, else ``None``."""
        return self._content_range

    @property
    def resumes(self) -> int:
        """How many times a failed connection was resumed."""
        return self._resumes

    @property
    def parks(self) -> int:
        """How many times this body gave its idle connection back to the pool."""
        return self._parks

    @property
    def busy(self) -> bool:
        """True while a read is in progress."""
        return self._busy > 0

    def park(self) -> None:
        """Drop the connection now; the next read resumes with a ranged ``If-Match`` GET.

        Called by the adapter when the pool runs short (see ``s3_connections``). Does
        nothing for a body that is busy, finished or closed.
        """
        if self._busy or self._closed or self._eof or self._stream is None:
            return
        if self._resume is None:
            return
        self._stream.close()
        self._stream = None
        self._parks += 1
        _log.debug(
            "parked the idle GetObject body of s3://%s/%s at byte %d to free a pooled connection",
            self._bucket,
            self._key,
            self._first + self._consumed,
        )

    async def read(self, amt: int | None = None) -> bytes:
        """Read ``amt`` bytes (fewer only at the end; all remaining when ``None`` or < 0)."""
        if self._closed:
            raise ClientClosedError(f"the body of s3://{self._bucket}/{self._key} is closed")
        if self._eof or amt == 0:
            return b""
        wanted = None if amt is None or amt < 0 else amt
        buffer = bytearray()
        self._busy += 1
        try:
            while wanted is None or len(buffer) < wanted:
                chunk = await self._read_some(
                    DOWNLOAD_CHUNK_SIZE if wanted is None else wanted - len(buffer)
                )
                if not chunk:
                    self._eof = True
                    break
                buffer += chunk
        finally:
            self._busy -= 1
            if self._holders is not None:
                if self._eof or self._stream is None:
                    self._holders.drop(self)
                else:
                    self._holders.touch(self)
        return bytes(buffer)

    async def _read_some(self, amt: int) -> bytes:
        """Up to ``amt`` bytes from the connection, resuming it if it fails."""
        while True:
            if self._stream is None:
                # Parked to free a pooled connection: continue where it stopped.
                if self._consumed >= self._content_length:
                    return b""
                assert self._resume is not None
                if self._holders is not None:
                    await self._holders.reserve()
                    try:
                        self._stream = await self._resume(self._first + self._consumed)
                    except BaseException:
                        self._holders.release()
                        raise
                    self._holders.opened(self)
                else:
                    self._stream = await self._resume(self._first + self._consumed)
            try:
                chunk = await self._stream.read(amt)
            except _TRANSPORT_ERRORS as exc:
                if self._consumed >= self._content_length > 0:
                    return b""  # every byte arrived; only the ending failed
                if self._resume is None or self._attempts_left <= 0:
                    raise translate_error(
                        exc,
                        operation="GetObject (reading body)",
                        bucket=self._bucket,
                        key=self._key,
                    ) from exc
                await self._reconnect(exc)
                continue
            self._consumed += len(chunk)
            return bytes(chunk)

    async def _reconnect(self, exc: BaseException) -> None:
        assert self._resume is not None
        self._attempts_left -= 1
        self._resumes += 1
        offset = self._first + self._consumed
        _log.info(
            "resuming GetObject s3://%s/%s at byte %d after %s: %s",
            self._bucket,
            self._key,
            offset,
            type(exc).__name__,
            exc,
        )
        if self._stream is not None:
            self._stream.close()
            self._stream = None
        await anyio.sleep(s3_compat.backoff_delay(self._resumes))
        self._stream = await self._resume(offset)

    async def iter_chunks(self, chunk_size: int = DOWNLOAD_CHUNK_SIZE) -> AsyncIterator[bytes]:
        """Iterate over the remaining bytes in chunks of ``chunk_size`` (the last may be short)."""
        if chunk_size <= 0:
            raise InvalidArgumentError(f"chunk_size must be positive, got {chunk_size}")
        while chunk := await self.read(chunk_size):
            yield chunk

    async def aclose(self) -> None:
        """Release the connection (dropped if the body was not read to the end); idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._holders is not None:
            self._holders.drop(self)
        # A fully read aiohttp response has already returned its connection to the pool;
        # close() then does nothing, otherwise it drops the half-read connection.
        if self._stream is not None:
            self._stream.close()
            self._stream = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


# ---------------------------------------------------------------------------------------
# The adapter
# ---------------------------------------------------------------------------------------


class _State(enum.Enum):
    UNOPENED = "unopened"
    OPENED = "opened"
    CLOSED = "closed"


class S3Storage:
    """``StoragePort`` over aiobotocore: one S3 client for the object's lifetime.

    The constructor does no I/O; the client (and the boto session, which reads AWS
    config files) is created on first use. Close with :meth:`aclose` or ``async with``;
    afterwards every call raises :class:`ClientClosedError`. There is no reopening.

    ``parts_in_flight`` bounds concurrent UploadPart requests of one multipart upload,
    so a single upload holds at most ``parts_in_flight × multipart_chunksize`` bytes.
    ``delete_batch_size`` is the number of keys per DeleteObjects request (≤ 1000).
    ``metrics``, when given, counts the retries behind every S3 response
    (``deltaglider.s3.retries``, tag ``operation``).
    """

    def __init__(
        self,
        config: DeltaGliderConfig,
        *,
        parts_in_flight: int = 4,
        delete_batch_size: int = MAX_DELETE_BATCH,
        metrics: MetricsPort | None = None,
    ) -> None:
        if parts_in_flight < 1:
            raise InvalidArgumentError(f"parts_in_flight must be >= 1, got {parts_in_flight}")
        if not 1 <= delete_batch_size <= MAX_DELETE_BATCH:
            raise InvalidArgumentError(
                f"delete_batch_size must be in [1, {MAX_DELETE_BATCH}], got {delete_batch_size}"
            )
        self._config = config
        self._metrics = metrics
        self._parts_in_flight = parts_in_flight
        self._delete_batch_size = delete_batch_size
        self._state = _State.UNOPENED
        self._stack = AsyncExitStack()
        self._client: S3Client | None = None
        self._lock: anyio.Lock | None = None
        self._conditional_deletes = True
        self._batch_deletes = True
        self._pool_size = max(10, config.concurrency * 2, config.metadata_concurrency)
        # GET bodies kept open may hold at most half the pool (see s3_connections).
        self._holders = ConnectionHolders(self._pool_size // 2)

    @property
    def config(self) -> DeltaGliderConfig:
        """The configuration this adapter was built with."""
        return self._config

    @property
    def region(self) -> str:
        """The client's region (``us-east-1`` when none is configured)."""
        return self._config.region_name or DEFAULT_REGION

    # -- lifecycle ------------------------------------------------------------------

    def _client_config(self) -> AioConfig:
        cfg = self._config
        return AioConfig(
            signature_version="s3v4",
            retries={"max_attempts": cfg.max_attempts, "mode": "standard"},
            connect_timeout=cfg.connect_timeout,
            read_timeout=cfg.read_timeout,
            max_pool_connections=self._pool_size,
            # botocore >= 1.36 adds CRC checksums by default, which some S3-compatible
            # stores reject or answer with whole-object checksums on ranged GETs.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            s3={"addressing_style": "path"} if cfg.endpoint_url else None,
        )

    async def _s3(self) -> S3Client:
        """The aiobotocore client, created on first use (one per S3Storage)."""
        self._ensure_open()
        if self._client is not None:
            return self._client
        if self._lock is None:
            self._lock = anyio.Lock()
        async with self._lock:
            # aclose() may have run while this task waited for the lock.
            self._ensure_open()
            if self._client is None:
                cfg = self._config
                with translating("connect", None, None):
                    # Building a session reads ~/.aws files: keep that off the event loop.
                    session = await anyio.to_thread.run_sync(
                        functools.partial(
                            aioboto3.Session,
                            aws_access_key_id=cfg.aws_access_key_id,
                            aws_secret_access_key=cfg.aws_secret_access_key,
                            aws_session_token=cfg.aws_session_token,
                            region_name=self.region,
                            profile_name=cfg.profile_name,
                        )
                    )
                    client = await self._stack.enter_async_context(
                        session.client(
                            "s3",
                            endpoint_url=cfg.endpoint_url,
                            config=self._client_config(),
                        )
                    )
                    client.meta.events.register("after-call.s3", _note_response)
                    if self._metrics is not None:
                        client.meta.events.register("after-call.s3", self._count_retries)
                    s3_compat.install(client, max_attempts=cfg.max_attempts)
                if self._closing_started():
                    # aclose() ran while the client was being created: do not leak it.
                    await self._close_stack()
                    raise ClientClosedError("this S3Storage is closed")
                self._client = client
                self._state = _State.OPENED
            return self._client

    def _count_retries(
        self, parsed: Mapping[str, Any] | None = None, model: Any = None, **_: Any
    ) -> None:
        """botocore ``after-call`` hook: the retries behind each response, by operation."""
        response = (parsed or {}).get("ResponseMetadata") or {}
        retries = int(response.get("RetryAttempts", 0) or 0)
        if retries and self._metrics is not None:
            operation = str(getattr(model, "name", "") or "unknown")
            self._metrics.increment("deltaglider.s3.retries", retries, {"operation": operation})

    def _ensure_open(self) -> None:
        if self._state is _State.CLOSED:
            raise ClientClosedError("this S3Storage is closed")

    async def aclose(self) -> None:
        """Close the HTTP session (bounded, shielded from cancellation); idempotent."""
        if self._state is _State.CLOSED:
            return
        self._state = _State.CLOSED
        self._client = None
        await self._close_stack()

    def _closing_started(self) -> bool:
        return self._state is _State.CLOSED

    async def _close_stack(self) -> None:
        with anyio.move_on_after(CLOSE_TIMEOUT, shield=True):
            try:
                await self._stack.aclose()
            except Exception as exc:
                # Closing is best effort: a failing close must not mask the caller's error.
                _log.warning("closing the S3 client failed: %s", exc)

    async def __aenter__(self) -> Self:
        self._ensure_open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- objects --------------------------------------------------------------------

    async def head(self, bucket: str, key: str) -> ObjectHead | None:
        """HEAD an object; ``None`` when it does not exist.

        HEAD answers a bare 404 both for a missing key and for a missing bucket, and telling
        them apart costs a second request; the core probes many keys that usually do not
        exist (the other form of a name, a space's reference), so ``None`` covers both and
        callers that must report a missing bucket ask :meth:`head_bucket`.
        """
        client = await self._s3()
        with translating("HeadObject", bucket, key):
            try:
                resp = await client.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
            except ClientError as exc:
                if _error_code(exc) not in _NOT_FOUND_CODES:
                    raise
                return None
        return ObjectHead(
            key=key,
            size=int(resp.get("ContentLength", 0)),
            etag=resp.get("ETag", ""),
            last_modified=_utc(resp.get("LastModified"), f"HeadObject s3://{bucket}/{key}"),
            metadata=_read_metadata(resp.get("Metadata")),
            content_type=resp.get("ContentType"),
            version_id=resp.get("VersionId"),
            settings=_settings(resp),
            checksums=_checksums(resp),
        )

    async def list_page(
        self,
        bucket: str,
        prefix: str = "",
        *,
        delimiter: str | None = None,
        continuation_token: str | None = None,
        start_after: str | None = None,
        max_keys: int = 1000,
        fetch_owner: bool = False,
    ) -> ListPage:
        """One page of ListObjectsV2 (keys URL-decoded by botocore)."""
        client = await self._s3()
        where = f"ListObjectsV2 s3://{bucket}/{prefix}"
        params: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix, "MaxKeys": max_keys}
        if fetch_owner:
            params["FetchOwner"] = True
        if delimiter:
            params["Delimiter"] = delimiter
        if continuation_token is not None and continuation_token.startswith(_RESUME_AFTER):
            params["StartAfter"] = continuation_token[len(_RESUME_AFTER) :]
        elif continuation_token is not None:
            params["ContinuationToken"] = continuation_token
        if start_after and "StartAfter" not in params:
            params["StartAfter"] = start_after
        with translating("ListObjectsV2", bucket, None):
            resp = await client.list_objects_v2(**params)
        objects = [
            ObjectInfo(
                key=item["Key"],
                size=int(item.get("Size", 0)),
                etag=item.get("ETag", ""),
                last_modified=_utc(item.get("LastModified"), where),
                storage_class=item.get("StorageClass") or "STANDARD",
                owner={k: str(v) for k, v in item["Owner"].items()} if "Owner" in item else None,
            )
            for item in resp.get("Contents", [])
        ]
        prefixes = [p["Prefix"] for p in resp.get("CommonPrefixes", []) if "Prefix" in p]
        truncated = bool(resp.get("IsTruncated", False))
        token = resp.get("NextContinuationToken") or None
        if truncated and token is None:
            token = _resume_token(where, [o.key for o in objects], prefixes)
        return ListPage(
            objects=objects,
            common_prefixes=prefixes,
            is_truncated=truncated,
            next_continuation_token=token,
            key_count=int(resp.get("KeyCount", len(objects) + len(prefixes))),
        )

    async def iter_objects(
        self,
        bucket: str,
        prefix: str = "",
        *,
        delimiter: str | None = None,
        page_size: int = 1000,
    ) -> AsyncIterator[ObjectInfo]:
        """Every object under ``prefix``, following continuation tokens.

        ``page_size`` is the ``MaxKeys`` of each ListObjectsV2 request.
        """
        token: str | None = None
        while True:
            page = await self.list_page(
                bucket, prefix, delimiter=delimiter, continuation_token=token, max_keys=page_size
            )
            for info in page.objects:
                yield info
            if not page.is_truncated:
                return
            token = page.next_continuation_token

    async def open(self, bucket: str, key: str, *, range: str | None = None) -> S3ObjectBody:
        """Start a streaming GET; ``range`` is an HTTP range such as ``bytes=0-99``.

        Raises :class:`ObjectNotFoundError` or :class:`BucketNotFoundError` when absent,
        :class:`InvalidArgumentError` for a malformed or unsatisfiable range. The caller
        must ``aclose()`` the returned body.
        """
        if range is not None and not _RANGE_RE.fullmatch(range):
            raise InvalidArgumentError(
                f"unsupported range {range!r} for s3://{bucket}/{key} "
                "(expected bytes=START-[END] or bytes=-SUFFIX)"
            )
        client = await self._s3()
        params: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if range is not None:
            params["Range"] = range
        await self._holders.reserve()
        try:
            with translating("GetObject", bucket, key):
                resp = await client.get_object(**params)
        except BaseException:
            self._holders.release()
            raise
        where = f"GetObject s3://{bucket}/{key}"
        try:
            content_range = resp.get("ContentRange") or None
            size = int(resp.get("ContentLength", 0))
            last = size - 1  # absolute offset of the last byte this answer carries
            if range is not None:
                match = _CONTENT_RANGE_RE.fullmatch(content_range or "")
                if match is not None:
                    size, last = int(match.group(3)), int(match.group(2))
                elif content_range is not None or not _covers_whole_object(range, size):
                    # A server that ignores Range sends the whole object: handing that
                    # over as the requested range would give the caller the wrong bytes.
                    raise StorageError(
                        f"{where}: asked for {range} but the server answered "
                        f"Content-Range {content_range!r}"
                    )
            head = ObjectHead(
                key=key,
                size=size,
                etag=resp.get("ETag", ""),
                last_modified=_utc(resp.get("LastModified"), where),
                metadata=_read_metadata(resp.get("Metadata")),
                content_type=resp.get("ContentType"),
                version_id=resp.get("VersionId"),
                settings=_settings(resp),
            )
        except BaseException:
            resp["Body"].close()
            self._holders.release()
            raise
        return S3ObjectBody(
            resp,
            bucket=bucket,
            key=key,
            head=head,
            resume=functools.partial(self._resume_get, bucket, key, head, last),
            attempts=self._config.max_attempts,
            holders=self._holders,
        )

    async def _resume_get(
        self, bucket: str, key: str, head: ObjectHead, last: int, offset: int
    ) -> StreamingBody:
        """The rest of ``head``'s version from ``offset`` to ``last`` (inclusive), by a
        ranged GET with ``If-Match``; :class:`ObjectChangedError` when that version is gone.

        The answer's own ETag and Content-Range are checked too: some stores ignore
        ``If-Match`` on GET, and one that ignores ``Range`` would send other bytes.
        """
        client = await self._s3()
        where = f"s3://{bucket}/{key}"
        changed = ObjectChangedError(
            f"{where} was replaced while being read (its ETag is no longer {head.etag}); "
            "read it again"
        )
        try:
            with translating("GetObject (resuming)", bucket, key):
                resp = await client.get_object(
                    Bucket=bucket, Key=key, Range=f"bytes={offset}-{last}", IfMatch=head.etag
                )
        except (PreconditionFailedError, ObjectNotFoundError) as exc:
            raise changed from exc
        body: StreamingBody = resp["Body"]
        expected = f"bytes {offset}-{last}/{head.size}"
        if resp.get("ETag", "").strip('"') != head.etag.strip('"'):
            body.close()
            raise changed
        if resp.get("ContentRange") != expected:
            body.close()
            raise StorageError(
                f"GetObject {where}: resuming asked for {expected} but the server answered "
                f"Content-Range {resp.get('ContentRange')!r}"
            )
        return body

    async def get_to_file(self, bucket: str, key: str, dest: Path) -> ObjectHead:
        """Stream an object into ``dest`` (created or truncated) in 1 MiB chunks.

        ``dest`` is opened only after the GET succeeded, so a missing object leaves an
        existing ``dest`` untouched. On a failure or cancellation while streaming, a
        partial ``dest`` is left in place: the caller owns ``dest`` and deletes it.
        """
        body = await self.open(bucket, key)
        try:
            written = 0
            async with await anyio.open_file(dest, "wb") as fh:
                async for chunk in body.iter_chunks(DOWNLOAD_CHUNK_SIZE):
                    await fh.write(chunk)
                    written += len(chunk)
            if written != body.content_length:
                raise StorageError(
                    f"GetObject s3://{bucket}/{key}: got {written} bytes, "
                    f"expected {body.content_length}"
                )
            return body.head
        finally:
            await body.aclose()

    async def put_file(
        self,
        bucket: str,
        key: str,
        src: Path,
        *,
        metadata: Mapping[str, str],
        content_type: str | None = None,
        if_none_match: bool = False,
        settings: Mapping[str, Any] | None = None,
        if_match: str | None = None,
    ) -> PutResult:
        """Upload a file: one streamed PutObject below ``multipart_threshold``, else multipart.

        ``settings`` are object settings by boto3 name (ACL, StorageClass, SSE...).

        Multipart uploads send ``multipart_chunksize`` parts (grown when more than 10,000
        would be needed), at most ``parts_in_flight`` at a time, and are aborted on any
        failure or cancellation. With ``if_none_match`` the write carries
        ``If-None-Match: *`` (on PutObject, or on CompleteMultipartUpload):
        :class:`PreconditionFailedError` when the key exists,
        :class:`ConditionalWriteNotSupportedError` when the server refuses the header.
        ``if_match`` sends ``If-Match: <etag>`` the same way (a HEAD first for multipart:
        some servers ignore it on CompleteMultipartUpload).
        """
        meta = _check_metadata(metadata, bucket, key)
        conditional = if_none_match or if_match is not None
        stat = await anyio.Path(src).stat()
        client = await self._s3()
        if stat.st_size > 0 and stat.st_size >= self._config.multipart_threshold:
            return await self._put_multipart(
                client,
                bucket,
                key,
                src,
                stat.st_size,
                meta,
                content_type,
                if_none_match,
                settings,
                if_match,
            )
        extra: dict[str, Any] = {**(settings or {}), "Metadata": meta}
        if content_type is not None:
            extra["ContentType"] = content_type
        if if_none_match:
            extra["IfNoneMatch"] = "*"
        if if_match is not None:
            extra["IfMatch"] = if_match
        fh = await anyio.to_thread.run_sync(src.open, "rb")
        try:
            with translating("PutObject", bucket, key, conditional=conditional):
                # botocore streams the file (and hashes it for the SigV4 payload signature,
                # rewinding it on retries); nothing is read into memory at once.
                resp = await client.put_object(
                    Bucket=bucket, Key=key, Body=fh, ContentLength=stat.st_size, **extra
                )
        finally:
            await anyio.to_thread.run_sync(fh.close)
        return PutResult(etag=resp.get("ETag", ""), version_id=resp.get("VersionId"))

    async def _put_multipart(
        self,
        client: S3Client,
        bucket: str,
        key: str,
        src: Path,
        size: int,
        metadata: dict[str, str],
        content_type: str | None,
        if_none_match: bool,
        settings: Mapping[str, Any] | None,
        if_match: str | None = None,
    ) -> PutResult:
        if if_match is not None:
            current = await self.head(bucket, key)
            if current is None or current.etag != if_match:
                raise PreconditionFailedError(
                    f"precondition failed: s3://{bucket}/{key} is no longer {if_match} (If-Match)"
                )
        if if_none_match and await self.head(bucket, key) is not None:
            # Fail before uploading gigabytes; the If-None-Match on completion still
            # settles a race with a writer that creates the key meanwhile.
            raise PreconditionFailedError(
                f"precondition failed: s3://{bucket}/{key} already exists (If-None-Match: *)"
            )
        params: dict[str, Any] = {
            **(settings or {}),
            "Bucket": bucket,
            "Key": key,
            "Metadata": metadata,
        }
        if content_type is not None:
            params["ContentType"] = content_type
        # Shielded: cancelled in flight, the upload would exist on the server with an
        # UploadId this process never learns, and nothing could abort it.
        with translating("CreateMultipartUpload", bucket, key), anyio.CancelScope(shield=True):
            created = await client.create_multipart_upload(**params)
        upload_id = created["UploadId"]
        try:
            await anyio.lowlevel.checkpoint()  # a cancellation that arrived meanwhile
            if _retried(created):
                # The answer to an earlier attempt was lost: that attempt may have started
                # an upload nobody will complete. It cannot be told apart from another
                # writer's live upload of the same key, so it is left to `cleanup`
                # (--older-than) or the bucket's AbortIncompleteMultipartUpload rule.
                _log.info(
                    "CreateMultipartUpload of s3://%s/%s was retried: an earlier attempt may "
                    "have left an open upload (remove stale ones with deltaglider cleanup)",
                    bucket,
                    key,
                )
            parts = await self._upload_parts(client, bucket, key, src, size, upload_id)
            complete: dict[str, Any] = {
                "Bucket": bucket,
                "Key": key,
                "UploadId": upload_id,
                "MultipartUpload": {
                    "Parts": [{"ETag": parts[n], "PartNumber": n} for n in sorted(parts)]
                },
            }
            if if_none_match:
                complete["IfNoneMatch"] = "*"
            if if_match is not None:
                complete["IfMatch"] = if_match
            conditional = if_none_match or if_match is not None
            with translating("CompleteMultipartUpload", bucket, key, conditional=conditional):
                try:
                    done = await client.complete_multipart_upload(**complete)
                except ClientError as exc:
                    if _error_code(exc) != "NoSuchUpload" or not _retried(exc.response):
                        raise
                    # An earlier attempt completed the upload and its answer was lost: the
                    # object is ours if its ETag is the one these very parts make.
                    head = await self.head(bucket, key)
                    if head is None or head.etag.strip('"') != _multipart_etag(parts):
                        raise
                    return PutResult(etag=head.etag, version_id=head.version_id)
        except BaseException:
            await self._abort_multipart(client, bucket, key, upload_id)
            raise
        return PutResult(etag=done.get("ETag", ""), version_id=done.get("VersionId"))

    async def _upload_parts(
        self, client: S3Client, bucket: str, key: str, src: Path, size: int, upload_id: str
    ) -> dict[int, str]:
        part_size = _part_size(size, self._config.multipart_chunksize)
        count = math.ceil(size / part_size)
        etags: dict[int, str] = {}
        # A slot is taken before a part is read into memory and freed once it is sent,
        # which bounds memory to parts_in_flight × part_size.
        slots = anyio.Semaphore(self._parts_in_flight)

        async def upload(number: int, offset: int, length: int) -> None:
            try:
                body = await anyio.to_thread.run_sync(_FileRange, src, offset, length)
                try:
                    with translating(f"UploadPart {number}/{count}", bucket, key):
                        resp = await client.upload_part(
                            Bucket=bucket,
                            Key=key,
                            UploadId=upload_id,
                            PartNumber=number,
                            Body=cast("IO[bytes]", body),
                            ContentLength=length,
                        )
                finally:
                    body.close()
                etags[number] = resp["ETag"]
            finally:
                slots.release()

        try:
            async with anyio.create_task_group() as tg:
                for number in range(1, count + 1):
                    offset = (number - 1) * part_size
                    await slots.acquire()
                    tg.start_soon(upload, number, offset, min(part_size, size - offset))
        except BaseExceptionGroup as group:
            # One plain error for the caller, keeping the leaf's own cause (the botocore
            # error); the group stays reachable as its __context__.
            leaf = unwrap_group(group)
            raise leaf from leaf.__cause__
        return etags

    async def list_multipart_uploads(
        self, bucket: str, prefix: str
    ) -> AsyncIterator[MultipartUpload]:
        """Every in-progress multipart upload under ``prefix`` (all ListMultipartUploads
        pages, keys as stored)."""
        client = await self._s3()
        params: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
        while True:
            with translating("ListMultipartUploads", bucket, prefix or None):
                page = await client.list_multipart_uploads(**params)
            for upload in page.get("Uploads", []):
                key, upload_id = upload.get("Key"), upload.get("UploadId")
                if key is None or upload_id is None:
                    continue
                initiated = upload.get("Initiated")
                yield MultipartUpload(
                    key=key,
                    upload_id=upload_id,
                    initiated=None
                    if initiated is None
                    else _utc(initiated, f"ListMultipartUploads s3://{bucket}/{key}"),
                )
            next_key = page.get("NextKeyMarker")
            if not page.get("IsTruncated") or not next_key:
                return
            params["KeyMarker"] = next_key
            next_id = page.get("NextUploadIdMarker")
            if next_id:
                params["UploadIdMarker"] = next_id
            else:
                params.pop("UploadIdMarker", None)

    async def abort_multipart_upload(self, bucket: str, key: str, upload_id: str) -> None:
        """AbortMultipartUpload; an upload already gone (``NoSuchUpload``) is not an error."""
        client = await self._s3()
        with translating("AbortMultipartUpload", bucket, key):
            try:
                await client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
            except ClientError as exc:
                if _error_code(exc) != "NoSuchUpload":
                    raise

    async def _abort_multipart(
        self, client: S3Client, bucket: str, key: str, upload_id: str
    ) -> None:
        """AbortMultipartUpload, shielded from cancellation and bounded in time."""
        with anyio.move_on_after(ABORT_TIMEOUT, shield=True) as scope:
            try:
                await client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
            except ClientError as exc:
                if _error_code(exc) != "NoSuchUpload":
                    _log.warning(
                        "could not abort multipart upload %s of s3://%s/%s: %s",
                        upload_id,
                        bucket,
                        key,
                        exc,
                    )
            except (*_TRANSPORT_ERRORS,) as exc:
                _log.warning(
                    "could not abort multipart upload %s of s3://%s/%s: %s",
                    upload_id,
                    bucket,
                    key,
                    exc,
                )
        if scope.cancelled_caught:
            _log.warning(
                "aborting multipart upload %s of s3://%s/%s timed out after %.0f s",
                upload_id,
                bucket,
                key,
                ABORT_TIMEOUT,
            )

    async def put_bytes(
        self,
        bucket: str,
        key: str,
        data: bytes,
        *,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
    ) -> PutResult:
        """Upload a small in-memory body in one PutObject."""
        meta = _check_metadata(metadata or {}, bucket, key)
        client = await self._s3()
        params: dict[str, Any] = {"Bucket": bucket, "Key": key, "Body": data, "Metadata": meta}
        if content_type is not None:
            params["ContentType"] = content_type
        with translating("PutObject", bucket, key):
            resp = await client.put_object(**params)
        return PutResult(etag=resp.get("ETag", ""), version_id=resp.get("VersionId"))

    async def copy(
        self, bucket: str, source_key: str, key: str, *, if_none_match: bool = False
    ) -> PutResult:
        """CopyObject within ``bucket``, metadata and object settings copied (≤ 5 GB)."""
        client = await self._s3()
        params: dict[str, Any] = {
            "Bucket": bucket,
            "Key": key,
            "CopySource": {"Bucket": bucket, "Key": source_key},
            "MetadataDirective": "COPY",
        }
        if if_none_match:
            params["IfNoneMatch"] = "*"
        with translating("CopyObject", bucket, key, conditional=if_none_match):
            try:
                resp = await client.copy_object(**params)
            except ClientError as exc:
                if _error_code(exc) in _NOT_FOUND_CODES:
                    raise ObjectNotFoundError(
                        f"s3://{bucket}/{source_key} does not exist (CopyObject to {key})"
                    ) from exc
                raise
        result = resp.get("CopyObjectResult", {})
        return PutResult(etag=result.get("ETag", ""), version_id=resp.get("VersionId"))

    async def delete(self, bucket: str, key: str, *, if_match: str | None = None) -> None:
        """Delete one object; a missing key is not an error, a missing bucket is.

        With ``if_match`` the request carries ``If-Match: <etag>``: a different version
        raises :class:`PreconditionFailedError`. A server that refuses the header
        (``NotImplemented``) gets unconditional deletes from then on; servers that ignore
        it delete unconditionally (callers do not rely on the condition for safety).
        """
        client = await self._s3()
        params: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if if_match is not None and self._conditional_deletes:
            params["IfMatch"] = if_match
        with translating("DeleteObject", bucket, key, conditional="IfMatch" in params):
            try:
                await client.delete_object(**params)
            except ClientError as exc:
                code = _error_code(exc)
                if "IfMatch" in params and code in _NOT_FOUND_CODES:
                    return  # already gone (AWS answers 404 to a conditional delete)
                if "IfMatch" in params and (
                    code == "InvalidArgument"
                    or _refuses_condition(code, *_client_error_parts(exc)[1:])
                ):
                    _log.info("the server refuses conditional deletes; deleting unconditionally")
                    self._conditional_deletes = False
                    await client.delete_object(Bucket=bucket, Key=key)
                    return
                raise

    async def delete_many(self, bucket: str, keys: Sequence[str]) -> list[DeleteFailure]:
        """Delete ``keys``: DeleteObjects in batches of ``delete_batch_size`` (Quiet).

        A key that XML 1.0 cannot carry (control characters other than tab and newline;
        a carriage return, which XML parsers turn into a newline) is legal in S3 but would
        make the whole batch malformed: such keys are deleted one by one with DeleteObject.
        Returns the per-key failures.
        """
        if not keys:
            return []
        client = await self._s3()
        batchable = [k for k in keys if _xml_safe(k)]
        failures = await self._delete_one_by_one(bucket, [k for k in keys if not _xml_safe(k)])
        for start in range(0, len(batchable), self._delete_batch_size):
            batch = batchable[start : start + self._delete_batch_size]
            if self._batch_deletes:
                failures.extend(await self._delete_batch(client, bucket, batch))
            else:
                failures.extend(await self._delete_one_by_one(bucket, batch))
        return failures

    async def _delete_batch(
        self, client: S3Client, bucket: str, keys: Sequence[str]
    ) -> list[DeleteFailure]:
        """One DeleteObjects, re-sending the keys it failed with a transient per-key error
        (``SlowDown``, ``InternalError``...: inside a 200 answer, so botocore never
        retries them) up to ``max_attempts`` times; the remaining per-key failures."""
        pending = list(keys)
        for attempt in range(1, self._config.max_attempts + 2):
            try:
                with translating(f"DeleteObjects ({len(pending)} keys)", bucket, None):
                    resp = await client.delete_objects(
                        Bucket=bucket,
                        Delete={"Objects": [{"Key": k} for k in pending], "Quiet": True},
                    )
            except (InvalidArgumentError, ConditionalWriteNotSupportedError, StorageError) as exc:
                code = exc.response["Error"]["Code"]
                if code not in _MULTI_DELETE_REFUSED_CODES:
                    raise
                # A store without DeleteObjects (older GCS XML API): one by one from now on.
                _log.info("the server refuses DeleteObjects (%s); deleting one by one", code)
                self._batch_deletes = False
                return await self._delete_one_by_one(bucket, pending)
            errors = resp.get("Errors", [])
            transient = [e for e in errors if e.get("Code") in _TRANSIENT_DELETE_CODES]
            if not transient or attempt > self._config.max_attempts:
                return [
                    DeleteFailure(e.get("Key", ""), e.get("Code", ""), e.get("Message", ""))
                    for e in errors
                ]
            failed_for_good = [e for e in errors if e not in transient]
            if failed_for_good:
                return [
                    DeleteFailure(e.get("Key", ""), e.get("Code", ""), e.get("Message", ""))
                    for e in failed_for_good
                ] + await self._delete_batch(client, bucket, [e["Key"] for e in transient])
            pending = [e["Key"] for e in transient]
            await anyio.sleep(s3_compat.backoff_delay(attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    async def _delete_one_by_one(self, bucket: str, keys: Sequence[str]) -> list[DeleteFailure]:
        """DeleteObject for each key; the failures, as DeleteObjects reports them."""
        failures: list[DeleteFailure] = []
        for key in keys:
            try:
                await self.delete(bucket, key)
            except (AccessDeniedError, StorageError) as exc:
                failures.append(DeleteFailure(key, exc.response["Error"]["Code"], str(exc)))
        return failures

    # -- buckets --------------------------------------------------------------------

    async def create_bucket(
        self, bucket: str, *, region: str | None = None, settings: Mapping[str, Any] | None = None
    ) -> None:
        """Create a bucket (``LocationConstraint`` outside us-east-1); quiet if already ours.

        ``settings`` are further CreateBucket parameters (``ACL``, ``ObjectOwnership``...).
        """
        client = await self._s3()
        location = region or self.region
        params: dict[str, Any] = {**(settings or {}), "Bucket": bucket}
        if location != DEFAULT_REGION:
            params["CreateBucketConfiguration"] = {"LocationConstraint": location}
        with translating("CreateBucket", bucket, None):
            try:
                await client.create_bucket(**params)
            except ClientError as exc:
                if _error_code(exc) != "BucketAlreadyOwnedByYou":
                    raise

    async def delete_bucket(self, bucket: str) -> None:
        """Delete an empty bucket; ``BucketNotEmptyError``/``BucketNotFoundError`` otherwise."""
        client = await self._s3()
        with translating("DeleteBucket", bucket, None):
            await client.delete_bucket(Bucket=bucket)

    async def head_bucket(self, bucket: str) -> None:
        """Raise ``BucketNotFoundError``/``AccessDeniedError`` unless the bucket is usable."""
        client = await self._s3()
        with translating("HeadBucket", bucket, None):
            await client.head_bucket(Bucket=bucket)

    async def list_buckets(self, *, region: str | None = None) -> BucketListing:
        """All buckets of the account and their owner, following continuation tokens.

        With ``region``, the server is asked for that region's buckets (``BucketRegion``);
        a bucket it lists without a region (servers that ignore the parameter) is kept
        only if GetBucketLocation places it there.
        """
        client = await self._s3()
        buckets: list[BucketInfo] = []
        owner: dict[str, str] = {}
        params: dict[str, Any] = {} if region is None else {"BucketRegion": region}
        while True:
            with translating("ListBuckets"):
                resp = await client.list_buckets(**params)
            owner = owner or {k: str(v) for k, v in resp.get("Owner", {}).items()}
            for item in resp.get("Buckets", []):
                created = item.get("CreationDate")
                buckets.append(
                    BucketInfo(
                        name=item.get("Name", ""),
                        creation_date=None if created is None else _utc(created, "ListBuckets"),
                        region=item.get("BucketRegion"),
                    )
                )
            token = resp.get("ContinuationToken") or None
            if token is None:
                break
            params["ContinuationToken"] = token
        if region is not None:
            buckets = [b for b in await self._with_regions(buckets) if b.region == region]
        return BucketListing(buckets, owner)

    async def _with_regions(self, buckets: list[BucketInfo]) -> list[BucketInfo]:
        """``buckets`` with each unknown region asked of GetBucketLocation."""
        client = await self._s3()
        found: dict[str, str | None] = {}
        limiter = anyio.CapacityLimiter(16)

        async def locate(name: str) -> None:
            async with limiter:
                try:
                    with translating("GetBucketLocation", name, None):
                        resp = await client.get_bucket_location(Bucket=name)
                except (BucketNotFoundError, AccessDeniedError):
                    found[name] = None  # gone meanwhile, or not ours to ask
                    return
            # S3 reports us-east-1 as no constraint, and old eu-west-1 buckets as "EU".
            constraint = resp.get("LocationConstraint") or DEFAULT_REGION
            found[name] = "eu-west-1" if constraint == "EU" else constraint

        async with anyio.create_task_group() as tg:
            for b in buckets:
                if b.region is None:
                    tg.start_soon(locate, b.name)
        return [
            b if b.region is not None else dataclasses.replace(b, region=found.get(b.name))
            for b in buckets
        ]

    async def get_bucket_acl(self, bucket: str) -> dict[str, Any]:
        """The bucket ACL as plain dicts: ``{"Owner": {...}, "Grants": [...]}``."""
        client = await self._s3()
        with translating("GetBucketAcl", bucket, None):
            resp = await client.get_bucket_acl(Bucket=bucket)
        return {
            "Owner": dict(resp.get("Owner", {})),
            "Grants": [
                {k: dict(v) if isinstance(v, Mapping) else v for k, v in grant.items()}
                for grant in resp.get("Grants", [])
            ],
        }

    async def put_bucket_acl(self, bucket: str, **kwargs: Any) -> None:
        """PutBucketAcl with boto3's keyword arguments (``ACL=``, ``AccessControlPolicy=``...)."""
        client = await self._s3()
        with translating("PutBucketAcl", bucket, None):
            await client.put_bucket_acl(Bucket=bucket, **kwargs)

    async def presign(
        self,
        operation: str,
        params: Mapping[str, Any],
        *,
        expires_in: int = 3600,
        http_method: str | None = None,
    ) -> str:
        """A presigned URL for the client method ``operation`` (e.g. ``get_object``)."""
        client = await self._s3()
        bucket = params.get("Bucket")
        key = params.get("Key")
        with translating(
            f"presign {operation}",
            None if bucket is None else str(bucket),
            None if key is None else str(key),
        ):
            if http_method is None:
                return await client.generate_presigned_url(
                    operation, Params=dict(params), ExpiresIn=expires_in
                )
            return await client.generate_presigned_url(
                operation, Params=dict(params), ExpiresIn=expires_in, HttpMethod=http_method
            )


if TYPE_CHECKING:
    # Static proof that the adapter implements the ports (checked by mypy, free at runtime).
    _storage_port: type[StoragePort] = S3Storage
    _body_port: type[ObjectBody] = S3ObjectBody
    _uploads_port: type[MultipartUploadsPort] = S3Storage
    _buckets_port: type[BucketsPort] = S3Storage
