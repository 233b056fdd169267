"""Listing and batch deletion of S3 objects by their logical names, every page."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from deltaglider_async import AsyncDeltaGliderClient, ObjectKey

_MD5: Final = re.compile(r"[0-9a-f]{32}")
#: S3 deletes at most 1000 keys per request.
_DELETE_BATCH: Final = 1000
#: Keys asked for per LIST request (S3's maximum).
PAGE_SIZE = 1000


@dataclass(frozen=True, slots=True)
class RemoteObject:
    """One object as a user sees it: logical key, original size (when known), MD5."""

    bucket: str
    key: str
    size: int
    stored_size: int
    etag: str
    last_modified: datetime
    is_delta: bool

    @property
    def url(self) -> str:
        """``s3://bucket/key``."""
        return f"s3://{self.bucket}/{self.key}"

    @property
    def object_key(self) -> ObjectKey:
        """The bucket and logical key."""
        return ObjectKey(self.bucket, self.key)

    @property
    def md5(self) -> str | None:
        """The MD5 of the original bytes when the ETag is one (not for multipart uploads)."""
        etag = self.etag.strip('"').lower()
        return etag if _MD5.fullmatch(etag) else None


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a listing: objects, and common prefixes when listing with ``/``."""

    objects: list[RemoteObject]
    prefixes: list[str]


async def pages(
    client: AsyncDeltaGliderClient,
    bucket: str,
    prefix: str,
    *,
    delimiter: str | None = None,
    fetch_metadata: bool = False,
) -> AsyncIterator[Page]:
    """Every page of ``list_objects`` under ``prefix``.

    With ``fetch_metadata`` the deltas of each page are HEADed (concurrently), so
    ``size`` is the original size and ``etag`` the original's MD5 for every object.
    """
    token: str | None = None
    while True:
        response = await client.list_objects(
            Bucket=bucket,
            Prefix=prefix,
            Delimiter=delimiter,
            MaxKeys=PAGE_SIZE,
            ContinuationToken=token,
            FetchMetadata=fetch_metadata,
        )
        objects = [
            RemoteObject(
                bucket=bucket,
                key=entry["Key"],
                size=entry["Size"],
                stored_size=entry["DeltaGlider"]["StoredSize"],
                etag=entry["ETag"],
                last_modified=entry["LastModified"],
                is_delta=entry["DeltaGlider"]["IsDelta"],
            )
            for entry in response["Contents"]
        ]
        yield Page(objects, [p["Prefix"] for p in response["CommonPrefixes"]])
        token = response.get("NextContinuationToken")
        if not response["IsTruncated"] or not token:
            return


async def list_all(
    client: AsyncDeltaGliderClient, bucket: str, prefix: str, *, fetch_metadata: bool = False
) -> list[RemoteObject]:
    """Every object under ``prefix`` (no delimiter), directory markers (``x/``) left out."""
    found: list[RemoteObject] = []
    async for page in pages(client, bucket, prefix, fetch_metadata=fetch_metadata):
        found.extend(o for o in page.objects if not o.key.endswith("/"))
    return found


async def delete_keys(
    client: AsyncDeltaGliderClient, bucket: str, keys: Sequence[str]
) -> dict[str, str]:
    """Delete logical ``keys`` in batches; the keys that failed, with the reason."""
    failed: dict[str, str] = {}
    for start in range(0, len(keys), _DELETE_BATCH):
        batch = keys[start : start + _DELETE_BATCH]
        response = await client.delete_objects(
            Bucket=bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True}
        )
        for error in response["Errors"]:
            failed[error["Key"]] = f"{error['Code']}: {error['Message']}"
    return failed
