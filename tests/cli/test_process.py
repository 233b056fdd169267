"""The real program: ``python -m deltaglider``, the console script, terminals and pipes."""

from __future__ import annotations

import os
import pty
import re
import select
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

import deltaglider.cli
from deltaglider_async import __version__
from deltaglider_async.testing import LocalS3

from .conftest import raw_keys

ROOT = Path(__file__).resolve().parents[2]
ANSI = re.compile(rb"\x1b\[")
#: What rich draws a progress bar with: the bar's segments, or a percentage.
BAR = re.compile(rb"\xe2\x94\x81|\xe2\x95\xba|\d+%")


def _env(s3: LocalS3) -> dict[str, str]:
    """The environment a user would set: credentials and endpoint, no test leftovers."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "DG_"))}
    env.update(s3.env())
    env["AWS_ENDPOINT_URL"] = s3.endpoint_url
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["TERM"] = "xterm-256color"
    env.pop("NO_COLOR", None)
    return env


def _program() -> list[str]:
    return [sys.executable, "-m", "deltaglider"]


def _in_terminal(
    argv: Sequence[str], env: dict[str, str], cwd: Path, answer: bytes = b""
) -> tuple[int, bytes]:
    """Run ``argv`` with a pseudo-terminal as stdin, stdout and stderr; what it showed.

    Uses util-linux ``script`` when installed, else Python's :mod:`pty`.
    """
    script = shutil.which("script")
    if script is not None:
        command = " ".join(_quote(a) for a in argv)
        done = subprocess.run(
            [script, "-qec", command, "/dev/null"],
            env=env,
            cwd=cwd,
            input=answer,
            capture_output=True,
            timeout=120,
        )
        return done.returncode, done.stdout
    controller, terminal = pty.openpty()
    with subprocess.Popen(
        list(argv), env=env, cwd=cwd, stdin=terminal, stdout=terminal, stderr=terminal
    ) as process:
        os.close(terminal)
        if answer:
            os.write(controller, answer)
        shown = b""
        while True:
            ready, _, _ = select.select([controller], [], [], 120)
            if not ready:
                process.kill()
                break
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # the terminal closed: the program exited
                break
            if not chunk:
                break
            shown += chunk
        os.close(controller)
    return process.wait(timeout=30), shown


def _quote(text: str) -> str:
    import shlex

    return shlex.quote(text)


@pytest.fixture
def env(moto_s3: LocalS3) -> dict[str, str]:
    """The subprocess environment for moto."""
    return _env(moto_s3)


def test_python_m_deltaglider_uploads_and_lists(
    env: dict[str, str], moto_bucket: str, moto_admin: Any, tmp_path: Path, dist: Path
) -> None:
    upload = subprocess.run(
        [*_program(), "cp", "-r", "dist", f"s3://{moto_bucket}/rel/"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        timeout=120,
    )
    listing = subprocess.run(
        [*_program(), "ls", "--recursive", f"s3://{moto_bucket}"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        timeout=120,
    )

    assert upload.returncode == 0, upload.stderr
    assert listing.returncode == 0, listing.stderr
    assert len(listing.stdout.splitlines()) == 5
    assert "rel/sub/reference.bin" in raw_keys(moto_admin, moto_bucket)
    # Piped: no progress bar, no colour, no escape codes at all.
    for output in (upload.stdout, upload.stderr, listing.stdout, listing.stderr):
        assert not ANSI.search(output)
        assert b"\xe2\x94\x81" not in output
    assert upload.stderr == b""
    assert upload.stdout.decode().splitlines()[0].startswith("upload: dist/app-1.0.0.zip to ")


def test_console_script(env: dict[str, str], tmp_path: Path) -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"deltaglider": "deltaglider.cli:main"}
    assert deltaglider.cli.main.__module__ == "deltaglider.cli._app"
    installed = Path(sys.executable).parent / "deltaglider"
    if installed.exists():
        argv = [str(installed), "--version"]
    else:
        # What the generated console script runs.
        argv = [
            sys.executable,
            "-c",
            "import sys; from deltaglider.cli import main; sys.exit(main())",
        ]
        argv.append("--version")

    done = subprocess.run(argv, env=env, cwd=tmp_path, capture_output=True, timeout=60)

    assert done.returncode == 0, done.stderr
    assert done.stdout.decode() == f"deltaglider {__version__}\n"


def test_error_from_a_real_process(env: dict[str, str], tmp_path: Path) -> None:
    done = subprocess.run(
        [*_program(), "cp", "nothing.zip", "s3://some-bucket/"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        timeout=60,
    )

    assert done.returncode == 3
    assert done.stdout == b""
    assert done.stderr == b"deltaglider: error: local file 'nothing.zip' does not exist\n"


def test_terminal_run_shows_a_progress_bar(
    env: dict[str, str], moto_bucket: str, moto_admin: Any, tmp_path: Path, dist: Path
) -> None:
    code, shown = _in_terminal(
        [*_program(), "cp", "-r", "dist", f"s3://{moto_bucket}/rel/"], env, tmp_path
    )

    assert code == 0, shown
    assert BAR.search(shown), shown
    assert b"5/5" in shown
    text = ANSI.sub(b"", shown).decode(errors="replace")
    assert f"upload: dist/notes.txt to s3://{moto_bucket}/rel/notes.txt (direct, 14 Bytes)" in text
    assert "Stored 5 files: " in text
    assert "rel/sub/app-1.0.3.zip.delta" in raw_keys(moto_admin, moto_bucket)


@pytest.mark.parametrize(("answer", "code"), [(b"y\n", 0), (b"n\n", 1)])
def test_migrate_asks_on_a_terminal(
    env: dict[str, str],
    moto_bucket: str,
    moto_admin: Any,
    tmp_path: Path,
    answer: bytes,
    code: int,
) -> None:
    moto_admin.put_object(Bucket=moto_bucket, Key="src/a.txt", Body=b"a")

    status, shown = _in_terminal(
        [*_program(), "migrate", f"s3://{moto_bucket}/src/", f"s3://{moto_bucket}/dst/"],
        env,
        tmp_path,
        answer,
    )

    assert status == code, shown
    question = f"Migrate every object of s3://{moto_bucket}/src/ to s3://{moto_bucket}/dst/?"
    assert f"{question} [y/N]".encode() in shown
    assert ("dst/a.txt" in raw_keys(moto_admin, moto_bucket)) is (code == 0)
