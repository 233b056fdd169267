"""A writer process for the same-name stress test: ``python -m tests.integration.same_name_writer``.

Arguments: bucket, key, rounds, seed, and the local files to upload in turn (one per
round, cycled). Connection settings come from the environment (``AWS_*``). Prints one JSON
line: the SHA-256 of every version it wrote.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import sys
from pathlib import Path

from deltaglider_async import ObjectKey, create_async_client


async def main(bucket: str, key: str, rounds: int, seed: int, files: list[Path]) -> None:
    rng = random.Random(seed)
    written: list[str] = []
    target = ObjectKey(bucket, key)
    async with create_async_client() as client:
        for index in range(rounds):
            await asyncio.sleep(rng.uniform(0, 0.05))
            data = files[index % len(files)].read_bytes()
            await client.put_object(Bucket=bucket, Key=target.key, Body=data)
            written.append(hashlib.sha256(data).hexdigest())
    print(json.dumps({"written": written}))


if __name__ == "__main__":
    bucket, key, rounds, seed, *paths = sys.argv[1:]
    asyncio.run(main(bucket, key, int(rounds), int(seed), [Path(p) for p in paths]))
