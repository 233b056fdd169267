"""The test proxy names S3 operations from path-style requests, for request counts."""

from __future__ import annotations

import pytest

from deltaglider_async.testing_proxy import operation_of


@pytest.mark.parametrize(
    ("method", "target", "headers", "operation"),
    [
        ("GET", "/b?list-type=2&prefix=a%2F&delimiter=%2F", {}, "ListObjectsV2"),
        ("GET", "/b?prefix=a", {}, "ListObjects"),
        ("GET", "/b?uploads", {}, "ListMultipartUploads"),
        ("GET", "/b/a/x.zip", {}, "GetObject"),
        ("HEAD", "/b/a/x.zip", {}, "HeadObject"),
        ("HEAD", "/b", {}, "HeadBucket"),
        ("PUT", "/b/a/x.zip", {}, "PutObject"),
        ("PUT", "/b/a/x.zip", {"x-amz-copy-source": "/b/y"}, "CopyObject"),
        ("PUT", "/b/a/x.zip?partNumber=2&uploadId=u", {}, "UploadPart"),
        ("PUT", "/b", {}, "PUT"),
        ("POST", "/b?delete", {}, "DeleteObjects"),
        ("DELETE", "/b/a/x.zip", {}, "DeleteObject"),
        ("DELETE", "/b/a/x.zip?uploadId=u", {}, "AbortMultipartUpload"),
    ],
)
def test_operation_of(method: str, target: str, headers: dict[str, str], operation: str) -> None:
    assert operation_of(method, target, headers) == operation
