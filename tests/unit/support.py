"""Test data and small helpers shared by the unit tests of the core."""

from __future__ import annotations

import hashlib
import random
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from deltaglider_async._models import DeltaSpace, ObjectKey, PutSummary
from deltaglider_async._scratch import OWNER_FILE
from deltaglider_async.core.service import AsyncDeltaService
from tests.fakes import (
    FakeDiff,
    FakeHasher,
    FixedClock,
    InMemoryReferenceCache,
    InMemoryStorage,
    RecordingLogger,
    RecordingMetrics,
)

BUCKET = "bucket"
TOOL = "deltaglider-async/test"
ZIP_MAGIC = b"PK\x03\x04"


def archive(seed: int, size: int = 4096) -> bytes:
    """Incompressible bytes that look like a zip (local file header first)."""
    return ZIP_MAGIC + random.Random(seed).randbytes(size - len(ZIP_MAGIC))


def variant(base: bytes, seed: int) -> bytes:
    """A next "version" of ``base``: a few bytes changed in the middle, a tail appended."""
    rng = random.Random(seed)
    data = bytearray(base)
    for _ in range(3):
        data[rng.randrange(64, len(data) - 64)] ^= 0xFF
    return bytes(data) + b"release notes " + str(seed).encode() * 4


def sha256(data: bytes) -> str:
    """Hex SHA-256."""
    return hashlib.sha256(data).hexdigest()


def md5(data: bytes) -> str:
    """Hex MD5."""
    return hashlib.md5(data).hexdigest()


async def chunks_of(data: bytes, size: int = 1000) -> AsyncIterator[bytes]:
    """``data`` as an async byte iterator."""
    for start in range(0, len(data), size):
        yield data[start : start + size]


def files_under(path: Path) -> list[Path]:
    """Every file below ``path`` (none when it does not exist), except the owner records
    of private temp directories (bookkeeping, not data)."""
    if not path.exists():
        return []
    return sorted(p for p in path.rglob("*") if p.is_file() and p.name != OWNER_FILE)


@dataclass
class Harness:
    """One AsyncDeltaService over fakes, with handles on each fake."""

    service: AsyncDeltaService
    storage: InMemoryStorage
    diff: FakeDiff
    cache: InMemoryReferenceCache
    hasher: FakeHasher
    clock: FixedClock
    logger: RecordingLogger
    metrics: RecordingMetrics
    work_root: Path
    tmp: Path

    def space(self, prefix: str = "releases/app") -> DeltaSpace:
        """A deltaspace of the test bucket."""
        return DeltaSpace(BUCKET, prefix)

    def key(self, key: str) -> ObjectKey:
        """An object key of the test bucket."""
        return ObjectKey(BUCKET, key)

    def write(self, name: str, data: bytes) -> Path:
        """A local file to upload."""
        path = self.tmp / "src" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path

    async def put(
        self,
        key: str,
        data: bytes,
        max_ratio: float | None = None,
        *,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
        allow_delta: bool = True,
    ) -> PutSummary:
        """Upload ``data`` as ``key`` (``dir/name``) through ``put()``."""
        prefix, _, name = key.rpartition("/")
        return await self.service.put(
            self.write(name, data),
            DeltaSpace(BUCKET, prefix),
            max_ratio,
            metadata=metadata,
            content_type=content_type,
            allow_delta=allow_delta,
        )

    async def read(self, key: str) -> bytes:
        """Download ``key`` through ``get()`` and return the bytes."""
        out = self.tmp / "out" / key.replace("/", "__")
        out.parent.mkdir(parents=True, exist_ok=True)
        await self.service.get(self.key(key), out)
        return out.read_bytes()

    def work_files(self) -> list[Path]:
        """Files left in the service's private work directory."""
        return files_under(self.work_root)

    def stored_keys(self) -> list[str]:
        """Keys in the test bucket."""
        return self.storage.keys(BUCKET)
