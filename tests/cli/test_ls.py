"""``deltaglider ls``: buckets, ``PRE`` lines, recursive listings, sizes, every page."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from deltaglider.cli import _listing, cli
from deltaglider_async.testing import LocalS3

from .conftest import Cli

DATE = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"


def test_no_argument_lists_buckets(dg: Cli, moto_bucket: str) -> None:
    result = dg("ls")

    assert result.exit_code == 0, result.stderr
    assert re.search(rf"^{DATE} {moto_bucket}$", result.stdout, re.MULTILINE)


def test_prefix_listing_shows_directories_and_original_sizes(
    dg: Cli, moto_bucket: str, dist: Path
) -> None:
    dg("cp", "-r", "dist", f"s3://{moto_bucket}/rel/")
    size = (dist / "app-1.0.1.zip").stat().st_size

    result = dg("ls", f"s3://{moto_bucket}/rel/")

    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == " " * 27 + "PRE sub/"
    assert re.fullmatch(rf"{DATE} {size:>10} app-1.0.1\.zip", lines[2])
    assert [line.rsplit(" ", 1)[1] for line in lines[1:]] == [
        "app-1.0.0.zip",
        "app-1.0.1.zip",
        "app-1.0.2.zip",
        "notes.txt",
    ]
    assert "reference.bin" not in result.stdout
    assert ".delta" not in result.stdout


def test_bucket_root_and_recursive_human_readable_summary(
    dg: Cli, moto_bucket: str, dist: Path
) -> None:
    dg("cp", "-r", "dist", f"s3://{moto_bucket}/rel/")

    root = dg("ls", f"s3://{moto_bucket}")
    recursive = dg("ls", "-r", "-h", "--summarize", f"s3://{moto_bucket}")

    assert root.stdout == " " * 27 + "PRE rel/\n"
    lines = recursive.stdout.splitlines()
    assert re.fullmatch(rf"{DATE}   58\.\d KiB rel/app-1\.0\.0\.zip", lines[0])
    assert re.fullmatch(rf"{DATE}   14 Bytes rel/notes\.txt", lines[3])
    assert lines[4].endswith(" rel/sub/app-1.0.3.zip")
    total = sum(p.stat().st_size for p in dist.rglob("*") if p.is_file())
    assert lines[5:] == ["", "Total Objects: 5", f"   Total Size: {total / 1024:.1f} KiB"]


def test_json_listing(dg: Cli, moto_bucket: str, dist: Path) -> None:
    dg("cp", "-r", "dist", f"s3://{moto_bucket}/")

    result = dg("ls", "--json", "--summarize", f"s3://{moto_bucket}/")

    document = json.loads(result.stdout)
    assert document["CommonPrefixes"] == ["sub/"]
    assert [o["Key"] for o in document["Objects"]] == [
        "app-1.0.0.zip",
        "app-1.0.1.zip",
        "app-1.0.2.zip",
        "notes.txt",
    ]
    delta = document["Objects"][1]
    assert delta["IsDelta"] is True
    assert delta["Size"] == (dist / "app-1.0.1.zip").stat().st_size
    assert delta["StoredSize"] < delta["Size"] / 2
    assert document["Summary"]["TotalObjects"] == 4


def test_every_page_is_listed(
    dg: Cli, moto_bucket: str, moto_admin: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = [f"many/{n:02d}.txt" for n in range(7)]
    for key in keys:
        moto_admin.put_object(Bucket=moto_bucket, Key=key, Body=b"x")
    monkeypatch.setattr(_listing, "PAGE_SIZE", 2)

    flat = dg("ls", "-r", "--summarize", f"s3://{moto_bucket}/many/")
    tree = dg("ls", f"s3://{moto_bucket}/")

    assert flat.exit_code == 0, flat.stderr
    lines = flat.stdout.splitlines()
    assert [line.rsplit(" ", 1)[1] for line in lines[:-3]] == keys
    assert lines[-2] == "Total Objects: 7"
    assert tree.stdout == " " * 27 + "PRE many/\n"


def test_a_prefix_matching_nothing_exits_3(dg: Cli, moto_bucket: str) -> None:
    result = dg("ls", f"s3://{moto_bucket}/nothing-here")

    assert result.exit_code == 3
    assert result.stdout == ""
    assert result.stderr == f"deltaglider: error: nothing matches s3://{moto_bucket}/nothing-here\n"


def test_an_empty_bucket_lists_nothing_successfully(dg: Cli, moto_bucket: str) -> None:
    result = dg("ls", f"s3://{moto_bucket}")

    assert result.exit_code == 0
    assert result.stdout == ""


def test_profile_selects_credentials_from_the_aws_files(
    moto_s3: LocalS3, moto_bucket: str, tmp_path: Path
) -> None:
    credentials = tmp_path / "credentials"
    credentials.write_text(
        f"[release]\naws_access_key_id = {moto_s3.access_key}\n"
        f"aws_secret_access_key = {moto_s3.secret_key}\n"
    )
    runner = CliRunner(
        env={"AWS_SHARED_CREDENTIALS_FILE": str(credentials), "AWS_DEFAULT_REGION": "us-east-1"}
    )
    base = ["--endpoint-url", moto_s3.endpoint_url]

    found = runner.invoke(cli, [*base, "ls", "--profile", "release"])
    missing = runner.invoke(cli, [*base, "--profile", "nope", "ls"])

    assert found.exit_code == 0, found.stderr
    assert moto_bucket in found.stdout
    assert missing.exit_code == 2
    assert "nope" in missing.stderr
