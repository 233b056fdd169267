"""boto3-shaped responses: TypedDicts for the documented keys, and the helpers that fill them.

Every response carries ``ResponseMetadata`` like boto3's, and deltaglider's own figures
under a ``DeltaGlider``/``DeltaGliderInfo`` key, so code written for boto3 keeps working.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final, NotRequired, TypedDict

from ._body import AsyncStreamingBody
from ._errors import InvalidArgumentError
from ._models import PutSummary, StoredAs
from .core.keys import KeyRole, logical_key, role
from .core.listing import Cursor, KeyOrder
from .core.metadata import ObjectKind, decode
from .core.service import ResolvedObject
from .ports.storage import BucketInfo, ObjectHead, ObjectInfo

__all__ = [
    "BucketResponse",
    "CopyObjectResponse",
    "DeleteObjectResponse",
    "DeleteObjectsResponse",
    "DeleteRecursiveResponse",
    "GetBucketAclResponse",
    "GetObjectResponse",
    "HeadObjectResponse",
    "ListBucketsResponse",
    "ListObjectsResponse",
    "ListedObject",
    "PutObjectResponse",
    "ResponseMetadata",
]

_MIB: Final = 1024 * 1024
_TOKEN_VERSION: Final = 2


class ResponseMetadata(TypedDict):
    """The ``ResponseMetadata`` entry every boto3 response has."""

    HTTPStatusCode: int


class DeltaGliderPutInfo(TypedDict):
    """How ``put_object``/``copy_object`` stored the bytes."""

    IsDelta: bool
    StoredAs: str
    OriginalSizeMB: float
    StoredSizeMB: float
    SavingsPercent: float
    DeltaRatio: float
    Operation: str
    StoredKey: str


class PutObjectResponse(TypedDict):
    """Response of ``put_object``."""

    ETag: str
    DeltaGliderInfo: DeltaGliderPutInfo
    ResponseMetadata: ResponseMetadata


class ObjectInfoDG(TypedDict):
    """deltaglider's view of one stored object (``head_object``/``get_object``)."""

    StoredAs: str
    IsDelta: bool
    StoredKey: str
    StoredSize: int
    OriginalSize: int
    Sha256: str | None
    ReferenceKey: str | None


class HeadObjectResponse(TypedDict):
    """Response of ``head_object``: the original object's size, ETag and metadata."""

    ContentLength: int
    ContentType: str
    ETag: str
    LastModified: datetime
    Metadata: dict[str, str]
    AcceptRanges: str
    DeltaGlider: ObjectInfoDG
    ResponseMetadata: ResponseMetadata
    VersionId: NotRequired[str]


class GetObjectResponse(TypedDict):
    """Response of ``get_object``; close ``Body`` when done with it."""

    Body: AsyncStreamingBody
    ContentLength: int
    ContentType: str
    ETag: str
    LastModified: datetime
    Metadata: dict[str, str]
    AcceptRanges: str
    DeltaGlider: ObjectInfoDG
    ResponseMetadata: ResponseMetadata
    ContentRange: NotRequired[str]
    VersionId: NotRequired[str]


class ListedObjectDG(TypedDict):
    """deltaglider's figures for one listed object."""

    IsDelta: bool
    StoredSize: int
    OriginalSize: NotRequired[int]
    DeltaRatio: NotRequired[float]
    CompressionRatio: NotRequired[float]


class ListedObject(TypedDict):
    """One entry of ``Contents`` in ``list_objects``."""

    Key: str
    Size: int
    LastModified: datetime
    ETag: str
    StorageClass: str
    DeltaGlider: ListedObjectDG


class CommonPrefix(TypedDict):
    """One entry of ``CommonPrefixes``."""

    Prefix: str


class ListObjectsResponse(TypedDict):
    """Response of ``list_objects`` (ListObjectsV2 shape)."""

    Name: str
    Prefix: str
    MaxKeys: int
    KeyCount: int
    IsTruncated: bool
    Contents: list[ListedObject]
    CommonPrefixes: list[CommonPrefix]
    ResponseMetadata: ResponseMetadata
    Delimiter: NotRequired[str]
    ContinuationToken: NotRequired[str]
    NextContinuationToken: NotRequired[str]
    StartAfter: NotRequired[str]


class DeleteInfo(TypedDict):
    """What ``delete_object`` removed."""

    Deleted: bool
    Type: str | None
    StoredKey: str | None
    ReferenceDeleted: bool


class DeleteObjectResponse(TypedDict):
    """Response of ``delete_object``."""

    DeltaGliderInfo: DeleteInfo
    ResponseMetadata: ResponseMetadata


class DeletedEntry(TypedDict):
    """One entry of ``Deleted`` in ``delete_objects``."""

    Key: str


class DeleteErrorEntry(TypedDict):
    """One entry of ``Errors`` in ``delete_objects``."""

    Key: str
    Code: str
    Message: str


class DeleteObjectsInfo(TypedDict):
    """Counts of a batch delete by stored form."""

    DeltasDeleted: int
    DirectDeleted: int
    ReferencesDeleted: int


class DeleteObjectsResponse(TypedDict):
    """Response of ``delete_objects``; ``Deleted`` is empty when ``Quiet`` was set."""

    Deleted: list[DeletedEntry]
    Errors: list[DeleteErrorEntry]
    DeltaGliderInfo: DeleteObjectsInfo
    ResponseMetadata: ResponseMetadata


class DeleteRecursiveInfo(TypedDict):
    """Counts of a recursive delete by stored form."""

    DeltasDeleted: int
    ReferencesDeleted: int
    OtherDeleted: int


class DeleteRecursiveResponse(TypedDict):
    """Response of ``delete_objects_recursive``."""

    DeletedCount: int
    FailedCount: int
    Errors: list[DeleteErrorEntry]
    DeltaGliderInfo: DeleteRecursiveInfo
    ResponseMetadata: ResponseMetadata


class CopyObjectResult(TypedDict):
    """``CopyObjectResult`` of ``copy_object``."""

    ETag: str
    LastModified: datetime


class CopyObjectResponse(TypedDict):
    """Response of ``copy_object``."""

    CopyObjectResult: CopyObjectResult
    DeltaGliderInfo: DeltaGliderPutInfo
    ResponseMetadata: ResponseMetadata


class BucketResponse(TypedDict):
    """Response of ``create_bucket``/``delete_bucket``/``head_bucket``/``put_bucket_acl``."""

    ResponseMetadata: ResponseMetadata
    Location: NotRequired[str]


class BucketEntry(TypedDict):
    """One entry of ``Buckets`` in ``list_buckets``."""

    Name: str
    CreationDate: datetime | None


class ListBucketsResponse(TypedDict):
    """Response of ``list_buckets``."""

    Buckets: list[BucketEntry]
    ResponseMetadata: ResponseMetadata


class GetBucketAclResponse(TypedDict):
    """Response of ``get_bucket_acl``."""

    Owner: dict[str, Any]
    Grants: list[dict[str, Any]]
    ResponseMetadata: ResponseMetadata


# ---------------------------------------------------------------------------------------
# Shaping helpers
# ---------------------------------------------------------------------------------------


def meta(status: int = 200) -> ResponseMetadata:
    """A ``ResponseMetadata`` entry."""
    return {"HTTPStatusCode": status}


def quote_etag(etag: str) -> str:
    """An ETag with the double quotes S3 puts around it."""
    if etag.startswith('"') or etag.startswith('W/"'):
        return etag
    return f'"{etag}"'


def stored_as_label(summary: PutSummary) -> str:
    """``reference`` for the first file of a space, else ``delta`` or ``direct``."""
    if summary.operation == "create_reference":
        return StoredAs.REFERENCE.value
    return summary.stored_as.value


def put_info(summary: PutSummary) -> DeltaGliderPutInfo:
    """The ``DeltaGliderInfo`` of a put."""
    return {
        "IsDelta": summary.is_delta,
        "StoredAs": stored_as_label(summary),
        "OriginalSizeMB": summary.file_size / _MIB,
        "StoredSizeMB": summary.stored_size / _MIB,
        "SavingsPercent": summary.savings_percent,
        "DeltaRatio": summary.delta_ratio or 0.0,
        "Operation": summary.operation,
        "StoredKey": summary.key,
    }


def put_response(summary: PutSummary) -> PutObjectResponse:
    """The response of ``put_object``."""
    return {"ETag": summary.etag, "DeltaGliderInfo": put_info(summary), "ResponseMetadata": meta()}


def user_metadata(resolved: ResolvedObject) -> dict[str, str]:
    """The caller's metadata: ``user-`` entries unprefixed, or all of a plain object's."""
    if resolved.meta.kind is ObjectKind.PLAIN:
        return dict(resolved.head.metadata)
    return dict(resolved.meta.user_metadata)


def content_type(head: ObjectHead) -> str:
    """The object's Content-Type, defaulting like S3."""
    return head.content_type or "binary/octet-stream"


def object_info(resolved: ResolvedObject) -> ObjectInfoDG:
    """The ``DeltaGlider`` entry of ``head_object``/``get_object``."""
    kind = resolved.meta.kind
    return {
        "StoredAs": "plain" if kind is ObjectKind.PLAIN else resolved.stored_as.value,
        "IsDelta": kind is ObjectKind.DELTA,
        "StoredKey": resolved.stored.key,
        "StoredSize": resolved.head.size,
        "OriginalSize": resolved.original_size,
        "Sha256": resolved.meta.file_sha256,
        "ReferenceKey": resolved.meta.ref_key,
    }


def last_modified(resolved: ResolvedObject) -> datetime:
    """``dg-created-at`` when recorded, else the stored object's LastModified."""
    return resolved.meta.created_at or resolved.head.last_modified


def head_response(resolved: ResolvedObject) -> HeadObjectResponse:
    """The response of ``head_object``."""
    response: HeadObjectResponse = {
        "ContentLength": resolved.original_size,
        "ContentType": content_type(resolved.head),
        "ETag": quote_etag(resolved.etag),
        "LastModified": last_modified(resolved),
        "Metadata": user_metadata(resolved),
        "AcceptRanges": "bytes",
        "DeltaGlider": object_info(resolved),
        "ResponseMetadata": meta(),
    }
    if resolved.head.version_id:
        response["VersionId"] = resolved.head.version_id
    return response


def get_response(
    resolved: ResolvedObject, body: AsyncStreamingBody, content_range: str | None
) -> GetObjectResponse:
    """The response of ``get_object``."""
    response: GetObjectResponse = {
        "Body": body,
        "ContentLength": body.content_length,
        "ContentType": content_type(resolved.head),
        "ETag": quote_etag(resolved.etag),
        "LastModified": last_modified(resolved),
        "Metadata": user_metadata(resolved),
        "AcceptRanges": "bytes",
        "DeltaGlider": object_info(resolved),
        "ResponseMetadata": meta(206 if content_range else 200),
    }
    if content_range:
        response["ContentRange"] = content_range
    if resolved.head.version_id:
        response["VersionId"] = resolved.head.version_id
    return response


def bucket_entries(buckets: list[BucketInfo]) -> list[BucketEntry]:
    """``Buckets`` of ``list_buckets``."""
    return [{"Name": b.name, "CreationDate": b.creation_date} for b in buckets]


# ---------------------------------------------------------------------------------------
# Listing
# ---------------------------------------------------------------------------------------


def listed_object(info: ObjectInfo, head: ObjectHead | None = None) -> ListedObject:
    """One ``Contents`` entry; ``head`` (of a delta) adds its original size and ratios."""
    is_delta = role(info.key) is KeyRole.DELTA
    dg: ListedObjectDG = {"IsDelta": is_delta, "StoredSize": info.size}
    entry: ListedObject = {
        "Key": logical_key(info.key),
        "Size": info.size,
        "LastModified": info.last_modified,
        "ETag": info.etag,
        "StorageClass": info.storage_class,
        "DeltaGlider": dg,
    }
    if head is not None:
        decoded = decode(head)
        original = decoded.file_size
        if original is not None:
            entry["Size"] = original
            dg["OriginalSize"] = original
            ratio = info.size / original if original else 0.0
            dg["DeltaRatio"] = ratio
            dg["CompressionRatio"] = 1.0 - ratio if original else 0.0
        if decoded.md5:
            entry["ETag"] = f'"{decoded.md5}"'
    return entry


def encode_token(cursor: Cursor) -> str:
    """An opaque continuation token holding where a logical listing resumes."""
    data = {
        "v": _TOKEN_VERSION,
        "after": cursor.after,
        "start": cursor.start,
        "server": cursor.server_token,
        "order": cursor.order.value,
    }
    raw = json.dumps(data, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode("utf-8")).decode("ascii")


def decode_token(token: str) -> Cursor:
    """The cursor a token holds; :class:`InvalidArgumentError` if it is malformed.

    Tokens of version 1 (before 0.2) held only the *stored* key of the last entry: the
    listing resumes after its logical key.
    """
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode("ascii")).decode("utf-8"))
    except (ValueError, UnicodeError, binascii.Error):
        data = None
    valid = isinstance(data, Mapping) and (
        (data.get("v") == 1 and isinstance(data.get("after"), str | None))
        or (
            data.get("v") == _TOKEN_VERSION
            and all(isinstance(data.get(k), str | None) for k in ("after", "start", "server"))
            and data.get("order") in {o.value for o in KeyOrder}
        )
    )
    if not valid:
        raise InvalidArgumentError(
            f"invalid ContinuationToken {token!r}: pass NextContinuationToken unchanged"
        )
    assert isinstance(data, Mapping)
    if data["v"] == 1:
        return Cursor.start_after(None if data["after"] is None else logical_key(data["after"]))
    return Cursor(
        after=data["after"],
        start=data["start"],
        server_token=data["server"],
        order=KeyOrder(data["order"]),
    )
