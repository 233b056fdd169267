"""The reference lifecycle: find a deltaspace's reference, create it, confirm it, drop it.

A deltaspace's ``reference.bin`` is what its deltas are encoded against (SPEC §3):

* **find or create** (:meth:`ReferenceStore.for_put`): the first eligible upload of a
  space writes it with a conditional PUT (``If-None-Match: *``); a writer that loses the
  race uses the winner's. Where the server refuses conditional writes, PUT then HEAD tells
  who won. Within one process a lock per space serialises creation. A space that was
  re-baselined encodes against its newest reference.
* **re-baseline** (:meth:`ReferenceStore.create_rebased`): a file whose delta against the
  newest reference is poor becomes generation N+1 of the space's references, at
  ``<dir>/.deltaglider/refs/<N+1>-<sha256 prefix>/reference.bin`` (content-addressed: two
  writers re-baselining at once write two keys, and each delta names the one it used).
* **confirm** (:meth:`ReferenceStore.confirm`): after a delta is stored, the reference it
  was encoded against must still be the stored one; if it vanished (its last other delta
  was deleted meanwhile) it is restored from the verified local copy.
* **drop** (:meth:`ReferenceStore.drop_unused`): the references of a space left without
  deltas (the first and every later one) are deleted by the operation that made them
  unneeded, through a temporary copy that brings it back if a
  writer elsewhere stored a delta against it meanwhile.
* **read** (:meth:`ReferenceStore.fetch_for_delta`): a delta is decoded against the
  reference whose SHA-256 matches its ``dg-ref-sha256``: its recorded ``dg-ref-key``, or the
  reference of its own directory (``dg-ref-path``) when the recorded one is gone or lies
  elsewhere, as in a copy made by another tool. The local cache serves any of them by
  SHA-256.

No interleaving of writers may leave a delta whose reference is not the one recorded in
its ``dg-ref-sha256``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio

from .._errors import (
    ConditionalWriteNotSupportedError,
    IntegrityError,
    ObjectNotFoundError,
    PreconditionFailedError,
    StorageError,
)
from .._models import REFERENCE_NAME, DeltaSpace
from ..ports.hash import FileDigest
from ..ports.storage import PROTECTION_SETTINGS, ObjectHead
from . import metadata as meta_codec
from . import planner
from .context import CoreContext, read_head, remove_quietly
from .keys import (
    TEMP_PREFIX,
    KeyRole,
    rebased_reference_key,
    rebased_references_prefix,
    reference_generation,
    role,
    temp_copy_key,
)

__all__ = ["Reference", "ReferenceStore"]

#: Attempts at finding a reference that keeps being deleted and re-created under us.
ATTEMPTS = 3
#: Largest object one CopyObject request copies (S3's limit, 5 GB).
_MAX_COPY_SIZE = 5 * 1000**3
#: How long the temporary copy of a dropped reference may outlive a crashed dropper, in
#: seconds, before ``purge_temp_files`` (or a lifecycle rule) removes it.
_KEEP_SECONDS = 24 * 3600


@dataclass(slots=True)
class Reference:
    """A verified local copy of a stored reference.

    ``path`` is the staged upload itself when this put ``created`` the reference, else a
    private copy (released with :meth:`ReferenceStore.release`). ``head_bytes`` are its
    first bytes, which tell whether xdelta3 would decompress it.
    """

    key: str
    sha256: str
    size: int
    path: Path
    metadata: dict[str, str]
    created: bool
    cache_hit: bool
    head_bytes: bytes
    etag: str | None = None
    settings: Mapping[str, Any] = field(default_factory=dict)
    #: When the stored reference was written (its LastModified), when known.
    last_modified: datetime | None = None


class _Mismatch(IntegrityError):
    """A stored reference's bytes do not match the SHA-256 expected of them."""


class ReferenceStore:
    """Finds, creates, confirms, reads and drops the references of deltaspaces."""

    def __init__(self, ctx: CoreContext) -> None:
        self._ctx = ctx

    # ------------------------------------------------------------------ write side

    async def for_put(
        self,
        space: DeltaSpace,
        staged: Path,
        digest: FileDigest,
        name: str,
        *,
        may_create: bool,
        on_created: Callable[[], None],
        settings: Mapping[str, Any] | None = None,
    ) -> Reference | None:
        """The reference to encode ``staged`` against, creating it from ``staged`` if none.

        Returns None when the space has no reference and ``may_create`` is False.
        ``on_created`` is called as soon as this call has written a reference (even one a
        concurrent writer then replaced), so the caller can roll it back on failure.
        """
        storage = self._ctx.storage
        bucket, ref_key = space.bucket, space.reference_key
        newest = await self.newest_rebased(space)
        if newest is not None:
            try:
                return await self.load(bucket, newest)
            except (ObjectNotFoundError, IntegrityError):
                pass  # dropped or replaced meanwhile: fall back to the first reference
        for _ in range(ATTEMPTS):
            head = await storage.head(bucket, ref_key)
            if head is None:
                if not may_create:
                    return None
                async with self._ctx.space_locks.hold(space):
                    head = await storage.head(bucket, ref_key)
                    if head is None:
                        created = await self._create(
                            space, staged, digest, name, on_created, dict(settings or {})
                        )
                        if created is not None:
                            return created
                        head = await storage.head(bucket, ref_key)
                if head is None:
                    continue  # another writer's reference was deleted again: start over
            try:
                return await self.load(bucket, head)
            except ObjectNotFoundError:
                # Deleted between HEAD and GET (its last delta went away): start over.
                continue
            except IntegrityError:
                # Replaced between HEAD and GET (another writer re-created it, or a server
                # that ignores If-None-Match let a second writer overwrite it)?
                now = await storage.head(bucket, ref_key)
                if now is not None and _same_head(now, head):
                    raise  # the same object, really corrupted
                continue
        raise StorageError(
            f"reference s3://{bucket}/{ref_key} kept disappearing while storing "
            f"{space.key_for(name)}"
        )

    async def rebased_keys(self, space: DeltaSpace) -> list[str]:
        """The keys of the space's later references, oldest generation first."""
        prefix = rebased_references_prefix(space.prefix)
        keys = [
            info.key
            async for info in self._ctx.storage.iter_objects(space.bucket, prefix)
            if reference_generation(info.key) > 0
        ]
        return sorted(keys, key=lambda k: (reference_generation(k), k))

    async def newest_rebased(self, space: DeltaSpace) -> ObjectHead | None:
        """The HEAD of the space's newest later reference; None if it was never re-baselined."""
        for key in reversed(await self.rebased_keys(space)):
            head = await self._ctx.storage.head(space.bucket, key)
            if head is not None:
                return head
        return None

    async def newer_than(self, space: DeltaSpace, ref: Reference) -> Reference | None:
        """The space's newest reference when it is of a later generation than ``ref`` (a
        writer re-baselined since ``ref`` was loaded), else None."""
        head = await self.newest_rebased(space)
        if head is None or reference_generation(head.key) <= reference_generation(ref.key):
            return None
        try:
            return await self.load(space.bucket, head)
        except (ObjectNotFoundError, IntegrityError):
            return None

    def _metadata(self, name: str, digest: FileDigest) -> dict[str, str]:
        """The metadata of a reference this service writes from the file ``name``."""
        ctx = self._ctx
        return meta_codec.reference_metadata(
            tool=ctx.tool_version,
            source_name=name,
            sha256=digest.sha256,
            size=digest.size,
            md5=digest.md5,
            created_at=ctx.clock.now(),
        )

    async def rebase_pays(self, space: DeltaSpace, ref: Reference, delta_size: int) -> bool:
        """True when a delta of ``delta_size`` bytes against ``ref`` costs at least the
        average stored bytes per upload since ``ref`` became the space's reference.

        That average (the reference's size plus every object stored in the space since,
        over their count) is what the current reference costs per upload so far; a file
        whose delta is dearer is worth making the next reference. It keeps a series whose
        consecutive versions differ by more than the threshold from re-baselining at every
        upload: right after a re-baseline the average is the whole file. One LIST of the
        space, done only when the threshold is already exceeded.
        """
        ctx = self._ctx
        since = ref.last_modified
        if since is None:
            head = await ctx.storage.head(space.bucket, ref.key)
            if head is None:
                return False
            since = head.last_modified
        total, count = ref.size, 1
        async for info in ctx.storage.iter_objects(space.bucket, space.list_prefix, delimiter="/"):
            # LastModified has a one-second resolution: count the reference's own second.
            if role(info.key) is not KeyRole.REFERENCE and info.last_modified >= since:
                total += info.size
                count += 1
        return delta_size * count >= total

    async def create_rebased(
        self,
        space: DeltaSpace,
        after: Reference,
        staged: Path,
        digest: FileDigest,
        name: str,
        on_created: Callable[[], None],
        settings: Mapping[str, Any] | None = None,
    ) -> Reference | None:
        """Store ``staged`` as the space's next reference (one generation after ``after``).

        See :meth:`store_rebased`; the key is :func:`rebased_reference_key` of the next
        generation.
        """
        key = rebased_reference_key(
            space.prefix, reference_generation(after.key) + 1, digest.sha256
        )
        created = await self.store_rebased(space, key, staged, digest, name, on_created, settings)
        if created is not None:
            self._ctx.logger.info(
                "re-baselined",
                key=f"s3://{space.bucket}/{key}",
                previous=after.key,
                size=digest.size,
            )
        return created

    async def store_rebased(
        self,
        space: DeltaSpace,
        key: str,
        staged: Path,
        digest: FileDigest,
        name: str,
        on_created: Callable[[], None],
        settings: Mapping[str, Any] | None = None,
    ) -> Reference | None:
        """Store ``staged`` (whose digest is ``digest``) as the later reference ``key``.

        The key is content-addressed, written with ``If-None-Match: *``: a writer that
        finds the same bytes there already uses them. Returns None when the key holds other
        bytes (impossible but for a SHA-256 prefix collision) or the server replaced it;
        the caller then keeps its previous reference.
        """
        ctx = self._ctx
        meta = self._metadata(name, digest)
        chosen = dict(settings or {})
        try:
            await ctx.storage.put_file(
                space.bucket, key, staged, metadata=meta, if_none_match=True, settings=chosen
            )
            on_created()
        except PreconditionFailedError:
            pass  # the same bytes are there already (same key), checked below
        except ConditionalWriteNotSupportedError:
            await ctx.storage.put_file(space.bucket, key, staged, metadata=meta, settings=chosen)
            on_created()
        return await self._written(
            space.bucket, key, staged, digest, meta, chosen, "deltaglider.reference.rebased"
        )

    async def _create(
        self,
        space: DeltaSpace,
        staged: Path,
        digest: FileDigest,
        name: str,
        on_created: Callable[[], None],
        settings: dict[str, Any],
    ) -> Reference | None:
        """Write ``staged`` as the space's reference; None when another writer won."""
        ctx = self._ctx
        bucket, ref_key = space.bucket, space.reference_key
        meta = self._metadata(name, digest)
        try:
            await ctx.storage.put_file(
                bucket, ref_key, staged, metadata=meta, if_none_match=True, settings=settings
            )
        except PreconditionFailedError:
            ctx.logger.debug("another writer created the reference", key=ref_key)
            return None
        except ConditionalWriteNotSupportedError:
            ctx.logger.warning(
                "server refuses conditional writes; falling back to PUT then HEAD", bucket=bucket
            )
            await ctx.storage.put_file(bucket, ref_key, staged, metadata=meta, settings=settings)
        on_created()
        # Servers that ignore If-None-Match overwrite silently: read back who won.
        return await self._written(
            bucket, ref_key, staged, digest, meta, settings, "deltaglider.reference.created"
        )

    async def _written(
        self,
        bucket: str,
        key: str,
        staged: Path,
        digest: FileDigest,
        meta: dict[str, str],
        settings: Mapping[str, Any],
        metric: str,
    ) -> Reference | None:
        """The reference just written from ``staged`` at ``key``, read back: None when the
        key holds other bytes (another writer's); else cached locally and counted."""
        ctx = self._ctx
        head = await ctx.storage.head(bucket, key)
        if head is None or meta_codec.decode(head).file_sha256 != digest.sha256:
            return None
        await ctx.cache_store(digest.sha256, staged)
        ctx.metrics.increment(metric)
        return await _created(key, staged, digest, meta, head, settings)

    async def load(self, bucket: str, head: ObjectHead) -> Reference:
        """A verified local copy of the reference described by ``head``."""
        sha = meta_codec.decode(head).file_sha256
        path, sha, hit = await self.fetch(bucket, head.key, sha)
        try:
            size = (await anyio.Path(path).stat()).st_size
            first = await read_head(path, planner.SNIFF_BYTES)
        except BaseException:
            await remove_quietly(path)
            raise
        return Reference(
            key=head.key,
            sha256=sha,
            size=size,
            path=path,
            metadata=dict(head.metadata),
            created=False,
            cache_hit=hit,
            head_bytes=first,
            etag=head.etag,
            settings={k: v for k, v in head.settings.items() if k in PROTECTION_SETTINGS},
            last_modified=head.last_modified,
        )

    async def confirm(self, space: DeltaSpace, ref: Reference) -> bool:
        """Check the stored reference is still ``ref``, restoring it if it vanished.

        True when the delta just written is consistent; False when the space now holds
        another reference, to re-encode against.

        The delta is already stored, so a :meth:`drop_unused` of this service that starts
        from now on LISTs it and keeps the reference. One already running may have LISTed
        before the delta landed and delete the reference after this HEAD: wait for it to
        finish first (then the HEAD sees the deletion and the reference is restored).
        """
        ctx = self._ctx
        await ctx.dropping.wait_idle(space)
        head = await ctx.storage.head(space.bucket, ref.key)
        if head is not None:
            return _same_reference(head, ref)
        # The last delta of the space was deleted concurrently and the reference with it:
        # restore it from the verified local copy.
        ctx.logger.warning("reference vanished, restoring it", key=ref.key)
        try:
            await ctx.storage.put_file(
                space.bucket,
                ref.key,
                ref.path,
                metadata=ref.metadata,
                if_none_match=True,
                settings=ref.settings,
            )
        except PreconditionFailedError:
            pass
        except ConditionalWriteNotSupportedError:
            await ctx.storage.put_file(
                space.bucket, ref.key, ref.path, metadata=ref.metadata, settings=ref.settings
            )
        head = await ctx.storage.head(space.bucket, ref.key)
        if head is None or not _same_reference(head, ref):
            return False
        # Restored: its ETag may differ from the one known (multipart uploads).
        ref.etag = head.etag
        ref.last_modified = head.last_modified
        return True

    async def release(self, ref: Reference, staged: Path) -> None:
        """Remove the private local copy of ``ref`` (never the staged upload itself)."""
        if ref.path != staged:
            await remove_quietly(ref.path)

    async def drop_unused(self, space: DeltaSpace) -> bool:
        """Delete the space's reference when no ``.delta`` is left in it; True if deleted.

        A writer in another process may store a delta between the LIST that finds none
        and the DELETE, and confirm the reference just before it goes. So the reference is
        first copied (server side) to a temporary copy ``.deltaglider/tmp/<sha256>/...``,
        then deleted (``If-Match``), then the space is LISTed again: a delta that appeared
        meanwhile gets its reference back from the copy. Either that second LIST sees the
        writer's delta, or the writer's confirmation comes later and sees the reference
        gone (and restores it itself). Readers find the copy by SHA-256 while it exists.
        A reference too large for one server-side copy (5 GB) is kept instead.

        Puts of this service that stored a delta meanwhile wait for this to finish before
        they confirm their reference.
        """
        ctx = self._ctx
        async with ctx.space_locks.hold(space):
            with ctx.dropping.running(space):
                if await self.has_delta(space):
                    return False
                dropped = False
                for key in [space.reference_key, *await self.rebased_keys(space)]:
                    outcome = await self._drop_one(space, key, lambda: self.has_delta(space))
                    if outcome is None:
                        return dropped  # a delta appeared: keep the rest
                    dropped = dropped or outcome
                return dropped

    async def drop_if_unneeded(
        self, space: DeltaSpace, key: str, needed: Callable[[], Awaitable[bool]]
    ) -> bool:
        """Delete the reference ``key`` of ``space`` unless ``needed()`` says a delta uses it.

        The same protocol as :meth:`drop_unused` (temporary copy, ``If-Match`` delete,
        ``needed()`` asked again after the delete, restore when it now says yes). True when
        deleted.
        """
        async with self._ctx.space_locks.hold(space):
            with self._ctx.dropping.running(space):
                if await needed():
                    return False
                return await self._drop_one(space, key, needed) is True

    async def _drop_one(
        self, space: DeltaSpace, key: str, needed: Callable[[], Awaitable[bool]]
    ) -> bool | None:
        """Drop one reference that ``needed()`` just said no delta uses.

        True when deleted, False when absent, kept or replaced, None when a delta needing
        it appeared meanwhile (the reference is then restored).
        """
        ctx = self._ctx
        bucket = space.bucket
        head = await ctx.storage.head(bucket, key)
        if head is None:
            return False
        if head.size > _MAX_COPY_SIZE:
            ctx.logger.info("keeping an unused reference too large to drop safely", key=key)
            return False
        sha = meta_codec.decode(head).file_sha256 or head.etag.strip('"')
        keep = temp_copy_key(sha, int(ctx.clock.now().timestamp()) + _KEEP_SECONDS, REFERENCE_NAME)
        await ctx.storage.copy(bucket, key, keep)
        try:
            try:
                await ctx.storage.delete(bucket, key, if_match=head.etag)
            except PreconditionFailedError:
                return False  # replaced meanwhile: the new one is someone's
            if await needed():
                ctx.logger.warning(
                    "a delta was stored while its reference was being dropped; "
                    "restoring the reference",
                    key=key,
                )
                await self._restore_copy(bucket, keep, key)
                return None
            ctx.logger.info("deleted unused reference", key=key)
            return True
        finally:
            with anyio.CancelScope(shield=True):
                await ctx.storage.delete(bucket, keep)

    async def _restore_copy(self, bucket: str, copy: str, key: str) -> None:
        """Put the reference back from its temporary copy, unless a writer already did."""
        try:
            await self._ctx.storage.copy(bucket, copy, key, if_none_match=True)
        except PreconditionFailedError:
            pass  # a writer restored it from its own copy: the same bytes
        except ConditionalWriteNotSupportedError:
            if await self._ctx.storage.head(bucket, key) is None:
                await self._ctx.storage.copy(bucket, copy, key)

    async def has_delta(self, space: DeltaSpace) -> bool:
        """True when some ``.delta`` object lies directly in ``space``."""
        objects = self._ctx.storage.iter_objects(space.bucket, space.list_prefix, delimiter="/")
        try:
            async for info in objects:
                if role(info.key) is KeyRole.DELTA:
                    return True
            return False
        finally:
            # Stop the listing now rather than whenever the iterator is collected.
            aclose = getattr(objects, "aclose", None)
            if aclose is not None:
                with anyio.CancelScope(shield=True):
                    await aclose()

    # ------------------------------------------------------------------ read side

    async def fetch_for_delta(
        self,
        bucket: str,
        delta_key: str,
        meta: meta_codec.StoredMeta,
        *,
        use_cache: bool = True,
    ) -> tuple[Path, str, bool]:
        """A verified local copy of the reference ``meta`` (a delta's) was encoded against.

        Tries :attr:`~deltaglider_async.core.metadata.StoredMeta.ref_candidates` in order
        and takes the first whose SHA-256 is ``dg-ref-sha256``. Raises
        :class:`IntegrityError` when none is: the delta cannot be decoded, which is
        corruption of the bucket, not a missing object.
        """
        tried: list[str] = []
        for _ in range(2):
            tried = []
            found = await self._fetch_candidates(bucket, meta, tried, use_cache)
            if found is not None:
                return found
            if not meta.ref_sha256:
                break
            # A reference being dropped lives on as a temporary copy until its dropper has
            # checked that no delta needs it (see drop_unused), then is put back or gone:
            # look there, and once more where it is put back.
            copies = self._ctx.storage.iter_objects(bucket, f"{TEMP_PREFIX}{meta.ref_sha256}/")
            async for info in copies:
                try:
                    return await self.fetch(bucket, info.key, meta.ref_sha256, use_cache=use_cache)
                except (ObjectNotFoundError, _Mismatch):
                    continue
        raise IntegrityError(
            f"s3://{bucket}/{delta_key}: no reference with its recorded sha256 "
            f"{meta.ref_sha256}: {'; '.join(tried) or 'its metadata names none'}"
        )

    async def _fetch_candidates(
        self,
        bucket: str,
        meta: meta_codec.StoredMeta,
        tried: list[str],
        use_cache: bool,
    ) -> tuple[Path, str, bool] | None:
        """The first of ``meta.ref_candidates`` with the recorded SHA-256; what failed goes
        into ``tried``."""
        for ref_key in meta.ref_candidates:
            expected = meta.ref_sha256
            try:
                if expected is None:
                    # Deltas written without dg-ref-sha256 (the Rust proxy's): trust the
                    # reference's own recorded sha256, verified on download.
                    head = await self._ctx.storage.head(bucket, ref_key)
                    if head is None:
                        raise ObjectNotFoundError(ref_key)
                    expected = meta_codec.decode(head).file_sha256
                return await self.fetch(bucket, ref_key, expected, use_cache=use_cache)
            except ObjectNotFoundError:
                tried.append(f"s3://{bucket}/{ref_key} is missing")
            except _Mismatch as exc:
                tried.append(str(exc))
        return None

    async def fetch(
        self, bucket: str, ref_key: str, expected_sha: str | None, *, use_cache: bool = True
    ) -> tuple[Path, str, bool]:
        """Local verified copy of a reference: (path, sha256, cache hit).

        With ``use_cache=False`` the stored reference itself is downloaded and checked
        (``verify`` must judge the bucket, not a local copy).
        """
        ctx = self._ctx
        path = ctx.tmp("ref")
        try:
            if use_cache and expected_sha:
                try:
                    if await ctx.cache.fetch(expected_sha, path):
                        ctx.metrics.increment("deltaglider.cache.hit")
                        return path, expected_sha, True
                except IntegrityError as exc:
                    # A cache entry that fails authentication was altered on this machine
                    # (tampering or disk corruption). The cache has evicted it; surface it
                    # rather than hide it, so the next call downloads a fresh copy.
                    ctx.metrics.increment("deltaglider.cache.corrupt")
                    raise IntegrityError(
                        f"the locally cached copy of s3://{bucket}/{ref_key} failed "
                        f"verification and was evicted; retry to download it again ({exc})"
                    ) from exc
            ctx.metrics.increment("deltaglider.cache.miss")
            await ctx.storage.get_to_file(bucket, ref_key, path)
            digest = await ctx.hasher.hash_file(path)
            if expected_sha and digest.sha256 != expected_sha:
                raise _Mismatch(
                    f"reference s3://{bucket}/{ref_key} has sha256 {digest.sha256}, "
                    f"expected {expected_sha}: the stored reference is corrupted or was replaced"
                )
            await ctx.cache_store(digest.sha256, path)
            return path, digest.sha256, False
        except BaseException:
            await remove_quietly(path)
            raise


async def _created(
    key: str,
    staged: Path,
    digest: FileDigest,
    meta: dict[str, str],
    head: ObjectHead,
    settings: Mapping[str, Any],
) -> Reference:
    """The :class:`Reference` a put just wrote from its staged upload."""
    return Reference(
        key=key,
        sha256=digest.sha256,
        size=digest.size,
        path=staged,
        metadata=meta,
        created=True,
        cache_hit=False,
        head_bytes=await read_head(staged, planner.SNIFF_BYTES),
        etag=head.etag,
        settings=settings,
        last_modified=head.last_modified,
    )


def _same_head(a: ObjectHead, b: ObjectHead) -> bool:
    """True when two HEADs of one key describe the same stored object."""
    return a.etag == b.etag and a.last_modified == b.last_modified


def _same_reference(head: ObjectHead, ref: Reference) -> bool:
    """True when ``head`` describes the reference bytes ``ref`` holds.

    By recorded SHA-256; a reference without deltaglider metadata (another tool wrote it)
    can only be recognised by its ETag.
    """
    sha = meta_codec.decode(head).file_sha256
    if sha is not None:
        return sha == ref.sha256
    return ref.etag is not None and head.etag == ref.etag
