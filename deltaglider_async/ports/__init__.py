"""Ports: the Protocols the core depends on. Adapters implement them."""

from .cache import ReferenceCachePort as ReferenceCachePort
from .clock import ClockPort as ClockPort
from .diff import DiffPort as DiffPort
from .hash import FileDigest as FileDigest
from .hash import HashPort as HashPort
from .logger import LoggerPort as LoggerPort
from .metrics import MetricsPort as MetricsPort
from .storage import OBJECT_SETTINGS as OBJECT_SETTINGS
from .storage import PROTECTION_SETTINGS as PROTECTION_SETTINGS
from .storage import BucketInfo as BucketInfo
from .storage import BucketListing as BucketListing
from .storage import BucketsPort as BucketsPort
from .storage import DeleteFailure as DeleteFailure
from .storage import ListPage as ListPage
from .storage import MultipartUpload as MultipartUpload
from .storage import MultipartUploadsPort as MultipartUploadsPort
from .storage import ObjectBody as ObjectBody
from .storage import ObjectHead as ObjectHead
from .storage import ObjectInfo as ObjectInfo
from .storage import PutResult as PutResult
from .storage import StoragePort as StoragePort
from .tracing import SpanPort as SpanPort
from .tracing import TracingPort as TracingPort

__all__ = [
    "OBJECT_SETTINGS",
    "PROTECTION_SETTINGS",
    "BucketInfo",
    "BucketListing",
    "BucketsPort",
    "ClockPort",
    "DeleteFailure",
    "DiffPort",
    "FileDigest",
    "HashPort",
    "ListPage",
    "LoggerPort",
    "MetricsPort",
    "MultipartUpload",
    "MultipartUploadsPort",
    "ObjectBody",
    "ObjectHead",
    "ObjectInfo",
    "PutResult",
    "ReferenceCachePort",
    "SpanPort",
    "StoragePort",
    "TracingPort",
]
