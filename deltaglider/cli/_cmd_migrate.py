"""``deltaglider migrate``: copy a whole prefix into delta-compressed storage, resumably."""

from __future__ import annotations

import re

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
from ._errors import CliUsageError, CommandError
from ._output import Outcome, Reporter
from ._paths import DELTA_SUFFIX, parse_s3

_SHARD = re.compile(r"(\d+)/(\d+)")


def _shard(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    match = _SHARD.fullmatch(value.strip())
    if match is not None:
        k, n = int(match.group(1)), int(match.group(2))
        if n >= 1 and 0 <= k < n:
            return k, n
    raise click.BadParameter(f"expected K/N with 0 <= K < N (e.g. 0/4), got {value!r}")


@cli.command("migrate")
@click.argument("source")
@click.argument("destination")
@click.option("--dry-run", "dry_run", is_flag=True, help="Print what would be migrated.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option(
    "--shard",
    metavar="K/N",
    callback=_shard,
    help="Migrate only shard K of N (0 <= K < N), split by directory, for N parallel runs.",
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
    shard: tuple[int, int] | None,
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
    """
    options = settings(ctx)
    if options.no_delta:
        raise CliUsageError("--no-delta does not apply to migrate, which stores deltas", ctx)
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
                max_ratio=None,
                progress=progress,
            )

    result = run(ctx, work)
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
    report.finish(
        "objects",
        source=result.source,
        destination=result.destination,
        dry_run=dry_run,
        skipped=[_logical(item.source) for item in result.skipped],
    )


def _logical(url: str) -> str:
    """A source object by the name it is read with (``x.zip``, not ``x.zip.delta``)."""
    return url.removesuffix(DELTA_SUFFIX)
