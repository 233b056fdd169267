"""Which GET bodies hold a pooled HTTP connection, and parking the idle ones.

A ``get_object`` body that is read partly and then kept (a caller that forgets to close
it) holds one connection of the client's pool until it is closed or garbage-collected.
Plain aiobotocore then waits without bound for a free connection once the pool is
exhausted. The rule here: at most ``limit`` bodies hold or are about to hold a connection
at once (half the pool, so other requests always find one); before a new GET, the least
recently used *idle* bodies beyond that are **parked** — their connection is dropped, and their next
read resumes where they stopped with a ranged GET conditional on their ETag
(``If-Match``), so the bytes still come from the version they started with, or
:class:`~deltaglider_async.ObjectChangedError` says it was replaced. A body inside a read
is never parked. When every holder is busy (or still opening), a new GET waits for one of
them to finish a read or open and then parks it if it is idle: many GETs started at once
never wait for the pool without bound.
"""

from __future__ import annotations

from typing import Protocol

import anyio

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
        #: GETs granted a slot whose response has not arrived yet.
        self._opening = 0
        self._changed: anyio.Event | None = None

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
        self._signal()

    def drop(self, body: Parkable) -> None:
        """``body`` no longer holds a connection (closed, read to the end, parked)."""
        self._holders.pop(body, None)
        self._signal()

    async def reserve(self) -> None:
        """Wait until one more GET may hold a connection, parking idle bodies to make room.

        Pair with :meth:`opened` (or :meth:`release` if the GET failed).
        """
        while True:
            self._park_idle(reserved=self._opening + 1)
            if len(self._holders) + self._opening < self._limit:
                self._opening += 1
                return
            if self._changed is None:
                self._changed = anyio.Event()
            await self._changed.wait()

    def opened(self, body: Parkable) -> None:
        """The reserved GET answered: ``body`` now holds its connection."""
        self._opening -= 1
        self.touch(body)

    def release(self) -> None:
        """The reserved GET failed or was cancelled: give its slot back."""
        self._opening -= 1
        self._signal()

    def _signal(self) -> None:
        changed, self._changed = self._changed, None
        if changed is not None:
            changed.set()

    def _park_idle(self, reserved: int) -> None:
        for body in list(self._holders):
            if len(self._holders) + reserved <= self._limit:
                break
            if body.busy:
                continue
            body.park()
            self._holders.pop(body, None)
