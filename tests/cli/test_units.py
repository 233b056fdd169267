"""Pure helpers of the CLI: path rules, filters, sizes, exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest

from deltaglider.cli._errors import CliUsageError, ExitCode, exit_code_for
from deltaglider.cli._output import human_size
from deltaglider.cli._paths import (
    Filters,
    LocalPath,
    copy_key,
    dir_prefix,
    display_local,
    download_path,
    parse_location,
    parse_s3_or_bucket,
    scan_filter_order,
    upload_key,
    walk_local,
)
from deltaglider_async import (
    AccessDeniedError,
    BucketNotFoundError,
    DiffToolNotFoundError,
    IntegrityError,
    ReservedKeyError,
    S3Url,
    StorageError,
)


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0 Bytes"),
        (1, "1 Byte"),
        (1023, "1023 Bytes"),
        (1024, "1.0 KiB"),
        (1024 * 1023.96, "1.0 MiB"),
        (15_000_000, "14.3 MiB"),
        (3 * 1024**4, "3.0 TiB"),
    ],
)
def test_human_size_matches_aws(size: float, text: str) -> None:
    assert human_size(size) == text


@pytest.mark.parametrize(
    ("dest", "key"),
    [("s3://b/dir/", "dir/a.zip"), ("s3://b", "a.zip"), ("s3://b/dir/x.zip", "dir/x.zip")],
)
def test_upload_key(dest: str, key: str) -> None:
    assert upload_key(Path("some/where/a.zip"), S3Url.parse(dest)) == key


def test_copy_key_uses_the_logical_name() -> None:
    assert copy_key("rel/a.zip.delta", S3Url.parse("s3://c/archive/")) == "archive/a.zip"
    assert copy_key("rel/a.zip", S3Url.parse("s3://c/b.zip")) == "b.zip"


def test_download_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "existing").mkdir()

    assert download_path("d/a.zip", LocalPath("out/")) == Path("out/a.zip")
    assert download_path("d/a.zip", LocalPath("existing")) == Path("existing/a.zip")
    assert download_path("d/a.zip", LocalPath("b.zip")) == Path("b.zip")
    assert display_local(Path("a.zip")) == "./a.zip"
    assert display_local(tmp_path / "existing" / "a.zip") == "existing/a.zip"


def test_dir_prefix() -> None:
    assert [dir_prefix(k) for k in ("", "dir", "dir/", "a//b")] == ["", "dir/", "dir/", "a//b/"]


def test_locations() -> None:
    assert parse_location("s3://b/k") == S3Url("b", "k")
    assert parse_location("./x") == LocalPath("./x")
    assert parse_s3_or_bucket("bucket") == S3Url("bucket", "")
    for bad in ("s3://", "S3://b/k", "gs://b/k", ""):
        with pytest.raises(CliUsageError):
            parse_location(bad)
    with pytest.raises(CliUsageError):
        parse_s3_or_bucket("s3:/b")


def test_filters_last_match_wins() -> None:
    rules = Filters.build(
        scan_filter_order(["--exclude", "*", "--include=*.zip", "x", "--exclude", "old/*"]),
        ["*", "old/*"],
        ["*.zip"],
    )

    assert rules.selects("a.zip")
    assert not rules.selects("a.txt")
    assert not rules.selects("old/a.zip")
    assert Filters().selects("anything")


def test_filter_order_is_not_trusted_when_it_disagrees_with_click() -> None:
    # e.g. a value that merely looks like an option: excludes first, then includes.
    rules = Filters.build([("include", "*.zip")], ["*"], ["*.zip"])

    assert rules.rules == ((False, "*"), (True, "*.zip"))


def test_scan_stops_at_double_dash() -> None:
    assert scan_filter_order(["--exclude", "a", "--", "--include", "b"]) == [("exclude", "a")]


def test_walk_skips_directory_symlinks_and_sorts(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "y.txt").write_text("y")
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / "loop").symlink_to(tmp_path, target_is_directory=True)
    (tmp_path / "link.txt").symlink_to(tmp_path / "a.txt")

    assert [f.relative for f in walk_local(tmp_path)] == ["a.txt", "b/y.txt", "link.txt"]


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ReservedKeyError("x"), ExitCode.USAGE),
        (BucketNotFoundError("x"), ExitCode.NOT_FOUND),
        (FileNotFoundError("x"), ExitCode.NOT_FOUND),
        (AccessDeniedError("x"), ExitCode.ACCESS_DENIED),
        (IntegrityError("x"), ExitCode.INTEGRITY),
        (DiffToolNotFoundError("x"), ExitCode.XDELTA3),
        (StorageError("x"), ExitCode.FAILED),
        (KeyboardInterrupt(), ExitCode.INTERRUPTED),
    ],
)
def test_exit_codes(error: BaseException, code: ExitCode) -> None:
    assert exit_code_for(error) is code
