"""A listing of one shard's part of a prefix: ``n`` shards together list it about once.

Every shard runs the same short discovery: ListObjectsV2 with ``Delimiter="/"`` from the
prefix down, one level at a time, until a level holds at least
:data:`PREFIXES_PER_SHARD` sub-prefixes per shard (or nothing is left to descend into).
The sub-prefixes of that last level are the *leaves*. Then each shard lists, in full, only
the leaves whose stable hash (:func:`~.shards.shard_of` of the leaf relative to the prefix)
is its own. Objects met during discovery (files directly in a level's directories) are
kept by the shard their directory hashes to.

So a directory is never split: its files are listed by exactly one shard, the one of its
own name if discovery walked through it, else the one of the leaf above it. Discovery is
repeated by every shard and costs one request per 1,000 entries of the levels it walks;
with a few thousand leaves that is a handful of requests per shard, against one request
per 1,000 objects for the listing itself. Discovery depends on the bucket's contents:
shards that start while the source changes may cut it differently (an object may then be
migrated twice, or wait for a rerun); keep the source still during a sharded migration.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Final

from ..ports.storage import ObjectInfo, StoragePort
from .shards import Shard, shard_of

__all__ = ["PREFIXES_PER_SHARD", "ListingCount", "list_shard"]

#: Discovery descends until a level has this many sub-prefixes per shard, so that the
#: leaves spread evenly over the shards.
PREFIXES_PER_SHARD: Final = 4
_PAGE: Final = 1000


@dataclass(slots=True)
class ListingCount:
    """LIST requests a listing sent (``requests``), of which ``discovery`` to find leaves."""

    requests: int = 0
    discovery: int = 0


async def _pages(
    storage: StoragePort, bucket: str, prefix: str, delimiter: str | None, count: ListingCount
) -> AsyncIterator[tuple[list[ObjectInfo], list[str]]]:
    token: str | None = None
    while True:
        page = await storage.list_page(
            bucket, prefix, delimiter=delimiter, continuation_token=token, max_keys=_PAGE
        )
        count.requests += 1
        if delimiter is not None:
            count.discovery += 1
        yield list(page.objects), list(page.common_prefixes)
        token = page.next_continuation_token
        if not page.is_truncated or not token:
            return


async def list_shard(
    storage: StoragePort,
    bucket: str,
    prefix: str,
    shard: Shard | None,
    count: ListingCount,
) -> AsyncIterator[ObjectInfo]:
    """The objects under ``prefix`` (``""`` or ending with ``/``) that ``shard`` lists.

    Without a shard (or with one of one), every object, in one plain listing. ``count``
    is increased by each LIST request sent. Shards ``0 .. n-1`` together yield every
    object once, as long as the bucket does not change meanwhile.
    """
    if shard is None or shard.count == 1:
        async for objects, _ in _pages(storage, bucket, prefix, None, count):
            for info in objects:
                yield info
        return

    def mine(relative: str) -> bool:
        assert shard is not None
        return shard_of(relative, shard.count) == shard.index

    level = [prefix]
    wanted = PREFIXES_PER_SHARD * shard.count
    while level:
        below: list[str] = []
        for directory in level:
            owner = mine(directory[len(prefix) :].removesuffix("/"))
            async for objects, prefixes in _pages(storage, bucket, directory, "/", count):
                if owner:
                    for info in objects:
                        yield info
                below.extend(prefixes)
        if len(below) >= wanted:
            break
        level = below
    else:
        return
    for leaf in below:
        if mine(leaf[len(prefix) :].removesuffix("/")):
            async for objects, _ in _pages(storage, bucket, leaf, None, count):
                for info in objects:
                    yield info
