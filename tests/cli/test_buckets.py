"""``deltaglider mb`` and ``deltaglider rb``."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from .conftest import Cli, empty_and_delete


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
