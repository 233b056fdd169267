"""Put then get a 1 GiB file and a second version differing in ~1 %.

Prints the wall time of each step and the peak RSS of this process (target ≤ 200 MiB)
and of the xdelta3 children. The server is SeaweedFS in its own process (so its memory
is not counted), started on 127.0.0.1 unless AWS_ENDPOINT_URL is set.

    PYTHONPATH=. .venv/bin/python benchmarks/big_file.py [--size-mib 1024]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import tempfile
from pathlib import Path

import anyio
from _common import (
    MIB,
    Stopwatch,
    machine,
    peak_children_rss_mib,
    peak_rss_mib,
    write_pseudo_random,
)

from deltaglider_async import DeltaSpace, ObjectKey, create_async_client
from deltaglider_async.testing import SeaweedServer


def make_second_version(first: Path, second: Path, share: float, seed: int) -> None:
    """Copy ``first`` to ``second`` with ``share`` of its bytes rewritten in 64 KiB runs."""
    size = first.stat().st_size
    rng = random.Random(seed)
    run = 64 * 1024
    runs = max(1, int(size * share / run))
    offsets = sorted(rng.randrange(0, size - run) for _ in range(runs))
    with first.open("rb") as src, second.open("wb") as dst:
        while chunk := src.read(MIB):
            dst.write(chunk)
    with second.open("r+b") as dst:
        for offset in offsets:
            dst.seek(offset)
            dst.write(rng.randbytes(run))


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(MIB):
            digest.update(chunk)
    return digest.hexdigest()


async def bench(work: Path, size: int) -> None:
    v1, v2 = work / "big-1.0.tar", work / "big-1.1.tar"
    write_pseudo_random(v1, size, seed=1)
    make_second_version(v1, v2, 0.01, seed=2)
    baseline = peak_rss_mib()
    watch = Stopwatch()
    space = DeltaSpace("bench-big", "releases/big")
    async with create_async_client() as client:
        await client.create_bucket(Bucket=space.bucket)
        service = client.service
        with watch.lap("put v1 (reference)"):
            s1 = await service.put(v1, space)
        with watch.lap("put v2 (delta)"):
            s2 = await service.put(v2, space)
        with watch.lap("get v1"):
            await service.get(ObjectKey(space.bucket, s1.logical_key), work / "out-1")
        with watch.lap("get v2"):
            await service.get(ObjectKey(space.bucket, s2.logical_key), work / "out-2")
    for out, original in ((work / "out-1", v1), (work / "out-2", v2)):
        if sha256(out) != sha256(original):
            raise SystemExit(f"{out.name} does not match {original.name}")
    print(f"machine: {machine()}")
    print(f"file size: {size / MIB:.0f} MiB; v2 differs in ~1 % (64 KiB runs)")
    for label, seconds in watch.laps.items():
        print(f"  {label:<20} {seconds:7.2f} s  ({size / MIB / seconds:7.1f} MiB/s)")
    print(f"  delta size: {s2.delta_size:,} bytes ({(s2.delta_ratio or 0) * 100:.2f} %)")
    print(f"peak RSS of this process: {peak_rss_mib():.0f} MiB (before the run: {baseline:.0f})")
    print(f"peak RSS of the largest xdelta3 child: {peak_children_rss_mib():.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dg-bench-big-") as tmp:
        work = Path(tmp)
        if os.environ.get("AWS_ENDPOINT_URL"):
            anyio.run(bench, work, args.size_mib * MIB)
            return
        with SeaweedServer(data_dir=work / "s3") as s3:
            os.environ.update(s3.env())
            anyio.run(bench, work, args.size_mib * MIB)


if __name__ == "__main__":
    main()
