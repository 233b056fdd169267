"""DeltaService: the blocking face of ``AsyncDeltaService`` (put, get, verify, delete).

Three ways to get one:

* ``client.service``: shares the client's event-loop thread and S3 client;
* ``DeltaService(config)`` (or no argument: the environment): builds the default adapters;
* ``DeltaService(storage, diff, hasher, cache, clock, logger, metrics, tool_version,
  max_ratio)``, as in the API reference: your own adapters (the ports of
  :mod:`deltaglider_async.ports`, e.g. ``S3Storage(config)``, ``XDelta3Diff()``...).

A service built by the last two owns a private event-loop thread (started on first use) and
must be closed (``close()`` or ``with``). The adapters are asynchronous and some are bound
to the event loop that first uses them (``S3Storage`` opens its HTTP session there): build
them without using them, hand them to one service, and let that service use and close them
on its own loop thread. Do not share one adapter between two services or with your own
event loop.
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
    validate_ratio,
)
from deltaglider_async.ports import (
    ClockPort,
    DiffPort,
    HashPort,
    LoggerPort,
    MetricsPort,
    ReferenceCachePort,
    StoragePort,
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
    first use; call :meth:`close` or use ``with``). ``DeltaService(storage, diff, hasher,
    cache, clock, logger, metrics, tool_version=..., max_ratio=0.5)`` uses the adapters
    given (see the module docstring), which it closes with itself. ``client.service``
    shares the client's loop and S3 client instead, and its :meth:`close` leaves the
    client open. Missing ports raise ``TypeError`` naming them.
    """

    def __init__(
        self,
        storage: StoragePort | DeltaGliderConfig | None = None,
        diff: DiffPort | None = None,
        hasher: HashPort | None = None,
        cache: ReferenceCachePort | None = None,
        clock: ClockPort | None = None,
        logger: LoggerPort | None = None,
        metrics: MetricsPort | None = None,
        tool_version: str | None = None,
        max_ratio: float = 0.5,
    ) -> None:
        factory: Callable[[], AsyncDeltaGliderClient]
        self._describe: Callable[..., DeltaGliderConfig]
        ports = {
            "diff": diff,
            "hasher": hasher,
            "cache": cache,
            "clock": clock,
            "logger": logger,
            "metrics": metrics,
        }
        if storage is None or isinstance(storage, DeltaGliderConfig):
            given = sorted(name for name, port in ports.items() if port is not None)
            if given:
                raise TypeError(f"ports given without a storage port: {', '.join(given)}")
            config = storage if storage is not None else DeltaGliderConfig.from_env()
            factory = functools.partial(AsyncDeltaGliderClient, config)
            self._describe = functools.partial(
                DeltaGliderConfig.of_service,
                config,
                tool_version=config.tool_version,
                max_ratio=config.max_ratio,
            )
        else:
            missing = [name for name, port in ports.items() if port is None]
            if missing:
                raise TypeError(f"DeltaService needs every port; missing: {', '.join(missing)}")
            validate_ratio(max_ratio)
            factory = functools.partial(_client_over_ports, storage, ports, tool_version, max_ratio)
            self._describe = functools.partial(
                DeltaGliderConfig.of_service,
                storage,
                tool_version=tool_version,
                max_ratio=max_ratio,
            )
        self._runner: Runner[AsyncDeltaGliderClient] = Runner(factory)
        self._owns_runner = True

    @classmethod
    def _over(
        cls, runner: Runner[AsyncDeltaGliderClient], config: DeltaGliderConfig
    ) -> DeltaService:
        """A service sharing ``runner`` (a client's, configured by ``config``), which it
        does not close."""
        service = cls.__new__(cls)
        service._runner = runner
        service._owns_runner = False
        service._describe = functools.partial(
            DeltaGliderConfig.of_service,
            config,
            tool_version=config.tool_version,
            max_ratio=config.max_ratio,
        )
        return service

    def _config_in_force(self, endpoint_url: str | None = None) -> DeltaGliderConfig:
        """What ``DeltaGliderClient(self, endpoint_url)`` reports as its configuration
        (see :meth:`DeltaGliderConfig.of_service`, which raises for a conflicting
        endpoint)."""
        return self._describe(endpoint_url=endpoint_url)

    put = _blocking(lambda s: s.put)
    get = _blocking(lambda s: s.get)
    verify = _blocking(lambda s: s.verify)
    delete = _blocking(lambda s: s.delete)

    def close(self) -> None:
        """Close the S3 client and caches of a service built here (from a config or
        adapters); idempotent.

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


def _client_over_ports(
    storage: StoragePort, ports: dict[str, Any], tool_version: str | None, max_ratio: float
) -> AsyncDeltaGliderClient:
    """The async client a :class:`DeltaService` built from adapters runs on its loop."""
    service = AsyncDeltaService(
        storage,
        ports["diff"],
        ports["hasher"],
        ports["cache"],
        ports["clock"],
        ports["logger"],
        ports["metrics"],
        tool_version or DeltaGliderConfig().tool_version,
        max_ratio,
    )
    return AsyncDeltaGliderClient(service)
