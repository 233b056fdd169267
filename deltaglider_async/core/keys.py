"""What a stored key is: the one place that reads the storage format's names.

A bucket written by deltaglider holds four kinds of keys (SPEC §2):

* ``<dir>/reference.bin``: a directory's reference, never shown as a user object;
* ``<dir>/<name>.delta``: a delta, shown as ``<dir>/<name>`` (its *logical* key);
* ``.deltaglider/...`` at the bucket root: deltaglider's own files (the stats cache);
* anything else: a user object stored as it is.

Everything that lists, counts, deletes or migrates keys asks this module instead of testing
suffixes itself, so the rules live in one place.
"""

from __future__ import annotations

from enum import StrEnum

from .._models import DELTA_SUFFIX, INTERNAL_PREFIX, REFERENCE_NAME

__all__ = ["KeyRole", "is_hidden", "logical_key", "role", "stored_keys"]


class KeyRole(StrEnum):
    """The part a stored key plays in the storage format."""

    OBJECT = "object"  # a user object stored as it is (direct or plain)
    DELTA = "delta"  # ``<name>.delta``
    REFERENCE = "reference"  # ``<dir>/reference.bin``
    INTERNAL = "internal"  # ``.deltaglider/...``


def role(key: str) -> KeyRole:
    """The role of the stored ``key``."""
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
