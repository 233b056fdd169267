"""upload_many of successive ~15 MB release zips at concurrency 1, 2, 4 and 8.

Starts a local S3 server (SeaweedFS by default, or moto), puts a latency proxy (a child
process adding a fixed delay to every request, 20 ms by default) in front of it, and
uploads the same series of archives into one deltaspace of a fresh bucket at each
concurrency. Prints files/s, and the ceiling set by xdelta3 alone: the CPU time its
encodes took (measured from the finished children) spread over every core of the machine;
and the CPU time of this process (hashing, the encrypted reference cache, HTTP), which
shares those cores with xdelta3, the server and the proxy.

    PYTHONPATH=. .venv/bin/python benchmarks/bulk_concurrency.py \
        [--server seaweedfs|moto] [--versions 12] [--size-mib 15] [--delay-ms 20] \
        [--concurrency 1 2 4 8] [--level 9] [--secondary djw]
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
from _common import MIB, machine

from deltaglider_async import AsyncDeltaGliderClient
from deltaglider_async.testing import LocalS3, start_local_s3
from deltaglider_async.testing_proxy import ProxyProcess
from tests.archives import make_zip_versions


def cpu_seconds(who: int) -> float:
    """CPU seconds (user + system) of this process or of its finished children (xdelta3)."""
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


async def upload(
    s3: LocalS3, bucket: str, files: list[Path], concurrency: int, overrides: dict[str, Any]
) -> tuple[float, float, float]:
    """(wall s, xdelta3 CPU s, this process's CPU s) of uploading ``files`` into a new bucket."""
    config = s3.config(max_concurrency=concurrency, **overrides)
    async with AsyncDeltaGliderClient(config) as client:
        await client.create_bucket(Bucket=bucket)
        xdelta3 = cpu_seconds(resource.RUSAGE_CHILDREN)
        own = cpu_seconds(resource.RUSAGE_SELF)
        start = time.perf_counter()
        results = await client.upload_many(files, f"s3://{bucket}/releases/app/")
        seconds = time.perf_counter() - start
        xdelta3 = cpu_seconds(resource.RUSAGE_CHILDREN) - xdelta3
        own = cpu_seconds(resource.RUSAGE_SELF) - own
    failed = [r for r in results if not r.ok]
    if failed:
        raise SystemExit(f"{len(failed)} uploads failed, first: {failed[0].error}")
    return seconds, xdelta3, own


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--server", default="seaweedfs", choices=["seaweedfs", "moto"])
    parser.add_argument("--versions", type=int, default=12)
    parser.add_argument("--size-mib", type=float, default=15.0)
    parser.add_argument("--delay-ms", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--level", type=int, default=None)
    parser.add_argument("--secondary", default=None)
    args = parser.parse_args()
    overrides = {
        k: v
        for k, v in {"xdelta_level": args.level, "xdelta_secondary": args.secondary}.items()
        if v is not None
    }
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="dg-bench-concurrency-") as tmp:
        files = make_zip_versions(Path(tmp), args.versions, size=int(args.size_mib * MIB))
        total = sum(p.stat().st_size for p in files)
        settings = overrides or "default"
        print(f"machine: {machine()}; server: {args.server}; xdelta3 settings: {settings}")
        print(f"{len(files)} successive zips, {total / len(files) / MIB:.1f} MiB each on average")
        with (
            start_local_s3(args.server) as s3,
            ProxyProcess(s3.endpoint_url, delay=args.delay_ms / 1000) as proxy,
        ):
            print(f"every request delayed {args.delay_ms:g} ms by a proxy process")
            print(
                f"{'concurrency':>11} {'seconds':>8} {'files/s':>8} {'xdelta3 cpu s':>14} "
                f"{'xdelta3 limit files/s':>22} {'process cpu s':>14}"
            )
            for n, concurrency in enumerate(args.concurrency):
                seconds, xdelta3, own = anyio.run(
                    upload, proxy.wrap(s3), f"bench-conc-{n}", files, concurrency, overrides
                )
                limit = cores * len(files) / xdelta3 if xdelta3 else float("inf")
                print(
                    f"{concurrency:>11} {seconds:8.2f} {len(files) / seconds:8.2f} "
                    f"{xdelta3:14.2f} {limit:22.2f} {own:14.2f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
