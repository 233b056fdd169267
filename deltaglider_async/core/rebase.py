"""``rebase``: repair the directories under a prefix whose deltas drifted from their reference.

Each directory holding deltas is repaired on its own by
:meth:`~deltaglider_async.core.service.AsyncDeltaService.rebase_space` (see
:mod:`~deltaglider_async.core.reencode` for the rule and why it is safe to kill and to
run again); directories run concurrently, a few at a time, each one file after another.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .._errors import DeltaGliderError, InvalidArgumentError, NotFoundError
from .._models import INTERNAL_PREFIX, DeltaSpace
from . import planner
from .keys import KeyRole, role
from .operations import Operations
from .pool import Job, ProgressCallback, run_jobs
from .reencode import SpaceRebase

__all__ = ["RebaseReport", "rebase"]

#: Directories repaired at once: each runs xdelta3 one file at a time.
_SPACES_IN_FLIGHT = 4


@dataclass(slots=True)
class RebaseReport:
    """What ``rebase`` did (or, with ``dry_run``, would do) under ``s3://bucket/prefix``.

    ``spaces`` has one :class:`SpaceRebase` per directory holding deltas, in key order;
    ``failed`` the directories whose repair raised (``(directory, message)``): nothing of
    theirs was lost, run again to resume. Byte figures are sums over ``spaces``.
    """

    bucket: str
    prefix: str
    dry_run: bool
    spaces: list[SpaceRebase] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)

    @property
    def stored_before(self) -> int:
        """Bytes the deltas and references of these directories occupied before."""
        return sum(s.stored_before for s in self.spaces)

    @property
    def stored_after(self) -> int:
        """Bytes they occupy after (for a dry run: would occupy)."""
        return sum(s.stored_after for s in self.spaces)

    @property
    def saved(self) -> int:
        """``stored_before - stored_after`` over the directories repaired (or planned)."""
        return sum(s.saved for s in self.spaces)

    @property
    def reencoded(self) -> int:
        """Files given a new, smaller delta (or that would be)."""
        return sum(
            1 for s in self.spaces for f in s.files if f.outcome in ("re-encoded", "new-reference")
        )


async def _spaces(
    ops: Operations, bucket: str, directory: str, recursive: bool
) -> tuple[list[str], bool]:
    """The directories (``dir`` strings) at or under ``directory`` that hold a delta, and
    whether anything at all lies under ``directory``."""
    storage = ops.service.storage
    found: set[str] = set()
    anything = False
    delimiter = None if recursive else "/"
    async for info in storage.iter_objects(bucket, directory, delimiter=delimiter):
        if info.key.startswith(INTERNAL_PREFIX):
            continue
        anything = True
        if role(info.key) is KeyRole.DELTA:
            found.add(info.key[: info.key.rfind("/") + 1])
    if not anything:
        # Only subdirectories, or nothing at all? One more listing, stopped at its first key.
        keys = storage.iter_objects(bucket, directory)
        try:
            async for info in keys:
                if not info.key.startswith(INTERNAL_PREFIX):
                    anything = True
                    break
        finally:
            aclose = getattr(keys, "aclose", None)
            if aclose is not None:
                await aclose()
    return sorted(found), anything


async def rebase(
    ops: Operations,
    bucket: str,
    prefix: str,
    *,
    recursive: bool = False,
    dry_run: bool = False,
    rebase_ratio: float | None = None,
    progress: ProgressCallback | None = None,
) -> RebaseReport:
    """Re-encode the deltas of the directory ``prefix`` (and with ``recursive`` of every
    directory below it) against better references.

    ``prefix`` names a directory: ``rel/app`` and ``rel/app/`` are the same, ``""`` the
    bucket root. ``rebase_ratio`` is the re-baselining threshold (default: the client's,
    or 0.25 when the client's turns re-baselining off). ``progress`` is called once per
    directory. Directories that fail are listed in :attr:`RebaseReport.failed`; the
    others are repaired all the same.

    Raises :class:`NotFoundError` when nothing lies under ``prefix`` (a typo must not look
    like a repair), :class:`BucketNotFoundError`, :class:`InvalidArgumentError` for a bad
    bucket or prefix, :class:`InvalidRatioError`.
    """
    if not isinstance(bucket, str) or not bucket:
        raise InvalidArgumentError(f"bucket must be a non-empty str, got {bucket!r}")
    if not isinstance(prefix, str):
        raise InvalidArgumentError(f"prefix must be a str, got {prefix!r}")
    if rebase_ratio is not None:
        planner.validate_ratio(rebase_ratio, source="rebase_ratio")
    directory = DeltaSpace(bucket, prefix).dir
    if directory.startswith(INTERNAL_PREFIX):
        raise InvalidArgumentError(f"{INTERNAL_PREFIX} holds deltaglider's own files")
    report = RebaseReport(bucket, directory, dry_run)
    spaces, anything = await _spaces(ops, bucket, directory, recursive)
    if not anything:
        raise NotFoundError(f"nothing under s3://{bucket}/{directory}: no directory to rebase")

    def job(space_dir: str) -> Job[SpaceRebase]:
        async def run() -> SpaceRebase:
            return await ops.service.rebase_space(
                DeltaSpace(bucket, dir=space_dir), rebase_ratio=rebase_ratio, dry_run=dry_run
            )

        return Job(source=f"s3://{bucket}/{space_dir}", destination="", run=run)

    results = await run_jobs(
        [job(d) for d in spaces],
        limit=max(1, min(ops.concurrency, _SPACES_IN_FLIGHT)),
        progress=progress,
    )
    for space_dir, result in zip(spaces, results, strict=True):
        if result.value is not None:
            report.spaces.append(result.value)
        else:
            error = result.error or DeltaGliderError("no result")
            report.failed.append((space_dir, str(error)))
    return report
