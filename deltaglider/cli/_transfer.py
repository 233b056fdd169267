"""Running planned uploads, downloads, copies and deletions, and reporting each item.

``cp`` and ``sync`` decide *what* to transfer; this module does it with the bulk engine
(bounded concurrency, one reference per deltaspace created first), draws the progress
bar, and turns each item's result into an :class:`~._output.Outcome` line.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import anyio.to_thread

from deltaglider_async import AsyncDeltaGliderClient, HiddenObject, ObjectKey, StorageError

from . import _engine as engine
from ._listing import delete_keys
from ._output import Outcome, Reporter
from ._paths import display_local


async def report_hidden(
    client: AsyncDeltaGliderClient,
    report: Reporter,
    bucket: str,
    prefix: str,
    selects: Callable[[str], bool],
) -> None:
    """A ``skip:`` line, with the reason, for each object under ``prefix`` that a copy
    cannot carry under its own name (a foreign ``reference.bin``, a directory marker, a
    ``.delta`` shadowed by its direct form): nothing is dropped silently."""
    hidden = await client.list_hidden_objects(bucket, prefix)
    report_skipped(report, bucket, prefix, hidden, selects)


def report_skipped(
    report: Reporter,
    bucket: str,
    prefix: str,
    hidden: Sequence[HiddenObject],
    selects: Callable[[str], bool],
) -> None:
    """The ``skip:`` lines of :func:`report_hidden` for objects already found."""
    for item in hidden:
        if selects(item.key[len(prefix) :]):
            report.add(
                Outcome("skip", f"s3://{bucket}/{item.key}", detail=f"not copied: {item.reason}")
            )


@dataclass(frozen=True, slots=True)
class Upload:
    """Store the local file ``path`` at ``s3://bucket/key``."""

    path: Path
    bucket: str
    key: str

    @property
    def target(self) -> ObjectKey:
        """The destination object."""
        return ObjectKey(self.bucket, self.key)


@dataclass(frozen=True, slots=True)
class Download:
    """Write ``source`` to ``root/relative``."""

    source: ObjectKey
    root: Path
    relative: str

    @property
    def path(self) -> Path:
        """The local file written."""
        return self.root.joinpath(*self.relative.split("/"))


@dataclass(frozen=True, slots=True)
class Copy:
    """Reconstruct ``source`` and store it at ``target``."""

    source: ObjectKey
    target: ObjectKey


async def uploads(
    client: AsyncDeltaGliderClient,
    report: Reporter,
    jobs: Sequence[Upload],
    *,
    allow_delta: bool,
    dryrun: bool,
) -> None:
    """Upload ``jobs`` (or, with ``dryrun``, say what would be uploaded)."""
    if dryrun or not jobs:
        for job in jobs:
            report.add(Outcome("upload", display_local(job.path), job.target.url, dryrun=True))
        return
    by_bucket: dict[str, list[Upload]] = {}
    for job in jobs:
        by_bucket.setdefault(job.bucket, []).append(job)
    with report.out.progress(len(jobs), "upload") as progress:
        for bucket, group in by_bucket.items():
            results = await engine.upload_many(
                client,
                [(job.path, job.key) for job in group],
                bucket,
                max_ratio=None,
                allow_delta=allow_delta,
                progress=progress,
            )
            for job, result in zip(group, results, strict=True):
                report.add(
                    Outcome(
                        "upload",
                        display_local(job.path),
                        job.target.url,
                        error=result.error,
                        summary=result.value,
                    )
                )


async def downloads(
    client: AsyncDeltaGliderClient, report: Reporter, jobs: Sequence[Download], *, dryrun: bool
) -> None:
    """Download ``jobs`` (or, with ``dryrun``, say what would be downloaded)."""
    if dryrun or not jobs:
        for job in jobs:
            report.add(Outcome("download", job.source.url, display_local(job.path), dryrun=True))
        return
    by_root: dict[Path, list[Download]] = {}
    for job in jobs:
        by_root.setdefault(job.root, []).append(job)
    with report.out.progress(len(jobs), "download") as progress:
        for root, group in by_root.items():
            results = await engine.download_many(
                client,
                [(job.source.url, job.relative) for job in group],
                root,
                progress=progress,
            )
            for job, result in zip(group, results, strict=True):
                report.add(
                    Outcome(
                        "download",
                        job.source.url,
                        display_local(job.path),
                        error=result.error,
                        size=result.value.size if result.value is not None else None,
                    )
                )


async def copies(
    client: AsyncDeltaGliderClient,
    report: Reporter,
    jobs: Sequence[Copy],
    *,
    allow_delta: bool,
    dryrun: bool,
) -> None:
    """Copy ``jobs`` between S3 locations (or, with ``dryrun``, say what would be copied)."""
    if dryrun or not jobs:
        for job in jobs:
            report.add(Outcome("copy", job.source.url, job.target.url, dryrun=True))
        return
    with report.out.progress(len(jobs), "copy") as progress:
        results = await engine.copy_many(
            client,
            [(job.source, job.target) for job in jobs],
            max_ratio=None,
            allow_delta=allow_delta,
            progress=progress,
        )
    for job, result in zip(jobs, results, strict=True):
        report.add(
            Outcome(
                "copy", job.source.url, job.target.url, error=result.error, summary=result.value
            )
        )


async def delete_remote(
    client: AsyncDeltaGliderClient,
    report: Reporter,
    bucket: str,
    keys: Sequence[str],
    *,
    dryrun: bool,
) -> None:
    """Delete the logical ``keys`` of ``bucket`` (references go with their last delta)."""
    failed = {} if dryrun or not keys else await delete_keys(client, bucket, keys)
    for key in keys:
        url = f"s3://{bucket}/{key}"
        error = failed.get(key)
        report.add(
            Outcome(
                "delete", url, error=None if error is None else StorageError(error), dryrun=dryrun
            )
        )


async def delete_local(report: Reporter, paths: Sequence[Path], *, dryrun: bool) -> None:
    """Delete local files."""
    for path in paths:
        error: OSError | None = None
        if not dryrun:
            try:
                await anyio.to_thread.run_sync(os.remove, path)
            except FileNotFoundError:
                pass
            except OSError as exc:
                error = exc
        report.add(Outcome("delete", display_local(path), error=error, dryrun=dryrun))
