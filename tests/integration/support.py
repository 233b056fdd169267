"""Helpers of the integration tests: hashing, bucket inspection, tampering, /proc, requests."""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anyio

from deltaglider_async._config import DeltaGliderConfig
from deltaglider_async._errors import PreconditionFailedError
from deltaglider_async._models import DeltaSpace, ObjectKey
from deltaglider_async._scratch import OWNER_FILE
from deltaglider_async.adapters.s3_storage import S3ObjectBody, S3Storage
from deltaglider_async.ports.storage import ObjectHead, PutResult

ZERO_DIFF_NOTE = "zero-diff (reference identical)"
MIB = 1024 * 1024


def sha256_bytes(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of the file at ``path``."""
    return sha256_bytes(path.read_bytes())


def md5_bytes(data: bytes) -> str:
    """Hex MD5 of ``data``."""
    return hashlib.md5(data).hexdigest()


def key_of(space: DeltaSpace, name: str) -> ObjectKey:
    """The ObjectKey of ``name`` inside ``space``."""
    return ObjectKey(space.bucket, space.key_for(name))


def list_keys(s3_admin: Any, bucket: str, prefix: str = "") -> dict[str, str]:
    """Every key under ``prefix`` mapped to its ETag (a snapshot of the bucket)."""
    keys: dict[str, str] = {}
    for page in s3_admin.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            keys[item["Key"]] = item["ETag"]
    return keys


def open_uploads(s3_admin: Any, bucket: str) -> list[dict[str, Any]]:
    """Multipart uploads started in ``bucket`` and neither completed nor aborted."""
    uploads: list[dict[str, Any]] = s3_admin.list_multipart_uploads(Bucket=bucket).get(
        "Uploads", []
    )
    return uploads


def head_metadata(s3_admin: Any, bucket: str, key: str) -> dict[str, str]:
    """The user metadata of a stored object, as the server returns it."""
    metadata: dict[str, str] = s3_admin.head_object(Bucket=bucket, Key=key)["Metadata"]
    return metadata


def read_object(s3_admin: Any, bucket: str, key: str) -> bytes:
    """The raw stored bytes of ``key``."""
    body = s3_admin.get_object(Bucket=bucket, Key=key)["Body"]
    try:
        data: bytes = body.read()
    finally:
        body.close()
    return data


def rewrite_object(
    s3_admin: Any,
    bucket: str,
    key: str,
    *,
    body: bytes | None = None,
    metadata: dict[str, str] | None = None,
) -> None:
    """Re-PUT ``key`` with a new body and/or metadata, keeping what is not replaced."""
    head = s3_admin.head_object(Bucket=bucket, Key=key)
    s3_admin.put_object(
        Bucket=bucket,
        Key=key,
        Body=read_object(s3_admin, bucket, key) if body is None else body,
        Metadata=head["Metadata"] if metadata is None else metadata,
        ContentType=head.get("ContentType", "binary/octet-stream"),
    )


def flip_byte(data: bytes, at: int) -> bytes:
    """``data`` with the byte at ``at`` inverted."""
    return data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :]


def child_processes(name: str) -> list[int]:
    """Pids of this process's children whose command name is ``name`` (zombies included)."""
    me = os.getpid()
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        # /proc/PID/stat: "pid (comm) state ppid ..."; comm may itself contain spaces.
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        if ppid == me and comm == name:
            found.append(int(entry.name))
    return found


def files_under(root: Path) -> list[Path]:
    """Every regular file below ``root`` (nothing when it does not exist), except the
    owner records of private temp directories (bookkeeping, not data)."""
    if not root.exists():
        return []
    return sorted(p for p in root.rglob("*") if p.is_file() and p.name != OWNER_FILE)


class RecordingStorage(S3Storage):
    """S3Storage that records the GETs it sends and the outcome of conditional PUTs."""

    def __init__(self, config: DeltaGliderConfig) -> None:
        super().__init__(config)
        self.gets: Counter[str] = Counter()
        #: (key, "created" | "412") for every PUT carrying If-None-Match.
        self.conditional_puts: list[tuple[str, str]] = []

    async def open(self, bucket: str, key: str, *, range: str | None = None) -> S3ObjectBody:
        self.gets[key] += 1
        return await super().open(bucket, key, range=range)

    async def get_to_file(self, bucket: str, key: str, dest: Path) -> ObjectHead:
        # S3Storage streams through open(); count here only if that ever changes.
        before = self.gets[key]
        head = await super().get_to_file(bucket, key, dest)
        if self.gets[key] == before:
            self.gets[key] += 1
        return head

    async def put_file(
        self,
        bucket: str,
        key: str,
        src: Path,
        *,
        metadata: Mapping[str, str],
        content_type: str | None = None,
        if_none_match: bool = False,
        settings: Mapping[str, Any] | None = None,
        if_match: str | None = None,
    ) -> PutResult:
        try:
            result = await super().put_file(
                bucket,
                key,
                src,
                metadata=metadata,
                content_type=content_type,
                if_none_match=if_none_match,
                settings=settings,
                if_match=if_match,
            )
        except PreconditionFailedError:
            self.conditional_puts.append((key, "412"))
            raise
        if if_none_match:
            self.conditional_puts.append((key, "created"))
        return result


async def upload_versions(
    client: Any, bucket: str, prefix: str, versions: list[bytes], tmp_path: Path
) -> None:
    """Upload ``versions`` one by one as ``<prefix>/app-1.0.<n>.zip`` with ``client.upload``."""
    for n, data in enumerate(versions):
        path = tmp_path / prefix / f"app-1.0.{n}.zip"
        await anyio.Path(path.parent).mkdir(parents=True, exist_ok=True)
        await anyio.Path(path).write_bytes(data)
        await client.upload(path, f"s3://{bucket}/{prefix}/")


def stored_bytes(s3_admin: Any, bucket: str, prefix: str) -> int:
    """The bytes stored under ``prefix`` (every key, as plain S3 lists them)."""
    pages = s3_admin.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sum(o["Size"] for page in pages for o in page.get("Contents", []))
