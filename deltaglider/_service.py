"""DeltaService: the blocking face of ``AsyncDeltaService`` (put, get, verify, delete).

Get one from a client (``client.service``, sharing the client's event-loop thread and
S3 client) or build one from a :class:`DeltaGliderConfig`; a service built that way owns
its loop thread and must be closed (``close()`` or ``with``).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, Self, TypeVar, cast

from deltaglider_async import (
    AsyncDeltaGliderClient,
    AsyncDeltaService,
    ClientClosedError,
    DeltaGliderConfig,
)

from ._runner import Runner

__all__ = ["DeltaService"]

P = ParamSpec("P")
R = TypeVar("R")


def _blocking(
    select: Callable[[AsyncDeltaService], Callable[P, Awaitable[R]]],
) -> Callable[Concatenate[DeltaService, P], R]:
    """The blocking twin of the ``AsyncDeltaService`` method ``select`` picks.

    Same name, signature and docstring; the coroutine runs on the event-loop thread,
    on the service of the async client there.
    """

    async def on_service(client: AsyncDeltaGliderClient, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return await select(client.service)(*args, **kwargs)

    def blocking(self: DeltaService, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return self._runner.call(on_service, *args, **kwargs)

    # Applied to the class, the selector yields the plain function, for its metadata.
    method: Callable[..., Any] = select(cast(AsyncDeltaService, AsyncDeltaService))
    blocking.__name__ = method.__name__
    blocking.__qualname__ = f"DeltaService.{method.__name__}"
    blocking.__doc__ = method.__doc__
    blocking.__signature__ = inspect.signature(method)  # type: ignore[attr-defined]
    return blocking


class DeltaService:
    """Delta-compressed put/get/verify/delete of local files, blocking.

    ``DeltaService(config)`` builds its own S3 client and event-loop thread (started on
    first use; call :meth:`close` or use ``with``). ``client.service`` shares the
    client's instead, and its :meth:`close` leaves the client open.
    """

    def __init__(self, config: DeltaGliderConfig | None = None) -> None:
        config = config if config is not None else DeltaGliderConfig.from_env()
        self._runner: Runner[AsyncDeltaGliderClient] = Runner(
            functools.partial(AsyncDeltaGliderClient, config)
        )
        self._owns_runner = True

    @classmethod
    def _over(cls, runner: Runner[AsyncDeltaGliderClient]) -> DeltaService:
        """A service sharing ``runner`` (a client's), which it does not close."""
        service = cls.__new__(cls)
        service._runner = runner
        service._owns_runner = False
        return service

    put = _blocking(lambda s: s.put)
    get = _blocking(lambda s: s.get)
    verify = _blocking(lambda s: s.verify)
    delete = _blocking(lambda s: s.delete)

    def close(self) -> None:
        """Close the S3 client and caches of a service built from a config; idempotent.

        A service obtained from ``client.service`` is closed with its client instead.
        """
        if self._owns_runner:
            self._runner.close()

    def __enter__(self) -> Self:
        if self._runner.closed:
            raise ClientClosedError("this deltaglider service is closed; create a new one")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
