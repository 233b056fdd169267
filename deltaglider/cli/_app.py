"""The ``deltaglider`` command group: global options, client creation, error handling.

Every command runs the async core directly: :func:`run` opens one
:class:`~deltaglider_async.AsyncDeltaGliderClient` inside :func:`anyio.run` for the whole
command and closes it at the end (the blocking facade is not used).

Global options may be given before the command (``deltaglider --endpoint-url URL ls``) or,
as with ``aws``, after it (``deltaglider ls --endpoint-url URL``); after the command wins.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
import click

from deltaglider_async import AsyncDeltaGliderClient, __version__, create_async_client

from ._errors import PROG, CliUsageError, CommandError, translate
from ._output import Output
from ._paths import Filters, scan_filter_order

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

LOGGER_NAME = "deltaglider"
_FILTER_ORDER = "deltaglider.filter_order"


@dataclass(slots=True)
class Settings:
    """The global options of one invocation (group level, overridden per command)."""

    endpoint_url: str | None = None
    region: str | None = None
    profile: str | None = None
    max_ratio: float | None = None
    rebase_ratio: float | None = None
    no_delta: bool = False
    concurrency: int | None = None
    json: bool = False
    quiet: bool = False
    debug: bool = False

    def output(self) -> Output:
        """The printer for this invocation."""
        return Output(json_mode=self.json, quiet=self.quiet)


def settings(ctx: click.Context) -> Settings:
    """The :class:`Settings` of the invocation ``ctx`` belongs to."""
    return ctx.ensure_object(Settings)


def _store(name: str) -> Callable[[click.Context, click.Parameter, Any], Any]:
    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        if value is not None and value is not False:
            setattr(settings(ctx), name, value)
        return value

    return callback


def _option(*decls: str, name: str, **kwargs: Any) -> Callable[[F], F]:
    return click.option(*decls, expose_value=False, callback=_store(name), **kwargs)


def connection_options(f: F) -> F:
    """``--endpoint-url``, ``--region``, ``--profile``, ``--debug``."""
    for decorator in reversed(
        [
            _option(
                "--endpoint-url",
                name="endpoint_url",
                metavar="URL",
                help="S3 endpoint (default: AWS_ENDPOINT_URL, else AWS).",
            ),
            _option("--region", name="region", help="Region (default: AWS_DEFAULT_REGION)."),
            _option("--profile", name="profile", help="Profile of ~/.aws/config to use."),
            _option(
                "--debug",
                name="debug",
                is_flag=True,
                help="Log debug messages; print a traceback on errors.",
            ),
        ]
    ):
        f = decorator(f)
    return f


def quiet_option(f: F) -> F:
    """``--quiet``."""
    return _option(
        "--quiet",
        name="quiet",
        is_flag=True,
        help="Print only errors (and data, for listings).",
    )(f)


def json_option(f: F) -> F:
    """``--json``."""
    return _option("--json", name="json", is_flag=True, help="Print one JSON document.")(f)


def concurrency_option(f: F) -> F:
    """``--concurrency/-j``."""
    return _option(
        "--concurrency",
        "-j",
        name="concurrency",
        type=click.IntRange(min=1),
        metavar="N",
        help="Operations in flight at once (default: DG_MAX_CONCURRENCY, else by CPU count).",
    )(f)


class _RebaseRatio(click.ParamType):  # type: ignore[type-arg]
    """A ratio in [0, 1], or ``off`` (the same as 1: never re-baseline)."""

    name = "ratio"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if isinstance(value, float):
            return value
        if str(value).strip().lower() == "off":
            return 1.0
        try:
            ratio = float(value)
        except ValueError:
            self.fail(f"{value!r} is neither a number in [0, 1] nor 'off'", param, ctx)
        if not 0.0 <= ratio <= 1.0:
            self.fail(f"{value!r} is not in [0, 1]", param, ctx)
        return ratio


def ratio_option(f: F) -> F:
    """``--max-ratio`` and ``--rebase-ratio``."""
    f = _option(
        "--rebase-ratio",
        name="rebase_ratio",
        type=_RebaseRatio(),
        metavar="R|off",
        help=(
            "Make a file the directory's next reference when its delta exceeds R of its size "
            "(default: DG_REBASE_RATIO, else 0.25; off turns re-baselining off)."
        ),
    )(f)
    return _option(
        "--max-ratio",
        name="max_ratio",
        type=click.FloatRange(0.0, 1.0),
        metavar="R",
        help="Keep a delta only if delta/file size <= R (default: DG_MAX_RATIO, else 0.5).",
    )(f)


def no_delta_option(f: F) -> F:
    """``--no-delta``."""
    return _option(
        "--no-delta", name="no_delta", is_flag=True, help="Store files whole, without deltas."
    )(f)


def filter_options(f: F) -> F:
    """Repeatable ``--exclude``/``--include`` (applied in the order given; last match wins)."""
    f = click.option(
        "--include",
        "includes",
        multiple=True,
        metavar="PATTERN",
        help="Include paths matching PATTERN again (repeatable).",
    )(f)
    return click.option(
        "--exclude",
        "excludes",
        multiple=True,
        metavar="PATTERN",
        help="Exclude paths matching PATTERN (repeatable).",
    )(f)


def filters(ctx: click.Context, excludes: Sequence[str], includes: Sequence[str]) -> Filters:
    """The command's ``--exclude``/``--include`` rules, in the order they were typed."""
    ordered = ctx.meta.get(_FILTER_ORDER)
    return Filters.build(ordered, excludes, includes)


def _one_line_usage(exc: click.UsageError) -> CommandError:
    if isinstance(exc, CommandError):
        return exc
    return CliUsageError(exc.format_message(), exc.ctx)


class Command(click.Command):
    """A command whose usage errors are one line, and which remembers filter order."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta[_FILTER_ORDER] = scan_filter_order(args)
        try:
            return super().parse_args(ctx, args)
        except click.exceptions.NoArgsIsHelpError:
            raise
        except click.UsageError as exc:
            raise _one_line_usage(exc) from exc


class Group(click.Group):
    """The ``deltaglider`` group: translates every failure into a documented exit code."""

    command_class = Command

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.exceptions.NoArgsIsHelpError:
            raise
        except click.UsageError as exc:
            raise _one_line_usage(exc) from exc

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.NoArgsIsHelpError, CommandError):
            raise
        except click.UsageError as exc:
            raise _one_line_usage(exc) from exc
        except click.ClickException as exc:
            raise CommandError(exc.format_message(), exc.exit_code) from exc
        except click.Abort:
            raise CommandError("aborted") from None
        except (Exception, KeyboardInterrupt, BaseExceptionGroup) as exc:
            raise translate(exc, debug=settings(ctx).debug) from None


@contextmanager
def _stderr_logging(options: Settings) -> Iterator[None]:
    """Show the library's warnings (all its messages with ``--debug``) on stderr."""
    logger = logging.getLogger(LOGGER_NAME)
    handler = logging.StreamHandler(sys.stderr)
    if options.debug:
        handler.setLevel(logging.DEBUG)
    else:
        handler.setLevel(logging.ERROR if options.quiet else logging.WARNING)
    handler.setFormatter(_Formatter())
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return f"{PROG}: {record.levelname.lower()}: {record.getMessage()}"


def run(ctx: click.Context, work: Callable[[AsyncDeltaGliderClient], Awaitable[T]]) -> T:
    """Run ``work(client)`` on a fresh event loop with a client built from the options."""
    options = settings(ctx)

    async def main() -> T:
        client = create_async_client(
            endpoint_url=options.endpoint_url,
            log_level="DEBUG" if options.debug else None,
            region_name=options.region,
            profile_name=options.profile,
            max_ratio=options.max_ratio,
            rebase_ratio=options.rebase_ratio,
            max_concurrency=options.concurrency,
        )
        async with client:
            return await work(client)

    with _stderr_logging(options):
        return anyio.run(main)


@click.group(name=PROG, cls=Group)
@click.version_option(__version__, "--version", prog_name=PROG, message="%(prog)s %(version)s")
@connection_options
@ratio_option
@no_delta_option
@concurrency_option
@json_option
@quiet_option
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Delta-compressed artifact storage on S3, with the habits of 'aws s3'.

    Versions of an archive stored in one S3 "directory" are kept as one reference.bin
    plus small xdelta3 deltas; reading reconstructs and verifies the original bytes.

    Credentials and defaults come from the usual AWS environment variables
    (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL, AWS_DEFAULT_REGION,
    AWS_PROFILE) and DG_MAX_RATIO, DG_MAX_CONCURRENCY, DG_LOG_LEVEL.

    Exit codes: 0 ok, 1 some items failed, 2 usage error, 3 not found, 4 access denied,
    5 integrity failure, 6 xdelta3 missing or failing, 130 interrupted.
    """
    settings(ctx)


def confirm(question: str) -> bool:
    """Ask a yes/no question on the terminal; Ctrl-C interrupts (exit code 130)."""
    click.echo(f"{question} [y/N] ", nl=False, err=True)
    answer = sys.stdin.readline()
    if not answer:
        click.echo(err=True)
    return answer.strip().lower() in ("y", "yes")


def stdin_is_terminal() -> bool:
    """True when stdin is an interactive terminal (a prompt can be answered)."""
    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


def main() -> None:
    """The console script: ``deltaglider`` (also ``python -m deltaglider``)."""
    cli.main(prog_name=PROG)
