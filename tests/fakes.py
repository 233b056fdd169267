"""In-memory fakes of every port, for unit tests of the core (no S3, no xdelta3).

* :class:`InMemoryStorage` behaves like S3 where the core can tell: conditional writes
  (``If-None-Match: *`` → :class:`PreconditionFailedError`, or a server that refuses or
  ignores the header), lower-cased ASCII metadata, ListObjectsV2 paging with opaque
  continuation tokens and delimiters, ranged GETs, atomic PUTs (a cancelled or failed PUT
  stores nothing). Every request is logged (:attr:`InMemoryStorage.requests`) and hooks
  can delay requests or make them fail.
* :class:`FakeDiff` is a real, deterministic, reversible delta format (copy/insert against
  8-byte blocks of the reference): similar files give small deltas, unrelated ones give
  deltas slightly larger than the target, so the ratio rule can be exercised.
* :class:`InMemoryReferenceCache`, :class:`FakeHasher`, :class:`FixedClock`,
  :class:`RecordingLogger` and :class:`RecordingMetrics` complete the set.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import anyio
import anyio.lowlevel

from deltaglider_async._errors import (
    BucketNotEmptyError,
    BucketNotFoundError,
    ConditionalWriteNotSupportedError,
    DiffError,
    DiffToolNotFoundError,
    IntegrityError,
    InvalidArgumentError,
    ObjectNotFoundError,
    PreconditionFailedError,
    StorageError,
)
from deltaglider_async.ports.hash import FileDigest
from deltaglider_async.ports.storage import (
    BucketInfo,
    BucketListing,
    DeleteFailure,
    ListPage,
    ObjectHead,
    ObjectInfo,
    PutResult,
)

__all__ = [
    "DEFAULT_NOW",
    "FakeBody",
    "FakeDiff",
    "FakeHasher",
    "FixedClock",
    "Hook",
    "InMemoryReferenceCache",
    "InMemoryStorage",
    "LogRecord",
    "RecordingLogger",
    "RecordingMetrics",
    "Request",
    "StoredObject",
    "decode_delta",
    "digest_of",
    "encode_delta",
]

DEFAULT_NOW = datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)


# --------------------------------------------------------------------------- clock


class FixedClock:
    """A clock that returns the same aware UTC instant until :meth:`advance` is called."""

    def __init__(self, now: datetime = DEFAULT_NOW) -> None:
        self.current = now

    def now(self) -> datetime:
        """The fixed instant."""
        return self.current

    def advance(self, seconds: float) -> None:
        """Move the clock forward."""
        self.current += timedelta(seconds=seconds)


# --------------------------------------------------------------------------- logger, metrics


@dataclass(frozen=True, slots=True)
class LogRecord:
    """One call to the logger."""

    level: str
    message: str
    fields: dict[str, Any]


class RecordingLogger:
    """A LoggerPort that keeps every record."""

    def __init__(self) -> None:
        self.records: list[LogRecord] = []

    def _log(self, level: str, message: str, fields: dict[str, Any]) -> None:
        self.records.append(LogRecord(level, message, fields))

    def debug(self, message: str, **fields: Any) -> None:
        """Record at DEBUG."""
        self._log("debug", message, fields)

    def info(self, message: str, **fields: Any) -> None:
        """Record at INFO."""
        self._log("info", message, fields)

    def warning(self, message: str, **fields: Any) -> None:
        """Record at WARNING."""
        self._log("warning", message, fields)

    def error(self, message: str, **fields: Any) -> None:
        """Record at ERROR."""
        self._log("error", message, fields)

    def messages(self, level: str | None = None) -> list[str]:
        """The messages logged (at ``level`` when given)."""
        return [r.message for r in self.records if level is None or r.level == level]


class RecordingMetrics:
    """A MetricsPort that keeps counters, gauges and timings."""

    def __init__(self) -> None:
        self.counters: dict[str, float] = {}
        self.gauges: dict[str, float] = {}
        self.timings: dict[str, list[float]] = {}

    def increment(
        self, name: str, value: float = 1.0, tags: Mapping[str, str] | None = None
    ) -> None:
        """Add to a counter (tags are ignored)."""
        self.counters[name] = self.counters.get(name, 0.0) + value

    def gauge(self, name: str, value: float, tags: Mapping[str, str] | None = None) -> None:
        """Set a gauge."""
        self.gauges[name] = value

    def timing(self, name: str, seconds: float, tags: Mapping[str, str] | None = None) -> None:
        """Record a duration."""
        self.timings.setdefault(name, []).append(seconds)


# --------------------------------------------------------------------------- hasher


def digest_of(data: bytes) -> FileDigest:
    """SHA-256, MD5 and size of ``data``."""
    return FileDigest(hashlib.sha256(data).hexdigest(), hashlib.md5(data).hexdigest(), len(data))


class FakeHasher:
    """A HashPort over hashlib, with a checkpoint per chunk so cancellation can land."""

    def __init__(self) -> None:
        self.writes: list[Path] = []

    async def hash_file(self, path: Path) -> FileDigest:
        """Digest an existing file."""
        data = await anyio.Path(path).read_bytes()
        return digest_of(data)

    async def write_and_hash(self, chunks: AsyncIterable[bytes], dest: Path) -> FileDigest:
        """Write ``chunks`` to ``dest`` (created or truncated) and digest them in one pass."""
        self.writes.append(Path(dest))
        sha, md5, size = hashlib.sha256(), hashlib.md5(), 0
        with open(dest, "wb") as f:  # noqa: ASYNC230 - small test files
            async for chunk in chunks:
                sha.update(chunk)
                md5.update(chunk)
                size += len(chunk)
                f.write(chunk)
                await anyio.lowlevel.checkpoint()
        return FileDigest(sha.hexdigest(), md5.hexdigest(), size)


# --------------------------------------------------------------------------- reference cache


class InMemoryReferenceCache:
    """A ReferenceCachePort in memory: verified on fetch, evicted and refused on mismatch."""

    def __init__(self) -> None:
        self.entries: dict[str, bytes] = {}
        self.fetches: list[str] = []
        self.stores: list[str] = []
        self.closed = False

    @staticmethod
    def _check_key(sha256: str) -> None:
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise InvalidArgumentError(f"cache key must be a lowercase sha256, got {sha256!r}")

    async def fetch(self, sha256: str, dest: Path) -> bool:
        """Write the verified bytes for ``sha256`` to ``dest``; False when absent."""
        self._check_key(sha256)
        self.fetches.append(sha256)
        await anyio.lowlevel.checkpoint()
        data = self.entries.get(sha256)
        if data is None:
            return False
        if hashlib.sha256(data).hexdigest() != sha256:
            del self.entries[sha256]
            raise IntegrityError(f"cached reference {sha256} is corrupted; evicted")
        await anyio.Path(dest).write_bytes(data)
        return True

    async def store(self, sha256: str, src: Path) -> None:
        """Cache the bytes of ``src``."""
        self._check_key(sha256)
        self.stores.append(sha256)
        self.entries[sha256] = await anyio.Path(src).read_bytes()

    async def contains(self, sha256: str) -> bool:
        """True when an entry exists (not verified)."""
        return sha256 in self.entries

    async def clear(self) -> None:
        """Remove every entry."""
        self.entries.clear()

    async def aclose(self) -> None:
        """Forget everything; idempotent."""
        self.entries.clear()
        self.closed = True

    def tamper(self, sha256: str, data: bytes) -> None:
        """Replace the bytes cached for ``sha256`` (to simulate a corrupted entry)."""
        self.entries[sha256] = data


# --------------------------------------------------------------------------- diff

_MAGIC = b"FDLT1"
_OP_COPY = 0x01
_OP_INSERT = 0x02
BLOCK = 8


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data):
            raise DiffError("fake delta is truncated (varint)")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos
        if shift > 63:
            raise DiffError("fake delta has an overlong varint")


def encode_delta(reference: bytes, target: bytes) -> bytes:
    """A copy/insert delta of ``target`` against ``reference`` (deterministic)."""
    index: dict[bytes, int] = {}
    for start in range(0, len(reference) - BLOCK + 1, BLOCK):
        index.setdefault(reference[start : start + BLOCK], start)
    out = bytearray(_MAGIC)
    out += _varint(len(target))
    literal = bytearray()

    def flush() -> None:
        if literal:
            out.append(_OP_INSERT)
            out.extend(_varint(len(literal)))
            out.extend(literal)
            literal.clear()

    i = 0
    while i < len(target):
        off = index.get(target[i : i + BLOCK]) if i + BLOCK <= len(target) else None
        if off is None:
            literal.append(target[i])
            i += 1
            continue
        length = BLOCK
        while (
            i + length < len(target)
            and off + length < len(reference)
            and target[i + length] == reference[off + length]
        ):
            length += 1
        flush()
        out.append(_OP_COPY)
        out.extend(_varint(off))
        out.extend(_varint(length))
        i += length
    flush()
    return bytes(out)


def decode_delta(reference: bytes, delta: bytes) -> bytes:
    """Inverse of :func:`encode_delta`; :class:`DiffError` on any malformed input."""
    if not delta.startswith(_MAGIC):
        raise DiffError("not a fake delta (bad magic)")
    size, pos = _read_varint(delta, len(_MAGIC))
    out = bytearray()
    while pos < len(delta):
        op = delta[pos]
        pos += 1
        if op == _OP_COPY:
            off, pos = _read_varint(delta, pos)
            length, pos = _read_varint(delta, pos)
            if off + length > len(reference):
                raise DiffError("fake delta copies beyond the end of the reference")
            out += reference[off : off + length]
        elif op == _OP_INSERT:
            length, pos = _read_varint(delta, pos)
            if pos + length > len(delta):
                raise DiffError("fake delta is truncated (insert)")
            out += delta[pos : pos + length]
            pos += length
        else:
            raise DiffError(f"fake delta has an unknown opcode {op:#x}")
        if len(out) > size:
            raise DiffError("fake delta produces more bytes than it declares")
    if len(out) != size:
        raise DiffError(f"fake delta declares {size} bytes but produced {len(out)}")
    return bytes(out)


DiffHook = Callable[[str, Path, Path, Path], Awaitable[None]]


class FakeDiff:
    """A DiffPort with its own real delta format; records every call.

    ``before``/``after`` hooks (``async (op, reference, target_or_delta, out)``) run around
    each encode/decode, to inject delays, failures or races. ``missing_tool`` makes every
    call raise :class:`DiffToolNotFoundError`.
    """

    def __init__(self) -> None:
        self.encodes: list[tuple[Path, Path, Path]] = []
        self.decodes: list[tuple[Path, Path, Path]] = []
        self.before: list[DiffHook] = []
        self.after: list[DiffHook] = []
        self.missing_tool = False

    async def _run_hooks(self, hooks: list[DiffHook], op: str, a: Path, b: Path, c: Path) -> None:
        for hook in list(hooks):
            await hook(op, a, b, c)

    async def encode(self, reference: Path, target: Path, out: Path) -> None:
        """Write the delta of ``target`` against ``reference`` to ``out``."""
        self.encodes.append((Path(reference), Path(target), Path(out)))
        if self.missing_tool:
            raise DiffToolNotFoundError("fakediff is not installed")
        await self._run_hooks(self.before, "encode", reference, target, out)
        ref = await anyio.Path(reference).read_bytes()
        tgt = await anyio.Path(target).read_bytes()
        await anyio.Path(out).write_bytes(encode_delta(ref, tgt))
        await self._run_hooks(self.after, "encode", reference, target, out)

    async def decode(self, reference: Path, delta: Path, out: Path) -> None:
        """Write ``delta`` applied to ``reference`` to ``out``."""
        self.decodes.append((Path(reference), Path(delta), Path(out)))
        if self.missing_tool:
            raise DiffToolNotFoundError("fakediff is not installed")
        await self._run_hooks(self.before, "decode", reference, delta, out)
        ref = await anyio.Path(reference).read_bytes()
        data = await anyio.Path(delta).read_bytes()
        await anyio.Path(out).write_bytes(decode_delta(ref, data))
        await self._run_hooks(self.after, "decode", reference, delta, out)

    def describe_encode(self, reference_name: str, target_name: str, delta_name: str) -> str:
        """The command line recorded in ``dg-delta-cmd``."""
        return f"fakediff -e -s {reference_name} {target_name} {delta_name}"


# --------------------------------------------------------------------------- storage


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
    ) -> PutResult:
        """Upload a file (atomically: a failed or cancelled PUT stores nothing)."""
        return await self._put(
            bucket,
            key,
            lambda: anyio.Path(src).read_bytes(),
            metadata,
            content_type,
            if_none_match,
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


# The fakes satisfy the ports (checked by mypy when this module is type-checked).
def _conformance() -> None:  # pragma: no cover - static check only
    from deltaglider_async.ports import (
        ClockPort,
        DiffPort,
        HashPort,
        LoggerPort,
        MetricsPort,
        ReferenceCachePort,
        StoragePort,
    )

    _storage: StoragePort = InMemoryStorage()
    _diff: DiffPort = FakeDiff()
    _hasher: HashPort = FakeHasher()
    _cache: ReferenceCachePort = InMemoryReferenceCache()
    _clock: ClockPort = FixedClock()
    _logger: LoggerPort = RecordingLogger()
    _metrics: MetricsPort = RecordingMetrics()
    del _storage, _diff, _hasher, _cache, _clock, _logger, _metrics
