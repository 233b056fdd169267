"""Deleting a logical object, and the reference its last delta leaves behind.

A name may transiently exist in both forms (``x`` and ``x.delta``) while a replacement is
settled; deleting the name removes both, so no older version becomes visible. The
directory's reference goes when the deleted delta was the last one needing it.
"""

from __future__ import annotations

from dataclasses import dataclass

from .._models import ObjectKey, StoredAs
from .context import CoreContext
from .keys import KeyRole, role
from .reads import Reader
from .references import ReferenceStore

__all__ = ["DeleteSummary", "Deleter"]


@dataclass(frozen=True, slots=True)
class DeleteSummary:
    """What :meth:`AsyncDeltaService.delete` removed."""

    bucket: str
    key: str
    logical_key: str
    stored_as: StoredAs
    reference_deleted: bool


class Deleter:
    """Deletes logical objects; one per service."""

    def __init__(self, ctx: CoreContext, reader: Reader, refs: ReferenceStore) -> None:
        self._ctx = ctx
        self._reader = reader
        self._refs = refs

    async def delete(self, key: ObjectKey) -> DeleteSummary:
        """Delete a logical object (every stored form of it); its reference goes with its
        last delta. Raises ``ObjectNotFoundError`` when there is nothing to delete."""
        resolved = await self._reader.resolve(key)
        bucket = resolved.stored.bucket
        stored = [resolved.stored.key]
        if resolved.shadowed is not None:
            stored.append(resolved.shadowed)
        for stored_key in stored:
            await self._ctx.storage.delete(bucket, stored_key)
        reference_deleted = False
        if any(role(k) is KeyRole.DELTA for k in stored):
            reference_deleted = await self._refs.drop_unused(resolved.stored.space)
        return DeleteSummary(
            bucket=bucket,
            key=resolved.stored.key,
            logical_key=resolved.logical_key,
            stored_as=resolved.stored_as,
            reference_deleted=reference_deleted,
        )
