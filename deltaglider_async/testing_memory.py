"""An in-memory S3 for unit tests: :class:`InMemoryStorage`, with S3's semantics.

It implements the storage ports (objects, buckets) in memory, so code that uses
:class:`~deltaglider_async.AsyncDeltaGliderClient` can be tested without a server:
:func:`memory_client` builds a client over it (with the real xdelta3 by default).

It behaves like S3 where deltaglider can tell: conditional writes (``If-None-Match: *`` →
:class:`PreconditionFailedError`, or a server that refuses or ignores the header, as
chosen), lower-cased ASCII metadata, ListObjectsV2 paging with opaque continuation tokens
and delimiters, ranged GETs, atomic PUTs (a cancelled or failed PUT stores nothing). Every
request is logged (:attr:`InMemoryStorage.requests`) and hooks can delay requests or make
them fail, to test how code copes with slow or failing storage.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import anyio
import anyio.lowlevel

from ._errors import (
    BucketNotEmptyError,
    BucketNotFoundError,
    ConditionalWriteNotSupportedError,
    InvalidArgumentError,
    ObjectNotFoundError,
    PreconditionFailedError,
    StorageError,
)
from .ports.storage import (
    BucketInfo,
    BucketListing,
    DeleteFailure,
    ListPage,
    ObjectHead,
    ObjectInfo,
    PutResult,
    StoragePort,
)

if TYPE_CHECKING:
    from ._client import AsyncDeltaGliderClient

__all__ = [
    "FakeBody",
    "Hook",
    "InMemoryStorage",
    "Request",
    "StoredObject",
    "memory_client",
]


@dataclass(slots=True)
class StoredObject:
    """One object held by :class:`InMemoryStorage`; tests may edit ``data`` to tamper."""

    data: bytes
    metadata: dict[str, str]
    content_type: str | None
    etag: str
    last_modified: datetime


@dataclass(slots=True)
class Request:
    """One request made to :class:`InMemoryStorage`.

    ``op`` is one of ``head``, ``list``, ``get`` (``open`` and ``get_to_file``), ``put``
    (``put_file`` and ``put_bytes``), ``delete``, ``create_bucket``, ``delete_bucket``,
    ``head_bucket``, ``list_buckets``, ``get_bucket_acl``, ``put_bucket_acl``, ``presign``.
    ``outcome`` becomes ``ok``, ``cancelled`` or the name of the error raised.
    """

    op: str
    bucket: str
    key: str = ""
    if_none_match: bool = False
    outcome: str = "pending"


Hook = Callable[[Request], Awaitable[None]]


@dataclass(slots=True)
class _HookEntry:
    hook: Hook
    op: str | None
    key: str | None
    after: bool
    remaining: int | None


class FakeBody:
    """A streaming GET body over bytes, tracking whether it was closed."""

    def __init__(
        self, storage: InMemoryStorage, head: ObjectHead, data: bytes, content_range: str | None
    ) -> None:
        self._storage = storage
        self._head = head
        self._data = data
        self._pos = 0
        self._range = content_range
        self.closed = False
        storage.open_bodies.add(self)

    @property
    def head(self) -> ObjectHead:
        """The object's headers."""
        return self._head

    @property
    def content_length(self) -> int:
        """Bytes this response carries."""
        return len(self._data)

    @property
    def content_range(self) -> str | None:
        """The Content-Range of a ranged GET."""
        return self._range

    async def read(self, amt: int | None = None) -> bytes:
        """Read up to ``amt`` bytes (all remaining when None)."""
        if self.closed:
            raise StorageError("read from a closed body")
        await anyio.lowlevel.checkpoint()
        end = len(self._data) if amt is None else min(len(self._data), self._pos + amt)
        chunk = self._data[self._pos : end]
        self._pos = end
        return chunk

    async def iter_chunks(self, chunk_size: int = 1024 * 1024) -> AsyncIterator[bytes]:
        """Iterate over the remaining bytes."""
        while chunk := await self.read(chunk_size):
            yield chunk

    async def aclose(self) -> None:
        """Release; idempotent."""
        self.closed = True
        self._storage.open_bodies.discard(self)


def _ascii_metadata(metadata: Mapping[str, str] | None) -> dict[str, str]:
    clean: dict[str, str] = {}
    for key, value in (metadata or {}).items():
        if not key.isascii() or not value.isascii():
            # What S3 (or botocore before it) does with non-ASCII metadata: refuse it.
            raise StorageError(f"S3 metadata must be ASCII: {key!r}={value!r}")
        clean[key.lower()] = value
    return clean


def _parse_range(spec: str, size: int) -> tuple[int, int]:
    if not spec.startswith("bytes="):
        raise InvalidArgumentError(f"bad Range {spec!r}")
    first, _, last = spec[len("bytes=") :].partition("-")
    if first == "":
        start, end = max(0, size - int(last)), size - 1
    else:
        start = int(first)
        end = size - 1 if last == "" else min(int(last), size - 1)
    if start >= size or start > end:
        raise StorageError(f"Range {spec!r} not satisfiable for {size} bytes")
    return start, end


_TOKEN_SKIP = "\U0010ffff"


class InMemoryStorage:
    """A StoragePort in memory with S3 semantics, a request log and fault-injection hooks.

    ``conditional_writes`` chooses how the server treats ``If-None-Match: *``:
    ``"supported"`` (412 when the key exists), ``"refused"`` (every conditional write
    raises :class:`ConditionalWriteNotSupportedError`) or ``"ignored"`` (the header is
    dropped and the write overwrites, as some S3-compatible servers do).
    """

    def __init__(
        self,
        *,
        buckets: Sequence[str] = (),
        page_size: int = 1000,
        conditional_writes: Literal["supported", "refused", "ignored"] = "supported",
        start: datetime = datetime(2024, 1, 1, tzinfo=UTC),
    ) -> None:
        self.buckets: dict[str, dict[str, StoredObject]] = {b: {} for b in buckets}
        self.page_size = page_size
        self.conditional_writes = conditional_writes
        self.requests: list[Request] = []
        self.open_bodies: set[FakeBody] = set()
        self.acls: dict[str, dict[str, Any]] = {}
        self._hooks: list[_HookEntry] = []
        self._now = start

    # ----------------------------------------------------------- test helpers

    def add_bucket(self, name: str) -> None:
        """Create a bucket without logging a request."""
        self.buckets.setdefault(name, {})

    def objects(self, bucket: str) -> dict[str, StoredObject]:
        """The live objects of ``bucket`` (edit them to tamper)."""
        return self.buckets[bucket]

    def keys(self, bucket: str) -> list[str]:
        """Sorted keys of ``bucket``."""
        return sorted(self.buckets[bucket])

    def data(self, bucket: str, key: str) -> bytes:
        """The stored bytes of one object."""
        return self.buckets[bucket][key].data

    def metadata(self, bucket: str, key: str) -> dict[str, str]:
        """The stored metadata of one object."""
        return dict(self.buckets[bucket][key].metadata)

    def seed(
        self,
        bucket: str,
        key: str,
        data: bytes,
        metadata: Mapping[str, str] | None = None,
        *,
        content_type: str | None = None,
        last_modified: datetime | None = None,
    ) -> None:
        """Store an object directly, without hooks or a logged request."""
        self._commit(bucket, key, data, _ascii_metadata(metadata), content_type)
        if last_modified is not None:
            self.buckets[bucket][key].last_modified = last_modified

    def tamper(self, bucket: str, key: str, data: bytes) -> None:
        """Replace an object's bytes, keeping its metadata (silent corruption)."""
        self.buckets[bucket][key].data = data

    def remove(self, bucket: str, key: str) -> None:
        """Delete an object directly, without hooks or a logged request."""
        self.buckets[bucket].pop(key, None)

    def count(self, op: str, key: str | None = None, *, outcome: str | None = None) -> int:
        """How many requests of kind ``op`` (on ``key``, with ``outcome``) were made."""
        return sum(
            1
            for r in self.requests
            if r.op == op
            and (key is None or r.key == key)
            and (outcome is None or r.outcome == outcome)
        )

    def writes(self) -> list[Request]:
        """Every PUT request, in order."""
        return [r for r in self.requests if r.op == "put"]

    def add_hook(
        self,
        hook: Hook,
        *,
        op: str | None = None,
        key: str | None = None,
        after: bool = False,
        times: int | None = None,
    ) -> Callable[[], None]:
        """Run ``hook`` before (or after a successful) matching request; returns a remover.

        A hook may sleep or wait on an event (delay), raise (failure) or touch the
        storage through :meth:`seed`/:meth:`remove` (a concurrent writer). ``times``
        limits how many requests it applies to.
        """
        entry = _HookEntry(hook, op, key, after, times)
        self._hooks.append(entry)

        def remove() -> None:
            if entry in self._hooks:
                self._hooks.remove(entry)

        return remove

    def clear_hooks(self) -> None:
        """Remove every hook."""
        self._hooks.clear()

    def fail(self, op: str, key: str | None, error: BaseException, *, times: int = 1) -> None:
        """Make the next ``times`` matching requests raise ``error``."""

        async def hook(_: Request) -> None:
            raise error

        self.add_hook(hook, op=op, key=key, times=times)

    # ----------------------------------------------------------- internals

    def _tick(self) -> datetime:
        self._now += timedelta(seconds=1)
        return self._now

    def _commit(
        self,
        bucket: str,
        key: str,
        data: bytes,
        metadata: dict[str, str],
        content_type: str | None,
    ) -> StoredObject:
        obj = StoredObject(
            data=data,
            metadata=metadata,
            content_type=content_type,
            etag=f'"{hashlib.md5(data).hexdigest()}"',
            last_modified=self._tick(),
        )
        self._bucket(bucket)[key] = obj
        return obj

    def _bucket(self, bucket: str) -> dict[str, StoredObject]:
        try:
            return self.buckets[bucket]
        except KeyError:
            raise BucketNotFoundError(f"bucket {bucket!r} does not exist") from None

    async def _hooks_for(self, request: Request, *, after: bool) -> None:
        for entry in list(self._hooks):
            if entry.after != after:
                continue
            if entry.op is not None and entry.op != request.op:
                continue
            if entry.key is not None and entry.key != request.key:
                continue
            if entry.remaining is not None:
                if entry.remaining <= 0:
                    continue
                entry.remaining -= 1
            await entry.hook(request)

    async def _begin(self, request: Request) -> None:
        self.requests.append(request)
        try:
            await anyio.lowlevel.checkpoint()
            await self._hooks_for(request, after=False)
        except BaseException as exc:
            request.outcome = _outcome(exc)
            raise

    async def _end(self, request: Request) -> None:
        request.outcome = "ok"
        await self._hooks_for(request, after=True)

    @staticmethod
    def _head_of(key: str, obj: StoredObject) -> ObjectHead:
        return ObjectHead(
            key=key,
            size=len(obj.data),
            etag=obj.etag,
            last_modified=obj.last_modified,
            metadata=dict(obj.metadata),
            content_type=obj.content_type,
        )

    def _get(self, bucket: str, key: str) -> StoredObject:
        obj = self._bucket(bucket).get(key)
        if obj is None:
            raise ObjectNotFoundError(f"s3://{bucket}/{key} does not exist")
        return obj

    async def _run(self, request: Request, action: Callable[[], Awaitable[Any]]) -> Any:
        await self._begin(request)
        try:
            result = await action()
        except BaseException as exc:
            request.outcome = _outcome(exc)
            raise
        await self._end(request)
        return result

    # ----------------------------------------------------------- StoragePort

    async def head(self, bucket: str, key: str) -> ObjectHead | None:
        """HEAD an object; None when absent."""

        async def action() -> ObjectHead | None:
            obj = self._bucket(bucket).get(key)
            return None if obj is None else self._head_of(key, obj)

        result: ObjectHead | None = await self._run(Request("head", bucket, key), action)
        return result

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
        """One page of ListObjectsV2 (``fetch_owner`` is ignored: no owners here)."""

        async def action() -> ListPage:
            objects = self._bucket(bucket)
            marker = start_after
            if continuation_token is not None:
                marker = _decode_token(continuation_token)
            keys = sorted(
                k for k in objects if k.startswith(prefix) and (marker is None or k > marker)
            )
            contents: list[ObjectInfo] = []
            prefixes: list[str] = []
            last: str | None = None
            truncated = False
            for key in keys:
                common: str | None = None
                if delimiter:
                    rest = key[len(prefix) :]
                    cut = rest.find(delimiter)
                    if cut >= 0:
                        common = prefix + rest[: cut + len(delimiter)]
                if common is not None and prefixes and prefixes[-1] == common:
                    continue
                if len(contents) + len(prefixes) >= max_keys:
                    truncated = True
                    break
                if common is not None:
                    prefixes.append(common)
                    last = common + _TOKEN_SKIP
                else:
                    obj = objects[key]
                    contents.append(ObjectInfo(key, len(obj.data), obj.etag, obj.last_modified))
                    last = key
            token = _encode_token(last) if truncated and last is not None else None
            return ListPage(
                objects=contents,
                common_prefixes=prefixes,
                is_truncated=truncated,
                next_continuation_token=token,
                key_count=len(contents) + len(prefixes),
            )

        page: ListPage = await self._run(Request("list", bucket, prefix), action)
        return page

    async def iter_objects(
        self, bucket: str, prefix: str = "", *, delimiter: str | None = None
    ) -> AsyncIterator[ObjectInfo]:
        """Every object under ``prefix``, following continuation tokens."""
        token: str | None = None
        while True:
            page = await self.list_page(
                bucket,
                prefix,
                delimiter=delimiter,
                continuation_token=token,
                max_keys=self.page_size,
            )
            for info in page.objects:
                yield info
            if not page.is_truncated:
                return
            token = page.next_continuation_token

    async def open(self, bucket: str, key: str, *, range: str | None = None) -> FakeBody:
        """Start a streaming GET."""

        async def action() -> FakeBody:
            obj = self._get(bucket, key)
            head = self._head_of(key, obj)
            if range is None:
                return FakeBody(self, head, obj.data, None)
            start, end = _parse_range(range, len(obj.data))
            content_range = f"bytes {start}-{end}/{len(obj.data)}"
            return FakeBody(self, head, obj.data[start : end + 1], content_range)

        body: FakeBody = await self._run(Request("get", bucket, key), action)
        return body

    async def get_to_file(self, bucket: str, key: str, dest: Path) -> ObjectHead:
        """Write an object into ``dest`` and return its head."""

        async def action() -> ObjectHead:
            obj = self._get(bucket, key)
            head = self._head_of(key, obj)
            await anyio.Path(dest).write_bytes(obj.data)
            return head

        head: ObjectHead = await self._run(Request("get", bucket, key), action)
        return head

    async def _put(
        self,
        bucket: str,
        key: str,
        read: Callable[[], Awaitable[bytes]],
        metadata: Mapping[str, str] | None,
        content_type: str | None,
        if_none_match: bool,
        if_match: str | None = None,
    ) -> PutResult:
        async def action() -> PutResult:
            self._bucket(bucket)
            data = await read()
            meta = _ascii_metadata(metadata)
            # The body has arrived; the commit below is atomic (no await in between).
            await anyio.lowlevel.checkpoint()
            if if_none_match and self.conditional_writes == "refused":
                raise ConditionalWriteNotSupportedError("If-None-Match is not implemented")
            if (
                if_none_match
                and self.conditional_writes == "supported"
                and key in self._bucket(bucket)
            ):
                raise PreconditionFailedError(f"s3://{bucket}/{key} already exists")
            if if_match is not None:
                current = self._bucket(bucket).get(key)
                if current is None or current.etag != if_match:
                    raise PreconditionFailedError(f"s3://{bucket}/{key} is not {if_match}")
            obj = self._commit(bucket, key, data, meta, content_type)
            return PutResult(etag=obj.etag)

        result: PutResult = await self._run(
            Request("put", bucket, key, if_none_match=if_none_match), action
        )
        return result

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
        """Upload a file (atomically: a failed or cancelled PUT stores nothing)."""
        return await self._put(
            bucket,
            key,
            lambda: anyio.Path(src).read_bytes(),
            metadata,
            content_type,
            if_none_match,
            if_match,
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
        """Upload an in-memory body."""

        async def read() -> bytes:
            return bytes(data)

        return await self._put(bucket, key, read, metadata, content_type, False)

    async def copy(
        self, bucket: str, source_key: str, key: str, *, if_none_match: bool = False
    ) -> PutResult:
        """Server-side copy with metadata."""

        async def read() -> bytes:
            source = self._bucket(bucket).get(source_key)
            if source is None:
                raise ObjectNotFoundError(f"s3://{bucket}/{source_key} does not exist")
            return source.data

        source = self._bucket(bucket).get(source_key)
        return await self._put(
            bucket,
            key,
            read,
            None if source is None else source.metadata,
            None if source is None else source.content_type,
            if_none_match,
        )

    async def delete(self, bucket: str, key: str, *, if_match: str | None = None) -> None:
        """Delete one object; a missing key is not an error; ``if_match`` as S3's If-Match."""

        async def action() -> None:
            objects = self._bucket(bucket)
            current = objects.get(key)
            if if_match is not None and current is not None and current.etag != if_match:
                raise PreconditionFailedError(f"s3://{bucket}/{key} has changed (If-Match)")
            objects.pop(key, None)

        await self._run(Request("delete", bucket, key), action)

    async def delete_many(self, bucket: str, keys: Sequence[str]) -> list[DeleteFailure]:
        """Delete several objects; returns the failures."""
        failures: list[DeleteFailure] = []
        for key in keys:
            try:
                await self.delete(bucket, key)
            except StorageError as exc:
                failures.append(DeleteFailure(key, type(exc).__name__, str(exc)))
        return failures

    async def create_bucket(
        self, bucket: str, *, region: str | None = None, settings: Mapping[str, Any] | None = None
    ) -> None:
        """Create a bucket; quiet when it exists."""

        async def action() -> None:
            self.buckets.setdefault(bucket, {})

        await self._run(Request("create_bucket", bucket), action)

    async def delete_bucket(self, bucket: str) -> None:
        """Delete an empty bucket."""

        async def action() -> None:
            if self._bucket(bucket):
                raise BucketNotEmptyError(f"bucket {bucket!r} is not empty")
            del self.buckets[bucket]

        await self._run(Request("delete_bucket", bucket), action)

    async def head_bucket(self, bucket: str) -> None:
        """Raise BucketNotFoundError unless the bucket exists."""

        async def action() -> None:
            self._bucket(bucket)

        await self._run(Request("head_bucket", bucket), action)

    async def list_buckets(self, *, region: str | None = None) -> BucketListing:
        """All buckets (all of them in ``region`` us-east-1, none in any other)."""

        async def action() -> BucketListing:
            if region not in (None, "us-east-1"):
                return BucketListing([])
            return BucketListing([BucketInfo(name, None, region) for name in sorted(self.buckets)])

        result: BucketListing = await self._run(Request("list_buckets", ""), action)
        return result

    async def get_bucket_acl(self, bucket: str) -> dict[str, Any]:
        """A private ACL unless one was set."""

        async def action() -> dict[str, Any]:
            self._bucket(bucket)
            owner = {"ID": "fake-owner", "DisplayName": "fake"}
            default = {
                "Owner": owner,
                "Grants": [
                    {"Grantee": {**owner, "Type": "CanonicalUser"}, "Permission": "FULL_CONTROL"}
                ],
            }
            return dict(self.acls.get(bucket, default))

        result: dict[str, Any] = await self._run(Request("get_bucket_acl", bucket), action)
        return result

    async def put_bucket_acl(self, bucket: str, **kwargs: Any) -> None:
        """Remember the ACL arguments."""

        async def action() -> None:
            self._bucket(bucket)
            self.acls[bucket] = dict(kwargs)

        await self._run(Request("put_bucket_acl", bucket), action)

    async def presign(
        self,
        operation: str,
        params: Mapping[str, Any],
        *,
        expires_in: int = 3600,
        http_method: str | None = None,
    ) -> str:
        """A fake presigned URL."""

        async def action() -> str:
            return (
                f"https://fake-s3.invalid/{params.get('Bucket', '')}/{params.get('Key', '')}"
                f"?op={operation}&expires={expires_in}"
            )

        result: str = await self._run(
            Request("presign", str(params.get("Bucket", "")), str(params.get("Key", ""))),
            action,
        )
        return result


def _outcome(exc: BaseException) -> str:
    if isinstance(exc, anyio.get_cancelled_exc_class()):
        return "cancelled"
    return type(exc).__name__


def _encode_token(marker: str) -> str:
    raw = json.dumps({"after": marker}).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii")


def _decode_token(token: str) -> str:
    try:
        payload = json.loads(base64.urlsafe_b64decode(token.encode("ascii")))
        marker = payload["after"]
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidArgumentError(f"invalid continuation token {token!r}") from exc
    if not isinstance(marker, str):
        raise InvalidArgumentError(f"invalid continuation token {token!r}")
    return marker


def memory_client(storage: InMemoryStorage | None = None, **config: Any) -> AsyncDeltaGliderClient:
    """An unopened :class:`~deltaglider_async.AsyncDeltaGliderClient` over ``storage``
    (a new :class:`InMemoryStorage` by default) and the default adapters otherwise: the
    real xdelta3, hashing, the encrypted cache. ``config`` takes
    :class:`~deltaglider_async.DeltaGliderConfig` fields (``max_ratio``...).

    Use it as ``async with memory_client() as client:``; create buckets with
    ``await client.create_bucket(Bucket=...)``. Everything works over it but
    ``cleanup()`` (it keeps no multipart uploads), which raises
    :class:`InvalidArgumentError`; bucket names are not checked against S3's rules.
    """
    from ._client import AsyncDeltaGliderClient
    from ._config import DeltaGliderConfig
    from ._factory import build_service

    settings = DeltaGliderConfig(**config)
    memory = storage if storage is not None else InMemoryStorage()
    return AsyncDeltaGliderClient(build_service(settings, storage=memory).service)


def _conformance() -> None:  # pragma: no cover - static check only
    _storage: StoragePort = InMemoryStorage()
    del _storage
