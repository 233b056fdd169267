"""The private event-loop thread behind every blocking object of ``deltaglider``.

A :class:`Runner` owns one anyio :class:`~anyio.from_thread.BlockingPortal` running on a
daemon thread, started on first use, and the async object the blocking facade delegates
to (an ``AsyncDeltaGliderClient``), which is built and entered *inside* that loop by a
factory and exited by the same task when the runner closes. Blocking methods hand their
coroutine to :meth:`Runner.call` and wait for its result.

Guarantees:

* One loop thread per runner, shared by every calling thread; never ``asyncio.run`` per
  call, never a portal per call.
* Errors come out as the exception the coroutine raised; a call cancelled by ``close()``
  raises :class:`ClientClosedError`.
* ``KeyboardInterrupt`` (or any exception a signal handler raises) while waiting cancels
  the in-flight coroutine, waits a bounded time for its cleanup (child processes killed,
  temp files removed, multipart uploads aborted), then propagates.
* A call from the runner's own loop thread raises :class:`EventLoopThreadError` instead of
  deadlocking; a call from a thread that runs another event loop works and warns once
  per process, pointing to ``deltaglider_async``.
* ``fork``: the child forgets the parent's loop thread without touching it (its locks,
  sockets and loop belong to the parent) and builds a fresh one, with a fresh async
  object from the factory, on its next call.
* ``close()`` is idempotent and time-bounded; runners still open at interpreter exit are
  closed by an ``atexit`` hook (bounded), and a runner that is garbage-collected while
  open asks its loop thread to shut down. No I/O happens in a finalizer.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import logging
import os
import sys
import threading
import time
import warnings
import weakref
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, Concatenate, Final, Generic, ParamSpec, TypeVar

import anyio
from anyio.from_thread import BlockingPortal

from deltaglider_async import ClientClosedError, EventLoopThreadError

__all__ = ["CLOSE_TIMEOUT", "EventLoopThreadError", "Runner"]

T = TypeVar("T")
R = TypeVar("R")
P = ParamSpec("P")

#: Upper bound, in seconds, on ``close()``: closing the async object and stopping the loop.
CLOSE_TIMEOUT: Final = 10.0
#: Upper bound on the wait for a cancelled call's cleanup after ``KeyboardInterrupt``.
CANCEL_TIMEOUT: Final = 10.0
#: Upper bound on the whole ``atexit`` shutdown of the runners left open.
ATEXIT_TIMEOUT: Final = 5.0

_logger = logging.getLogger("deltaglider")
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep

_IN_LOOP_MESSAGE = (
    "a blocking deltaglider client was called from a thread that is running an event "
    "loop; the call blocks that loop until it returns. In async code use "
    "deltaglider_async (`async with create_async_client() as client: await ...`)."
)


# Set once the "called inside a running event loop" warning was emitted in this process.
_warned_running_loop = False


def _warn_if_in_running_loop() -> None:
    global _warned_running_loop
    # asyncio._get_running_loop returns None rather than raising: cheap on every call.
    if _warned_running_loop or asyncio._get_running_loop() is None:
        return
    _warned_running_loop = True
    warnings.warn(_IN_LOOP_MESSAGE, RuntimeWarning, stacklevel=_caller_stacklevel())


def _caller_stacklevel() -> int:
    """The ``stacklevel`` of the first frame outside this package: the user's call."""
    frame = sys._getframe(1)
    level = 1
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back  # type: ignore[assignment]
        level += 1
    return level


class _LoopThread(Generic[T]):
    """One daemon thread running an asyncio loop with a portal and the async object.

    It holds no reference to its :class:`Runner`, so a runner dropped while open can be
    collected (and then asks this thread to stop).
    """

    def __init__(self, factory: Callable[[], AbstractAsyncContextManager[T]], name: str) -> None:
        self.pid = os.getpid()
        self.thread_id: int | None = None
        self.portal: BlockingPortal | None = None
        self.target: T | None = None
        self._factory = factory
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._stop_requested = False
        self._ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._finished = threading.Event()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)

    # ---------------------------------------------------------------- thread side

    def _main(self) -> None:
        try:
            anyio.run(self._serve, backend="asyncio")
        except BaseException as exc:
            if not self._ready.done():
                self._ready.set_exception(exc)
            else:
                _logger.warning("deltaglider event-loop thread ended with an error", exc_info=exc)
        finally:
            if not self._ready.done():
                self._ready.set_exception(ClientClosedError("the client was closed"))
            self._finished.set()

    async def _serve(self) -> None:
        self.thread_id = threading.get_ident()
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        # The async object is entered and exited by this one task, after every portal
        # task has finished, so its cleanup never runs under a call still using it.
        async with self._factory() as target, BlockingPortal() as portal:
            self.target, self.portal = target, portal
            self._ready.set_result(None)
            if not self._stop_requested:
                await self._stop_event.wait()
            # Calls still running are cancelled; their cleanup runs before the
            # portal's task group exits, then the async object closes.
            await portal.stop(cancel_remaining=True)
        self.target = None

    def _set_stop_event(self) -> None:
        self._stop_requested = True
        if self._stop_event is not None:
            self._stop_event.set()

    # ---------------------------------------------------------------- caller side

    def start(self, timeout: float) -> None:
        """Start the thread and wait until the portal and the async object are ready."""
        self._thread.start()
        try:
            self._ready.result(timeout)
        except BaseException:
            self.stop(CLOSE_TIMEOUT)
            raise

    def request_stop(self) -> None:
        """Ask the loop to shut down; returns at once. Safe from any thread or finalizer."""
        if self.pid != os.getpid():
            return  # a parent's loop inherited through fork: not ours to touch
        self._stop_requested = True
        loop = self._loop
        if loop is not None:
            try:
                loop.call_soon_threadsafe(self._set_stop_event)
            except RuntimeError:
                pass  # the loop is already closed

    def stop(self, timeout: float) -> bool:
        """Shut down and wait at most ``timeout`` seconds; True when the thread ended."""
        if self.pid != os.getpid():
            return True
        deadline = time.monotonic() + timeout
        self._wait_started(timeout)
        self.request_stop()
        if not self._finished.wait(max(0.0, deadline - time.monotonic())):
            _logger.warning(
                "deltaglider: the event-loop thread did not stop within %.1f s; abandoning it",
                timeout,
            )
            return False
        self._thread.join(max(0.0, deadline - time.monotonic()))
        return True

    def _wait_started(self, timeout: float) -> None:
        # A stop right after start must let the loop publish itself before asking it to
        # stop; _stop_requested covers a loop that publishes after this check.
        if self._thread.ident is not None:
            try:
                self._ready.exception(timeout)
            except (concurrent.futures.TimeoutError, concurrent.futures.CancelledError):
                pass

    def run(self, func: Callable[..., Awaitable[R]], *args: Any, **kwargs: Any) -> R:
        """Run ``await func(*args, **kwargs)`` on the loop and wait for its outcome."""
        portal = self.portal
        if portal is None:
            raise ClientClosedError("the client was closed")
        finished = threading.Event()
        try:
            future = portal.start_task_soon(self._invoke, func, args, kwargs, finished)
        except RuntimeError:
            # The portal stopped (close() in another thread) between checks.
            raise ClientClosedError("the client was closed") from None
        try:
            result: R = future.result()
        except concurrent.futures.CancelledError:
            # Only close() cancels portal tasks; never leak concurrent.futures errors.
            raise ClientClosedError("the client was closed while this call was running") from None
        except BaseException:
            if not future.done():
                # Interrupted while waiting (Ctrl-C, or an exception raised by a signal
                # handler): cancel the coroutine and give its cleanup a bounded time, so
                # no child process, temp file or multipart upload is left behind.
                future.cancel()
                finished.wait(CANCEL_TIMEOUT)
            raise
        return result

    async def _invoke(
        self,
        func: Callable[..., Awaitable[R]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        finished: threading.Event,
    ) -> R:
        try:
            return await func(*args, **kwargs)
        finally:
            finished.set()


# Loop threads of this process that may still run: closed at exit (bounded).
_LIVE: weakref.WeakSet[_LoopThread[Any]] = weakref.WeakSet()
# Runners of this process: reset in a forked child.
_RUNNERS: weakref.WeakSet[Runner[Any]] = weakref.WeakSet()
# The parent's loop threads, inherited by a forked child. They are kept referenced for
# the child's whole life: releasing them would run finalizers (unclosed session/loop
# warnings) on objects that still belong to the parent.
_INHERITED: list[_LoopThread[Any]] = []


class Runner(Generic[T]):
    """Runs coroutines of one async object on a private event-loop thread.

    ``factory`` is called inside the loop and returns an async context manager whose
    ``__aenter__`` yields the object calls are made on. It is called again in a forked
    child, so it must build everything (S3 session, caches) from scratch.
    """

    def __init__(
        self,
        factory: Callable[[], AbstractAsyncContextManager[T]],
        *,
        name: str = "deltaglider-loop",
    ) -> None:
        self._factory = factory
        self._name = name
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._loop_thread: _LoopThread[T] | None = None
        self._finalizer: weakref.finalize[[], Any] | None = None
        self._closed = False
        self._generation = 0
        _RUNNERS.add(self)

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closed

    @property
    def generation(self) -> int:
        """Changes whenever the async object is rebuilt (after ``fork``)."""
        return self._generation

    def call(
        self,
        func: Callable[Concatenate[T, P], Awaitable[R]],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> R:
        """Run ``await func(target, *args, **kwargs)`` on the loop thread; return its result.

        ``target`` is the async object built by the factory. Raises what the coroutine
        raised; :class:`ClientClosedError` after :meth:`close`;
        :class:`EventLoopThreadError` from the loop thread itself.
        """
        loop_thread = self._usable_loop_thread()
        target = loop_thread.target
        if target is None:
            raise ClientClosedError("the client was closed")
        return loop_thread.run(func, target, *args, **kwargs)

    def run(self, func: Callable[P, Awaitable[R]], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run ``await func(*args, **kwargs)`` on the loop thread; return its result.

        For coroutines of objects the async target handed out (a response body, say).
        """
        return self._usable_loop_thread().run(func, *args, **kwargs)

    def _usable_loop_thread(self) -> _LoopThread[T]:
        loop_thread = self._loop_thread
        if loop_thread is None or self._pid != os.getpid():
            loop_thread = self._start()
        elif threading.get_ident() == loop_thread.thread_id:
            raise self._reentry_error()
        if not _warned_running_loop:
            _warn_if_in_running_loop()
        return loop_thread

    def _start(self) -> _LoopThread[T]:
        if self._pid != os.getpid():
            self._after_fork()
        with self._lock:
            if self._closed:
                raise ClientClosedError("the client is closed")
            loop_thread = self._loop_thread
            if loop_thread is None:
                loop_thread = _LoopThread(self._factory, self._name)
                loop_thread.start(CLOSE_TIMEOUT * 3)
                _LIVE.add(loop_thread)
                finalizer = weakref.finalize(self, loop_thread.request_stop)
                finalizer.atexit = False  # the atexit hook does a bounded, waiting stop
                self._loop_thread, self._finalizer = loop_thread, finalizer
            elif threading.get_ident() == loop_thread.thread_id:
                raise self._reentry_error()
            return loop_thread

    @staticmethod
    def _reentry_error() -> EventLoopThreadError:
        return EventLoopThreadError(
            "a blocking deltaglider method was called from its own event-loop thread, "
            "which would deadlock; code running on that loop must use deltaglider_async "
            "and await the async client"
        )

    def close(self, timeout: float = CLOSE_TIMEOUT) -> None:
        """Close the async object, then stop the loop thread; idempotent, time-bounded.

        Calls still running in other threads are cancelled and raise
        :class:`ClientClosedError`.
        """
        if self._pid != os.getpid():
            self._after_fork()
        with self._lock:
            loop_thread = self._loop_thread
            if loop_thread is not None and threading.get_ident() == loop_thread.thread_id:
                raise self._reentry_error()
            self._closed = True
            self._loop_thread = None
            finalizer, self._finalizer = self._finalizer, None
        if finalizer is not None:
            finalizer.detach()
        if loop_thread is not None:
            loop_thread.stop(timeout)
            _LIVE.discard(loop_thread)

    def _after_fork(self) -> None:
        """Forget the parent's loop thread (without touching it) in a forked child."""
        if self._pid == os.getpid():
            return
        self._lock = threading.Lock()  # the parent's may have been held at fork time
        inherited, self._loop_thread = self._loop_thread, None
        finalizer, self._finalizer = self._finalizer, None
        if finalizer is not None:
            finalizer.detach()
        if inherited is not None:
            _INHERITED.append(inherited)
        self._pid = os.getpid()
        self._generation += 1


def _reset_in_child() -> None:
    for loop_thread in list(_LIVE):
        _INHERITED.append(loop_thread)
    _LIVE.clear()
    for runner in list(_RUNNERS):
        runner._after_fork()


def _close_all_at_exit() -> None:
    """Close the loop threads still running at interpreter exit, within ATEXIT_TIMEOUT."""
    pid = os.getpid()
    loop_threads = [lt for lt in list(_LIVE) if lt.pid == pid]
    for loop_thread in loop_threads:
        loop_thread.request_stop()
    deadline = time.monotonic() + ATEXIT_TIMEOUT
    for loop_thread in loop_threads:
        loop_thread.stop(max(0.0, deadline - time.monotonic()))
    _LIVE.clear()


os.register_at_fork(after_in_child=_reset_in_child)
atexit.register(_close_all_at_exit)
