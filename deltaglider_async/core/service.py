"""AsyncDeltaService: the operations of the storage format, over ports only.

The service is the one object callers hold; each concept lives in its own module:

* :mod:`.writes`: the write path, and settling a name to exactly one stored form;
* :mod:`.references`: a deltaspace's reference: find, create, confirm, read, drop;
* :mod:`.reads`: resolving a name, reconstructing and verifying its bytes;
* :mod:`.deletes`: deleting a name and the reference its last delta leaves;
* :mod:`.reencode`: re-encoding a drifted directory's deltas against better references;
* :mod:`.context`: the ports, the private work directory, per-space locks.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import anyio

from .._models import ContentChecks, DeltaSpace, GetSummary, ObjectKey, PutSummary, VerifyResult
from .._version import __version__
from ..ports.cache import ReferenceCachePort
from ..ports.clock import ClockPort
from ..ports.diff import DiffPort
from ..ports.hash import HashPort
from ..ports.logger import LoggerPort
from ..ports.metrics import MetricsPort
from ..ports.storage import StoragePort
from ..ports.tracing import NO_TRACING, TracingPort
from . import planner, telemetry
from .context import CoreContext, file_chunks
from .deletes import Deleter, DeleteSummary
from .reads import Reader, ResolvedObject
from .reencode import Reencoder, SpaceRebase
from .references import ReferenceStore
from .writes import Writer

__all__ = ["DEFAULT_TOOL_VERSION", "AsyncDeltaService", "DeleteSummary", "ResolvedObject"]

T = TypeVar("T")

#: The ``dg-tool`` written when no ``tool_version`` is given.
DEFAULT_TOOL_VERSION = f"deltaglider-async/{__version__}"


class AsyncDeltaService:
    """Delta-compressed put/get/verify/delete over a storage, a diff tool and a cache.

    The service owns a private work directory (mode 0700, created on first use, removed
    by :meth:`aclose`). It does not own the adapters it is given; whoever built them closes
    them (``create_async_client`` does).

    The ports come in the order of the API reference (storage, diff, hasher, cache, clock,
    logger, metrics); ``tool_version`` is written as ``dg-tool`` and ``max_ratio`` is the
    default ratio above which a delta is discarded (``ValueError`` outside ``[0, 1]``).

    By default only deltas that deltaglider 6.x can read are written: a file whose first
    bytes make xdelta3 decompress it (gzip, bzip2, xz, compress) never becomes a
    reference, since 6.x decodes without ``-D`` and could not read the deltas; such files
    are stored direct unless the directory already has a reference they delta against.
    ``compressed_references=True`` lifts the rule: those deltas are byte-exact with this
    package (which decodes with ``-D``) but unreadable by 6.x.

    ``tracing`` (a :class:`~deltaglider_async.ports.TracingPort`, default none) gets a span
    for each put, get and verify; ``metrics`` the counters and timings listed in
    :mod:`deltaglider_async.core.telemetry`.
    """

    def __init__(
        self,
        storage: StoragePort,
        diff: DiffPort,
        hasher: HashPort,
        cache: ReferenceCachePort,
        clock: ClockPort,
        logger: LoggerPort,
        metrics: MetricsPort,
        tool_version: str = DEFAULT_TOOL_VERSION,
        max_ratio: float = 0.5,
        *,
        work_root: Path | None = None,
        compressed_references: bool = False,
        rebase_ratio: float = planner.DEFAULT_REBASE_RATIO,
        tracing: TracingPort | None = None,
    ) -> None:
        self.max_ratio = planner.validate_ratio(max_ratio)
        self.rebase_ratio = planner.validate_ratio(rebase_ratio, source="rebase_ratio")
        self._ctx = CoreContext(
            storage=storage,
            diff=diff,
            hasher=hasher,
            cache=cache,
            clock=clock,
            logger=logger,
            metrics=metrics,
            tool_version=tool_version,
            work_root=work_root,
            tracing=NO_TRACING if tracing is None else tracing,
        )
        self._refs = ReferenceStore(self._ctx)
        self._reader = Reader(self._ctx, self._refs)
        self._writer = Writer(self._ctx, self._refs, compressed_references=compressed_references)
        self._deleter = Deleter(self._ctx, self._reader, self._refs)
        self._reencoder = Reencoder(
            self._ctx, self._reader, self._refs, compressed_references=compressed_references
        )

    # ------------------------------------------------------------------ ports

    @property
    def storage(self) -> StoragePort:
        """The object store."""
        return self._ctx.storage

    @property
    def diff(self) -> DiffPort:
        """The binary-diff tool (xdelta3)."""
        return self._ctx.diff

    @property
    def hasher(self) -> HashPort:
        """SHA-256/MD5 hashing."""
        return self._ctx.hasher

    @property
    def cache(self) -> ReferenceCachePort:
        """The local reference cache."""
        return self._ctx.cache

    @property
    def clock(self) -> ClockPort:
        """The clock."""
        return self._ctx.clock

    @property
    def logger(self) -> LoggerPort:
        """The logger."""
        return self._ctx.logger

    @property
    def metrics(self) -> MetricsPort:
        """The metrics sink."""
        return self._ctx.metrics

    @property
    def tracing(self) -> TracingPort:
        """The tracer (spans of puts, gets and verifications)."""
        return self._ctx.tracing

    @property
    def tool_version(self) -> str:
        """The ``dg-tool`` value written into every object."""
        return self._ctx.tool_version

    # ------------------------------------------------------------------ lifecycle

    async def aclose(self) -> None:
        """Remove the work directory; idempotent."""
        await self._ctx.remove_work_dir()

    @property
    def work_dir(self) -> Path | None:
        """The private work directory (temp files of running operations), once created."""
        return self._ctx.work_dir

    # ------------------------------------------------------------------ write path

    async def put(
        self,
        file: Path | None = None,
        delta_space: DeltaSpace | None = None,
        max_ratio: float | None = None,
        *,
        name: str | None = None,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
        allow_delta: bool = True,
        settings: Mapping[str, Any] | None = None,
        checks: ContentChecks | None = None,
        source: Path | None = None,
        space: DeltaSpace | None = None,
        rebase_ratio: float | None = None,
    ) -> PutSummary:
        """Store the local file ``file`` in ``delta_space`` as ``name`` (default: its name).

        ``source`` and ``space`` are the names these parameters had before 0.2 (still
        accepted). Raises :class:`ReservedKeyError`, :class:`InvalidRatioError`, and
        ``TypeError`` when a parameter is missing or given twice.
        """
        source = Path(_one("file", file, "source", source))
        target = _one("delta_space", delta_space, "space", space)
        chunks = file_chunks(source)
        try:
            return await self.put_stream(
                chunks,
                target,
                name if name is not None else source.name,
                max_ratio,
                metadata=metadata,
                content_type=content_type,
                allow_delta=allow_delta,
                settings=settings,
                checks=checks,
                rebase_ratio=rebase_ratio,
            )
        finally:
            # Close the source file now, even when cancelled, not whenever the generator
            # happens to be garbage-collected.
            with anyio.CancelScope(shield=True):
                await chunks.aclose()

    async def put_stream(
        self,
        chunks: AsyncIterable[bytes],
        space: DeltaSpace,
        name: str,
        max_ratio: float | None = None,
        *,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
        allow_delta: bool = True,
        settings: Mapping[str, Any] | None = None,
        checks: ContentChecks | None = None,
        rebase_ratio: float | None = None,
    ) -> PutSummary:
        """Store the bytes of ``chunks`` in ``space`` under the file name ``name``.

        ``metadata`` is the caller's (stored as ``user-*``), ``settings`` object settings by
        boto3 name (ACL, StorageClass, server-side encryption...), ``checks`` what the
        bytes must be. Raises :class:`ReservedKeyError` for ``reference.bin``/``*.delta``
        names and :class:`InvalidRatioError` for a ratio outside ``[0, 1]``, before reading
        anything; :class:`InvalidArgumentError` when ``checks`` fail (nothing is stored).
        """
        ratio = self.max_ratio if max_ratio is None else planner.validate_ratio(max_ratio)
        rebase = (
            self.rebase_ratio
            if rebase_ratio is None
            else planner.validate_ratio(rebase_ratio, source="rebase_ratio")
        )
        start = telemetry.object_attributes(space.bucket, space.key_for(name))
        with self._ctx.tracing.span("deltaglider.put", start) as span:
            summary = await self._writer.put_stream(
                chunks,
                space,
                name,
                ratio,
                rebase_ratio=rebase,
                metadata=metadata,
                content_type=content_type,
                allow_delta=allow_delta,
                settings=settings,
                checks=checks,
            )
            span.set_attributes(telemetry.put_attributes(summary))
        telemetry.record_put(self._ctx.metrics, summary)
        return summary

    # ------------------------------------------------------------------ read path

    async def resolve(self, key: ObjectKey) -> ResolvedObject:
        """Find the stored object behind a logical (``a.zip``) or stored (``a.zip.delta``) key.

        Raises :class:`ObjectNotFoundError` (or ``BucketNotFoundError``) when neither exists.
        """
        return await self._reader.resolve(key)

    async def get(
        self,
        object_key: ObjectKey | None = None,
        output_path: Path | None = None,
        *,
        key: ObjectKey | None = None,
        out: Path | None = None,
    ) -> GetSummary:
        """Reconstruct ``object_key`` into the file ``output_path``, atomically, once verified.

        ``key`` and ``out`` are the names before 0.2 (still accepted).
        """
        target = _one("object_key", object_key, "key", key)
        start = telemetry.object_attributes(target.bucket, target.key)
        with self._ctx.tracing.span("deltaglider.get", start) as span:
            summary = await self._reader.get(
                target, Path(_one("output_path", output_path, "out", out))
            )
            span.set_attributes(telemetry.get_attributes(summary))
        return summary

    @asynccontextmanager
    async def materialize(self, key: ObjectKey) -> AsyncIterator[tuple[Path, GetSummary]]:
        """A verified private temp copy of ``key``, removed when the block exits."""
        async with self._reader.materialize(key) as found:
            yield found

    async def reconstruct(self, resolved: ResolvedObject, dest: Path) -> GetSummary:
        """Write the verified original bytes of ``resolved`` to ``dest``."""
        return await self._reader.reconstruct(resolved, dest)

    async def reconstruct_current(
        self, resolved: ResolvedObject, dest: Path
    ) -> tuple[GetSummary, ResolvedObject]:
        """:meth:`reconstruct`, also returning the version actually read (the object may
        have been replaced since it was resolved)."""
        return await self._reader.reconstruct_current(resolved, dest)

    async def verify(
        self, object_key: ObjectKey | None = None, *, key: ObjectKey | None = None
    ) -> VerifyResult:
        """Reconstruct ``object_key`` and compare its SHA-256; ``valid`` is False on corruption.

        A missing object still raises :class:`ObjectNotFoundError`. ``key`` is the name
        before 0.2 (still accepted).
        """
        target = _one("object_key", object_key, "key", key)
        start = telemetry.object_attributes(target.bucket, target.key)
        with self._ctx.tracing.span("deltaglider.verify", start) as span:
            result = await self._reader.verify(target)
            span.set_attributes(telemetry.verify_attributes(result))
        return result

    # ------------------------------------------------------------------ delete

    async def delete(self, key: ObjectKey) -> DeleteSummary:
        """Delete a logical object; the space's reference goes with its last delta."""
        return await self._deleter.delete(key)

    async def drop_unused_reference(self, space: DeltaSpace) -> bool:
        """Delete the space's reference when no ``.delta`` is left in it; True if deleted."""
        return await self._refs.drop_unused(space)

    # ------------------------------------------------------------------ repair

    async def rebase_space(
        self, space: DeltaSpace, *, rebase_ratio: float | None = None, dry_run: bool = False
    ) -> SpaceRebase:
        """Re-encode the deltas of ``space`` against better references (see
        :mod:`~deltaglider_async.core.reencode`); with ``dry_run`` only report the figures.

        ``rebase_ratio`` defaults to the service's, or to
        :data:`~deltaglider_async.core.planner.RECOMMENDED_REBASE_RATIO` when the service's
        turns re-baselining off (a repair that never re-baselines would change nothing).
        Raises :class:`InvalidRatioError` for a ratio outside ``[0, 1]``.
        """
        if rebase_ratio is None:
            ratio = self.rebase_ratio
            if ratio >= 1.0:
                ratio = planner.RECOMMENDED_REBASE_RATIO
        else:
            ratio = planner.validate_ratio(rebase_ratio, source="rebase_ratio")
        return await self._reencoder.rebase_space(
            space, rebase_ratio=ratio, max_ratio=self.max_ratio, dry_run=dry_run
        )


def _one(name: str, value: T | None, alias: str, alias_value: T | None) -> T:
    """The value of a parameter that may also be passed under its former name."""
    if value is not None and alias_value is not None:
        raise TypeError(f"give {name!r} or its former name {alias!r}, not both")
    chosen = value if value is not None else alias_value
    if chosen is None:
        raise TypeError(f"missing required argument {name!r}")
    return chosen
