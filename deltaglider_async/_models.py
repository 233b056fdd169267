"""Value objects of the public API: keys, deltaspaces, operation summaries and statistics."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from ._errors import InvalidRatioError, InvalidURLError

REFERENCE_NAME = "reference.bin"
DELTA_SUFFIX = ".delta"
INTERNAL_PREFIX = ".deltaglider/"

_MIB = 1024 * 1024


@dataclass(frozen=True, slots=True, init=False)
class DeltaSpace:
    """The S3 "directory" whose files share one ``reference.bin``.

    ``DeltaSpace(bucket, prefix)``: ``prefix`` is the directory, with or without its
    trailing slash (``releases/app`` and ``releases/app/`` are the same space; a prefix
    ending in ``/`` already carries its separator, so no second one is added); the bucket
    root is the empty prefix. Keys are never normalised otherwise: ``a//b`` stays
    ``a//b``, and a key with a leading slash (``/a.txt``, which S3 keeps apart from
    ``a.txt``) belongs to the directory ``/`` (``DeltaSpace(bucket, "/")``).
    :meth:`of_key` and :attr:`dir` carry the exact directory, its trailing slash included
    (``""`` for the root, ``"/"``, ``"releases/app/"``). Two spaces are equal when their
    bucket and :attr:`dir` are.
    """

    bucket: str
    dir: str

    def __init__(self, bucket: str, prefix: str = "", *, dir: str | None = None) -> None:
        if dir is None:
            dir = prefix if not prefix or prefix.endswith("/") else f"{prefix}/"
        elif dir and not dir.endswith("/"):
            raise ValueError(f"a deltaspace dir ends with '/' (or is empty), got {dir!r}")
        object.__setattr__(self, "bucket", bucket)
        object.__setattr__(self, "dir", dir)

    @classmethod
    def of_key(cls, bucket: str, key: str) -> DeltaSpace:
        """The deltaspace holding ``key``: everything up to its last ``/``."""
        head, slash, _ = key.rpartition("/")
        return cls(bucket, dir=head + slash)

    @property
    def prefix(self) -> str:
        """The directory without its trailing slash (``""`` for the root and for ``/``)."""
        return self.dir[:-1]

    @property
    def reference_key(self) -> str:
        """Key of this space's ``reference.bin``."""
        return self.key_for(REFERENCE_NAME)

    def key_for(self, name: str) -> str:
        """Key of a file called ``name`` directly inside this space."""
        return self.dir + name

    @property
    def list_prefix(self) -> str:
        """Prefix to LIST this space's own objects with (``delimiter='/'``)."""
        return self.dir

    def __repr__(self) -> str:
        return f"DeltaSpace(bucket={self.bucket!r}, dir={self.dir!r})"


def savings_percent(original: int, stored: int) -> float:
    """``(original - stored) / original`` in percent, floored at 0 (and 0 for empty files)."""
    if original <= 0:
        return 0.0
    return max(0.0, (original - stored) / original * 100.0)


@dataclass(frozen=True, slots=True)
class ObjectKey:
    """A bucket and a key, as the user names it (logical) or as stored (``.delta``)."""

    bucket: str
    key: str

    @property
    def space(self) -> DeltaSpace:
        """The deltaspace the key belongs to."""
        return DeltaSpace.of_key(self.bucket, self.key)

    @property
    def name(self) -> str:
        """Last path segment of the key."""
        return self.key.rpartition("/")[2]

    @property
    def url(self) -> str:
        """The key as an ``s3://bucket/key`` URL."""
        return f"s3://{self.bucket}/{self.key}"


@dataclass(frozen=True, slots=True)
class S3Url:
    """A parsed ``s3://bucket[/key]`` URL; ``key`` may be empty or end with ``/``."""

    bucket: str
    key: str

    @classmethod
    def parse(cls, url: str) -> S3Url:
        """Parse ``s3://bucket/key``; raise :class:`InvalidURLError` naming the URL if not."""
        if not isinstance(url, str) or not url.startswith("s3://"):
            raise InvalidURLError(f"not an S3 URL (expected s3://bucket/key): {url!r}")
        bucket, _, key = url[len("s3://") :].partition("/")
        if not bucket:
            raise InvalidURLError(f"S3 URL has no bucket name: {url!r}")
        return cls(bucket, key)

    @property
    def is_prefix(self) -> bool:
        """True when the URL names a "directory" (empty key or trailing slash)."""
        return self.key == "" or self.key.endswith("/")

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


class StoredAs(StrEnum):
    """How a file ended up in the bucket."""

    REFERENCE = "reference"
    DELTA = "delta"
    DIRECT = "direct"


@dataclass(frozen=True, slots=True)
class ContentChecks:
    """What a caller says the bytes it uploads are (boto3's ``ContentMD5``,
    ``ChecksumSHA256``, ``ContentLength``), as hex digests and a size in bytes.

    A put whose bytes do not match stores nothing and raises :class:`InvalidArgumentError`.
    """

    md5: str | None = None
    sha256: str | None = None
    size: int | None = None


#: What a put did: the file became its directory's reference (stored with a zero-diff
#: delta), was stored as a delta against the existing reference, or was stored direct.
PutAction = Literal["create_reference", "create_delta", "upload_direct"]


@dataclass(frozen=True, slots=True)
class PutSummary:
    """What :meth:`AsyncDeltaService.put` stored (the API reference's ``PutSummary``).

    ``operation`` is ``"PUT_DELTA"`` when the file was stored as a delta (also the first
    file of a directory, which becomes its reference plus a zero-diff delta) and ``"PUT"``
    when it was stored direct; ``action`` tells the three apart (``"create_reference"``,
    ``"create_delta"``, ``"upload_direct"``; before 0.2 these were ``operation``'s values).
    ``key`` is the stored key (``x.zip.delta`` for deltas), ``logical_key`` the name it is
    read back with. Hashes are lowercase hex SHA-256: ``file_hash`` of the original bytes,
    ``delta_hash`` of the stored delta, ``reference_hash`` of the reference it was encoded
    against. Sizes are bytes; ``stored_size`` counts a reference this put created.
    """

    operation: Literal["PUT", "PUT_DELTA"]
    bucket: str
    key: str
    file_size: int
    file_hash: str
    delta_size: int | None = None
    delta_hash: str | None = None
    delta_ratio: float | None = None
    reference_hash: str | None = None
    action: PutAction = "upload_direct"
    logical_key: str = ""
    original_name: str = ""
    md5: str = ""
    stored_size: int = 0
    etag: str = ""
    ref_key: str | None = None
    cache_hit: bool = False
    reference_size: int | None = None

    @property
    def file_sha256(self) -> str:
        """Alias of :attr:`file_hash`."""
        return self.file_hash

    @property
    def ref_sha256(self) -> str | None:
        """Alias of :attr:`reference_hash`."""
        return self.reference_hash

    @property
    def created_reference(self) -> bool:
        """True when the file became its directory's reference."""
        return self.action == "create_reference"

    @property
    def stored_as(self) -> StoredAs:
        """``DELTA`` for deltas and new references, ``DIRECT`` otherwise."""
        return StoredAs.DELTA if self.operation == "PUT_DELTA" else StoredAs.DIRECT

    @property
    def is_delta(self) -> bool:
        """True when the file was stored as a delta (including a new reference's)."""
        return self.operation == "PUT_DELTA"

    @property
    def savings_percent(self) -> float:
        """Share of the original size not stored, in percent, never negative: 0 for direct
        objects and for the first file of a directory, whose reference costs slightly
        more than the file (``stored_size`` shows the bytes)."""
        return savings_percent(self.file_size, self.stored_size)


@dataclass(frozen=True, slots=True)
class GetSummary:
    """What :meth:`AsyncDeltaService.get` reconstructed and verified.

    ``operation`` is ``"GET_DELTA"`` for a delta (``reconstructed`` True) and ``"GET"``
    otherwise; ``size`` is in bytes and ``hash`` (alias ``sha256``) the SHA-256 of the
    bytes written, which matched the recorded one. ``stored_size`` is the size of the
    stored object read (the delta's, for a delta; the reference is not counted).
    """

    bucket: str
    key: str
    logical_key: str
    size: int
    sha256: str
    stored_as: StoredAs
    reference_cache_hit: bool = False
    stored_size: int = 0

    @property
    def operation(self) -> Literal["GET", "GET_DELTA"]:
        """``"GET_DELTA"`` when the bytes were reconstructed from a delta, else ``"GET"``."""
        return "GET_DELTA" if self.stored_as is StoredAs.DELTA else "GET"

    @property
    def hash(self) -> str:
        """The SHA-256 of the bytes (alias of :attr:`sha256`)."""
        return self.sha256

    @property
    def reconstructed(self) -> bool:
        """True when the bytes were reconstructed from a delta and its reference."""
        return self.stored_as is StoredAs.DELTA


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """Outcome of :meth:`AsyncDeltaService.verify`; ``valid`` is False on corruption.

    ``operation`` is ``"VERIFY_DELTA"`` for a delta and ``"VERIFY"`` otherwise.
    ``expected_hash`` is the recorded SHA-256 (empty for a plain S3 object),
    ``actual_hash`` the one computed (None when the bytes could not be reconstructed) and
    ``details`` says what was found.
    """

    valid: bool
    operation: Literal["VERIFY", "VERIFY_DELTA"]
    expected_hash: str
    actual_hash: str | None = None
    details: str | None = None

    @property
    def expected_sha256(self) -> str:
        """Alias of :attr:`expected_hash`."""
        return self.expected_hash

    @property
    def actual_sha256(self) -> str:
        """Alias of :attr:`actual_hash` (empty when none was computed)."""
        return self.actual_hash or ""

    @property
    def message(self) -> str:
        """Alias of :attr:`details`."""
        return self.details or ""


@dataclass(frozen=True, slots=True)
class UploadSummary:
    """User-facing result of ``upload()``: sizes and savings of one stored file.

    ``operation`` is ``"PUT_DELTA"`` or ``"PUT"`` and ``action`` the finer
    ``"create_reference"``/``"create_delta"``/``"upload_direct"``. ``key`` is the name the
    file is listed and downloaded by; ``stored_key`` the stored object (``….delta`` for a
    delta). Sizes are bytes.
    """

    operation: Literal["PUT", "PUT_DELTA"]
    bucket: str
    key: str
    original_size: int
    stored_size: int
    is_delta: bool
    delta_ratio: float = 0.0
    action: PutAction = "upload_direct"
    stored_key: str = ""

    @property
    def original_size_mb(self) -> float:
        """Original size in MiB."""
        return self.original_size / _MIB

    @property
    def stored_size_mb(self) -> float:
        """Stored size in MiB."""
        return self.stored_size / _MIB

    @property
    def savings_percent(self) -> float:
        """Share of the original size saved, in percent; never negative (see
        :attr:`PutSummary.savings_percent`)."""
        return savings_percent(self.original_size, self.stored_size)

    @classmethod
    def from_put(cls, summary: PutSummary) -> UploadSummary:
        """Build the user-facing summary from the service's :class:`PutSummary`."""
        return cls(
            operation=summary.operation,
            bucket=summary.bucket,
            key=summary.logical_key or summary.key,
            original_size=summary.file_size,
            stored_size=summary.stored_size,
            is_delta=summary.is_delta,
            delta_ratio=summary.delta_ratio or 0.0,
            action=summary.action,
            stored_key=summary.key,
        )


@dataclass(frozen=True, slots=True)
class BucketStats:
    """Storage statistics of one bucket (see ``get_bucket_stats``)."""

    bucket: str
    object_count: int
    total_size: int
    compressed_size: int
    space_saved: int
    average_compression_ratio: float
    delta_objects: int
    direct_objects: int
    mode: str = "quick"


@dataclass(frozen=True, slots=True)
class DirectoryStats:
    """How one directory (deltaspace) of a bucket stores its files: see which ones drift.

    ``prefix`` is the directory (``"rel/app/"``, ``""`` for the bucket root).
    ``references``/``reference_bytes``: its ``reference.bin`` and later references.
    ``stored_bytes``: references, deltas and files stored whole in it; ``original_bytes``:
    the files' original sizes (exact for HEADed deltas, else estimated as the stats mode
    says). ``worst_recent_ratio``: the largest delta/original size ratio among its
    ``recent`` most recently written deltas (exact, from their metadata); a directory
    whose ratio approaches ``max_ratio`` (0.5) is drifting and gains from re-baselining
    or ``rebase``; None without deltas. Sizes in bytes.
    """

    bucket: str
    prefix: str
    references: int
    reference_bytes: int
    delta_objects: int
    direct_objects: int
    stored_bytes: int
    original_bytes: int
    worst_recent_ratio: float | None
    recent: int

    @property
    def stored_ratio(self) -> float:
        """``stored_bytes / original_bytes`` (0.0 for an empty directory)."""
        return self.stored_bytes / self.original_bytes if self.original_bytes else 0.0


def validate_ratio(value: object, *, source: str = "max_ratio") -> float:
    """Return ``value`` as a float in ``[0, 1]`` or raise :class:`InvalidRatioError`."""
    if isinstance(value, bool):
        raise InvalidRatioError(f"{source} must be a number in [0, 1], got {value!r}")
    try:
        ratio = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidRatioError(f"{source} must be a number in [0, 1], got {value!r}") from None
    if not 0.0 <= ratio <= 1.0:
        raise InvalidRatioError(f"{source} must be in [0, 1], got {ratio}")
    return ratio
