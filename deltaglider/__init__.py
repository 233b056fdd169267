"""deltaglider: delta-compressed artifact storage on S3, blocking API.

Store versioned archives as one ``reference.bin`` per S3 "directory" plus small xdelta3
deltas, and read back the exact original bytes, verified by SHA-256::

    from deltaglider import create_client

    with create_client(endpoint_url="http://localhost:9000") as client:
        client.put_object(Bucket="releases", Key="app/v2.zip", Body=Path("v2.zip"))
        with client.get_object(Bucket="releases", Key="app/v2.zip")["Body"] as body:
            data = body.read()
        summary = client.upload("v3.zip", "s3://releases/app/")
        client.download("s3://releases/app/v3.zip", "restored.zip")

This package is a thin facade over :mod:`deltaglider_async`: each client runs the async
client on a private event-loop thread, and the models and errors are the very same
classes. Async code should use ``deltaglider_async`` directly.
"""

from deltaglider_async import (
    AccessDeniedError,
    BucketAlreadyExistsError,
    BucketNotEmptyError,
    BucketNotFoundError,
    BucketResponse,
    BucketStats,
    CleanupReport,
    ClientClosedError,
    ClientState,
    ConditionalWriteNotSupportedError,
    CopyObjectResponse,
    DeleteObjectResponse,
    DeleteObjectsResponse,
    DeleteRecursiveResponse,
    DeltaGliderConfig,
    DeltaGliderError,
    DeltaSpace,
    DiffError,
    DiffToolNotFoundError,
    DiffToolUnsupportedError,
    EventLoopThreadError,
    GetBucketAclResponse,
    GetSummary,
    HeadObjectResponse,
    HiddenObject,
    IntegrityError,
    InvalidArgumentError,
    InvalidRatioError,
    InvalidURLError,
    ItemResult,
    ListBucketsResponse,
    ListedObject,
    ListObjectsResponse,
    LocalFileError,
    MigrationReport,
    NotFoundError,
    NotModifiedError,
    ObjectChangedError,
    ObjectKey,
    ObjectNotFoundError,
    PreconditionFailedError,
    Progress,
    ProgressCallback,
    PutObjectResponse,
    PutSummary,
    ReservedKeyError,
    ResponseMetadata,
    S3Url,
    StaleUpload,
    StorageError,
    StoredAs,
    UnverifiableObjectError,
    UploadSummary,
    VerifyResult,
    __version__,
    check_user_key,
    validate_ratio,
)

from ._client import DeltaGliderClient as DeltaGliderClient
from ._client import GetObjectResponse as GetObjectResponse
from ._client import StreamingBody as StreamingBody
from ._client import create_client as create_client
from ._service import DeltaService as DeltaService

__all__ = [
    "AccessDeniedError",
    "BucketAlreadyExistsError",
    "BucketNotEmptyError",
    "BucketNotFoundError",
    "BucketResponse",
    "BucketStats",
    "CleanupReport",
    "ClientClosedError",
    "ClientState",
    "ConditionalWriteNotSupportedError",
    "CopyObjectResponse",
    "DeleteObjectResponse",
    "DeleteObjectsResponse",
    "DeleteRecursiveResponse",
    "DeltaGliderClient",
    "DeltaGliderConfig",
    "DeltaGliderError",
    "DeltaService",
    "DeltaSpace",
    "DiffError",
    "DiffToolNotFoundError",
    "DiffToolUnsupportedError",
    "EventLoopThreadError",
    "GetBucketAclResponse",
    "GetObjectResponse",
    "GetSummary",
    "HeadObjectResponse",
    "HiddenObject",
    "IntegrityError",
    "InvalidArgumentError",
    "InvalidRatioError",
    "InvalidURLError",
    "ItemResult",
    "ListBucketsResponse",
    "ListObjectsResponse",
    "ListedObject",
    "LocalFileError",
    "MigrationReport",
    "NotFoundError",
    "NotModifiedError",
    "ObjectChangedError",
    "ObjectKey",
    "ObjectNotFoundError",
    "PreconditionFailedError",
    "Progress",
    "ProgressCallback",
    "PutObjectResponse",
    "PutSummary",
    "ReservedKeyError",
    "ResponseMetadata",
    "S3Url",
    "StaleUpload",
    "StorageError",
    "StoredAs",
    "StreamingBody",
    "UnverifiableObjectError",
    "UploadSummary",
    "VerifyResult",
    "__version__",
    "check_user_key",
    "create_client",
    "validate_ratio",
]
