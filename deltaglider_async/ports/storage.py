"""The object-store port: what the core needs from S3, in plain Python types.

Adapters translate their own errors into the tree of ``deltaglider_async._errors``;
nothing from botocore crosses this boundary.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

#: Object settings a caller may give a PUT and read back from a HEAD or GET, by their
#: boto3 names (the response carries the ones S3 returns).
OBJECT_SETTINGS = frozenset(
    {
        "ACL",
        "BucketKeyEnabled",
        "CacheControl",
        "ContentDisposition",
        "ContentEncoding",
        "ContentLanguage",
        "Expires",
        "GrantFullControl",
        "GrantRead",
        "GrantReadACP",
        "GrantWriteACP",
        "SSEKMSEncryptionContext",
        "SSEKMSKeyId",
        "ServerSideEncryption",
        "StorageClass",
        "Tagging",
    }
)


#: The object settings that protect stored bytes (server-side encryption): given to a
#: put, they also apply to a reference the put creates, which holds the same data.
PROTECTION_SETTINGS = frozenset(
    {"ServerSideEncryption", "SSEKMSKeyId", "SSEKMSEncryptionContext", "BucketKeyEnabled"}
)


@dataclass(frozen=True, slots=True)
class ObjectHead:
    """HEAD of one stored object. ``metadata`` keys are lower-case, without ``x-amz-meta-``.

    ``settings`` holds the object settings S3 returned (``CacheControl``,
    ``ServerSideEncryption``, ``StorageClass``... by their boto3 names); ``checksums`` the
    checksums S3 keeps for the stored bytes (``ChecksumCRC32``, ``ChecksumSHA256``...,
    base64, and ``ChecksumType``), where the server reports them.
    """

    key: str
    size: int
    etag: str
    last_modified: datetime
    metadata: Mapping[str, str] = field(default_factory=dict)
    content_type: str | None = None
    version_id: str | None = None
    settings: Mapping[str, Any] = field(default_factory=dict)
    checksums: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """One entry of a LIST page; ``owner`` only when asked for (``fetch_owner``)."""

    key: str
    size: int
    etag: str
    last_modified: datetime
    storage_class: str = "STANDARD"
    owner: Mapping[str, str] | None = None


@dataclass(frozen=True, slots=True)
class ListPage:
    """One page of ListObjectsV2."""

    objects: Sequence[ObjectInfo]
    common_prefixes: Sequence[str]
    is_truncated: bool
    next_continuation_token: str | None
    key_count: int


@dataclass(frozen=True, slots=True)
class PutResult:
    """What a PUT returned."""

    etag: str
    version_id: str | None = None


@dataclass(frozen=True, slots=True)
class DeleteFailure:
    """One key a batch delete could not remove."""

    key: str
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class BucketInfo:
    """One bucket of ListBuckets."""

    name: str
    creation_date: datetime | None
    region: str | None = None


@dataclass(frozen=True, slots=True)
class BucketListing:
    """ListBuckets: the buckets and their owner (``{"DisplayName", "ID"}`` when known)."""

    buckets: list[BucketInfo]
    owner: Mapping[str, str] = field(default_factory=dict)

    def __iter__(self) -> Iterator[BucketInfo]:
        return iter(self.buckets)

    def __len__(self) -> int:
        return len(self.buckets)


@dataclass(frozen=True, slots=True)
class MultipartUpload:
    """One in-progress multipart upload (ListMultipartUploads): not yet completed or
    aborted, so its parts are stored and billed but belong to no object."""

    key: str
    upload_id: str
    initiated: datetime | None


class ObjectBody(Protocol):
    """A streaming GET response. Close it (``aclose``) to release the connection."""

    @property
    def head(self) -> ObjectHead:
        """The object's headers; for a ranged GET ``size`` is the full object size."""
        ...

    @property
    def content_length(self) -> int:
        """Number of bytes this response carries (the range's length for ranged GETs)."""
        ...

    @property
    def content_range(self) -> str | None:
        """The ``Content-Range`` header of a ranged GET."""
        ...

    async def read(self, amt: int | None = None) -> bytes:
        """Read up to ``amt`` bytes (all remaining when ``None``); ``b""`` at the end."""
        ...

    def iter_chunks(self, chunk_size: int = 1024 * 1024) -> AsyncIterator[bytes]:
        """Iterate over the remaining bytes in chunks of at most ``chunk_size``."""
        ...

    async def aclose(self) -> None:
        """Release the underlying connection; idempotent."""
        ...


class StoragePort(Protocol):
    """Asynchronous object storage (S3 semantics)."""

    async def head(self, bucket: str, key: str) -> ObjectHead | None:
        """HEAD an object; ``None`` when it (or its bucket) does not exist.

        S3 answers a bare 404 in both cases; callers that must tell a missing bucket from a
        missing key call :meth:`head_bucket`.
        """
        ...

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
        """One page of ListObjectsV2."""
        ...

    def iter_objects(
        self, bucket: str, prefix: str = "", *, delimiter: str | None = None
    ) -> AsyncIterator[ObjectInfo]:
        """Every object under ``prefix``, following continuation tokens."""
        ...

    async def open(self, bucket: str, key: str, *, range: str | None = None) -> ObjectBody:
        """Start a streaming GET; raise ``ObjectNotFoundError`` when absent."""
        ...

    async def get_to_file(self, bucket: str, key: str, dest: Path) -> ObjectHead:
        """Stream an object into ``dest`` (created or truncated) and return its head."""
        ...

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
        """Upload a file (multipart above the threshold, aborted on failure or cancellation).

        ``settings`` are object settings by boto3 name (:data:`OBJECT_SETTINGS`).

        With ``if_none_match`` the write only succeeds if the key does not exist:
        :class:`PreconditionFailedError` when it does,
        :class:`ConditionalWriteNotSupportedError` when the server refuses the header.
        With ``if_match`` (an ETag) it only replaces that very object:
        :class:`PreconditionFailedError` when the key holds another one,
        :class:`PreconditionFailedError` or :class:`ObjectNotFoundError` (servers differ)
        when it is gone.
        """
        ...

    async def put_bytes(
        self,
        bucket: str,
        key: str,
        data: bytes,
        *,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
    ) -> PutResult:
        """Upload a small in-memory body in one request."""
        ...

    async def copy(
        self, bucket: str, source_key: str, key: str, *, if_none_match: bool = False
    ) -> PutResult:
        """Copy an object of at most 5 GB within ``bucket``, server side, with its metadata.

        With ``if_none_match`` only if ``key`` does not exist (as :meth:`put_file`).
        Raises :class:`ObjectNotFoundError` when ``source_key`` does not exist and
        :class:`InvalidArgumentError` when it is larger than one copy request allows.
        """
        ...

    async def delete(self, bucket: str, key: str, *, if_match: str | None = None) -> None:
        """Delete one object; deleting a missing key is not an error.

        With ``if_match`` (an ETag) only that version is deleted: a different one raises
        :class:`PreconditionFailedError`. Servers that do not support conditional deletes
        delete unconditionally (callers must not rely on the condition for safety).
        """
        ...

    async def delete_many(self, bucket: str, keys: Sequence[str]) -> list[DeleteFailure]:
        """Batch delete (≤ 1000 keys per request, split as needed); return the failures."""
        ...

    async def head_bucket(self, bucket: str) -> None:
        """Raise ``BucketNotFoundError``/``AccessDeniedError`` unless the bucket is usable."""
        ...


@runtime_checkable
class BucketsPort(Protocol):
    """Bucket administration and presigned URLs: what the client offers beyond the
    storage format (the core never needs it). ``S3Storage`` implements it."""

    async def create_bucket(
        self, bucket: str, *, region: str | None = None, settings: Mapping[str, Any] | None = None
    ) -> None:
        """Create a bucket; succeed quietly if this account already owns it.

        ``settings`` are CreateBucket parameters by boto3 name (``ACL``, ``ObjectOwnership``...).
        """
        ...

    async def delete_bucket(self, bucket: str) -> None:
        """Delete an empty bucket; ``BucketNotEmptyError`` if it holds objects."""
        ...

    async def list_buckets(self, *, region: str | None = None) -> BucketListing:
        """All buckets of the account (only those in ``region`` when given, each with its
        region filled in), and their owner."""
        ...

    async def get_bucket_acl(self, bucket: str) -> dict[str, Any]:
        """The bucket ACL as the S3 API returns it (``Owner``, ``Grants``)."""
        ...

    async def put_bucket_acl(self, bucket: str, **kwargs: Any) -> None:
        """Set the bucket ACL (``ACL=`` canned or ``AccessControlPolicy=``/grants)."""
        ...

    async def presign(
        self,
        operation: str,
        params: Mapping[str, Any],
        *,
        expires_in: int = 3600,
        http_method: str | None = None,
    ) -> str:
        """A presigned URL for ``operation`` (e.g. ``get_object``) with ``params``."""
        ...


@runtime_checkable
class MultipartUploadsPort(Protocol):
    """Finding and aborting in-progress multipart uploads (a maintenance task, not a
    core one: an upload left open by a killed process is billed until aborted)."""

    def list_multipart_uploads(self, bucket: str, prefix: str) -> AsyncIterator[MultipartUpload]:
        """Every in-progress upload whose key starts with ``prefix``, all pages."""
        ...

    async def abort_multipart_upload(self, bucket: str, key: str, upload_id: str) -> None:
        """Abort one upload; one already gone is not an error."""
        ...
