"""boto3-shaped responses: TypedDicts for the documented keys, and the helpers that fill them.

Every response carries ``ResponseMetadata`` like boto3's, and deltaglider's own figures
under a ``DeltaGlider``/``DeltaGliderInfo`` key, so code written for boto3 keeps working.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Final, NotRequired, TypedDict, TypeVar
from urllib.parse import quote

from ._body import AsyncStreamingBody
from ._errors import InvalidArgumentError
from ._models import PutSummary, StoredAs
from ._response_metadata import ResponseMetadata, response_metadata
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
    ChecksumSHA256: NotRequired[str]


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
    CacheControl: NotRequired[str]
    ContentDisposition: NotRequired[str]
    ContentEncoding: NotRequired[str]
    ContentLanguage: NotRequired[str]
    Expires: NotRequired[datetime | str]
    StorageClass: NotRequired[str]
    ServerSideEncryption: NotRequired[str]
    SSEKMSKeyId: NotRequired[str]
    BucketKeyEnabled: NotRequired[bool]
    ChecksumCRC32: NotRequired[str]
    ChecksumCRC32C: NotRequired[str]
    ChecksumCRC64NVME: NotRequired[str]
    ChecksumSHA1: NotRequired[str]
    ChecksumSHA256: NotRequired[str]
    ChecksumType: NotRequired[str]


class GetObjectResponse(HeadObjectResponse):
    """Response of ``get_object`` (``head_object``'s keys plus ``Body`` and, for a range,
    ``ContentRange``); close ``Body`` when done with it."""

    Body: AsyncStreamingBody
    ContentRange: NotRequired[str]


class ListedObjectDG(TypedDict):
    """deltaglider's figures for one listed object."""

    IsDelta: bool
    StoredSize: int
    OriginalSize: NotRequired[int]
    DeltaRatio: NotRequired[float]
    CompressionRatio: NotRequired[float]


class ListedObject(TypedDict):
    """One entry of ``Contents`` in ``list_objects``.

    ``Metadata`` (with ``FetchMetadata=True``) holds ``deltaglider-is-delta``
    (``"true"``/``"false"``) and, for deltas, ``deltaglider-original-size`` (bytes) and
    ``deltaglider-compression-ratio`` (the fraction saved, ``1 - delta/original``, four
    decimals), as deltaglider 6.x reports them. ``Owner`` with ``FetchOwner=True``.
    """

    Key: str
    Size: int
    LastModified: datetime
    ETag: str
    StorageClass: str
    DeltaGlider: ListedObjectDG
    Metadata: NotRequired[dict[str, str]]
    Owner: NotRequired[dict[str, str]]


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
    EncodingType: NotRequired[str]


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
    BucketRegion: NotRequired[str]


class ListBucketsResponse(TypedDict):
    """Response of ``list_buckets``, as boto3's: ``Buckets``, ``Owner``; ``Prefix`` and
    ``ContinuationToken`` when given or left."""

    Buckets: list[BucketEntry]
    Owner: dict[str, str]
    ResponseMetadata: ResponseMetadata
    Prefix: NotRequired[str]
    ContinuationToken: NotRequired[str]


class GetBucketAclResponse(TypedDict):
    """Response of ``get_bucket_acl``."""

    Owner: dict[str, Any]
    Grants: list[dict[str, Any]]
    ResponseMetadata: ResponseMetadata


# ---------------------------------------------------------------------------------------
# Shaping helpers
# ---------------------------------------------------------------------------------------


def meta(status: int = 200) -> ResponseMetadata:
    """The ``ResponseMetadata`` entry of a response with ``status`` (see
    :mod:`deltaglider_async._response_metadata`)."""
    return response_metadata(status)


def quote_etag(etag: str) -> str:
    """An ETag with the double quotes S3 puts around it."""
    if etag.startswith('"') or etag.startswith('W/"'):
        return etag
    return f'"{etag}"'


def stored_as_label(summary: PutSummary) -> str:
    """``reference`` for the first file of a space, else ``delta`` or ``direct``."""
    if summary.action == "create_reference":
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
        "Operation": summary.action,
        "StoredKey": summary.key,
    }


def put_response(summary: PutSummary, *, checksum_sha256: bool = False) -> PutObjectResponse:
    """The response of ``put_object`` (with ``ChecksumSHA256``, base64, when asked)."""
    response: PutObjectResponse = {
        "ETag": summary.etag,
        "DeltaGliderInfo": put_info(summary),
        "ResponseMetadata": meta(),
    }
    if checksum_sha256:
        response["ChecksumSHA256"] = base64.b64encode(bytes.fromhex(summary.file_hash)).decode()
    return response


def user_metadata(resolved: ResolvedObject) -> dict[str, str]:
    """The caller's metadata: ``user-`` entries unprefixed, or all of a plain object's."""
    return resolved.user_metadata()


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


#: ``Response*`` parameters of get_object/head_object and the header each sets.
RESPONSE_OVERRIDES: Final[Mapping[str, str]] = {
    "ResponseCacheControl": "CacheControl",
    "ResponseContentDisposition": "ContentDisposition",
    "ResponseContentEncoding": "ContentEncoding",
    "ResponseContentLanguage": "ContentLanguage",
    "ResponseContentType": "ContentType",
    "ResponseExpires": "Expires",
}

ObjectResponse = TypeVar("ObjectResponse", HeadObjectResponse, GetObjectResponse)


def with_overrides(response: ObjectResponse, honoured: Mapping[str, Any]) -> ObjectResponse:
    """``response`` with the headers its ``Response*`` parameters set."""
    for parameter, header in RESPONSE_OVERRIDES.items():
        if parameter in honoured:
            response[header] = honoured[parameter]  # type: ignore[literal-required]
    return response


def with_checksums(
    response: ObjectResponse, resolved: ResolvedObject, honoured: Mapping[str, Any]
) -> ObjectResponse:
    """``response`` with the checksums of the *file*, for boto3's ``ChecksumMode``.

    ``ChecksumMode="ENABLED"`` (the only value S3 defines) adds, for a whole object (not a
    range): the SHA-256 deltaglider recorded for the file as ``ChecksumSHA256`` (base64,
    ``ChecksumType`` ``FULL_OBJECT``), plus for a directly stored or plain object the
    checksums S3 keeps for its bytes (which are the file's). A delta's S3 checksums
    describe the patch, never the file, so they are not returned.
    """
    mode = honoured.get("ChecksumMode")
    if mode is None:
        return response
    if mode != "ENABLED":
        raise InvalidArgumentError(f"ChecksumMode must be 'ENABLED', got {mode!r}")
    if "ContentRange" in response:
        return response
    kind = resolved.meta.kind
    found: dict[str, str] = {}
    if kind is not ObjectKind.DELTA:
        found.update(resolved.head.checksums)
    sha = resolved.meta.file_sha256
    if kind is not ObjectKind.PLAIN and sha:
        found["ChecksumSHA256"] = base64.b64encode(bytes.fromhex(sha)).decode()
        found["ChecksumType"] = "FULL_OBJECT"
    for name, value in found.items():
        response[name] = value  # type: ignore[literal-required]
    return response


def _settings(resolved: ResolvedObject) -> dict[str, Any]:
    return {k: v for k, v in resolved.head.settings.items() if k != "ContentType"}


def head_response(resolved: ResolvedObject) -> HeadObjectResponse:
    """The response of ``head_object``."""
    response: HeadObjectResponse = {
        **_settings(resolved),  # type: ignore[typeddict-item]
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
        **_settings(resolved),  # type: ignore[typeddict-item]
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


def bucket_entries(buckets: Iterable[BucketInfo]) -> list[BucketEntry]:
    """``Buckets`` of ``list_buckets``."""
    entries: list[BucketEntry] = []
    for bucket in buckets:
        entry: BucketEntry = {"Name": bucket.name, "CreationDate": bucket.creation_date}
        if bucket.region:
            entry["BucketRegion"] = bucket.region
        entries.append(entry)
    return entries


# ---------------------------------------------------------------------------------------
# Listing
# ---------------------------------------------------------------------------------------


def listed_object(
    info: ObjectInfo, head: ObjectHead | None = None, *, fetched: bool = False
) -> ListedObject:
    """One ``Contents`` entry; ``head`` (of a delta) adds its original size and ratios.

    ``fetched`` (``FetchMetadata=True``) adds the 6.x ``Metadata`` entries.
    """
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
    if info.owner is not None:
        entry["Owner"] = dict(info.owner)
    if fetched:
        entry["Metadata"] = {"deltaglider-is-delta": "true" if is_delta else "false"}
    if head is not None:
        decoded = decode(head)
        original = decoded.file_size
        if original is not None:
            entry["Size"] = original
            dg["OriginalSize"] = original
            ratio = info.size / original if original else 0.0
            dg["DeltaRatio"] = ratio
            dg["CompressionRatio"] = 1.0 - ratio if original else 0.0
            if fetched:
                entry["Metadata"]["deltaglider-original-size"] = str(original)
                entry["Metadata"]["deltaglider-compression-ratio"] = f"{dg['CompressionRatio']:.4f}"
        if decoded.md5:
            entry["ETag"] = f'"{decoded.md5}"'
    return entry


def url_encoded(response: ListObjectsResponse) -> ListObjectsResponse:
    """``response`` with its keys URL-encoded, as S3 answers ``EncodingType="url"``."""
    for entry in response["Contents"]:
        entry["Key"] = quote(entry["Key"], safe="/")
    for common in response["CommonPrefixes"]:
        common["Prefix"] = quote(common["Prefix"], safe="/")
    for name in ("Prefix", "Delimiter", "StartAfter"):
        if name in response:
            response[name] = quote(response[name], safe="/")
    response["EncodingType"] = "url"
    return response


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
