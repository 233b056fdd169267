"""Which GET bodies hold a pooled HTTP connection, and parking the idle ones.

A ``get_object`` body that is read partly and then kept (a caller that forgets to close
it) holds one connection of the client's pool until it is closed or garbage-collected.
Plain aiobotocore then waits without bound for a free connection once the pool is
exhausted. The rule here: at most ``limit`` bodies hold a connection at once (half the
pool, so other requests always find one); before a new GET, the least recently used
*idle* bodies beyond that are **parked** — their connection is dropped, and their next
read resumes where they stopped with a ranged GET conditional on their ETag
(``If-Match``), so the bytes still come from the version they started with, or
:class:`~deltaglider_async.ObjectChangedError` says it was replaced. A body inside a read
is never parked.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["ConnectionHolders", "Parkable"]


class Parkable(Protocol):
    """A body that can give its connection back and resume later."""

    @property
    def busy(self) -> bool:
        """True while a read is in progress (it must not be parked then)."""
        ...

    def park(self) -> None:
        """Drop the connection; the next read reconnects where this one stopped."""
        ...


class ConnectionHolders:
    """The bodies holding a connection, least recently read first; at most ``limit``."""

    def __init__(self, limit: int) -> None:
        self._limit = max(1, limit)
        # dict keeps insertion order: re-inserting on each read makes it an LRU.
        self._holders: dict[Parkable, None] = {}

    @property
    def limit(self) -> int:
        """How many bodies may hold a connection before idle ones are parked."""
        return self._limit

    def __len__(self) -> int:
        return len(self._holders)

    def touch(self, body: Parkable) -> None:
        """``body`` holds a connection and was just read: most recently used."""
        self._holders.pop(body, None)
        self._holders[body] = None

    def drop(self, body: Parkable) -> None:
        """``body`` no longer holds a connection (closed, read to the end, parked)."""
        self._holders.pop(body, None)

    def make_room(self) -> int:
        """Park idle bodies, least recently used first, until one more fits; the count.

        Busy bodies stay: when every holder is busy the new request waits for the pool
        like any other, which ends as those reads progress.
        """
        parked = 0
        for body in list(self._holders):
            if len(self._holders) < self._limit:
                break
            if body.busy:
                continue
            body.park()
            self._holders.pop(body, None)
            parked += 1
        return parked
