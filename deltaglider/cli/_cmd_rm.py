"""``deltaglider rm``: delete one object, or every object under a prefix."""

from __future__ import annotations

import click

from deltaglider_async import AsyncDeltaGliderClient, ObjectNotFoundError, S3Url, StorageError

from . import _transfer as transfer
from ._app import (
    cli,
    concurrency_option,
    connection_options,
    filter_options,
    filters,
    json_option,
    quiet_option,
    run,
    settings,
)
from ._errors import CliUsageError
from ._listing import list_all
from ._output import Outcome, Reporter
from ._paths import Filters, dir_prefix, parse_s3


@cli.command("rm")
@click.argument("url")
@click.option("-r", "--recursive", is_flag=True, help="Delete every object under the prefix.")
@click.option("--dryrun", is_flag=True, help="Print what would be deleted; delete nothing.")
@filter_options
@connection_options
@concurrency_option
@json_option
@quiet_option
@click.pass_context
def rm(
    ctx: click.Context,
    url: str,
    recursive: bool,
    dryrun: bool,
    excludes: tuple[str, ...],
    includes: tuple[str, ...],
) -> None:
    """Delete s3://BUCKET/KEY, or with --recursive everything under s3://BUCKET/PREFIX.

    A deltaspace's reference.bin is deleted with the last delta that needs it. Without
    --exclude/--include, a recursive delete also removes deltaglider's hidden objects
    under the prefix. s3://b/dir means the directory dir/ (never dir2/). Deleting an
    object that does not exist is an error (exit code 3).
    """
    target = parse_s3(url)
    rules = filters(ctx, excludes, includes)
    if rules and not recursive:
        raise CliUsageError("--exclude/--include apply only with --recursive", ctx)
    if not recursive and target.is_prefix:
        raise CliUsageError(f"{target} names a prefix: add --recursive to delete under it", ctx)
    report = Reporter(settings(ctx).output(), "rm")

    async def remove(client: AsyncDeltaGliderClient) -> None:
        if recursive:
            await _recursive(client, report, target, rules, dryrun)
        else:
            await _single(client, report, target, dryrun)

    run(ctx, remove)
    report.finish("deletions")


async def _single(
    client: AsyncDeltaGliderClient, report: Reporter, target: S3Url, dryrun: bool
) -> None:
    if dryrun:
        await client.head_object(Bucket=target.bucket, Key=target.key)
    else:
        response = await client.delete_object(Bucket=target.bucket, Key=target.key)
        if not response["DeltaGliderInfo"]["Deleted"]:
            raise ObjectNotFoundError(f"{target} does not exist")
    report.add(Outcome("delete", str(target), dryrun=dryrun))


async def _recursive(
    client: AsyncDeltaGliderClient,
    report: Reporter,
    target: S3Url,
    rules: Filters,
    dryrun: bool,
) -> None:
    prefix = dir_prefix(target.key)
    keys = [
        o.key
        for o in await list_all(client, target.bucket, prefix)
        if rules.selects(o.key[len(prefix) :])
    ]
    if rules or dryrun:
        await transfer.delete_remote(client, report, target.bucket, keys, dryrun=dryrun)
        return
    # Everything under the prefix goes, hidden references and .deltaglider/ included.
    response = await client.delete_objects_recursive(Bucket=target.bucket, Prefix=prefix)
    failed = {e["Key"].removesuffix(".delta"): e for e in response["Errors"]}
    for key in keys:
        error = failed.pop(key, None)
        report.add(
            Outcome(
                "delete",
                f"s3://{target.bucket}/{key}",
                error=None
                if error is None
                else StorageError(f"{error['Code']}: {error['Message']}"),
            )
        )
    for key, error in failed.items():  # hidden objects (references) that could not go
        report.add(
            Outcome(
                "delete",
                f"s3://{target.bucket}/{key}",
                error=StorageError(f"{error['Code']}: {error['Message']}"),
            )
        )
