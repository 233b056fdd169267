"""``ResponseMetadata`` as boto3 returns it, taken from the S3 requests behind a call.

One deltaglider call makes several S3 requests (a put HEADs, PUTs, HEADs again). The S3
adapter reports every response it receives to :func:`note`; a client method collects them
with :func:`recording` (a context variable, so concurrent calls never mix) and answers
with the ``RequestId``, ``HostId`` and ``HTTPHeaders`` of the request that did the work,
the ``RetryAttempts`` of all of them, and its own ``HTTPStatusCode`` (a logical 206,
204...). The request that did the work is the last successful one of the highest rank:
writes (PUT, multipart completion, copy, bucket changes), then reads and listings, then
deletions, then HEADs; probes such as the HEAD of a missing ``.delta`` form never win
over it. ``HTTPHeaders`` keeps the
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


#: Operations by how much they say about a call's outcome; unknown ones rank 1.
_RANK: Final = {
    "PutObject": 4,
    "CompleteMultipartUpload": 4,
    "CopyObject": 4,
    "CreateBucket": 4,
    "DeleteBucket": 4,
    "PutBucketLifecycleConfiguration": 4,
    "GetObject": 3,
    "ListObjectsV2": 3,
    "ListBuckets": 3,
    "DeleteObject": 2,
    "DeleteObjects": 2,
    "HeadObject": 0,
    "HeadBucket": 0,
}

_responses: ContextVar[list[tuple[str, Mapping[str, Any]]] | None] = ContextVar(
    "deltaglider_responses", default=None
)


@contextmanager
def recording() -> Iterator[list[tuple[str, Mapping[str, Any]]]]:
    """Collect ``(operation, ResponseMetadata)`` of the S3 responses received in the block."""
    seen: list[tuple[str, Mapping[str, Any]]] = []
    token = _responses.set(seen)
    try:
        yield seen
    finally:
        _responses.reset(token)


def note(metadata: Mapping[str, Any] | None, *, operation: str = "") -> None:
    """Report one S3 response's ``ResponseMetadata`` and the ``operation`` it answered (a
    no-op outside :func:`recording`)."""
    seen = _responses.get()
    if seen is not None and metadata:
        seen.append((operation, metadata))


def _principal(seen: list[tuple[str, Mapping[str, Any]]]) -> Mapping[str, Any]:
    """The metadata of the request that did the work (see the module docstring)."""

    def score(item: tuple[int, tuple[str, Mapping[str, Any]]]) -> tuple[int, int, int]:
        index, (operation, metadata) = item
        status = int(metadata.get("HTTPStatusCode", 0) or 0)
        return (200 <= status < 300, _RANK.get(operation, 1), index)

    return max(enumerate(seen), key=score)[1][1]


def response_metadata(status: int = 200) -> ResponseMetadata:
    """The ``ResponseMetadata`` of a response with ``status``, from the last S3 response."""
    result: ResponseMetadata = {"HTTPStatusCode": status}
    seen = _responses.get()
    if not seen:
        return result
    last = _principal(seen)
    result["RequestId"] = str(last.get("RequestId", ""))
    result["HostId"] = str(last.get("HostId", ""))
    headers = last.get("HTTPHeaders") or {}
    result["HTTPHeaders"] = {
        k: str(v) for k, v in headers.items() if k.lower() in _TRANSPORT_HEADERS
    }
    result["RetryAttempts"] = sum(int(m.get("RetryAttempts", 0) or 0) for _, m in seen)
    return result
