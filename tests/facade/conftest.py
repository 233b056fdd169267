"""Fixtures of the blocking-facade tests: a moto bucket, a client, and subprocess scripts."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from deltaglider import DeltaGliderClient, create_client
from deltaglider_async.testing import LocalS3

REPO_ROOT = Path(__file__).resolve().parents[2]

RunScript = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def moto_admin(moto_s3: LocalS3) -> Iterator[Any]:
    """A boto3 client for the moto server, to arrange and inspect state."""
    admin = moto_s3.boto3_client()
    try:
        yield admin
    finally:
        admin.close()


@pytest.fixture
def moto_bucket(moto_admin: Any) -> Iterator[str]:
    """A fresh bucket on the moto server, emptied and deleted afterwards."""
    name = f"f-{uuid.uuid4().hex[:12]}"
    moto_admin.create_bucket(Bucket=name)
    try:
        yield name
    finally:
        for upload in moto_admin.list_multipart_uploads(Bucket=name).get("Uploads", []):
            moto_admin.abort_multipart_upload(
                Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"]
            )
        for page in moto_admin.get_paginator("list_objects_v2").paginate(Bucket=name):
            for item in page.get("Contents", []):
                moto_admin.delete_object(Bucket=name, Key=item["Key"])
        moto_admin.delete_bucket(Bucket=name)


@pytest.fixture
def client(moto_s3: LocalS3) -> Iterator[DeltaGliderClient]:
    """A blocking client on the moto server, closed after the test."""
    with create_client(
        endpoint_url=moto_s3.endpoint_url,
        aws_access_key_id=moto_s3.access_key,
        aws_secret_access_key=moto_s3.secret_key,
        region_name=moto_s3.region,
    ) as opened:
        yield opened


@pytest.fixture
def script_env(moto_s3: LocalS3) -> dict[str, str]:
    """The environment of a subprocess: this repository importable, AWS_* naming moto."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "DG_", "PYTHON"))}
    env.update(moto_s3.env())
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    env["PYTHONPATH"] = str(REPO_ROOT)
    return env


@pytest.fixture
def write_script(tmp_path: Path) -> Callable[[str], Path]:
    """Write a dedented Python script into the test's temp dir and return its path."""

    def write(source: str, name: str = "script.py") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(source), encoding="utf-8")
        return path

    return write


@pytest.fixture
def run_script(write_script: Callable[[str], Path], script_env: dict[str, str]) -> RunScript:
    """Run a script with this interpreter (all warnings shown) and capture its output."""

    def run(
        source: str, *args: str, timeout: float = 60.0, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        path = write_script(source)
        return subprocess.run(
            [sys.executable, "-W", "always", str(path), *args],
            env={**script_env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    return run
