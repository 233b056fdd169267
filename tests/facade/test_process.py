"""Process life: exit without close(), and os.fork() with a client in use."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from .conftest import RunScript

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX process semantics")


def test_exit_without_close_is_prompt_and_quiet(run_script: RunScript, moto_bucket: str) -> None:
    started = time.monotonic()
    result = run_script(
        """
        import sys
        from deltaglider import create_client

        bucket = sys.argv[1]
        client = create_client()
        client.put_object(Bucket=bucket, Key="exit/a.zip", Body=b"PK\\x03\\x04" + b"x" * 50_000)
        with client.get_object(Bucket=bucket, Key="exit/a.zip")["Body"] as body:
            assert body.read()[:4] == b"PK\\x03\\x04"
        client.head_object(Bucket=bucket, Key="exit/a.zip")
        # A body left open, and no close(): the interpreter exits with the client open.
        client.get_object(Bucket=bucket, Key="exit/a.zip")["Body"].read(10)
        print("done", flush=True)
        """,
        moto_bucket,
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert result.stdout == "done\n"
    assert result.stderr == ""  # no "Unclosed client session", ResourceWarning, traceback
    assert elapsed < 5.0


def test_client_survives_fork(run_script: RunScript, moto_bucket: str, tmp_path: Path) -> None:
    result = run_script(
        """
        import os, sys, warnings
        from pathlib import Path
        from deltaglider import create_client

        warnings.filterwarnings("ignore", "This process .* is multi-threaded", DeprecationWarning)
        bucket, work = sys.argv[1], Path(sys.argv[2])
        zip_v1 = b"PK\\x03\\x04" + os.urandom(200_000)
        zip_v2 = zip_v1[:100_000] + b"changed" + zip_v1[100_000:]
        client = create_client()
        client.put_object(Bucket=bucket, Key="fork/v1.zip", Body=zip_v1)
        assert client.head_object(Bucket=bucket, Key="fork/v1.zip")["ContentLength"] == len(zip_v1)
        with client.get_object(Bucket=bucket, Key="fork/v1.zip")["Body"] as body:
            assert body.read() == zip_v1

        opened = client.get_object(Bucket=bucket, Key="fork/v1.zip")["Body"]
        pid = os.fork()
        if pid == 0:
            try:
                opened.read()
            except Exception as exc:  # the parent's stream is not usable in the child
                assert type(exc).__name__ == "ClientClosedError", exc
            else:
                raise AssertionError("a body from before fork was readable in the child")
            (work / "v2.zip").write_bytes(zip_v2)
            summary = client.upload(work / "v2.zip", f"s3://{bucket}/fork/")
            assert summary.is_delta and summary.action == "create_delta", summary
            client.download(f"s3://{bucket}/fork/v2.zip", work / "child-v2.zip")
            assert (work / "child-v2.zip").read_bytes() == zip_v2
            with client.get_object(Bucket=bucket, Key="fork/v1.zip")["Body"] as body:
                assert body.read() == zip_v1
            print("child ok", flush=True)
            sys.exit(0)  # a normal exit: atexit hooks run in the child too

        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert opened.read() == zip_v1  # the parent's stream is still fine
        opened.close()
        # The parent's loop, S3 client and work directories are untouched by the child.
        with client.get_object(Bucket=bucket, Key="fork/v2.zip")["Body"] as body:
            assert body.read() == zip_v2
        client.download(f"s3://{bucket}/fork/v1.zip", work / "parent-v1.zip")
        assert (work / "parent-v1.zip").read_bytes() == zip_v1
        client.close()
        print("parent ok", flush=True)
        """,
        moto_bucket,
        str(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["child ok", "parent ok"]
    assert result.stderr == ""
