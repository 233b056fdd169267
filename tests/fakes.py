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

import hashlib
from collections.abc import AsyncIterable, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel

from deltaglider_async._errors import (
    DiffError,
    DiffToolNotFoundError,
    IntegrityError,
    InvalidArgumentError,
)
from deltaglider_async.ports.hash import FileDigest
from deltaglider_async.testing_memory import (
    FakeBody,
    Hook,
    InMemoryStorage,
    Request,
    StoredObject,
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
