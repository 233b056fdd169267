"""``deltaglider rm``: one object, a prefix, dry runs and filters; references go too."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .conftest import Cli, raw_keys


def test_delete_one_object_by_its_logical_name(
    dg: Cli, moto_bucket: str, moto_admin: Any, dist: Path
) -> None:
    dg("cp", "-r", "dist", f"s3://{moto_bucket}/rel/")

    result = dg("rm", f"s3://{moto_bucket}/rel/app-1.0.1.zip")

    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"delete: s3://{moto_bucket}/rel/app-1.0.1.zip\n"
    assert "rel/app-1.0.1.zip.delta" not in raw_keys(moto_admin, moto_bucket)
    assert "rel/reference.bin" in raw_keys(moto_admin, moto_bucket)


def test_deleting_a_missing_object_exits_3(dg: Cli, moto_bucket: str) -> None:
    result = dg("rm", f"s3://{moto_bucket}/nope.zip")

    assert result.exit_code == 3
    assert result.stderr == f"deltaglider: error: s3://{moto_bucket}/nope.zip does not exist\n"


def test_recursive_delete_removes_references_and_leaves_siblings(
    dg: Cli, moto_bucket: str, moto_admin: Any, dist: Path
) -> None:
    dg("cp", "-r", "dist", f"s3://{moto_bucket}/rel/")
    moto_admin.put_object(Bucket=moto_bucket, Key="rel2/keep.txt", Body=b"keep")

    result = dg("rm", "-r", f"s3://{moto_bucket}/rel")

    assert result.exit_code == 0, result.stderr
    assert sorted(result.stdout.splitlines()) == [
        *sorted(
            f"delete: s3://{moto_bucket}/rel/{name}"
            for name in ("app-1.0.0.zip", "app-1.0.1.zip", "app-1.0.2.zip", "notes.txt")
        ),
        f"delete: s3://{moto_bucket}/rel/sub/app-1.0.3.zip",
    ]
    assert raw_keys(moto_admin, moto_bucket) == {"rel2/keep.txt": 4}


def test_dryrun_and_filters(dg: Cli, moto_bucket: str, moto_admin: Any, dist: Path) -> None:
    dg("cp", "-r", "dist", f"s3://{moto_bucket}/rel/")
    before = raw_keys(moto_admin, moto_bucket)

    dry = dg("rm", "-r", "--dryrun", f"s3://{moto_bucket}/rel/", "--exclude", "*.zip")
    assert dry.stdout == f"(dryrun) delete: s3://{moto_bucket}/rel/notes.txt\n"
    assert raw_keys(moto_admin, moto_bucket) == before

    zips = dg(
        "rm", "-r", f"s3://{moto_bucket}/rel/", "--exclude", "*", "--include", "app-1.0.*.zip"
    )

    assert zips.exit_code == 0, zips.stderr
    assert len(zips.stdout.splitlines()) == 3
    assert set(raw_keys(moto_admin, moto_bucket)) == {
        "rel/notes.txt",
        "rel/sub/reference.bin",
        "rel/sub/app-1.0.3.zip.delta",
    }


def test_a_prefix_without_recursive_is_a_usage_error(dg: Cli, moto_bucket: str) -> None:
    result = dg("rm", f"s3://{moto_bucket}/dir/")

    assert result.exit_code == 2
    assert "add --recursive" in result.stderr
