"""One error class per local problem, on every entry point that takes a local path.

Bad sources (missing, a directory, unreadable, a name longer than NAME_MAX) and bad
destinations (missing or unwritable parent, a name too long, a path through a file, and a
legal 244-byte name) go to every public method of both clients that reads or writes a
local file. Permissions must apply, so the driver script runs without root's powers: as
root, with the capabilities that bypass file permissions dropped (``setpriv``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from deltaglider_async.testing import LocalS3

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = "tests.integration.local_paths_script"

SOURCE_EXPECTED = {
    "missing": "NotFoundError",
    "directory": "InvalidArgumentError",
    "unreadable": "AccessDeniedError",
    "too-long": "LocalFileError",
}
DEST_EXPECTED = {
    "missing-parent": "NotFoundError",
    "unwritable-parent": "AccessDeniedError",
    "too-long": "LocalFileError",
    "through-a-file": "InvalidArgumentError",
    "legal-244-bytes": "ok",
}
# Bulk downloads create their destination directories and name files after the object.
BULK_DEST_EXPECTED = {
    "download_many": {**DEST_EXPECTED, "missing-parent": "ok"},
    "download_batch": {**DEST_EXPECTED, "missing-parent": "ok", "too-long": "ok"},
}


def unprivileged_command() -> list[str]:
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: permissions cannot be made to apply")
    caps = "-dac_override,-dac_read_search,-fowner"
    return ["setpriv", "--bounding-set", caps, "--inh-caps", caps]


def test_every_entry_point_reports_local_problems_alike(s3_server: LocalS3, bucket: str) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        **s3_server.env(),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    done = subprocess.run(
        [*unprivileged_command(), sys.executable, "-m", SCRIPT, bucket],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    results: dict[str, str] = json.loads(done.stdout.strip().splitlines()[-1])
    expected: dict[str, str] = {}
    for name in ("upload", "put_object", "upload_many", "upload_batch", "service.put"):
        for case, error in SOURCE_EXPECTED.items():
            expected[f"{name} {case}"] = error
    for case, error in SOURCE_EXPECTED.items():
        expected[f"blocking.upload {case}"] = error
    for form in ("delta", "direct"):
        for name in ("download", "service.get", "download_many", "download_batch"):
            for case, error in BULK_DEST_EXPECTED.get(name, DEST_EXPECTED).items():
                expected[f"{name} {form} {case}"] = error
    for case, error in DEST_EXPECTED.items():
        expected[f"blocking.download {case}"] = error
    assert results == expected
