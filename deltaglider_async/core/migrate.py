"""Migration: copy every object under one S3 prefix to another, delta-compressed, resumably.

The source may be a plain bucket or one written by deltaglider (any version): every
object is read through the service (deltas reconstructed, SHA-256 verified) and stored at
the destination with delta compression against the destination's own deltaspaces. Objects
already present at the destination with the same SHA-256 are skipped, so an interrupted
migration is resumed by running it again. ``shard=(k, n)`` splits one job over ``n``
machines by deltaspace.
"""

from __future__ import annotations

import fnmatch
import hashlib
import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal

import anyio
import anyio.to_thread

from .._errors import (
    AccessDeniedError,
    InvalidArgumentError,
    ObjectNotFoundError,
    ReservedKeyError,
)
from .._models import DELTA_SUFFIX, ObjectKey, S3Url, UploadSummary
from .._scratch import ScratchDir
from ..ports.logger import LOGGER_NAME
from . import hidden
from . import metadata as meta_codec
from .bulk import concurrency_limit
from .keys import KeyRole, logical_key, role
from .operations import Operations
from .planner import check_user_key, validate_ratio
from .pool import ItemResult, Job, ProgressCallback, run_jobs
from .service import ResolvedObject

__all__ = ["MigrationReport", "migrate", "shard_of"]

_log = logging.getLogger(LOGGER_NAME)

_MD5: Final = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True, slots=True)
class MigrationReport:
    """What :func:`migrate` did (or, with ``dry_run``, would do), object by object.

    Every selected source object appears in exactly one list, in listing order:

    * ``migrated``: copied; ``value`` is the destination's :class:`UploadSummary`;
    * ``skipped``: already present at the destination with the same SHA-256;
    * ``failed``: ``error`` says why (nothing partial is left at the destination);
    * ``planned``: with ``dry_run``, the objects a real run would copy (or, for plain
      source objects of the same size as the destination's, check and copy if different);
    * ``refused``: objects that can never be stored at the destination under their own
      name; ``error`` (a :class:`ReservedKeyError`) says why: a ``reference.bin`` or a
      ``*.delta`` that deltaglider did not write (names the storage format reserves), a
      directory marker (a key ending in ``/``), or the ``.delta`` form of a name that also
      exists in direct form (the direct one is what a read returns, and is migrated).

    ``bytes_in`` is the original size of the migrated objects, ``bytes_stored`` what they
    occupy at the destination (new references included).
    """

    source: str
    destination: str
    dry_run: bool = False
    migrated: list[ItemResult[UploadSummary]] = field(default_factory=list)
    skipped: list[ItemResult[None]] = field(default_factory=list)
    failed: list[ItemResult[UploadSummary]] = field(default_factory=list)
    planned: list[ItemResult[None]] = field(default_factory=list)
    refused: list[ItemResult[None]] = field(default_factory=list)
    bytes_in: int = 0
    bytes_stored: int = 0

    @property
    def ok(self) -> bool:
        """True when no object failed."""
        return not self.failed

    @property
    def total(self) -> int:
        """Number of source objects selected (after patterns and shard)."""
        return (
            len(self.migrated)
            + len(self.skipped)
            + len(self.failed)
            + len(self.planned)
            + len(self.refused)
        )


@dataclass(frozen=True, slots=True)
class _Outcome:
    action: Literal["migrated", "skipped", "planned", "refused"]
    summary: UploadSummary | None = None
    size: int = 0
    reason: str = ""


@dataclass(frozen=True, slots=True)
class _Source:
    stored_key: str
    relative: str
    #: Why this object is never copied (found from the listing alone), else "".
    refused: str = ""


def shard_of(relative_space: str, shards: int) -> int:
    """The shard (``0 <= k < shards``) of a deltaspace, from SHA-256 of its relative prefix.

    ``relative_space`` is the deltaspace's prefix relative to the migration's source
    prefix (``""`` for the source root). The hash is stable across processes, machines
    and Python versions, unlike ``hash()``.
    """
    digest = hashlib.sha256(relative_space.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % shards


def _check_shard(shard: object) -> tuple[int, int] | None:
    if shard is None:
        return None
    if (
        isinstance(shard, tuple | list)
        and len(shard) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in shard)
    ):
        k, n = shard
        if n >= 1 and 0 <= k < n:
            return k, n
    raise InvalidArgumentError(f"shard must be (k, n) with integers 0 <= k < n, got {shard!r}")


def _patterns(name: str, patterns: Iterable[str]) -> tuple[str, ...]:
    if isinstance(patterns, str):
        return (patterns,)
    found = tuple(patterns)
    if not all(isinstance(p, str) for p in found):
        raise InvalidArgumentError(f"{name} must be glob patterns (str), got {found!r}")
    return found


def _prefix(url: S3Url) -> str:
    """A URL's key as a "directory" prefix: empty, or ending with ``/``."""
    return url.key if url.is_prefix else url.key + "/"


def _selected(relative: str, include: tuple[str, ...], exclude: tuple[str, ...]) -> bool:
    if any(fnmatch.fnmatchcase(relative, p) for p in exclude):
        return False
    return not include or any(fnmatch.fnmatchcase(relative, p) for p in include)


def _md5_differs(source: ResolvedObject, dest: ResolvedObject) -> bool:
    """True when a plain source's ETag is an MD5 that differs from the destination's."""
    etag = source.head.etag.strip('"').lower()
    return bool(_MD5.fullmatch(etag)) and dest.meta.md5 is not None and etag != dest.meta.md5


async def _list_sources(
    ops: Operations,
    bucket: str,
    prefix: str,
    include: tuple[str, ...],
    exclude: tuple[str, ...],
    shard: tuple[int, int] | None,
) -> list[_Source]:
    """The objects under ``prefix`` that the patterns and the shard select, by logical key.

    deltaglider's own objects (``.deltaglider/``, references it wrote) are not sources:
    they are rebuilt at the destination. Every other object is a source, even one that
    cannot be copied (it is then reported as refused, with the reason).
    """
    storage = ops.service.storage
    found: dict[str, _Source] = {}
    extra: list[_Source] = []
    references: list[_Source] = []
    async for info in storage.iter_objects(bucket, prefix):
        key = info.key
        kind = role(key)
        if kind is KeyRole.INTERNAL:
            continue
        relative = logical_key(key)[len(prefix) :]
        if not relative or not _selected(relative, include, exclude):
            continue
        if shard is not None and shard_of(relative.rpartition("/")[0], shard[1]) != shard[0]:
            continue
        if kind is KeyRole.REFERENCE:
            references.append(_Source(key, relative))
        elif key.endswith("/"):
            extra.append(_Source(key, relative, hidden.MARKER_REASON))
        elif relative in found:
            # Both x and x.delta (a replacement was interrupted): x is what a read returns.
            delta, direct = sorted((found[relative], _Source(key, relative)), key=_is_direct)
            found[relative] = direct
            extra.append(
                _Source(delta.stored_key, relative, hidden.shadowed_reason(direct.stored_key))
            )
        else:
            found[relative] = _Source(key, relative)
    by_key = {source.stored_key: source for source in references}
    foreign = await hidden.foreign_references(storage, bucket, by_key, ops.metadata_concurrency)
    extra.extend(_Source(h.key, by_key[h.key].relative, h.reason) for h in foreign)
    return [*found.values(), *extra]


def _is_direct(source: _Source) -> bool:
    return role(source.stored_key) is not KeyRole.DELTA


async def migrate(
    ops: Operations,
    source_url: str,
    dest_url: str,
    *,
    include: Iterable[str] = (),
    exclude: Iterable[str] = (),
    dry_run: bool = False,
    shard: tuple[int, int] | None = None,
    max_concurrency: int | None = None,
    max_ratio: float | None = None,
    progress: ProgressCallback | None = None,
) -> MigrationReport:
    """Copy every object under ``source_url`` to ``dest_url``, delta-compressed; resumable.

    Both URLs name prefixes (``s3://bucket``, ``s3://bucket/dir/``; ``s3://bucket/dir`` is
    taken as ``dir/``), in the same or different buckets of this client's endpoint; they
    must not overlap. A source object ``<source prefix><rel>`` becomes
    ``<dest prefix><rel>`` (a ``.delta`` source becomes its logical name). The source may
    be a plain bucket or a deltaglider bucket of any version: each object is read through
    the service (deltas reconstructed and verified against their SHA-256), then stored
    with delta compression against the destination's deltaspaces, keeping its user
    metadata and Content-Type. References and ``.deltaglider/`` are not copied; they are
    rebuilt at the destination.

    Resuming: an object already at the destination with the same SHA-256 is skipped. For
    deltaglider sources the recorded SHA-256 values are compared (no download). A plain
    source object has no recorded hash: when the destination holds an object of the
    same size (and the source ETag, when it is a plain MD5, matches the recorded MD5),
    the source is downloaded and hashed, and copied only if it differs. So a rerun of a
    finished migration writes nothing.

    ``include``/``exclude`` are glob patterns (``fnmatch``, case-sensitive) matched
    against ``rel``; an object is selected when it matches no ``exclude`` pattern and,
    if any ``include`` is given, at least one of them (exclude wins). ``shard=(k, n)``
    selects only the deltaspaces whose stable hash (:func:`shard_of`: SHA-256 of the
    space's prefix relative to the source prefix) is ``k`` modulo ``n``: ``n`` runs with
    ``k = 0 .. n-1`` cover every object exactly once, and a deltaspace is never split.
    ``dry_run`` reads the listing and the metadata only and writes nothing: it fills
    ``planned`` and ``skipped``.

    At most ``max_concurrency`` objects (default: the client's) are in flight; the first
    object of each destination deltaspace creates its reference while the others of that
    space wait. ``max_ratio`` applies to every object. ``progress`` is called after each
    object. Per-object failures are reported in ``failed``, never raised.

    Raises, before copying anything, :class:`InvalidURLError`, :class:`InvalidRatioError`,
    :class:`InvalidArgumentError` (overlapping prefixes, a bad ``shard``, patterns or
    ``max_concurrency``) and :class:`BucketNotFoundError` for a missing source or
    destination bucket. Cancellation stops every copy, leaves no temp file, xdelta3
    process or multipart upload, and propagates; a rerun finishes the job.
    """
    src, dst = S3Url.parse(source_url), S3Url.parse(dest_url)
    src_prefix, dst_prefix = _prefix(src), _prefix(dst)
    if src.bucket == dst.bucket and (
        src_prefix.startswith(dst_prefix) or dst_prefix.startswith(src_prefix)
    ):
        raise InvalidArgumentError(
            f"source s3://{src.bucket}/{src_prefix} and destination "
            f"s3://{dst.bucket}/{dst_prefix} overlap: the migration would read its own output"
        )
    ratio = None if max_ratio is None else validate_ratio(max_ratio)
    checked_shard = _check_shard(shard)
    included, excluded = _patterns("include", include), _patterns("exclude", exclude)
    limit = concurrency_limit(ops, max_concurrency)
    storage = ops.service.storage
    try:
        await storage.head_bucket(dst.bucket)
    except AccessDeniedError:
        pass  # prefix-scoped credentials may not HEAD the bucket; the writes will tell
    sources = await _list_sources(ops, src.bucket, src_prefix, included, excluded, checked_shard)

    work = ScratchDir("migrate")

    def new_path() -> Path:
        return work.new_path("object")

    jobs: list[Job[_Outcome]] = []
    for item in sources:
        target = ObjectKey(dst.bucket, dst_prefix + item.relative)
        jobs.append(
            Job(
                source=f"s3://{src.bucket}/{item.stored_key}",
                destination=target.url,
                run=_copier(
                    ops,
                    ObjectKey(src.bucket, item.stored_key),
                    target,
                    ratio,
                    dry_run,
                    new_path,
                    item.refused,
                ),
                group=target.space,
            )
        )
    try:
        results = await run_jobs(
            jobs,
            limit=limit,
            progress=progress,
            size_of=lambda o: o.size if o.action == "migrated" else 0,
        )
    finally:
        if work.created is not None:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(work.remove)
    return _report(
        f"s3://{src.bucket}/{src_prefix}", f"s3://{dst.bucket}/{dst_prefix}", dry_run, results
    )


def _copier(
    ops: Operations,
    source: ObjectKey,
    target: ObjectKey,
    ratio: float | None,
    dry_run: bool,
    new_path: Callable[[], Path],
    refused: str,
) -> Callable[[], Awaitable[_Outcome]]:
    service = ops.service

    async def run() -> _Outcome:
        if refused:
            return _Outcome("refused", reason=refused)
        check_user_key(target.key)
        resolved = await service.resolve(source)
        if resolved.meta.kind is meta_codec.ObjectKind.BROKEN and role(source.key) is (
            KeyRole.DELTA
        ):
            return _Outcome(
                "refused",
                reason=(
                    f"its name ends in '{DELTA_SUFFIX}', which deltaglider reserves for deltas, "
                    f"and it is not one: {resolved.meta.problem}"
                ),
            )
        try:
            existing: ResolvedObject | None = await service.resolve(target)
        except ObjectNotFoundError:
            existing = None
        size = resolved.original_size
        source_sha = resolved.meta.file_sha256
        hash_to_compare: str | None = None
        if (
            existing is not None
            and existing.meta.file_sha256 is not None
            and existing.original_size == size
        ):
            if source_sha is not None:
                if source_sha == existing.meta.file_sha256:
                    return _Outcome("skipped")
            elif not _md5_differs(resolved, existing):
                hash_to_compare = existing.meta.file_sha256
        if dry_run:
            return _Outcome("planned")
        path = new_path()
        try:
            got = await service.reconstruct(resolved, path)
            if hash_to_compare is not None and got.sha256 == hash_to_compare:
                return _Outcome("skipped")
            summary = await service.put(
                path,
                target.space,
                ratio,
                name=target.name,
                metadata=resolved.user_metadata(),
                content_type=resolved.head.content_type,
            )
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.Path(path).unlink(missing_ok=True)
        return _Outcome("migrated", UploadSummary.from_put(summary), got.size)

    return run


def _report(
    source: str, destination: str, dry_run: bool, results: list[ItemResult[_Outcome]]
) -> MigrationReport:
    migrated: list[ItemResult[UploadSummary]] = []
    skipped: list[ItemResult[None]] = []
    failed: list[ItemResult[UploadSummary]] = []
    planned: list[ItemResult[None]] = []
    refused: list[ItemResult[None]] = []
    bytes_in = bytes_stored = 0
    for result in results:
        outcome = result.value
        if result.error is not None or outcome is None:
            failed.append(ItemResult(result.source, result.destination, None, result.error))
        elif outcome.action == "migrated":
            assert outcome.summary is not None
            migrated.append(ItemResult(result.source, result.destination, outcome.summary))
            bytes_in += outcome.size
            bytes_stored += outcome.summary.stored_size
        elif outcome.action == "skipped":
            skipped.append(ItemResult(result.source, result.destination))
        elif outcome.action == "refused":
            error = ReservedKeyError(f"{result.source} is not migrated: {outcome.reason}")
            refused.append(ItemResult(result.source, result.destination, None, error))
        else:
            planned.append(ItemResult(result.source, result.destination))
    _log.info(
        "migration %s -> %s: %d migrated, %d skipped, %d failed, %d planned, %d refused",
        source,
        destination,
        len(migrated),
        len(skipped),
        len(failed),
        len(planned),
        len(refused),
    )
    return MigrationReport(
        source=source,
        destination=destination,
        dry_run=dry_run,
        migrated=migrated,
        skipped=skipped,
        failed=failed,
        planned=planned,
        refused=refused,
        bytes_in=bytes_in,
        bytes_stored=bytes_stored,
    )
