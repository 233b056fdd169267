"""``ResponseMetadata`` as boto3 returns it, taken from the S3 requests behind a call.

One deltaglider call makes several S3 requests (a put HEADs, PUTs, HEADs again). The S3
adapter reports every response it receives to :func:`note`; a client method collects them
with :func:`recording` (a context variable, so concurrent calls never mix) and answers
with the ``RequestId``, ``HostId``, ``HTTPHeaders`` and ``RetryAttempts`` of the last one,
and its own ``HTTPStatusCode`` (a logical 206, 204...). ``HTTPHeaders`` keeps the
transport headers only (request ids, date, server): the object headers of an underlying
request describe a stored delta, not the file the response is about.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Final, NotRequired, TypedDict

__all__ = ["ResponseMetadata", "note", "recording", "response_metadata"]

_TRANSPORT_HEADERS: Final = frozenset(
    {"x-amz-request-id", "x-amz-id-2", "date", "server", "x-amz-bucket-region"}
)


class ResponseMetadata(TypedDict):
    """The ``ResponseMetadata`` entry of every response, as in boto3."""

    HTTPStatusCode: int
    RequestId: NotRequired[str]
    HostId: NotRequired[str]
    HTTPHeaders: NotRequired[dict[str, str]]
    RetryAttempts: NotRequired[int]


_responses: ContextVar[list[Mapping[str, Any]] | None] = ContextVar(
    "deltaglider_responses", default=None
)


@contextmanager
def recording() -> Iterator[list[Mapping[str, Any]]]:
    """Collect the ``ResponseMetadata`` of the S3 responses received inside the block."""
    seen: list[Mapping[str, Any]] = []
    token = _responses.set(seen)
    try:
        yield seen
    finally:
        _responses.reset(token)


def note(metadata: Mapping[str, Any] | None) -> None:
    """Report one S3 response's ``ResponseMetadata`` (a no-op outside :func:`recording`)."""
    seen = _responses.get()
    if seen is not None and metadata:
        seen.append(metadata)


def response_metadata(status: int = 200) -> ResponseMetadata:
    """The ``ResponseMetadata`` of a response with ``status``, from the last S3 response."""
    result: ResponseMetadata = {"HTTPStatusCode": status}
    seen = _responses.get()
    if not seen:
        return result
    last = seen[-1]
    result["RequestId"] = str(last.get("RequestId", ""))
    result["HostId"] = str(last.get("HostId", ""))
    headers = last.get("HTTPHeaders") or {}
    result["HTTPHeaders"] = {
        k: str(v) for k, v in headers.items() if k.lower() in _TRANSPORT_HEADERS
    }
    result["RetryAttempts"] = sum(int(m.get("RetryAttempts", 0) or 0) for m in seen)
    return result
