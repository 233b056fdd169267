"""get_bucket_stats over 2,000 deltas with 20 ms added to every request.

Starts a local S3 server (SeaweedFS by default, or moto), fills a bucket with 2,000 deltas
in 20 deltaspaces (objects carrying real deltaglider metadata, written directly: stats
only read listings and metadata), puts a latency proxy (a child process adding a fixed
delay per request) in front of it, then times each mode without the cache, at the
client's default concurrency and at the others asked for, and a cache hit.

    PYTHONPATH=. .venv/bin/python benchmarks/stats_latency.py \
        [--server seaweedfs|moto] [--deltas 2000] [--delay-ms 20] [--concurrency 1 8 16 32]
"""

from __future__ import annotations

import argparse
import random
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import anyio
from _common import machine

from deltaglider_async import AsyncDeltaGliderClient, DeltaGliderConfig, StatsMode
from deltaglider_async.core import metadata as meta_codec
from deltaglider_async.testing import LocalS3, start_local_s3
from deltaglider_async.testing_proxy import ProxyProcess

BUCKET = "bench-stats"
SPACES = 20


def fill(s3: LocalS3, deltas: int) -> None:
    """``deltas`` delta objects over SPACES deltaspaces, each space with its reference."""
    admin = s3.boto3_client()
    admin.create_bucket(Bucket=BUCKET)
    rng = random.Random(1)
    now = datetime.now(UTC)
    jobs: list[dict[str, Any]] = []
    for space in range(SPACES):
        prefix = f"releases/app{space:02d}"
        reference = rng.randbytes(20_000)
        meta = meta_codec.reference_metadata(
            tool="bench",
            source_name="v0.zip",
            sha256="0" * 64,
            size=len(reference),
            md5="0" * 32,
            created_at=now,
        )
        jobs.append({"Key": f"{prefix}/reference.bin", "Body": reference, "Metadata": meta})
    for n in range(deltas):
        prefix = f"releases/app{n % SPACES:02d}"
        body = rng.randbytes(rng.randrange(100, 2_000))
        delta_meta = meta_codec.delta_metadata(
            tool="bench",
            original_name=f"v{n}.zip",
            sha256=f"{n:064x}",
            size=20_000 + rng.randrange(0, 500),
            md5="0" * 32,
            created_at=now,
            ref_key=f"{prefix}/reference.bin",
            ref_sha256="0" * 64,
            delta_size=len(body),
            delta_cmd="xdelta3",
            zero_diff=False,
            user_metadata={},
        )
        assert delta_meta is not None  # short names always fit S3's 2 KB
        jobs.append({"Key": f"{prefix}/v{n}.zip.delta", "Body": body, "Metadata": delta_meta})
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda job: admin.put_object(Bucket=BUCKET, **job), jobs))
    admin.close()


async def timed_stats(
    s3: LocalS3, mode: StatsMode, concurrency: int | None, use_cache: bool
) -> float:
    """Seconds for one get_bucket_stats; ``concurrency=None`` keeps the client's default."""
    config = s3.config() if concurrency is None else s3.config(max_concurrency=concurrency)
    async with AsyncDeltaGliderClient(config) as client:
        start = time.perf_counter()
        await client.get_bucket_stats(BUCKET, mode, use_cache=use_cache)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--server", default="seaweedfs", choices=["seaweedfs", "moto"])
    parser.add_argument("--deltas", type=int, default=2000)
    parser.add_argument("--delay-ms", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1])
    args = parser.parse_args()
    default_heads = DeltaGliderConfig().metadata_concurrency
    levels: list[int | None] = [None, *sorted(set(args.concurrency), reverse=True)]
    with start_local_s3(args.server) as s3:
        start = time.perf_counter()
        fill(s3, args.deltas)
        print(f"machine: {machine()}; server: {args.server}")
        print(
            f"filled {args.deltas} deltas in {SPACES} spaces in {time.perf_counter() - start:.1f} s"
        )
        with ProxyProcess(s3.endpoint_url, delay=args.delay_ms / 1000) as proxy:
            slow = proxy.wrap(s3)
            print(f"every request delayed {args.delay_ms:g} ms by a proxy process")
            print(f"{'mode':<9} {'concurrency':>12} {'seconds':>8}")
            modes: tuple[StatsMode, ...] = ("quick", "sampled", "detailed")
            for concurrency in levels:
                for mode in modes:
                    seconds = anyio.run(timed_stats, slow, mode, concurrency, False)
                    label = f"default ({default_heads})" if concurrency is None else concurrency
                    print(f"{mode:<9} {label:>12} {seconds:8.2f}", flush=True)
            anyio.run(timed_stats, slow, "detailed", None, True)  # writes the cache
            seconds = anyio.run(timed_stats, slow, "detailed", None, True)
            print(f"detailed, valid cache (LIST + one GET): {seconds:.2f} s")


if __name__ == "__main__":
    main()
