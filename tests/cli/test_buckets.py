"""``deltaglider mb`` and ``deltaglider rb``."""

from __future__ import annotations

import json
import random
import uuid
from pathlib import Path
from typing import Any

from tests.archives import make_zip_versions

from .conftest import Cli, empty_and_delete, raw_keys


def _bucket_names(admin: Any) -> set[str]:
    return {b["Name"] for b in admin.list_buckets()["Buckets"]}


def test_make_and_remove_a_bucket(dg: Cli, moto_admin: Any) -> None:
    name = f"cli-mb-{uuid.uuid4().hex[:8]}"
    try:
        made = dg("mb", f"s3://{name}")
        again = dg("mb", f"s3://{name}")
        removed = dg("rb", name)

        assert made.exit_code == 0, made.stderr
        assert made.stdout == f"make_bucket: {name}\n"
        assert again.exit_code == 1
        assert again.stderr == (
            f"deltaglider: error: make_bucket failed: s3://{name}: "
            f"bucket s3://{name} already exists\n"
        )
        assert removed.exit_code == 0, removed.stderr
        assert removed.stdout == f"remove_bucket: {name}\n"
        assert name not in _bucket_names(moto_admin)
    finally:
        empty_and_delete(moto_admin, name)


def test_rb_refuses_a_non_empty_bucket_unless_forced(
    dg: Cli, moto_bucket: str, moto_admin: Any, dist: Path
) -> None:
    dg("cp", "-r", "dist", f"s3://{moto_bucket}/rel/")

    refused = dg("rb", f"s3://{moto_bucket}")
    assert refused.exit_code == 1
    assert "is not empty" in refused.stderr
    assert "rb --force" in refused.stderr
    assert moto_bucket in _bucket_names(moto_admin)

    forced = dg("rb", "--force", f"s3://{moto_bucket}")

    assert forced.exit_code == 0, forced.stderr
    lines = forced.stdout.splitlines()
    assert lines[0] == f"delete: s3://{moto_bucket}/rel/app-1.0.0.zip"
    assert lines[-1] == f"remove_bucket: {moto_bucket}"
    assert len(lines) == 6
    assert moto_bucket not in _bucket_names(moto_admin)


def test_rb_of_a_missing_bucket_exits_3(dg: Cli) -> None:
    result = dg("rb", "s3://no-such-bucket-at-all")

    assert result.exit_code == 3


def test_a_key_is_not_a_bucket(dg: Cli) -> None:
    result = dg("mb", "s3://bucket/key")

    assert result.exit_code == 2
    assert "expected a bucket" in result.stderr


def test_no_invisible_reference_is_left_behind(
    dg_any: Cli, bucket: str, s3_admin: Any, tmp_path: Path
) -> None:
    # Upload a zip, replace it with a version that does not delta well (stored direct),
    # then remove it: nothing may remain, not even an invisible reference.
    versions = make_zip_versions(tmp_path / "v", 1, size=40_000)
    (tmp_path / "a.zip").write_bytes(versions[0].read_bytes())
    assert dg_any("cp", "a.zip", f"s3://{bucket}/d/").exit_code == 0
    (tmp_path / "a.zip").write_bytes(random.Random(1).randbytes(40_000))
    assert dg_any("cp", "a.zip", f"s3://{bucket}/d/").exit_code == 0
    assert raw_keys(s3_admin, bucket) == {"d/a.zip": 40_000}

    assert dg_any("rm", f"s3://{bucket}/d/a.zip").exit_code == 0
    assert raw_keys(s3_admin, bucket) == {}
    stats = json.loads(dg_any("stats", bucket, "--json", "--no-cache").stdout)
    assert stats["space_saved"] >= 0


def test_references_left_by_other_tools_are_handled(
    dg_any: Cli, bucket: str, s3_admin: Any
) -> None:
    # 6.x leaves a directory's reference.bin when its last delta goes.
    meta = {"dg-file-sha256": "0" * 64, "dg-note": "reference", "dg-file-size": "5000"}
    for key in ("old/reference.bin", "older/reference.bin"):
        s3_admin.put_object(Bucket=bucket, Key=key, Body=b"x" * 5000, Metadata=meta)
    s3_admin.put_object(Bucket=bucket, Key="kept.txt", Body=b"kept")

    ls = dg_any("ls", "-r", f"s3://{bucket}")
    stats = json.loads(dg_any("stats", bucket, "--json", "--no-cache").stdout)
    assert len(ls.stdout.splitlines()) == stats["object_count"] == 1
    assert stats["space_saved"] >= 0
    assert 0.0 <= stats["average_compression_ratio"] <= 1.0

    assert dg_any("rm", "-r", f"s3://{bucket}/old/").exit_code == 0
    assert set(raw_keys(s3_admin, bucket)) == {"older/reference.bin", "kept.txt"}
    assert dg_any("rm", f"s3://{bucket}/kept.txt").exit_code == 0
    # Only an unused reference is left: the bucket counts as empty.
    result = dg_any("rb", f"s3://{bucket}")
    assert result.exit_code == 0, result.stderr
