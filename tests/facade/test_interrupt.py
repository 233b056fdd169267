"""Ctrl-C during a blocking call cancels the operation and leaves nothing behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="needs /proc"),
]

SCRIPT = """
import os, signal, sys
from pathlib import Path
from deltaglider import create_client

# A program run from a terminal has Python's Ctrl-C handler; a child of a process that
# ignores SIGINT (as a test worker may, after other tests) would inherit the ignore.
signal.signal(signal.SIGINT, signal.default_int_handler)

bucket, source, mode = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
MIB = 1024 * 1024
client = create_client(multipart_threshold=8 * MIB, multipart_chunksize=5 * MIB)
if mode == "xdelta3":
    # Random bytes do not delta-compress: xdelta3 works for tens of seconds on them.
    (source / "v1.zip").write_bytes(os.urandom(24 * MIB))
    client.upload(source / "v1.zip", f"s3://{bucket}/big/")
    (source / "v2.zip").write_bytes(os.urandom(24 * MIB))
    print("started", flush=True)
    client.upload(source / "v2.zip", f"s3://{bucket}/big/")
else:
    # Not delta-eligible: stored directly, as a multipart upload of 5 MiB parts.
    (source / "big.bin").write_bytes(os.urandom(200 * MIB))
    print("started", flush=True)
    client.put_object(Bucket=bucket, Key="big/big.bin", Body=source / "big.bin")
print("finished", flush=True)
"""


def _processes_mentioning(text: str) -> list[str]:
    """Command lines of live processes whose arguments mention ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue  # gone meanwhile
        if text in cmdline:
            found.append(cmdline)
    return found


def _wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.mark.parametrize("mode", ["xdelta3", "multipart"])
def test_ctrl_c_cancels_the_call_and_cleans_up(
    mode: str,
    write_script: Callable[[str], Path],
    script_env: dict[str, str],
    moto_bucket: str,
    moto_admin: Any,
    tmp_path: Path,
) -> None:
    work_tmp = tmp_path / "tmp"  # the client's temp files go here (TMPDIR)
    source = tmp_path / "source"
    work_tmp.mkdir()
    source.mkdir()
    script = write_script(SCRIPT)
    process = subprocess.Popen(
        [sys.executable, "-W", "always", str(script), moto_bucket, str(source), mode],
        env={**script_env, "TMPDIR": str(work_tmp)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == "started\n"
        if mode == "xdelta3":
            _wait_for(
                lambda: any("xdelta3" in cmd for cmd in _processes_mentioning(str(work_tmp))),
                timeout=60,
                what="xdelta3 to start encoding",
            )
        else:
            _wait_for(
                lambda: bool(moto_admin.list_multipart_uploads(Bucket=moto_bucket).get("Uploads")),
                timeout=60,
                what="the multipart upload to start",
            )
        time.sleep(0.3)
        interrupted = time.monotonic()
        os.kill(process.pid, signal.SIGINT)
        stdout, stderr = process.communicate(timeout=30)
        elapsed = time.monotonic() - interrupted
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()

    assert process.returncode != 0
    assert "KeyboardInterrupt" in stderr, stderr
    assert "finished" not in stdout
    assert elapsed < 10.0, f"exited {elapsed:.1f} s after SIGINT"
    # No child left running, no temp file left, no multipart upload left open.
    assert _processes_mentioning(str(work_tmp)) == []
    assert sorted(p.name for p in work_tmp.rglob("*")) == []
    assert moto_admin.list_multipart_uploads(Bucket=moto_bucket).get("Uploads", []) == []
    # Only a KeyboardInterrupt traceback: no "Unclosed ..." and no warning.
    assert "Unclosed" not in stderr, stderr
    assert "Warning" not in stderr, stderr
    listed = moto_admin.list_objects_v2(Bucket=moto_bucket, Prefix="big/").get("Contents", [])
    assert "big/big.bin" not in {item["Key"] for item in listed}
    assert "big/v2.zip.delta" not in {item["Key"] for item in listed}
    assert "big/v2.zip" not in {item["Key"] for item in listed}
