"""``deltaglider stats`` and ``deltaglider verify``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from .conftest import Cli, raw_keys


def _corrupt(admin: Any, bucket: str, key: str) -> None:
    """Replace a stored object's bytes, keeping its metadata (bit rot, a bad copy...)."""
    head = admin.head_object(Bucket=bucket, Key=key)
    body = bytearray(admin.get_object(Bucket=bucket, Key=key)["Body"].read())
    body[len(body) // 2] ^= 0xFF
    admin.put_object(Bucket=bucket, Key=key, Body=bytes(body), Metadata=head["Metadata"])


def test_stats_text_and_json(dg: Cli, moto_bucket: str, moto_admin: Any, dist: Path) -> None:
    dg("cp", "-r", "dist", f"s3://{moto_bucket}/rel/")

    text = dg("stats", f"s3://{moto_bucket}")
    document = json.loads(dg("stats", moto_bucket, "--detailed", "--json").stdout)

    assert text.exit_code == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0] == f"Bucket:        {moto_bucket}"
    assert lines[1] == "Mode:          quick"
    assert lines[2] == "Objects:       5 (4 delta, 1 direct)"
    assert lines[5].startswith("Space saved:   ")
    original = sum(p.stat().st_size for p in dist.rglob("*") if p.is_file())
    assert document["mode"] == "detailed"
    assert document["total_size"] == original
    assert document["object_count"] == 5
    assert document["compressed_size"] == sum(
        size for key, size in raw_keys(moto_admin, moto_bucket).items() if "stats_" not in key
    )
    assert {".deltaglider/stats_quick.json", ".deltaglider/stats_detailed.json"} <= set(
        raw_keys(moto_admin, moto_bucket)
    )


def test_stats_cache_options(dg: Cli, moto_bucket: str, moto_admin: Any, dist: Path) -> None:
    dg("cp", "-r", "dist", f"s3://{moto_bucket}/")

    uncached = dg("stats", moto_bucket, "--sampled", "--no-cache", "--json")
    assert json.loads(uncached.stdout)["mode"] == "sampled"
    assert not any(k.startswith(".deltaglider/") for k in raw_keys(moto_admin, moto_bucket))

    dg("stats", moto_bucket)
    cache = ".deltaglider/stats_quick.json"
    stale = json.loads(moto_admin.get_object(Bucket=moto_bucket, Key=cache)["Body"].read())
    stale["stats"]["object_count"] = 999
    moto_admin.put_object(Bucket=moto_bucket, Key=cache, Body=json.dumps(stale).encode())

    cached = json.loads(dg("stats", moto_bucket, "--json").stdout)
    refreshed = json.loads(dg("stats", moto_bucket, "--refresh", "--json").stdout)

    assert cached["object_count"] == 999  # the (still valid) cache was used
    assert refreshed["object_count"] == 5


def test_stats_usage_and_missing_bucket(dg: Cli, moto_bucket: str) -> None:
    both = dg("stats", moto_bucket, "--sampled", "--detailed")
    missing = dg("stats", "s3://no-such-bucket-here")

    assert both.exit_code == 2
    assert "--sampled and --detailed are exclusive" in both.stderr
    assert missing.exit_code == 3
    assert missing.stderr.startswith("deltaglider: error: bucket 'no-such-bucket-here'")


def test_verify_good_and_corrupt_objects(
    dg: Cli, moto_bucket: str, moto_admin: Any, dist: Path
) -> None:
    dg("cp", "-r", "dist", f"s3://{moto_bucket}/rel/")

    good = dg("verify", f"s3://{moto_bucket}/rel/app-1.0.1.zip")
    _corrupt(moto_admin, moto_bucket, "rel/app-1.0.2.zip.delta")
    bad = dg("verify", f"s3://{moto_bucket}/rel/app-1.0.2.zip")
    everything = dg("verify", "-r", f"s3://{moto_bucket}/rel/", "--json")

    assert good.exit_code == 0, good.stderr
    assert good.stdout.startswith(f"verify: s3://{moto_bucket}/rel/app-1.0.1.zip (sha256 ")
    assert bad.exit_code == 5
    assert bad.stdout == ""
    assert bad.stderr.startswith(
        f"deltaglider: error: s3://{moto_bucket}/rel/app-1.0.2.zip is corrupt: "
    )
    assert len(bad.stderr.splitlines()) == 1
    assert everything.exit_code == 5
    document = json.loads(everything.stdout)
    assert [r["ok"] for r in document["results"]] == [True, True, False, True, True]


def test_verify_corrupt_direct_object(dg: Cli, moto_bucket: str, moto_admin: Any) -> None:
    dg("cp", "-", f"s3://{moto_bucket}/notes.txt", input=b"some notes " * 10)
    _corrupt(moto_admin, moto_bucket, "notes.txt")

    result = dg("verify", f"s3://{moto_bucket}/notes.txt")

    assert result.exit_code == 5
    assert "sha256" in result.stderr


@pytest.mark.parametrize("url", ["s3://{b}/missing.zip", "s3://{b}/empty/"])
def test_verify_nothing_exits_3(dg: Cli, moto_bucket: str, url: str) -> None:
    args = ["verify", url.format(b=moto_bucket)]
    if url.endswith("/"):
        args.append("-r")

    result = dg(*args)

    assert result.exit_code == 3
    assert result.stderr.startswith("deltaglider: error: ")
