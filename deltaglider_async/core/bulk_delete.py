"""Deleting many objects: a batch of named keys, or everything under a prefix.

Both remove the stored objects with the storage port's batch delete (which sends
DeleteObjects requests of at most 1,000 keys, or one DeleteObject per key where a store or
a key needs it), then drop the references their last deltas leave unused. A
``reference.bin`` named in a batch is deleted only when no delta needs it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .._errors import (
    AccessDeniedError,
    DeltaGliderError,
    ObjectNotFoundError,
    ReservedKeyError,
)
from .._models import DeltaSpace, ObjectKey
from .keys import KeyRole, role
from .pool import for_each
from .reads import ResolvedObject
from .service import AsyncDeltaService

__all__ = [
    "BatchDeleteResult",
    "DeleteError",
    "RecursiveDeleteResult",
    "delete_keys",
    "delete_prefix",
    "delete_reference",
    "drop_unused",
]


@dataclass(frozen=True, slots=True)
class DeleteError:
    """One key that could not be deleted: S3's ``Key``, ``Code`` and ``Message``."""

    key: str
    code: str
    message: str


@dataclass(slots=True)
class BatchDeleteResult:
    """What :func:`delete_keys` did: keys deleted (in request order; S3 counts missing keys
    as deleted), per-key errors, and counts by stored form."""

    deleted: list[str] = field(default_factory=list)
    errors: list[DeleteError] = field(default_factory=list)
    deltas: int = 0
    direct: int = 0
    references: int = 0


@dataclass(slots=True)
class RecursiveDeleteResult:
    """What :func:`delete_prefix` did: stored keys deleted, failures, counts by form."""

    deleted: list[str] = field(default_factory=list)
    errors: list[DeleteError] = field(default_factory=list)
    deltas: int = 0
    references: int = 0

    @property
    def other(self) -> int:
        """Deleted keys that were neither deltas nor references."""
        return len(self.deleted) - self.deltas - self.references


async def drop_unused(
    service: AsyncDeltaService, spaces: set[DeltaSpace], concurrency: int
) -> set[DeltaSpace]:
    """Drop the references of ``spaces`` left without deltas; return those dropped."""
    dropped: set[DeltaSpace] = set()

    async def drop(space: DeltaSpace) -> None:
        if await service.drop_unused_reference(space):
            dropped.add(space)

    await for_each(sorted(spaces, key=lambda s: s.prefix), drop, concurrency)
    return dropped


async def delete_reference(service: AsyncDeltaService, space: DeltaSpace) -> bool:
    """Delete ``space``'s reference if no delta needs it; False if it does not exist.

    Raises :class:`ReservedKeyError` while deltas still depend on it.
    """
    if await service.drop_unused_reference(space):
        return True
    if await service.storage.head(space.bucket, space.reference_key) is not None:
        raise ReservedKeyError(
            f"s3://{space.bucket}/{space.reference_key} is still the reference of deltas "
            "in its deltaspace; it is deleted automatically with the last of them"
        )
    return False


def _error(key: str, exc: DeltaGliderError) -> DeleteError:
    code = "AccessDenied" if isinstance(exc, AccessDeniedError) else type(exc).__name__
    return DeleteError(key, code, str(exc))


async def delete_keys(
    service: AsyncDeltaService, bucket: str, requested: list[str], concurrency: int
) -> BatchDeleteResult:
    """Delete ``requested`` keys (logical or ``.delta`` names, or ``reference.bin``).

    Keys are resolved ``concurrency`` at a time, the stored objects deleted in batches,
    and references left without deltas dropped. A ``reference.bin`` still needed is
    reported with the code ``ReferenceInUse``.
    """
    result = BatchDeleteResult()
    refs = [k for k in requested if role(k) is KeyRole.REFERENCE]
    others = list(dict.fromkeys(k for k in requested if k not in refs))
    resolved: dict[str, ResolvedObject | None] = {}

    async def resolve(key: str) -> None:
        try:
            resolved[key] = await service.resolve(ObjectKey(bucket, key))
        except ObjectNotFoundError:
            resolved[key] = None
        except DeltaGliderError as exc:
            result.errors.append(_error(key, exc))

    await for_each(others, resolve, concurrency)
    owners: dict[str, list[str]] = {}
    for key in others:
        if key not in resolved:
            continue  # resolving it failed: already in errors
        found = resolved[key]
        if found is None:
            result.deleted.append(key)  # S3 reports missing keys as deleted
        else:
            owners.setdefault(found.stored.key, []).append(key)
    await _delete_stored(service, bucket, owners, result, concurrency)
    await _delete_references(service, bucket, refs, result)
    order = {key: i for i, key in enumerate(requested)}
    result.deleted.sort(key=order.__getitem__)
    result.errors.sort(key=lambda e: order[e.key])
    return result


async def _delete_stored(
    service: AsyncDeltaService,
    bucket: str,
    owners: dict[str, list[str]],
    result: BatchDeleteResult,
    concurrency: int,
) -> None:
    failures = await service.storage.delete_many(bucket, list(owners))
    failed = {f.key: f for f in failures}
    spaces: set[DeltaSpace] = set()
    for key, requested in owners.items():
        if key in failed:
            failure = failed[key]
            result.errors.extend(DeleteError(k, failure.code, failure.message) for k in requested)
            continue
        result.deleted.extend(requested)
        if role(key) is KeyRole.DELTA:
            result.deltas += 1
            spaces.add(ObjectKey(bucket, key).space)
        else:
            result.direct += 1
    result.references += len(await drop_unused(service, spaces, concurrency))


async def _delete_references(
    service: AsyncDeltaService, bucket: str, refs: list[str], result: BatchDeleteResult
) -> None:
    for key in dict.fromkeys(refs):
        try:
            deleted = await delete_reference(service, ObjectKey(bucket, key).space)
        except ReservedKeyError as exc:
            result.errors.append(DeleteError(key, "ReferenceInUse", str(exc)))
            continue
        except DeltaGliderError as exc:
            result.errors.append(_error(key, exc))
            continue
        result.references += int(deleted)
        result.deleted.append(key)


async def delete_prefix(
    service: AsyncDeltaService, bucket: str, prefix: str, concurrency: int
) -> RecursiveDeleteResult:
    """Delete every stored key under ``prefix`` (hidden ones included), then the
    references outside it that the prefix's deltas were the last to need."""
    storage = service.storage
    keys = [info.key async for info in storage.iter_objects(bucket, prefix)]
    failures = await storage.delete_many(bucket, keys)
    failed = {f.key for f in failures}
    result = RecursiveDeleteResult(
        deleted=[k for k in keys if k not in failed],
        errors=[DeleteError(f.key, f.code, f.message) for f in failures],
    )
    gone = set(result.deleted)
    spaces = {
        ObjectKey(bucket, k).space
        for k in result.deleted
        if role(k) is KeyRole.DELTA and ObjectKey(bucket, k).space.reference_key not in gone
    }
    dropped = await drop_unused(service, spaces, concurrency)
    result.references = sum(1 for k in result.deleted if role(k) is KeyRole.REFERENCE)
    result.deltas = sum(1 for k in result.deleted if role(k) is KeyRole.DELTA)
    result.deleted.extend(space.reference_key for space in sorted(dropped, key=lambda s: s.prefix))
    result.references += len(dropped)
    return result
