"""Migration: copy every object under one S3 prefix to another, delta-compressed, resumably.

The source may be a plain bucket or one written by deltaglider (any version): every
object is read through the service (deltas reconstructed, SHA-256 verified) and stored at
the destination with delta compression against the destination's own deltaspaces. Objects
already present at the destination with the same SHA-256 are skipped, so an interrupted
migration is resumed by running it again.

One job splits over ``n`` processes (``shard=(k, n)``, or ``"auto"`` from a Kubernetes
Indexed Job or an AWS Batch array job, see :mod:`.shards`), each reading only its part of
the source: a listing cut by prefix (:mod:`.partitioned_listing`), a key list
(:mod:`.key_list`) or an S3 Inventory report (:mod:`.inventory`). Each run may keep a
report (:mod:`.shard_report`) that a rerun of the same shard resumes from.
"""

from __future__ import annotations

import fnmatch
import logging
import math
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

import anyio
import anyio.to_thread

from .._errors import (
    AccessDeniedError,
    DeltaGliderError,
    InvalidArgumentError,
    ObjectNotFoundError,
    ReservedKeyError,
    is_transient,
    single_errors,
)
from .._models import DELTA_SUFFIX, ObjectKey, S3Url, UploadSummary
from .._scratch import ScratchDir
from ..ports.logger import LOGGER_NAME
from ..ports.storage import ObjectHead, StoragePort
from . import hidden
from . import metadata as meta_codec
from .bulk import concurrency_limit
from .inventory import load_manifest, read_entries
from .key_list import read_keys
from .keys import KeyRole, logical_key, role, stored_keys
from .operations import Operations
from .partitioned_listing import ListingCount, list_shard
from .planner import check_user_key, validate_ratio
from .pool import ItemResult, Job, ProgressCallback, item_error, run_jobs
from .service import ResolvedObject
from .shard_report import ShardReport, report_location
from .shards import Shard, ShardSpec, check_shard, shard_of

__all__ = ["MigrationReport", "migrate", "shard_of"]

_log = logging.getLogger(LOGGER_NAME)

_MD5: Final = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True, slots=True)
class MigrationReport:
    """What :func:`migrate` did (or, with ``dry_run``, would do), object by object.

    Every selected source object appears in exactly one list, in listing order:

    * ``migrated``: copied; ``value`` is the destination's :class:`UploadSummary`;
    * ``skipped``: already present at the destination with the same SHA-256 (or recorded
      as migrated or present by the previous run's report, the source unchanged since);
    * ``failed``: ``error`` says why (nothing partial is left at the destination);
    * ``planned``: with ``dry_run``, the objects a real run would copy (or, for plain
      source objects of the same size as the destination's, check and copy if different);
    * ``refused``: objects that can never be stored at the destination under their own
      name; ``error`` (a :class:`ReservedKeyError`) says why: a ``reference.bin`` or a
      ``*.delta`` that deltaglider did not write (names the storage format reserves), a
      directory marker (a key ending in ``/``), or the ``.delta`` form of a name that also
      exists in direct form (the direct one is what a read returns, and is migrated). A
      key list's key outside the source prefix is refused too, and an object a key list or
      an inventory names that no longer exists is refused with an
      :class:`ObjectNotFoundError`.

    ``bytes_in`` is the original size of the migrated objects, ``bytes_stored`` what they
    occupy at the destination (new references included). ``shard`` is the part of the
    job this run did (None: all of it); ``list_requests`` the number of LIST requests it
    sent to find its objects (0 with a key list or an inventory); ``report_url`` where its
    report was written, if anywhere.
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
    shard: Shard | None = None
    list_requests: int = 0
    report_url: str | None = None

    @property
    def ok(self) -> bool:
        """True when no object failed."""
        return not self.failed

    @property
    def retryable(self) -> bool:
        """True when objects failed and every failure may pass on a rerun
        (:func:`~deltaglider_async.is_transient`): throttling, 5xx, dropped connections."""
        return bool(self.failed) and all(
            r.error is not None and is_transient(r.error) for r in self.failed
        )

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
    missing: bool = False


@dataclass(frozen=True, slots=True)
class _Listed:
    """A key as the source's list gives it, with its size and ETag when known."""

    key: str
    size: int | None = None
    etag: str | None = None


@dataclass(frozen=True, slots=True)
class _Source:
    stored_key: str
    relative: str
    #: Why this object is never copied (found from the listing alone), else "".
    refused: str = ""
    size: int | None = None
    etag: str | None = None


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


def _outside_reason(prefix: str) -> str:
    return f"it is not under the source prefix '{prefix}'"


async def _list_sources(
    ops: Operations,
    bucket: str,
    prefix: str,
    listed: AsyncIterator[_Listed],
    include: tuple[str, ...],
    exclude: tuple[str, ...],
    *,
    refuse_outside: bool,
) -> list[_Source]:
    """The objects of ``listed`` under ``prefix`` that the patterns select, by logical key.

    deltaglider's own objects (``.deltaglider/``, references it wrote) are not sources:
    they are rebuilt at the destination. Every other object is a source, even one that
    cannot be copied (it is then reported as refused, with the reason). Keys outside
    ``prefix`` are refused with ``refuse_outside``, else left out.
    """
    storage = ops.service.storage
    found: dict[str, _Source] = {}
    extra: list[_Source] = []
    references: list[_Source] = []
    async for info in listed:
        key = info.key
        if not key.startswith(prefix):
            if refuse_outside:
                extra.append(_Source(key, key, _outside_reason(prefix)))
            continue
        kind = role(key)
        if kind is KeyRole.INTERNAL:
            continue
        relative = logical_key(key)[len(prefix) :]
        if not relative or not _selected(relative, include, exclude):
            continue
        if kind is KeyRole.REFERENCE:
            references.append(_Source(key, relative))
        elif key.endswith("/"):
            extra.append(_Source(key, relative, hidden.MARKER_REASON))
        elif relative in found:
            if found[relative].stored_key == key:
                continue  # listed twice (a key list may repeat a line)
            # Both x and x.delta (a replacement was interrupted): x is what a read returns.
            listed_now = _Source(key, relative, size=info.size, etag=info.etag)
            delta, direct = sorted((found[relative], listed_now), key=_is_direct)
            found[relative] = direct
            extra.append(
                _Source(delta.stored_key, relative, hidden.shadowed_reason(direct.stored_key))
            )
        else:
            found[relative] = _Source(key, relative, size=info.size, etag=info.etag)
    by_key = {source.stored_key: source for source in references}
    foreign = await hidden.foreign_references(storage, bucket, by_key, ops.metadata_concurrency)
    extra.extend(_Source(h.key, by_key[h.key].relative, h.reason) for h in foreign)
    return [*found.values(), *extra]


def _is_direct(source: _Source) -> bool:
    return role(source.stored_key) is not KeyRole.DELTA


async def _from_listing(
    ops: Operations, bucket: str, prefix: str, shard: Shard | None, count: ListingCount
) -> AsyncIterator[_Listed]:
    async for info in list_shard(ops.service.storage, bucket, prefix, shard, count):
        yield _Listed(info.key, info.size, info.etag)


async def _from_key_list(
    ops: Operations, location: str, shard: Shard | None
) -> AsyncIterator[_Listed]:
    async for key in read_keys(ops.service.storage, location, shard):
        yield _Listed(key)


async def _from_inventory(
    ops: Operations,
    location: str,
    bucket: str,
    shard: Shard | None,
    new_path: Callable[[], Path],
) -> AsyncIterator[_Listed]:
    storage = ops.service.storage
    manifest = await load_manifest(storage, location)
    if manifest.source_bucket != bucket:
        raise InvalidArgumentError(
            f"the inventory {location} lists bucket {manifest.source_bucket!r}, "
            f"not the source bucket {bucket!r}"
        )
    async for entry in read_entries(storage, manifest, shard, new_path):
        yield _Listed(entry.key, entry.size, entry.etag)


def _check_interval(seconds: object) -> float:
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, int | float)
        or not math.isfinite(seconds)
        or seconds <= 0
    ):
        raise InvalidArgumentError(f"report_interval must be seconds > 0, got {seconds!r}")
    return float(seconds)


async def migrate(
    ops: Operations,
    source_url: str,
    dest_url: str,
    *,
    include: Iterable[str] = (),
    exclude: Iterable[str] = (),
    dry_run: bool = False,
    shard: ShardSpec = None,
    shards: int | None = None,
    environ: Mapping[str, str] | None = None,
    from_list: str | None = None,
    inventory: str | None = None,
    report: str | None = None,
    report_interval: float = 30.0,
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
    if any ``include`` is given, at least one of them (exclude wins). ``dry_run`` reads
    the listing and the metadata only and writes nothing: it fills ``planned`` and
    ``skipped``.

    Sharding: ``shard=(k, n)`` does part ``k`` of ``n``; ``shard="auto"`` takes ``k`` from
    ``JOB_COMPLETION_INDEX`` or ``AWS_BATCH_JOB_ARRAY_INDEX`` in ``environ`` and ``n`` from
    ``shards`` or ``AWS_BATCH_JOB_ARRAY_SIZE``. ``n`` runs with ``k = 0 .. n-1`` cover
    every object exactly once, each reading only its part of the source:

    * ``from_list`` (a local path or ``s3://`` URL of a text file, one key of the source
      bucket a line): shard ``k`` reads the ``k``-th ``1/n`` of the file's bytes;
    * ``inventory`` (the ``manifest.json`` of an S3 Inventory report in CSV format, local
      or ``s3://``): shard ``k`` reads its share of the report's data files;
    * neither: a listing cut by prefix (:func:`~.partitioned_listing.list_shard`); a
      directory is never split between shards.

    ``report`` (an ``s3://`` prefix or a local directory) keeps this run's report there as
    JSON (see :mod:`.shard_report`), rewritten atomically every ``report_interval``
    seconds and at the end; a rerun of the same shard resumes from it.

    At most ``max_concurrency`` objects (default: the client's) are in flight; the first
    object of each destination deltaspace creates its reference while the others of that
    space wait. ``max_ratio`` applies to every object. ``progress`` is called after each
    object. Per-object failures are reported in ``failed``, never raised.

    Raises, before copying anything, :class:`InvalidURLError`, :class:`InvalidRatioError`,
    :class:`InvalidArgumentError` (overlapping prefixes, a bad ``shard``, no shard in the
    environment for ``"auto"``, both ``from_list`` and ``inventory``, a bad key list,
    inventory or report, patterns or ``max_concurrency``), :class:`NotFoundError` for a
    missing key list or inventory and :class:`BucketNotFoundError` for a missing source or
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
    checked_shard = check_shard(shard, shards, environ)
    if from_list is not None and inventory is not None:
        raise InvalidArgumentError("give a key list or an inventory, not both")
    interval = _check_interval(report_interval)
    included, excluded = _patterns("include", include), _patterns("exclude", exclude)
    limit = concurrency_limit(ops, max_concurrency)
    storage = ops.service.storage
    try:
        await storage.head_bucket(dst.bucket)
    except AccessDeniedError:
        pass  # prefix-scoped credentials may not HEAD the bucket; the writes will tell
    source_name = f"s3://{src.bucket}/{src_prefix}"
    dest_name = f"s3://{dst.bucket}/{dst_prefix}"

    work = ScratchDir("migrate")

    def new_path() -> Path:
        return work.new_path("object")

    count = ListingCount()
    listed: AsyncIterator[_Listed]
    if from_list is not None:
        listed = _from_key_list(ops, from_list, checked_shard)
        source_input = f"key list {from_list}"
    elif inventory is not None:
        listed = _from_inventory(ops, inventory, src.bucket, checked_shard, new_path)
        source_input = f"inventory {inventory}"
    else:
        listed = _from_listing(ops, src.bucket, src_prefix, checked_shard, count)
        source_input = "listing"
    shard_report: ShardReport | None = None
    if report is not None:
        shard_report = ShardReport(
            storage,
            report_location(report, checked_shard),
            source=source_name,
            destination=dest_name,
            shard=checked_shard,
            source_input=source_input,
        )
    try:
        if shard_report is not None:
            await shard_report.load()
        sources = await _list_sources(
            ops,
            src.bucket,
            src_prefix,
            listed,
            included,
            excluded,
            refuse_outside=from_list is not None,
        )
        if shard_report is not None:
            shard_report.list_requests = count.requests
        jobs = [
            _job(
                ops,
                src.bucket,
                item,
                dst,
                dst_prefix,
                ratio,
                dry_run,
                new_path,
                shard_report,
                check_direct=source_input != "listing",
            )
            for item in sources
        ]
        results = await _run(jobs, limit, progress, shard_report, interval, dry_run)
    finally:
        if work.created is not None:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(work.remove)
    return _report(
        source_name,
        dest_name,
        dry_run,
        results,
        shard=checked_shard,
        list_requests=count.requests,
        report_url=None if shard_report is None else shard_report.location,
    )


def _job(
    ops: Operations,
    bucket: str,
    item: _Source,
    dst: S3Url,
    dst_prefix: str,
    ratio: float | None,
    dry_run: bool,
    new_path: Callable[[], Path],
    shard_report: ShardReport | None,
    *,
    check_direct: bool,
) -> Job[_Outcome]:
    target = ObjectKey(dst.bucket, dst_prefix + item.relative)
    source_url = f"s3://{bucket}/{item.stored_key}"
    copy = _copier(
        ops,
        ObjectKey(bucket, item.stored_key),
        target,
        ratio,
        dry_run,
        new_path,
        item.refused,
        check_direct=check_direct,
    )
    if shard_report is None or dry_run:
        return Job(source=source_url, destination=target.url, run=copy, group=target.space)
    if shard_report.done_before(source_url, item.etag, item.size):
        shard_report.carry_over(source_url)

        async def done() -> _Outcome:
            return _Outcome("skipped")

        return Job(source=source_url, destination=target.url, run=done)

    async def run() -> _Outcome:
        record: dict[str, Any] = {
            "source": source_url,
            "destination": target.url,
            "etag": item.etag,
            "size": item.size,
        }
        try:
            outcome = await copy()
        except Exception as exc:
            error = item_error(exc)
            shard_report.record({**record, "outcome": "failed", **_error_fields(error)})
            raise
        record["outcome"] = outcome.action
        if outcome.summary is not None:
            record["stored_as"] = outcome.summary.operation
            record["stored_size"] = outcome.summary.stored_size
        if outcome.action == "refused":
            record.update(_error_fields(_refusal(source_url, outcome)))
        shard_report.record(record)
        return outcome

    return Job(source=source_url, destination=target.url, run=run, group=target.space)


def _error_fields(error: DeltaGliderError) -> dict[str, Any]:
    return {
        "error": " ".join(str(error).split()),
        "code": error.response["Error"]["Code"],
        "transient": is_transient(error),
    }


async def _run(
    jobs: list[Job[_Outcome]],
    limit: int,
    progress: ProgressCallback | None,
    shard_report: ShardReport | None,
    interval: float,
    dry_run: bool,
) -> list[ItemResult[_Outcome]]:
    """Run the jobs; with a report, save it every ``interval`` seconds and at the end."""

    def size_of(outcome: _Outcome) -> int:
        return outcome.size if outcome.action == "migrated" else 0

    if shard_report is None or dry_run:
        return await run_jobs(jobs, limit=limit, progress=progress, size_of=size_of)
    report = shard_report

    async def checkpoints() -> None:
        while True:
            await anyio.sleep(interval)
            try:
                await report.save("running")
            except DeltaGliderError as exc:
                # A missed checkpoint costs only a longer resume; the final save must work.
                _log.warning("could not save the migration report: %s", exc)

    finished = False
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(checkpoints)
            results = await run_jobs(jobs, limit=limit, progress=progress, size_of=size_of)
            tg.cancel_scope.cancel()
        finished = True
    finally:
        if not finished:
            # Interrupted: keep what is done for the rerun, within a bound.
            with anyio.CancelScope(shield=True), anyio.move_on_after(10):
                try:
                    await report.save("running")
                except DeltaGliderError as exc:
                    _log.warning("could not save the migration report: %s", exc)
    await report.save("complete")
    return results


def _refusal(source: str, outcome: _Outcome) -> DeltaGliderError:
    if outcome.missing:
        return ObjectNotFoundError(f"{source} is not migrated: {outcome.reason}")
    return ReservedKeyError(f"{source} is not migrated: {outcome.reason}")


def _copier(
    ops: Operations,
    source: ObjectKey,
    target: ObjectKey,
    ratio: float | None,
    dry_run: bool,
    new_path: Callable[[], Path],
    refused: str,
    *,
    check_direct: bool,
) -> Callable[[], Awaitable[_Outcome]]:
    service = ops.service

    async def run() -> _Outcome:
        if refused:
            return _Outcome("refused", reason=refused)
        check_user_key(target.key)
        found = await _probe(service.storage, source.bucket, (source.key,))
        if found is None:
            return _Outcome(
                "refused", reason="it no longer exists (deleted since it was listed)", missing=True
            )
        resolved = found
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
        if check_direct and role(source.key) is KeyRole.DELTA:
            # A list may name x.delta without x (or on another shard's share): x, when it
            # exists, is what reads return and what is migrated.
            direct = await service.storage.head(source.bucket, logical_key(source.key))
            if direct is not None:
                return _Outcome("refused", reason=hidden.shadowed_reason(direct.key))
        existing = await _probe(service.storage, target.bucket, stored_keys(target.key))
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


async def _probe(
    storage: StoragePort, bucket: str, candidates: tuple[str, ...]
) -> ResolvedObject | None:
    """The first of ``candidates`` (stored forms, in read order) that exists; one HEAD each,
    concurrently.

    Cheaper than the service's ``resolve``, which looks twice and HEADs the bucket before
    saying "not found": here a miss only means one more copy (the destination bucket was
    checked first), and a source key comes from a listing.
    """
    heads: dict[str, ObjectHead | None] = {}

    async def head(key: str) -> None:
        heads[key] = await storage.head(bucket, key)

    with single_errors():
        async with anyio.create_task_group() as tg:
            for key in candidates:
                tg.start_soon(head, key)
    found = [key for key in candidates if heads[key] is not None]
    if not found:
        return None
    first = heads[found[0]]
    assert first is not None
    return ResolvedObject(
        ObjectKey(bucket, found[0]),
        logical_key(found[0]),
        first,
        meta_codec.decode(first),
        shadowed=found[1] if len(found) > 1 else None,
    )


def _report(
    source: str,
    destination: str,
    dry_run: bool,
    results: list[ItemResult[_Outcome]],
    *,
    shard: Shard | None,
    list_requests: int,
    report_url: str | None,
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
            error = _refusal(result.source, outcome)
            refused.append(ItemResult(result.source, result.destination, None, error))
        else:
            planned.append(ItemResult(result.source, result.destination))
    _log.info(
        "migration %s -> %s%s: %d migrated, %d skipped, %d failed, %d planned, %d refused",
        source,
        destination,
        "" if shard is None else f" (shard {shard})",
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
        shard=shard,
        list_requests=list_requests,
        report_url=report_url,
    )
