"""An async service that shares one long-lived client between concurrent requests.

A web service (FastAPI, aiohttp, Starlette...) would open the client at startup, keep
it for the life of the process and hand it to every request handler; here a task group
plays the part of the concurrent requests. Configure S3 through the environment
(``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``...), then run::

    python examples/async_service.py my-bucket
"""

from __future__ import annotations

import hashlib
import sys

import anyio

from deltaglider_async import AsyncDeltaGliderClient, ObjectNotFoundError, create_async_client


class ArtifactStore:
    """The request handlers of a tiny artifact service."""

    def __init__(self, client: AsyncDeltaGliderClient, bucket: str) -> None:
        self.client = client
        self.bucket = bucket

    async def publish(self, name: str, version: int, data: bytes) -> dict[str, object]:
        """PUT /artifacts/{name}/{version}"""
        key = f"artifacts/{name}/{name}-{version}.zip"
        response = await self.client.put_object(Bucket=self.bucket, Key=key, Body=data)
        return {"key": key, "stored_as": response["DeltaGliderInfo"]["StoredAs"]}

    async def fetch(self, name: str, version: int) -> bytes | None:
        """GET /artifacts/{name}/{version}: the original bytes, or None (a 404)."""
        key = f"artifacts/{name}/{name}-{version}.zip"
        try:
            response = await self.client.get_object(Bucket=self.bucket, Key=key)
        except ObjectNotFoundError:
            return None
        async with response["Body"] as body:
            return await body.read()


def build(name: str, version: int) -> bytes:
    """Stand-in for a build: a zip-signed payload that changes slightly per version."""
    payload = b"".join(f"{name} line {n}\n".encode() for n in range(20_000))
    return b"PK\x03\x04" + payload + f"version {version}\n".encode()


async def main(bucket: str) -> None:
    # One client for the whole service: its S3 connection pool and reference cache are
    # shared by every request, and it is closed once, at shutdown.
    async with create_async_client() as client:
        await client.create_bucket(Bucket=bucket)
        store = ArtifactStore(client, bucket)
        for name in ("api", "worker"):  # the first version of each becomes its reference
            await store.publish(name, 1, build(name, 1))

        results: dict[tuple[str, int], str] = {}

        async def handle_publish(name: str, version: int) -> None:
            outcome = await store.publish(name, version, build(name, version))
            results[name, version] = str(outcome["stored_as"])

        async with anyio.create_task_group() as requests:  # concurrent "requests"
            for name in ("api", "worker"):
                for version in range(2, 6):
                    requests.start_soon(handle_publish, name, version)

        for (name, version), stored_as in sorted(results.items()):
            print(f"published {name} {version}: {stored_as}")

        fetched: dict[tuple[str, int], bytes | None] = {}

        async def handle_fetch(name: str, version: int) -> None:
            fetched[name, version] = await store.fetch(name, version)

        async with anyio.create_task_group() as requests:
            for name in ("api", "worker"):
                for version in range(1, 7):  # version 6 was never published: a 404
                    requests.start_soon(handle_fetch, name, version)

        for (name, version), data in sorted(fetched.items()):
            if data is None:
                print(f"fetched {name} {version}: not found")
            else:
                ok = data == build(name, version)
                digest = hashlib.sha256(data).hexdigest()[:12]
                print(f"fetched {name} {version}: {len(data)} bytes sha256 {digest} intact={ok}")


if __name__ == "__main__":
    anyio.run(main, sys.argv[1] if len(sys.argv) > 1 else "deltaglider-async-service")
