"""AsyncDeltaService: the write and read paths of the storage format, over ports only.

Write (SPEC §3): stage the input once to a private temp file while hashing it; decide
eligibility; find or create the deltaspace's reference (conditional write plus one lock per
space in this service); encode with xdelta3; keep the delta unless it exceeds ``max_ratio``;
PUT; remove the other form of the name; confirm the reference the delta was encoded against
is still the one in the bucket.

Read (SPEC §4): resolve the logical name; for a delta fetch the delta and the reference
concurrently (the reference from the local cache when it matches ``dg-ref-sha256``), decode,
and verify SHA-256 before anything is final.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import anyio

from .._errors import (
    ConditionalWriteNotSupportedError,
    DiffError,
    DiffToolNotFoundError,
    IntegrityError,
    InvalidArgumentError,
    ObjectNotFoundError,
    PreconditionFailedError,
    StorageError,
    UnverifiableObjectError,
    single_errors,
)
from .._models import (
    DELTA_SUFFIX,
    REFERENCE_NAME,
    DeltaSpace,
    GetSummary,
    ObjectKey,
    PutSummary,
    StoredAs,
    VerifyResult,
)
from ..ports.cache import ReferenceCachePort
from ..ports.clock import ClockPort
from ..ports.diff import DiffPort
from ..ports.hash import FileDigest, HashPort
from ..ports.logger import LoggerPort
from ..ports.metrics import MetricsPort
from ..ports.storage import ObjectHead, StoragePort
from . import metadata as meta_codec
from . import planner
from .locks import KeyedActivity, KeyedLocks

CHUNK = 1024 * 1024
_CONFIRM_ATTEMPTS = 3
# Upper bound on the best-effort rollback of a failed or cancelled put (shielded).
_CLEANUP_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class ResolvedObject:
    """A logical name resolved to the stored object that holds it."""

    stored: ObjectKey
    logical_key: str
    head: ObjectHead
    meta: meta_codec.StoredMeta

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


@dataclass(frozen=True, slots=True)
class DeleteSummary:
    """What :meth:`AsyncDeltaService.delete` removed."""

    bucket: str
    key: str
    logical_key: str
    stored_as: StoredAs
    reference_deleted: bool


@dataclass(slots=True)
class _Reference:
    key: str
    sha256: str
    size: int
    path: Path
    metadata: dict[str, str]
    created: bool
    cache_hit: bool
    etag: str | None = None


@dataclass(slots=True)
class _PutState:
    """What a put has changed in the bucket so far, to roll it back if it fails."""

    created_reference: bool = False
    delta_written: bool = False
    confirmed: bool = False


class AsyncDeltaService:
    """Delta-compressed put/get/verify/delete over a storage, a diff tool and a cache.

    The service owns a private work directory (mode 0700, created on first use, removed
    by :meth:`aclose`). It does not own the adapters it is given; whoever built them closes
    them (``create_async_client`` does).
    """

    def __init__(
        self,
        *,
        storage: StoragePort,
        diff: DiffPort,
        hasher: HashPort,
        cache: ReferenceCachePort,
        clock: ClockPort,
        logger: LoggerPort,
        metrics: MetricsPort,
        tool_version: str,
        max_ratio: float = 0.5,
        work_root: Path | None = None,
    ) -> None:
        self.storage = storage
        self.diff = diff
        self.hasher = hasher
        self.cache = cache
        self.clock = clock
        self.logger = logger
        self.metrics = metrics
        self.tool_version = tool_version
        self.max_ratio = planner.validate_ratio(max_ratio)
        self._space_locks = KeyedLocks()
        self._dropping = KeyedActivity()
        self._work_root = work_root
        self._work_dir: Path | None = None

    # ------------------------------------------------------------------ lifecycle

    async def aclose(self) -> None:
        """Remove the work directory; idempotent."""
        work, self._work_dir = self._work_dir, None
        if work is not None:
            await anyio.to_thread.run_sync(shutil.rmtree, work, True)

    @property
    def work_dir(self) -> Path | None:
        """The private work directory (temp files of running operations), once created."""
        return self._work_dir

    def _tmp(self, label: str) -> Path:
        if self._work_dir is None:
            self._work_dir = Path(tempfile.mkdtemp(prefix="deltaglider-work-", dir=self._work_root))
        return self._work_dir / f"{secrets.token_hex(8)}-{label}"

    # ------------------------------------------------------------------ write path

    async def put(
        self,
        source: Path,
        space: DeltaSpace,
        max_ratio: float | None = None,
        *,
        name: str | None = None,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
        allow_delta: bool = True,
    ) -> PutSummary:
        """Store the local file ``source`` in ``space`` as ``name`` (default: its file name)."""
        source = Path(source)
        chunks = _file_chunks(source)
        try:
            return await self.put_stream(
                chunks,
                space,
                name if name is not None else source.name,
                max_ratio,
                metadata=metadata,
                content_type=content_type,
                allow_delta=allow_delta,
            )
        finally:
            # Close the source file now, even when cancelled, not whenever the generator
            # happens to be garbage-collected.
            with anyio.CancelScope(shield=True):
                await chunks.aclose()

    async def put_stream(
        self,
        chunks: AsyncIterable[bytes],
        space: DeltaSpace,
        name: str,
        max_ratio: float | None = None,
        *,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
        allow_delta: bool = True,
    ) -> PutSummary:
        """Store the bytes of ``chunks`` in ``space`` under the file name ``name``.

        Raises :class:`ReservedKeyError` for ``reference.bin``/``*.delta`` names and
        :class:`InvalidRatioError` for a ratio outside ``[0, 1]``, before reading anything.
        """
        if "/" in name:
            raise InvalidArgumentError(f"file name {name!r} must not contain '/'")
        logical_key = space.key_for(name)
        planner.check_user_key(logical_key)
        ratio = self.max_ratio if max_ratio is None else planner.validate_ratio(max_ratio)
        user_meta = meta_codec.validate_user_metadata(metadata)
        staged = self._tmp("staged")
        try:
            with single_errors():
                digest = await self.hasher.write_and_hash(chunks, staged)
                head = await _read_head(staged, planner.SNIFF_BYTES)
                if (
                    allow_delta
                    and planner.is_delta_eligible(name, head, digest.size)
                    and planner.delta_keys_fit(space, name)
                    and self._delta_metadata(space, name, digest, 0, user_meta, probe=True)
                    is not None
                ):
                    return await self._put_delta(
                        staged, digest, space, name, ratio, user_meta, content_type
                    )
                return await self._put_direct(staged, digest, space, name, user_meta, content_type)
        finally:
            await _remove_quietly(staged)

    async def _put_direct(
        self,
        staged: Path,
        digest: FileDigest,
        space: DeltaSpace,
        name: str,
        user_meta: Mapping[str, str],
        content_type: str | None,
    ) -> PutSummary:
        key = space.key_for(name)
        meta = meta_codec.direct_metadata(
            tool=self.tool_version,
            original_name=name,
            sha256=digest.sha256,
            size=digest.size,
            md5=digest.md5,
            created_at=self.clock.now(),
            user_metadata=user_meta,
        )
        await self.storage.put_file(
            space.bucket, key, staged, metadata=meta, content_type=content_type
        )
        if await self._remove_other_form(space.bucket, key + DELTA_SUFFIX):
            # That may have been the last delta needing the space's reference: a reference
            # nothing needs is invisible to listings yet billed, so it goes now.
            await self.drop_unused_reference(space)
        self.metrics.increment("deltaglider.put", tags={"stored_as": "direct"})
        self.logger.info("stored direct", key=f"s3://{space.bucket}/{key}", size=digest.size)
        return PutSummary(
            operation="upload_direct",
            bucket=space.bucket,
            key=key,
            logical_key=key,
            original_name=name,
            file_size=digest.size,
            file_sha256=digest.sha256,
            md5=digest.md5,
            stored_size=digest.size,
            etag=f'"{digest.md5}"',
        )

    async def _put_delta(
        self,
        staged: Path,
        digest: FileDigest,
        space: DeltaSpace,
        name: str,
        ratio: float,
        user_meta: Mapping[str, str],
        content_type: str | None,
    ) -> PutSummary:
        logical_key = space.key_for(name)
        delta_key = logical_key + DELTA_SUFFIX
        state = _PutState()
        ref: _Reference | None = None
        try:
            ref = await self._reference_for_put(space, staged, digest, name, state)
            for _ in range(_CONFIRM_ATTEMPTS):
                delta_path = self._tmp("delta")
                try:
                    with self._timed("deltaglider.xdelta3.encode"):
                        await self.diff.encode(ref.path, staged, delta_path)
                    delta_size = (await anyio.Path(delta_path).stat()).st_size
                    if not ref.created and not planner.keep_delta(delta_size, digest.size, ratio):
                        self.logger.info(
                            "delta too large, storing direct",
                            key=f"s3://{space.bucket}/{logical_key}",
                            ratio=round(planner.delta_ratio(delta_size, digest.size), 4),
                            max_ratio=ratio,
                        )
                        return await self._put_direct(
                            staged, digest, space, name, user_meta, content_type
                        )
                    meta = self._delta_metadata(space, name, digest, delta_size, user_meta, ref=ref)
                    if meta is None:  # only a reference key longer than planned can do it
                        return await self._put_direct(
                            staged, digest, space, name, user_meta, content_type
                        )
                    await self.storage.put_file(
                        space.bucket,
                        delta_key,
                        delta_path,
                        metadata=meta,
                        content_type=content_type,
                    )
                    state.delta_written = True
                finally:
                    await _remove_quietly(delta_path)
                if await self._confirm_reference(space, ref):
                    state.confirmed = True
                    break
                # The reference changed under us (deleted and re-created by another
                # writer): our delta is encoded against bytes no longer stored. Re-encode
                # against the reference the bucket holds now.
                old, ref = ref, None
                await self._release(old, staged)
                ref = await self._reference_for_put(space, staged, digest, name, state)
            else:
                raise StorageError(
                    f"reference s3://{space.bucket}/{space.reference_key} kept changing while "
                    f"storing {logical_key}; nothing was left pointing at a missing reference"
                )
            await self._remove_other_form(space.bucket, logical_key)
        except BaseException:
            await self._roll_back(space, delta_key, state)
            raise
        finally:
            if ref is not None:
                await self._release(ref, staged)
        operation = "create_reference" if ref.created else "create_delta"
        stored = delta_size + (ref.size if ref.created else 0)
        self.metrics.increment("deltaglider.put", tags={"stored_as": "delta"})
        self.logger.info(
            "stored delta",
            key=f"s3://{space.bucket}/{delta_key}",
            operation=operation,
            size=digest.size,
            delta_size=delta_size,
        )
        return PutSummary(
            operation=operation,
            bucket=space.bucket,
            key=delta_key,
            logical_key=logical_key,
            original_name=name,
            file_size=digest.size,
            file_sha256=digest.sha256,
            md5=digest.md5,
            stored_size=stored,
            etag=f'"{digest.md5}"',
            delta_size=delta_size,
            delta_ratio=planner.delta_ratio(delta_size, digest.size),
            ref_key=ref.key,
            ref_sha256=ref.sha256,
            cache_hit=ref.cache_hit,
            reference_size=ref.size,
        )

    def _delta_metadata(
        self,
        space: DeltaSpace,
        name: str,
        digest: FileDigest,
        delta_size: int,
        user_meta: Mapping[str, str],
        *,
        ref: _Reference | None = None,
        probe: bool = False,
    ) -> dict[str, str] | None:
        """The metadata of the delta of ``name``; None when it cannot fit S3's 2 KB.

        With ``probe`` the values whose length is not known yet (the delta size, the
        reference's SHA-256) are stood in for by values at least as long, to decide before
        encoding whether a delta is possible at all.
        """
        return meta_codec.delta_metadata(
            tool=self.tool_version,
            original_name=name,
            sha256=digest.sha256,
            size=digest.size,
            md5=digest.md5,
            created_at=self.clock.now(),
            ref_key=space.reference_key if ref is None else ref.key,
            ref_sha256="0" * 64 if ref is None else ref.sha256,
            delta_size=10**18 if probe else delta_size,
            delta_cmd=self.diff.describe_encode(REFERENCE_NAME, name, name + DELTA_SUFFIX),
            short_delta_cmd=self.diff.describe_encode(REFERENCE_NAME, "FILE", "FILE.delta"),
            zero_diff=ref is not None and digest.sha256 == ref.sha256,
            user_metadata=user_meta,
        )

    async def _roll_back(self, space: DeltaSpace, delta_key: str, state: _PutState) -> None:
        """Undo what a failed or cancelled delta put left behind (shielded, time-bounded).

        A delta written but not confirmed may point at a reference that is gone or was
        replaced: delete it, so no delta ever names a reference it was not encoded against.
        A reference this put created and no delta uses is dropped too.
        """
        if state.confirmed or not (state.delta_written or state.created_reference):
            return
        with anyio.move_on_after(_CLEANUP_TIMEOUT, shield=True):
            try:
                if state.delta_written:
                    await self.storage.delete(space.bucket, delta_key)
                if state.created_reference:
                    await self.drop_unused_reference(space)
            except Exception as exc:
                self.logger.warning(
                    "could not roll back a failed put",
                    key=f"s3://{space.bucket}/{delta_key}",
                    error=str(exc),
                )

    async def _reference_for_put(
        self, space: DeltaSpace, staged: Path, digest: FileDigest, name: str, state: _PutState
    ) -> _Reference:
        bucket, ref_key = space.bucket, space.reference_key
        for _ in range(_CONFIRM_ATTEMPTS):
            head = await self.storage.head(bucket, ref_key)
            if head is None:
                async with self._space_locks.hold(space):
                    head = await self.storage.head(bucket, ref_key)
                    if head is None:
                        created = await self._create_reference(space, staged, digest, name, state)
                        if created is not None:
                            return created
                        head = await self.storage.head(bucket, ref_key)
                if head is None:
                    continue  # another writer's reference was deleted again: start over
            try:
                return await self._load_reference(bucket, head)
            except ObjectNotFoundError:
                # Deleted between HEAD and GET (its last delta went away): start over.
                continue
            except IntegrityError:
                # Replaced between HEAD and GET (another writer re-created it, or a
                # server that ignores If-None-Match let a second writer overwrite it)?
                now = await self.storage.head(bucket, ref_key)
                if now is not None and _same_head(now, head):
                    raise  # the same object, really corrupted
                continue
        raise StorageError(
            f"reference s3://{bucket}/{ref_key} kept disappearing while storing "
            f"{space.key_for(name)}"
        )

    async def _create_reference(
        self, space: DeltaSpace, staged: Path, digest: FileDigest, name: str, state: _PutState
    ) -> _Reference | None:
        """Write ``staged`` as the space's reference; None when another writer won."""
        bucket, ref_key = space.bucket, space.reference_key
        meta = meta_codec.reference_metadata(
            tool=self.tool_version,
            source_name=name,
            sha256=digest.sha256,
            size=digest.size,
            md5=digest.md5,
            created_at=self.clock.now(),
        )
        try:
            await self.storage.put_file(bucket, ref_key, staged, metadata=meta, if_none_match=True)
        except PreconditionFailedError:
            self.logger.debug("another writer created the reference", key=ref_key)
            return None
        except ConditionalWriteNotSupportedError:
            self.logger.warning(
                "server refuses conditional writes; falling back to PUT then HEAD", bucket=bucket
            )
            await self.storage.put_file(bucket, ref_key, staged, metadata=meta)
        state.created_reference = True
        # Servers that ignore If-None-Match overwrite silently: read back who won.
        head = await self.storage.head(bucket, ref_key)
        if head is None or meta_codec.decode(head).file_sha256 != digest.sha256:
            return None
        await self._cache_store(digest.sha256, staged)
        self.metrics.increment("deltaglider.reference.created")
        return _Reference(
            key=ref_key,
            sha256=digest.sha256,
            size=digest.size,
            path=staged,
            metadata=meta,
            created=True,
            cache_hit=False,
            etag=head.etag,
        )

    async def _load_reference(self, bucket: str, head: ObjectHead) -> _Reference:
        """A verified local copy of the reference described by ``head``."""
        sha = meta_codec.decode(head).file_sha256
        path, sha, hit = await self._fetch_reference(bucket, head.key, sha)
        try:
            size = (await anyio.Path(path).stat()).st_size
        except BaseException:
            await _remove_quietly(path)
            raise
        return _Reference(
            key=head.key,
            sha256=sha,
            size=size,
            path=path,
            metadata=dict(head.metadata),
            created=False,
            cache_hit=hit,
            etag=head.etag,
        )

    async def _fetch_reference(
        self, bucket: str, ref_key: str, expected_sha: str | None, *, use_cache: bool = True
    ) -> tuple[Path, str, bool]:
        """Local verified copy of a reference: (path, sha256, cache hit).

        With ``use_cache=False`` the stored reference itself is downloaded and checked
        (``verify`` must judge the bucket, not a local copy).
        """
        path = self._tmp("ref")
        try:
            if use_cache and expected_sha:
                try:
                    if await self.cache.fetch(expected_sha, path):
                        self.metrics.increment("deltaglider.cache.hit")
                        return path, expected_sha, True
                except IntegrityError as exc:
                    # A cache entry that fails authentication was altered on this machine
                    # (tampering or disk corruption). The cache has evicted it; surface it
                    # rather than hide it, so the next call downloads a fresh copy.
                    self.metrics.increment("deltaglider.cache.corrupt")
                    raise IntegrityError(
                        f"the locally cached copy of s3://{bucket}/{ref_key} failed "
                        f"verification and was evicted; retry to download it again ({exc})"
                    ) from exc
            self.metrics.increment("deltaglider.cache.miss")
            await self.storage.get_to_file(bucket, ref_key, path)
            digest = await self.hasher.hash_file(path)
            if expected_sha and digest.sha256 != expected_sha:
                raise IntegrityError(
                    f"reference s3://{bucket}/{ref_key} has sha256 {digest.sha256}, "
                    f"expected {expected_sha}: the stored reference is corrupted or was replaced"
                )
            await self._cache_store(digest.sha256, path)
            return path, digest.sha256, False
        except BaseException:
            await _remove_quietly(path)
            raise

    async def _cache_store(self, sha256: str, path: Path) -> None:
        # The cache only saves downloads: failing to fill it must not fail the operation.
        try:
            await self.cache.store(sha256, path)
        except OSError as exc:
            self.logger.warning("could not cache a reference", sha256=sha256, error=str(exc))

    async def _confirm_reference(self, space: DeltaSpace, ref: _Reference) -> bool:
        """Check the stored reference is still ``ref``, restoring it if it vanished.

        True when the delta just written is consistent; False when the space now holds
        another reference, to re-encode against.

        Our delta is already stored, so a :meth:`drop_unused_reference` of this service
        that starts from now on LISTs it and keeps the reference. One already running may
        have LISTed before our delta landed and delete the reference after we HEAD it:
        wait for it to finish first (then the HEAD sees the deletion and we restore).
        """
        await self._dropping.wait_idle(space)
        head = await self.storage.head(space.bucket, ref.key)
        if head is not None:
            return _same_reference(head, ref)
        # The last delta of the space was deleted concurrently and the reference with it:
        # restore it from our verified local copy.
        self.logger.warning("reference vanished, restoring it", key=ref.key)
        try:
            await self.storage.put_file(
                space.bucket, ref.key, ref.path, metadata=ref.metadata, if_none_match=True
            )
        except PreconditionFailedError:
            pass
        except ConditionalWriteNotSupportedError:
            await self.storage.put_file(space.bucket, ref.key, ref.path, metadata=ref.metadata)
        head = await self.storage.head(space.bucket, ref.key)
        if head is None or not _same_reference(head, ref):
            return False
        # Restored: its ETag may differ from the one we knew (multipart uploads).
        ref.etag = head.etag
        return True

    async def _release(self, ref: _Reference, staged: Path) -> None:
        if ref.path != staged:
            await _remove_quietly(ref.path)

    async def _remove_other_form(self, bucket: str, key: str) -> bool:
        """Delete ``key`` if it exists; True when something was deleted."""
        if await self.storage.head(bucket, key) is None:
            return False
        await self.storage.delete(bucket, key)
        return True

    # ------------------------------------------------------------------ read path

    async def resolve(self, key: ObjectKey) -> ResolvedObject:
        """Find the stored object behind a logical (``a.zip``) or stored (``a.zip.delta``) key.

        Raises :class:`ObjectNotFoundError` (or ``BucketNotFoundError``) when neither exists.
        """
        bucket = key.bucket
        if key.key.endswith(DELTA_SUFFIX):
            candidates = [key.key]
        else:
            candidates = [key.key, key.key + DELTA_SUFFIX]
        heads: dict[str, ObjectHead | None] = {}

        async def head_one(candidate: str) -> None:
            heads[candidate] = await self.storage.head(bucket, candidate)

        with single_errors():
            async with anyio.create_task_group() as tg:
                for candidate in candidates:
                    tg.start_soon(head_one, candidate)
        for candidate in candidates:
            head = heads[candidate]
            if head is not None:
                logical = candidate.removesuffix(DELTA_SUFFIX)
                return ResolvedObject(
                    ObjectKey(bucket, candidate), logical, head, meta_codec.decode(head)
                )
        await self.storage.head_bucket(bucket)
        raise ObjectNotFoundError(f"s3://{bucket}/{key.key} not found")

    async def get(self, key: ObjectKey, out: Path) -> GetSummary:
        """Reconstruct ``key`` into the file ``out``, atomically and only once verified.

        The bytes go to a temp file beside ``out`` (so the final rename never crosses a
        filesystem), are verified against the recorded SHA-256, then renamed over ``out``.
        On any failure ``out`` is untouched.
        """
        resolved = await self.resolve(key)
        out = Path(out)
        tmp = out.parent / f".{out.name}.{secrets.token_hex(6)}.dg-partial"
        try:
            summary = await self.reconstruct(resolved, tmp)
            await anyio.to_thread.run_sync(os.replace, tmp, out)
            return summary
        finally:
            await _remove_quietly(tmp)

    @asynccontextmanager
    async def materialize(self, key: ObjectKey) -> AsyncIterator[tuple[Path, GetSummary]]:
        """A verified private temp copy of ``key``, removed when the block exits."""
        resolved = await self.resolve(key)
        path = self._tmp("object")
        try:
            summary = await self.reconstruct(resolved, path)
            yield path, summary
        finally:
            await _remove_quietly(path)

    async def reconstruct(self, resolved: ResolvedObject, dest: Path) -> GetSummary:
        """Write the verified original bytes of ``resolved`` to ``dest``.

        Raises :class:`IntegrityError` when they do not match the recorded SHA-256 (its
        :class:`UnverifiableObjectError` when there is no usable one); the caller owns
        ``dest`` and must discard it on error.
        """
        resolved.check_readable()
        digest, hit = await self._reconstruct_unverified(resolved, dest)
        expected = resolved.meta.file_sha256
        if expected and digest.sha256 != expected:
            self.metrics.increment("deltaglider.integrity.failed")
            raise IntegrityError(
                f"s3://{resolved.stored.bucket}/{resolved.stored.key}: reconstructed sha256 "
                f"{digest.sha256} does not match the recorded {expected}"
            )
        if resolved.meta.file_size is not None and digest.size != resolved.meta.file_size:
            raise IntegrityError(
                f"s3://{resolved.stored.bucket}/{resolved.stored.key}: reconstructed "
                f"{digest.size} bytes, expected {resolved.meta.file_size}"
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
        bucket, key = resolved.stored.bucket, resolved.stored.key
        if resolved.meta.kind is not meta_codec.ObjectKind.DELTA:
            body = await self.storage.open(bucket, key)
            try:
                digest = await self.hasher.write_and_hash(body.iter_chunks(CHUNK), dest)
            finally:
                with anyio.CancelScope(shield=True):
                    await body.aclose()
            return digest, False

        ref_key = resolved.meta.ref_key
        assert ref_key is not None  # classification guarantees it for deltas
        delta_path = self._tmp("delta")
        fetched: dict[str, tuple[Path, str, bool]] = {}

        async def fetch_delta() -> None:
            await self.storage.get_to_file(bucket, key, delta_path)

        async def fetch_ref() -> None:
            expected = resolved.meta.ref_sha256
            try:
                if expected is None:
                    # Deltas written without dg-ref-sha256 (the Rust proxy's): trust the
                    # reference's own recorded sha256, verified on download.
                    head = await self.storage.head(bucket, ref_key)
                    if head is None:
                        raise ObjectNotFoundError(ref_key)
                    expected = meta_codec.decode(head).file_sha256
                fetched["ref"] = await self._fetch_reference(
                    bucket, ref_key, expected, use_cache=use_cache
                )
            except ObjectNotFoundError as exc:
                # The delta exists but cannot be decoded: that is corruption of the
                # bucket, not a missing object (which would read as "no such key").
                raise IntegrityError(
                    f"s3://{bucket}/{key}: its reference s3://{bucket}/{ref_key} is missing"
                ) from exc

        try:
            with single_errors():
                async with anyio.create_task_group() as tg:
                    tg.start_soon(fetch_delta)
                    tg.start_soon(fetch_ref)
            ref_path, _, hit = fetched["ref"]
            try:
                with self._timed("deltaglider.xdelta3.decode"):
                    await self.diff.decode(ref_path, delta_path, dest)
            except DiffToolNotFoundError:
                raise
            except DiffError as exc:
                self.metrics.increment("deltaglider.integrity.failed")
                raise IntegrityError(
                    f"s3://{bucket}/{key} cannot be decoded against {ref_key}: "
                    f"the delta or the reference is corrupted ({exc})"
                ) from exc
            return await self.hasher.hash_file(dest), hit
        finally:
            await _remove_quietly(delta_path)
            if "ref" in fetched:
                await _remove_quietly(fetched["ref"][0])

    async def verify(self, key: ObjectKey) -> VerifyResult:
        """Reconstruct ``key`` and compare its SHA-256; ``valid`` is False on corruption.

        A missing object still raises :class:`ObjectNotFoundError`.
        """
        resolved = await self.resolve(key)
        expected = resolved.meta.file_sha256 or ""
        if (error := resolved.unreadable) is not None:
            return VerifyResult(False, expected, "", str(error))
        path = self._tmp("verify")
        try:
            try:
                # Judge the bucket, not this machine's cached copy of the reference.
                digest, _ = await self._reconstruct_unverified(resolved, path, use_cache=False)
            except IntegrityError as exc:
                return VerifyResult(False, expected, "", str(exc))
            if not expected:
                return VerifyResult(
                    True, "", digest.sha256, "plain S3 object: no recorded sha256 to compare"
                )
            if digest.sha256 != expected:
                return VerifyResult(
                    False, expected, digest.sha256, "sha256 mismatch: the stored data is corrupted"
                )
            return VerifyResult(True, expected, digest.sha256, "sha256 matches")
        finally:
            await _remove_quietly(path)

    # ------------------------------------------------------------------ delete

    async def delete(self, key: ObjectKey) -> DeleteSummary:
        """Delete a logical object; the space's reference goes with its last delta."""
        resolved = await self.resolve(key)
        bucket = resolved.stored.bucket
        await self.storage.delete(bucket, resolved.stored.key)
        reference_deleted = False
        if resolved.meta.kind is meta_codec.ObjectKind.DELTA:
            reference_deleted = await self.drop_unused_reference(resolved.stored.space)
        return DeleteSummary(
            bucket=bucket,
            key=resolved.stored.key,
            logical_key=resolved.logical_key,
            stored_as=resolved.stored_as,
            reference_deleted=reference_deleted,
        )

    async def drop_unused_reference(self, space: DeltaSpace) -> bool:
        """Delete the space's reference when no ``.delta`` is left in it; True if deleted.

        Puts of this service that stored a delta meanwhile wait for this to finish before
        they confirm their reference (and restore it if it was deleted under them).
        """
        async with self._space_locks.hold(space):
            with self._dropping.running(space):
                if await self._has_delta(space):
                    return False
                if await self.storage.head(space.bucket, space.reference_key) is None:
                    return False
                await self.storage.delete(space.bucket, space.reference_key)
                self.logger.info("deleted unused reference", key=space.reference_key)
                return True

    async def _has_delta(self, space: DeltaSpace) -> bool:
        objects = self.storage.iter_objects(space.bucket, space.list_prefix, delimiter="/")
        try:
            async for info in objects:
                if info.key.endswith(DELTA_SUFFIX):
                    return True
            return False
        finally:
            # Stop the listing now rather than whenever the iterator is collected.
            aclose = getattr(objects, "aclose", None)
            if aclose is not None:
                with anyio.CancelScope(shield=True):
                    await aclose()

    # ------------------------------------------------------------------ helpers

    def _timed(self, name: str) -> _Timer:
        return _Timer(self.metrics, name)


def _same_head(a: ObjectHead, b: ObjectHead) -> bool:
    """True when two HEADs of one key describe the same stored object."""
    return a.etag == b.etag and a.last_modified == b.last_modified


def _same_reference(head: ObjectHead, ref: _Reference) -> bool:
    """True when ``head`` describes the reference bytes ``ref`` holds.

    By recorded SHA-256; a reference without deltaglider metadata (another tool wrote it)
    can only be recognised by its ETag.
    """
    sha = meta_codec.decode(head).file_sha256
    if sha is not None:
        return sha == ref.sha256
    return ref.etag is not None and head.etag == ref.etag


class _Timer:
    def __init__(self, metrics: MetricsPort, name: str) -> None:
        self._metrics = metrics
        self._name = name
        self._start = 0.0

    def __enter__(self) -> None:
        self._start = anyio.current_time()

    def __exit__(self, *exc: object) -> None:
        self._metrics.timing(self._name, anyio.current_time() - self._start)


async def _file_chunks(path: Path) -> AsyncGenerator[bytes, None]:
    async with await anyio.open_file(path, "rb") as f:
        while chunk := await f.read(CHUNK):
            yield chunk


async def _read_head(path: Path, size: int) -> bytes:
    async with await anyio.open_file(path, "rb") as f:
        return await f.read(size)


async def _remove_quietly(path: Path) -> None:
    with anyio.CancelScope(shield=True):
        try:
            await anyio.Path(path).unlink(missing_ok=True)
        except OSError:
            pass
