"""The read path (SPEC §4): resolve a name, reconstruct its bytes, verify them.

A logical name (``a.zip``) is stored as ``a.zip`` (direct or plain) or ``a.zip.delta``.
:meth:`Reader.resolve` HEADs both at once. A delta is decoded against the reference whose
SHA-256 it records (:meth:`~.references.ReferenceStore.fetch_for_delta`); every result is
checked against the recorded SHA-256 before it is handed out as final. An object whose
deltaglider metadata was lost is never handed out (:attr:`ResolvedObject.unreadable`).
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

import anyio
import anyio.to_thread

from .._errors import (
    DiffError,
    DiffToolFailedError,
    DiffToolNotFoundError,
    DiffToolUnsupportedError,
    IntegrityError,
    ObjectChangedError,
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

#: Reads of a name whose stored form keeps changing under them, before giving up.
_RACE_ATTEMPTS = 3


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

    def user_metadata(self) -> dict[str, str]:
        """The caller's metadata: ``user-`` entries unprefixed, or all of a plain object's."""
        if self.meta.kind is meta_codec.ObjectKind.PLAIN:
            return dict(self.head.metadata)
        return dict(self.meta.user_metadata)

    def check_readable(self) -> None:
        """Raise :class:`UnverifiableObjectError` for an object whose bytes cannot be verified."""
        if (error := self.unreadable) is not None:
            raise error

    def at(self, head: ObjectHead) -> ResolvedObject:
        """The same stored key, as described by ``head`` (a later request's headers)."""
        return ResolvedObject(
            self.stored, self.logical_key, head, meta_codec.decode(head), self.shadowed
        )


def _is_special(path: Path) -> bool:
    """True for an existing device, FIFO or socket (followed through symlinks)."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


def _copy_into(source: Path, special: Path) -> None:
    with open(source, "rb") as reader, open(special, "wb") as writer:
        shutil.copyfileobj(reader, writer, 1024 * 1024)


#: Seconds to wait before a second look at an object that seems to have lost its metadata.
_SETTLE_DELAY: Final = 0.2


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
        for _ in range(2):
            # A writer replacing one form by the other PUTs the new form, then deletes the
            # old: HEADs of the two forms that straddle both steps see neither. Looking
            # twice makes a false "not found" need two such replacements in a row.
            heads = await self._heads(bucket, candidates)
            found = [c for c in candidates if heads[c] is not None]
            if found or len(candidates) == 1:
                break
        if found:
            head = heads[found[0]]
            assert head is not None
            self._ctx.logger.debug(
                "resolved", key=f"s3://{bucket}/{key.key}", stored=found[0], size=head.size
            )
            resolved = ResolvedObject(
                ObjectKey(bucket, found[0]),
                logical_key(found[0]),
                head,
                meta_codec.decode(head),
                shadowed=found[1] if len(found) > 1 else None,
            )
            if resolved.unreadable is not None:
                # Some stores (moto) make a new object visible a moment before its
                # metadata: look once more before calling its metadata lost.
                await anyio.sleep(_SETTLE_DELAY)
                again = await self._ctx.storage.head(bucket, found[0])
                if again is not None:
                    resolved = resolved.at(again)
            return resolved
        await self._ctx.storage.head_bucket(bucket)
        raise ObjectNotFoundError(f"s3://{bucket}/{key.key} not found")

    async def _heads(self, bucket: str, keys: Sequence[str]) -> dict[str, ObjectHead | None]:
        """HEAD ``keys`` concurrently."""
        heads: dict[str, ObjectHead | None] = {}

        async def head_one(key: str) -> None:
            heads[key] = await self._ctx.storage.head(bucket, key)

        with single_errors():
            async with anyio.create_task_group() as tg:
                for key in keys:
                    tg.start_soon(head_one, key)
        return heads

    async def get(self, key: ObjectKey, out: Path) -> GetSummary:
        """Reconstruct ``key`` into the file ``out``, atomically and only once verified.

        The bytes go to a temp file beside ``out`` (so the final rename never crosses a
        filesystem), are verified against the recorded SHA-256, then renamed over ``out``.
        On any failure ``out`` is untouched.
        """
        resolved = await self.resolve(key)
        out = Path(out)
        if await anyio.to_thread.run_sync(_is_special, out):
            # A device, FIFO or socket (/dev/null, a pipe to another process): replacing
            # it would destroy it. Write the verified bytes into it, as boto3 does.
            async with self.materialize_resolved(resolved) as (path, summary):
                with translating_local(out, "write"):
                    await anyio.to_thread.run_sync(_copy_into, path, out)
            return summary
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
        async with self.materialize_resolved(await self.resolve(key)) as done:
            yield done

    @asynccontextmanager
    async def materialize_resolved(
        self, resolved: ResolvedObject
    ) -> AsyncIterator[tuple[Path, GetSummary]]:
        """:meth:`materialize` of an object already resolved."""
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
        must discard it on error. See :meth:`reconstruct_current`.
        """
        summary, _ = await self.reconstruct_current(resolved, dest, local_name=local_name)
        return summary

    async def reconstruct_current(
        self, resolved: ResolvedObject, dest: Path, *, local_name: Path | None = None
    ) -> tuple[GetSummary, ResolvedObject]:
        """:meth:`reconstruct`, also returning the version of the object actually read.

        A read racing a write sees one whole version: the bytes are checked against the
        metadata of the very GET that delivered them (not of an earlier HEAD), and when the
        name's stored form changed meanwhile (``x`` replaced by ``x.delta``) the name is
        resolved again. So the result is the old or the new version, verified; never a
        false integrity error.
        """
        for attempt in range(_RACE_ATTEMPTS):
            resolved.check_readable()
            try:
                with translating_local(local_name or dest, "write"):
                    digest, hit, current = await self._reconstruct_unverified(resolved, dest)
            except (ObjectNotFoundError, ObjectChangedError):
                if attempt == _RACE_ATTEMPTS - 1:
                    raise
                # Replaced by the name's other form since it was resolved.
                key = ObjectKey(resolved.stored.bucket, resolved.logical_key)
                resolved = await self.resolve(key)
                continue
            current.check_readable()
            self._check(current, digest)
            return (
                GetSummary(
                    bucket=current.stored.bucket,
                    key=current.stored.key,
                    logical_key=current.logical_key,
                    size=digest.size,
                    sha256=digest.sha256,
                    stored_as=current.stored_as,
                    reference_cache_hit=hit,
                    stored_size=current.head.size,
                ),
                current,
            )
        raise AssertionError("unreachable")

    def _check(self, current: ResolvedObject, digest: FileDigest) -> None:
        """The rule every read and ``verify`` apply: the bytes have the recorded SHA-256
        and size (:class:`IntegrityError` naming the difference otherwise)."""
        expected = current.meta.file_sha256
        where = f"s3://{current.stored.bucket}/{current.stored.key}"
        if expected and digest.sha256 != expected:
            self._ctx.metrics.increment("deltaglider.integrity.failed")
            raise _Checked(
                f"{where}: sha256 mismatch: the stored data is corrupted (read "
                f"{digest.sha256}, recorded {expected})",
                digest.sha256,
            )
        if current.meta.file_size is not None and digest.size != current.meta.file_size:
            self._ctx.metrics.increment("deltaglider.integrity.failed")
            raise _Checked(
                f"{where}: read {digest.size} bytes, but {current.meta.file_size} are recorded: "
                "the stored data or its metadata is corrupted",
                digest.sha256,
            )

    async def _reconstruct_unverified(
        self, resolved: ResolvedObject, dest: Path, *, use_cache: bool = True
    ) -> tuple[FileDigest, bool, ResolvedObject]:
        """The bytes of ``resolved`` into ``dest``: digest, cache hit, the version read.

        The version read is described by the GET's own headers. A delta's reference is
        fetched concurrently by the SHA-256 the HEAD recorded, and again when the delta
        turned out to be another version recording another reference.
        """
        ctx = self._ctx
        bucket, key = resolved.stored.bucket, resolved.stored.key
        if resolved.meta.kind is not meta_codec.ObjectKind.DELTA:
            body = await ctx.storage.open(bucket, key)
            try:
                current = resolved.at(body.head)
                if current.meta.kind is meta_codec.ObjectKind.DELTA:
                    raise ObjectNotFoundError(key)  # now a delta: resolve again
                digest = await ctx.hasher.write_and_hash(body.iter_chunks(CHUNK), dest)
            finally:
                with anyio.CancelScope(shield=True):
                    await body.aclose()
            return digest, False, current

        delta_path = ctx.tmp("delta")
        fetched: list[tuple[Path, str, bool]] = []
        heads: list[ObjectHead] = []

        async def fetch_delta() -> None:
            heads.append(await ctx.storage.get_to_file(bucket, key, delta_path))

        async def fetch_ref(meta: meta_codec.StoredMeta) -> None:
            fetched.append(await self._refs.fetch_for_delta(bucket, key, meta, use_cache=use_cache))

        missing: list[IntegrityError] = []

        async def fetch_first_ref() -> None:
            try:
                await fetch_ref(resolved.meta)
            except IntegrityError as exc:
                missing.append(exc)  # judged once the GET tells which version was read

        try:
            with single_errors():
                async with anyio.create_task_group() as tg:
                    tg.start_soon(fetch_delta)
                    tg.start_soon(fetch_first_ref)
            current = resolved.at(heads[0])
            current.check_readable()
            if current.meta.kind is not meta_codec.ObjectKind.DELTA:
                raise ObjectNotFoundError(key)  # no longer a delta: resolve again
            if current.meta.ref_sha256 != resolved.meta.ref_sha256:
                await fetch_ref(current.meta)
            elif missing:
                # The version read names a reference that is gone. If the delta was
                # replaced since (``rebase`` re-encodes a delta, then drops the reference
                # nothing names any more), read the new version; else the bucket is broken.
                now = await ctx.storage.head(bucket, key)
                if now is not None and now.etag != current.head.etag:
                    raise ObjectChangedError(f"s3://{bucket}/{key} changed while being read")
                raise missing[0]
            ref_path, _, hit = fetched[-1]
            ctx.logger.debug("get: decoding", key=f"s3://{bucket}/{key}", reference_cached=hit)
            try:
                with ctx.timed("deltaglider.xdelta3.decode"):
                    await ctx.diff.decode(ref_path, delta_path, dest)
            except (DiffToolNotFoundError, DiffToolUnsupportedError, DiffToolFailedError):
                raise  # the local tool, not the stored data
            except DiffError as exc:
                ctx.metrics.increment("deltaglider.integrity.failed")
                raise IntegrityError(
                    f"s3://{bucket}/{key} cannot be decoded against its reference: "
                    f"the delta or the reference is corrupted ({exc})"
                ) from exc
            return await ctx.hasher.hash_file(dest), hit, current
        finally:
            await remove_quietly(delta_path)
            for path, _, _ in fetched:
                await remove_quietly(path)

    async def _verified_read(
        self, resolved: ResolvedObject, path: Path
    ) -> tuple[FileDigest, ResolvedObject]:
        """The digest of the bytes read for ``verify``, and the version they are of.

        Like :meth:`reconstruct_current`, a version replaced meanwhile is resolved again.
        """
        for attempt in range(_RACE_ATTEMPTS):
            try:
                digest, _, current = await self._reconstruct_unverified(
                    resolved, path, use_cache=False
                )
            except (ObjectNotFoundError, ObjectChangedError):
                if attempt == _RACE_ATTEMPTS - 1:
                    raise
                key = ObjectKey(resolved.stored.bucket, resolved.logical_key)
                resolved = await self.resolve(key)
                continue
            return digest, current
        raise AssertionError("unreachable")

    async def verify(self, key: ObjectKey) -> VerifyResult:
        """Reconstruct ``key`` and check it as every read does (SHA-256 and size);
        ``valid`` is False on corruption, with the reason in ``details``.

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
                digest, current = await self._verified_read(resolved, path)
                expected = current.meta.file_sha256 or ""
                current.check_readable()
                self._check(current, digest)
            except IntegrityError as exc:
                actual = None if not isinstance(exc, _Checked) else exc.actual
                return VerifyResult(False, operation, expected, actual, str(exc))
            if not expected:
                return VerifyResult(
                    True,
                    operation,
                    "",
                    digest.sha256,
                    "plain S3 object: no recorded sha256 to compare",
                )
            return VerifyResult(True, operation, expected, digest.sha256, "sha256 matches")
        finally:
            await remove_quietly(path)


class _Checked(IntegrityError):
    """Bytes read whole that do not match their metadata; ``actual`` is their SHA-256."""

    def __init__(self, message: str, actual: str) -> None:
        super().__init__(message)
        self.actual = actual


def _create_new(path: Path) -> None:
    """Create ``path`` empty, failing if it exists (``O_EXCL``)."""
    with open(path, "xb"):
        pass
