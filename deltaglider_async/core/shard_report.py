"""The report of one migration run (one shard), kept as a JSON document.

The document lives in a "directory" (an ``s3://bucket/prefix/`` or a local directory),
named after the shard (``shard-00003-of-00016.json``, ``migration.json`` unsharded), and
is rewritten whole, atomically (one PUT; locally a temp file renamed over it), every
``interval`` seconds while the run goes on and once at its end. A run that is killed
leaves the last checkpoint; the next run of the same shard reads it and

* does not touch again the objects it records as migrated or already present, when the
  source still shows the same ETag and size (from the listing or the inventory);
* keeps their records, so that the final document of a shard names every object of the
  shard once, with the outcome it ended with, however many runs it took.

The document::

    {"format": "deltaglider-migration-report/1", "status": "running" | "complete",
     "source": "s3://...", "destination": "s3://...", "shard": {"index": 3, "count": 16},
     "input": "listing" | "key list s3://..." | "inventory s3://...",
     "started": ISO 8601, "updated": ISO 8601, "list_requests": 12,
     "counts": {"migrated": 0, "skipped": 0, "failed": 0, "refused": 0, "planned": 0},
     "objects": [{"source", "destination", "outcome", "etag", "size",
                  "stored_as", "stored_size", "error", "code", "transient"}, ...]}

``size`` is the source object's size in bytes (for a delta, the stored delta's), ``etag``
its ETag, as listed (``null`` from a key list); ``stored_as`` and ``stored_size`` say how
a migrated object is stored at the destination; ``error``, ``code`` and ``transient``
(whether running again may succeed) describe failures and refusals. Merging the reports
of all shards is concatenating their ``objects``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import anyio
import anyio.to_thread

from .._errors import InvalidArgumentError, translating_local
from .._models import S3Url
from ..ports.storage import StoragePort
from .shards import Shard

__all__ = ["FORMAT", "ShardReport", "report_location"]

FORMAT: Final = "deltaglider-migration-report/1"
OUTCOMES: Final = ("migrated", "skipped", "failed", "refused", "planned")
_DONE: Final = frozenset({"migrated", "skipped"})


def report_location(base: str, shard: Shard | None) -> str:
    """Where the report of ``shard`` goes under ``base`` (``s3://`` prefix or local dir)."""
    name = (
        f"shard-{shard.index:05d}-of-{shard.count:05d}.json"
        if shard is not None
        else "migration.json"
    )
    if base.startswith("s3://"):
        url = S3Url.parse(base)
        prefix = url.key if url.is_prefix else url.key + "/"
        return f"s3://{url.bucket}/{prefix}{name}"
    return str(Path(base) / name)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class ShardReport:
    """The report of one run: the records of its objects, loaded, updated and saved.

    Records are JSON-ready dicts keyed by source URL. :meth:`load` reads a previous run's
    document if there is one; :meth:`record` adds an outcome; :meth:`save` writes the
    document atomically.
    """

    def __init__(
        self,
        storage: StoragePort,
        location: str,
        *,
        source: str,
        destination: str,
        shard: Shard | None,
        source_input: str,
    ) -> None:
        self.location = location
        self._storage = storage
        self._head = {
            "format": FORMAT,
            "source": source,
            "destination": destination,
            "shard": None if shard is None else {"index": shard.index, "count": shard.count},
            "input": source_input,
        }
        self._started = _now()
        self._previous: dict[str, dict[str, Any]] = {}
        self._records: dict[str, dict[str, Any]] = {}
        self.list_requests = 0

    async def load(self) -> None:
        """Read the previous run's document, if any.

        Raises :class:`InvalidArgumentError` when the location holds something else: not a
        report, or the report of another migration (other source, destination or shard).
        """
        data = await self._read()
        if data is None:
            return
        try:
            document = json.loads(data)
        except ValueError:
            raise InvalidArgumentError(
                f"{self.location} exists and is not a migration report (not JSON)"
            ) from None
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise InvalidArgumentError(f"{self.location} exists and is not a migration report")
        for field in ("source", "destination", "shard"):
            if document.get(field) != self._head[field]:
                raise InvalidArgumentError(
                    f"{self.location} is the report of another migration: its {field} is "
                    f"{document.get(field)!r}, this run's {self._head[field]!r}"
                )
        self._started = str(document.get("started") or self._started)
        for item in document.get("objects", []):
            if isinstance(item, dict) and isinstance(item.get("source"), str):
                self._previous[item["source"]] = item

    def done_before(self, source: str, etag: str | None, size: int | None) -> bool:
        """Whether a previous run recorded ``source`` as migrated or present, and the
        source still has the ETag and size it had then (never true without an ETag)."""
        item = self._previous.get(source)
        return (
            item is not None
            and etag is not None
            and item.get("outcome") in _DONE
            and item.get("etag") == etag
            and item.get("size") == size
        )

    def carry_over(self, source: str) -> None:
        """Keep the previous run's record of ``source`` as this run's."""
        self._records[source] = self._previous[source]

    def record(self, item: Mapping[str, Any]) -> None:
        """Record one object's outcome (``item["source"]`` names it).

        An object found already present whose previous record says this migration copied
        it keeps that record: it was migrated, once, by the earlier run.
        """
        source = item["source"]
        before = self._previous.get(source)
        if (
            item["outcome"] == "skipped"
            and before is not None
            and before.get("outcome") == "migrated"
        ):
            self._records[source] = before
            return
        self._records[source] = dict(item)

    def document(self, status: str) -> dict[str, Any]:
        """The whole document, with ``status`` (``"running"`` or ``"complete"``)."""
        objects = sorted(self._records.values(), key=lambda item: str(item["source"]))
        counts = dict.fromkeys(OUTCOMES, 0)
        for item in objects:
            counts[item["outcome"]] = counts.get(item["outcome"], 0) + 1
        return {
            **self._head,
            "status": status,
            "started": self._started,
            "updated": _now(),
            "list_requests": self.list_requests,
            "counts": counts,
            "objects": objects,
        }

    async def save(self, status: str) -> None:
        """Write the document with ``status``, atomically."""
        data = json.dumps(self.document(status), indent=1).encode() + b"\n"
        if self.location.startswith("s3://"):
            url = S3Url.parse(self.location)
            await self._storage.put_bytes(
                url.bucket, url.key, data, content_type="application/json"
            )
            return
        await anyio.to_thread.run_sync(_write_atomically, Path(self.location), data)

    async def _read(self) -> bytes | None:
        if self.location.startswith("s3://"):
            url = S3Url.parse(self.location)
            if await self._storage.head(url.bucket, url.key) is None:
                await self._storage.head_bucket(url.bucket)
                return None
            body = await self._storage.open(url.bucket, url.key)
            try:
                return await body.read()
            finally:
                with anyio.CancelScope(shield=True):
                    await body.aclose()
        path = Path(self.location)
        with translating_local(path, "read the migration report"):
            try:
                return await anyio.Path(path).read_bytes()
            except FileNotFoundError:
                return None


def _write_atomically(path: Path, data: bytes) -> None:
    with translating_local(path, "write the migration report"):
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            with temp.open("wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(temp, path)
        finally:
            temp.unlink(missing_ok=True)
