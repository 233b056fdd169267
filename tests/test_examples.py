"""The scripts in examples/ run as a user would run them, against a local S3 server."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from deltaglider_async.testing import LocalS3

REPO_ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = REPO_ROOT / "examples"


def _run_example(name: str, s3: LocalS3, bucket: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "DG_"))}
    env.update(s3.env())
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    env["PYTHONPATH"] = str(REPO_ROOT)
    return subprocess.run(
        [sys.executable, "-W", "always", str(EXAMPLES / name), bucket],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def example_bucket(moto_s3: LocalS3) -> Iterator[str]:
    """A bucket name for an example (which creates the bucket); emptied and deleted after."""
    name = f"ex-{uuid.uuid4().hex[:12]}"
    yield name
    admin = moto_s3.boto3_client()
    try:
        for page in admin.get_paginator("list_objects_v2").paginate(Bucket=name):
            for item in page.get("Contents", []):
                admin.delete_object(Bucket=name, Key=item["Key"])
        admin.delete_bucket(Bucket=name)
    finally:
        admin.close()


def test_blocking_quickstart(moto_s3: LocalS3, example_bucket: str) -> None:
    result = _run_example("blocking_quickstart.py", moto_s3, example_bucket)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[0].startswith("app-1.0.1.zip: create_reference")
    assert lines[1].startswith("app-1.0.2.zip: create_delta")
    assert "listed: ['releases/app/app-1.0.1.zip', 'releases/app/app-1.0.2.zip']" in lines
    assert "downloaded app-1.0.2.zip, identical: True" in lines
    assert "verified: True" in lines


def test_async_service(moto_s3: LocalS3, example_bucket: str) -> None:
    result = _run_example("async_service.py", moto_s3, example_bucket)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    published = [line for line in lines if line.startswith("published")]
    fetched = [line for line in lines if line.startswith("fetched")]
    assert len(published) == 8
    assert all(line.endswith(": delta") for line in published)
    assert len(fetched) == 12
    assert sum(line.endswith("intact=True") for line in fetched) == 10
    assert sum(line.endswith("not found") for line in fetched) == 2


def test_fsspec_dataframes(moto_s3: LocalS3, example_bucket: str) -> None:
    result = _run_example("fsspec_dataframes.py", moto_s3, example_bucket)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    exports = [line for line in lines if line.startswith("orders-day")]
    assert [line.split(":")[0] for line in exports] == [
        f"orders-day{day}.csv.zip" for day in range(1, 5)
    ]
    assert all("stored as delta" in line for line in exports)
    assert "day 3 read back, identical: True" in lines
    assert "parquet column read back, identical: True" in lines
