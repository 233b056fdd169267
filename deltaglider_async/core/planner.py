"""Pure decisions of the write path: reserved names, delta eligibility, the ratio rule."""

from __future__ import annotations

from .._errors import ReservedKeyError
from .._models import DELTA_SUFFIX, INTERNAL_PREFIX, REFERENCE_NAME, DeltaSpace
from .._models import validate_ratio as validate_ratio

DELTA_EXTENSIONS = frozenset(
    {
        ".zip",
        ".tar",
        ".gz",
        ".tgz",
        ".bz2",
        ".xz",
        ".7z",
        ".rar",
        ".dmg",
        ".iso",
        ".pkg",
        ".deb",
        ".rpm",
        ".apk",
        ".jar",
        ".war",
        ".ear",
    }
)
COMPOUND_EXTENSIONS = (".tar.gz", ".tar.bz2", ".tar.xz")

_ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
_TAR_MAGIC_OFFSET = 257
SNIFF_BYTES = 512


def check_user_key(key: str) -> None:
    """Refuse keys that collide with the storage format, naming the key."""
    if not key:
        raise ReservedKeyError("object key must not be empty")
    if key.endswith("/"):
        raise ReservedKeyError(f"object key {key!r} ends with '/': it names a directory")
    if key.startswith(INTERNAL_PREFIX) or f"/{INTERNAL_PREFIX}" in key:
        # deltaglider's own files: at the bucket root, and every directory's later
        # references (``<dir>/.deltaglider/refs/...``), whose keys a user file must never
        # take, at any depth.
        raise ReservedKeyError(
            f"object key {key!r} is reserved: '{INTERNAL_PREFIX}' directories hold "
            "deltaglider's own files"
        )
    name = key.rpartition("/")[2]
    if name == REFERENCE_NAME:
        raise ReservedKeyError(
            f"object key {key!r} is reserved: '{REFERENCE_NAME}' holds a deltaspace's reference"
        )
    if key.endswith(DELTA_SUFFIX):
        raise ReservedKeyError(
            f"object key {key!r} is reserved: names ending in '{DELTA_SUFFIX}' hold deltas"
        )


#: S3 refuses keys longer than this many UTF-8 bytes.
MAX_KEY_BYTES = 1024


def delta_keys_fit(space: DeltaSpace, name: str) -> bool:
    """True when the delta (``name.delta``) and the reference keys of ``name`` fit S3's limit.

    A name whose logical key fits but whose ``.delta`` or ``reference.bin`` sibling would
    not is stored direct, so every key S3 accepts stays storable.
    """
    keys = (space.key_for(name + DELTA_SUFFIX), space.reference_key)
    return all(len(key.encode("utf-8")) <= MAX_KEY_BYTES for key in keys)


def has_delta_extension(name: str) -> bool:
    """True when the file name carries one of the archive extensions (case-insensitive)."""
    lower = name.lower()
    if lower.endswith(COMPOUND_EXTENSIONS):
        return True
    dot = lower.rfind(".")
    return dot > 0 and lower[dot:] in DELTA_EXTENSIONS


def has_archive_signature(head: bytes) -> bool:
    """True when the first bytes are a zip local header / end record or a ustar header."""
    if head.startswith(_ZIP_SIGNATURES):
        return True
    magic = head[_TAR_MAGIC_OFFSET : _TAR_MAGIC_OFFSET + 5]
    return magic == b"ustar"


#: First bytes that make xdelta3 decompress a file it is given, unless run with ``-D``:
#: gzip, bzip2, xz and Unix compress (measured with xdelta3 3.0.11 and 3.2.0).
EXTERNALLY_COMPRESSED = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00", b"\x1f\x9d")


def decompressed_by_xdelta3(head: bytes) -> bool:
    """True when xdelta3 without ``-D`` would decompress a file starting with ``head``.

    deltaglider 6.x decodes with ``xdelta3 -d -s REF`` (no ``-D``): a reference starting
    like this is decompressed first, and every delta against it fails to decode. Such a
    file must not become a reference if 6.x is to read the deltas.
    """
    return head.startswith(EXTERNALLY_COMPRESSED)


def is_delta_eligible(name: str, head: bytes, size: int) -> bool:
    """Eligible by extension or by content signature; empty files never are."""
    if size == 0:
        return False
    return has_delta_extension(name) or has_archive_signature(head)


def delta_ratio(delta_size: int, original_size: int) -> float:
    """``delta_size / original_size`` (0 for an empty original)."""
    if original_size <= 0:
        return 0.0
    return delta_size / original_size


def keep_delta(delta_size: int, original_size: int, max_ratio: float) -> bool:
    """The ratio rule: keep the delta unless it is larger than ``max_ratio`` of the file."""
    return delta_ratio(delta_size, original_size) <= max_ratio


#: A delta larger than this share of its file means an unrelated file: it is stored
#: direct and never becomes a reference (measured: related release versions stay far
#: below it, even ~130 versions apart).
UNRELATED_RATIO = 0.9
#: The re-baselining threshold measured best on release series (benchmarks/README.md):
#: over botocore 1.43.0-47, stored/original is 35.6 % with one reference, 23.9 % when a
#: file whose delta exceeds 25 % of its size becomes the next reference.
RECOMMENDED_REBASE_RATIO = 0.25
#: On by default: a series whose consecutive versions differ by more than the threshold
#: does not make every version a reference, because a file also has to cost at least the
#: average stored bytes per upload since the newest reference (``rebase_pays``).
DEFAULT_REBASE_RATIO = RECOMMENDED_REBASE_RATIO


def should_rebase(delta_size: int, original_size: int, rebase_ratio: float) -> bool:
    """True when the file may become its directory's next reference: its delta against
    the newest reference is more than ``rebase_ratio`` of its size, yet it is related to it
    (at most :data:`UNRELATED_RATIO`). ``rebase_ratio`` 1 turns re-baselining off. The
    writer also requires the delta to cost at least what the newest reference has cost
    per upload so far (``ReferenceStore.rebase_pays``)."""
    ratio = delta_ratio(delta_size, original_size)
    return rebase_ratio < ratio <= UNRELATED_RATIO
