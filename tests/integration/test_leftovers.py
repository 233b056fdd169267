"""What a crash leaves behind is cleaned up.

* Incomplete multipart uploads: ``cleanup`` (client method and CLI) aborts those older
  than a threshold under a prefix and keeps younger ones, which may be a live writer's.
* Private temp directories: a process killed mid-upload (SIGKILL, SIGTERM) leaves its
  staged copies; the next client of the same user removes them. A normal exit leaves
  nothing, whether the client was closed or not.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from deltaglider_async import AsyncDeltaGliderClient, InvalidArgumentError
from deltaglider_async._scratch import OWNER_FILE
from deltaglider_async.testing import LocalS3
from deltaglider_async.testing_proxy import FaultProxy, ProxyRequest

ROOT = Path(__file__).resolve().parents[2]
MIB = 1024 * 1024


def open_uploads(admin: Any, bucket: str) -> list[tuple[str, str]]:
    listed = admin.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    return sorted((u["Key"], u["UploadId"]) for u in listed)


def child_env(s3_endpoint: str, s3: LocalS3, tmpdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "DG_"))}
    env.update(s3.env())
    env["AWS_ENDPOINT_URL"] = s3_endpoint
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["TMPDIR"] = str(tmpdir)
    return env


def scratch_dirs(tmpdir: Path) -> list[Path]:
    return sorted(p for p in tmpdir.glob("deltaglider-*") if (p / OWNER_FILE).exists())


async def test_cleanup_aborts_old_uploads_under_the_prefix_only(
    s3_server: LocalS3, bucket: str, s3_admin: Any
) -> None:
    inside = s3_admin.create_multipart_upload(Bucket=bucket, Key="rel/app.zip.delta")
    outside = s3_admin.create_multipart_upload(Bucket=bucket, Key="other/app.zip")
    async with AsyncDeltaGliderClient(s3_server.config()) as client:
        if s3_server.name != "moto":  # moto reports every upload initiated in 2010
            young = await client.cleanup(f"s3://{bucket}/rel/", older_than="1h")
            assert young.aborted == []
            assert [u.key for u in young.kept] == ["rel/app.zip.delta"]
        ancient = await client.cleanup(f"s3://{bucket}/rel/", older_than=timedelta.max)
        assert ancient.aborted == []
        assert len(ancient.kept) == 1
        dry = await client.cleanup(f"s3://{bucket}/rel/", older_than=0, dry_run=True)
        assert [u.upload_id for u in dry.aborted] == [inside["UploadId"]]
        assert len(open_uploads(s3_admin, bucket)) == 2
        done = await client.cleanup(f"s3://{bucket}/rel/", older_than=timedelta(0))
        assert done.ok
        assert [(u.key, u.upload_id) for u in done.aborted] == [
            ("rel/app.zip.delta", inside["UploadId"])
        ]
        assert done.aborted[0].initiated is not None
    assert open_uploads(s3_admin, bucket) == [("other/app.zip", outside["UploadId"])]


@pytest.mark.parametrize("bad", ["-1h", "soon", "1y", float("nan"), -5, True, 1e20, "99999999999d"])
async def test_cleanup_refuses_a_bad_age_and_touches_nothing(
    s3_server: LocalS3, bucket: str, s3_admin: Any, bad: object
) -> None:
    s3_admin.create_multipart_upload(Bucket=bucket, Key="k")
    async with AsyncDeltaGliderClient(s3_server.config()) as client:
        with pytest.raises(InvalidArgumentError, match="older_than"):
            await client.cleanup(f"s3://{bucket}/", older_than=bad)  # type: ignore[arg-type]
    assert len(open_uploads(s3_admin, bucket)) == 1


WRITER = """
import asyncio, sys
from pathlib import Path
from deltaglider_async import create_async_client

async def main() -> None:
    async with create_async_client(
        multipart_threshold=5 * 2**20, multipart_chunksize=5 * 2**20
    ) as client:
        await client.upload(Path(sys.argv[1]), sys.argv[2])

asyncio.run(main())
"""


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "sigterm"])
def test_a_killed_upload_is_cleaned_up_by_cleanup_and_the_next_client(
    s3_server: LocalS3, bucket: str, s3_admin: Any, tmp_path: Path, sig: signal.Signals
) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(24 * MIB))
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()

    def slow_parts(_: int, request: ProxyRequest) -> float:
        return 3.0 if "partNumber=" in request.target else 0.0

    with FaultProxy(s3_server.endpoint_url, seed=1) as proxy:
        proxy.configure(extra_delay=slow_parts)
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(big), f"s3://{bucket}/rel/"],
            env=child_env(proxy.endpoint_url, s3_server, tmpdir),
            stderr=subprocess.PIPE,
        )
        try:
            deadline = time.monotonic() + 60
            while not open_uploads(s3_admin, bucket):
                assert writer.poll() is None, writer.stderr.read() if writer.stderr else ""
                assert time.monotonic() < deadline, "the writer never started its upload"
                time.sleep(0.05)
            writer.send_signal(sig)
            writer.wait(timeout=30)
        finally:
            if writer.poll() is None:
                writer.kill()
                writer.wait()
            if writer.stderr is not None:
                writer.stderr.close()
    assert writer.returncode == -sig
    # What the crash left: an open upload, and the staged plaintext copy on disk.
    assert len(open_uploads(s3_admin, bucket)) == 1
    left = scratch_dirs(tmpdir)
    assert left, "the killed writer left no temp directory to sweep"
    assert any(p.is_file() and p.name != OWNER_FILE for d in left for p in d.rglob("*"))
    for directory in left:
        owner = json.loads((directory / OWNER_FILE).read_text())
        assert owner["pid"] == writer.pid

    # A new process of the same user: `deltaglider cleanup` aborts the upload, and the
    # client it opens sweeps the dead writer's directories.
    done = subprocess.run(
        [sys.executable, "-m", "deltaglider", "cleanup", f"s3://{bucket}/", "--older-than", "0s"],
        env=child_env(s3_server.endpoint_url, s3_server, tmpdir),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "1 aborted" in done.stdout
    assert open_uploads(s3_admin, bucket) == []
    assert scratch_dirs(tmpdir) == []


def test_a_live_process_directories_are_never_swept(tmp_path: Path) -> None:
    """A directory whose owner still runs stays, whoever sweeps."""
    script = (
        "import sys, time; from pathlib import Path; "
        "from deltaglider_async._scratch import ScratchDir; "
        "d = ScratchDir('live'); p = d.new_path('x'); p.write_bytes(b'data'); "
        "print(p.parent, flush=True); time.sleep(60)"
    )
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    live = subprocess.Popen(
        [sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert live.stdout is not None
        directory = Path(live.stdout.readline().strip())
        sweep = "from deltaglider_async._scratch import sweep_stale; print(len(sweep_stale()))"
        swept = subprocess.run(
            [sys.executable, "-c", sweep], env=env, capture_output=True, text=True, check=True
        )
        assert swept.stdout.strip() == "0"
        assert (directory / OWNER_FILE).exists()
    finally:
        live.kill()
        live.wait()
        if live.stdout is not None:
            live.stdout.close()
    # Now dead: the next sweep removes it; a directory without owner record stays.
    stranger = tmp_path / "deltaglider-unknown-abc"
    stranger.mkdir()
    swept = subprocess.run(
        [sys.executable, "-c", sweep], env=env, capture_output=True, text=True, check=True
    )
    assert swept.stdout.strip() == "1"
    assert not directory.exists()
    assert stranger.exists()


@pytest.mark.parametrize("closed", [True, False], ids=["closed", "never-closed"])
def test_a_normal_exit_leaves_no_temp_directory(
    s3_server: LocalS3, bucket: str, tmp_path: Path, closed: bool
) -> None:
    source = tmp_path / "v1.zip"
    source.write_bytes(os.urandom(300_000))
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    close = "await client.aclose()" if closed else "pass"
    script = f"""
import asyncio
from pathlib import Path
from deltaglider_async import create_async_client

async def main() -> None:
    client = create_async_client()
    await client.upload(Path({str(source)!r}), "s3://{bucket}/rel/")
    await client.download("s3://{bucket}/rel/v1.zip", Path({str(tmp_path / "out.zip")!r}))
    body = (await client.get_object(Bucket="{bucket}", Key="rel/v1.zip"))["Body"]
    await body.read(10)
    {close}

asyncio.run(main())
"""
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=child_env(s3_server.endpoint_url, s3_server, tmpdir),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out.zip").read_bytes() == source.read_bytes()
    assert list(tmpdir.iterdir()) == []
