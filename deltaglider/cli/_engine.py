"""The bulk engine as the CLI uses it: the one place that knows where bulk operations live.

Uploads, downloads, migration and bucket statistics come from the async core's bulk
engine. The rest (copies between S3 locations, uploads with delta compression disabled,
verification of many objects) run on :func:`run_each`, the library's bounded worker pool
(``run_jobs``) with the same per-item results.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Literal, TypeVar

import anyio
import anyio.to_thread

from deltaglider_async import (
    AsyncDeltaGliderClient,
    BucketStats,
    GetSummary,
    ItemResult,
    Job,
    MigrationReport,
    ObjectKey,
    Progress,
    ProgressCallback,
    StatsMode,
    UploadSummary,
    VerifyResult,
    check_user_key,
    is_transient,
    run_jobs,
)

__all__ = [
    "ItemResult",
    "MigrationReport",
    "Progress",
    "ProgressCallback",
    "StatsMode",
    "check_user_key",
    "copy_many",
    "download_many",
    "get_bucket_stats",
    "is_transient",
    "migrate",
    "run_each",
    "upload_many",
    "upload_stream",
    "verify_many",
]

T = TypeVar("T")

_CHUNK = 1024 * 1024

#: One item of :func:`run_each`: (source, destination, coroutine function running it).
Task = tuple[str, str, Callable[[], Awaitable[T]]]


async def upload_many(
    client: AsyncDeltaGliderClient,
    files: Sequence[tuple[Path, str]],
    bucket: str,
    *,
    max_ratio: float | None,
    allow_delta: bool,
    progress: ProgressCallback | None,
) -> list[ItemResult[UploadSummary]]:
    """Upload ``(local file, key)`` pairs into ``bucket``; one result per file, in order."""
    return await client.upload_many(
        list(files),
        f"s3://{bucket}",
        max_ratio=max_ratio,
        allow_delta=allow_delta,
        progress=progress,
    )


async def download_many(
    client: AsyncDeltaGliderClient,
    items: Sequence[tuple[str, str]],
    dest_dir: Path,
    *,
    progress: ProgressCallback | None,
) -> list[ItemResult[GetSummary]]:
    """Download ``(s3 URL, path relative to dest_dir)`` pairs; one result per item."""
    return await client.download_many(list(items), dest_dir, progress=progress)


async def migrate(
    client: AsyncDeltaGliderClient,
    source_url: str,
    dest_url: str,
    *,
    include: Iterable[str],
    exclude: Iterable[str],
    dry_run: bool,
    shard: tuple[int, int] | Literal["auto"] | None,
    shards: int | None = None,
    from_list: str | None = None,
    inventory: str | None = None,
    report: str | None = None,
    report_interval: float = 30.0,
    max_ratio: float | None,
    progress: ProgressCallback | None,
) -> MigrationReport:
    """Copy every object under ``source_url`` to ``dest_url``, delta-compressed, resumably
    (sharded, from a key list or an inventory, with a report: see ``client.migrate``)."""
    return await client.migrate(
        source_url,
        dest_url,
        include=include,
        exclude=exclude,
        dry_run=dry_run,
        shard=shard,
        shards=shards,
        from_list=from_list,
        inventory=inventory,
        report=report,
        report_interval=report_interval,
        max_ratio=max_ratio,
        progress=progress,
    )


async def get_bucket_stats(
    client: AsyncDeltaGliderClient,
    bucket: str,
    mode: StatsMode,
    *,
    use_cache: bool,
    refresh: bool,
) -> BucketStats:
    """Statistics of ``bucket`` in ``mode`` (quick, sampled or detailed)."""
    return await client.get_bucket_stats(bucket, mode, use_cache=use_cache, refresh_cache=refresh)


async def copy_object(
    client: AsyncDeltaGliderClient,
    source: ObjectKey,
    target: ObjectKey,
    *,
    max_ratio: float | None,
    allow_delta: bool,
) -> UploadSummary:
    """Reconstruct and verify ``source``, then store it at ``target`` (metadata kept)."""
    check_user_key(target.key)
    head = await client.head_object(Bucket=source.bucket, Key=source.key)
    async with client.service.materialize(source) as (path, _):
        summary = await client.service.put(
            path,
            target.space,
            max_ratio,
            name=target.name,
            metadata=head["Metadata"],
            content_type=head["ContentType"],
            allow_delta=allow_delta,
        )
    return UploadSummary.from_put(summary)


async def copy_many(
    client: AsyncDeltaGliderClient,
    pairs: Sequence[tuple[ObjectKey, ObjectKey]],
    *,
    max_ratio: float | None,
    allow_delta: bool,
    progress: ProgressCallback | None,
) -> list[ItemResult[UploadSummary]]:
    """Copy ``(source, target)`` object pairs; one result per pair, in order."""

    def task(source: ObjectKey, target: ObjectKey) -> Task[UploadSummary]:
        async def run() -> UploadSummary:
            return await copy_object(
                client, source, target, max_ratio=max_ratio, allow_delta=allow_delta
            )

        return source.url, target.url, run

    return await run_each(
        [task(s, t) for s, t in pairs],
        limit=client.config.concurrency,
        progress=progress,
        size_of=lambda s: s.original_size,
    )


async def verify_many(
    client: AsyncDeltaGliderClient,
    keys: Sequence[ObjectKey],
    *,
    progress: ProgressCallback | None,
) -> list[ItemResult[VerifyResult]]:
    """Reconstruct and check the SHA-256 of every object of ``keys``."""

    def task(key: ObjectKey) -> Task[VerifyResult]:
        async def run() -> VerifyResult:
            return await client.service.verify(key)

        return key.url, "", run

    return await run_each(
        [task(k) for k in keys], limit=client.config.concurrency, progress=progress
    )


async def upload_stream(
    client: AsyncDeltaGliderClient,
    read: Callable[[int], bytes],
    target: ObjectKey,
    *,
    max_ratio: float | None,
    allow_delta: bool,
) -> UploadSummary:
    """Store what the blocking ``read`` returns (stdin) at ``target``."""
    check_user_key(target.key)

    async def chunks() -> AsyncIterator[bytes]:
        while chunk := await anyio.to_thread.run_sync(read, _CHUNK):
            yield chunk

    await client.head_bucket(Bucket=target.bucket)
    summary = await client.service.put_stream(
        chunks(), target.space, target.name, max_ratio, allow_delta=allow_delta
    )
    return UploadSummary.from_put(summary)


async def run_each(
    tasks: Sequence[Task[T]],
    *,
    limit: int,
    progress: ProgressCallback | None = None,
    size_of: Callable[[T], int] = lambda _: 0,
) -> list[ItemResult[T]]:
    """Run ``tasks`` on the library's bounded worker pool (:func:`run_jobs`): at most
    ``limit`` in flight, one result per task, in order; a task's error becomes its
    result's ``error`` (local ``OSError`` translated), cancellation propagates."""
    jobs = [Job(source, destination, run) for source, destination, run in tasks]
    return await run_jobs(jobs, limit=max(1, limit), progress=progress, size_of=size_of)
