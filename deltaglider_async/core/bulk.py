"""Bulk upload and download: many files on the bounded worker pool (``core.pool``).

Each file is one job of its deltaspace's group, so the first file of a directory creates
(or, for downloads, caches) the reference before the others of that directory start, while
other directories go on. Cancelling the call cancels every item (children killed,
multipart uploads aborted, temp files removed by the service) and propagates.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path, PurePath, PurePosixPath
from typing import Any, TypeAlias, TypeVar

import anyio

from .._errors import (
    AccessDeniedError,
    DeltaGliderError,
    InvalidArgumentError,
    InvalidURLError,
    local_error,
    translating_local,
)
from .._models import DELTA_SUFFIX, GetSummary, ObjectKey, S3Url, UploadSummary
from ..ports.logger import LOGGER_NAME
from . import telemetry
from .operations import Operations
from .planner import check_user_key, validate_ratio
from .pool import ItemResult, Job, Progress, ProgressCallback, run_jobs

__all__ = [
    "DownloadItem",
    "ItemResult",
    "Progress",
    "ProgressCallback",
    "UploadItem",
    "download_many",
    "upload_many",
]

_log = logging.getLogger(LOGGER_NAME)

T = TypeVar("T")

#: A local file, or ``(local file, key relative to the destination prefix)``.
UploadItem: TypeAlias = str | os.PathLike[str] | tuple[str | os.PathLike[str], str | PurePath]
#: An ``s3://`` URL, or ``(s3://... URL, path relative to the destination directory)``.
DownloadItem: TypeAlias = str | tuple[str, str | os.PathLike[str]]


def concurrency_limit(ops: Operations, max_concurrency: int | None) -> int:
    """``max_concurrency`` checked, or the client's configured bound."""
    if max_concurrency is None:
        return ops.concurrency
    if isinstance(max_concurrency, bool) or not isinstance(max_concurrency, int):
        raise InvalidArgumentError(f"max_concurrency must be an int, got {max_concurrency!r}")
    if max_concurrency < 1:
        raise InvalidArgumentError(f"max_concurrency must be >= 1, got {max_concurrency}")
    return max_concurrency


def _flag_duplicates(jobs: Sequence[Job[Any]], what: str) -> None:
    """Report every job after the first that writes the same destination as an error."""
    first: dict[str, int] = {}
    for index, job in enumerate(jobs):
        if job.error is not None:
            continue
        seen = first.setdefault(job.destination, index)
        if seen != index:
            job.error = InvalidArgumentError(
                f"{what} {job.destination} is also the destination of item {seen} "
                f"({jobs[seen].source}); only that one is transferred"
            )
            job.run = None


async def check_local_file(path: Path) -> None:
    """Raise the library's error unless ``path`` is a regular file (see ``local_error``)."""
    with translating_local(path, "read"):
        info = await anyio.Path(path).stat()
    if not stat.S_ISREG(info.st_mode):
        raise InvalidArgumentError(f"cannot read local file {str(path)!r}: not a regular file")


async def check_local_directory(directory: Path) -> None:
    """Raise the library's error unless ``directory`` exists and is a directory."""
    with translating_local(directory, "write into"):
        info = await anyio.Path(directory).stat()
    if not stat.S_ISDIR(info.st_mode):
        raise InvalidArgumentError(f"cannot write into {str(directory)!r}: not a directory")


# ---------------------------------------------------------------------------------------
# upload_many
# ---------------------------------------------------------------------------------------


def _upload_entry(entry: Any) -> tuple[Path, str]:
    """(local path, key relative to the prefix) of one ``files`` entry."""
    if isinstance(entry, tuple | list):
        if len(entry) != 2:
            raise InvalidArgumentError(
                f"upload_many items are paths or (path, relative_key) pairs, got {entry!r}"
            )
        path, relative = entry
        if isinstance(relative, PurePath):
            relative = relative.as_posix()
        if not isinstance(relative, str) or not relative:
            raise InvalidArgumentError(
                f"the relative key of {path!r} must be a non-empty str, got {relative!r}"
            )
        if not isinstance(path, str | os.PathLike):
            raise InvalidArgumentError(f"upload_many: not a local path: {path!r}")
        return Path(path), relative
    if isinstance(entry, str | os.PathLike):
        path = Path(entry)
        return path, path.name
    raise InvalidArgumentError(
        f"upload_many items are paths or (path, relative_key) pairs, got {type(entry).__name__}"
    )


async def upload_many(
    ops: Operations,
    files: Iterable[UploadItem],
    s3_url: str,
    *,
    max_concurrency: int | None = None,
    max_ratio: float | None = None,
    allow_delta: bool = True,
    progress: ProgressCallback | None = None,
) -> list[ItemResult[UploadSummary]]:
    """Upload many local files under the prefix ``s3_url``, concurrently and bounded.

    ``files`` holds local paths, each stored as ``<prefix>/<file name>``, or
    ``(path, relative_key)`` pairs, stored as ``<prefix>/<relative_key>`` (so a recursive
    upload keeps its tree; ``relative_key`` uses ``/`` and is never normalised). As in
    :meth:`upload`, ``s3_url`` is always a prefix: ``s3://b/dir`` and ``s3://b/dir/`` both
    store under ``dir/``. Each file is delta-compressed against its own deltaspace's
    reference when eligible; files of one deltaspace that has no reference yet wait for
    the first of them to create it (and only for that), then compress against it.

    At most ``max_concurrency`` files (default: the client's ``max_concurrency``,
    ``DG_MAX_CONCURRENCY``) are in flight, and at most the configured number of xdelta3
    processes run. ``max_ratio`` applies to every file (default: the client's);
    ``allow_delta=False`` stores every file direct.
    ``progress`` is called after each file with a :class:`Progress`.

    Returns one :class:`ItemResult` per file, in input order: ``value`` is the file's
    :class:`UploadSummary`, or ``error`` says why it failed (a missing local file, a
    reserved key, a storage error after retries, a second item with the same
    destination...); the other files are uploaded regardless. A failed file leaves
    nothing partial in the bucket.

    Raises (before uploading anything) :class:`InvalidURLError`,
    :class:`InvalidRatioError`, :class:`InvalidArgumentError` for malformed items or
    ``max_concurrency``, and :class:`BucketNotFoundError`. Cancellation stops every
    upload (xdelta3 children killed, multipart uploads aborted, temp files removed) and
    propagates; files already uploaded stay.
    """
    url = S3Url.parse(s3_url)
    ratio = None if max_ratio is None else validate_ratio(max_ratio)
    limit = concurrency_limit(ops, max_concurrency)
    entries = [_upload_entry(entry) for entry in files]
    prefix = url.key[:-1] if url.key.endswith("/") else url.key
    service = ops.service
    jobs: list[Job[UploadSummary]] = []
    for path, relative in entries:
        key = ObjectKey(url.bucket, f"{prefix}/{relative}" if prefix else relative)
        job: Job[UploadSummary] = Job(
            source=str(path), destination=key.url, run=None, group=key.space
        )
        try:
            check_user_key(key.key)
        except DeltaGliderError as exc:
            job.error = exc
        else:
            job.run = _uploader(ops, path, key, ratio, allow_delta)
        jobs.append(job)
    _flag_duplicates(jobs, "key")
    if jobs:
        try:
            await service.storage.head_bucket(url.bucket)
        except AccessDeniedError:
            pass  # prefix-scoped credentials may not HEAD the bucket; the PUTs will tell
    return await run_jobs(jobs, limit=limit, progress=progress, size_of=_upload_size)


def _uploader(
    ops: Operations,
    path: Path,
    key: ObjectKey,
    ratio: float | None,
    allow_delta: bool,
) -> Callable[[], Awaitable[UploadSummary]]:
    async def run() -> UploadSummary:
        item = telemetry.bulk_attributes("upload", str(path), key.url)
        with ops.service.tracing.span("deltaglider.bulk.item", item):
            await check_local_file(path)
            summary = await ops.service.put(
                path, key.space, ratio, name=key.name, allow_delta=allow_delta
            )
        return UploadSummary.from_put(summary)

    return run


def _upload_size(summary: UploadSummary) -> int:
    return summary.original_size


# ---------------------------------------------------------------------------------------
# download_many
# ---------------------------------------------------------------------------------------


def _download_entry(entry: Any, dest_dir: Path) -> tuple[str, ObjectKey | None, Path | None, str]:
    """(source text, object, local path, problem) of one ``items`` entry."""
    relative: Any = None
    if isinstance(entry, tuple | list):
        if len(entry) != 2:
            raise InvalidArgumentError(
                f"download_many items are URLs or (url, relative_path) pairs, got {entry!r}"
            )
        entry, relative = entry
    if not isinstance(entry, str):
        raise InvalidArgumentError(f"download_many: not an s3:// URL: {entry!r}")
    try:
        url = S3Url.parse(entry)
    except InvalidURLError as exc:
        return entry, None, None, str(exc)
    if url.is_prefix:
        return entry, None, None, f"S3 URL must name an object, not a prefix: {entry!r}"
    key = ObjectKey(url.bucket, url.key)
    if relative is None:
        return entry, key, dest_dir / key.name.removesuffix(DELTA_SUFFIX), ""
    if not isinstance(relative, str | os.PathLike) or not os.fspath(relative):
        raise InvalidArgumentError(f"the relative path of {entry!r} must be a non-empty path")
    rel = PurePosixPath(Path(relative).as_posix())
    if rel.is_absolute() or ".." in rel.parts:
        return entry, key, None, f"relative path {str(relative)!r} leaves the destination"
    return entry, key, dest_dir.joinpath(*rel.parts), ""


async def download_many(
    ops: Operations,
    items: Iterable[DownloadItem],
    dest_dir: str | os.PathLike[str],
    *,
    max_concurrency: int | None = None,
    progress: ProgressCallback | None = None,
) -> list[ItemResult[GetSummary]]:
    """Download many objects into the local directory ``dest_dir``, concurrently and bounded.

    ``items`` holds ``s3://bucket/key`` URLs (logical or ``.delta`` names), each written
    to ``dest_dir/<logical file name>``, or ``(url, relative_path)`` pairs written to
    ``dest_dir/<relative_path>`` (parent directories are created; a path that is
    absolute or climbs out with ``..`` is an item error). ``dest_dir`` is created when
    missing.

    Every file is reconstructed and verified against its recorded SHA-256 before it is
    renamed into place, so a failed item never leaves a partial or wrong file. Objects of
    one deltaspace start after the first of them, which leaves the space's reference in
    the local cache for the others (one GET of each reference). At most
    ``max_concurrency`` downloads (default: the client's) are in flight; ``progress`` is
    called after each item.

    Returns one :class:`ItemResult` per item, in input order, with the file's
    :class:`GetSummary` or the error (missing object, integrity error, bad URL, a second
    item with the same local path...). Raises :class:`InvalidArgumentError` for malformed
    items or ``max_concurrency`` and when ``dest_dir`` cannot be a directory.
    Cancellation stops every download, leaves no temp file and propagates.
    """
    limit = concurrency_limit(ops, max_concurrency)
    root = Path(dest_dir)
    entries = [_download_entry(entry, root) for entry in items]
    try:
        await anyio.Path(root).mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise InvalidArgumentError(f"{str(root)!r} exists and is not a directory") from None
    except OSError as exc:
        raise local_error(exc, root, "create the directory") from exc
    jobs: list[Job[GetSummary]] = []
    for source, key, out, problem in entries:
        job: Job[GetSummary] = Job(source=source, destination=str(out or ""), run=None)
        if key is None or out is None:
            job.error = InvalidURLError(problem) if key is None else InvalidArgumentError(problem)
        else:
            job.group = key.space
            job.run = _downloader(ops, key, out)
        jobs.append(job)
    _flag_duplicates(jobs, "local file")
    return await run_jobs(jobs, limit=limit, progress=progress, size_of=_download_size)


def _downloader(ops: Operations, key: ObjectKey, out: Path) -> Callable[[], Awaitable[GetSummary]]:
    async def run() -> GetSummary:
        item = telemetry.bulk_attributes("download", key.url, str(out))
        with ops.service.tracing.span("deltaglider.bulk.item", item):
            with translating_local(out.parent, "create the directory"):
                await anyio.Path(out.parent).mkdir(parents=True, exist_ok=True)
            return await ops.service.get(key, out)

    return run


def _download_size(summary: GetSummary) -> int:
    return summary.size
