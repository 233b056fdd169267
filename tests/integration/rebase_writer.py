"""A writer process for the re-baselining race: ``python -m tests.integration.rebase_writer``.

Arguments: bucket, a synchronisation directory, the writer's number, then one local file
per round. Round ``r`` stores its file into ``<bucket>/race/round-<r>/``. The processes
start each round together: each one writes ``ready-<r>-<writer>`` into the directory and
waits for ``go-<r>`` (written by the test once every writer is ready). Connection settings
and ``DG_REBASE_RATIO`` come from the environment. Prints one JSON line: the key and
SHA-256 of every file it stored.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
from pathlib import Path

from deltaglider_async import create_async_client


async def main(bucket: str, sync: Path, writer: int, files: list[Path]) -> None:
    stored: dict[str, str] = {}
    async with create_async_client() as client:
        for round_number, path in enumerate(files):
            (sync / f"ready-{round_number}-{writer}").touch()
            # A barrier across processes: a file, polled (no Event crosses processes).
            while not (sync / f"go-{round_number}").exists():  # noqa: ASYNC110
                await asyncio.sleep(0.005)
            summary = await client.upload(path, f"s3://{bucket}/race/round-{round_number}/")
            stored[summary.key] = hashlib.sha256(path.read_bytes()).hexdigest()
    print(json.dumps({"stored": stored}))


if __name__ == "__main__":
    bucket, sync, writer, *paths = sys.argv[1:]
    asyncio.run(main(bucket, Path(sync), int(writer), [Path(p) for p in paths]))
