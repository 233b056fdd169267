"""What every core operation shares: the ports, the private work directory, per-space locks.

One :class:`CoreContext` belongs to one :class:`~deltaglider_async.core.service.AsyncDeltaService`;
the write, read, reference and delete modules all take it.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncGenerator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import anyio.to_thread

from .._errors import translating_local
from .._scratch import ScratchDir
from ..ports.cache import ReferenceCachePort
from ..ports.clock import ClockPort
from ..ports.diff import DiffPort
from ..ports.hash import HashPort
from ..ports.logger import LoggerPort
from ..ports.metrics import MetricsPort
from ..ports.storage import StoragePort
from ..ports.tracing import NO_TRACING, TracingPort
from .locks import KeyedActivity, KeyedLocks

__all__ = ["CHUNK", "CoreContext", "file_chunks", "partial_path", "read_head", "remove_quietly"]

#: Bytes per read when streaming files.
CHUNK = 1024 * 1024


@dataclass(slots=True)
class CoreContext:
    """The ports of one service, its work directory and its per-deltaspace coordination.

    ``space_locks`` serialise reference creation and deletion within one deltaspace;
    ``dropping`` marks deltaspaces whose unused reference is being deleted, so a put that
    just stored a delta can wait for that to finish before it checks its reference.
    """

    storage: StoragePort
    diff: DiffPort
    hasher: HashPort
    cache: ReferenceCachePort
    clock: ClockPort
    logger: LoggerPort
    metrics: MetricsPort
    tool_version: str
    work_root: Path | None = None
    tracing: TracingPort = NO_TRACING
    scratch: ScratchDir | None = None
    space_locks: KeyedLocks = field(default_factory=KeyedLocks)
    dropping: KeyedActivity = field(default_factory=KeyedActivity)

    @property
    def work_dir(self) -> Path | None:
        """The private work directory, if it was made."""
        return None if self.scratch is None else self.scratch.created

    def tmp(self, label: str) -> Path:
        """A fresh path in the private work directory (mode 0700, made on first use,
        removed by :meth:`remove_work_dir` or at interpreter exit)."""
        if self.scratch is None:
            self.scratch = ScratchDir("work", self.work_root)
        return self.scratch.new_path(label)

    async def remove_work_dir(self) -> None:
        """Remove the work directory and everything in it; idempotent."""
        scratch, self.scratch = self.scratch, None
        if scratch is not None and scratch.created is not None:
            await anyio.to_thread.run_sync(scratch.remove)

    @contextmanager
    def timed(self, name: str) -> Iterator[None]:
        """Record the duration of the block as the timing ``name``."""
        start = anyio.current_time()
        try:
            yield
        finally:
            self.metrics.timing(name, anyio.current_time() - start)

    async def cache_store(self, sha256: str, path: Path) -> None:
        """Put a verified reference in the local cache; failing only costs a later download."""
        try:
            await self.cache.store(sha256, path)
        except OSError as exc:
            self.logger.warning("could not cache a reference", sha256=sha256, error=str(exc))


async def file_chunks(path: Path) -> AsyncGenerator[bytes, None]:
    """The bytes of a local file in chunks of :data:`CHUNK`; local errors translated."""
    with translating_local(path, "read"):
        async with await anyio.open_file(path, "rb") as f:
            while chunk := await f.read(CHUNK):
                yield chunk


def partial_path(out: Path) -> Path:
    """A fresh temp name beside ``out`` (``.<name>.<random>.dg-partial``) that fits NAME_MAX.

    The final rename never crosses a file system that way. Long names are shortened (at a
    UTF-8 character boundary) so the temp name is never longer than ``out`` may be.
    """
    suffix = f".{secrets.token_hex(6)}.dg-partial"
    limit = _name_max(out.parent) - len(suffix.encode()) - 1
    stem = out.name.encode("utf-8")[: max(limit, 1)].decode("utf-8", errors="ignore")
    return out.parent / f".{stem}{suffix}"


def _name_max(directory: Path) -> int:
    try:
        return os.pathconf(directory, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):
        return 255


async def read_head(path: Path, size: int) -> bytes:
    """The first ``size`` bytes of a local file."""
    async with await anyio.open_file(path, "rb") as f:
        return await f.read(size)


async def remove_quietly(path: Path) -> None:
    """Delete a local file if it exists, even when cancelled; errors are ignored."""
    with anyio.CancelScope(shield=True):
        try:
            await anyio.Path(path).unlink(missing_ok=True)
        except OSError:
            pass
