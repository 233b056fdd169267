"""``deltaglider cp``: destinations as ``aws s3 cp`` resolves them, all three directions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from .conftest import Cli, raw_keys


def test_upload_into_a_prefix_stores_the_file_name(
    dg: Cli, moto_bucket: str, moto_admin: Any, release_zips: list[Path]
) -> None:
    result = dg("cp", str(release_zips[0]), f"s3://{moto_bucket}/releases/app/")

    assert result.exit_code == 0, result.stderr
    url = f"s3://{moto_bucket}/releases/app/app-1.0.0.zip"
    assert result.stdout.startswith("upload: ")
    assert result.stdout.endswith(f"app-1.0.0.zip to {url} (reference, 58.5 KiB)\n")
    assert set(raw_keys(moto_admin, moto_bucket)) == {
        "releases/app/reference.bin",
        "releases/app/app-1.0.0.zip.delta",
    }


def test_upload_line_shows_delta_share_and_local_path_like_aws(
    dg: Cli, moto_bucket: str, tmp_path: Path, release_zips: list[Path]
) -> None:
    for source in release_zips[:2]:
        (tmp_path / source.name).write_bytes(source.read_bytes())
    dg("cp", "app-1.0.0.zip", f"s3://{moto_bucket}/app/")

    result = dg("cp", "app-1.0.1.zip", f"s3://{moto_bucket}/app/")

    assert result.exit_code == 0, result.stderr
    line = result.stdout.strip()
    assert line.startswith(
        f"upload: ./app-1.0.1.zip to s3://{moto_bucket}/app/app-1.0.1.zip (delta, "
    )
    assert line.endswith(" KiB)")
    share = float(line.split("(delta, ")[1].split("%")[0])
    assert 0 < share < 50


@pytest.mark.parametrize(
    ("destination", "key"),
    [
        ("s3://{b}/dir/renamed.zip", "dir/renamed.zip"),
        ("s3://{b}", "app-1.0.0.zip"),
        ("s3://{b}/", "app-1.0.0.zip"),
    ],
)
def test_upload_destination_rules(
    dg: Cli,
    moto_bucket: str,
    moto_admin: Any,
    release_zips: list[Path],
    destination: str,
    key: str,
) -> None:
    result = dg("cp", str(release_zips[0]), destination.format(b=moto_bucket))

    assert result.exit_code == 0, result.stderr
    assert key + ".delta" in raw_keys(moto_admin, moto_bucket)
    head = moto_admin.head_object(Bucket=moto_bucket, Key=key + ".delta")
    assert head["Metadata"]["dg-original-name"] == key.rpartition("/")[2]


def test_download_into_a_directory_and_to_a_file(
    dg: Cli, moto_bucket: str, tmp_path: Path, release_zips: list[Path]
) -> None:
    for source in release_zips[:2]:
        dg("cp", str(source), f"s3://{moto_bucket}/dir/")
    url = f"s3://{moto_bucket}/dir/app-1.0.1.zip"

    into_new_dir = dg("cp", url, "./out/")
    into_existing_dir = dg("cp", url, "out")
    to_file = dg("cp", url, "copy.zip")

    assert into_new_dir.exit_code == into_existing_dir.exit_code == to_file.exit_code == 0
    assert into_new_dir.stdout == f"download: {url} to out/app-1.0.1.zip\n"
    assert to_file.stdout == f"download: {url} to ./copy.zip\n"
    expected = release_zips[1].read_bytes()
    assert (tmp_path / "out" / "app-1.0.1.zip").read_bytes() == expected
    assert (tmp_path / "copy.zip").read_bytes() == expected
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["app-1.0.1.zip"]


def test_s3_to_s3_copy_reconstructs_and_stores_at_the_destination(
    dg: Cli, moto_bucket: str, moto_admin: Any, tmp_path: Path, release_zips: list[Path]
) -> None:
    moto_admin.create_bucket(Bucket=moto_bucket + "-copy")
    try:
        for source in release_zips[:2]:
            dg("cp", str(source), f"s3://{moto_bucket}/app/")

        result = dg(
            "cp", f"s3://{moto_bucket}/app/app-1.0.1.zip", f"s3://{moto_bucket}-copy/archive/"
        )

        assert result.exit_code == 0, result.stderr
        target = f"s3://{moto_bucket}-copy/archive/app-1.0.1.zip"
        assert result.stdout.startswith(f"copy: s3://{moto_bucket}/app/app-1.0.1.zip to {target} (")
        assert dg("cp", target, "back.zip").exit_code == 0
        assert (tmp_path / "back.zip").read_bytes() == release_zips[1].read_bytes()
    finally:
        from .conftest import empty_and_delete

        empty_and_delete(moto_admin, moto_bucket + "-copy")


def test_recursive_upload_keeps_the_tree_and_prints_a_savings_summary(
    dg: Cli, moto_bucket: str, moto_admin: Any, dist: Path
) -> None:
    result = dg("cp", "-r", "dist", f"s3://{moto_bucket}/rel")

    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    url = f"s3://{moto_bucket}/rel"
    assert lines[0].startswith(f"upload: dist/app-1.0.0.zip to {url}/app-1.0.0.zip (reference, ")
    assert lines[1].startswith(f"upload: dist/app-1.0.1.zip to {url}/app-1.0.1.zip (delta, ")
    assert lines[2].startswith(f"upload: dist/app-1.0.2.zip to {url}/app-1.0.2.zip (delta, ")
    assert lines[3] == f"upload: dist/notes.txt to {url}/notes.txt (direct, 14 Bytes)"
    assert lines[4].startswith(
        f"upload: dist/sub/app-1.0.3.zip to {url}/sub/app-1.0.3.zip (reference, "
    )
    assert lines[5].startswith("Stored 5 files: ")
    assert "(saved " in lines[5]
    assert len(lines) == 6
    assert set(raw_keys(moto_admin, moto_bucket)) == {
        "rel/reference.bin",
        "rel/app-1.0.0.zip.delta",
        "rel/app-1.0.1.zip.delta",
        "rel/app-1.0.2.zip.delta",
        "rel/notes.txt",
        "rel/sub/reference.bin",
        "rel/sub/app-1.0.3.zip.delta",
    }


def test_recursive_download_rebuilds_the_tree(
    dg: Cli, moto_bucket: str, tmp_path: Path, dist: Path
) -> None:
    dg("cp", "-r", "dist", f"s3://{moto_bucket}/rel/")

    result = dg("cp", "--recursive", f"s3://{moto_bucket}/rel", "restored")

    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == (f"download: s3://{moto_bucket}/rel/app-1.0.0.zip to restored/app-1.0.0.zip")
    assert lines[-1].startswith("Downloaded 5 files: ")
    for original in dist.rglob("*"):
        if original.is_file():
            copy = tmp_path / "restored" / original.relative_to(dist)
            assert copy.read_bytes() == original.read_bytes()


def test_recursive_s3_to_s3(dg: Cli, moto_bucket: str, moto_admin: Any, dist: Path) -> None:
    dg("cp", "-r", "dist", f"s3://{moto_bucket}/a/")

    result = dg("cp", "-r", f"s3://{moto_bucket}/a/", f"s3://{moto_bucket}/b/")

    assert result.exit_code == 0, result.stderr
    assert sum(line.startswith("copy: ") for line in result.stdout.splitlines()) == 5
    keys = raw_keys(moto_admin, moto_bucket)
    assert "b/sub/app-1.0.3.zip.delta" in keys
    assert "b/notes.txt" in keys


def test_recursive_prefix_is_a_directory_not_a_string_prefix(
    dg: Cli, moto_bucket: str, moto_admin: Any, tmp_path: Path
) -> None:
    moto_admin.put_object(Bucket=moto_bucket, Key="dir/a.txt", Body=b"a")
    moto_admin.put_object(Bucket=moto_bucket, Key="dir2/b.txt", Body=b"b")

    result = dg("cp", "-r", f"s3://{moto_bucket}/dir", "out")

    assert result.exit_code == 0, result.stderr
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["a.txt"]


def test_filters_apply_in_order_last_match_wins(
    dg: Cli, moto_bucket: str, moto_admin: Any, dist: Path
) -> None:
    result = dg(
        "cp",
        "-r",
        "dist",
        f"s3://{moto_bucket}/f/",
        "--exclude",
        "*",
        "--include",
        "*.zip",
        "--exclude",
        "sub/*",
    )

    assert result.exit_code == 0, result.stderr
    assert {k.removesuffix(".delta") for k in raw_keys(moto_admin, moto_bucket)} == {
        "f/reference.bin",
        "f/app-1.0.0.zip",
        "f/app-1.0.1.zip",
        "f/app-1.0.2.zip",
    }


def test_dryrun_prints_and_writes_nothing(
    dg: Cli, moto_bucket: str, moto_admin: Any, dist: Path
) -> None:
    result = dg("cp", "-r", "--dryrun", "dist", f"s3://{moto_bucket}/d/")

    assert result.exit_code == 0
    assert len(result.stdout.splitlines()) == 5
    assert all(line.startswith("(dryrun) upload: ") for line in result.stdout.splitlines())
    assert raw_keys(moto_admin, moto_bucket) == {}


def test_no_delta_stores_files_whole(
    dg: Cli, moto_bucket: str, moto_admin: Any, release_zips: list[Path]
) -> None:
    result = dg("--no-delta", "cp", str(release_zips[0]), f"s3://{moto_bucket}/app/")
    after = dg("cp", str(release_zips[1]), f"s3://{moto_bucket}/app/", "--no-delta")

    assert result.exit_code == after.exit_code == 0
    assert "(direct, " in result.stdout
    assert "(direct, " in after.stdout
    assert set(raw_keys(moto_admin, moto_bucket)) == {"app/app-1.0.0.zip", "app/app-1.0.1.zip"}


def test_max_ratio_zero_refuses_every_delta_after_the_reference(
    dg: Cli, moto_bucket: str, moto_admin: Any, release_zips: list[Path]
) -> None:
    dg("cp", str(release_zips[0]), f"s3://{moto_bucket}/app/")

    result = dg("cp", "--max-ratio", "0", str(release_zips[1]), f"s3://{moto_bucket}/app/")

    assert result.exit_code == 0, result.stderr
    assert "(direct, " in result.stdout
    assert "app/app-1.0.1.zip" in raw_keys(moto_admin, moto_bucket)


def test_max_ratio_out_of_range_is_a_usage_error(dg: Cli, release_zips: list[Path]) -> None:
    result = dg("cp", "--max-ratio", "1.5", str(release_zips[0]), "s3://whatever/")

    assert result.exit_code == 2
    assert result.stderr.startswith("deltaglider: error: Invalid value for '--max-ratio'")


def test_stdin_to_s3_and_s3_to_stdout(dg: Cli, moto_bucket: str, moto_admin: Any) -> None:
    data = b"streamed bytes\n" * 1000

    up = dg("cp", "-", f"s3://{moto_bucket}/streams/data.bin", input=data)
    down = dg("cp", f"s3://{moto_bucket}/streams/data.bin", "-")

    assert up.exit_code == 0, up.stderr
    assert up.stdout == f"upload: - to s3://{moto_bucket}/streams/data.bin (direct, 14.6 KiB)\n"
    assert down.exit_code == 0, down.stderr
    assert down.stdout_bytes == data


def test_json_output(dg: Cli, moto_bucket: str, dist: Path) -> None:
    result = dg("cp", "-r", "dist", f"s3://{moto_bucket}/j/", "--json")

    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["command"] == "cp"
    assert document["summary"]["succeeded"] == 5
    assert document["summary"]["failed"] == 0
    first = document["results"][0]
    assert first["action"] == "upload"
    assert first["destination"] == f"s3://{moto_bucket}/j/app-1.0.0.zip"
    assert first["stored_as"] == "reference"
    assert first["ok"] is True
    assert {r["stored_as"] for r in document["results"]} == {"reference", "delta", "direct"}


def test_quiet_prints_nothing_on_success(dg: Cli, moto_bucket: str, dist: Path) -> None:
    result = dg("--quiet", "cp", "-r", "dist", f"s3://{moto_bucket}/q/")

    assert result.exit_code == 0
    assert result.stdout == result.stderr == ""


def test_global_options_are_accepted_after_the_command(
    dg: Cli, moto_bucket: str, release_zips: list[Path]
) -> None:
    result = dg(
        "cp",
        str(release_zips[0]),
        f"s3://{moto_bucket}/",
        "--endpoint-url",
        dg.s3.endpoint_url,
        "--region",
        dg.s3.region,
        "-j",
        "2",
        endpoint=False,
    )

    assert result.exit_code == 0, result.stderr


def test_some_items_failing_exits_1_and_names_each(
    dg: Cli, moto_bucket: str, moto_admin: Any, dist: Path
) -> None:
    (dist / "reference.bin").write_bytes(b"a user file with a reserved name")

    result = dg("cp", "-r", "dist", f"s3://{moto_bucket}/p/")

    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"upload failed: dist/reference.bin to s3://{moto_bucket}/p/reference.bin: "
        + result.stderr.splitlines()[0].split("reference.bin: ", 1)[1],
        "deltaglider: error: 1 of 6 files failed",
    ]
    assert "reserved" in result.stderr
    assert len(result.stdout.splitlines()) == 6  # 5 uploads and the summary
    assert "p/notes.txt" in raw_keys(moto_admin, moto_bucket)


def test_release_workflow_on_both_servers(
    dg_any: Cli, bucket: str, s3_admin: Any, tmp_path: Path, dist: Path
) -> None:
    url = f"s3://{bucket}/releases/"

    upload = dg_any("cp", "-r", "dist", url)
    listing = dg_any("ls", "-r", url)
    mirror = dg_any("sync", url, "mirror")
    again = dg_any("sync", "dist", url)
    removed = dg_any("rm", "-r", url)

    assert upload.exit_code == 0, upload.stderr
    assert upload.stdout.splitlines()[-1].startswith("Stored 5 files: ")
    assert len(listing.stdout.splitlines()) == 5
    assert mirror.exit_code == 0, mirror.stderr
    for original in (p for p in dist.rglob("*") if p.is_file()):
        assert (tmp_path / "mirror" / original.relative_to(dist)).read_bytes() == (
            original.read_bytes()
        )
    assert again.stdout == ""
    assert removed.exit_code == 0, removed.stderr
    assert raw_keys(s3_admin, bucket) == {}


def test_local_problems_are_local_errors_not_integrity_failures(
    dg: Cli, moto_bucket: str, release_zips: list[Path], tmp_path: Path
) -> None:
    # A legal 244-byte name downloads; a name too long for the file system is a local
    # error naming the path (exit 1), never "corrupted" (exit 5), for deltas and direct.
    for path in release_zips[:2]:
        assert dg("cp", str(path), f"s3://{moto_bucket}/d/").exit_code == 0
    (tmp_path / "notes.txt").write_text("notes")
    assert dg("cp", "notes.txt", f"s3://{moto_bucket}/d/").exit_code == 0
    for name in (release_zips[1].name, "notes.txt"):
        legal = dg("cp", f"s3://{moto_bucket}/d/{name}", "l" * 240 + ".zip")
        assert legal.exit_code == 0, legal.stderr
        too_long = dg("cp", f"s3://{moto_bucket}/d/{name}", "n" * 300)
        assert too_long.exit_code == 1, too_long.stderr
        assert "n" * 300 in too_long.stderr
        assert "corrupt" not in too_long.stderr
    assert dg("verify", f"s3://{moto_bucket}/d/{release_zips[1].name}").exit_code == 0


@pytest.mark.parametrize("command", ["cp-local", "cp-s3", "sync-local", "sync-s3"])
def test_copies_from_a_plain_bucket_report_what_they_cannot_carry(
    dg_any: Cli, bucket: str, s3_admin: Any, tmp_path: Path, command: str
) -> None:
    """A foreign reference.bin, a directory marker and a .delta shadowed by its direct form
    are never dropped silently: each is a skip line with its reason."""
    plain = {
        "p/a.txt": b"a",
        "p/x.zip": b"the file",
        "p/x.zip.delta": b"a user's own patch",
        "p/reference.bin": b"a user's file",
        "p/sub/b.txt": b"b",
        # Last: SeaweedFS 4.48 stalls 60 s on a PUT that follows a marker's creation.
        "p/docs/": b"",
    }
    for key, body in plain.items():
        s3_admin.put_object(Bucket=bucket, Key=key, Body=body)
    verb, _, where = command.partition("-")
    target = str(tmp_path / "out") if where == "local" else f"s3://{bucket}/copy/"
    args = ["cp", "-r"] if verb == "cp" else ["sync"]
    result = dg_any(*args, f"s3://{bucket}/p/", target)
    assert result.exit_code == 0, result.output
    skips = sorted(line for line in result.stdout.splitlines() if line.startswith("skip: "))
    assert [line.split(" (")[0] for line in skips] == [
        f"skip: s3://{bucket}/p/docs/",
        f"skip: s3://{bucket}/p/reference.bin",
        f"skip: s3://{bucket}/p/x.zip.delta",
    ]
    assert "directory marker" in skips[0]
    assert "reserved" in skips[1]
    assert "also exists as p/x.zip" in skips[2]
    if where == "local":
        out = tmp_path / "out"
        copied = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
        assert copied == ["a.txt", "sub/b.txt", "x.zip"]
        assert (out / "x.zip").read_bytes() == b"the file"
    else:
        listing = dg_any("ls", "-r", "--json", f"s3://{bucket}/copy/")
        listed = sorted(o["Key"] for o in json.loads(listing.stdout)["Objects"])
        assert listed == ["copy/a.txt", "copy/sub/b.txt", "copy/x.zip"]


@pytest.mark.parametrize("source", ["s3", "local"])
def test_recursive_copy_from_a_missing_source_is_not_found(
    dg: Cli, moto_bucket: str, tmp_path: Path, source: str
) -> None:
    """Like rm, ls and sync: a misspelled source directory is exit 3, never "0 files"."""
    if source == "s3":
        result = dg("cp", "-r", f"s3://{moto_bucket}/no-such-dir/", str(tmp_path / "out"))
    else:
        result = dg("cp", "-r", str(tmp_path / "no-such-dir"), f"s3://{moto_bucket}/p/")
    assert result.exit_code == 3, result.output
    assert "does not exist" in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("option", "rebased"),
    [(["--rebase-ratio", "0.25"], True), ([], True), (["--rebase-ratio", "off"], False)],
)
def test_rebase_ratio_option(
    dg: Cli, moto_bucket: str, moto_admin: Any, tmp_path: Path, option: list[str], rebased: bool
) -> None:
    from tests.compat.test_upstream_reads_ours import drifting_series

    for n, data in enumerate(drifting_series(5)):
        path = tmp_path / f"app-{n}.zip"
        path.write_bytes(data)
        result = dg("cp", *option, str(path), f"s3://{moto_bucket}/rel/")
        assert result.exit_code == 0, result.output
    keys = raw_keys(moto_admin, moto_bucket)
    assert any("/.deltaglider/refs/" in k for k in keys) is rebased


def test_rebase_ratio_option_refuses_nonsense(dg: Cli, moto_bucket: str, tmp_path: Path) -> None:
    path = tmp_path / "a.zip"
    path.write_bytes(b"PK" + b"x" * 100)
    result = dg("cp", "--rebase-ratio", "2", str(path), f"s3://{moto_bucket}/rel/")
    assert result.exit_code == 2
    assert "not in [0, 1]" in result.output
    assert raw_keys_empty(dg, moto_bucket)


def raw_keys_empty(dg: Cli, bucket: str) -> bool:
    client = dg.s3.boto3_client()
    try:
        count: int = client.list_objects_v2(Bucket=bucket).get("KeyCount", 0)
        return count == 0
    finally:
        client.close()
