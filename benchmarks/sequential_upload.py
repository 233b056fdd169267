"""Sequential ``upload()`` through the blocking client of a series of ~15 MB archives.

Prints files per second and MiB per second. The server is
SeaweedFS on 127.0.0.1 (its own process) unless AWS_ENDPOINT_URL is set.

    PYTHONPATH=. .venv/bin/python benchmarks/sequential_upload.py [--versions 10]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from _common import MIB, machine

from deltaglider import create_client
from deltaglider_async.testing import SeaweedServer
from tests.archives import make_zip_versions


def bench(versions: list[Path]) -> None:
    """Upload every version in order with one blocking client and print the figures."""
    with create_client() as client:
        client.create_bucket(Bucket="bench-sequential")
        start = time.perf_counter()
        stored = 0
        for path in versions:
            summary = client.upload(path, "s3://bench-sequential/releases/app/")
            stored += summary.stored_size
        elapsed = time.perf_counter() - start
    total = sum(p.stat().st_size for p in versions)
    print(f"machine: {machine()}")
    print(
        f"{len(versions)} archives of ~{total / len(versions) / MIB:.1f} MiB "
        f"({total / MIB:.0f} MiB) stored in {stored / MIB:.2f} MiB"
    )
    print(
        f"sequential upload(): {elapsed:.2f} s, {len(versions) / elapsed:.2f} files/s, "
        f"{total / MIB / elapsed:.1f} MiB/s"
    )


def main() -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--versions", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dg-bench-seq-") as tmp:
        work = Path(tmp)
        (work / "in").mkdir()
        versions = make_zip_versions(work / "in", args.versions, size=15 * MIB)
        if os.environ.get("AWS_ENDPOINT_URL"):
            bench(versions)
            return
        with SeaweedServer(data_dir=work / "s3") as s3:
            os.environ.update(s3.env())
            bench(versions)


if __name__ == "__main__":
    main()
