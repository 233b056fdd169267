"""``deltaglider sync``: both directions, content comparison, ``--delete``, filters."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_local_paths import ROOT, unprivileged_command

from .conftest import Cli, raw_keys

_SYNC = (sys.executable, "-m", "deltaglider", "sync")


def test_upload_sync_transfers_only_new_and_changed_files(
    dg: Cli, moto_bucket: str, moto_admin: Any, dist: Path
) -> None:
    url = f"s3://{moto_bucket}/rel"
    first = dg("sync", "dist", url)
    again = dg("sync", "dist", url)
    # Same size, different bytes: only a content hash tells.
    (dist / "notes.txt").write_text("release NOTES\n")
    (dist / "new.txt").write_text("new")
    changed = dg("sync", "dist", url)

    assert first.exit_code == again.exit_code == changed.exit_code == 0
    assert len(first.stdout.splitlines()) == 6  # 5 uploads and the summary
    assert again.stdout == ""
    assert changed.stdout.splitlines() == [
        f"upload: dist/new.txt to {url}/new.txt (direct, 3 Bytes)",
        f"upload: dist/notes.txt to {url}/notes.txt (direct, 14 Bytes)",
        "Stored 2 files: 17 Bytes as 17 Bytes (saved 0 Bytes, 0.0%)",
    ]
    body = moto_admin.get_object(Bucket=moto_bucket, Key="rel/notes.txt")["Body"].read()
    assert body == b"release NOTES\n"


def test_size_only_ignores_same_size_changes(dg: Cli, moto_bucket: str, dist: Path) -> None:
    url = f"s3://{moto_bucket}/rel/"
    dg("sync", "dist", url)
    (dist / "notes.txt").write_text("release NOTES\n")

    result = dg("sync", "--size-only", "dist", url)

    assert result.exit_code == 0
    assert result.stdout == ""


def test_delete_removes_what_the_source_lacks_and_dryrun_changes_nothing(
    dg: Cli, moto_bucket: str, moto_admin: Any, dist: Path
) -> None:
    url = f"s3://{moto_bucket}/rel/"
    dg("sync", "dist", url)
    (dist / "app-1.0.0.zip").unlink()
    before = raw_keys(moto_admin, moto_bucket)

    dry = dg("sync", "--delete", "--dryrun", "dist", url)
    assert dry.stdout == f"(dryrun) delete: s3://{moto_bucket}/rel/app-1.0.0.zip\n"
    assert raw_keys(moto_admin, moto_bucket) == before

    result = dg("sync", "--delete", "dist", url)

    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"delete: s3://{moto_bucket}/rel/app-1.0.0.zip\n"
    keys = raw_keys(moto_admin, moto_bucket)
    assert "rel/app-1.0.0.zip.delta" not in keys
    # The reference stays: the other deltas of the directory still need it.
    assert "rel/reference.bin" in keys


def test_download_sync_with_delete_and_excludes(
    dg: Cli, moto_bucket: str, tmp_path: Path, dist: Path
) -> None:
    url = f"s3://{moto_bucket}/rel/"
    dg("sync", "dist", url)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "stale.txt").write_text("stale")
    (mirror / "app-1.0.0.zip").write_bytes((dist / "app-1.0.0.zip").read_bytes())

    result = dg("sync", url, "mirror", "--delete", "--exclude", "sub/*")

    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"download: s3://{moto_bucket}/rel/app-1.0.1.zip to mirror/app-1.0.1.zip",
        f"download: s3://{moto_bucket}/rel/app-1.0.2.zip to mirror/app-1.0.2.zip",
        f"download: s3://{moto_bucket}/rel/notes.txt to mirror/notes.txt",
        "delete: mirror/stale.txt",
        "Downloaded 3 files: " + result.stdout.splitlines()[-1].split(": ")[-1],
    ]
    assert sorted(p.name for p in mirror.iterdir()) == [
        "app-1.0.0.zip",
        "app-1.0.1.zip",
        "app-1.0.2.zip",
        "notes.txt",
    ]
    assert (mirror / "app-1.0.2.zip").read_bytes() == (dist / "app-1.0.2.zip").read_bytes()
    assert dg("sync", url, "mirror", "--exclude", "sub/*").stdout == ""


def test_changed_remote_plain_object_is_downloaded_again(
    dg: Cli, moto_bucket: str, moto_admin: Any, tmp_path: Path
) -> None:
    moto_admin.put_object(Bucket=moto_bucket, Key="plain/a.txt", Body=b"one")
    url = f"s3://{moto_bucket}/plain/"
    dg("sync", url, "local")
    moto_admin.put_object(Bucket=moto_bucket, Key="plain/a.txt", Body=b"two")

    result = dg("sync", url, "local", "--json")

    document = json.loads(result.stdout)
    assert [r["action"] for r in document["results"]] == ["download"]
    assert (tmp_path / "local" / "a.txt").read_bytes() == b"two"


def test_s3_to_s3_sync(dg: Cli, moto_bucket: str, moto_admin: Any, dist: Path) -> None:
    dg("sync", "dist", f"s3://{moto_bucket}/a/")

    first = dg("sync", f"s3://{moto_bucket}/a/", f"s3://{moto_bucket}/b/")
    again = dg("sync", f"s3://{moto_bucket}/a/", f"s3://{moto_bucket}/b/")

    assert first.exit_code == 0, first.stderr
    assert sum(line.startswith("copy: ") for line in first.stdout.splitlines()) == 5
    assert again.stdout == ""
    assert "b/sub/app-1.0.3.zip.delta" in raw_keys(moto_admin, moto_bucket)


def test_sync_from_a_missing_source_deletes_nothing(
    dg: Cli, moto_bucket: str, moto_admin: Any, dist: Path, tmp_path: Path
) -> None:
    # A misspelled source must never read as "empty" and wipe the destination.
    dg("sync", "dist", f"s3://{moto_bucket}/rel/")
    dg("sync", f"s3://{moto_bucket}/rel/", "mirror")
    before_s3 = raw_keys(moto_admin, moto_bucket)
    before_local = sorted(p.relative_to(tmp_path) for p in (tmp_path / "mirror").rglob("*"))

    cases = [
        ("sync", "--delete", f"s3://{moto_bucket}/rle/", "mirror"),
        ("sync", "--delete", f"s3://{moto_bucket}/rle", f"s3://{moto_bucket}/rel/"),
        ("sync", "--delete", "no-such-dir/", f"s3://{moto_bucket}/rel/"),
    ]
    for args in cases:
        result = dg(*args)
        assert result.exit_code == 3, (args, result.stderr)
        assert "does not exist" in result.stderr
        assert raw_keys(moto_admin, moto_bucket) == before_s3
        after = sorted(p.relative_to(tmp_path) for p in (tmp_path / "mirror").rglob("*"))
        assert after == before_local


@pytest.mark.parametrize("unreadable", ["sub", "."], ids=["subdirectory", "source"])
def test_sync_delete_from_an_unreadable_source_deletes_nothing(
    s3_server: Any, bucket: str, s3_admin: Any, tmp_path: Path, unreadable: str
) -> None:
    """An unreadable directory is an error (exit 4), never an empty one: with --delete a
    tree read partly would delete the destination's copies of what could not be read."""
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_bytes(b"a")
    (src / "sub" / "b.txt").write_bytes(b"b")
    s3_admin.put_object(Bucket=bucket, Key="bk/a.txt", Body=b"a")
    s3_admin.put_object(Bucket=bucket, Key="bk/sub/b.txt", Body=b"b")
    (src / unreadable).chmod(0)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "DG_"))}
    env.update(s3_server.env())
    env["PYTHONPATH"] = str(ROOT)
    try:
        done = subprocess.run(
            [*unprivileged_command(), *_SYNC, str(src), f"s3://{bucket}/bk/", "--delete"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        (src / unreadable).chmod(0o755)
    assert done.returncode == 4, done.stdout + done.stderr
    assert "permission denied" in done.stderr
    assert "delete:" not in done.stdout
    listed = s3_admin.list_objects_v2(Bucket=bucket, Prefix="bk/").get("Contents", [])
    assert sorted(o["Key"] for o in listed) == ["bk/a.txt", "bk/sub/b.txt"]
