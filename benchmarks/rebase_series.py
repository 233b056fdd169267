"""A long release series uploaded one by one, with and without re-baselining, side by side.

Prints, per policy, stored/original bytes, the number of references, and the mean upload
and download time per file, against a local SeaweedFS (real xdelta3, real S3 protocol).
With ``--repair``, one more row: the series uploaded with re-baselining off, then repaired
with ``rebase`` (its time, and the bytes before and after).

The series is any directory of files sorted by version (``--dir``), or PyPI wheels fetched
with pip into ``.work/series/<package>/`` (``--package botocore --versions 1.43.0:48``:
1.43.0 … 1.43.47; needs PyPI).

    PYTHONPATH=. .venv/bin/python benchmarks/rebase_series.py --package botocore \
        --versions 1.43.0:48 [--ratios 1,0.25,0.3]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio
from _common import MIB, machine

from deltaglider_async import AsyncDeltaGliderClient, DeltaGliderConfig
from deltaglider_async.core.keys import reference_generation
from deltaglider_async.testing import SeaweedServer

ROOT = Path(__file__).resolve().parents[1]


def fetch(package: str, spec: str) -> list[Path]:
    """``spec`` ``X.Y.Z:N``: versions X.Y.Z … X.Y.(Z+N-1) of ``package``'s wheels."""
    first, count = spec.split(":")
    major_minor, patch = first.rsplit(".", 1)
    target = ROOT / ".work" / "series" / package
    target.mkdir(parents=True, exist_ok=True)
    for n in range(int(patch), int(patch) + int(count)):
        version = f"{major_minor}.{n}"
        if not list(target.glob(f"*-{version}-*.whl")):
            command = [sys.executable, "-m", "pip", "download", "--no-deps"]
            command += ["--only-binary=:all:", "--dest", str(target), f"{package}=={version}"]
            subprocess.run(command, check=True, capture_output=True)
    return sorted(target.glob("*.whl"), key=_version_key)


def _version_key(path: Path) -> tuple[int, ...]:
    match = re.search(r"-(\d+(?:\.\d+)+)(?:[-.]|$)", path.name)
    return tuple(int(p) for p in match.group(1).split(".")) if match else (0,)


async def run(
    config: DeltaGliderConfig, files: list[Path], prefix: str, out: Path, repair: bool = False
) -> dict[str, float]:
    async with AsyncDeltaGliderClient(config) as client:
        put_seconds = 0.0
        for path in files:
            start = time.perf_counter()
            await client.upload(path, f"s3://bench/{prefix}/")
            put_seconds += time.perf_counter() - start
        repaired: dict[str, float] = {}
        if repair:
            start = time.perf_counter()
            report = await client.rebase(f"s3://bench/{prefix}/", rebase_ratio=0.25)
            repaired = {
                "repair_seconds": time.perf_counter() - start,
                "before": report.stored_before,
                "after": report.stored_after,
            }
        get_seconds = 0.0
        for path in files:
            start = time.perf_counter()
            await client.download(f"s3://bench/{prefix}/{path.name}", out / path.name)
            get_seconds += time.perf_counter() - start
            if (out / path.name).read_bytes() != path.read_bytes():
                raise SystemExit(f"{path.name}: wrong bytes read back")
            (out / path.name).unlink()
        storage = client.service.storage
        stored = 0
        references = 0
        async for info in storage.iter_objects("bench", f"{prefix}/"):
            stored += info.size
            references += info.key.endswith("/reference.bin") or reference_generation(info.key) > 0
    return {
        "stored": stored,
        "references": references,
        "put": put_seconds / len(files),
        "get": get_seconds / len(files),
        **repaired,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", type=Path, help="a directory of files sorted by version")
    parser.add_argument("--package", default="botocore")
    parser.add_argument("--versions", default="1.43.0:48")
    parser.add_argument(
        "--ratios", default="1,0.25,0.3", help="rebase_ratio values (1 = off; empty: none)"
    )
    parser.add_argument(
        "--repair", action="store_true", help="also: upload with re-baselining off, then rebase"
    )
    args = parser.parse_args()
    files = (
        sorted(args.dir.iterdir(), key=_version_key)
        if args.dir
        else fetch(args.package, args.versions)
    )
    original = sum(p.stat().st_size for p in files)
    print(machine())
    print(
        f"series: {len(files)} files, {original / MIB:.1f} MiB, {files[0].name} … {files[-1].name}"
    )
    columns = ("rebase_ratio", "stored/original", "references", "put s/file", "get s/file")
    print(" ".join(f"{c:>{w}}" for c, w in zip(columns, (12, 16, 10, 10, 10), strict=True)))
    with tempfile.TemporaryDirectory() as tmp, SeaweedServer(Path(tmp) / "weed") as s3:
        admin = s3.boto3_client()
        admin.create_bucket(Bucket="bench")
        out = Path(tmp) / "out"
        out.mkdir()
        for ratio in (float(r) for r in args.ratios.split(",") if r):
            config = s3.config(rebase_ratio=ratio)
            result = anyio.run(run, config, files, f"r{ratio}", out)
            label = "off" if ratio >= 1 else f"{ratio:.2f}"
            print(
                f"{label:>12} {100 * result['stored'] / original:>15.2f}% "
                f"{int(result['references']):>10} {result['put']:>10.2f} {result['get']:>10.2f}"
            )
        if args.repair:
            result = anyio.run(run, s3.config(rebase_ratio=1.0), files, "repair", out, True)
            print(
                f"{'off+rebase':>12} {100 * result['stored'] / original:>15.2f}% "
                f"{int(result['references']):>10} {result['put']:>10.2f} {result['get']:>10.2f}"
            )
            print(
                f"rebase: {result['before'] / MIB:.1f} MiB -> {result['after'] / MIB:.1f} MiB "
                f"({100 * result['before'] / original:.2f}% -> "
                f"{100 * result['after'] / original:.2f}% of the original bytes) "
                f"in {result['repair_seconds']:.1f} s "
                f"({result['repair_seconds'] / len(files):.2f} s/file)"
            )


if __name__ == "__main__":
    main()
