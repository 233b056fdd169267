"""The object-store port: what the core needs from S3, in plain Python types.

Adapters translate their own errors into the tree of ``deltaglider_async._errors``;
nothing from botocore crosses this boundary.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class ObjectHead:
    """HEAD of one stored object. ``metadata`` keys are lower-case, without ``x-amz-meta-``."""

    key: str
    size: int
    etag: str
    last_modified: datetime
    metadata: Mapping[str, str] = field(default_factory=dict)
    content_type: str | None = None
    version_id: str | None = None


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """One entry of a LIST page."""

    key: str
    size: int
    etag: str
    last_modified: datetime
    storage_class: str = "STANDARD"


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
    ) -> PutResult:
        """Upload a file (multipart above the threshold, aborted on failure or cancellation).

        With ``if_none_match`` the write only succeeds if the key does not exist:
        :class:`PreconditionFailedError` when it does,
        :class:`ConditionalWriteNotSupportedError` when the server refuses the header.
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

    async def create_bucket(self, bucket: str, *, region: str | None = None) -> None:
        """Create a bucket; succeed quietly if this account already owns it."""
        ...

    async def delete_bucket(self, bucket: str) -> None:
        """Delete an empty bucket; ``BucketNotEmptyError`` if it holds objects."""
        ...

    async def head_bucket(self, bucket: str) -> None:
        """Raise ``BucketNotFoundError``/``AccessDeniedError`` unless the bucket is usable."""
        ...

    async def list_buckets(self) -> list[BucketInfo]:
        """All buckets of the account."""
        ...

    async def get_bucket_acl(self, bucket: str) -> dict[str, Any]:
        """The bucket ACL as the S3 API returns it (``Owner``, ``Grants``)."""
        ...

    async def put_bucket_acl(self, bucket: str, **kwargs: Any) -> None:
        """Set the bucket ACL (``ACL=`` canned or ``AccessControlPolicy=``/grants)."""
        ...

    async def presign(
        self, operation: str, params: Mapping[str, Any], *, expires_in: int = 3600
    ) -> str:
        """A presigned URL for ``operation`` (e.g. ``get_object``) with ``params``."""
        ...
