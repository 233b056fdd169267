"""Logical listing: stored keys turned into the names users see, in S3's order, paged.

A bucket stores ``x.zip`` as ``x.zip.delta`` and hides ``reference.bin`` and
``.deltaglider/``. Listing the logical names is not a filter over the stored listing:

* **Order.** Stripping ``.delta`` moves a key. ``rel/app.zip.delta`` is stored *after*
  ``rel/app.zip.asc``, yet ``rel/app.zip`` sorts *before* it. Logical keys must come back
  in UTF-8 byte order, like S3's, so entries are held back until no later stored key can
  produce a smaller logical one (:func:`lower_bound`), then released in order.
* **Uniqueness.** While a name is being replaced, both ``x`` and ``x.delta`` may exist:
  the name is listed once (as the direct object, which is what a read returns).
* **Paging.** The cursor is a *logical* key: a page holds the entries whose logical key
  is greater than it, so ``StartAfter`` and the continuation token mean the same thing and
  resuming after any entry returns every other entry exactly once.
* **Delimiters.** With ``/`` (or any delimiter that cannot straddle the ``.delta``
  suffix) the server rolls keys up into common prefixes, which are the logical ones;
  a common prefix is shown only when it holds a visible object (a directory left with
  just its ``reference.bin`` is not listed). A delimiter that could straddle the suffix
  (``.``, ``e``, ``ta``...) is applied here, on the logical keys, over a flat listing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypeVar

from .._errors import StorageError
from .._models import DELTA_SUFFIX, INTERNAL_PREFIX
from ..ports.storage import ObjectInfo, StoragePort
from .keys import KeyRole, is_hidden, logical_key, role
from .pool import for_each

__all__ = [
    "Cursor",
    "KeyOrder",
    "ListingOrder",
    "LogicalPage",
    "list_logical",
    "lower_bound",
    "server_can_delimit",
]

#: S3 caps a LIST page at 1000 entries.
MAX_KEYS = 1000
#: Extra entries asked for per LIST request, so hidden objects rarely cost another request.
_SLACK = 8

Entry = ObjectInfo | str  # an object, or a common prefix
T = TypeVar("T")


class KeyOrder(StrEnum):
    """The order in which a server lists keys.

    ``BYTES``: UTF-8 byte order, as S3 does. ``TREE``: directory by directory, as servers
    backed by a file tree do (SeaweedFS): ``a/x`` before ``a-1``, since a directory's
    contents follow its name. Both compare keys as strings once ``/`` is ranked lowest.
    """

    BYTES = "bytes"
    TREE = "tree"

    def rank(self, key: str) -> str:
        """A string that sorts, in byte order, as ``key`` sorts in this order."""
        return key if self is KeyOrder.BYTES else key.replace("/", "\x00")


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a logical listing resumes.

    Entries at or before ``after`` (in ``order``) were returned. The raw listing restarts
    with the server's ``server_token`` or, without one, with ``StartAfter=start``:
    resuming a server listing by its own token returns exactly what it would have, on
    every server, so no entry is skipped even where a server's order is not S3's.
    """

    after: str | None = None
    start: str | None = None
    server_token: str | None = None
    order: KeyOrder = KeyOrder.BYTES

    @classmethod
    def start_after(cls, after: str | None, order: KeyOrder = KeyOrder.BYTES) -> Cursor:
        """The cursor of a listing that starts after ``after`` (S3's ``StartAfter``)."""
        return cls(after=after, start=after, order=order)


@dataclass(slots=True)
class ListingOrder:
    """What a client has learnt of its server's key order, shared by its listings."""

    order: KeyOrder = KeyOrder.BYTES


@dataclass(frozen=True, slots=True)
class LogicalPage:
    """One page of a logical listing.

    ``entries`` holds objects (their stored :class:`ObjectInfo`; the logical key is
    :func:`~deltaglider_async.core.keys.logical_key` of ``info.key``) and common prefixes
    (``str``), in the server's order (S3's UTF-8 byte order, see :class:`KeyOrder`).
    ``next`` is the cursor of the following page when ``is_truncated``.
    """

    entries: list[Entry]
    next: Cursor | None = None

    @property
    def is_truncated(self) -> bool:
        """True when another entry exists after these."""
        return self.next is not None

    @property
    def objects(self) -> list[ObjectInfo]:
        """The objects of the page, in order."""
        return [e for e in self.entries if isinstance(e, ObjectInfo)]

    @property
    def common_prefixes(self) -> list[str]:
        """The common prefixes of the page, in order."""
        return [e for e in self.entries if isinstance(e, str)]


def entry_key(entry: Entry) -> str:
    """The logical key of an entry (a common prefix is its own key)."""
    return entry if isinstance(entry, str) else logical_key(entry.key)


def server_can_delimit(delimiter: str) -> bool:
    """True when S3's own roll-up by ``delimiter`` equals the roll-up of the logical keys.

    S3 rolls up stored keys. A stored delta is its logical key plus ``.delta``; the two
    roll up alike unless an occurrence of the delimiter can overlap that suffix.
    """
    if delimiter in DELTA_SUFFIX:
        return False
    return not any(DELTA_SUFFIX.startswith(delimiter[i:]) for i in range(1, len(delimiter)))


def lower_bound(stored_key: str, prefix: str) -> str:
    """The smallest logical key that a stored key listed after ``stored_key`` can have.

    A later stored key ``K > stored_key`` has the logical key ``K`` itself, or ``X`` when
    it is ``X.delta``; ``X`` can be smaller than ``stored_key`` only when ``X`` is a proper
    prefix of it followed by something that sorts before ``.delta`` (``app.zip`` before
    ``app.zip.asc``). Entries whose logical key is below the bound are final.
    """
    for end in range(max(len(prefix), 1), len(stored_key)):
        if stored_key[end:] < DELTA_SUFFIX:
            return stored_key[:end]
    return stored_key


@dataclass(slots=True)
class _Pending:
    """Entries read but not yet released, by logical key (one entry per key).

    Each remembers the raw page it was read from (its sequence number), so that a page
    ending before it can resume the raw listing there.
    """

    order: KeyOrder
    entries: dict[str, tuple[Entry, int]] = field(default_factory=dict)

    def add(self, key: str, entry: Entry, page: int) -> None:
        current = self.entries.get(key)
        if current is None:
            self.entries[key] = (entry, page)
        elif (
            isinstance(current[0], ObjectInfo)
            and isinstance(entry, ObjectInfo)
            and role(current[0].key) is KeyRole.DELTA
        ):
            # The direct form wins over the delta form of one name, as a read does.
            self.entries[key] = (entry, min(page, current[1]))

    def release_below(self, bound: str | None) -> list[tuple[str, Entry, int]]:
        """Remove and return, in order, the entries ranked below ``bound`` (all when None)."""
        rank = self.order.rank
        ready = sorted((k for k in self.entries if bound is None or rank(k) < bound), key=rank)
        return [(k, *self.entries.pop(k)) for k in ready]

    def first_page(self) -> int | None:
        """The earliest raw page an entry still pending came from."""
        return min((page for _, page in self.entries.values()), default=None)


class _OrderChanged(Exception):
    """The server's keys came in another order than assumed: list again in that order."""


def _check_order(order: KeyOrder, previous: str | None, key: str) -> KeyOrder:
    """The order the server evidently uses, given two keys it listed in succession."""
    if previous is None or order.rank(previous) <= order.rank(key):
        return order
    for candidate in KeyOrder:
        if candidate.rank(previous) <= candidate.rank(key):
            return candidate
    raise StorageError(
        f"the server listed {key!r} after {previous!r}, in no order S3 clients know: "
        "a listing cannot be paged reliably"
    )


async def list_logical(
    storage: StoragePort,
    bucket: str,
    prefix: str = "",
    *,
    delimiter: str | None = None,
    max_keys: int = MAX_KEYS,
    cursor: Cursor | None = None,
    learnt: ListingOrder | None = None,
    concurrency: int = 32,
    fetch_owner: bool = False,
) -> LogicalPage:
    """Up to ``max_keys`` logical entries under ``prefix`` after ``cursor``.

    ``delimiter`` rolls keys up into common prefixes as ListObjectsV2 does. Common
    prefixes returned by the server are checked (one small LIST each, at most
    ``concurrency`` at a time) to hold a visible object. ``learnt`` records the server's
    key order once seen (:class:`KeyOrder`), for later listings of the same client.
    Raises what the storage raises (``BucketNotFoundError``...).
    """
    cursor = cursor or Cursor()
    learnt = learnt or ListingOrder()
    order = cursor.order if cursor.order is not KeyOrder.BYTES else learnt.order
    while True:
        try:
            return await _list(
                storage,
                bucket,
                prefix,
                delimiter,
                max_keys,
                cursor,
                order,
                concurrency,
                fetch_owner,
            )
        except _OrderChanged as changed:
            order = learnt.order = KeyOrder(str(changed))


async def _list(
    storage: StoragePort,
    bucket: str,
    prefix: str,
    delimiter: str | None,
    max_keys: int,
    cursor: Cursor,
    order: KeyOrder,
    concurrency: int,
    fetch_owner: bool,
) -> LogicalPage:
    server_delimiter = delimiter if delimiter and server_can_delimit(delimiter) else None
    local_delimiter = delimiter if delimiter and server_delimiter is None else None
    rank = order.rank
    pending = _Pending(order)
    found: list[Entry] = []
    checked: dict[str, bool] = {}
    # How each raw page was fetched: (StartAfter, continuation token).
    sources: list[tuple[str | None, str | None]] = [(cursor.start, cursor.server_token)]
    # Entries ranked at or below ``floor`` were returned already: a key rolled up into a
    # common prefix already returned must not return it again.
    floor = None if cursor.after is None else rank(cursor.after)
    previous: str | None = None
    while True:
        start, token = sources[-1]
        page = await storage.list_page(
            bucket,
            prefix,
            delimiter=server_delimiter,
            continuation_token=token,
            start_after=None if token is not None else _xml_safe_start(start),
            max_keys=min(MAX_KEYS, max_keys - len(found) + 1 + _SLACK),
            fetch_owner=fetch_owner,
        )
        for info in page.objects:
            seen = _check_order(order, previous, info.key)
            if seen is not order:
                raise _OrderChanged(seen.value)
            previous = info.key
        number = len(sources) - 1
        raw: list[Entry] = [*page.objects, *page.common_prefixes]
        items = sorted(raw, key=lambda e: rank(_stored_key(e)))
        for item in items:
            entry, key = _logical_entry(item, prefix, local_delimiter)
            if key is not None and (floor is None or rank(key) > floor):
                pending.add(key, entry, number)
        if page.is_truncated:
            sources.append((None, _next_token(page.next_continuation_token, token)))
            if not items:
                continue
        bound = (
            None
            if not page.is_truncated
            else lower_bound(rank(_stored_key(items[-1])), rank(prefix))
        )
        ready = pending.release_below(bound)
        while ready:
            # Check only as many common prefixes as the page can still take.
            room = max_keys - len(found) + 1
            chunk, ready = ready[:room], ready[room:]
            await _check_prefixes(storage, bucket, chunk, checked, concurrency)
            for index, (key, entry, _) in enumerate(chunk):
                if isinstance(entry, str) and not checked.get(entry, True):
                    floor = rank(key)
                    continue
                if len(found) == max_keys:
                    unreturned = [p for _, _, p in chunk[index:] + ready]
                    held = pending.first_page()
                    first = min(unreturned if held is None else [*unreturned, held])
                    resume_start, resume_token = sources[first]
                    return LogicalPage(
                        found,
                        Cursor(
                            after=entry_key(found[-1]),
                            start=resume_start,
                            server_token=resume_token,
                            order=order,
                        ),
                    )
                floor = rank(key)
                found.append(entry)
        if not page.is_truncated:
            return LogicalPage(found)


def _logical_entry(
    item: Entry, prefix: str, local_delimiter: str | None
) -> tuple[Entry, str | None]:
    """The entry a raw item becomes and its logical key; None when it is not shown."""
    if isinstance(item, str):
        return item, None if item.startswith(INTERNAL_PREFIX) else item
    if is_hidden(item.key):
        return item, None
    key = logical_key(item.key)
    if not key.startswith(prefix):
        return item, None  # ``x.delta`` matched a prefix that ``x`` does not
    if local_delimiter is not None:
        cut = key.find(local_delimiter, len(prefix))
        if cut >= 0:
            rolled = key[: cut + len(local_delimiter)]
            return rolled, rolled
    return item, key


def _next_token(new: str | None, previous: str | None) -> str:
    """The continuation token to send next; a server repeating itself is an error."""
    if new is None or new == previous:
        raise StorageError(
            f"the server's listing did not advance (continuation token {new!r}): "
            "it would be listed forever"
        )
    return new


def _xml_safe_start(after: str | None) -> str | None:
    """A ``StartAfter`` at or before ``after`` that servers can echo in XML.

    Some servers fail (HTTP 500) when ``StartAfter`` holds a control character; the part
    before the first one sorts no later, and the entries in between are filtered out.
    """
    if after is None:
        return None
    for index, char in enumerate(after):
        if char < " " or char == "\x7f":
            return after[:index] or None
    return after


def _stored_key(entry: Entry) -> str:
    return entry if isinstance(entry, str) else entry.key


async def _check_prefixes(
    storage: StoragePort,
    bucket: str,
    ready: Sequence[tuple[str, Entry, int]],
    checked: dict[str, bool],
    concurrency: int,
) -> None:
    """Record in ``checked`` whether each server common prefix of ``ready`` has content."""
    todo = [e for _, e, _ in ready if isinstance(e, str) and e not in checked]

    async def check(common_prefix: str) -> None:
        checked[common_prefix] = await _has_visible_object(storage, bucket, common_prefix)

    await for_each(todo, check, concurrency)


async def _has_visible_object(storage: StoragePort, bucket: str, prefix: str) -> bool:
    """True when some key under ``prefix`` is shown in listings (not only references)."""
    token: str | None = None
    while True:
        page = await storage.list_page(bucket, prefix, continuation_token=token, max_keys=100)
        if any(not is_hidden(info.key) for info in page.objects):
            return True
        if not page.is_truncated:
            return False
        token = _next_token(page.next_continuation_token, token)
