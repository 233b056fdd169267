"""The write path (SPEC §3): stage, decide, encode, store, and settle the name.

A put of ``dir/x.zip``:

1. streams the input once to a private temp file while hashing it (SHA-256 and MD5);
2. decides whether it may be a delta: a delta-eligible name or content, keys and
   metadata that fit S3's limits, and a reference that xdelta3 will not decompress
   (:func:`~deltaglider_async.core.planner.decompressed_by_xdelta3`), so that deltaglider
   6.x can read the delta, unless ``compressed_references`` allows it;
3. finds or creates the directory's reference (:mod:`.references`), encodes, and keeps
   the delta unless it exceeds ``max_ratio`` (then the file is stored direct);
4. PUTs ``x.zip.delta`` or ``x.zip`` and, for a delta, confirms its reference;
5. **settles the name** (:meth:`Writer._settle`): a name must end up in exactly one form.

Settling the name
-----------------
Every version written carries a *stamp*: its ``dg-created-at``, taken as the later of the
clock and one microsecond after every version of the name read just before the PUT (a
Lamport clock, so a write that follows another is always newer even if the machines'
clocks disagree), with the ETag and the form (direct above delta) breaking ties. After
its PUT a writer reads both forms and, while both exist, deletes the older one (with
``If-Match`` on the ETag it judged, so a version written since is never deleted by
mistake). Concurrent writers compare the same stamps, so they agree on the winner; a writer
whose own version lost simply returns, as a PUT overtaken by a later one does on S3. If a
writer finds *neither* form (possible only on servers that ignore conditional deletes) it
writes its version again. Each writer's last read happens after all of its own changes,
so the last writer to finish sees the final state, and it is always one whole version of
the name. It costs two HEADs (one round trip) before the PUT and two after; a DELETE only
when both forms exist.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterable, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import anyio

from .._errors import (
    InvalidArgumentError,
    ObjectNotFoundError,
    PreconditionFailedError,
    StorageError,
    single_errors,
    translating_local,
)
from .._models import (
    DELTA_SUFFIX,
    REFERENCE_NAME,
    ContentChecks,
    DeltaSpace,
    PutAction,
    PutSummary,
    savings_percent,
)
from ..ports.hash import FileDigest
from ..ports.storage import PROTECTION_SETTINGS, ObjectHead
from . import metadata as meta_codec
from . import planner
from .context import CoreContext, read_head, remove_quietly
from .keys import KeyRole, role
from .references import Reference, ReferenceStore

__all__ = ["Writer"]

#: Attempts at storing a delta whose reference keeps being replaced under it.
_CONFIRM_ATTEMPTS = 3
#: Rounds of reading both forms of a name before giving up on settling it.
_SETTLE_ATTEMPTS = 32
#: Upper bound on the best-effort rollback of a failed or cancelled put (shielded).
_CLEANUP_TIMEOUT = 10.0
_TICK = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class _Upload:
    """One put: what is stored, where, and under which name."""

    space: DeltaSpace
    name: str
    staged: Path
    digest: FileDigest
    head: bytes
    user_meta: Mapping[str, str]
    content_type: str | None
    settings: Mapping[str, Any]

    @property
    def key(self) -> str:
        """The logical (direct) key."""
        return self.space.key_for(self.name)

    @property
    def delta_key(self) -> str:
        """The key of the delta form."""
        return self.key + DELTA_SUFFIX


@dataclass(slots=True)
class _Forms:
    """The stored forms of one name, as read before the PUT."""

    direct: ObjectHead | None
    delta: ObjectHead | None

    def stamp_after(self, now: datetime) -> datetime:
        """The stamp of a new version: ``now``, or just after the newest existing one."""
        stamps = [_created_at(h) for h in (self.direct, self.delta) if h is not None]
        return max([now, *(s + _TICK for s in stamps)])


@dataclass(slots=True)
class _PutState:
    """What a delta put holds and has changed so far, to roll it back if it fails.

    ``ref`` is the reference currently encoded against (its local copy is released at the
    end of the put).
    """

    ref: Reference | None = None
    created_reference: bool = False
    delta_written: bool = False
    #: ETag and stamp of the delta this put wrote, so that undoing it never deletes
    #: another writer's version of the name.
    delta_etag: str | None = None
    delta_stamp: datetime | None = None
    #: The reference that delta was encoded against.
    delta_ref: Reference | None = None
    confirmed: bool = False

    def mark_created(self) -> None:
        """Record that this put wrote a reference."""
        self.created_reference = True


class Writer:
    """Stores files as deltas or direct objects; one per service."""

    def __init__(
        self, ctx: CoreContext, refs: ReferenceStore, *, compressed_references: bool
    ) -> None:
        self._ctx = ctx
        self._refs = refs
        self._compressed_references = compressed_references

    async def put_stream(
        self,
        chunks: AsyncIterable[bytes],
        space: DeltaSpace,
        name: str,
        ratio: float,
        *,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
        allow_delta: bool = True,
        settings: Mapping[str, Any] | None = None,
        checks: ContentChecks | None = None,
        rebase_ratio: float = 1.0,
    ) -> PutSummary:
        """Store the bytes of ``chunks`` in ``space`` as ``name`` (see the module docstring).

        ``settings`` (object settings by boto3 name) go to the stored object; the
        protection ones (server-side encryption) also to a reference this put creates.
        ``checks`` are verified once the input is staged, before anything is stored.
        """
        if "/" in name:
            raise InvalidArgumentError(f"file name {name!r} must not contain '/'")
        planner.check_user_key(space.key_for(name))
        user_meta = meta_codec.validate_user_metadata(metadata)
        staged = self._ctx.tmp("staged")
        try:
            with single_errors():
                with translating_local(staged, "write"):
                    digest = await self._ctx.hasher.write_and_hash(chunks, staged)
                if checks is not None:
                    _check_content(space.key_for(name), digest, checks)
                self._ctx.logger.debug(
                    "put: staged",
                    key=f"s3://{space.bucket}/{space.key_for(name)}",
                    size=digest.size,
                    sha256=digest.sha256,
                )
                upload = _Upload(
                    space,
                    name,
                    staged,
                    digest,
                    await read_head(staged, planner.SNIFF_BYTES),
                    user_meta,
                    content_type,
                    dict(settings or {}),
                )
                if allow_delta and self._delta_possible(upload):
                    return await self._put_delta(upload, ratio, rebase_ratio)
                return await self._put_direct(upload, await self._forms(upload))
        finally:
            await remove_quietly(staged)

    def _delta_possible(self, upload: _Upload) -> bool:
        """Eligible, and the delta's keys and metadata fit S3's limits."""
        return (
            planner.is_delta_eligible(upload.name, upload.head, upload.digest.size)
            and planner.delta_keys_fit(upload.space, upload.name)
            and self._delta_metadata(upload, None, 10**18) is not None
        )

    # ------------------------------------------------------------------ direct

    async def _put_direct(self, upload: _Upload, forms: _Forms) -> PutSummary:
        ctx = self._ctx
        meta = meta_codec.direct_metadata(
            tool=ctx.tool_version,
            original_name=upload.name,
            sha256=upload.digest.sha256,
            size=upload.digest.size,
            md5=upload.digest.md5,
            created_at=forms.stamp_after(ctx.clock.now()),
            user_metadata=upload.user_meta,
        )

        async def put() -> str:
            result = await ctx.storage.put_file(
                upload.space.bucket,
                upload.key,
                upload.staged,
                metadata=meta,
                content_type=upload.content_type,
                settings=upload.settings,
            )
            return result.etag

        await put()
        await self._settle(upload, upload.key, put)
        ctx.metrics.increment("deltaglider.put", tags={"stored_as": "direct"})
        ctx.logger.info(
            "stored direct",
            key=f"s3://{upload.space.bucket}/{upload.key}",
            size=upload.digest.size,
            saved="0.0%",
        )
        return PutSummary(
            operation="PUT",
            bucket=upload.space.bucket,
            key=upload.key,
            file_size=upload.digest.size,
            file_hash=upload.digest.sha256,
            action="upload_direct",
            logical_key=upload.key,
            original_name=upload.name,
            md5=upload.digest.md5,
            stored_size=upload.digest.size,
            etag=f'"{upload.digest.md5}"',
        )

    # ------------------------------------------------------------------ delta

    async def _put_delta(self, upload: _Upload, ratio: float, rebase_ratio: float) -> PutSummary:
        state = _PutState()
        delta_path = self._ctx.tmp("delta")
        try:
            forms = await self._forms_and_reference(upload, state)
            if state.ref is None:
                return await self._put_direct(upload, forms)
            stamp = forms.stamp_after(self._ctx.clock.now())
            stored = await self._store_delta(upload, ratio, rebase_ratio, stamp, delta_path, state)
            if stored is None:
                summary = await self._put_direct(upload, forms)
                if state.created_reference:
                    await self._refs.drop_unused(upload.space)
                return summary

            async def put_again() -> str:
                ref = state.ref
                assert ref is not None
                again = await self._put_delta_object(upload, ref, stamp, delta_path)
                if not await self._refs.confirm(upload.space, ref):
                    raise StorageError(
                        f"reference s3://{upload.space.bucket}/{ref.key} changed while "
                        f"storing {upload.key}"
                    )
                return again

            await self._settle(upload, upload.delta_key, put_again)
            assert state.ref is not None
            delta = await self._ctx.hasher.hash_file(delta_path)
            return self._delta_summary(upload, state.ref, delta)
        except BaseException:
            await self._roll_back(upload, state)
            raise
        finally:
            await remove_quietly(delta_path)
            if state.ref is not None:
                await self._refs.release(state.ref, upload.staged)

    async def _forms_and_reference(self, upload: _Upload, state: _PutState) -> _Forms:
        """Both forms of the name, and (into ``state.ref``) the reference to encode against.

        Read concurrently. The reference is None when the file must be stored direct: the
        space has none and this file may not become one, or 6.x could not decode deltas
        against the one it has.
        """
        forms: list[_Forms] = []

        async def reference() -> None:
            state.ref = await self._reference(upload, state)

        async def read_forms() -> None:
            forms.append(await self._forms(upload))

        with single_errors():
            async with anyio.create_task_group() as tg:
                tg.start_soon(reference)
                tg.start_soon(read_forms)
        return forms[0]

    async def _reference(self, upload: _Upload, state: _PutState) -> Reference | None:
        """The space's reference if deltas against it are allowed; else None."""
        ref = await self._refs.for_put(
            upload.space,
            upload.staged,
            upload.digest,
            upload.name,
            may_create=self._may_reference(upload.head),
            on_created=state.mark_created,
            settings={k: v for k, v in upload.settings.items() if k in PROTECTION_SETTINGS},
        )
        if ref is not None and not self._may_reference(ref.head_bytes):
            self._ctx.logger.info(
                "storing direct: deltaglider 6.x cannot decode deltas against a reference "
                "xdelta3 decompresses",
                key=f"s3://{upload.space.bucket}/{upload.key}",
                reference=ref.key,
            )
            await self._refs.release(ref, upload.staged)
            return None
        return ref

    def _may_reference(self, head: bytes) -> bool:
        """True unless deltas against a file starting with ``head`` would not be portable."""
        return self._compressed_references or not planner.decompressed_by_xdelta3(head)

    async def _store_delta(
        self,
        upload: _Upload,
        ratio: float,
        rebase_ratio: float,
        stamp: datetime,
        delta_path: Path,
        state: _PutState,
    ) -> int | None:
        """Encode against ``state.ref``, check the ratio, PUT the delta, confirm its reference.

        Returns the stored delta's size; None when the file is better stored
        direct (nothing of this put is then left in the bucket but a reference it created).
        When the reference is replaced meanwhile (deleted and re-created by another
        writer), the delta is encoded again against the new one.
        """
        ctx = self._ctx
        rebased = False
        for _ in range(_CONFIRM_ATTEMPTS + 1):
            ref = state.ref
            assert ref is not None
            with ctx.timed("deltaglider.xdelta3.encode"):
                await ctx.diff.encode(ref.path, upload.staged, delta_path)
            delta_size = (await anyio.Path(delta_path).stat()).st_size
            ctx.logger.debug(
                "put: encoded",
                key=f"s3://{upload.space.bucket}/{upload.key}",
                reference=ref.key,
                reference_cached=ref.cache_hit,
                delta_size=delta_size,
            )
            if (
                not ref.created
                and not rebased
                and planner.should_rebase(delta_size, upload.digest.size, rebase_ratio)
                and self._may_reference(upload.head)
                and await self._refs.rebase_pays(upload.space, ref, delta_size)
            ):
                # The directory drifted from its newest reference: this file becomes the
                # next one, and its delta (against itself) is tiny. One writer of this
                # service at a time decides: the others encode against its new reference
                # rather than each storing one of their own.
                rebased = True
                async with ctx.space_locks.hold(upload.space):
                    newer = await self._refs.newer_than(upload.space, ref)
                    if newer is not None:
                        # Another upload of this service just re-baselined: use its
                        # reference if this file's delta against it is smaller.
                        new_ref = await self._smaller_against(newer, upload, delta_size)
                    else:
                        new_ref = await self._refs.create_rebased(
                            upload.space,
                            ref,
                            upload.staged,
                            upload.digest,
                            upload.name,
                            state.mark_created,
                            {k: v for k, v in upload.settings.items() if k in PROTECTION_SETTINGS},
                        )
                if new_ref is not None:
                    await self._refs.release(ref, upload.staged)
                    state.ref = new_ref
                    continue
            if not ref.created and not planner.keep_delta(delta_size, upload.digest.size, ratio):
                ctx.logger.info(
                    "delta too large, storing direct",
                    key=f"s3://{upload.space.bucket}/{upload.key}",
                    ratio=round(planner.delta_ratio(delta_size, upload.digest.size), 4),
                    max_ratio=ratio,
                )
                await self._unwrite_delta(upload, state)
                return None
            state.delta_etag = await self._put_delta_object(upload, ref, stamp, delta_path)
            state.delta_stamp = stamp
            state.delta_ref = ref
            state.delta_written = True
            if await self._refs.confirm(upload.space, ref):
                state.confirmed = True
                return delta_size
            # The reference changed under us: the delta is encoded against bytes no longer
            # stored. Encode again against the reference the bucket holds now.
            await self._refs.release(ref, upload.staged)
            state.ref = None
            state.ref = await self._reference(upload, state)
            if state.ref is None:
                await self._unwrite_delta(upload, state)
                return None
        raise StorageError(
            f"reference s3://{upload.space.bucket}/{upload.space.reference_key} kept changing "
            f"while storing {upload.key}; nothing was left pointing at a missing reference"
        )

    async def _smaller_against(
        self, candidate: Reference, upload: _Upload, delta_size: int
    ) -> Reference | None:
        """``candidate`` when the upload's delta against it is smaller than ``delta_size``
        (it is then encoded again against it), else None (``candidate`` released)."""
        trial = self._ctx.tmp("trial")
        try:
            with self._ctx.timed("deltaglider.xdelta3.encode"):
                await self._ctx.diff.encode(candidate.path, upload.staged, trial)
            smaller = (await anyio.Path(trial).stat()).st_size < delta_size
        finally:
            await remove_quietly(trial)
        if smaller:
            return candidate
        await self._refs.release(candidate, upload.staged)
        return None

    async def _unwrite_delta(self, upload: _Upload, state: _PutState) -> None:
        """Delete the unconfirmed delta an earlier attempt of this put stored."""
        if state.delta_written and not state.confirmed:
            await self._delete_own_delta(upload, state)
            state.delta_written = False

    async def _delete_own_delta(self, upload: _Upload, state: _PutState) -> None:
        """Delete the delta this put wrote, only if it is still that one.

        Another writer of the name may have replaced it meanwhile, and its version must
        survive this put's failure: the delete is conditional on this put's ETag
        (``If-Match``), after a HEAD that also compares the stamp (two writers of the same
        bytes make the same ETag). A server that ignores ``If-Match`` on DELETE narrows
        this to the time between the HEAD and the DELETE.
        """
        bucket = upload.space.bucket
        head = await self._ctx.storage.head(bucket, upload.delta_key)
        if head is None or head.etag != state.delta_etag:
            return
        stamp = meta_codec.decode(head).created_at
        mine = state.delta_stamp
        if stamp is None or mine is None:
            return  # cannot tell: better an orphan delta than another writer's loss
        if meta_codec.format_timestamp(stamp) != meta_codec.format_timestamp(mine):
            return
        await self._delete_if_unchanged(bucket, head)

    async def _put_delta_object(
        self, upload: _Upload, ref: Reference, stamp: datetime, delta_path: Path
    ) -> str:
        size = (await anyio.Path(delta_path).stat()).st_size
        meta = self._delta_metadata(upload, ref, size, stamp=stamp)
        if meta is None:  # only a reference key longer than planned can do it
            raise StorageError(f"the metadata of {upload.delta_key} exceeds S3's 2 KB")
        result = await self._ctx.storage.put_file(
            upload.space.bucket,
            upload.delta_key,
            delta_path,
            metadata=meta,
            content_type=upload.content_type,
            settings=upload.settings,
        )
        return result.etag

    def _delta_metadata(
        self,
        upload: _Upload,
        ref: Reference | None,
        delta_size: int,
        *,
        stamp: datetime | None = None,
    ) -> dict[str, str] | None:
        """The metadata of the delta; None when it cannot fit S3's 2 KB.

        Without ``ref`` (a probe before encoding) the values not known yet are stood in
        for by values at least as long.
        """
        diff = self._ctx.diff
        return meta_codec.delta_metadata(
            tool=self._ctx.tool_version,
            original_name=upload.name,
            sha256=upload.digest.sha256,
            size=upload.digest.size,
            md5=upload.digest.md5,
            created_at=stamp or self._ctx.clock.now(),
            ref_key=upload.space.reference_key if ref is None else ref.key,
            ref_sha256="0" * 64 if ref is None else ref.sha256,
            delta_size=delta_size,
            delta_cmd=diff.describe_encode(REFERENCE_NAME, upload.name, upload.name + ".delta"),
            short_delta_cmd=diff.describe_encode(REFERENCE_NAME, "FILE", "FILE.delta"),
            zero_diff=ref is not None and upload.digest.sha256 == ref.sha256,
            user_metadata=upload.user_meta,
        )

    def _delta_summary(self, upload: _Upload, ref: Reference, delta: FileDigest) -> PutSummary:
        ctx = self._ctx
        action: PutAction = "create_reference" if ref.created else "create_delta"
        ctx.metrics.increment("deltaglider.put", tags={"stored_as": "delta"})
        stored = delta.size + (ref.size if ref.created else 0)
        ctx.logger.info(
            "stored delta",
            key=f"s3://{upload.space.bucket}/{upload.delta_key}",
            operation=action,
            size=upload.digest.size,
            delta_size=delta.size,
            ratio=f"{planner.delta_ratio(delta.size, upload.digest.size):.4f}",
            saved=f"{savings_percent(upload.digest.size, stored):.1f}%",
        )
        return PutSummary(
            operation="PUT_DELTA",
            bucket=upload.space.bucket,
            key=upload.delta_key,
            file_size=upload.digest.size,
            file_hash=upload.digest.sha256,
            delta_size=delta.size,
            delta_hash=delta.sha256,
            delta_ratio=planner.delta_ratio(delta.size, upload.digest.size),
            reference_hash=ref.sha256,
            action=action,
            logical_key=upload.key,
            original_name=upload.name,
            md5=upload.digest.md5,
            stored_size=delta.size + (ref.size if ref.created else 0),
            etag=f'"{upload.digest.md5}"',
            ref_key=ref.key,
            cache_hit=ref.cache_hit,
            reference_size=ref.size,
        )

    async def _roll_back(self, upload: _Upload, state: _PutState) -> None:
        """Undo what a failed or cancelled delta put left behind (shielded, time-bounded).

        A delta written but not confirmed may point at a reference that is gone or was
        replaced. It is confirmed now if it can be: it is then a complete version of the
        name, possibly the newest (it may have replaced another writer's), and stays, as
        an S3 PUT whose answer was lost stays. Otherwise it is deleted (only if it is still
        this put's), so no delta ever names a reference it was not encoded against. A
        reference this put created and no delta uses is dropped too.
        """
        if state.confirmed or not (state.delta_written or state.created_reference):
            return
        with anyio.move_on_after(_CLEANUP_TIMEOUT, shield=True):
            try:
                # Only against the reference it was encoded against, if still held here.
                if state.delta_written and state.ref is not None and state.delta_ref is state.ref:
                    state.confirmed = await self._refs.confirm(upload.space, state.ref)
                if state.delta_written and not state.confirmed:
                    await self._delete_own_delta(upload, state)
                if state.created_reference:
                    await self._refs.drop_unused(upload.space)
            except Exception as exc:
                self._ctx.logger.warning(
                    "could not roll back a failed put",
                    key=f"s3://{upload.space.bucket}/{upload.delta_key}",
                    error=str(exc),
                )

    # ------------------------------------------------------------------ the name

    async def _forms(self, upload: _Upload) -> _Forms:
        """HEAD both forms of the name, concurrently."""
        direct, delta = await self._heads(upload.space.bucket, upload.key, upload.delta_key)
        return _Forms(direct, delta)

    async def _heads(
        self, bucket: str, first: str, second: str
    ) -> tuple[ObjectHead | None, ObjectHead | None]:
        heads: dict[str, ObjectHead | None] = {}

        async def head(key: str) -> None:
            heads[key] = await self._ctx.storage.head(bucket, key)

        with single_errors():
            async with anyio.create_task_group() as tg:
                tg.start_soon(head, first)
                tg.start_soon(head, second)
        return heads[first], heads[second]

    async def _settle(
        self, upload: _Upload, mine: str, put_again: Callable[[], Awaitable[str]]
    ) -> None:
        """Leave the name in exactly one form, the newer (see the module docstring).

        ``mine`` is the key this put wrote; ``put_again`` writes the same version again.
        """
        bucket = upload.space.bucket
        other = upload.delta_key if mine == upload.key else upload.key
        removed_delta = False
        for attempt in range(_SETTLE_ATTEMPTS):
            mine_head, other_head = await self._heads(bucket, mine, other)
            if mine_head is not None and other_head is not None:
                older = min((mine_head, other_head), key=_rank)
                self._ctx.logger.debug(
                    "put: both forms of the name exist, removing the older",
                    key=f"s3://{bucket}/{older.key}",
                )
                removed_delta |= older.key == upload.delta_key
                await self._delete_if_unchanged(bucket, older)
                # Other writers of the name are at work: let them finish their round.
                await anyio.sleep(random.uniform(0, 0.01 * min(attempt, 10)))
                continue
            if mine_head is None and other_head is None:
                # Neither form: a delete that ignored its condition took the survivor.
                # Write this version again: it is one that was written.
                self._ctx.logger.warning("name vanished while settling, writing it again", key=mine)
                await put_again()
                continue
            if removed_delta:
                await self._refs.drop_unused(upload.space)
            return
        raise StorageError(
            f"s3://{bucket}/{upload.key} kept changing while storing it: too many concurrent "
            "writers of one name"
        )

    async def _delete_if_unchanged(self, bucket: str, head: ObjectHead) -> None:
        """Delete the object ``head`` describes, unless it was replaced since."""
        try:
            await self._ctx.storage.delete(bucket, head.key, if_match=head.etag)
        except (PreconditionFailedError, ObjectNotFoundError):
            pass  # replaced or deleted meanwhile: the next read decides again


def _check_content(key: str, digest: FileDigest, checks: ContentChecks) -> None:
    """Raise InvalidArgumentError (S3's BadDigest) when the staged bytes are not as announced."""
    for what, announced, actual in (
        ("Content-MD5", checks.md5, digest.md5),
        ("SHA-256 checksum", checks.sha256, digest.sha256),
        ("Content-Length", None if checks.size is None else str(checks.size), str(digest.size)),
    ):
        if announced is not None and announced.lower() != actual:
            raise InvalidArgumentError(
                f"BadDigest: {key}: the {what} given ({announced}) does not match the "
                f"{digest.size} bytes received ({actual}); nothing was stored"
            )


def _created_at(head: ObjectHead) -> datetime:
    created = meta_codec.decode(head).created_at
    return created if created is not None else head.last_modified


def _rank(head: ObjectHead) -> tuple[datetime, str, bool]:
    """Orders the versions of one name: stamp, then ETag, then the direct form above."""
    return _created_at(head), head.etag.strip('"'), role(head.key) is not KeyRole.DELTA
