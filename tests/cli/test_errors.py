"""Bad input: the documented exit code, one clear line on stderr, nothing changed in S3."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from deltaglider.cli import _engine
from deltaglider.cli._errors import ExitCode
from deltaglider_async.testing import LocalS3

from .conftest import Cli, raw_keys

SENTINEL = "keep/sentinel.txt"

CASES = [
    pytest.param(
        ["cp", "missing.zip", "s3://{b}/dir/"],
        ExitCode.NOT_FOUND,
        "local file 'missing.zip' does not exist",
        id="missing-local-file",
    ),
    pytest.param(
        ["cp", "app.zip", "s3://no-such-bucket-{b}/dir/"],
        ExitCode.NOT_FOUND,
        "bucket 'no-such-bucket-{b}' does not exist",
        id="missing-bucket",
    ),
    pytest.param(
        ["cp", "s3://{b}/dir/missing.zip", "out.zip"],
        ExitCode.NOT_FOUND,
        "s3://{b}/dir/missing.zip not found",
        id="missing-key",
    ),
    pytest.param(
        ["cp", "app.zip", "s3://"],
        ExitCode.USAGE,
        "bad destination: S3 URL has no bucket name: 's3://'",
        id="bad-url",
    ),
    pytest.param(
        ["cp", "app.zip", "https://{b}/x.zip"],
        ExitCode.USAGE,
        "only s3://bucket/key URLs and local paths are supported",
        id="bad-scheme",
    ),
    pytest.param(
        ["cp", "app.zip", "copy.zip"],
        ExitCode.USAGE,
        "local to local copies are not supported",
        id="local-to-local",
    ),
    pytest.param(
        ["cp", "app.zip", "s3://{b}/dir/reference.bin"],
        ExitCode.USAGE,
        "'dir/reference.bin' is reserved",
        id="reserved-reference",
    ),
    pytest.param(
        ["cp", "app.zip", "s3://{b}/dir/app.zip.delta"],
        ExitCode.USAGE,
        "'dir/app.zip.delta' is reserved",
        id="reserved-delta",
    ),
    pytest.param(
        ["cp", "dist", "s3://{b}/dir/"],
        ExitCode.USAGE,
        "'dist' is a directory: add --recursive",
        id="directory-without-recursive",
    ),
]


#: The cases that depend on the server's answers run against both servers.
ON_BOTH = {"missing-bucket", "missing-key", "reserved-reference"}


@pytest.mark.parametrize(("args", "code", "message"), [c for c in CASES if c.id in ON_BOTH])
def test_bad_input_on_both_servers(
    dg_any: Cli,
    bucket: str,
    s3_admin: Any,
    tmp_path: Path,
    release_zips: list[Path],
    args: list[str],
    code: int,
    message: str,
) -> None:
    _check_bad_input(dg_any, bucket, s3_admin, tmp_path, release_zips, args, code, message)


@pytest.mark.parametrize(("args", "code", "message"), CASES)
def test_bad_input(
    dg: Cli,
    moto_bucket: str,
    moto_admin: Any,
    tmp_path: Path,
    release_zips: list[Path],
    args: list[str],
    code: int,
    message: str,
) -> None:
    _check_bad_input(dg, moto_bucket, moto_admin, tmp_path, release_zips, args, code, message)


def _check_bad_input(
    dg: Cli,
    bucket: str,
    s3_admin: Any,
    tmp_path: Path,
    release_zips: list[Path],
    args: list[str],
    code: int,
    message: str,
) -> None:
    """The documented code and one line on stderr; the bucket and the directory unchanged."""
    (tmp_path / "app.zip").write_bytes(release_zips[0].read_bytes())
    (tmp_path / "dist").mkdir()
    s3_admin.put_object(Bucket=bucket, Key=SENTINEL, Body=b"unchanged")
    before = raw_keys(s3_admin, bucket)

    result = dg(*(a.format(b=bucket) for a in args))

    assert result.exit_code == code
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("deltaglider: error: ")
    assert message.format(b=bucket) in lines[0]
    assert "Traceback" not in result.stderr
    assert raw_keys(s3_admin, bucket) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.zip", "dist"]


def test_debug_prints_the_traceback(dg: Cli, moto_bucket: str) -> None:
    result = dg("--debug", "cp", f"s3://{moto_bucket}/missing.zip", "out.zip")

    assert result.exit_code == ExitCode.NOT_FOUND
    assert "Traceback (most recent call last)" in result.stderr
    assert result.stderr.splitlines()[-1] == (
        f"deltaglider: error: s3://{moto_bucket}/missing.zip not found"
    )


def test_missing_xdelta3_exits_6(
    moto_s3: LocalS3,
    moto_bucket: str,
    moto_admin: Any,
    tmp_path: Path,
    release_zips: list[Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.chdir(tmp_path)
    dg = Cli(moto_s3, PATH=str(empty))

    result = dg("cp", str(release_zips[0]), f"s3://{moto_bucket}/app/")

    assert result.exit_code == ExitCode.XDELTA3
    assert result.stderr.startswith("deltaglider: error: ")
    assert "xdelta3" in result.stderr
    assert raw_keys(moto_admin, moto_bucket) == {}


def test_refused_credentials_exit_4(
    seaweed_server: LocalS3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    wrong = LocalS3(
        seaweed_server.name,
        seaweed_server.endpoint_url,
        seaweed_server.access_key,
        "not-the-secret",
        seaweed_server.region,
    )

    result = Cli(wrong)("ls")

    assert result.exit_code == ExitCode.ACCESS_DENIED
    assert result.stderr.startswith("deltaglider: error: access denied")


def test_interrupt_exits_130(
    dg: Cli, moto_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(_engine, "upload_many", interrupted)
    (tmp_path / "a.txt").write_text("a")

    result = dg("cp", "a.txt", f"s3://{moto_bucket}/")

    assert result.exit_code == ExitCode.INTERRUPTED
    assert result.stderr == "deltaglider: error: interrupted\n"


def test_unknown_command_and_option_are_one_line_usage_errors(dg: Cli) -> None:
    command = dg("frobnicate")
    option = dg("ls", "--frobnicate")

    assert command.exit_code == option.exit_code == ExitCode.USAGE
    assert command.stderr.startswith("deltaglider: error: No such command 'frobnicate'.")
    assert option.stderr == (
        "deltaglider: error: No such option '--frobnicate'. (see 'deltaglider ls --help')\n"
    )


def test_partial_failures_exit_1(
    dg: Cli, moto_bucket: str, moto_admin: Any, tmp_path: Path
) -> None:
    moto_admin.put_object(Bucket=moto_bucket, Key="d/ok.txt", Body=b"fine")
    moto_admin.put_object(Bucket=moto_bucket, Key="d/..", Body=b"escapes the directory")

    result = dg("cp", "-r", f"s3://{moto_bucket}/d/", "out")

    assert result.exit_code == ExitCode.FAILED
    assert result.stdout == f"download: s3://{moto_bucket}/d/ok.txt to out/ok.txt\n"
    assert result.stderr.splitlines()[-1] == "deltaglider: error: 1 of 2 files failed"
    assert (tmp_path / "out" / "ok.txt").read_bytes() == b"fine"
