"""``deltaglider cp``: local → S3, S3 → local and S3 → S3, one file or a whole tree."""

from __future__ import annotations

import sys

import anyio
import anyio.to_thread
import click

from deltaglider_async import AsyncDeltaGliderClient, NotFoundError, ObjectKey, S3Url

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
from ._listing import list_all
from ._output import Outcome, Reporter
from ._paths import (
    Filters,
    LocalPath,
    copy_key,
    dir_prefix,
    display_local,
    download_path,
    parse_location,
    upload_key,
    walk_local,
)

_CHUNK = 1024 * 1024


@cli.command("cp")
@click.argument("source")
@click.argument("destination")
@click.option(
    "-r", "--recursive", is_flag=True, help="Copy every file under a directory or prefix."
)
@click.option("--dryrun", is_flag=True, help="Print what would be copied; copy nothing.")
@filter_options
@connection_options
@ratio_option
@no_delta_option
@concurrency_option
@json_option
@quiet_option
@click.pass_context
def cp(
    ctx: click.Context,
    source: str,
    destination: str,
    recursive: bool,
    dryrun: bool,
    excludes: tuple[str, ...],
    includes: tuple[str, ...],
) -> None:
    """Copy SOURCE to DESTINATION; at least one of them is an s3:// URL.

    \b
      deltaglider cp app-1.2.zip s3://releases/app/        # stores app/app-1.2.zip
      deltaglider cp s3://releases/app/app-1.2.zip ./out/  # writes ./out/app-1.2.zip
      deltaglider cp -r dist/ s3://releases/app/ --exclude '*.tmp'
      deltaglider cp s3://releases/app/a.zip s3://archive/app/

    Uploads are stored as deltas against the destination directory's reference when that
    pays (see --max-ratio, --no-delta). Downloads and S3 → S3 copies are reconstructed
    and verified against the recorded SHA-256 before anything is written. "-" is stdin
    or stdout.
    """
    src = parse_location(source, "source")
    dst = parse_location(destination, "destination")
    if isinstance(src, LocalPath) and isinstance(dst, LocalPath):
        raise CliUsageError(
            "cp needs an s3:// source or destination; local to local copies are not supported",
            ctx,
        )
    rules = filters(ctx, excludes, includes)
    if rules and not recursive:
        raise CliUsageError("--exclude/--include apply only with --recursive", ctx)
    options = settings(ctx)
    report = Reporter(options.output(), "cp")
    allow_delta = not options.no_delta

    if recursive:
        if (isinstance(src, LocalPath) and src.is_stdio) or (
            isinstance(dst, LocalPath) and dst.is_stdio
        ):
            raise CliUsageError("'-' (stdin/stdout) cannot be used with --recursive", ctx)
        if isinstance(src, LocalPath):
            if not src.path.exists():
                raise NotFoundError(f"local directory {src.text!r} does not exist")
            if not src.path.is_dir():
                raise CliUsageError(f"{src.text!r} is not a directory (drop --recursive)", ctx)
        if isinstance(dst, LocalPath) and dst.path.exists() and not dst.path.is_dir():
            raise CliUsageError(f"{dst.text!r} exists and is not a directory", ctx)

        async def copy_tree(client: AsyncDeltaGliderClient) -> None:
            await _recursive(client, report, src, dst, rules, allow_delta, dryrun)

        run(ctx, copy_tree)
        report.finish("files")
        return

    if isinstance(src, S3Url) and src.is_prefix:
        raise CliUsageError(
            f"{src} names a prefix, not an object: add --recursive to copy what it holds", ctx
        )
    if isinstance(src, LocalPath) and not src.is_stdio:
        if src.path.is_dir():
            raise CliUsageError(f"{src.text!r} is a directory: add --recursive", ctx)
        if not src.path.exists():
            raise NotFoundError(f"local file {src.text!r} does not exist")
    if isinstance(src, LocalPath) and src.is_stdio and isinstance(dst, S3Url) and dst.is_prefix:
        raise CliUsageError("to upload stdin, name the key: s3://bucket/key", ctx)

    async def copy_one(client: AsyncDeltaGliderClient) -> Outcome | None:
        return await _single(client, src, dst, allow_delta, dryrun)

    outcome = run(ctx, copy_one)
    if outcome is not None:
        report.add(outcome)
    report.finish("files")


async def _single(
    client: AsyncDeltaGliderClient,
    src: LocalPath | S3Url,
    dst: LocalPath | S3Url,
    allow_delta: bool,
    dryrun: bool,
) -> Outcome | None:
    """Copy one file; its error is raised (so the exit code says what went wrong)."""
    if isinstance(src, LocalPath):
        assert isinstance(dst, S3Url)
        if src.is_stdio:
            target = ObjectKey(dst.bucket, dst.key)
            engine.check_user_key(target.key)
            if dryrun:
                return Outcome("upload", "-", target.url, dryrun=True)
            summary = await engine.upload_stream(
                client, sys.stdin.buffer.read, target, max_ratio=None, allow_delta=allow_delta
            )
            return Outcome("upload", "-", target.url, summary=summary)
        path = src.path
        target = ObjectKey(dst.bucket, upload_key(path, dst))
        engine.check_user_key(target.key)
        if dryrun:
            return Outcome("upload", display_local(path), target.url, dryrun=True)
        [uploaded] = await engine.upload_many(
            client,
            [(path, target.key)],
            dst.bucket,
            max_ratio=None,
            allow_delta=allow_delta,
            progress=None,
        )
        if uploaded.error is not None:
            raise uploaded.error
        return Outcome("upload", display_local(path), target.url, summary=uploaded.value)

    source = ObjectKey(src.bucket, src.key)
    if isinstance(dst, S3Url):
        target = ObjectKey(dst.bucket, copy_key(src.key, dst))
        engine.check_user_key(target.key)
        if dryrun:
            return Outcome("copy", source.url, target.url, dryrun=True)
        summary = await engine.copy_object(
            client, source, target, max_ratio=None, allow_delta=allow_delta
        )
        return Outcome("copy", source.url, target.url, summary=summary)

    if dst.is_stdio:
        if dryrun:
            return Outcome("download", source.url, "-", dryrun=True)
        await _to_stdout(client, source)
        return None
    out = download_path(src.key, dst)
    if dryrun:
        return Outcome("download", source.url, display_local(out), dryrun=True)
    [downloaded] = await engine.download_many(
        client, [(source.url, out.name)], out.parent, progress=None
    )
    if downloaded.error is not None:
        raise downloaded.error
    size = downloaded.value.size if downloaded.value is not None else None
    return Outcome("download", source.url, display_local(out), size=size)


async def _to_stdout(client: AsyncDeltaGliderClient, source: ObjectKey) -> None:
    """Write the verified bytes of ``source`` to stdout (nothing at all if it is corrupt)."""
    sys.stdout.flush()
    stream = sys.stdout.buffer
    async with (
        client.service.materialize(source) as (path, _),
        await anyio.open_file(path, "rb") as f,
    ):
        while chunk := await f.read(_CHUNK):
            await anyio.to_thread.run_sync(stream.write, chunk)
    await anyio.to_thread.run_sync(stream.flush)


async def _recursive(
    client: AsyncDeltaGliderClient,
    report: Reporter,
    src: LocalPath | S3Url,
    dst: LocalPath | S3Url,
    rules: Filters,
    allow_delta: bool,
    dryrun: bool,
) -> None:
    if isinstance(src, LocalPath):
        assert isinstance(dst, S3Url)
        prefix = dir_prefix(dst.key)
        files = await anyio.to_thread.run_sync(walk_local, src.path)
        jobs = [
            transfer.Upload(f.path, dst.bucket, prefix + f.relative)
            for f in files
            if rules.selects(f.relative)
        ]
        await transfer.uploads(client, report, jobs, allow_delta=allow_delta, dryrun=dryrun)
        return
    prefix = dir_prefix(src.key)
    listed = await list_all(client, src.bucket, prefix)
    hidden = await client.list_hidden_objects(src.bucket, prefix)
    if prefix and not listed and not hidden:
        # As rm, ls and sync: a misspelled source is "not found", never "0 files".
        raise NotFoundError(
            f"source s3://{src.bucket}/{prefix} does not exist (no object under it)"
        )
    objects = [(o, o.key[len(prefix) :]) for o in listed if rules.selects(o.key[len(prefix) :])]
    transfer.report_skipped(report, src.bucket, prefix, hidden, rules.selects)
    if isinstance(dst, LocalPath):
        downloads = [transfer.Download(o.object_key, dst.path, rel) for o, rel in objects]
        await transfer.downloads(client, report, downloads, dryrun=dryrun)
        return
    target = dir_prefix(dst.key)
    copies = [
        transfer.Copy(o.object_key, ObjectKey(dst.bucket, target + rel)) for o, rel in objects
    ]
    await transfer.copies(client, report, copies, allow_delta=allow_delta, dryrun=dryrun)
