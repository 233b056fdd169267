"""``deltaglider stats`` (bucket savings) and ``deltaglider verify`` (integrity check)."""

from __future__ import annotations

import dataclasses

import click

from deltaglider_async import (
    AsyncDeltaGliderClient,
    BucketStats,
    DiffError,
    DirectoryStats,
    IntegrityError,
    NotFoundError,
    ObjectKey,
    VerifyResult,
)

from . import _engine as engine
from ._app import (
    cli,
    concurrency_option,
    connection_options,
    json_option,
    quiet_option,
    run,
    settings,
)
from ._errors import CliUsageError, CommandError, ExitCode
from ._listing import list_all
from ._output import Outcome, Reporter, human_size
from ._paths import dir_prefix, parse_bucket, parse_s3


@cli.command("stats")
@click.argument("bucket")
@click.option("--sampled", is_flag=True, help="HEAD one delta per directory (better estimate).")
@click.option("--detailed", is_flag=True, help="HEAD every delta (exact original sizes).")
@click.option("--refresh", is_flag=True, help="Recompute and rewrite the cached figures.")
@click.option("--no-cache", is_flag=True, help="Neither read nor write the cached figures.")
@click.option(
    "--directories",
    is_flag=True,
    help="Also show each directory's references, stored share and worst recent delta ratio.",
)
@connection_options
@concurrency_option
@json_option
@click.pass_context
def stats(
    ctx: click.Context,
    bucket: str,
    sampled: bool,
    detailed: bool,
    refresh: bool,
    no_cache: bool,
    directories: bool,
) -> None:
    """Storage statistics of BUCKET (s3://BUCKET or BUCKET): original vs stored size.

    The default (quick) mode lists the bucket only and estimates each delta's original
    size as its reference's size. Figures are cached in the bucket under .deltaglider/
    and reused while the bucket is unchanged. --json (and --directories) add per-directory
    figures: a worst recent delta ratio near --max-ratio (0.5) means the directory drifts
    from its references (see `deltaglider rebase`).
    """
    if sampled and detailed:
        raise CliUsageError("--sampled and --detailed are exclusive", ctx)
    name = parse_bucket(bucket)
    mode: engine.StatsMode = "detailed" if detailed else "sampled" if sampled else "quick"
    out = settings(ctx).output()

    async def compute(
        client: AsyncDeltaGliderClient,
    ) -> tuple[BucketStats, list[DirectoryStats]]:
        figures = await engine.get_bucket_stats(
            client, name, mode, use_cache=not no_cache, refresh=refresh
        )
        drift = []
        if out.json_mode or directories:
            drift = await client.get_directory_stats(name, mode=mode)
        return figures, drift

    figures, drift = run(ctx, compute)
    if out.json_mode:
        document = dataclasses.asdict(figures)
        document["directories"] = [
            {**dataclasses.asdict(d), "stored_ratio": d.stored_ratio} for d in drift
        ]
        out.document(document)
        return
    saved_share = figures.average_compression_ratio * 100
    rows = [
        ("Bucket", figures.bucket),
        ("Mode", figures.mode),
        (
            "Objects",
            f"{figures.object_count} ({figures.delta_objects} delta, "
            f"{figures.direct_objects} direct)",
        ),
        ("Original size", f"{human_size(figures.total_size)} ({figures.total_size} bytes)"),
        (
            "Stored size",
            f"{human_size(figures.compressed_size)} ({figures.compressed_size} bytes)",
        ),
        ("Space saved", f"{human_size(figures.space_saved)} ({saved_share:.1f}%)"),
    ]
    for label, value in rows:
        out.line(f"{label + ':':<15}{value}")
    if directories:
        out.line("")
        out.line(
            f"{'Directory':<40} {'Refs':>4} {'Files':>5} {'Stored':>10} {'Share':>6} Worst recent"
        )
        for d in drift:
            worst = "-" if d.worst_recent_ratio is None else f"{d.worst_recent_ratio:.1%}"
            out.line(
                f"{d.prefix or '(root)':<40} {d.references:>4} "
                f"{d.delta_objects + d.direct_objects:>5} {human_size(d.stored_bytes):>10} "
                f"{d.stored_ratio:>6.1%} {worst}"
            )


@cli.command("verify")
@click.argument("url")
@click.option("-r", "--recursive", is_flag=True, help="Verify every object under the prefix.")
@connection_options
@concurrency_option
@json_option
@quiet_option
@click.pass_context
def verify(ctx: click.Context, url: str, recursive: bool) -> None:
    """Reconstruct s3://BUCKET/KEY and check it against its recorded SHA-256.

    Exits with 5 when the stored data is corrupt (with --recursive: when any object is),
    3 when there is nothing to verify. The reference is read from the bucket, not from
    the local cache.
    """
    target = parse_s3(url)
    if not recursive and target.is_prefix:
        raise CliUsageError(f"{target} names a prefix: add --recursive to verify under it", ctx)
    report = Reporter(settings(ctx).output(), "verify")
    single = not recursive and not report.out.json_mode

    async def check(client: AsyncDeltaGliderClient) -> None:
        if recursive:
            prefix = dir_prefix(target.key)
            keys = [o.object_key for o in await list_all(client, target.bucket, prefix)]
            if not keys:
                raise NotFoundError(f"no objects under s3://{target.bucket}/{prefix}")
        else:
            keys = [ObjectKey(target.bucket, target.key)]
        with report.out.progress(len(keys), "verify") as progress:
            results = await engine.verify_many(client, keys, progress=progress)
        for key, result in zip(keys, results, strict=True):
            if not recursive and result.error is not None:
                raise result.error
            outcome = _outcome(key, result.value, result.error)
            if single and outcome.error is not None:
                raise outcome.error
            report.add(outcome)

    run(ctx, check)
    failed = [o.error for o in report.outcomes if o.error is not None]
    try:
        report.finish("objects")
    except CommandError as exc:
        corrupt = all(isinstance(e, IntegrityError) for e in failed)
        tool = all(isinstance(e, DiffError) for e in failed)
        code = ExitCode.INTEGRITY if corrupt else ExitCode.XDELTA3 if tool else ExitCode.FAILED
        what = "could not be checked (xdelta3)" if tool else "failed verification"
        raise CommandError(f"{len(failed)} of {len(report.outcomes)} objects {what}", code) from exc


def _outcome(key: ObjectKey, result: VerifyResult | None, error: BaseException | None) -> Outcome:
    if error is not None:
        return Outcome("verify", key.url, error=error)
    assert result is not None
    if not result.valid:
        return Outcome(
            "verify", key.url, error=IntegrityError(f"{key.url} is corrupt: {result.message}")
        )
    detail = f"sha256 {result.actual_sha256}" if result.expected_sha256 else result.message
    return Outcome("verify", key.url, detail=detail)
