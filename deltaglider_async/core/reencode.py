"""Re-encoding one drifted directory's deltas against better references (``rebase``).

A directory written without re-baselining (by deltaglider 6.x, or with ``rebase_ratio``
off) encodes every delta against its first file: the deltas of later versions grow, and
past ``max_ratio`` versions are stored whole. :meth:`Reencoder.rebase_space` replays the
write-time rule over the directory's files (its deltas, and the files deltaglider stored
whole; plain objects of other tools are left alone) in the order they were written:

1. **Plan** (writes nothing). Every file is reconstructed and verified, then encoded
   against the plan's current reference, which starts as the directory's
   ``reference.bin``. A file whose delta exceeds ``rebase_ratio`` of its size (and stays
   related, at most 90 %), costs at least the average stored bytes per file since the
   current reference, and may be a reference (not a file xdelta3 would decompress),
   becomes the next reference, with a zero-diff delta. A new delta replaces the stored one
   only when it is smaller (and, for a file stored whole, within ``max_ratio``). The
   plan's figures (stored bytes before and after, references before and after) are what
   ``dry_run`` reports; a plan that saves nothing is not applied.
2. **Apply**. New references are stored first, at the content-addressed keys of
   :func:`~deltaglider_async.core.keys.rebased_reference_key` (an existing reference with
   the same SHA-256 is reused). Then each new delta is decoded locally against its
   reference and its SHA-256 compared with the file's before it replaces the stored delta,
   with ``If-Match`` on the ETag of the version read (a file another writer replaced
   meanwhile is left as that writer left it); a file stored whole gets its ``.delta``
   first (``If-None-Match``), then the whole copy is deleted (``If-Match``). Last, the
   later references no delta names any more are dropped by the usual protocol (temporary
   copy, conditional delete, restore if a delta appeared). The first ``reference.bin``
   always stays.

Killed at any point, every delta still names a stored reference with its SHA-256 (old
deltas keep their old references until the end; new references exist before any delta
names them), and running it again resumes: decisions are replayed from the same bytes,
existing references are found by SHA-256, and deltas already re-encoded are kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal

import anyio

from .._errors import (
    DeltaGliderError,
    IntegrityError,
    ObjectNotFoundError,
    PreconditionFailedError,
)
from .._models import DELTA_SUFFIX, REFERENCE_NAME, DeltaSpace, ObjectKey
from ..ports.hash import FileDigest
from ..ports.storage import OBJECT_SETTINGS, ObjectHead
from . import metadata as meta_codec
from . import planner
from .context import CoreContext, read_head, remove_quietly
from .keys import KeyRole, logical_key, rebased_reference_key, reference_generation, role
from .pool import Job, run_jobs
from .reads import Reader, ResolvedObject
from .references import Reference, ReferenceStore

__all__ = ["RebaseOutcome", "RebasedFile", "Reencoder", "SpaceRebase"]

RebaseOutcome = Literal["re-encoded", "new-reference", "kept", "skipped"]

#: HEAD requests in flight while taking a directory's inventory.
_HEADS_IN_FLIGHT = 16


@dataclass(frozen=True, slots=True)
class RebasedFile:
    """What the repair did (or would do) to one file of the directory.

    ``outcome``: ``"re-encoded"`` (a smaller delta against ``reference``),
    ``"new-reference"`` (the file became ``reference``, its delta a zero-diff),
    ``"kept"`` (its stored delta is already as small) or ``"skipped"`` (``reason`` says
    why: changed meanwhile, unreadable...). Sizes in bytes.
    """

    key: str
    outcome: RebaseOutcome
    size: int
    stored_before: int
    stored_after: int
    reference: str = ""
    reason: str = ""


@dataclass(slots=True)
class SpaceRebase:
    """The repair of one directory: figures in bytes, before and after.

    ``stored_before``/``stored_after``: the directory's deltas and references (direct
    objects are left as they are and not counted). ``applied`` is False for a dry run and
    for a plan that saves nothing.
    """

    bucket: str
    prefix: str
    dry_run: bool
    stored_before: int = 0
    stored_after: int = 0
    references_before: int = 0
    references_after: int = 0
    original_bytes: int = 0
    applied: bool = False
    files: list[RebasedFile] = field(default_factory=list)

    @property
    def saved(self) -> int:
        """``stored_before - stored_after``: bytes the repair saves (or would save)."""
        return self.stored_before - self.stored_after


@dataclass(slots=True)
class _Stored:
    """One delta of the directory as the inventory found it."""

    head: ObjectHead
    meta: meta_codec.StoredMeta

    @property
    def direct(self) -> bool:
        """Stored whole (``<name>``), not as ``<name>.delta``."""
        return role(self.head.key) is KeyRole.OBJECT

    @property
    def order(self) -> tuple[datetime, str]:
        return (self.meta.created_at or self.head.last_modified, self.head.key)


@dataclass(slots=True)
class _Step:
    """The plan for one file: its new delta (local) against ``ref``, or nothing to do."""

    stored: _Stored
    digest: FileDigest
    ref: Reference
    delta: Path | None  # None: keep the stored delta
    new_reference: bool
    delta_size: int


@dataclass(slots=True)
class _Inventory:
    deltas: list[_Stored]
    references: dict[str, ObjectHead]  # key -> head, the first and the later ones
    skipped: list[RebasedFile]

    @property
    def reference_keys(self) -> dict[str | None, str]:
        """The stored references by their recorded SHA-256."""
        return {meta_codec.decode(h).file_sha256: k for k, h in self.references.items()}


class Reencoder:
    """Re-encodes the deltas of one directory against better references."""

    def __init__(
        self,
        ctx: CoreContext,
        reader: Reader,
        refs: ReferenceStore,
        *,
        compressed_references: bool = False,
    ) -> None:
        self._ctx = ctx
        self._reader = reader
        self._refs = refs
        self._compressed_references = compressed_references

    async def rebase_space(
        self,
        space: DeltaSpace,
        *,
        rebase_ratio: float,
        max_ratio: float,
        dry_run: bool = False,
    ) -> SpaceRebase:
        """Plan, and unless ``dry_run`` apply, the repair of ``space`` (see the module doc).

        Raises :class:`IntegrityError` when the directory's ``reference.bin`` fails its
        SHA-256 check, and the storage and diff-tool errors of the requests it makes.
        Files that cannot be read are reported as skipped, not raised.
        """
        report = SpaceRebase(space.bucket, space.dir, dry_run)
        inventory = await self._inventory(space)
        report.files.extend(inventory.skipped)
        report.references_before = len(inventory.references)
        report.stored_before = (
            sum(h.size for h in inventory.references.values())
            + sum(d.head.size for d in inventory.deltas)
            + sum(f.stored_before for f in inventory.skipped)
        )
        primary = inventory.references.get(space.reference_key)
        if primary is None or not inventory.deltas:
            report.stored_after = report.stored_before
            report.references_after = report.references_before
            if primary is None and inventory.deltas:
                report.files.extend(
                    RebasedFile(
                        logical_key(d.head.key),
                        "skipped",
                        d.meta.file_size or 0,
                        d.head.size,
                        d.head.size,
                        reason=f"the directory has no {REFERENCE_NAME}",
                    )
                    for d in inventory.deltas
                )
            return report
        start = await self._refs.load(space.bucket, primary)
        steps: list[_Step] = []
        kept_paths: set[Path] = set()
        try:
            await self._plan(space, inventory, start, rebase_ratio, max_ratio, steps, report)
            kept_paths = {s.ref.path for s in steps} | {start.path}
            # What the deltas name once the plan is applied: the new reference of each
            # replaced delta, the old one of the others (and of the skipped files).
            replaced = {s.stored.head.key for s in steps if s.delta is not None}
            used = {s.ref.sha256 for s in steps if s.delta is not None} | {
                d.meta.ref_sha256
                for d in inventory.deltas
                if d.meta.ref_sha256 and d.head.key not in replaced
            }
            kept_refs = {
                key: head
                for key, head in inventory.references.items()
                if reference_generation(key) == 0 or meta_codec.decode(head).file_sha256 in used
            }
            stored_shas = inventory.reference_keys
            added = [r for r in _new_references(steps) if r.sha256 not in stored_shas]
            report.references_after = len(kept_refs) + len(added)
            # A file stored whole beside a ``.delta`` of its own (an interrupted earlier
            # conversion) ends as that one delta: its shadowed copy is not counted twice.
            converted = {
                logical_key(s.stored.head.key)
                for s in steps
                if s.delta is not None and s.stored.direct
            }
            report.files = [
                _merged(f) if f.key in converted and f.outcome == "skipped" else f
                for f in report.files
            ]
            report.stored_after = (
                sum(h.size for h in kept_refs.values())
                + sum(r.size for r in added)
                + sum(f.stored_after for f in report.files)
            )
            report.original_bytes = sum(f.size for f in report.files)
            if report.saved <= 0:
                # Nothing to gain (the plan's new references cost more than its smaller
                # deltas save): leave the directory as it is.
                report.files = [_unchanged(f) for f in report.files]
                report.stored_after = report.stored_before
                report.references_after = report.references_before
                return report
            if dry_run:
                return report
            await self._apply(space, inventory, steps, report)
            report.applied = True
            return report
        finally:
            with anyio.CancelScope(shield=True):
                for step in steps:
                    if step.delta is not None:
                        await remove_quietly(step.delta)
                for path in kept_paths:
                    await remove_quietly(path)
                await remove_quietly(start.path)

    # ------------------------------------------------------------------ inventory

    async def _inventory(self, space: DeltaSpace) -> _Inventory:
        """The directory's deltas (HEADed, oldest first) and references."""
        storage = self._ctx.storage
        delta_keys: list[str] = []
        sizes: dict[str, int] = {}
        direct: list[str] = []
        reference_keys: list[str] = []
        async for info in storage.iter_objects(space.bucket, space.list_prefix, delimiter="/"):
            kind = role(info.key)
            if kind is KeyRole.DELTA:
                delta_keys.append(info.key)
                sizes[info.key] = info.size
            elif kind is KeyRole.REFERENCE:
                reference_keys.append(info.key)
            elif kind is KeyRole.OBJECT and info.size > 0:
                direct.append(info.key)
        reference_keys.extend(await self._refs.rebased_keys(space))
        skipped: list[RebasedFile] = []
        shadowed = [k for k in delta_keys if logical_key(k) in set(direct)]
        for key in shadowed:
            skipped.append(
                RebasedFile(
                    logical_key(key),
                    "skipped",
                    0,
                    sizes[key],
                    sizes[key],
                    reason="shadowed by its direct form (reads return the direct one)",
                )
            )
        heads = await self._heads(space.bucket, [*reference_keys, *delta_keys, *direct])
        references = {k: h for k in reference_keys if (h := heads.get(k)) is not None}
        deltas: list[_Stored] = []
        for key in direct:
            # Files deltaglider stored whole (their delta was too large when written)
            # may make a delta now; plain objects of other tools are left alone.
            head = heads.get(key)
            if head is not None:
                meta = meta_codec.decode(head)
                if meta.kind is meta_codec.ObjectKind.DIRECT and meta.file_sha256:
                    deltas.append(_Stored(head, meta))
        for key in delta_keys:
            head = heads.get(key)
            if key in shadowed or head is None:
                continue
            meta = meta_codec.decode(head)
            if meta.kind is not meta_codec.ObjectKind.DELTA or not meta.file_sha256:
                skipped.append(
                    RebasedFile(
                        logical_key(key),
                        "skipped",
                        0,
                        head.size,
                        head.size,
                        reason=meta.problem or "not a delta deltaglider can verify",
                    )
                )
                continue
            deltas.append(_Stored(head, meta))
        deltas.sort(key=lambda d: d.order)
        return _Inventory(deltas, references, skipped)

    async def _heads(self, bucket: str, keys: list[str]) -> dict[str, ObjectHead | None]:
        storage = self._ctx.storage
        found: dict[str, ObjectHead | None] = {}

        def job(key: str) -> Job[None]:
            async def run() -> None:
                found[key] = await storage.head(bucket, key)

            return Job(source=f"s3://{bucket}/{key}", destination="", run=run)

        results = await run_jobs([job(k) for k in keys], limit=_HEADS_IN_FLIGHT)
        for result in results:
            if result.error is not None:
                raise result.error
        return found

    # ------------------------------------------------------------------ plan

    async def _plan(
        self,
        space: DeltaSpace,
        inventory: _Inventory,
        start: Reference,
        rebase_ratio: float,
        max_ratio: float,
        steps: list[_Step],
        report: SpaceRebase,
    ) -> None:
        """Replay the re-baselining rule over the files; fill ``steps`` and ``report.files``."""
        ctx = self._ctx
        current = start
        total, count = start.size, 1  # stored bytes and files since ``current``
        # New references get the next generations; bytes already stored as a reference
        # (an interrupted earlier run) keep their key.
        by_sha = inventory.reference_keys
        generation = max((reference_generation(k) for k in inventory.references), default=0)
        for stored in inventory.deltas:
            key = logical_key(stored.head.key)
            work = ctx.tmp("rebase")
            try:
                digest, stored = await self._read(space, stored, work)
            except (DeltaGliderError, OSError) as exc:
                await remove_quietly(work)
                report.files.append(
                    RebasedFile(
                        key,
                        "skipped",
                        0,
                        stored.head.size,
                        stored.head.size,
                        reason=f"cannot be read: {exc}",
                    )
                )
                continue
            name = stored.meta.original_name or key.rpartition("/")[2]
            first = await read_head(work, planner.SNIFF_BYTES)
            if stored.direct and not planner.is_delta_eligible(name, first, digest.size):
                await remove_quietly(work)
                size = stored.head.size
                report.files.append(RebasedFile(key, "kept", digest.size, size, size))
                total += size
                count += 1
                continue
            delta = ctx.tmp("rebase-delta")
            await ctx.diff.encode(current.path, work, delta)
            size = (await anyio.Path(delta).stat()).st_size
            new_reference = False
            if (
                digest.sha256 != current.sha256
                and planner.should_rebase(size, digest.size, rebase_ratio)
                and size * count >= total
                and self._may_reference(first)
            ):
                key_of_ref = by_sha.get(digest.sha256)
                if key_of_ref is None:
                    generation += 1
                    key_of_ref = rebased_reference_key(space.prefix, generation, digest.sha256)
                    by_sha[digest.sha256] = key_of_ref
                current = await _local_reference(key_of_ref, work, digest, name)
                total, count = current.size, 1
                await ctx.diff.encode(current.path, work, delta)
                size = (await anyio.Path(delta).stat()).st_size
                new_reference = True
            else:
                await remove_quietly(work)
            # Deterministic encoding: a delta already re-encoded against ``current`` (an
            # earlier, interrupted run) comes out the same size and is kept.
            replace = size < stored.head.size and (
                not stored.direct or planner.keep_delta(size, digest.size, max_ratio)
            )
            if not replace:
                await remove_quietly(delta)
            after = size if replace else stored.head.size
            steps.append(
                _Step(stored, digest, current, delta if replace else None, new_reference, size)
            )
            outcome: RebaseOutcome = (
                "new-reference"
                if new_reference and replace
                else "re-encoded"
                if replace
                else "kept"
            )
            report.files.append(
                RebasedFile(
                    key,
                    outcome,
                    digest.size,
                    stored.head.size,
                    after,
                    reference=current.key if replace else "",
                )
            )
            total += after
            count += 1

    async def _read(
        self, space: DeltaSpace, stored: _Stored, out: Path
    ) -> tuple[FileDigest, _Stored]:
        """Reconstruct and verify the file behind ``stored`` into ``out``: its digest and
        the version of the delta actually read (another writer may have replaced it since
        the inventory)."""
        resolved = ResolvedObject(
            ObjectKey(space.bucket, stored.head.key),
            logical_key(stored.head.key),
            stored.head,
            stored.meta,
        )
        summary, current = await self._reader.reconstruct_current(resolved, out)
        if current.stored.key != stored.head.key:
            raise ObjectNotFoundError(f"s3://{space.bucket}/{stored.head.key} was replaced")
        digest = await self._ctx.hasher.hash_file(out)
        if digest.sha256 != summary.sha256:
            raise IntegrityError(f"{stored.head.key}: changed while being read")
        return digest, _Stored(current.head, current.meta)

    def _may_reference(self, head: bytes) -> bool:
        return self._compressed_references or not planner.decompressed_by_xdelta3(head)

    # ------------------------------------------------------------------ apply

    async def _apply(
        self, space: DeltaSpace, inventory: _Inventory, steps: list[_Step], report: SpaceRebase
    ) -> None:
        ctx = self._ctx
        stored = inventory.reference_keys
        failed: set[str] = set()
        for ref in _new_references(steps):
            if ref.sha256 in stored:
                continue
            digest = FileDigest(ref.sha256, ref.metadata["md5"], ref.size)
            name = ref.metadata["name"]
            if not await self._refs.store_rebased(space, ref.key, ref.path, digest, name, _nothing):
                failed.add(ref.sha256)
        outcomes = {f.key: i for i, f in enumerate(report.files)}
        for step in steps:
            if step.delta is None:
                continue
            index = outcomes[logical_key(step.stored.head.key)]
            if step.ref.sha256 in failed:
                report.files[index] = _skipped(
                    report.files[index], "its new reference could not be stored"
                )
                continue
            if step.stored.direct:
                reason = await self._convert(space, step)
            else:
                reason = await self._replace(space, step)
            if reason is not None:
                report.files[index] = _skipped(report.files[index], reason)
            else:
                report.files[index] = _with_reference(report.files[index], step.ref.key)
        await self._drop_unneeded(space)
        ctx.metrics.increment("deltaglider.rebase.spaces")

    async def _check(self, step: _Step) -> str | None:
        """Decode the new delta of ``step`` locally: None when it gives the file's SHA-256,
        else why it must not be stored."""
        ctx = self._ctx
        assert step.delta is not None
        check = ctx.tmp("rebase-check")
        try:
            await ctx.diff.decode(step.ref.path, step.delta, check)
            digest = await ctx.hasher.hash_file(check)
        finally:
            await remove_quietly(check)
        if digest.sha256 != step.digest.sha256:
            return (
                f"the new delta decodes to sha256 {digest.sha256}, not {step.digest.sha256}: "
                "kept the stored one"
            )
        return None

    async def _store(
        self,
        space: DeltaSpace,
        step: _Step,
        key: str,
        *,
        if_match: str | None = None,
        if_none_match: bool = False,
    ) -> str | None:
        """Check the new delta of ``step`` (:meth:`_check`), then PUT it at ``key`` with the
        stored object's content type and settings, conditionally. None when stored, else
        why not; :class:`PreconditionFailedError` (and ``ObjectNotFoundError`` for
        ``if_match`` on some servers) propagate."""
        if (reason := await self._check(step)) is not None:
            return reason
        meta = self._metadata(step)
        if meta is None:
            return "the new delta's metadata would exceed S3's 2 KB"
        head = step.stored.head
        assert step.delta is not None
        await self._ctx.storage.put_file(
            space.bucket,
            key,
            step.delta,
            metadata=meta,
            content_type=head.content_type,
            settings={k: v for k, v in head.settings.items() if k in OBJECT_SETTINGS},
            if_match=if_match,
            if_none_match=if_none_match,
        )
        self._ctx.logger.info(
            "re-encoded",
            key=f"s3://{space.bucket}/{key}",
            reference=step.ref.key,
            before=head.size,
            after=step.delta_size,
        )
        return None

    async def _convert(self, space: DeltaSpace, step: _Step) -> str | None:
        """Store a file kept whole as ``<name>.delta`` and delete ``<name>``; None when done.

        The delta is written only where none exists (``If-None-Match``; one left by an
        interrupted run of this repair, with the same file and reference, is taken as
        written), then the whole file is deleted only if it is still the version read
        (``If-Match``). When another writer replaced it meanwhile, the new delta is removed
        again and the writer's version stays.
        """
        ctx = self._ctx
        head = step.stored.head
        delta_key = head.key + DELTA_SUFFIX
        try:
            if (
                reason := await self._store(space, step, delta_key, if_none_match=True)
            ) is not None:
                return reason
        except PreconditionFailedError:
            existing = await ctx.storage.head(space.bucket, delta_key)
            found = None if existing is None else meta_codec.decode(existing)
            if (
                found is None
                or found.file_sha256 != step.digest.sha256
                or found.ref_sha256 != step.ref.sha256
            ):
                return f"{delta_key} was written by another writer meanwhile: left as it is"
        written = await ctx.storage.head(space.bucket, delta_key)
        if written is None:
            return f"{delta_key} vanished right after it was written: left as it is"
        try:
            await ctx.storage.delete(space.bucket, head.key, if_match=head.etag)
        except PreconditionFailedError:
            # Replaced by another writer: its version is the name's; ours must go.
            with anyio.CancelScope(shield=True):
                try:
                    await ctx.storage.delete(space.bucket, delta_key, if_match=written.etag)
                except PreconditionFailedError:
                    pass
            return "changed by another writer meanwhile: left as it is"
        return None

    async def _replace(self, space: DeltaSpace, step: _Step) -> str | None:
        """Put the new delta of ``step`` in place of the stored one if that is still the
        version read; None when done, else why not."""
        head = step.stored.head
        try:
            return await self._store(space, step, head.key, if_match=head.etag)
        except (PreconditionFailedError, ObjectNotFoundError):
            return "changed by another writer meanwhile: left as it is"

    def _metadata(self, step: _Step) -> dict[str, str] | None:
        meta = step.stored.meta
        name = meta.original_name or logical_key(step.stored.head.key).rpartition("/")[2]
        diff = self._ctx.diff
        return meta_codec.delta_metadata(
            tool=self._ctx.tool_version,
            original_name=name,
            sha256=step.digest.sha256,
            size=step.digest.size,
            md5=step.digest.md5,
            # The write's stamp is kept: concurrent writers of the name compare it.
            created_at=meta.created_at or step.stored.head.last_modified,
            ref_key=step.ref.key,
            ref_sha256=step.ref.sha256,
            delta_size=step.delta_size,
            delta_cmd=diff.describe_encode(REFERENCE_NAME, name, name + DELTA_SUFFIX),
            short_delta_cmd=diff.describe_encode(REFERENCE_NAME, "FILE", "FILE.delta"),
            zero_diff=step.digest.sha256 == step.ref.sha256,
            user_metadata=meta.user_metadata,
        )

    async def _drop_unneeded(self, space: DeltaSpace) -> None:
        """Drop the later references of ``space`` that no delta names any more.

        One snapshot of what the deltas name rules out most references at once; only the
        others go through the drop protocol, which asks again before and after deleting.
        """
        named = await self._named_references(space)
        for key in await self._refs.rebased_keys(space):
            head = await self._ctx.storage.head(space.bucket, key)
            if head is None:
                continue
            sha = meta_codec.decode(head).file_sha256
            if sha is None or sha in named:
                continue

            async def needed(sha: str | None = sha) -> bool:
                return sha is None or sha in await self._named_references(space)

            await self._refs.drop_if_unneeded(space, key, needed)

    async def _named_references(self, space: DeltaSpace) -> set[str]:
        """The ``dg-ref-sha256`` of every delta directly in ``space``, as stored now."""
        keys = [
            info.key
            async for info in self._ctx.storage.iter_objects(
                space.bucket, space.list_prefix, delimiter="/"
            )
            if role(info.key) is KeyRole.DELTA
        ]
        heads = await self._heads(space.bucket, keys)
        named: set[str] = set()
        for head in heads.values():
            if head is not None:
                sha = meta_codec.decode(head).ref_sha256
                if sha:
                    named.add(sha)
        return named


def _nothing() -> None:
    """No roll-back to arm: a reference stored by a repair is left for the next run."""


def _new_references(steps: list[_Step]) -> list[Reference]:
    """The references the plan made (``created``) that a replaced delta names, in order."""
    seen: dict[str, Reference] = {}
    for step in steps:
        if step.ref.created and step.delta is not None:
            seen.setdefault(step.ref.sha256, step.ref)
    return list(seen.values())


async def _local_reference(key: str, path: Path, digest: FileDigest, name: str) -> Reference:
    """A plan's new reference ``key``: the local file ``path`` (the file ``name``), not
    stored yet; ``metadata`` carries what storing it needs."""
    return Reference(
        key=key,
        sha256=digest.sha256,
        size=digest.size,
        path=path,
        metadata={"md5": digest.md5, "name": name},
        created=True,
        cache_hit=False,
        head_bytes=await read_head(path, planner.SNIFF_BYTES),
    )


def _merged(done: RebasedFile) -> RebasedFile:
    """The shadowed ``.delta`` of a file being converted: it becomes (or is replaced by)
    the file's new delta, so it no longer counts on its own."""
    return RebasedFile(done.key, "skipped", done.size, done.stored_before, 0, reason=done.reason)


def _unchanged(done: RebasedFile) -> RebasedFile:
    if done.outcome not in ("re-encoded", "new-reference"):
        return done
    return RebasedFile(done.key, "kept", done.size, done.stored_before, done.stored_before)


def _skipped(done: RebasedFile, reason: str) -> RebasedFile:
    return RebasedFile(
        done.key, "skipped", done.size, done.stored_before, done.stored_before, reason=reason
    )


def _with_reference(done: RebasedFile, reference: str) -> RebasedFile:
    return RebasedFile(
        done.key, done.outcome, done.size, done.stored_before, done.stored_after, reference
    )
