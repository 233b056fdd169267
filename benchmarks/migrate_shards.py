"""A migration split over 1, 2 and 4 shard processes, 20 ms added to every request.

Starts a local S3 server (SeaweedFS by default, or moto), fills a source bucket with
small similar objects (``--objects`` of them in ``--directories`` directories, 20 groups
of directories at the top, so the partitioned listing has prefixes to cut), then for each
shard count runs ``deltaglider migrate --shard K/N`` as N parallel processes into a fresh
destination prefix. Each shard talks to S3 through its own latency proxy process, which
counts its requests by bucket and S3 operation. Prints, per shard count, the wall time
until the last shard ended, and per shard the LIST requests it sent to the source bucket
(the proxy's count and the command's own ``list_requests``; the destination's LISTs
belong to the write path) and the objects it migrated.

    PYTHONPATH=. .venv/bin/python benchmarks/migrate_shards.py \\
        [--server seaweedfs|moto] [--objects 20000] [--directories 500] \\
        [--delay-ms 20] [--shards 1 2 4] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from _common import machine

from deltaglider_async.testing import LocalS3, start_local_s3
from deltaglider_async.testing_proxy import ProxyProcess

GROUPS = 20


def layout(objects: int, directories: int) -> dict[str, bytes]:
    """``objects`` keys spread over ``directories`` directories in ``GROUPS`` groups."""
    per_directory = max(1, objects // directories)
    found = {}
    for d in range(directories):
        directory = f"group{d % GROUPS:02d}/app{d // GROUPS:03d}"
        base = b"".join(f"{directory} record {n:05d}\n".encode() for n in range(60))
        for v in range(per_directory):
            found[f"{directory}/build-{v:03d}.zip"] = base + f"build {v}\n".encode()
    return found


def seed(s3: LocalS3, bucket: str, objects: dict[str, bytes]) -> float:
    """Put ``objects`` into a new ``bucket`` directly (no delay); seconds taken."""
    admin = s3.boto3_client()
    admin.create_bucket(Bucket=bucket)
    start = time.perf_counter()
    with ThreadPoolExecutor(16) as pool:
        list(
            pool.map(
                lambda item: admin.put_object(Bucket=bucket, Key=item[0], Body=item[1]),
                objects.items(),
            )
        )
    return time.perf_counter() - start


def run_shards(
    s3: LocalS3, source: str, dest: str, shards: int, delay: float, concurrency: int, tmp: Path
) -> tuple[float, list[dict[str, Any]]]:
    """Run ``shards`` migrate processes at once; wall seconds and one record per shard."""
    proxies = [
        ProxyProcess(s3.endpoint_url, delay=delay, stats_file=str(tmp / f"proxy-{shards}-{k}.json"))
        for k in range(shards)
    ]
    for proxy in proxies:
        proxy.start()
    env = {**os.environ, **s3.env()}
    start = time.perf_counter()
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "deltaglider",
                "--endpoint-url",
                proxy.endpoint_url,
                "migrate",
                source,
                dest,
                "--yes",
                "--json",
                "--shard",
                f"{k}/{shards}",
                "-j",
                str(concurrency),
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for k, proxy in enumerate(proxies)
    ]
    outputs = [p.communicate() for p in processes]
    seconds = time.perf_counter() - start
    records = []
    for k, (process, (out, err), proxy) in enumerate(zip(processes, outputs, proxies, strict=True)):
        proxy.stop()
        if process.returncode != 0:
            raise SystemExit(f"shard {k}/{shards} failed ({process.returncode}): {err.decode()}")
        document = json.loads(out)
        stats = proxy.stats()
        records.append(
            {
                "shard": k,
                "migrated": len(document["results"]),
                "list_requests": document["list_requests"],
                "proxy_lists": stats.bucket_operations["bench-src ListObjectsV2"],
                "requests": stats.total_requests,
            }
        )
    return seconds, records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--server", default="seaweedfs", choices=["seaweedfs", "moto"])
    parser.add_argument("--objects", type=int, default=20_000)
    parser.add_argument("--directories", type=int, default=500)
    parser.add_argument("--delay-ms", type=float, default=20.0)
    parser.add_argument("--shards", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    objects = layout(args.objects, args.directories)
    print(f"machine: {machine()}; server: {args.server}")
    with (
        tempfile.TemporaryDirectory(prefix="dg-bench-shards-") as tmp,
        start_local_s3(args.server) as s3,
    ):
        seconds = seed(s3, "bench-src", objects)
        print(f"seeded {len(objects)} objects in {args.directories} directories in {seconds:.0f} s")
        s3.boto3_client().create_bucket(Bucket="bench-dst")
        full_listing = -(-len(objects) // 1000)
        print(
            f"every request delayed {args.delay_ms:g} ms; -j {args.concurrency} per shard; "
            f"one full listing = {full_listing} LIST requests"
        )
        print(
            f"{'shards':>6} {'wall s':>8} {'objects/s':>9}  per shard: LIST (proxy/own), migrated"
        )
        for shards in args.shards:
            seconds, records = run_shards(
                s3,
                "s3://bench-src/",
                f"s3://bench-dst/run-{shards}/",
                shards,
                args.delay_ms / 1000,
                args.concurrency,
                Path(tmp),
            )
            migrated = sum(r["migrated"] for r in records)
            if migrated != len(objects):
                raise SystemExit(f"{shards} shards migrated {migrated} of {len(objects)}")
            per_shard = "; ".join(
                f"{r['proxy_lists']}/{r['list_requests']}, {r['migrated']}" for r in records
            )
            print(f"{shards:>6} {seconds:8.0f} {migrated / seconds:9.1f}  {per_shard}", flush=True)


if __name__ == "__main__":
    main()
