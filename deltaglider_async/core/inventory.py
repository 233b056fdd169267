"""An S3 Inventory report as the list of a migration's source objects, shard by shard.

An inventory configuration publishes, daily or weekly, a ``manifest.json`` naming the
report's data files (``files``: ``key``, ``size``, ``MD5checksum``) in the
``destinationBucket`` (an ARN, ``arn:aws:s3:::name``), the ``sourceBucket`` they list,
the ``fileFormat`` and, for CSV, the ``fileSchema`` (the column names, such as ``Bucket,
Key, Size, LastModifiedDate, ETag``). CSV data files are gzip-compressed, without a header
line, and hold each key URL-encoded. Only the CSV format is read here.

Shards split the data files, not the rows: with at least as many files as shards, shard
``k`` reads its contiguous run of files (:func:`~.shards.share_of`) and takes every row;
with fewer files, the shards that share one file each read it and take the rows whose
directory hashes to them. Every row is taken by exactly one shard, and each shard reads
about ``1/n`` of the report (at least one file).
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import zlib
from collections.abc import AsyncIterator, Callable, Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import unquote_plus

import anyio
import anyio.to_thread

from .._errors import (
    IntegrityError,
    InvalidArgumentError,
    ObjectNotFoundError,
    translating_local,
)
from .._models import S3Url
from ..ports.storage import StoragePort
from .shards import Shard, shard_of, share_of

__all__ = ["InventoryEntry", "InventoryFile", "InventoryManifest", "load_manifest", "read_entries"]

_ARN_PREFIX: Final = "arn:aws:s3:::"
_BATCH: Final = 2000
#: Manifests are a few kB per thousand data files; anything far larger is not one.
_MAX_MANIFEST: Final = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class InventoryFile:
    """One data file of a report: its key in the destination bucket, size, MD5 (hex)."""

    key: str
    size: int
    md5: str | None


@dataclass(frozen=True, slots=True)
class InventoryManifest:
    """What a ``manifest.json`` says (see the module)."""

    location: str
    source_bucket: str
    destination_bucket: str
    columns: tuple[str, ...]
    files: tuple[InventoryFile, ...]


@dataclass(frozen=True, slots=True)
class InventoryEntry:
    """One current object of the report: key (decoded), size in bytes and ETag if listed."""

    key: str
    size: int | None
    etag: str | None


def parse_manifest(data: bytes, location: str) -> InventoryManifest:
    """The manifest in ``data`` (read from ``location``, named in errors).

    Raises :class:`InvalidArgumentError` when it is not an inventory manifest, is not of
    the CSV format, or has no ``Key`` column.
    """

    def bad(problem: str) -> InvalidArgumentError:
        return InvalidArgumentError(f"{location} is not a usable S3 Inventory manifest: {problem}")

    try:
        document: Any = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad(f"not JSON ({exc})") from None
    if not isinstance(document, dict):
        raise bad("not a JSON object")
    fields = {"sourceBucket", "destinationBucket", "fileFormat", "files"}
    missing = sorted(f for f in fields if f not in document)
    if missing:
        raise bad(f"it has no {', '.join(missing)}")
    file_format = document["fileFormat"]
    if file_format != "CSV":
        raise bad(
            f"its fileFormat is {file_format!r}; only CSV reports are read "
            f"(configure the inventory with the CSV format)"
        )
    schema = document.get("fileSchema")
    if not isinstance(schema, str):
        raise bad("a CSV manifest needs a fileSchema naming its columns")
    columns = tuple(name.strip() for name in schema.split(","))
    if "Key" not in columns:
        raise bad(f"its fileSchema has no Key column: {schema!r}")
    destination = document["destinationBucket"]
    source = document["sourceBucket"]
    if not isinstance(destination, str) or not isinstance(source, str) or not source:
        raise bad("sourceBucket and destinationBucket must be strings")
    destination = destination.removeprefix(_ARN_PREFIX)
    files = []
    if not isinstance(document["files"], list):
        raise bad("files must be a list")
    for item in document["files"]:
        if not isinstance(item, dict) or not isinstance(item.get("key"), str):
            raise bad(f"a file entry has no key: {item!r}")
        size = item.get("size", 0)
        md5 = item.get("MD5checksum")
        files.append(
            InventoryFile(
                item["key"],
                size if isinstance(size, int) else 0,
                md5.lower() if isinstance(md5, str) and md5 else None,
            )
        )
    return InventoryManifest(location, source, destination, columns, tuple(files))


async def load_manifest(storage: StoragePort, location: str) -> InventoryManifest:
    """Read and parse the ``manifest.json`` at ``location`` (``s3://`` or a local path).

    Raises :class:`NotFoundError` when it is missing, :class:`InvalidArgumentError` when it
    is not a CSV inventory manifest.
    """
    if location.startswith("s3://"):
        url = S3Url.parse(location)
        head = await storage.head(url.bucket, url.key)
        if head is None:
            await storage.head_bucket(url.bucket)
            raise ObjectNotFoundError(f"inventory manifest {location} not found")
        if head.size > _MAX_MANIFEST:
            raise InvalidArgumentError(f"{location} is too large for an inventory manifest")
        body = await storage.open(url.bucket, url.key)
        try:
            data = await body.read()
        finally:
            with anyio.CancelScope(shield=True):
                await body.aclose()
    else:
        path = Path(location)
        with translating_local(path, "read the inventory manifest"):
            data = await anyio.Path(path).read_bytes()
    return parse_manifest(data, location)


def _files_of(
    manifest: InventoryManifest, shard: Shard | None
) -> tuple[Sequence[int], Shard | None]:
    """The data files ``shard`` reads, and the shard of their rows it takes (None: all)."""
    total = len(manifest.files)
    if shard is None or shard.count == 1:
        return range(total), None
    if total >= shard.count:
        return share_of(total, shard), None
    if total == 0:
        return (), None
    # Fewer files than shards: shard k reads file k * total // n, shared with the other
    # shards that map to it, among which it takes the rows of its position.
    file = shard.index * total // shard.count
    sharing = [k for k in range(shard.count) if k * total // shard.count == file]
    return (file,), Shard(sharing.index(shard.index), len(sharing))


def _rows(
    path: Path, columns: tuple[str, ...], source_bucket: str, rows_of: Shard | None
) -> Generator[list[InventoryEntry]]:
    """Batches of the current objects in one gzip CSV data file that ``rows_of`` takes."""
    key_at = columns.index("Key")
    bucket_at = columns.index("Bucket") if "Bucket" in columns else None
    size_at = columns.index("Size") if "Size" in columns else None
    etag_at = columns.index("ETag") if "ETag" in columns else None
    latest_at = columns.index("IsLatest") if "IsLatest" in columns else None
    marker_at = columns.index("IsDeleteMarker") if "IsDeleteMarker" in columns else None
    batch: list[InventoryEntry] = []
    with gzip.open(path, "rt", encoding="utf-8", newline="") as text:
        for row in csv.reader(text):
            if len(row) != len(columns):
                raise InvalidArgumentError(
                    f"inventory data file {path.name}: a row has {len(row)} fields, "
                    f"the manifest's fileSchema {len(columns)}"
                )
            if bucket_at is not None and row[bucket_at] != source_bucket:
                continue
            if latest_at is not None and row[latest_at].lower() == "false":
                continue
            if marker_at is not None and row[marker_at].lower() == "true":
                continue
            key = unquote_plus(row[key_at])
            if rows_of is not None and (
                shard_of(key.rpartition("/")[0], rows_of.count) != rows_of.index
            ):
                continue
            size = row[size_at] if size_at is not None else ""
            batch.append(
                InventoryEntry(
                    key,
                    int(size) if size.isdigit() else None,
                    (row[etag_at] or None) if etag_at is not None else None,
                )
            )
            if len(batch) >= _BATCH:
                yield batch
                batch = []
    if batch:
        yield batch


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as f:
        while chunk := f.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


async def read_entries(
    storage: StoragePort,
    manifest: InventoryManifest,
    shard: Shard | None,
    new_path: Callable[[], Path],
) -> AsyncIterator[InventoryEntry]:
    """The objects of the report that ``shard`` takes, file by file.

    Each data file it reads is downloaded to ``new_path()``, checked against the
    manifest's MD5 (:class:`IntegrityError` if it differs), parsed and removed. Raises
    :class:`InvalidArgumentError` for a data file that is not gzip CSV of the manifest's
    columns.
    """
    indices, rows_of = _files_of(manifest, shard)
    for index in indices:
        item = manifest.files[index]
        path = new_path()
        batches: Generator[list[InventoryEntry]] | None = None
        try:
            await storage.get_to_file(manifest.destination_bucket, item.key, path)
            if item.md5 is not None:
                got = await anyio.to_thread.run_sync(_md5, path)
                if got != item.md5:
                    raise IntegrityError(
                        f"inventory data file s3://{manifest.destination_bucket}/{item.key} "
                        f"has MD5 {got}, the manifest says {item.md5}"
                    )
            batches = _rows(path, manifest.columns, manifest.source_bucket, rows_of)
            while True:
                try:
                    batch = await anyio.to_thread.run_sync(next, batches, None)
                except (OSError, EOFError, zlib.error, csv.Error, UnicodeDecodeError) as exc:
                    raise InvalidArgumentError(
                        f"inventory data file s3://{manifest.destination_bucket}/{item.key} "
                        f"is not gzip-compressed CSV: {exc}"
                    ) from None
                if batch is None:
                    break
                for entry in batch:
                    yield entry
        finally:
            if batches is not None:
                batches.close()
            with anyio.CancelScope(shield=True):
                await anyio.Path(path).unlink(missing_ok=True)
