"""User objects a logical listing does not show, and why: the reasons copies skip them.

A logical listing (``list_objects``, ``ls``) shows each file once, under its own name, and
hides what deltaglider keeps for itself. A bucket written by other tools may hold objects
that look like deltaglider's, or that no logical name can carry:

* a ``reference.bin`` that deltaglider did not write (no deltaglider metadata): the name
  is reserved for each directory's reference, so no destination can hold it;
* a directory marker (a key ending in ``/``): it has no file name;
* the ``.delta`` form of a name that also exists direct (an interrupted replacement, or a
  user's own patch beside the file): reads return the direct one.

Copies (``migrate``, ``cp -r``, ``sync`` from S3) never drop these silently: they report
each one as skipped with its reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .._models import DELTA_SUFFIX, REFERENCE_NAME
from ..ports.storage import StoragePort
from . import metadata as meta_codec
from .keys import KeyRole, role
from .pool import for_each

__all__ = ["HiddenObject", "find_hidden", "foreign_references", "reserved_reason"]

MARKER_REASON = "it is a directory marker (a key ending in '/')"


def reserved_reason() -> str:
    """Why a foreign ``reference.bin`` is never copied."""
    return (
        f"its name is reserved: deltaglider keeps each directory's reference in "
        f"'{REFERENCE_NAME}', so the destination cannot hold a file of that name"
    )


def shadowed_reason(direct_key: str) -> str:
    """Why the ``.delta`` form of a name that also exists direct is never copied."""
    return f"the name also exists as {direct_key}, which reads return and which is copied instead"


@dataclass(frozen=True, slots=True)
class HiddenObject:
    """A stored key a logical listing hides although deltaglider did not write it."""

    key: str
    reason: str


async def foreign_references(
    storage: StoragePort, bucket: str, keys: Iterable[str], concurrency: int
) -> list[HiddenObject]:
    """The ``reference.bin`` keys among ``keys`` whose metadata deltaglider did not write
    (one HEAD each, ``concurrency`` at a time), sorted by key."""
    found: list[HiddenObject] = []

    async def check(key: str) -> None:
        head = await storage.head(bucket, key)
        if head is not None and not meta_codec.is_claimed(head.metadata):
            found.append(HiddenObject(key, reserved_reason()))

    await for_each(list(keys), check, concurrency)
    found.sort(key=lambda h: h.key)
    return found


async def find_hidden(
    storage: StoragePort,
    bucket: str,
    prefix: str,
    *,
    concurrency: int,
    selects: Callable[[str], bool] = lambda relative: True,
) -> list[HiddenObject]:
    """The hidden user objects under ``prefix`` (see the module), sorted by key.

    ``selects`` filters on the key relative to ``prefix`` (``--include/--exclude``).
    Lists ``prefix`` once and HEADs each ``reference.bin``.
    """
    hidden: list[HiddenObject] = []
    references: list[str] = []
    stored = set()
    deltas: list[str] = []
    async for info in storage.iter_objects(bucket, prefix):
        key = info.key
        relative = key[len(prefix) :]
        kind = role(key)
        if kind is KeyRole.INTERNAL or not relative or not selects(relative):
            continue
        stored.add(key)
        if kind is KeyRole.REFERENCE:
            references.append(key)
        elif key.endswith("/"):
            hidden.append(HiddenObject(key, MARKER_REASON))
        elif kind is KeyRole.DELTA:
            deltas.append(key)
    for key in deltas:
        direct = key.removesuffix(DELTA_SUFFIX)
        if direct in stored:
            hidden.append(HiddenObject(key, shadowed_reason(direct)))
    hidden.extend(await foreign_references(storage, bucket, references, concurrency))
    hidden.sort(key=lambda h: h.key)
    return hidden
