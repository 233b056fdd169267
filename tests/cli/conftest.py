"""Fixtures of the CLI tests: click's runner wired to a local S3 server, buckets, archives.

Most tests run against moto only (``moto_s3`` + :func:`moto_bucket`); a few key ones run
against both servers through the shared ``s3_server``/``bucket`` fixtures.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from deltaglider.cli import cli
from deltaglider_async.testing import LocalS3
from tests.archives import make_zip_versions


class Cli:
    """Runs ``deltaglider`` in-process through click's runner against one S3 server.

    Credentials come from the environment (as a user would set them); the endpoint is
    passed with ``--endpoint-url`` before the command unless ``endpoint=False``.
    """

    def __init__(self, s3: LocalS3, **env: str) -> None:
        self.s3 = s3
        self.runner = CliRunner(
            env={
                "AWS_ACCESS_KEY_ID": s3.access_key,
                "AWS_SECRET_ACCESS_KEY": s3.secret_key,
                "AWS_DEFAULT_REGION": s3.region,
                **env,
            }
        )

    def __call__(
        self, *args: str, input: bytes | str | None = None, endpoint: bool = True
    ) -> Result:
        argv = ["--endpoint-url", self.s3.endpoint_url, *args] if endpoint else list(args)
        result = self.runner.invoke(cli, argv, input=input, catch_exceptions=True)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result


def raw_keys(admin: Any, bucket: str) -> dict[str, int]:
    """Every stored key of ``bucket`` (hidden ones included) with its stored size."""
    found: dict[str, int] = {}
    for page in admin.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            found[item["Key"]] = item["Size"]
    return found


def empty_and_delete(admin: Any, bucket: str) -> None:
    """Remove ``bucket`` and everything in it; quiet if it is already gone."""
    from botocore.exceptions import ClientError

    try:
        keys = list(raw_keys(admin, bucket))
        for start in range(0, len(keys), 1000):
            batch = [{"Key": k} for k in keys[start : start + 1000]]
            admin.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
        admin.delete_bucket(Bucket=bucket)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("NoSuchBucket", "404"):
            raise


@pytest.fixture
def moto_admin(moto_s3: LocalS3) -> Iterator[Any]:
    """A boto3 client for moto, to arrange and inspect state."""
    client = moto_s3.boto3_client()
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def moto_bucket(moto_admin: Any) -> Iterator[str]:
    """A fresh bucket on moto, removed afterwards."""
    name = f"cli-{uuid.uuid4().hex[:12]}"
    moto_admin.create_bucket(Bucket=name)
    try:
        yield name
    finally:
        empty_and_delete(moto_admin, name)


@pytest.fixture
def dg(moto_s3: LocalS3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    """``deltaglider`` against moto, run from ``tmp_path``."""
    monkeypatch.chdir(tmp_path)
    return Cli(moto_s3)


@pytest.fixture
def dg_any(s3_server: LocalS3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    """``deltaglider`` against each server of ``s3_server`` (moto, SeaweedFS)."""
    monkeypatch.chdir(tmp_path)
    return Cli(s3_server)


@pytest.fixture(scope="session")
def release_zips(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Four successive release zips of ~60 KB (shared, read-only)."""
    return make_zip_versions(tmp_path_factory.mktemp("releases"), 4, size=60_000)


@pytest.fixture
def dist(tmp_path: Path, release_zips: list[Path]) -> Path:
    """``dist/``: three release zips, a text file and ``sub/`` with one more zip."""
    root = tmp_path / "dist"
    (root / "sub").mkdir(parents=True)
    for source in release_zips[:3]:
        (root / source.name).write_bytes(source.read_bytes())
    (root / "notes.txt").write_text("release notes\n")
    (root / "sub" / release_zips[3].name).write_bytes(release_zips[3].read_bytes())
    return root
