"""``deltaglider migrate``: copy a whole prefix into delta-compressed storage, resumably."""

from __future__ import annotations

import math
import re
from typing import Literal

import click

from deltaglider_async import AsyncDeltaGliderClient

from . import _engine as engine
from ._app import (
    cli,
    concurrency_option,
    confirm,
    connection_options,
    json_option,
    quiet_option,
    ratio_option,
    run,
    settings,
    stdin_is_terminal,
)
from ._errors import CliUsageError, CommandError, ExitCode, describe, first_leaf
from ._output import Outcome, Reporter
from ._paths import DELTA_SUFFIX, parse_s3

_SHARD = re.compile(r"(\d+)/(\d+)")


def _shard(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> tuple[int, int] | Literal["auto"] | None:
    if value is None:
        return None
    if value.strip() == "auto":
        return "auto"
    match = _SHARD.fullmatch(value.strip())
    if match is not None:
        k, n = int(match.group(1)), int(match.group(2))
        if n >= 1 and 0 <= k < n:
            return k, n
    raise click.BadParameter(f"expected K/N with 0 <= K < N (e.g. 0/4) or auto, got {value!r}")


def _seconds(ctx: click.Context, param: click.Parameter, value: float) -> float:
    if not math.isfinite(value) or value <= 0:
        raise click.BadParameter(f"expected seconds > 0, got {value!r}")
    return value


@cli.command("migrate")
@click.argument("source")
@click.argument("destination")
@click.option("--dry-run", "dry_run", is_flag=True, help="Print what would be migrated.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option(
    "--shard",
    metavar="K/N|auto",
    callback=_shard,
    help=(
        "Migrate only shard K of N (0 <= K < N), for N parallel runs; 'auto' takes K from "
        "JOB_COMPLETION_INDEX or AWS_BATCH_JOB_ARRAY_INDEX and N from --shards or "
        "AWS_BATCH_JOB_ARRAY_SIZE."
    ),
)
@click.option(
    "--shards",
    type=click.IntRange(min=1),
    metavar="N",
    help="The number of shards, with --shard auto.",
)
@click.option(
    "--from-list",
    "from_list",
    metavar="FILE|s3://...",
    help="Read the source keys from this file, one key a line (each shard reads its part).",
)
@click.option(
    "--inventory",
    metavar="MANIFEST",
    help="Read the source keys from the S3 Inventory report (CSV) whose manifest.json this is.",
)
@click.option(
    "--report",
    "report_to",
    metavar="DIR|s3://...",
    help="Keep this run's JSON report there (one file per shard); a rerun resumes from it.",
)
@click.option(
    "--report-interval",
    type=float,
    default=30.0,
    show_default=True,
    callback=_seconds,
    metavar="SECONDS",
    help="Save the report this often while running.",
)
@click.option(
    "--include", "includes", multiple=True, metavar="PATTERN", help="Only keys matching PATTERN."
)
@click.option(
    "--exclude", "excludes", multiple=True, metavar="PATTERN", help="Never keys matching PATTERN."
)
@connection_options
@ratio_option
@concurrency_option
@json_option
@quiet_option
@click.pass_context
def migrate(
    ctx: click.Context,
    source: str,
    destination: str,
    dry_run: bool,
    yes: bool,
    shard: tuple[int, int] | Literal["auto"] | None,
    shards: int | None,
    from_list: str | None,
    inventory: str | None,
    report_to: str | None,
    report_interval: float,
    includes: tuple[str, ...],
    excludes: tuple[str, ...],
) -> None:
    """Copy every object under SOURCE to DESTINATION (s3:// prefixes), delta-compressed.

    The source may be a plain bucket or one written by deltaglider: each object is read
    (deltas reconstructed and verified), then stored with delta compression at the
    destination. Objects already at the destination with the same SHA-256 are skipped,
    so running the command again resumes an interrupted migration.

    Patterns match the key relative to SOURCE; an object is migrated when it matches no
    --exclude and, if any --include is given, at least one --include. Asks for
    confirmation unless --yes or --dry-run is given.

    With --shard, N runs (K = 0 .. N-1, in parallel anywhere) split the job, each reading
    only its part of the source: of --from-list, of --inventory, or else of a listing cut
    by prefix. Exit code 75 means that only temporary failures happened (throttling,
    server errors, dropped connections): running the same command again resumes.
    """
    options = settings(ctx)
    if options.no_delta:
        raise CliUsageError("--no-delta does not apply to migrate, which stores deltas", ctx)
    if shards is not None and shard != "auto":
        raise CliUsageError("--shards goes with --shard auto", ctx)
    if from_list is not None and inventory is not None:
        raise CliUsageError("give --from-list or --inventory, not both", ctx)
    for name, location in (("--from-list", from_list), ("--inventory", inventory)):
        if location is not None and location.startswith("s3://"):
            parse_s3(location, name)
    if report_to is not None and report_to.startswith("s3://"):
        parse_s3(report_to, "--report")
    src, dst = parse_s3(source, "source"), parse_s3(destination, "destination")
    report = Reporter(options.output(), "migrate")
    if not dry_run and not yes:
        if not stdin_is_terminal():
            raise CliUsageError(
                "migrate writes to the destination: confirm with --yes (stdin is not a terminal)",
                ctx,
            )
        if not confirm(f"Migrate every object of {src} to {dst}?"):
            raise CommandError("migration cancelled; nothing was written")

    async def work(client: AsyncDeltaGliderClient) -> engine.MigrationReport:
        with report.out.progress(None, "migrate") as progress:
            return await engine.migrate(
                client,
                str(src),
                str(dst),
                include=includes,
                exclude=excludes,
                dry_run=dry_run,
                shard=shard,
                shards=shards,
                from_list=from_list,
                inventory=inventory,
                report=report_to,
                report_interval=report_interval,
                max_ratio=None,
                progress=progress,
            )

    try:
        result = run(ctx, work)
    except Exception as exc:
        leaf = first_leaf(exc)
        if engine.is_transient(leaf):
            raise CommandError(
                f"{describe(leaf)} (temporary: run the same command again to resume)",
                ExitCode.TEMPORARY,
            ) from exc
        raise
    for done in result.migrated:
        report.add(Outcome("migrate", _logical(done.source), done.destination, summary=done.value))
    for planned in result.planned:
        report.add(Outcome("migrate", _logical(planned.source), planned.destination, dryrun=True))
    for failed in result.failed:
        report.add(
            Outcome("migrate", _logical(failed.source), failed.destination, error=failed.error)
        )
    for item in result.refused:
        reason = str(item.error).partition(" is not migrated: ")[2] or str(item.error)
        report.add(Outcome("skip", item.source, detail=f"not migrated: {reason}"))
    refused = f"{len(result.refused)} not migrable (see skip lines), " if result.refused else ""
    report.out.info(
        f"{'Would migrate' if dry_run else 'Migrated'} "
        f"{len(result.planned) if dry_run else len(result.migrated)} objects, "
        f"{len(result.skipped)} already present, {refused}{len(result.failed)} failed"
    )
    if result.shard is not None:
        listed = (
            f"{result.list_requests} LIST requests"
            if from_list is None and inventory is None
            else "no LIST"
        )
        report.out.info(f"Shard {result.shard}: {listed}")
    if result.report_url is not None:
        report.out.info(f"Report: {result.report_url}")
    try:
        report.finish(
            "objects",
            source=result.source,
            destination=result.destination,
            dry_run=dry_run,
            skipped=[_logical(item.source) for item in result.skipped],
            shard=None if result.shard is None else str(result.shard),
            list_requests=result.list_requests,
            report=result.report_url,
        )
    except CommandError as exc:
        if result.retryable:
            raise CommandError(
                f"{exc.format_message()}, each for a reason that may pass: "
                f"run the same command again to resume",
                ExitCode.TEMPORARY,
            ) from None
        raise


def _logical(url: str) -> str:
    """A source object by the name it is read with (``x.zip``, not ``x.zip.delta``)."""
    return url.removesuffix(DELTA_SUFFIX)
