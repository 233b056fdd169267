"""Per-call overhead of the blocking facade over the async client.

Times ``head_object`` of a small object N times through ``AsyncDeltaGliderClient`` (on
the caller's own event loop) and through the blocking ``DeltaGliderClient`` (whose calls
cross to its private event-loop thread and back), in alternating rounds so that drift of
the server does not favour either side, and prints the per-call times and their
difference. Also prints the bare round trip of the facade's runner (a coroutine that does
nothing), the floor of that overhead.

    PYTHONPATH=. .venv/bin/python benchmarks/facade_overhead.py [--calls 2000] [--server moto]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import anyio.to_thread
from _common import machine

from deltaglider import DeltaGliderClient
from deltaglider._runner import Runner
from deltaglider_async import AsyncDeltaGliderClient, DeltaGliderConfig
from deltaglider_async.testing import start_local_s3

BUCKET = "bench-facade"
KEY = "small/object.txt"
WARMUP = 50


async def timed_calls(client: AsyncDeltaGliderClient, calls: int) -> list[float]:
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        await client.head_object(Bucket=BUCKET, Key=KEY)
        times.append(time.perf_counter() - start)
    return times


def blocking_timed_calls(client: DeltaGliderClient, calls: int) -> list[float]:
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        client.head_object(Bucket=BUCKET, Key=KEY)
        times.append(time.perf_counter() - start)
    return times


async def compare(
    config: DeltaGliderConfig, calls: int, rounds: int
) -> tuple[list[float], list[float]]:
    """Alternate rounds of async and blocking calls, both clients open all along."""
    per_round = max(1, calls // rounds)
    async_times: list[float] = []
    blocking_times: list[float] = []
    async with AsyncDeltaGliderClient(config) as client:
        with DeltaGliderClient(config) as blocking:
            await client.put_object(Bucket=BUCKET, Key=KEY, Body=b"a small object\n")
            await timed_calls(client, WARMUP)
            # The blocking client runs in a worker thread: this loop is idle meanwhile,
            # and the worker has no running loop, as in a plain synchronous program.
            await anyio.to_thread.run_sync(blocking_timed_calls, blocking, WARMUP)
            for _ in range(rounds):
                async_times += await timed_calls(client, per_round)
                blocking_times += await anyio.to_thread.run_sync(
                    blocking_timed_calls, blocking, per_round
                )
        await client.delete_object(Bucket=BUCKET, Key=KEY)
        await client.delete_bucket(Bucket=BUCKET)
    return async_times, blocking_times


class _Nothing:
    """A stand-in async target whose method does no I/O."""

    async def noop(self) -> None:
        return None


@asynccontextmanager
async def _nothing() -> AsyncIterator[_Nothing]:
    yield _Nothing()


def runner_round_trip(calls: int) -> list[float]:
    runner: Runner[_Nothing] = Runner(_nothing)
    try:
        for _ in range(WARMUP):
            runner.call(_Nothing.noop)
        times = []
        for _ in range(calls):
            start = time.perf_counter()
            runner.call(_Nothing.noop)
            times.append(time.perf_counter() - start)
        return times
    finally:
        runner.close()


def describe(label: str, times: list[float]) -> tuple[float, float, float]:
    ordered = sorted(times)
    p10 = ordered[len(ordered) // 10] * 1e3
    mean, median = statistics.fmean(times) * 1e3, statistics.median(times) * 1e3
    print(
        f"{label:<28} mean {mean:7.3f} ms  median {median:7.3f} ms  p10 {p10:7.3f} ms"
        f"  ({len(times)} calls)"
    )
    return mean, median, p10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="head_object calls per client")
    parser.add_argument("--rounds", type=int, default=20, help="alternating rounds")
    parser.add_argument("--server", default="moto", choices=["moto", "seaweedfs"])
    args = parser.parse_args()

    print(f"machine: {machine()}; server: {args.server}")
    with start_local_s3(args.server) as s3:
        config = s3.config(log_level="WARNING")
        admin = s3.boto3_client()
        admin.create_bucket(Bucket=BUCKET)
        admin.close()
        async_times, blocking_times = anyio.run(compare, config, args.calls, args.rounds)

    async_figures = describe("async head_object", async_times)
    blocking_figures = describe("blocking head_object", blocking_times)
    mean, median, p10 = (b - a for a, b in zip(async_figures, blocking_figures, strict=True))
    print(
        f"{'facade overhead per call':<28} mean {mean:7.3f} ms  median {median:7.3f} ms"
        f"  p10 {p10:7.3f} ms  (target <= 0.5 ms)"
    )
    describe("runner round trip (no I/O)", runner_round_trip(args.calls))


if __name__ == "__main__":
    main()
