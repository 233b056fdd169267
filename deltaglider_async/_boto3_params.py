"""boto3's own parameters on the boto3-shaped methods: honoured, passed on, or refused by name.

Code written for boto3 passes parameters such as ``ACL=``, ``IfMatch=`` or
``EncodingType=``. Every boto3-shaped method accepts them (``**kwargs``) and, for each:

* **honours** it, applied to the *logical* object (``IfMatch`` compares the file's own
  ETag, ``ResponseContentType`` overrides the response header, ``ContentMD5`` checks the
  uploaded bytes...);
* **passes it on** to the stored object (``ACL``, ``StorageClass``, ``Tagging``,
  ``ServerSideEncryption``, ``CacheControl``...), returned again by ``head_object``; or
* **refuses** it with :class:`InvalidArgumentError` naming the parameter and the reason
  (``VersionId``, ``SSECustomerKey``, ``ExpectedBucketOwner``...).

A name that is not a parameter of the S3 operation at all (a typo) is refused too. Which
names exist is read from botocore's own S3 model, so it follows the installed botocore.
Nothing is ever ignored silently.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import anyio.to_thread

from ._errors import InvalidArgumentError
from .ports.storage import OBJECT_SETTINGS

__all__ = ["OBJECT_SETTINGS", "Accepted", "accept"]

#: The S3 operation behind each boto3-shaped method.
OPERATIONS: Final[Mapping[str, str]] = {
    "put_object": "PutObject",
    "get_object": "GetObject",
    "head_object": "HeadObject",
    "list_objects": "ListObjectsV2",
    "delete_object": "DeleteObject",
    "delete_objects": "DeleteObjects",
    "copy_object": "CopyObject",
    "create_bucket": "CreateBucket",
    "delete_bucket": "DeleteBucket",
    "list_buckets": "ListBuckets",
    "head_bucket": "HeadBucket",
    "get_bucket_acl": "GetBucketAcl",
}

_REASONS: Final[Mapping[str, str]] = {
    "VersionId": "deltaglider reads and writes the current version of a name only",
    "SSECustomerAlgorithm": "objects encrypted with a customer key (SSE-C) would need the key "
    "on every internal read; use ServerSideEncryption/SSEKMSKeyId instead",
    "SSECustomerKey": "objects encrypted with a customer key (SSE-C) would need the key on "
    "every internal read; use ServerSideEncryption/SSEKMSKeyId instead",
    "SSECustomerKeyMD5": "see SSECustomerKey",
    "CopySourceSSECustomerAlgorithm": "see SSECustomerKey",
    "CopySourceSSECustomerKey": "see SSECustomerKey",
    "CopySourceSSECustomerKeyMD5": "see SSECustomerKey",
    "ExpectedBucketOwner": "bucket-owner checks are not supported",
    "ExpectedSourceBucketOwner": "bucket-owner checks are not supported",
    "RequestPayer": "requester-pays buckets are not supported",
    "PartNumber": "a delta's parts are not the file's: use Range",
    "MFA": "MFA delete is not supported",
    "BypassGovernanceRetention": "object lock is not supported",
    "ObjectLockMode": "object lock is not supported: a delta and its reference are "
    "replaced and deleted as the directory changes",
    "ObjectLockRetainUntilDate": "object lock is not supported",
    "ObjectLockLegalHoldStatus": "object lock is not supported",
    "WebsiteRedirectLocation": "a redirect would be stored on the delta, not the file",
    "WriteOffsetBytes": "appends are not supported",
    "OptionalObjectAttributes": "not supported",
    "TaggingDirective": "tags are not copied; give Tagging",
    "Range": "not supported on head_object: HEAD the whole object",
    "ChecksumCRC32": "only ChecksumSHA256 is checked",
    "ChecksumCRC32C": "only ChecksumSHA256 is checked",
    "ChecksumCRC64NVME": "only ChecksumSHA256 is checked",
    "ChecksumSHA1": "only ChecksumSHA256 is checked",
}


@dataclass(frozen=True, slots=True)
class Accepted:
    """The extra boto3 parameters of one call, sorted by how they are handled."""

    honoured: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)


@functools.cache
def _members(operation: str) -> frozenset[str]:
    import botocore.session

    model = botocore.session.get_session().get_service_model("s3")
    shape = model.operation_model(operation).input_shape
    return frozenset(shape.members) if shape is not None else frozenset()


async def accept(
    method: str,
    kwargs: Mapping[str, Any],
    *,
    honoured: Collection[str] = (),
    settings: Collection[str] = (),
) -> Accepted:
    """Sort the extra parameters of a call to ``method``; refuse the rest by name.

    ``honoured`` names the parameters the method applies itself, ``settings`` those passed
    on to the stored object. Raises :class:`InvalidArgumentError` for a name that is not a
    boto3 parameter of the operation, or that deltaglider does not support (with why).
    """
    if not kwargs:
        return Accepted()
    operation = OPERATIONS[method]
    # botocore reads its S3 model from disk the first time: keep that off the event loop.
    members = await anyio.to_thread.run_sync(_members, operation)
    unknown = sorted(name for name in kwargs if name not in members)
    if unknown:
        raise InvalidArgumentError(
            f"{method}() got unknown parameter(s) {', '.join(unknown)}: not parameters of "
            f"S3 {operation}"
        )
    refused = sorted(name for name in kwargs if name not in honoured and name not in settings)
    if refused:
        reasons = "; ".join(
            f"{name}: {_REASONS.get(name, 'not supported by deltaglider')}" for name in refused
        )
        raise InvalidArgumentError(f"{method}() does not support {reasons}")
    return Accepted(
        honoured={k: v for k, v in kwargs.items() if k in honoured},
        settings={k: v for k, v in kwargs.items() if k in settings},
    )
