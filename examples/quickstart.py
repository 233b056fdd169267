"""Quickstart: store successive versions of a release archive as deltas, then read them back.

Run it with ``scripts/quickstart`` (which installs what is missing), or directly with
``python examples/quickstart.py``. Without ``AWS_ENDPOINT_URL`` it starts a local SeaweedFS
S3 server on 127.0.0.1, keeping its data in ``.quickstart-data/`` so that a second run
finds the objects of the first; with ``AWS_ENDPOINT_URL`` set it uses that server and the
usual AWS credentials.

What it does:
1. generates 6 versions of a realistic release zip (a source tree plus a few binary
   assets, with small edits between versions);
2. uploads each with ``upload()``, printing its stored size and whether it became the
   deltaspace's reference, a delta or a direct object;
3. prints the total savings;
4. downloads every version and verifies it byte-exactly against the local file.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import random
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import anyio

from deltaglider_async import UploadSummary, create_async_client

BUCKET = "quickstart"
PREFIX = "releases/demo-app"
DATA_DIR = Path(__file__).resolve().parent.parent / ".quickstart-data"
_WORDS = [
    "artifact",
    "build",
    "release",
    "delta",
    "reference",
    "storage",
    "version",
    "bucket",
    "object",
    "archive",
    "compress",
    "verify",
    "checksum",
    "pipeline",
    "deploy",
    "module",
    "function",
    "return",
    "import",
    "class",
]


def _source_file(rng: random.Random, lines: int) -> str:
    out = []
    for i in range(lines):
        words = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(3, 12)))
        out.append(f"    line_{i} = '{words}'  # {rng.getrandbits(32):08x}")
    return "def generated():\n" + "\n".join(out) + "\n    return None\n"


def make_versions(workdir: Path, count: int, seed: int = 7) -> list[Path]:
    """Write ``count`` successive zips of one evolving source tree; return their paths."""
    rng = random.Random(seed)
    files: dict[str, bytes] = {}
    for i in range(160):
        files[f"src/pkg{i % 8}/module_{i}.py"] = _source_file(rng, 60).encode()
    for i in range(4):
        files[f"assets/blob_{i}.bin"] = rng.randbytes(400_000)
    versions: list[Path] = []
    for v in range(count):
        if v:
            for name in rng.sample(sorted(n for n in files if n.endswith(".py")), 4):
                files[name] = _source_file(rng, 60).encode()
            files[f"src/new/feature_{v}.py"] = _source_file(rng, 30).encode()
            files["VERSION"] = f"1.{v}.0\n".encode()
        path = workdir / f"demo-app-1.{v}.0.zip"
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for name in sorted(files):
                info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, files[name])
        versions.append(path)
    return versions


def _kind(summary: UploadSummary) -> str:
    if summary.action == "create_reference":
        return "reference"
    return "delta" if summary.is_delta else "direct"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


async def run(count: int) -> int:
    """Upload, report and verify; return a process exit code."""
    with tempfile.TemporaryDirectory(prefix="dg-quickstart-") as tmp:
        work = Path(tmp)
        versions = make_versions(work, count)
        async with create_async_client() as client:
            await client.create_bucket(Bucket=BUCKET)
            previous = await client.list_objects(Bucket=BUCKET, Prefix=PREFIX + "/")
            if previous.get("Contents"):
                print(f"Objects already in s3://{BUCKET}/{PREFIX}/ from a previous run:")
                for entry in previous["Contents"]:
                    print(f"  {entry['Key']}  ({entry['Size']:,} bytes stored)")
                print()

            total_original = total_stored = 0
            print(f"Uploading {count} versions to s3://{BUCKET}/{PREFIX}/")
            for path in versions:
                summary = await client.upload(path, f"s3://{BUCKET}/{PREFIX}/")
                total_original += summary.original_size
                total_stored += summary.stored_size
                kind = _kind(summary)
                note = (
                    "the full copy later versions are deltas of"
                    if kind == "reference"
                    else f"saved {summary.savings_percent:5.1f}%"
                )
                print(
                    f"  {path.name:<22} {summary.original_size / 1e6:6.2f} MB -> "
                    f"{summary.stored_size / 1e6:8.4f} MB stored as {kind:<9} ({note})"
                )
            saved = total_original - total_stored
            print(
                f"\nTotal: {total_original / 1e6:.2f} MB of archives stored in "
                f"{total_stored / 1e6:.2f} MB: saved {saved / 1e6:.2f} MB "
                f"({saved / total_original * 100:.1f}%)"
            )

            print("\nDownloading and verifying every version")
            failures = 0
            for path in versions:
                out = work / "download" / path.name
                out.parent.mkdir(exist_ok=True)
                await client.download(f"s3://{BUCKET}/{PREFIX}/{path.name}", out)
                same = _sha256(out) == _sha256(path)
                failures += not same
                print(f"  {path.name:<22} {'OK, byte-exact' if same else 'MISMATCH'}")
            print("\nAll versions verified." if not failures else f"\n{failures} mismatches!")
            return 1 if failures else 0


@contextlib.contextmanager
def local_server_if_needed() -> Iterator[None]:
    """Start SeaweedFS on 127.0.0.1 unless AWS_ENDPOINT_URL names a server already."""
    if os.environ.get("AWS_ENDPOINT_URL"):
        print(f"Using the S3 server at {os.environ['AWS_ENDPOINT_URL']}\n")
        yield
        return
    from deltaglider_async.testing import SeaweedServer

    DATA_DIR.mkdir(exist_ok=True)
    print(f"Starting a local SeaweedFS S3 server (data in {DATA_DIR})")
    with SeaweedServer(data_dir=DATA_DIR) as s3:
        saved = {k: os.environ.get(k) for k in s3.env()}
        os.environ.update(s3.env())
        print(f"  listening at {s3.endpoint_url}\n")
        try:
            yield
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            print("\nStopping the local S3 server.")


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--versions", type=int, default=6, help="how many versions (>= 2)")
    args = parser.parse_args(argv)
    if args.versions < 2:
        parser.error("--versions must be at least 2")
    with local_server_if_needed():
        return anyio.run(run, args.versions)


if __name__ == "__main__":
    sys.exit(main())
