"""``deltaglider sync``: make a prefix or a directory hold what another one holds.

A file is transferred when the destination lacks it or holds different content:

1. the sizes differ (original sizes: deltas are HEADed for theirs) → transfer;
2. with ``--size-only``, equal sizes → skip;
3. else the MD5s are compared when both sides know theirs (a local file is hashed; an
   object's MD5 is ``dg-md5`` for deltaglider objects, the ETag of single-part plain
   objects); else the SHA-256s (``dg-file-sha256``) when both know theirs;
4. when neither can be compared (a plain multipart object) → transfer.

Modification times are never compared (``aws s3 sync`` does): a reconstructed download
or an upload gets a new time, so times say nothing about content.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import anyio
import anyio.to_thread
import click

from deltaglider_async import (
    AsyncDeltaGliderClient,
    NotFoundError,
    ObjectKey,
    ObjectNotFoundError,
    S3Url,
)

from . import _engine as engine
from . import _transfer as transfer
from ._app import (
    cli,
    concurrency_option,
    connection_options,
    filter_options,
    filters,
    json_option,
    no_delta_option,
    quiet_option,
    ratio_option,
    run,
    settings,
)
from ._errors import CliUsageError
from ._listing import RemoteObject, list_all
from ._output import Reporter
from ._paths import Filters, LocalFile, LocalPath, dir_prefix, parse_location, walk_local

_HASH_CHUNK = 1024 * 1024

Entry = LocalFile | RemoteObject


@dataclass(frozen=True, slots=True)
class _Digest:
    md5: str | None
    sha256: str | None


@cli.command("sync")
@click.argument("source")
@click.argument("destination")
@click.option("--delete", is_flag=True, help="Delete destination files the source lacks.")
@click.option("--dryrun", is_flag=True, help="Print what would be done; change nothing.")
@click.option("--size-only", is_flag=True, help="Compare sizes only, not content hashes.")
@filter_options
@connection_options
@ratio_option
@no_delta_option
@concurrency_option
@json_option
@quiet_option
@click.pass_context
def sync(
    ctx: click.Context,
    source: str,
    destination: str,
    delete: bool,
    dryrun: bool,
    size_only: bool,
    excludes: tuple[str, ...],
    includes: tuple[str, ...],
) -> None:
    """Copy new and changed files from SOURCE to DESTINATION (directories or s3:// prefixes).

    \b
      deltaglider sync dist/ s3://releases/app/
      deltaglider sync s3://releases/app/ ./mirror --delete
      deltaglider sync dist/ s3://releases/app/ --exclude '*' --include '*.zip'

    A file is copied when the destination lacks it, or its size differs, or (unless
    --size-only) its MD5 or SHA-256 differs where both sides know one; files whose hash
    cannot be known on one side are copied. Modification times are not compared.
    """
    src = _location(source, "source")
    dst = _location(destination, "destination")
    if isinstance(src, LocalPath) and isinstance(dst, LocalPath):
        raise CliUsageError("sync needs an s3:// source or destination", ctx)
    if isinstance(src, LocalPath):
        if not src.path.exists():
            raise NotFoundError(f"local directory {src.text!r} does not exist")
        if not src.path.is_dir():
            raise CliUsageError(f"{src.text!r} is not a directory", ctx)
    if isinstance(dst, LocalPath) and dst.path.exists() and not dst.path.is_dir():
        raise CliUsageError(f"{dst.text!r} exists and is not a directory", ctx)
    options = settings(ctx)
    report = Reporter(options.output(), "sync")
    rules = filters(ctx, excludes, includes)
    plan = _Plan(
        src, dst, rules, delete=delete, size_only=size_only, allow_delta=not options.no_delta
    )

    async def work(client: AsyncDeltaGliderClient) -> None:
        await plan.execute(client, report, dryrun=dryrun)

    run(ctx, work)
    report.finish("files")


def _location(text: str, what: str) -> LocalPath | S3Url:
    location = parse_location(text, what)
    if isinstance(location, LocalPath) and location.is_stdio:
        raise CliUsageError(f"sync cannot use '-' as its {what}")
    return location


def _hash_file(path: Path) -> _Digest:
    md5, sha256 = hashlib.md5(usedforsecurity=False), hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            md5.update(chunk)
            sha256.update(chunk)
    return _Digest(md5.hexdigest(), sha256.hexdigest())


class _Plan:
    """One sync: list both sides, compare, transfer, delete."""

    def __init__(
        self,
        src: LocalPath | S3Url,
        dst: LocalPath | S3Url,
        rules: Filters,
        *,
        delete: bool,
        size_only: bool,
        allow_delta: bool,
    ) -> None:
        self.src, self.dst, self.rules = src, dst, rules
        self.delete, self.size_only, self.allow_delta = delete, size_only, allow_delta
        self._local_digests: dict[Path, _Digest] = {}

    async def _entries(
        self, client: AsyncDeltaGliderClient, where: LocalPath | S3Url, *, source: bool = False
    ) -> dict[str, Entry]:
        """The files of one side by relative path, filtered.

        A source "directory" that does not exist is an error (``NotFoundError``), never an
        empty tree: with ``--delete`` a misspelled source would otherwise delete the whole
        destination. An S3 prefix exists when some object is under it; the bucket root
        exists with the bucket.
        """
        found: list[tuple[str, Entry]]
        if isinstance(where, LocalPath):
            if not where.path.is_dir():
                if source:
                    raise NotFoundError(f"local directory {where.text!r} does not exist")
                return {}
            files = await anyio.to_thread.run_sync(walk_local, where.path)
            found = [(f.relative, f) for f in files]
        else:
            prefix = dir_prefix(where.key)
            objects = await list_all(client, where.bucket, prefix, fetch_metadata=True)
            if source and prefix and not objects:
                raise ObjectNotFoundError(
                    f"source s3://{where.bucket}/{prefix} does not exist (no object under it); "
                    "nothing was transferred or deleted"
                )
            found = [(o.key[len(prefix) :], o) for o in objects]
        return {rel: entry for rel, entry in found if self.rules.selects(rel)}

    async def execute(
        self, client: AsyncDeltaGliderClient, report: Reporter, *, dryrun: bool
    ) -> None:
        """Compare both sides, then transfer and (with ``--delete``) delete."""
        source = await self._entries(client, self.src, source=True)
        if isinstance(self.src, S3Url):
            where = self.src
            prefix = dir_prefix(where.key)
            await transfer.report_hidden(client, report, where.bucket, prefix, self.rules.selects)
        dest = await self._entries(client, self.dst)
        present = [rel for rel in sorted(source) if rel in dest]
        differs = await self._compare(client, [(source[rel], dest[rel]) for rel in present])
        same = {rel for rel, differ in zip(present, differs, strict=True) if not differ}
        wanted = [(rel, source[rel]) for rel in sorted(source) if rel not in same]
        await self._transfer(client, report, wanted, dryrun)
        if self.delete:
            extra = [rel for rel in sorted(dest) if rel not in source]
            await self._delete(client, report, extra, dest, dryrun)

    async def _compare(
        self, client: AsyncDeltaGliderClient, pairs: list[tuple[Entry, Entry]]
    ) -> list[bool]:
        """For each (source, destination) pair present on both sides: does it differ?"""

        def task(index: int, a: Entry, b: Entry) -> engine.Task[bool]:
            async def run_compare() -> bool:
                return await self._differs(client, a, b)

            return str(index), "", run_compare

        results = await engine.run_each(
            [task(i, a, b) for i, (a, b) in enumerate(pairs)], limit=client.config.concurrency
        )
        # A comparison that failed (a HEAD refused...) transfers: the transfer reports it.
        return [r.value is not False for r in results]

    async def _differs(self, client: AsyncDeltaGliderClient, a: Entry, b: Entry) -> bool:
        if a.size != b.size:
            return True
        if self.size_only:
            return False
        first, second = await self._digest(client, a, False), await self._digest(client, b, False)
        if first.md5 and second.md5:
            return first.md5 != second.md5
        first, second = await self._digest(client, a, True), await self._digest(client, b, True)
        if first.sha256 and second.sha256:
            return first.sha256 != second.sha256
        return True

    async def _digest(self, client: AsyncDeltaGliderClient, entry: Entry, sha: bool) -> _Digest:
        if isinstance(entry, LocalFile):
            cached = self._local_digests.get(entry.path)
            if cached is None:
                cached = await anyio.to_thread.run_sync(_hash_file, entry.path)
                self._local_digests[entry.path] = cached
            return cached
        if entry.md5 and not sha:
            return _Digest(entry.md5, None)
        head = await client.head_object(Bucket=entry.bucket, Key=entry.key)
        etag = head["ETag"].strip('"').lower()
        md5 = etag if len(etag) == 32 and "-" not in etag else None
        return _Digest(md5, head["DeltaGlider"]["Sha256"])

    async def _transfer(
        self,
        client: AsyncDeltaGliderClient,
        report: Reporter,
        items: list[tuple[str, Entry]],
        dryrun: bool,
    ) -> None:
        src, dst = self.src, self.dst
        if isinstance(dst, S3Url):
            prefix = dir_prefix(dst.key)
            if isinstance(src, LocalPath):
                uploads = [
                    transfer.Upload(entry.path, dst.bucket, prefix + rel)
                    for rel, entry in items
                    if isinstance(entry, LocalFile)
                ]
                await transfer.uploads(
                    client, report, uploads, allow_delta=self.allow_delta, dryrun=dryrun
                )
            else:
                copies = [
                    transfer.Copy(entry.object_key, ObjectKey(dst.bucket, prefix + rel))
                    for rel, entry in items
                    if isinstance(entry, RemoteObject)
                ]
                await transfer.copies(
                    client, report, copies, allow_delta=self.allow_delta, dryrun=dryrun
                )
            return
        downloads = [
            transfer.Download(entry.object_key, dst.path, rel)
            for rel, entry in items
            if isinstance(entry, RemoteObject)
        ]
        await transfer.downloads(client, report, downloads, dryrun=dryrun)

    async def _delete(
        self,
        client: AsyncDeltaGliderClient,
        report: Reporter,
        extra: list[str],
        dest: dict[str, Entry],
        dryrun: bool,
    ) -> None:
        if isinstance(self.dst, S3Url):
            keys = [e.key for rel in extra if isinstance(e := dest[rel], RemoteObject)]
            await transfer.delete_remote(client, report, self.dst.bucket, keys, dryrun=dryrun)
        else:
            paths = [e.path for rel in extra if isinstance(e := dest[rel], LocalFile)]
            await transfer.delete_local(report, paths, dryrun=dryrun)
