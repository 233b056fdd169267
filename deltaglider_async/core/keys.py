"""What a stored key is: the one place that reads the storage format's names.

A bucket written by deltaglider holds four kinds of keys (SPEC §2):

* ``<dir>/reference.bin``: a directory's first reference, never shown as a user object,
  and ``<dir>/.deltaglider/refs/<generation>-<sha256 prefix>/reference.bin``: the later
  references of a re-baselined directory (generation 1, 2, ...; inside the directory, so
  copies of the directory made by other tools carry them along);
* ``<dir>/<name>.delta``: a delta, shown as ``<dir>/<name>`` (its *logical* key);
* ``.deltaglider/...`` at the bucket root: deltaglider's own files (the stats cache, and
  temporary copies ``.deltaglider/tmp/<sha256>/<expiry>/<name>``: rehydrated files behind
  presigned links, and references being dropped);
* anything else: a user object stored as it is.

Everything that lists, counts, deletes or migrates keys asks this module instead of testing
suffixes itself, so the rules live in one place.
"""

from __future__ import annotations

import re
from enum import StrEnum

from .._models import DELTA_SUFFIX, INTERNAL_PREFIX, REFERENCE_NAME

__all__ = [
    "REBASED_DIR",
    "TEMP_PREFIX",
    "KeyRole",
    "is_hidden",
    "logical_key",
    "parse_temp_copy",
    "rebased_reference_key",
    "rebased_references_prefix",
    "reference_generation",
    "reference_space_prefix",
    "role",
    "stored_keys",
    "temp_copy_key",
]

#: Where temporary copies live; a lifecycle rule on it may expire them server side.
TEMP_PREFIX = f"{INTERNAL_PREFIX}tmp/"
#: The folder, inside a directory, of its later references.
REBASED_DIR = f"{INTERNAL_PREFIX}refs/"
_REBASED = re.compile(
    r"(?:^|/)" + re.escape(REBASED_DIR) + r"(\d{8})-[0-9a-f]{16}/" + re.escape(REFERENCE_NAME) + "$"
)


class KeyRole(StrEnum):
    """The part a stored key plays in the storage format."""

    OBJECT = "object"  # a user object stored as it is (direct or plain)
    DELTA = "delta"  # ``<name>.delta``
    REFERENCE = "reference"  # ``<dir>/reference.bin``
    INTERNAL = "internal"  # ``.deltaglider/...``


def role(key: str) -> KeyRole:
    """The role of the stored ``key``."""
    if _REBASED.search(key):
        return KeyRole.REFERENCE
    if key.startswith(INTERNAL_PREFIX):
        return KeyRole.INTERNAL
    if key.rpartition("/")[2] == REFERENCE_NAME:
        return KeyRole.REFERENCE
    if key.endswith(DELTA_SUFFIX) and len(key) > len(DELTA_SUFFIX):
        return KeyRole.DELTA
    return KeyRole.OBJECT


def is_hidden(key: str) -> bool:
    """True for keys that are never shown as user objects (references, internal files)."""
    return role(key) in (KeyRole.REFERENCE, KeyRole.INTERNAL)


def logical_key(key: str) -> str:
    """The name a user sees for the stored ``key``: ``.delta`` stripped from deltas."""
    return key[: -len(DELTA_SUFFIX)] if role(key) is KeyRole.DELTA else key


def stored_keys(logical: str) -> tuple[str, ...]:
    """The stored keys that may hold the logical key ``logical``, in the order reads try them.

    The direct form first, then the delta; a name that already ends in ``.delta`` names
    the delta itself.
    """
    if role(logical) is KeyRole.DELTA:
        return (logical,)
    return (logical, logical + DELTA_SUFFIX)


def temp_copy_key(sha256: str, expiry: int, name: str) -> str:
    """The key of a temporary copy of a file with SHA-256 ``sha256`` called ``name``,
    to be kept until ``expiry`` (Unix seconds): content-addressed, so that readers can
    find any copy of some bytes by their SHA-256 alone (``TEMP_PREFIX + sha256 + "/"``)."""
    return f"{TEMP_PREFIX}{sha256}/{expiry}/{name}"


def parse_temp_copy(key: str) -> tuple[str, int] | None:
    """``(sha256, expiry)`` of a temporary copy's key; None for any other key."""
    if not key.startswith(TEMP_PREFIX):
        return None
    parts = key[len(TEMP_PREFIX) :].split("/")
    if len(parts) != 3 or not parts[1].isdigit():
        return None
    return parts[0], int(parts[1])


def rebased_references_prefix(space_prefix: str) -> str:
    """The prefix under which the directory ``space_prefix`` keeps its later references."""
    return f"{space_prefix}/{REBASED_DIR}" if space_prefix else REBASED_DIR


def rebased_reference_key(space_prefix: str, generation: int, sha256: str) -> str:
    """The key of generation ``generation`` (1, 2, ...) of a directory's references, whose
    content has SHA-256 ``sha256``. It ends in ``/reference.bin``, so deltaglider 6.x, which
    reads ``<directory of dg-ref-key>/reference.bin``, finds it; the keys of one directory
    sort by generation, and two writers re-baselining at once write different keys."""
    prefix = rebased_references_prefix(space_prefix)
    return f"{prefix}{generation:08d}-{sha256[:16]}/{REFERENCE_NAME}"


def reference_generation(key: str) -> int:
    """0 for a ``<dir>/reference.bin``, N for generation N of a re-baselined directory."""
    match = _REBASED.search(key)
    return int(match.group(1)) if match else 0


def reference_space_prefix(key: str) -> str:
    """The directory a reference key belongs to (its deltas' directory)."""
    match = _REBASED.search(key)
    if match is not None:
        return key[: match.start()]
    return key.rpartition("/")[0]
