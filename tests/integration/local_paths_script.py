"""Drive every public method that takes a local path with the same bad paths; print the errors.

Run as ``python -m tests.integration.local_paths_script BUCKET`` with ``AWS_*`` naming a
test server, as a user without root's powers (permissions must apply). Prints one JSON
object: ``{"<method> <case>": "<error class or 'ok'>"}``.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import deltaglider
from deltaglider_async import (
    AsyncDeltaGliderClient,
    AsyncDeltaService,
    DeltaSpace,
    ObjectKey,
    create_async_client,
)

LONG = "n" * 260  # longer than NAME_MAX (255)
LEGAL_LONG = "l" * 240 + ".zip"  # 244 bytes: legal


def layout(root: Path) -> tuple[dict[str, Path], dict[str, Path]]:
    """Bad sources and destinations under ``root`` (created)."""
    root.mkdir()
    (root / "dir").mkdir()
    unreadable = root / "unreadable.zip"
    unreadable.write_bytes(b"PK\x03\x04 secret")
    unreadable.chmod(0)
    locked = root / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    plain_file = root / "plain.txt"
    plain_file.write_text("x")
    sources = {
        "missing": root / "missing.zip",
        "directory": root / "dir",
        "unreadable": unreadable,
        "too-long": root / LONG,
    }
    destinations = {
        "missing-parent": root / "nowhere" / "out.zip",
        "unwritable-parent": locked / "out.zip",
        "too-long": root / LONG,
        "through-a-file": plain_file / "out.zip",
        "legal-244-bytes": root / LEGAL_LONG,
    }
    return sources, destinations


async def outcome(call: Callable[[], Awaitable[Any]]) -> str:
    try:
        result = await call()
    except Exception as exc:  # the class is what is reported
        return type(exc).__name__
    if isinstance(result, list):  # a bulk call: the item's error, if any
        errors = [r.error for r in result if getattr(r, "error", None) is not None]
        return type(errors[0]).__name__ if errors else "ok"
    return "ok"


Call = Callable[[Path], Awaitable[Any]]


async def main(bucket: str) -> None:
    root = Path(tempfile.mkdtemp(prefix="dg-local-paths-"))
    results: dict[str, str] = {}
    url = f"s3://{bucket}/lp/"
    async with create_async_client() as client:
        await client.put_object(Bucket=bucket, Key="lp/v1.zip", Body=b"PK\x03\x04" + b"a" * 3000)
        await client.put_object(Bucket=bucket, Key="lp/v2.zip", Body=b"PK\x03\x04" + b"a" * 3001)
        await client.put_object(Bucket=bucket, Key="lp/direct.txt", Body=b"plain")
        service = client.service
        uploads: dict[str, Call] = {
            "upload": lambda p: client.upload(p, url),
            "put_object": lambda p: client.put_object(Bucket=bucket, Key="lp/x.zip", Body=p),
            "upload_many": lambda p: client.upload_many([p], url),
            "upload_batch": lambda p: client.upload_batch([p], url),
            "service.put": lambda p: service.put(p, DeltaSpace(bucket, "lp")),
        }
        for name, call in uploads.items():
            await sources(root / name, name, call, results)
        for key in ("lp/v2.zip", "lp/direct.txt"):
            form = "delta" if key.endswith(".zip") else "direct"
            source = f"s3://{bucket}/{key}"
            downloads: dict[str, Call] = {
                "download": functools.partial(_download, client, source),
                "download_many": functools.partial(_download_many, client, source),
                "download_batch": functools.partial(_download_batch, client, source),
                "service.get": functools.partial(_get, service, ObjectKey(bucket, key)),
            }
            for name, call in downloads.items():
                await destinations(root / f"{name}-{form}", f"{name} {form}", call, results)
    with deltaglider.create_client() as blocking:

        async def upload(p: Path) -> Any:
            return await asyncio.to_thread(blocking.upload, p, url)

        async def download(p: Path) -> Any:
            return await asyncio.to_thread(blocking.download, f"{url}v2.zip", p)

        await sources(root / "b-up", "blocking.upload", upload, results)
        await destinations(root / "b-down", "blocking.download", download, results)
    print(json.dumps(results))


async def _download(client: AsyncDeltaGliderClient, url: str, path: Path) -> Any:
    return await client.download(url, path)


async def _download_many(client: AsyncDeltaGliderClient, url: str, path: Path) -> Any:
    return await client.download_many([(url, path.name)], path.parent)


async def _download_batch(client: AsyncDeltaGliderClient, url: str, path: Path) -> Any:
    return await client.download_batch([url], path.parent)


async def _get(service: AsyncDeltaService, key: ObjectKey, path: Path) -> Any:
    return await service.get(key, path)


async def sources(root: Path, name: str, call: Call, results: dict[str, str]) -> None:
    bad, _ = await asyncio.to_thread(layout, root)
    for case, path in bad.items():
        results[f"{name} {case}"] = await outcome(functools.partial(call, path))


async def destinations(root: Path, name: str, call: Call, results: dict[str, str]) -> None:
    _, bad = await asyncio.to_thread(layout, root)
    for case, path in bad.items():
        results[f"{name} {case}"] = await outcome(functools.partial(call, path))


if __name__ == "__main__":
    os.umask(0o022)
    asyncio.run(main(sys.argv[1]))
