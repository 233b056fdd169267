"""``deltaglider rebase``: repair a drifted directory from the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.compat.test_upstream_reads_ours import drifting_series

from .conftest import Cli, raw_keys


def _drifted(dg: Cli, bucket: str, tmp_path: Path, count: int = 8) -> list[bytes]:
    versions = drifting_series(count)
    for n, data in enumerate(versions):
        path = tmp_path / f"app-1.0.{n}.zip"
        path.write_bytes(data)
        done = dg("cp", "--rebase-ratio", "off", str(path), f"s3://{bucket}/rel/")
        assert done.exit_code == 0, done.stderr
    return versions


def test_dry_run_then_repair(dg: Cli, moto_bucket: str, moto_admin: Any, tmp_path: Path) -> None:
    versions = _drifted(dg, moto_bucket, tmp_path)
    before = raw_keys(moto_admin, moto_bucket)

    planned = dg("rebase", f"s3://{moto_bucket}/rel/", "--dry-run", "--json")
    assert planned.exit_code == 0, planned.stderr
    document = json.loads(planned.stdout)
    assert raw_keys(moto_admin, moto_bucket) == before
    assert document["dry_run"] is True
    assert document["saved"] > 0
    assert document["stored_before"] == sum(before.values())
    [directory] = document["directories"]
    assert directory["references_after"] > directory["references_before"] == 1

    text = dg("rebase", f"s3://{moto_bucket}/rel/")
    assert text.exit_code == 0, text.stderr
    assert "re-encode: " in text.stdout
    assert text.stdout.splitlines()[-1].endswith(f"saved {_human(document['saved'])}"), text.stdout
    assert sum(raw_keys(moto_admin, moto_bucket).values()) == document["stored_after"]
    for n, data in enumerate(versions):
        out = tmp_path / f"back-{n}.zip"
        got = dg("cp", f"s3://{moto_bucket}/rel/app-1.0.{n}.zip", str(out))
        assert got.exit_code == 0, got.stderr
        assert out.read_bytes() == data

    again = dg("rebase", f"s3://{moto_bucket}/rel/", "--json")
    assert json.loads(again.stdout)["reencoded"] == 0


def _human(size: int) -> str:
    from deltaglider.cli._output import human_size

    return human_size(size)


def test_usage_errors(dg: Cli, moto_bucket: str) -> None:
    bad_url = dg("rebase", "http://example.com/x")
    assert bad_url.exit_code == 2
    assert "s3://" in bad_url.stderr
    bad_ratio = dg("rebase", f"s3://{moto_bucket}/rel/", "--rebase-ratio", "2")
    assert bad_ratio.exit_code == 2
    missing = dg("rebase", "s3://no-such-bucket-rebase/rel/")
    assert missing.exit_code == 3, missing.stderr
    typo = dg("rebase", f"s3://{moto_bucket}/no-such-dir/")
    assert typo.exit_code == 3, typo.stderr
    assert "nothing under" in typo.stderr


def test_stats_json_reports_each_directory(
    dg: Cli, moto_bucket: str, moto_admin: Any, tmp_path: Path
) -> None:
    _drifted(dg, moto_bucket, tmp_path, 6)
    document = json.loads(dg("stats", moto_bucket, "--json", "--no-cache").stdout)
    [directory] = document["directories"]
    assert directory["prefix"] == "rel/"
    assert directory["references"] == 1
    assert directory["stored_bytes"] == sum(raw_keys(moto_admin, moto_bucket).values())
    assert directory["worst_recent_ratio"] > 0.3
    text = dg("stats", moto_bucket, "--directories", "--no-cache")
    assert text.exit_code == 0, text.stderr
    [row] = [line for line in text.stdout.splitlines() if line.startswith("rel/")]
    assert row.split()[1] == "1"  # references


def test_every_command_knows_a_directory_with_several_references(
    dg: Cli, moto_bucket: str, moto_admin: Any, tmp_path: Path
) -> None:
    """cp S3→S3, verify, sync --delete and rb --force on a re-baselined directory."""
    versions = drifting_series(8)
    for n, data in enumerate(versions):
        path = tmp_path / f"app-1.0.{n}.zip"
        path.write_bytes(data)
        assert dg("cp", str(path), f"s3://{moto_bucket}/rel/").exit_code == 0
    assert any("/.deltaglider/refs/" in k for k in raw_keys(moto_admin, moto_bucket))
    copied = dg("cp", "-r", f"s3://{moto_bucket}/rel/", f"s3://{moto_bucket}/copy/")
    assert copied.exit_code == 0, copied.stderr
    checked = dg("verify", "-r", f"s3://{moto_bucket}/copy/")
    assert checked.exit_code == 0, checked.stderr
    for n, data in enumerate(versions):
        out = tmp_path / f"copy-{n}.zip"
        assert dg("cp", f"s3://{moto_bucket}/copy/app-1.0.{n}.zip", str(out)).exit_code == 0
        assert out.read_bytes() == data
    # sync --delete from an empty directory removes every file, and every reference.
    (tmp_path / "empty").mkdir()
    synced = dg("sync", "--delete", str(tmp_path / "empty"), f"s3://{moto_bucket}/rel/")
    assert synced.exit_code == 0, synced.stderr
    assert not [k for k in raw_keys(moto_admin, moto_bucket) if k.startswith("rel/")]
    removed = dg("rb", "--force", f"s3://{moto_bucket}")
    assert removed.exit_code == 0, removed.stderr
    assert moto_bucket not in [b["Name"] for b in moto_admin.list_buckets()["Buckets"]]
