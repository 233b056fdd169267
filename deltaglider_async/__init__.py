"""deltaglider-async: delta-compressed artifact storage on S3.

Store versioned archives as one ``reference.bin`` per S3 "directory" plus small xdelta3
deltas, and read back the exact original bytes, verified by SHA-256::

    from deltaglider_async import create_async_client

    async with create_async_client(endpoint_url="http://localhost:9000") as client:
        await client.put_object(Bucket="releases", Key="app/v2.zip", Body=path)
        response = await client.get_object(Bucket="releases", Key="app/v2.zip")
        async with response["Body"] as body:
            data = await body.read()
"""

from ._body import AsyncStreamingBody as AsyncStreamingBody
from ._cleanup import CleanupReport as CleanupReport
from ._cleanup import StaleUpload as StaleUpload
from ._client import AsyncDeltaGliderClient as AsyncDeltaGliderClient
from ._client import ClientState as ClientState
from ._client import create_async_client as create_async_client
from ._config import DeltaGliderConfig as DeltaGliderConfig
from ._errors import AccessDeniedError as AccessDeniedError
from ._errors import BucketAlreadyExistsError as BucketAlreadyExistsError
from ._errors import BucketNotEmptyError as BucketNotEmptyError
from ._errors import BucketNotFoundError as BucketNotFoundError
from ._errors import ClientClosedError as ClientClosedError
from ._errors import ConditionalWriteNotSupportedError as ConditionalWriteNotSupportedError
from ._errors import DeltaGliderError as DeltaGliderError
from ._errors import DiffError as DiffError
from ._errors import DiffToolFailedError as DiffToolFailedError
from ._errors import DiffToolNotFoundError as DiffToolNotFoundError
from ._errors import DiffToolUnsupportedError as DiffToolUnsupportedError
from ._errors import EventLoopThreadError as EventLoopThreadError
from ._errors import IntegrityError as IntegrityError
from ._errors import InvalidArgumentError as InvalidArgumentError
from ._errors import InvalidRatioError as InvalidRatioError
from ._errors import InvalidURLError as InvalidURLError
from ._errors import LocalFileError as LocalFileError
from ._errors import NotFoundError as NotFoundError
from ._errors import NotModifiedError as NotModifiedError
from ._errors import ObjectChangedError as ObjectChangedError
from ._errors import ObjectNotFoundError as ObjectNotFoundError
from ._errors import PreconditionFailedError as PreconditionFailedError
from ._errors import ReservedKeyError as ReservedKeyError
from ._errors import StorageError as StorageError
from ._errors import UnverifiableObjectError as UnverifiableObjectError
from ._errors import is_transient as is_transient
from ._models import BucketStats as BucketStats
from ._models import ContentChecks as ContentChecks
from ._models import DeltaSpace as DeltaSpace
from ._models import DirectoryStats as DirectoryStats
from ._models import GetSummary as GetSummary
from ._models import ObjectKey as ObjectKey
from ._models import PutSummary as PutSummary
from ._models import S3Url as S3Url
from ._models import StoredAs as StoredAs
from ._models import UploadSummary as UploadSummary
from ._models import VerifyResult as VerifyResult
from ._paginators import can_paginate as can_paginate
from ._paginators import make_paginator as make_paginator
from ._responses import BucketResponse as BucketResponse
from ._responses import CopyObjectResponse as CopyObjectResponse
from ._responses import DeleteObjectResponse as DeleteObjectResponse
from ._responses import DeleteObjectsResponse as DeleteObjectsResponse
from ._responses import DeleteRecursiveResponse as DeleteRecursiveResponse
from ._responses import GetBucketAclResponse as GetBucketAclResponse
from ._responses import GetObjectResponse as GetObjectResponse
from ._responses import HeadObjectResponse as HeadObjectResponse
from ._responses import ListBucketsResponse as ListBucketsResponse
from ._responses import ListedObject as ListedObject
from ._responses import ListObjectsResponse as ListObjectsResponse
from ._responses import PutObjectResponse as PutObjectResponse
from ._responses import ResponseMetadata as ResponseMetadata
from ._version import __version__ as __version__
from .adapters.logging import hold_log_level as hold_log_level
from .adapters.logging import release_log_level as release_log_level
from .core.bulk import DownloadItem as DownloadItem
from .core.bulk import UploadItem as UploadItem
from .core.deletes import DeleteSummary as DeleteSummary
from .core.hidden import HiddenObject as HiddenObject
from .core.migrate import MigrationReport as MigrationReport
from .core.operations import Operations as Operations
from .core.planner import check_user_key as check_user_key
from .core.planner import validate_ratio as validate_ratio
from .core.pool import ItemResult as ItemResult
from .core.pool import Job as Job
from .core.pool import Progress as Progress
from .core.pool import ProgressCallback as ProgressCallback
from .core.pool import run_jobs as run_jobs
from .core.reads import ResolvedObject as ResolvedObject
from .core.rebase import RebaseReport as RebaseReport
from .core.reencode import RebasedFile as RebasedFile
from .core.reencode import SpaceRebase as SpaceRebase
from .core.service import AsyncDeltaService as AsyncDeltaService
from .core.shards import Shard as Shard
from .core.stats import StatsMode as StatsMode

__all__ = [
    "AccessDeniedError",
    "AsyncDeltaGliderClient",
    "AsyncDeltaService",
    "AsyncStreamingBody",
    "BucketAlreadyExistsError",
    "BucketNotEmptyError",
    "BucketNotFoundError",
    "BucketResponse",
    "BucketStats",
    "CleanupReport",
    "ClientClosedError",
    "ClientState",
    "ConditionalWriteNotSupportedError",
    "ContentChecks",
    "CopyObjectResponse",
    "DeleteObjectResponse",
    "DeleteObjectsResponse",
    "DeleteRecursiveResponse",
    "DeleteSummary",
    "DeltaGliderConfig",
    "DeltaGliderError",
    "DeltaSpace",
    "DiffError",
    "DiffToolFailedError",
    "DiffToolNotFoundError",
    "DiffToolUnsupportedError",
    "DirectoryStats",
    "DownloadItem",
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
    "Job",
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
    "Operations",
    "PreconditionFailedError",
    "Progress",
    "ProgressCallback",
    "PutObjectResponse",
    "PutSummary",
    "RebaseReport",
    "RebasedFile",
    "ReservedKeyError",
    "ResolvedObject",
    "ResponseMetadata",
    "S3Url",
    "Shard",
    "SpaceRebase",
    "StaleUpload",
    "StatsMode",
    "StorageError",
    "StoredAs",
    "UnverifiableObjectError",
    "UploadItem",
    "UploadSummary",
    "VerifyResult",
    "__version__",
    "can_paginate",
    "check_user_key",
    "create_async_client",
    "hold_log_level",
    "is_transient",
    "make_paginator",
    "release_log_level",
    "run_jobs",
    "validate_ratio",
]
