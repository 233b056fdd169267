"""``deltaglider cleanup``: abort incomplete multipart uploads left by killed writers."""

from __future__ import annotations

import click

from deltaglider_async import AsyncDeltaGliderClient, CleanupReport, StaleUpload

from ._app import cli, connection_options, json_option, quiet_option, run, settings
from ._errors import CommandError, ExitCode
from ._paths import parse_s3_or_bucket


@cli.command("cleanup")
@click.argument("url")
@click.option(
    "--older-than",
    default="24h",
    show_default=True,
    help="Abort uploads initiated longer ago than this (90s, 30m, 24h, 7d; bare number: s).",
)
@click.option("--dryrun", is_flag=True, help="Show what would be aborted without aborting.")
@connection_options
@json_option
@quiet_option
@click.pass_context
def cleanup(ctx: click.Context, url: str, older_than: str, dryrun: bool) -> None:
    """Abort incomplete multipart uploads under s3://BUCKET[/PREFIX] older than --older-than.

    A process killed in the middle of a large upload leaves its multipart upload open:
    its parts are billed but belong to no object. Younger uploads are kept, since they
    may belong to a writer still running. An S3 lifecycle rule
    (AbortIncompleteMultipartUpload) does the same on the server.
    """
    target = parse_s3_or_bucket(url)
    out = settings(ctx).output()

    async def clean(client: AsyncDeltaGliderClient) -> CleanupReport:
        return await client.cleanup(str(target), older_than=older_than, dry_run=dryrun)

    report = run(ctx, clean)
    if out.json_mode:
        out.document(
            {
                "bucket": report.bucket,
                "prefix": report.prefix,
                "older_than_seconds": report.older_than.total_seconds(),
                "dry_run": report.dry_run,
                "aborted": [_describe(report, u) for u in report.aborted],
                "kept": [_describe(report, u) for u in report.kept],
                "failed": [
                    {**_describe(report, u), "error": str(error)} for u, error in report.failed
                ],
            }
        )
    else:
        verb = "(dryrun) abort" if dryrun else "abort"
        for upload in report.aborted:
            out.info(f"{verb}: {_line(report, upload)}")
        for upload, error in report.failed:
            out.problem(f"abort failed: {_line(report, upload)}: {error}")
        out.info(
            f"{len(report.aborted)} aborted{' (dry run)' if dryrun else ''}, "
            f"{len(report.kept)} kept (younger than {older_than}), {len(report.failed)} failed"
        )
    if report.failed:
        raise CommandError(
            f"{len(report.failed)} of {len(report.failed) + len(report.aborted)} aborts failed",
            ExitCode.FAILED,
        )


def _describe(report: CleanupReport, upload: StaleUpload) -> dict[str, str | None]:
    return {
        "url": f"s3://{report.bucket}/{upload.key}",
        "upload_id": upload.upload_id,
        "initiated": None if upload.initiated is None else upload.initiated.isoformat(),
    }


def _line(report: CleanupReport, upload: StaleUpload) -> str:
    when = "unknown" if upload.initiated is None else upload.initiated.isoformat()
    return f"s3://{report.bucket}/{upload.key} (upload {upload.upload_id}, initiated {when})"
