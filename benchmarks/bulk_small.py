"""upload_many of 1,000 small (~100 KB) similar zips with 20 ms added to every request.

Starts a local S3 server (SeaweedFS by default, or moto), puts a latency proxy (a child
process adding a fixed delay to every request) in front of it, and uploads the same
1,000 archives into one deltaspace of a fresh bucket at each concurrency (the first
becomes the reference, the others deltas). The archives are builds of one project: the
same tree with a build number, one source line and 16 bytes of a binary asset changed.
Prints files/s per concurrency and the number of S3 requests one file costs (counted
without delay through an in-process proxy).

    PYTHONPATH=. .venv/bin/python benchmarks/bulk_small.py \
        [--server seaweedfs|moto] [--files 1000] [--size 100000] [--delay-ms 20] \
        [--concurrency 1 8 32] [--serial-files N]

``--serial-files`` uploads only the first N files at concurrency 1 (default: all).
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

import anyio
from _common import machine

from deltaglider_async import AsyncDeltaGliderClient
from deltaglider_async.testing import LocalS3, start_local_s3
from deltaglider_async.testing_proxy import FaultProxy, ProxyProcess
from tests.archives import archive_bytes, source_tree_files


def make_builds(directory: Path, count: int, size: int) -> list[Path]:
    """``count`` zips of about ``size`` bytes: one tree, each build with small edits."""
    text = size // 4
    # Generated modules deflate to about 43 % of their size (see tests/archives.py).
    tree = source_tree_files(0, files=max(4, int(text / 0.43) // 3000), asset_size=size - text)
    modules = sorted(k for k in tree if k.endswith(".py"))
    paths = []
    for build in range(count):
        rng = random.Random(build)
        files = dict(tree)
        files["VERSION"] = f"1.0.0+build{build}\n".encode()
        module = modules[build % len(modules)]
        lines = files[module].split(b"\n")
        lines[rng.randrange(6, len(lines) - 1)] = f"    value = {rng.getrandbits(64)}".encode()
        files[module] = b"\n".join(lines)
        asset = files["assets/blob.bin"]
        at = rng.randrange(0, len(asset) - 16)
        files["assets/blob.bin"] = asset[:at] + rng.randbytes(16) + asset[at + 16 :]
        path = directory / f"app-1.0.0+build{build:04d}.zip"
        path.write_bytes(archive_bytes(files, "zip"))
        paths.append(path)
    return paths


async def upload(s3: LocalS3, bucket: str, files: list[Path], concurrency: int) -> float:
    """Seconds to upload ``files`` into a new ``bucket``; every file must succeed."""
    async with AsyncDeltaGliderClient(s3.config(max_concurrency=concurrency)) as client:
        await client.create_bucket(Bucket=bucket)
        start = time.perf_counter()
        results = await client.upload_many(files, f"s3://{bucket}/releases/app/")
        seconds = time.perf_counter() - start
    failed = [r for r in results if not r.ok]
    if failed:
        raise SystemExit(f"{len(failed)} uploads failed, first: {failed[0].error}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--server", default="seaweedfs", choices=["seaweedfs", "moto"])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--delay-ms", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--serial-files", type=int, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dg-bench-small-") as tmp:
        start = time.perf_counter()
        files = make_builds(Path(tmp), args.files, args.size)
        mean = sum(p.stat().st_size for p in files) / len(files)
        print(f"machine: {machine()}; server: {args.server}")
        print(
            f"generated {len(files)} zips of {mean / 1000:.0f} kB on average "
            f"in {time.perf_counter() - start:.1f} s"
        )
        with start_local_s3(args.server) as s3:
            with FaultProxy(s3.endpoint_url) as counter:
                anyio.run(upload, counter.wrap(s3), "bench-count", files[:21], 1)
                requests = counter.stats()
            # The first file creates the reference: count the 20 deltas after it.
            print(
                f"S3 requests per file (21 files, no delay): "
                f"{requests.total_requests / 21:.1f} "
                f"({', '.join(f'{m} {n / 21:.1f}' for m, n in sorted(requests.requests.items()))})"
            )
            with ProxyProcess(s3.endpoint_url, delay=args.delay_ms / 1000) as proxy:
                print(f"every request delayed {args.delay_ms:g} ms by a proxy process")
                print(f"{'concurrency':>11} {'files':>6} {'seconds':>8} {'files/s':>8}")
                for n, concurrency in enumerate(args.concurrency):
                    batch = files
                    if concurrency == 1 and args.serial_files:
                        batch = files[: args.serial_files]
                    seconds = anyio.run(
                        upload, proxy.wrap(s3), f"bench-small-{n}", batch, concurrency
                    )
                    print(
                        f"{concurrency:>11} {len(batch):>6} {seconds:8.1f} "
                        f"{len(batch) / seconds:8.1f}",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
