"""Keyed locks: one lock per deltaspace, created on demand and dropped when unused.

Also :class:`KeyedActivity`, which lets tasks wait until no activity runs for a key.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Hashable, Iterator
from contextlib import asynccontextmanager, contextmanager

import anyio


class KeyedLocks:
    """A lock per key, so writers to different deltaspaces never wait for each other.

    Locks are created inside the running event loop on first use (never at import time,
    never inherited across ``fork``) and forgotten once no task holds or awaits them.
    """

    def __init__(self) -> None:
        self._locks: dict[Hashable, tuple[anyio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: Hashable) -> AsyncIterator[None]:
        """Hold the lock for ``key`` for the duration of the block."""
        lock, users = self._locks.get(key, (None, 0))
        if lock is None:
            lock = anyio.Lock()
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock_now, users_now = self._locks[key]
            if users_now <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock_now, users_now - 1)

    def __len__(self) -> int:
        return len(self._locks)


class KeyedActivity:
    """Marks keys that have an activity in progress, so other tasks can wait it out.

    Unlike a lock, waiting tasks do not exclude each other: many may wait, and all go on
    together once no activity runs for the key.
    """

    def __init__(self) -> None:
        self._active: dict[Hashable, tuple[anyio.Event, int]] = {}

    @contextmanager
    def running(self, key: Hashable) -> Iterator[None]:
        """Mark ``key`` active for the duration of the block."""
        event, count = self._active.get(key, (None, 0))
        if event is None:
            event = anyio.Event()
        self._active[key] = (event, count + 1)
        try:
            yield
        finally:
            event_now, count_now = self._active[key]
            if count_now <= 1:
                del self._active[key]
                event_now.set()
            else:
                self._active[key] = (event_now, count_now - 1)

    async def wait_idle(self, key: Hashable) -> None:
        """Return once no activity runs for ``key`` (at once when none does)."""
        while (entry := self._active.get(key)) is not None:
            await entry[0].wait()

    def __len__(self) -> int:
        return len(self._active)
