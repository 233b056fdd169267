"""Finding and aborting stale multipart uploads: what a killed writer leaves on S3.

A process killed in the middle of a multipart upload (``kill -9``, an OOM kill, a lost
node) leaves the upload open: its parts are stored and billed, but belong to no object,
and nothing completes or aborts it. A retried ``CreateMultipartUpload`` whose first answer
was lost can leave one too. Such an upload cannot be told apart from another writer's
live upload of the same key except by its age, so the rule is an age threshold:
uploads initiated more than ``older_than`` ago are aborted, younger ones are kept, and
uploads whose initiation time the store does not report are kept.

S3 can do the same server side: a lifecycle rule with
``AbortIncompleteMultipartUpload: {DaysAfterInitiation: 1}`` (see the README).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

from ._errors import DeltaGliderError, InvalidArgumentError
from .ports.storage import MultipartUpload, MultipartUploadsPort

__all__ = ["CleanupReport", "StaleUpload", "abort_stale_uploads", "parse_age"]

#: The default age after which an upload is taken for abandoned.
DEFAULT_OLDER_THAN: Final = timedelta(hours=24)
_AGE_RE: Final = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw]?)")
_UNITS: Final = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


@dataclass(frozen=True, slots=True)
class StaleUpload:
    """One in-progress upload: its key, ``UploadId`` and when it was initiated (UTC)."""

    key: str
    upload_id: str
    initiated: datetime | None


@dataclass(slots=True)
class CleanupReport:
    """What :func:`abort_stale_uploads` did under ``s3://bucket/prefix``.

    ``aborted``: uploads older than ``older_than`` (with ``dry_run``: those that would be);
    ``kept``: younger ones and those without an initiation time; ``failed``: uploads whose
    abort raised, with the error.
    """

    bucket: str
    prefix: str
    older_than: timedelta
    dry_run: bool = False
    aborted: list[StaleUpload] = field(default_factory=list)
    kept: list[StaleUpload] = field(default_factory=list)
    failed: list[tuple[StaleUpload, DeltaGliderError]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no abort failed."""
        return not self.failed


def parse_age(value: timedelta | float | int | str) -> timedelta:
    """``older_than`` as a timedelta: a timedelta, seconds, or text like ``90s``, ``30m``,
    ``24h``, ``7d``, ``2w`` (a bare number is seconds).

    Raises :class:`InvalidArgumentError` for a negative, non-finite or malformed age.
    """
    if isinstance(value, timedelta):
        age = value
    elif isinstance(value, bool):
        raise InvalidArgumentError(f"older_than must be a duration, got {value!r}")
    elif isinstance(value, int | float):
        if not math.isfinite(value):
            raise InvalidArgumentError(f"older_than must be finite, got {value!r}")
        age = _seconds(value, value)
    elif isinstance(value, str):
        match = _AGE_RE.fullmatch(value.strip().lower())
        if match is None:
            raise InvalidArgumentError(
                f"older_than {value!r} is not a duration: use seconds or a number with "
                "s, m, h, d or w (e.g. 24h, 7d)"
            )
        age = _seconds(float(match.group(1)) * _UNITS[match.group(2)], value)
    else:
        raise InvalidArgumentError(
            f"older_than must be a timedelta, seconds or text like 24h, got {value!r}"
        )
    if age < timedelta(0):
        raise InvalidArgumentError(f"older_than must not be negative, got {value!r}")
    return age


def _seconds(seconds: float, value: object) -> timedelta:
    try:
        return timedelta(seconds=seconds)
    except OverflowError:
        raise InvalidArgumentError(f"older_than {value!r} is too long a duration") from None


async def abort_stale_uploads(
    uploads: MultipartUploadsPort,
    bucket: str,
    prefix: str,
    *,
    older_than: timedelta,
    now: datetime,
    dry_run: bool = False,
) -> CleanupReport:
    """Abort the in-progress uploads under ``prefix`` initiated before ``now - older_than``.

    ``now`` is timezone-aware UTC. Errors listing raise; errors aborting one upload are
    collected in :attr:`CleanupReport.failed` and the others go on.
    """
    report = CleanupReport(bucket, prefix, older_than, dry_run)
    try:
        cutoff = now - older_than
    except OverflowError:  # older than the calendar: nothing is that old
        cutoff = datetime.min.replace(tzinfo=now.tzinfo)
    found: list[MultipartUpload] = [u async for u in uploads.list_multipart_uploads(bucket, prefix)]
    for upload in found:
        stale = StaleUpload(upload.key, upload.upload_id, upload.initiated)
        if upload.initiated is None or upload.initiated > cutoff:
            report.kept.append(stale)
            continue
        if dry_run:
            report.aborted.append(stale)
            continue
        try:
            await uploads.abort_multipart_upload(bucket, upload.key, upload.upload_id)
        except DeltaGliderError as exc:
            report.failed.append((stale, exc))
        else:
            report.aborted.append(stale)
    return report
