"""The read path (SPEC §4): resolve a name, reconstruct its bytes, verify them.

A logical name (``a.zip``) is stored as ``a.zip`` (direct or plain) or ``a.zip.delta``.
:meth:`Reader.resolve` HEADs both at once. A delta is decoded against the reference whose
SHA-256 it records (:meth:`~.references.ReferenceStore.fetch_for_delta`); every result is
checked against the recorded SHA-256 before it is handed out as final. An object whose
deltaglider metadata was lost is never handed out (:attr:`ResolvedObject.unreadable`).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import anyio
import anyio.to_thread

from .._errors import (
    DiffError,
    DiffToolNotFoundError,
    IntegrityError,
    ObjectNotFoundError,
    UnverifiableObjectError,
    single_errors,
    translating_local,
)
from .._models import GetSummary, ObjectKey, StoredAs, VerifyResult
from ..ports.hash import FileDigest
from ..ports.storage import ObjectHead
from . import metadata as meta_codec
from .context import CHUNK, CoreContext, partial_path, remove_quietly
from .keys import logical_key, stored_keys
from .references import ReferenceStore

__all__ = ["Reader", "ResolvedObject"]


@dataclass(frozen=True, slots=True)
class ResolvedObject:
    """A logical name resolved to the stored object that holds it.

    ``shadowed`` is the name's other stored form when both exist (a replacement was
    interrupted): reads use ``stored``, deletes remove both.
    """

    stored: ObjectKey
    logical_key: str
    head: ObjectHead
    meta: meta_codec.StoredMeta
    shadowed: str | None = None

    @property
    def stored_as(self) -> StoredAs:
        """How the bytes are stored."""
        if self.meta.kind is meta_codec.ObjectKind.DELTA:
            return StoredAs.DELTA
        if self.meta.kind is meta_codec.ObjectKind.REFERENCE:
            return StoredAs.REFERENCE
        return StoredAs.DIRECT

    @property
    def original_size(self) -> int:
        """Size of the original bytes."""
        return self.meta.file_size if self.meta.file_size is not None else self.head.size

    @property
    def etag(self) -> str:
        """The logical ETag: the quoted MD5 of the original bytes when recorded."""
        return f'"{self.meta.md5}"' if self.meta.md5 else self.head.etag

    @property
    def unreadable(self) -> UnverifiableObjectError | None:
        """Why this object must not be read as a file (a ``BROKEN`` one), else None."""
        if self.meta.kind is not meta_codec.ObjectKind.BROKEN:
            return None
        return UnverifiableObjectError(
            f"s3://{self.stored.bucket}/{self.stored.key} cannot be read as "
            f"{self.logical_key}: {self.meta.problem}. To repair it, restore its metadata "
            f"(copy it back from a copy that kept its x-amz-meta-* headers) or upload "
            f"{self.logical_key} again; any S3 tool still reads its raw bytes"
        )

    def check_readable(self) -> None:
        """Raise :class:`UnverifiableObjectError` for an object whose bytes cannot be verified."""
        if (error := self.unreadable) is not None:
            raise error


class Reader:
    """Resolves and reconstructs objects; one per service."""

    def __init__(self, ctx: CoreContext, refs: ReferenceStore) -> None:
        self._ctx = ctx
        self._refs = refs

    async def resolve(self, key: ObjectKey) -> ResolvedObject:
        """Find the stored object behind a logical (``a.zip``) or stored (``a.zip.delta``) key.

        Raises :class:`ObjectNotFoundError` (or ``BucketNotFoundError``) when neither exists.
        """
        bucket = key.bucket
        candidates = stored_keys(key.key)
        heads: dict[str, ObjectHead | None] = {}

        async def head_one(candidate: str) -> None:
            heads[candidate] = await self._ctx.storage.head(bucket, candidate)

        with single_errors():
            async with anyio.create_task_group() as tg:
                for candidate in candidates:
                    tg.start_soon(head_one, candidate)
        found = [c for c in candidates if heads[c] is not None]
        if found:
            head = heads[found[0]]
            assert head is not None
            self._ctx.logger.debug(
                "resolved", key=f"s3://{bucket}/{key.key}", stored=found[0], size=head.size
            )
            return ResolvedObject(
                ObjectKey(bucket, found[0]),
                logical_key(found[0]),
                head,
                meta_codec.decode(head),
                shadowed=found[1] if len(found) > 1 else None,
            )
        await self._ctx.storage.head_bucket(bucket)
        raise ObjectNotFoundError(f"s3://{bucket}/{key.key} not found")

    async def get(self, key: ObjectKey, out: Path) -> GetSummary:
        """Reconstruct ``key`` into the file ``out``, atomically and only once verified.

        The bytes go to a temp file beside ``out`` (so the final rename never crosses a
        filesystem), are verified against the recorded SHA-256, then renamed over ``out``.
        On any failure ``out`` is untouched.
        """
        resolved = await self.resolve(key)
        out = Path(out)
        tmp = partial_path(out)
        try:
            # Create the file first: a destination that refuses it (permission, name,
            # read-only) is a local error, found before anything is downloaded.
            with translating_local(out, "write"):
                await anyio.to_thread.run_sync(_create_new, tmp)
            summary = await self.reconstruct(resolved, tmp, local_name=out)
            with translating_local(out, "write"):
                await anyio.to_thread.run_sync(os.replace, tmp, out)
            return summary
        finally:
            await remove_quietly(tmp)

    @asynccontextmanager
    async def materialize(self, key: ObjectKey) -> AsyncIterator[tuple[Path, GetSummary]]:
        """A verified private temp copy of ``key``, removed when the block exits."""
        resolved = await self.resolve(key)
        path = self._ctx.tmp("object")
        try:
            summary = await self.reconstruct(resolved, path)
            yield path, summary
        finally:
            await remove_quietly(path)

    async def reconstruct(
        self, resolved: ResolvedObject, dest: Path, *, local_name: Path | None = None
    ) -> GetSummary:
        """Write the verified original bytes of ``resolved`` to ``dest``.

        Raises :class:`IntegrityError` when they do not match the recorded SHA-256 (its
        :class:`UnverifiableObjectError` when there is no usable one), and the local
        errors of :func:`~deltaglider_async._errors.local_error` (naming ``local_name``,
        default ``dest``) when ``dest`` cannot be written; the caller owns ``dest`` and
        must discard it on error.
        """
        resolved.check_readable()
        with translating_local(local_name or dest, "write"):
            digest, hit = await self._reconstruct_unverified(resolved, dest)
        expected = resolved.meta.file_sha256
        where = f"s3://{resolved.stored.bucket}/{resolved.stored.key}"
        if expected and digest.sha256 != expected:
            self._ctx.metrics.increment("deltaglider.integrity.failed")
            raise IntegrityError(
                f"{where}: reconstructed sha256 {digest.sha256} does not match the recorded "
                f"{expected}"
            )
        if resolved.meta.file_size is not None and digest.size != resolved.meta.file_size:
            raise IntegrityError(
                f"{where}: reconstructed {digest.size} bytes, expected {resolved.meta.file_size}"
            )
        return GetSummary(
            bucket=resolved.stored.bucket,
            key=resolved.stored.key,
            logical_key=resolved.logical_key,
            size=digest.size,
            sha256=digest.sha256,
            stored_as=resolved.stored_as,
            reference_cache_hit=hit,
        )

    async def _reconstruct_unverified(
        self, resolved: ResolvedObject, dest: Path, *, use_cache: bool = True
    ) -> tuple[FileDigest, bool]:
        ctx = self._ctx
        bucket, key = resolved.stored.bucket, resolved.stored.key
        if resolved.meta.kind is not meta_codec.ObjectKind.DELTA:
            body = await ctx.storage.open(bucket, key)
            try:
                digest = await ctx.hasher.write_and_hash(body.iter_chunks(CHUNK), dest)
            finally:
                with anyio.CancelScope(shield=True):
                    await body.aclose()
            return digest, False

        delta_path = ctx.tmp("delta")
        fetched: list[tuple[Path, str, bool]] = []

        async def fetch_delta() -> None:
            await ctx.storage.get_to_file(bucket, key, delta_path)

        async def fetch_ref() -> None:
            fetched.append(
                await self._refs.fetch_for_delta(bucket, key, resolved.meta, use_cache=use_cache)
            )

        try:
            with single_errors():
                async with anyio.create_task_group() as tg:
                    tg.start_soon(fetch_delta)
                    tg.start_soon(fetch_ref)
            ref_path, _, hit = fetched[0]
            ctx.logger.debug("get: decoding", key=f"s3://{bucket}/{key}", reference_cached=hit)
            try:
                with ctx.timed("deltaglider.xdelta3.decode"):
                    await ctx.diff.decode(ref_path, delta_path, dest)
            except DiffToolNotFoundError:
                raise
            except DiffError as exc:
                ctx.metrics.increment("deltaglider.integrity.failed")
                raise IntegrityError(
                    f"s3://{bucket}/{key} cannot be decoded against its reference: "
                    f"the delta or the reference is corrupted ({exc})"
                ) from exc
            return await ctx.hasher.hash_file(dest), hit
        finally:
            await remove_quietly(delta_path)
            for path, _, _ in fetched:
                await remove_quietly(path)

    async def verify(self, key: ObjectKey) -> VerifyResult:
        """Reconstruct ``key`` and compare its SHA-256; ``valid`` is False on corruption.

        A missing object still raises :class:`ObjectNotFoundError`.
        """
        resolved = await self.resolve(key)
        expected = resolved.meta.file_sha256 or ""
        operation: Literal["VERIFY", "VERIFY_DELTA"] = (
            "VERIFY_DELTA" if resolved.meta.kind is meta_codec.ObjectKind.DELTA else "VERIFY"
        )
        if (error := resolved.unreadable) is not None:
            return VerifyResult(False, operation, expected, None, str(error))
        path = self._ctx.tmp("verify")
        try:
            try:
                # Judge the bucket, not this machine's cached copy of the reference.
                digest, _ = await self._reconstruct_unverified(resolved, path, use_cache=False)
            except IntegrityError as exc:
                return VerifyResult(False, operation, expected, None, str(exc))
            if not expected:
                return VerifyResult(
                    True,
                    operation,
                    "",
                    digest.sha256,
                    "plain S3 object: no recorded sha256 to compare",
                )
            if digest.sha256 != expected:
                return VerifyResult(
                    False,
                    operation,
                    expected,
                    digest.sha256,
                    "sha256 mismatch: the stored data is corrupted",
                )
            return VerifyResult(True, operation, expected, digest.sha256, "sha256 matches")
        finally:
            await remove_quietly(path)


def _create_new(path: Path) -> None:
    """Create ``path`` empty, failing if it exists (``O_EXCL``)."""
    with open(path, "xb"):
        pass
