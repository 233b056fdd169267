"""Bucket statistics (SPEC §5): one LIST of the whole bucket, HEADs as the mode asks, a cache.

The cache lives in the bucket itself, one object per mode, at
``.deltaglider/stats_{mode}.json``::

    {"version": "1.0", "mode": "detailed", "computed_at": "2025-01-01T00:00:00.000000Z",
     "validation": {"object_count": 123, "compressed_size": 456789},
     "stats": {"bucket": ..., "object_count": ..., ... every BucketStats field}}

``validation`` describes the listing the figures were computed from: the number of stored
objects and the sum of their sizes, ``.deltaglider/`` itself excluded (references
included). A cache is used only while the current listing gives the same two numbers.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal

from .._errors import DeltaGliderError, InvalidArgumentError, ObjectNotFoundError
from .._models import INTERNAL_PREFIX, BucketStats, DirectoryStats
from ..ports.logger import LOGGER_NAME
from ..ports.storage import StoragePort
from . import metadata as meta_codec
from .keys import KeyRole, logical_key, reference_generation, reference_space_prefix, role
from .operations import Operations
from .pool import Job, run_jobs

__all__ = [
    "CACHE_VERSION",
    "STATS_MODES",
    "StatsMode",
    "cache_key",
    "get_bucket_stats",
    "get_directory_stats",
]

_log = logging.getLogger(LOGGER_NAME)

StatsMode = Literal["quick", "sampled", "detailed"]
STATS_MODES: Final[tuple[str, ...]] = ("quick", "sampled", "detailed")
CACHE_VERSION: Final = "1.0"
#: A stats cache larger than this is not ours: it is ignored (and then replaced).
_MAX_CACHE_BYTES: Final = 1024 * 1024
_STATS_FIELDS: Final = tuple(f.name for f in dataclasses.fields(BucketStats))


def cache_key(mode: str) -> str:
    """The key of the stats cache of ``mode``: ``.deltaglider/stats_{mode}.json``."""
    return f"{INTERNAL_PREFIX}stats_{mode}.json"


@dataclass(slots=True)
class _Delta:
    key: str
    size: int
    last_modified: datetime | None = None
    original: int | None = None  # exact, from a HEAD
    created_at: datetime | None = None  # dg-created-at, from a HEAD


@dataclass(slots=True)
class _Space:
    reference_size: int | None = None  # of the first reference.bin
    deltas: list[_Delta] = field(default_factory=list)
    references: int = 0  # the first and every later one
    reference_bytes: int = 0
    direct_objects: int = 0
    direct_bytes: int = 0


@dataclass(slots=True)
class _Listing:
    """What one pass over the bucket's listing tells."""

    stored_objects: int = 0
    stored_bytes: int = 0
    direct_objects: int = 0
    direct_bytes: int = 0
    spaces: dict[str, _Space] = field(default_factory=dict)

    @property
    def validation(self) -> dict[str, int]:
        return {"object_count": self.stored_objects, "compressed_size": self.stored_bytes}


async def _scan(storage: StoragePort, bucket: str) -> _Listing:
    """Page through the whole bucket (no object cap); BucketNotFoundError when missing.

    Objects are counted as listings show them: one per logical name (when a name exists
    both direct and as a delta, only the direct one counts, as a read returns it), every
    stored byte counted once.
    """
    listing = _Listing()
    direct_names: set[str] = set()
    by_dir: dict[str, list[int]] = {}
    async for info in storage.iter_objects(bucket):
        kind = role(info.key)
        if kind is KeyRole.INTERNAL:
            continue
        listing.stored_objects += 1
        listing.stored_bytes += info.size
        directory = info.key[: info.key.rfind("/") + 1]
        if kind is KeyRole.REFERENCE:
            space = listing.spaces.setdefault(_reference_dir(info.key), _Space())
            space.references += 1
            space.reference_bytes += info.size
            if reference_generation(info.key) == 0:
                space.reference_size = info.size
        elif kind is KeyRole.DELTA:
            listing.spaces.setdefault(directory, _Space()).deltas.append(
                _Delta(info.key, info.size, info.last_modified)
            )
        else:
            listing.direct_objects += 1
            listing.direct_bytes += info.size
            direct_names.add(info.key)
            # Counted per directory only where deltaglider keeps deltas (added below).
            by_dir.setdefault(directory, []).append(info.size)
    for directory, space in listing.spaces.items():
        space.deltas = [d for d in space.deltas if logical_key(d.key) not in direct_names]
        sizes = by_dir.get(directory, [])
        space.direct_objects, space.direct_bytes = len(sizes), sum(sizes)
    return listing


def _reference_dir(key: str) -> str:
    """The directory (with its slash) whose deltas the reference ``key`` serves."""
    if reference_generation(key) == 0:
        return key[: key.rfind("/") + 1]
    prefix = reference_space_prefix(key)
    return f"{prefix}/" if prefix else ""


def _estimate(space: _Space, delta: _Delta) -> int:
    """The quick estimate of a delta's original size: its reference's size.

    A delta whose reference is missing counts its own stored size (no saving claimed).
    """
    if space.reference_size is not None:
        return space.reference_size
    return delta.size


async def _fetch_originals(ops: Operations, bucket: str, deltas: list[_Delta]) -> None:
    """HEAD ``deltas`` with the client's metadata bound; set their exact original size."""
    storage = ops.service.storage

    def job(delta: _Delta) -> Job[None]:
        async def run() -> None:
            head = await storage.head(bucket, delta.key)
            if head is None:
                return  # deleted since the LIST: keep the estimate
            meta = meta_codec.decode(head)
            if meta.kind is meta_codec.ObjectKind.DELTA and meta.file_size is not None:
                delta.original = meta.file_size
            delta.created_at = meta.created_at

        return Job(source=f"s3://{bucket}/{delta.key}", destination="", run=run)

    results = await run_jobs([job(d) for d in deltas], limit=ops.metadata_concurrency)
    for result in results:
        if result.error is not None:
            # A HEAD that still fails after the client's retries: no figure at all is
            # better than a silently wrong one.
            raise result.error


def _sample(space: _Space) -> _Delta:
    """The delta a sampled run HEADs: the largest (least likely a zero-diff), last on ties."""
    return max(reversed(space.deltas), key=lambda d: d.size)


def _originals(space: _Space, mode: str) -> int:
    """The original bytes of the deltas of ``space``: exact where HEADed, else estimated."""
    sample = _sample(space) if mode == "sampled" and space.deltas else None
    total = 0
    for delta in space.deltas:
        if delta.original is not None:
            total += delta.original
        elif sample is not None and sample.original is not None:
            # Versions in one deltaspace are about the same size, while their delta
            # sizes differ by orders of magnitude (the first is a zero-diff): reuse
            # the sample's original-to-reference ratio, i.e. its original size.
            total += sample.original
        else:
            total += _estimate(space, delta)
    return total


def _compute(bucket: str, mode: str, listing: _Listing) -> BucketStats:
    delta_objects = 0
    delta_originals = 0
    for space in listing.spaces.values():
        delta_objects += len(space.deltas)
        delta_originals += _originals(space, mode)
    total_size = listing.direct_bytes + delta_originals
    compressed_size = listing.stored_bytes
    # References cost more than deltas save when a directory holds a single file (its
    # reference plus a zero-diff delta) or a reference no delta needs any more: saved
    # space is then zero, never negative.
    space_saved = max(0, total_size - compressed_size)
    return BucketStats(
        bucket=bucket,
        object_count=delta_objects + listing.direct_objects,
        total_size=total_size,
        compressed_size=compressed_size,
        space_saved=space_saved,
        average_compression_ratio=space_saved / total_size if total_size > 0 else 0.0,
        delta_objects=delta_objects,
        direct_objects=listing.direct_objects,
        mode=mode,
    )


def _stats_from_cache(
    document: Any, bucket: str, mode: str, validation: Mapping[str, int]
) -> BucketStats | None:
    """The cached stats if ``document`` is a valid cache of ``mode`` for this listing."""
    if not isinstance(document, dict):
        return None
    if document.get("version") != CACHE_VERSION or document.get("mode") != mode:
        return None
    cached = document.get("validation")
    if not isinstance(cached, dict) or any(
        type(cached.get(name)) is not int or cached.get(name) != value
        for name, value in validation.items()
    ):
        return None
    stats = document.get("stats")
    if not isinstance(stats, dict):
        return None
    values: dict[str, Any] = {}
    for name in _STATS_FIELDS:
        value = stats.get(name)
        if name == "bucket":
            value = bucket  # the figures describe this bucket even if it was copied
        elif name == "mode":
            value = mode
        elif name == "average_compression_ratio":
            if isinstance(value, bool) or not isinstance(value, int | float):
                return None
            value = float(value)
        elif type(value) is not int:
            return None
        values[name] = value
    return BucketStats(**values)


async def _read_cache(storage: StoragePort, bucket: str, mode: str) -> Any:
    """The parsed cache document of ``mode``, or None when absent or unreadable."""
    try:
        body = await storage.open(bucket, cache_key(mode))
    except ObjectNotFoundError:
        return None
    try:
        if body.content_length > _MAX_CACHE_BYTES:
            return None
        raw = await body.read()
    finally:
        await body.aclose()
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        _log.warning("ignoring an unreadable stats cache s3://%s/%s", bucket, cache_key(mode))
        return None


async def _write_cache(ops: Operations, bucket: str, stats: BucketStats, listing: _Listing) -> None:
    document = {
        "version": CACHE_VERSION,
        "mode": stats.mode,
        "computed_at": meta_codec.format_timestamp(ops.service.clock.now()),
        "validation": listing.validation,
        "stats": dataclasses.asdict(stats),
    }
    data = json.dumps(document, indent=2, sort_keys=False).encode("utf-8")
    try:
        await ops.service.storage.put_bytes(
            bucket, cache_key(stats.mode), data, content_type="application/json"
        )
    except DeltaGliderError as exc:
        # The figures are right; only the next call will be slower (read-only
        # credentials cannot write the cache).
        _log.warning("could not write the stats cache of s3://%s: %s", bucket, exc)


async def get_bucket_stats(
    ops: Operations,
    bucket: str,
    mode: StatsMode = "quick",
    use_cache: bool = True,
    refresh_cache: bool = False,
) -> BucketStats:
    """Storage statistics of ``bucket``: how much was stored and how much it occupies.

    The whole bucket is listed once (every page, no object cap); ``.deltaglider/`` is
    ignored. Stored objects are classified by key: ``reference.bin`` files (a deltaspace's
    reference), ``*.delta`` (deltas) and everything else (direct objects, including plain
    S3 objects deltaglider did not write). The figures:

    * ``object_count``: logical objects, ``delta_objects + direct_objects``; references
      are not counted (they are no user file).
    * ``delta_objects`` / ``direct_objects``: the number of deltas / direct objects.
    * ``compressed_size``: bytes actually stored: deltas, direct objects *and*
      references.
    * ``total_size``: the original size of every logical object: a direct object's
      stored size plus each delta's original size, which depends on ``mode``:

      - ``"quick"`` (LIST only): estimated as the size of the delta's reference (a delta
        whose reference is missing counts its own size);
      - ``"sampled"``: one HEAD per deltaspace, of its largest delta, gives that delta's
        exact original size (``dg-file-size``); the other deltas of the space reuse the
        sample's ratio to the reference, i.e. they are estimated at the sample's size
        (versions of one artifact are about the same size, while delta sizes vary by
        orders of magnitude, so a delta/original ratio would extrapolate badly);
      - ``"detailed"``: every delta is HEADed (concurrently, at most the client's
        ``metadata_concurrency`` at a time: 32 by default, ``max_concurrency`` when set)
        for its exact original size.

    * ``space_saved``: ``total_size - compressed_size``, or 0 when references cost more
      than the deltas save (a directory with a single file, a reference left behind by
      another tool): never negative.
    * ``average_compression_ratio``: ``space_saved / total_size`` (0.0 for an empty
      bucket): the share of the original bytes not stored, in ``[0.0, 1.0]``.

    Caching: with ``use_cache`` (default) a valid ``.deltaglider/stats_{mode}.json`` is
    returned instead of computing (valid: same version and mode, and its ``validation``
    equals this listing's stored object count and byte total, ``.deltaglider/``
    excluded); otherwise the figures are computed and the cache written. With
    ``refresh_cache`` they are always computed, then written. ``use_cache=False`` neither
    reads nor writes the cache. Failing to write the cache is logged, not raised.

    Raises :class:`BucketNotFoundError` for a missing bucket (never zeros),
    :class:`InvalidArgumentError` for an unknown ``mode``, :class:`AccessDeniedError`,
    and :class:`StorageError` when a LIST or HEAD still fails after retries.
    """
    if not isinstance(bucket, str) or not bucket:
        raise InvalidArgumentError(f"bucket must be a non-empty str, got {bucket!r}")
    if mode not in STATS_MODES:
        raise InvalidArgumentError(f"mode must be one of {', '.join(STATS_MODES)}, got {mode!r}")
    storage = ops.service.storage
    listing = await _scan(storage, bucket)
    if use_cache and not refresh_cache:
        cached = _stats_from_cache(
            await _read_cache(storage, bucket, mode), bucket, mode, listing.validation
        )
        if cached is not None:
            _log.debug("bucket stats of s3://%s (%s) served from the cache", bucket, mode)
            return cached
    if mode == "detailed":
        await _fetch_originals(ops, bucket, [d for s in listing.spaces.values() for d in s.deltas])
    elif mode == "sampled":
        await _fetch_originals(
            ops, bucket, [_sample(s) for s in listing.spaces.values() if s.deltas]
        )
    stats = _compute(bucket, mode, listing)
    if use_cache:
        await _write_cache(ops, bucket, stats, listing)
    return stats


#: Deltas per directory whose exact ratio ``get_directory_stats`` reads by default.
RECENT_DELTAS: Final = 5


def _candidates(space: _Space, recent: int) -> list[_Delta]:
    """The deltas that may be among the ``recent`` newest of ``space``: the newest by
    LastModified, and every delta tied with the last of them (LastModified has a
    one-second resolution, and ``rebase`` rewrites many deltas in one second)."""
    if recent <= 0:
        return []
    stamps = sorted((d.last_modified for d in space.deltas if d.last_modified), reverse=True)
    if len(stamps) < len(space.deltas) or len(stamps) <= recent:
        return list(space.deltas)
    cut = stamps[recent - 1]
    return [d for d in space.deltas if d.last_modified is not None and d.last_modified >= cut]


def _recent(candidates: list[_Delta], recent: int) -> list[_Delta]:
    """The ``recent`` most recently written of the HEADed ``candidates``: by the write's
    own time (``dg-created-at``), else LastModified, then key."""

    def written(d: _Delta) -> tuple[float, str]:
        moment = d.created_at or d.last_modified
        return (moment.timestamp() if moment is not None else 0.0, d.key)

    return sorted(candidates, key=written)[-recent:] if recent > 0 else []


def _directory(
    bucket: str, prefix: str, space: _Space, recent: list[_Delta], mode: str
) -> DirectoryStats:
    originals = _originals(space, mode)
    ratios = [d.size / d.original for d in recent if d.original]
    return DirectoryStats(
        bucket=bucket,
        prefix=prefix,
        references=space.references,
        reference_bytes=space.reference_bytes,
        delta_objects=len(space.deltas),
        direct_objects=space.direct_objects,
        stored_bytes=space.reference_bytes + sum(d.size for d in space.deltas) + space.direct_bytes,
        original_bytes=originals + space.direct_bytes,
        worst_recent_ratio=max(ratios) if ratios else None,
        recent=len(recent),
    )


async def get_directory_stats(
    ops: Operations,
    bucket: str,
    prefix: str = "",
    mode: StatsMode = "quick",
    recent: int = RECENT_DELTAS,
) -> list[DirectoryStats]:
    """Per-directory figures of ``bucket`` (under ``prefix``): which directories drift.

    One LIST of the bucket (every page), then HEADs, at most the client's
    ``metadata_concurrency`` at a time: of the ``recent`` most recently written deltas of
    each directory (their exact delta/original ratios give
    :attr:`~deltaglider_async.DirectoryStats.worst_recent_ratio`), plus what ``mode`` asks
    (as :func:`get_bucket_stats`: ``"sampled"`` one delta per directory, ``"detailed"``
    every delta). Only directories holding references or deltas are reported, in key
    order. Not cached.

    Raises :class:`BucketNotFoundError`, :class:`InvalidArgumentError` (bad bucket, prefix,
    mode or a negative ``recent``), :class:`StorageError`.
    """
    if not isinstance(bucket, str) or not bucket:
        raise InvalidArgumentError(f"bucket must be a non-empty str, got {bucket!r}")
    if not isinstance(prefix, str):
        raise InvalidArgumentError(f"prefix must be a str, got {prefix!r}")
    if mode not in STATS_MODES:
        raise InvalidArgumentError(f"mode must be one of {', '.join(STATS_MODES)}, got {mode!r}")
    if isinstance(recent, bool) or not isinstance(recent, int) or recent < 0:
        raise InvalidArgumentError(f"recent must be an int >= 0, got {recent!r}")
    listing = await _scan(ops.service.storage, bucket)
    spaces = {d: s for d, s in sorted(listing.spaces.items()) if d.startswith(prefix)}
    chosen = {d: _candidates(s, recent) for d, s in spaces.items()}
    wanted: dict[str, _Delta] = {}
    for directory, space in spaces.items():
        if mode == "detailed":
            picked = list(space.deltas)
        elif mode == "sampled" and space.deltas:
            picked = [*chosen[directory], _sample(space)]
        else:
            picked = chosen[directory]
        wanted.update((d.key, d) for d in picked)
    await _fetch_originals(ops, bucket, list(wanted.values()))
    return [_directory(bucket, d, s, _recent(chosen[d], recent), mode) for d, s in spaces.items()]
