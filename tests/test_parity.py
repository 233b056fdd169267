"""The blocking API mirrors the async one: same methods, same parameters, same exports."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pytest

import deltaglider
import deltaglider_async

# Lifecycle and protocol methods that differ by design, async name → blocking name.
LIFECYCLE = {
    "aclose": "close",
    "__aenter__": "__enter__",
    "__aexit__": "__exit__",
    "__aiter__": "__iter__",
    "aread": None,  # httpx-style aliases of read/iter_chunks/close on the async body only
    "aiter_chunks": None,
}
ASYNC_ONLY_EXPORTS = {
    "AsyncDeltaGliderClient",
    "AsyncDeltaService",
    "AsyncStreamingBody",
    "GetObjectResponse",
    # The async worker pool and what async operations run on.
    "Job",
    "Operations",
    "run_jobs",
    "create_async_client",
    "hold_log_level",
    "release_log_level",
    # What both clients' get_paginator/can_paginate are built on.
    "can_paginate",
    "make_paginator",
}
BLOCKING_ONLY_EXPORTS = {
    "DeltaGliderClient",
    "DeltaService",
    "GetObjectResponse",
    "StreamingBody",
    "create_client",
}
PAIRS = [
    (deltaglider_async.AsyncDeltaGliderClient, deltaglider.DeltaGliderClient),
    (deltaglider_async.AsyncStreamingBody, deltaglider.StreamingBody),
]


# Synchronous on both clients, as on boto3's and aiobotocore's (paginate() is what iterates).
SYNC_ON_BOTH = {"get_paginator", "can_paginate"}

# Constructors the async client uses to build bodies; users never call them.
INTERNAL = {"from_file", "from_stream"}


def _public(cls: type) -> dict[str, Any]:
    return {
        name: member
        for name, member in inspect.getmembers(cls)
        if (not name.startswith("_") or name in LIFECYCLE or name in LIFECYCLE.values())
        and name not in INTERNAL
    }


def _params(func: Callable[..., Any]) -> list[tuple[str, Any, Any]]:
    return [(p.name, p.kind, p.default) for p in inspect.signature(func).parameters.values()]


def _surface(cls: type, *, async_side: bool) -> dict[str, Any]:
    members = _public(cls)
    if async_side:
        renamed = {LIFECYCLE.get(name, name): m for name, m in members.items()}
        # On the body, aclose is an alias of close: the async close() is the one kept.
        if "close" in members:
            renamed["close"] = members["close"]
        return {name: m for name, m in renamed.items() if name is not None}
    return {name: m for name, m in members.items() if name not in LIFECYCLE}


@pytest.mark.parametrize(("async_cls", "sync_cls"), PAIRS, ids=lambda c: c.__name__)
def test_same_public_methods_and_properties(async_cls: type, sync_cls: type) -> None:
    async_side = _surface(async_cls, async_side=True)
    sync_side = _surface(sync_cls, async_side=False)
    # Dunders of object itself are not part of either API.
    ignore = {"__init__", "__repr__", "__class__"}
    assert sorted(set(async_side) - ignore) == sorted(set(sync_side) - ignore)
    for name in async_side:
        kind = isinstance(inspect.getattr_static(async_cls, _async_name(name)), property)
        assert kind == isinstance(inspect.getattr_static(sync_cls, name), property), name


def _async_name(name: str) -> str:
    reverse = {v: k for k, v in LIFECYCLE.items() if v is not None}
    return reverse.get(name, name)


@pytest.mark.parametrize(("async_cls", "sync_cls"), PAIRS, ids=lambda c: c.__name__)
def test_same_parameters(async_cls: type, sync_cls: type) -> None:
    async_side = _surface(async_cls, async_side=True)
    sync_side = _surface(sync_cls, async_side=False)
    compared = 0
    for name, member in async_side.items():
        if not inspect.isfunction(member) or name.startswith("__"):
            continue
        assert _params(sync_side[name]) == _params(member), name
        compared += 1
    assert compared >= 3


def test_async_methods_are_coroutines_and_blocking_ones_are_not() -> None:
    for async_cls, sync_cls in PAIRS:
        for name, member in _surface(sync_cls, async_side=False).items():
            if inspect.isfunction(member):
                assert not inspect.iscoroutinefunction(member), name
                if not name.startswith("__"):
                    assert inspect.getdoc(member), f"{sync_cls.__name__}.{name}: no docstring"
        for name, member in _surface(async_cls, async_side=True).items():
            if name in SYNC_ON_BOTH:
                assert not inspect.iscoroutinefunction(member), name
                continue
            if inspect.isfunction(member) and name != "__iter__":
                assert inspect.iscoroutinefunction(member) or inspect.isasyncgenfunction(member), (
                    name
                )


def test_blocking_service_mirrors_put_get_verify_delete() -> None:
    for name in ("put", "get", "verify", "delete"):
        sync_method = getattr(deltaglider.DeltaService, name)
        async_method = getattr(deltaglider_async.AsyncDeltaService, name)
        assert _params(sync_method) == _params(async_method), name
        assert inspect.getdoc(sync_method) == inspect.getdoc(async_method), name


def test_blocking_methods_share_the_async_docstrings() -> None:
    sync_side = _surface(deltaglider.DeltaGliderClient, async_side=False)
    for name, member in _surface(deltaglider_async.AsyncDeltaGliderClient, async_side=True).items():
        if (
            inspect.isfunction(member)
            and name not in ("get_object", "close")
            and not name.startswith("__")
        ):
            assert inspect.getdoc(sync_side[name]) == inspect.getdoc(member), name


def test_factories_take_the_same_parameters() -> None:
    assert _params(deltaglider.create_client) == _params(deltaglider_async.create_async_client)
    assert _params(deltaglider.DeltaGliderClient) == _params(
        deltaglider_async.AsyncDeltaGliderClient
    )


def test_exports_are_the_same_objects() -> None:
    names = deltaglider.__all__
    assert names == sorted(names)
    assert len(names) == len(set(names))
    for name in names:
        assert getattr(deltaglider, name, None) is not None, name
    shared = set(deltaglider_async.__all__) - ASYNC_ONLY_EXPORTS
    assert set(names) == shared | BLOCKING_ONLY_EXPORTS
    for name in shared:
        assert getattr(deltaglider, name) is getattr(deltaglider_async, name), name
    for name in BLOCKING_ONLY_EXPORTS:
        assert getattr(deltaglider, name).__module__.startswith("deltaglider."), name
    assert deltaglider.EventLoopThreadError is deltaglider_async.EventLoopThreadError
    assert issubclass(deltaglider.EventLoopThreadError, deltaglider.DeltaGliderError)
    assert issubclass(deltaglider.EventLoopThreadError, RuntimeError)
