"""``deltaglider ls``: buckets, or objects and ``PRE`` lines as ``aws s3 ls`` prints them."""

from __future__ import annotations

from typing import Any

import click

from deltaglider_async import AsyncDeltaGliderClient, NotFoundError, S3Url

from ._app import cli, concurrency_option, connection_options, json_option, run, settings
from ._listing import RemoteObject, pages
from ._output import Output, human_size, local_time
from ._paths import parse_s3_or_bucket


@cli.command("ls")
@click.argument("url", required=False)
@click.option("-r", "--recursive", is_flag=True, help="List every object under the prefix.")
@click.option("-h", "--human-readable", "human", is_flag=True, help="Sizes in KiB, MiB, GiB...")
@click.option("--summarize", is_flag=True, help="End with the object count and total size.")
@connection_options
@concurrency_option
@json_option
@click.pass_context
def ls(ctx: click.Context, url: str | None, recursive: bool, human: bool, summarize: bool) -> None:
    """List buckets, or the objects under s3://BUCKET[/PREFIX].

    Objects are listed by the names they were stored under (reference.bin and .delta are
    never shown) with their original size. Without --recursive, "directories" are shown
    as PRE lines, as aws s3 ls does. Exits with 3 when a prefix matches nothing.
    """
    out = settings(ctx).output()
    if url is None:
        run(ctx, lambda client: _buckets(client, out))
        return
    target = parse_s3_or_bucket(url)

    async def listing(client: AsyncDeltaGliderClient) -> None:
        await _objects(client, out, target, recursive, human, summarize)

    run(ctx, listing)


async def _buckets(client: AsyncDeltaGliderClient, out: Output) -> None:
    response = await client.list_buckets()
    buckets = response["Buckets"]
    if out.json_mode:
        out.document(
            {
                "Buckets": [
                    {"Name": b["Name"], "CreationDate": b.get("CreationDate")} for b in buckets
                ]
            }
        )
        return
    for bucket in buckets:
        created = bucket.get("CreationDate")
        date = local_time(created) if created is not None else " " * 19
        out.line(f"{date} {bucket['Name']}")


def _size(size: int, human: bool) -> str:
    return (human_size(size) if human else str(size)).rjust(10)


def _record(item: RemoteObject) -> dict[str, Any]:
    return {
        "Key": item.key,
        "Size": item.size,
        "StoredSize": item.stored_size,
        "LastModified": item.last_modified,
        "ETag": item.etag,
        "IsDelta": item.is_delta,
    }


async def _objects(
    client: AsyncDeltaGliderClient,
    out: Output,
    target: S3Url,
    recursive: bool,
    human: bool,
    summarize: bool,
) -> None:
    count = total = 0
    records: list[dict[str, Any]] = []
    prefixes: list[str] = []
    async for page in pages(
        client,
        target.bucket,
        target.key,
        delimiter=None if recursive else "/",
        fetch_metadata=True,
    ):
        for prefix in page.prefixes:
            prefixes.append(prefix)
            out.line(f"{'PRE'.rjust(30)} {prefix.rstrip('/').rpartition('/')[2]}/")
        for item in page.objects:
            count += 1
            total += item.size
            if out.json_mode:
                records.append(_record(item))
                continue
            name = item.key if recursive else item.key.rpartition("/")[2]
            out.line(f"{local_time(item.last_modified)} {_size(item.size, human)} {name}")
    if out.json_mode:
        document: dict[str, Any] = {
            "Bucket": target.bucket,
            "Prefix": target.key,
            "Objects": records,
            "CommonPrefixes": prefixes,
        }
        if summarize:
            document["Summary"] = {"TotalObjects": count, "TotalSize": total}
        out.document(document)
    elif summarize:
        size = human_size(total) if human else str(total)
        out.line("")
        out.line(f"{'Total Objects:'.rjust(14)} {count}")
        out.line(f"{'Total Size:'.rjust(14)} {size}")
    if target.key and not count and not prefixes:
        raise NotFoundError(f"nothing matches {target}")
