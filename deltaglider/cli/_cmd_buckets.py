"""``deltaglider mb`` and ``deltaglider rb``: make and remove buckets."""

from __future__ import annotations

import click

from deltaglider_async import (
    AsyncDeltaGliderClient,
    BucketAlreadyExistsError,
    BucketNotFoundError,
    StorageError,
)

from ._app import cli, connection_options, quiet_option, run, settings
from ._errors import CommandError, describe, exit_code_for
from ._listing import list_all
from ._output import Outcome, Reporter
from ._paths import parse_bucket


@cli.command("mb")
@click.argument("bucket")
@connection_options
@quiet_option
@click.pass_context
def mb(ctx: click.Context, bucket: str) -> None:
    """Make the bucket s3://BUCKET (in --region, else the configured region)."""
    name = parse_bucket(bucket)
    out = settings(ctx).output()

    async def make(client: AsyncDeltaGliderClient) -> None:
        try:
            await client.head_bucket(Bucket=name)
        except BucketNotFoundError:
            await client.create_bucket(Bucket=name)
        else:
            raise BucketAlreadyExistsError(f"bucket s3://{name} already exists")

    try:
        run(ctx, make)
    except StorageError as exc:
        raise CommandError(f"make_bucket failed: s3://{name}: {describe(exc)}") from exc
    out.info(f"make_bucket: {name}")


@cli.command("rb")
@click.argument("bucket")
@click.option("--force", is_flag=True, help="Delete every object of the bucket first.")
@connection_options
@quiet_option
@click.pass_context
def rb(ctx: click.Context, bucket: str, force: bool) -> None:
    """Remove the bucket s3://BUCKET; it must be empty unless --force is given."""
    name = parse_bucket(bucket)
    report = Reporter(settings(ctx).output(), "rb")

    async def remove(client: AsyncDeltaGliderClient) -> None:
        await client.head_bucket(Bucket=name)
        if force:
            objects = await list_all(client, name, "")
            response = await client.delete_objects_recursive(Bucket=name, Prefix="")
            failed = {e["Key"].removesuffix(".delta") for e in response["Errors"]}
            for item in objects:
                report.add(
                    Outcome(
                        "delete",
                        item.url,
                        error=StorageError("could not be deleted") if item.key in failed else None,
                    )
                )
            if response["FailedCount"]:
                raise CommandError(
                    f"remove_bucket failed: s3://{name}: {response['FailedCount']} objects "
                    "could not be deleted"
                )
        await client.delete_bucket(Bucket=name)

    try:
        run(ctx, remove)
    except StorageError as exc:
        raise CommandError(
            f"remove_bucket failed: s3://{name}: {describe(exc)}", exit_code_for(exc)
        ) from exc
    report.out.info(f"remove_bucket: {name}")
