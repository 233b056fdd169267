"""``deltaglider rebase``: re-encode a drifted directory's deltas against better references."""

from __future__ import annotations

from typing import Any

import click

from deltaglider_async import AsyncDeltaGliderClient, RebaseReport, SpaceRebase

from ._app import (
    cli,
    concurrency_option,
    connection_options,
    json_option,
    quiet_option,
    ratio_option,
    run,
    settings,
)
from ._errors import CommandError, ExitCode
from ._output import human_size
from ._paths import parse_s3_or_bucket


@cli.command("rebase")
@click.argument("url")
@click.option("--recursive", "-r", is_flag=True, help="Also repair every directory below URL.")
@click.option(
    "--dry-run",
    "--dryrun",
    "dry_run",
    is_flag=True,
    help="Show what would change and the bytes it would save; write nothing.",
)
@ratio_option
@concurrency_option
@connection_options
@json_option
@quiet_option
@click.pass_context
def rebase(ctx: click.Context, url: str, recursive: bool, dry_run: bool) -> None:
    """Re-encode the deltas of the directory s3://BUCKET/DIR/ against better references.

    For directories whose later versions drifted away from the first file (written by
    deltaglider 6.x or with re-baselining off): files are replayed in the order they were
    written, later ones become new references where the re-baselining rule says so
    (--rebase-ratio, default 0.25), and each smaller delta replaces the stored one after it
    was decoded and its SHA-256 checked. Files stored whole become deltas when they now
    fit --max-ratio. Safe to interrupt; run it again to resume.
    """
    target = parse_s3_or_bucket(url)
    out = settings(ctx).output()

    async def repair(client: AsyncDeltaGliderClient) -> RebaseReport:
        return await client.rebase(str(target), recursive=recursive, dry_run=dry_run)

    report = run(ctx, repair)
    if out.json_mode:
        out.document(_document(report))
    else:
        prefix = "(dryrun) " if dry_run else ""
        for space in report.spaces:
            for done in space.files:
                where = f"s3://{space.bucket}/{done.key}"
                if done.outcome in ("re-encoded", "new-reference"):
                    verb = "reference" if done.outcome == "new-reference" else "re-encode"
                    out.info(
                        f"{prefix}{verb}: {where} {human_size(done.stored_before)} -> "
                        f"{human_size(done.stored_after)}"
                    )
                elif done.outcome == "skipped":
                    out.problem(f"skip: {where}: {done.reason}")
            out.info(f"{prefix}{_summary(space)}")
        for directory, error in report.failed:
            out.problem(f"failed: s3://{report.bucket}/{directory}: {error}")
        saved = report.saved
        out.info(
            f"{len(report.spaces)} directories, {report.reencoded} files re-encoded, "
            f"{'would save' if dry_run else 'saved'} {human_size(max(saved, 0))}"
        )
    if report.failed:
        raise CommandError(
            f"{len(report.failed)} of {len(report.failed) + len(report.spaces)} directories "
            "could not be repaired (run again to resume)",
            ExitCode.FAILED,
        )


def _summary(space: SpaceRebase) -> str:
    state = "" if space.saved > 0 else " (nothing to gain: unchanged)"
    return (
        f"s3://{space.bucket}/{space.prefix}: {human_size(space.stored_before)} -> "
        f"{human_size(space.stored_after)}, references {space.references_before} -> "
        f"{space.references_after}{state}"
    )


def _document(report: RebaseReport) -> dict[str, Any]:
    return {
        "bucket": report.bucket,
        "prefix": report.prefix,
        "dry_run": report.dry_run,
        "stored_before": report.stored_before,
        "stored_after": report.stored_after,
        "saved": report.saved,
        "reencoded": report.reencoded,
        "directories": [
            {
                "prefix": space.prefix,
                "applied": space.applied,
                "stored_before": space.stored_before,
                "stored_after": space.stored_after,
                "original_bytes": space.original_bytes,
                "references_before": space.references_before,
                "references_after": space.references_after,
                "files": [
                    {
                        "key": f.key,
                        "outcome": f.outcome,
                        "size": f.size,
                        "stored_before": f.stored_before,
                        "stored_after": f.stored_after,
                        "reference": f.reference or None,
                        "reason": f.reason or None,
                    }
                    for f in space.files
                ],
            }
            for space in report.spaces
        ],
        "failed": [{"prefix": d, "error": e} for d, e in report.failed],
    }
