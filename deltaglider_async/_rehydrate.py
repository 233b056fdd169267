"""Presigned URLs for deltas: a verified, expiring plain copy under ``.deltaglider/tmp/``.

A delta's stored bytes are an xdelta3 patch, useless to a plain HTTP client. To hand out a
link to the file itself, the delta is reconstructed and verified against its SHA-256, the
file is stored as a plain object under ``.deltaglider/tmp/`` (hidden from listings and
statistics), checked once more against what was uploaded, and that copy is presigned.

Copies are content-addressed and carry their expiry in their key::

    .deltaglider/tmp/<sha256 of the file>/<expiry, Unix seconds>/<file name>

so a second link to the same file reuses a copy that lives long enough, and
:func:`purge_expired` finds the expired ones from a listing alone (no HEAD per copy). A
bucket lifecycle rule on the prefix ``.deltaglider/tmp/`` (expire after one day more than
the longest link you hand out) removes them server side as well.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import anyio

from ._errors import IntegrityError, InvalidArgumentError
from ._models import INTERNAL_PREFIX, ObjectKey
from .core import metadata as meta_codec
from .core.keys import TEMP_PREFIX, parse_temp_copy, temp_copy_key
from .core.service import AsyncDeltaService, ResolvedObject
from .ports.storage import StoragePort

__all__ = ["TEMP_PREFIX", "PurgeResult", "purge_expired", "rehydrated_copy"]

#: Longest life of a presigned URL with SigV4 (seven days).
MAX_EXPIRES_IN: Final = 7 * 24 * 3600


@dataclass(frozen=True, slots=True)
class PurgeResult:
    """What :func:`purge_expired` removed: counts, bytes freed, and per-key errors."""

    deleted_count: int = 0
    expired_count: int = 0
    error_count: int = 0
    total_size_freed: int = 0
    duration_seconds: float = 0.0
    errors: list[str] = field(default_factory=list)


def check_expires_in(expires_in: object) -> int:
    """``expires_in`` if it is an int of seconds from 1 to 7 days (SigV4's limit for a
    presigned URL), else :class:`InvalidArgumentError`."""
    if (
        isinstance(expires_in, bool)
        or not isinstance(expires_in, int)
        or not 0 < expires_in <= MAX_EXPIRES_IN
    ):
        raise InvalidArgumentError(
            f"ExpiresIn must be an int of 1 to {MAX_EXPIRES_IN} seconds (SigV4's limit), "
            f"got {expires_in!r}"
        )
    return expires_in


async def rehydrated_copy(
    service: AsyncDeltaService,
    resolved: ResolvedObject,
    expires_in: int,
    path: Path,
) -> str:
    """The key of a verified plain copy of the delta ``resolved`` living ``expires_in`` s.

    Reuses a copy of the same bytes that lives long enough, else writes one. Raises
    :class:`IntegrityError` when the delta does not reconstruct to its SHA-256 or the
    uploaded copy does not read back as the bytes sent. ``path`` is a private temp file
    for the reconstruction, removed before returning.
    """
    check_expires_in(expires_in)
    storage = service.storage
    bucket = resolved.stored.bucket
    sha = resolved.meta.file_sha256
    name = resolved.logical_key.rpartition("/")[2]
    needed = int(time.time()) + expires_in
    if sha is not None:
        async for info in storage.iter_objects(bucket, f"{TEMP_PREFIX}{sha}/"):
            parsed = parse_temp_copy(info.key)
            if parsed is not None and parsed[1] >= needed and info.key.endswith("/" + name):
                return info.key
    try:
        summary = await service.reconstruct(resolved, path)
        # A minute longer than asked, so that the copy outlives every link made for it.
        key = temp_copy_key(summary.sha256, needed + 60, name)
        metadata = {
            "dg-rehydrated": "true",
            "dg-original-key": meta_codec.encode_name(resolved.logical_key),
            "dg-expires-at": str(needed + 60),
            "dg-file-sha256": summary.sha256,
            "dg-file-size": str(summary.size),
            "dg-compression": "none",
        }
        put = await storage.put_file(
            bucket,
            key,
            path,
            metadata=metadata,
            content_type=resolved.head.content_type,
        )
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.Path(path).unlink(missing_ok=True)
    head = await storage.head(bucket, key)
    if head is None or head.size != summary.size or head.etag != put.etag:
        raise IntegrityError(
            f"s3://{bucket}/{key}: the rehydrated copy of s3://{bucket}/{resolved.logical_key} "
            "does not read back as uploaded; no link was made"
        )
    return key


async def purge_expired(
    storage: StoragePort, bucket: str, *, now: float | None = None
) -> PurgeResult:
    """Delete the temporary copies of ``bucket`` whose expiry has passed."""
    started = time.monotonic()
    moment = time.time() if now is None else now
    expired: list[tuple[str, int]] = []
    async for info in storage.iter_objects(bucket, TEMP_PREFIX):
        parsed = parse_temp_copy(info.key)
        if parsed is not None and parsed[1] < moment:
            expired.append((info.key, info.size))
    errors: list[str] = []
    failures = {f.key: f for f in await storage.delete_many(bucket, [k for k, _ in expired])}
    for key, failure in failures.items():
        errors.append(f"{key}: {failure.code} {failure.message}")
    freed = sum(size for key, size in expired if key not in failures)
    return PurgeResult(
        deleted_count=len(expired) - len(failures),
        expired_count=len(expired),
        error_count=len(errors),
        total_size_freed=freed,
        duration_seconds=time.monotonic() - started,
        errors=errors,
    )


def check_key(key: ObjectKey) -> None:
    """Refuse deltaglider's own objects (``.deltaglider/``) as a file to link to."""
    if key.key.startswith(INTERNAL_PREFIX):
        raise InvalidArgumentError(f"{key.url} is one of deltaglider's internal objects")
