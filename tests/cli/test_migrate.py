"""``deltaglider migrate``: confirmation, dry runs, resuming, shards, patterns."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from deltaglider_async.testing import LocalS3
from deltaglider_async.testing_proxy import FaultProxy, ProxyRequest

from .conftest import Cli, raw_keys

PLAIN = {f"plain/v{n}/app.txt": f"version {n} ".encode() * 500 for n in range(3)} | {
    "plain/readme.md": b"readme",
    "plain/skip.log": b"log",
}


@pytest.fixture
def plain_source(moto_admin: Any, moto_bucket: str) -> str:
    """A plain bucket prefix (no deltaglider metadata) to migrate from."""
    for key, body in PLAIN.items():
        moto_admin.put_object(Bucket=moto_bucket, Key=key, Body=body)
    return f"s3://{moto_bucket}/plain/"


def _migrated(admin: Any, bucket: str) -> set[str]:
    return {
        k.removesuffix(".delta")
        for k in raw_keys(admin, bucket)
        if k.startswith("dest/") and not k.endswith("reference.bin")
    }


def test_migrate_then_rerun_skips_everything(
    dg: Cli, moto_bucket: str, moto_admin: Any, plain_source: str, tmp_path: Path
) -> None:
    dest = f"s3://{moto_bucket}/dest/"

    first = dg("migrate", plain_source, dest, "--yes")
    again = dg("migrate", plain_source, dest, "--yes", "--json")

    assert first.exit_code == 0, first.stderr
    lines = first.stdout.splitlines()
    assert f"migrate: {plain_source}readme.md to {dest}readme.md (direct, 6 Bytes)" in lines
    assert lines[-2] == "Migrated 5 objects, 0 already present, 0 failed"
    assert _migrated(moto_admin, moto_bucket) == {k.replace("plain/", "dest/", 1) for k in PLAIN}
    document = json.loads(again.stdout)
    assert document["results"] == []
    assert len(document["skipped"]) == 5
    assert dg("cp", f"{dest}v1/app.txt", "v1.txt").exit_code == 0
    assert (tmp_path / "v1.txt").read_bytes() == PLAIN["plain/v1/app.txt"]


def test_dry_run_writes_nothing(
    dg: Cli, moto_bucket: str, moto_admin: Any, plain_source: str
) -> None:
    result = dg("migrate", "--dry-run", plain_source, f"s3://{moto_bucket}/dest/")

    assert result.exit_code == 0, result.stderr
    assert sum(line.startswith("(dryrun) migrate: ") for line in result.stdout.splitlines()) == 5
    assert result.stdout.splitlines()[-1] == "Would migrate 5 objects, 0 already present, 0 failed"
    assert _migrated(moto_admin, moto_bucket) == set()


def test_refuses_without_a_terminal_or_yes(
    dg: Cli, moto_bucket: str, moto_admin: Any, plain_source: str
) -> None:
    result = dg("migrate", plain_source, f"s3://{moto_bucket}/dest/", input="y\n")

    assert result.exit_code == 2
    assert "confirm with --yes" in result.stderr
    assert _migrated(moto_admin, moto_bucket) == set()


def test_shards_cover_everything_once(
    dg: Cli, moto_bucket: str, moto_admin: Any, plain_source: str
) -> None:
    dest = f"s3://{moto_bucket}/dest/"
    counts = []
    for shard in ("0/2", "1/2"):
        result = dg("migrate", plain_source, dest, "--yes", "--shard", shard, "-j", "2")
        assert result.exit_code == 0, result.stderr
        counts.append(sum(line.startswith("migrate: ") for line in result.stdout.splitlines()))

    assert sum(counts) == 5
    assert _migrated(moto_admin, moto_bucket) == {k.replace("plain/", "dest/", 1) for k in PLAIN}


def test_patterns(dg: Cli, moto_bucket: str, moto_admin: Any, plain_source: str) -> None:
    result = dg(
        "migrate",
        plain_source,
        f"s3://{moto_bucket}/dest/",
        "--yes",
        "--include",
        "v*",
        "--include",
        "*.md",
        "--exclude",
        "v2/*",
    )

    assert result.exit_code == 0, result.stderr
    assert _migrated(moto_admin, moto_bucket) == {
        "dest/v0/app.txt",
        "dest/v1/app.txt",
        "dest/readme.md",
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--shard", "2/2"], "expected K/N with 0 <= K < N"),
        (["--shard", "x"], "expected K/N with 0 <= K < N"),
        (["--no-delta"], "No such option '--no-delta'"),
    ],
)
def test_bad_options(
    dg: Cli, moto_bucket: str, plain_source: str, args: list[str], message: str
) -> None:
    result = dg("migrate", plain_source, f"s3://{moto_bucket}/dest/", "--yes", *args)

    assert result.exit_code == 2
    assert message in result.stderr


def test_global_no_delta_is_refused(dg: Cli, moto_bucket: str, plain_source: str) -> None:
    result = dg("--no-delta", "migrate", plain_source, f"s3://{moto_bucket}/dest/", "--yes")

    assert result.exit_code == 2
    assert "--no-delta does not apply to migrate" in result.stderr


def test_overlapping_prefixes_are_a_usage_error(
    dg: Cli, moto_bucket: str, plain_source: str
) -> None:
    result = dg("migrate", plain_source, f"{plain_source}inner/", "--yes")

    assert result.exit_code == 2
    assert "overlap" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--shard", "auto", "--shards", "2"], "JOB_COMPLETION_INDEX or AWS_BATCH_JOB_ARRAY_INDEX"),
        (["--shard", "auto"], "JOB_COMPLETION_INDEX or AWS_BATCH_JOB_ARRAY_INDEX"),
        (["--shards", "2"], "--shards goes with --shard auto"),
        (["--from-list", "k.txt", "--inventory", "m.json"], "not both"),
        (["--inventory", "s3://"], "--inventory"),
    ],
)
def test_shard_usage_errors(
    dg: Cli, moto_bucket: str, plain_source: str, args: list[str], message: str
) -> None:
    result = dg("migrate", plain_source, f"s3://{moto_bucket}/dest/", "--yes", *args)

    assert result.exit_code == 2, result.stdout
    assert message in result.stderr


def test_shard_auto_from_an_indexed_job(
    moto_s3: LocalS3, moto_bucket: str, moto_admin: Any, plain_source: str, tmp_path: Path
) -> None:
    dest = f"s3://{moto_bucket}/dest/"
    done = []
    for index in range(2):
        pod = Cli(moto_s3, JOB_COMPLETION_INDEX=str(index))
        result = pod(
            "migrate",
            plain_source,
            dest,
            "--yes",
            "--json",
            "--shard",
            "auto",
            "--shards",
            "2",
            "--report",
            str(tmp_path / "reports"),
        )
        assert result.exit_code == 0, result.stderr
        document = json.loads(result.stdout)
        assert document["shard"] == f"{index}/2"
        assert document["list_requests"] >= 1
        assert document["report"] == str(tmp_path / "reports" / f"shard-{index:05d}-of-00002.json")
        done += [r["source"] for r in document["results"]]

    assert sorted(done) == sorted(f"s3://{moto_bucket}/{k}" for k in PLAIN)
    assert _migrated(moto_admin, moto_bucket) == {k.replace("plain/", "dest/", 1) for k in PLAIN}


def test_only_temporary_failures_exit_with_75(
    moto_s3: LocalS3, moto_bucket: str, moto_admin: Any, plain_source: str
) -> None:
    def puts_of_readme(request: ProxyRequest) -> bool:
        return request.method == "PUT" and "/dest/readme.md" in request.target

    with FaultProxy(
        moto_s3.endpoint_url, fault_rate=1.0, faults=["503"], fault_filter=puts_of_readme
    ) as proxy:
        result = Cli(proxy.wrap(moto_s3))(
            "migrate", plain_source, f"s3://{moto_bucket}/dest/", "--yes"
        )

    assert result.exit_code == 75, result.stderr
    assert "1 of 5 objects failed" in result.stderr
    assert "run the same command again to resume" in result.stderr
    assert _migrated(moto_admin, moto_bucket) == {
        k.replace("plain/", "dest/", 1) for k in PLAIN if k != "plain/readme.md"
    }
