"""The public surface of ``deltaglider_async``: what ``__all__`` promises is there and sorted."""

from __future__ import annotations

import inspect

import pytest

import deltaglider_async
from deltaglider_async import _errors

PROMISED_BUILTINS: dict[str, type[BaseException]] = {
    "NotFoundError": FileNotFoundError,
    "BucketNotFoundError": FileNotFoundError,
    "ObjectNotFoundError": FileNotFoundError,
    "AccessDeniedError": PermissionError,
    "InvalidArgumentError": ValueError,
    "InvalidURLError": ValueError,
    "InvalidRatioError": ValueError,
    "ReservedKeyError": ValueError,
    "StorageError": IOError,
    "IntegrityError": IOError,
    "PreconditionFailedError": IOError,
    "ConditionalWriteNotSupportedError": IOError,
    "BucketAlreadyExistsError": IOError,
    "BucketNotEmptyError": IOError,
    "DiffError": RuntimeError,
    "DiffToolNotFoundError": RuntimeError,
    "ClientClosedError": RuntimeError,
}

REQUIRED = {
    "create_async_client",
    "AsyncDeltaGliderClient",
    "AsyncDeltaService",
    "DeltaGliderConfig",
    "DeltaSpace",
    "ObjectKey",
    "PutSummary",
    "GetSummary",
    "VerifyResult",
    "UploadSummary",
    "BucketStats",
    "StoredAs",
    "S3Url",
    "DeltaGliderError",
    *PROMISED_BUILTINS,
}


def test_all_is_sorted_and_unique() -> None:
    names = deltaglider_async.__all__
    assert names == sorted(names)
    assert len(names) == len(set(names))


@pytest.mark.parametrize("name", deltaglider_async.__all__)
def test_every_name_in_all_exists(name: str) -> None:
    assert getattr(deltaglider_async, name, None) is not None


def test_required_names_are_exported() -> None:
    assert set(deltaglider_async.__all__) >= REQUIRED


def test_every_error_class_is_exported() -> None:
    errors = {
        name
        for name, value in vars(_errors).items()
        if inspect.isclass(value) and issubclass(value, _errors.DeltaGliderError)
    }
    assert set(deltaglider_async.__all__) >= errors


def test_public_objects_claim_the_package() -> None:
    for name in deltaglider_async.__all__:
        value = getattr(deltaglider_async, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert value.__module__.startswith("deltaglider_async."), name


@pytest.mark.parametrize(("name", "builtin"), sorted(PROMISED_BUILTINS.items()))
def test_errors_subclass_the_promised_builtins(name: str, builtin: type[BaseException]) -> None:
    error = getattr(deltaglider_async, name)
    assert issubclass(error, deltaglider_async.DeltaGliderError)
    assert issubclass(error, builtin)
    assert not issubclass(error, BaseExceptionGroup)


def test_public_client_methods_have_docstrings() -> None:
    client = deltaglider_async.AsyncDeltaGliderClient
    for name, member in inspect.getmembers(client):
        if name.startswith("_"):
            continue
        assert inspect.getdoc(member), name
        # get_paginator/can_paginate are synchronous, as on aiobotocore's client.
        if inspect.isfunction(member) and name not in ("aclose", "get_paginator", "can_paginate"):
            assert inspect.iscoroutinefunction(member), name
    body = deltaglider_async.AsyncStreamingBody
    for name in ("read", "iter_chunks", "close", "aread", "aiter_chunks", "aclose"):
        assert inspect.getdoc(getattr(body, name)), name
