"""Put then get a series of ~15 MB successive release archives, one at a time.

Prints the time per file for put and get, the share of it spent in xdelta3 (measured
around each encode/decode), and the stored size of each version.

    PYTHONPATH=. .venv/bin/python benchmarks/archive_series.py [--versions 8] \
        [--level 9] [--secondary djw]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import anyio
from _common import MIB, machine

from deltaglider_async import DeltaGliderConfig, DeltaSpace, ObjectKey
from deltaglider_async._factory import build_service
from deltaglider_async.adapters.metrics import RecordingMetrics
from deltaglider_async.ports import BucketsPort
from deltaglider_async.testing import SeaweedServer
from tests.archives import make_zip_versions


async def bench(work: Path, versions: list[Path], config: DeltaGliderConfig) -> None:
    metrics = RecordingMetrics()
    bundle = build_service(config, metrics=metrics)
    space = DeltaSpace("bench-series", "releases/app")
    put_times: list[float] = []
    get_times: list[float] = []
    stored = 0
    try:
        storage = bundle.storage
        assert isinstance(storage, BucketsPort)
        await storage.create_bucket(space.bucket)
        for path in versions:
            start = time.perf_counter()
            summary = await bundle.service.put(path, space)
            put_times.append(time.perf_counter() - start)
            stored += summary.stored_size
            print(
                f"  put {path.name:<24} {path.stat().st_size / MIB:6.2f} MiB -> "
                f"{summary.stored_size / MIB:7.3f} MiB ({summary.operation}) "
                f"in {put_times[-1]:.2f} s"
            )
        encode = sum(metrics.timings("deltaglider.xdelta3.encode"))
        for path in versions:
            start = time.perf_counter()
            await bundle.service.get(
                ObjectKey(space.bucket, f"{space.prefix}/{path.name}"), work / "out.bin"
            )
            get_times.append(time.perf_counter() - start)
        decode = sum(metrics.timings("deltaglider.xdelta3.decode"))
    finally:
        await bundle.aclose()
    total = sum(p.stat().st_size for p in versions)
    print(
        f"machine: {machine()}; xdelta3 -{config.xdelta_level}"
        f"{' -S ' + config.xdelta_secondary if config.xdelta_secondary else ''}"
    )
    print(
        f"{len(versions)} archives, {total / MIB:.1f} MiB in all, stored in {stored / MIB:.2f} MiB"
    )
    print(
        f"put: {sum(put_times) / len(versions):.2f} s per file, "
        f"xdelta3 encode {encode / sum(put_times) * 100:.0f} % of it"
    )
    print(
        f"get: {sum(get_times) / len(versions):.2f} s per file, "
        f"xdelta3 decode {decode / sum(get_times) * 100:.0f} % of it"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--versions", type=int, default=8)
    parser.add_argument("--level", type=int, default=None)
    parser.add_argument("--secondary", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dg-bench-series-") as tmp:
        work = Path(tmp)
        (work / "in").mkdir()
        versions = make_zip_versions(work / "in", args.versions, size=15 * MIB)
        overrides = {"xdelta_level": args.level, "xdelta_secondary": args.secondary}
        if os.environ.get("AWS_ENDPOINT_URL"):
            anyio.run(bench, work, versions, DeltaGliderConfig.from_env(**overrides))
            return
        with SeaweedServer(data_dir=work / "s3") as s3:
            anyio.run(
                bench,
                work,
                versions,
                s3.config(**{k: v for k, v in overrides.items() if v is not None}),
            )


if __name__ == "__main__":
    main()
