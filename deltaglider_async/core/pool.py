"""The bounded worker pool: at most ``limit`` items in flight, one outcome per item.

One call runs in one anyio task group of ``n`` worker tasks (``n`` = the bound, at most the
number of items), which pull items from one queue; there is never one task per item.

* :func:`run_jobs`: each item ends as an :class:`ItemResult`, its value or the error it
  met; one item's failure never hides another's result, while cancelling the call cancels
  every item and propagates. Items that share a *group* (a deltaspace) start in a
  particular way: the first item to reach a group runs alone while later items of that
  group are set aside (without holding a worker), and they run once it is done. For
  uploads this is the item that creates the space's reference; for downloads the first
  item leaves the space's reference in the local cache for the others. If the first item
  fails, the next one of its group takes its place.
* :func:`for_each`: the same pool for work whose first error ends the call (listing
  HEADs, batch deletes).

Bulk upload and download, statistics, migration, batch deletes and the CLI all run on it.
"""

from __future__ import annotations

import inspect
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeAlias, TypeVar

import anyio

from .._errors import DeltaGliderError, InvalidArgumentError, local_error, unwrap_group
from ..ports.logger import LOGGER_NAME

__all__ = [
    "ItemResult",
    "Job",
    "Progress",
    "ProgressCallback",
    "for_each",
    "item_error",
    "run_jobs",
]

_log = logging.getLogger(LOGGER_NAME)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ItemResult(Generic[T]):
    """The outcome of one item of a bulk operation.

    ``source`` and ``destination`` name the item (a local path or an ``s3://`` URL each);
    exactly one of ``value`` (what the operation returned) and ``error`` is set.
    """

    source: str
    destination: str
    value: T | None = None
    error: DeltaGliderError | None = None

    @property
    def ok(self) -> bool:
        """True when the item succeeded."""
        return self.error is None


@dataclass(frozen=True, slots=True)
class Progress:
    """Passed to a bulk operation's ``progress`` callback after each item.

    ``done`` items of ``total`` are finished; ``source`` names the one just finished,
    ``ok`` tells whether it succeeded and ``bytes`` is its size when it was transferred
    (original, uncompressed bytes), else 0.
    """

    done: int
    total: int
    source: str
    ok: bool
    bytes: int


#: ``progress(Progress)``; called on the event loop's thread after each item. It may be a
#: plain function or return an awaitable (which is awaited). What it raises is logged and
#: otherwise ignored.
ProgressCallback: TypeAlias = Callable[[Progress], object]


@dataclass(slots=True)
class Job(Generic[T]):
    """One item for :func:`run_jobs`: how to name it, how to run it, its group."""

    source: str
    destination: str
    run: Callable[[], Awaitable[T]] | None
    group: Hashable | None = None
    #: An error found before running (bad argument, duplicate...): the job is not run.
    error: DeltaGliderError | None = None


class _GroupScheduler:
    """The queue of a pool: items in input order, the first of each group alone."""

    def __init__(self, groups: Sequence[Hashable | None], order: Iterable[int]) -> None:
        self._groups = groups
        self._ready: deque[int] = deque(order)
        self._parked: dict[Hashable, list[int]] = {}
        self._open: set[Hashable] = set()
        self._opening: set[Hashable] = set()
        self._changed = anyio.Event()

    async def next(self) -> tuple[int, bool] | None:
        """The next item to run and whether it opens its group; None when all are taken."""
        while True:
            while self._ready:
                index = self._ready.popleft()
                group = self._groups[index]
                if group is None or group in self._open:
                    return index, False
                if group in self._opening:
                    self._parked.setdefault(group, []).append(index)
                    continue
                self._opening.add(group)
                return index, True
            if not self._opening:
                # Items are set aside only while their group is opening: none is left.
                return None
            await self._changed.wait()

    def finished(self, index: int, *, opener: bool, ok: bool) -> None:
        """Record the end of an item; an opener's end releases its group's items."""
        if not opener:
            return
        group = self._groups[index]
        self._opening.discard(group)
        if ok:
            self._open.add(group)
        # On failure the first released item opens the group again.
        self._ready.extendleft(reversed(self._parked.pop(group, [])))
        self._changed.set()
        self._changed = anyio.Event()


def item_error(exc: Exception) -> DeltaGliderError:
    """The :class:`DeltaGliderError` to report for an item that raised ``exc``."""
    if isinstance(exc, DeltaGliderError):
        return exc
    if isinstance(exc, ExceptionGroup):
        leaf = unwrap_group(exc)
        if isinstance(leaf, Exception):
            return item_error(leaf)
    if isinstance(exc, OSError):
        return local_error(exc, exc.filename or "?", "use")
    _log.error("unexpected error in a bulk item", exc_info=exc)
    error = DeltaGliderError(f"unexpected {type(exc).__name__}: {exc}")
    error.__cause__ = exc
    return error


async def _report(progress: ProgressCallback | None, event: Progress) -> None:
    if progress is None:
        return
    try:
        result = progress(event)
        if inspect.isawaitable(result):
            await result
    except Exception:
        # A broken progress display must not break the transfer.
        _log.warning("the progress callback raised; ignored", exc_info=True)


async def run_jobs(
    jobs: Sequence[Job[T]],
    *,
    limit: int,
    progress: ProgressCallback | None = None,
    size_of: Callable[[T], int] = lambda _: 0,
) -> list[ItemResult[T]]:
    """Run ``jobs`` with at most ``limit`` in flight; one result per job, in input order.

    Exceptions of a job become its result's ``error``; cancellation propagates.
    """
    if limit < 1:
        raise InvalidArgumentError(f"max_concurrency must be >= 1, got {limit}")
    total = len(jobs)
    results: list[ItemResult[T] | None] = [None] * total
    done = 0

    async def finish(index: int, value: T | None, error: DeltaGliderError | None) -> None:
        nonlocal done
        job = jobs[index]
        results[index] = ItemResult(job.source, job.destination, value, error)
        done += 1
        size = size_of(value) if value is not None and error is None else 0
        await _report(progress, Progress(done, total, job.source, error is None, size))

    runnable = []
    for index, job in enumerate(jobs):
        if job.error is not None or job.run is None:
            await finish(index, None, job.error or InvalidArgumentError("nothing to run"))
        else:
            runnable.append(index)
    scheduler = _GroupScheduler([job.group for job in jobs], runnable)

    async def worker() -> None:
        while (taken := await scheduler.next()) is not None:
            index, opener = taken
            run = jobs[index].run
            assert run is not None
            try:
                value = await run()
            except Exception as exc:
                scheduler.finished(index, opener=opener, ok=False)
                await finish(index, None, item_error(exc))
            else:
                scheduler.finished(index, opener=opener, ok=True)
                await finish(index, value, None)

    if runnable:
        async with anyio.create_task_group() as tg:
            for _ in range(min(limit, len(runnable))):
                tg.start_soon(worker)
    assert all(r is not None for r in results)
    return [r for r in results if r is not None]


async def for_each(items: Sequence[T], fn: Callable[[T], Awaitable[None]], limit: int) -> None:
    """Run ``fn`` on every item with at most ``limit`` in flight; the first error ends the
    call (the others are cancelled) and propagates."""
    if not items:
        return
    pending = iter(items)

    async def worker() -> None:
        for item in pending:
            await fn(item)

    async with anyio.create_task_group() as tg:
        for _ in range(max(1, min(limit, len(items)))):
            tg.start_soon(worker)
