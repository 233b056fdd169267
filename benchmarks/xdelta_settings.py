"""xdelta3 compression settings on a series of successive ~15 MB release archives.

Encodes every version after the first against the first (a deltaspace's reference), one
at a time, with the xdelta3 adapter built as the client builds it from the config fields
``xdelta_level`` / ``xdelta_secondary``, and prints for each setting the total delta size,
the encode wall and CPU time, and the decode time (every delta is decoded and compared).
No server is involved: this measures xdelta3 alone, as the service runs it.

    PYTHONPATH=. .venv/bin/python benchmarks/xdelta_settings.py \
        [--versions 12] [--size-mib 15] [--format zip|whl|tar.gz] [--repeat 3]
"""

from __future__ import annotations

import argparse
import filecmp
import resource
import tempfile
import time
from pathlib import Path

import anyio
from _common import MIB, machine

from deltaglider_async import DeltaGliderConfig
from deltaglider_async.adapters.xdelta3 import XDelta3Diff
from tests.archives import make_versions, make_zip_versions

SETTINGS: tuple[tuple[int, str | None], ...] = (
    (9, None),
    (9, "djw"),
    (6, None),
    (1, "djw"),
    # For reference: xdelta3's other secondary compressors at -9.
    (9, "lzma"),
    (9, "none"),
)


def children_cpu() -> float:
    """CPU seconds of the finished, waited-for children (xdelta3)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


async def measure(
    config: DeltaGliderConfig, versions: list[Path], work: Path
) -> tuple[int, float, float, float]:
    """(total delta bytes, encode wall s, encode CPU s, decode wall s) of one setting."""
    diff = XDelta3Diff(
        level=config.xdelta_level,
        secondary=config.xdelta_secondary,
        max_window=config.max_window,
        max_processes=1,
    )
    reference, targets = versions[0], versions[1:]
    total = 0
    encode = decode = 0.0
    cpu = children_cpu()
    for n, target in enumerate(targets):
        delta = work / f"{n}.delta"
        start = time.perf_counter()
        await diff.encode(reference, target, delta)
        encode += time.perf_counter() - start
        total += delta.stat().st_size
    cpu = children_cpu() - cpu
    for n, target in enumerate(targets):
        out = work / f"{n}.out"
        start = time.perf_counter()
        await diff.decode(reference, work / f"{n}.delta", out)
        decode += time.perf_counter() - start
        if not filecmp.cmp(out, target, shallow=False):
            raise SystemExit(f"round trip of {target.name} failed")
        out.unlink()
    return total, encode, cpu, decode


def label(level: int, secondary: str | None) -> str:
    """The xdelta3 flags of a setting."""
    return f"-{level}" + (f" -S {secondary}" if secondary else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--versions", type=int, default=12)
    parser.add_argument("--size-mib", type=float, default=15.0)
    parser.add_argument("--format", default="zip", choices=["zip", "whl", "tar.gz"])
    parser.add_argument("--repeat", type=int, default=3, help="keep the fastest of N runs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dg-bench-xdelta-") as tmp:
        work = Path(tmp)
        size = int(args.size_mib * MIB)
        if args.format == "zip":
            versions = make_zip_versions(work / "in", args.versions, size=size)
        else:
            # A source tree of about ``size`` bytes (half text, half binary asset).
            versions = make_versions(
                work / "in",
                args.versions,
                args.format,
                files=max(4, size // 2 // 3000),
                asset_size=size // 2,
            )
        mean = sum(p.stat().st_size for p in versions) / len(versions)
        print(f"machine: {machine()}")
        print(
            f"{len(versions)} successive {args.format} archives of {mean / MIB:.1f} MiB; "
            f"{len(versions) - 1} deltas against the first; fastest of {args.repeat} runs"
        )
        print(
            f"{'setting':<12} {'total delta':>12} {'vs -9':>7} {'encode s':>9} {'cpu s':>7} "
            f"{'decode s':>9}"
        )
        baseline = None
        for level, secondary in SETTINGS:
            config = DeltaGliderConfig(xdelta_level=level, xdelta_secondary=secondary)
            runs = [anyio.run(measure, config, versions, work) for _ in range(args.repeat)]
            total = runs[0][0]
            encode = min(r[1] for r in runs)
            cpu = min(r[2] for r in runs)
            decode = min(r[3] for r in runs)
            baseline = baseline or total
            print(
                f"{label(level, secondary):<12} {total:>12,} {(total / baseline - 1) * 100:+6.2f}% "
                f"{encode:9.2f} {cpu:7.2f} {decode:9.2f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
