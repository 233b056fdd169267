"""Exit codes and error messages of the ``deltaglider`` command.

Every failure ends with one line on stderr, ``deltaglider: error: <what went wrong>``, and
one of these exit codes (a traceback is printed too, before that line, only with
``--debug``):

    ====  =====================================================================
    code  meaning
    ====  =====================================================================
    0     success
    1     the command failed, or some items of a multi-file command failed
          (each failed item has its own ``<action> failed: ...`` line)
    2     usage error: unknown option, bad ``s3://`` URL, local → local copy,
          reserved key name (``reference.bin``, ``*.delta``), bad ratio...
    3     not found: bucket, object, prefix or local file
    4     access denied, or no usable credentials
    5     integrity failure: stored data does not match its recorded SHA-256
    6     xdelta3 is missing or failing
    75    temporary failure (``migrate``): what failed may pass if the same command
          runs again (throttling, a 5xx, a dropped connection), which resumes it
    130   interrupted (Ctrl-C)
    ====  =====================================================================

The library's errors (:class:`deltaglider_async.DeltaGliderError` and subclasses) and
local ``OSError`` are translated here, in :func:`translate`, and nowhere else.
"""

from __future__ import annotations

import enum
import sys
import traceback
from typing import IO, Any

import click

from deltaglider_async import (
    AccessDeniedError,
    BucketNotEmptyError,
    DeltaGliderError,
    DiffError,
    IntegrityError,
    InvalidArgumentError,
    NotFoundError,
)

PROG = "deltaglider"


class ExitCode(enum.IntEnum):
    """The documented exit codes (see the module docstring)."""

    OK = 0
    FAILED = 1
    USAGE = 2
    NOT_FOUND = 3
    ACCESS_DENIED = 4
    INTEGRITY = 5
    XDELTA3 = 6
    TEMPORARY = 75
    INTERRUPTED = 130


class CommandError(click.ClickException):
    """A failure reported as ``deltaglider: error: <message>`` with a documented exit code."""

    def __init__(self, message: str, exit_code: int = ExitCode.FAILED) -> None:
        super().__init__(message)
        # click declares exit_code on the class; each error here carries its own.
        self.exit_code = int(exit_code)  # type: ignore[misc]

    def show(self, file: IO[Any] | None = None) -> None:
        """Print the one-line message on stderr."""
        click.echo(f"{PROG}: error: {self.format_message()}", file=file, err=file is None)


class CliUsageError(CommandError):
    """A usage error (exit code 2), with a pointer to the command's ``--help``."""

    def __init__(self, message: str, ctx: click.Context | None = None) -> None:
        if ctx is not None:
            message = f"{message} (see '{ctx.command_path} --help')"
        super().__init__(message, ExitCode.USAGE)


def exit_code_for(exc: BaseException) -> ExitCode:
    """The exit code of a command that failed with ``exc``."""
    if isinstance(exc, KeyboardInterrupt):
        return ExitCode.INTERRUPTED
    if isinstance(exc, InvalidArgumentError):
        return ExitCode.USAGE
    if isinstance(exc, FileNotFoundError | NotFoundError):
        return ExitCode.NOT_FOUND
    if isinstance(exc, PermissionError | AccessDeniedError):
        return ExitCode.ACCESS_DENIED
    if isinstance(exc, IntegrityError):
        return ExitCode.INTEGRITY
    if isinstance(exc, DiffError):
        return ExitCode.XDELTA3
    return ExitCode.FAILED


def describe(exc: BaseException) -> str:
    """A one-line description of ``exc`` for the user."""
    if isinstance(exc, BucketNotEmptyError):
        return f"{exc} (use 'rb --force' to delete its objects first)"
    if isinstance(exc, DeltaGliderError):
        text = str(exc)
    elif isinstance(exc, OSError) and exc.strerror:
        where = f": {exc.filename!r}" if exc.filename else ""
        text = f"{exc.strerror}{where}"
    else:
        text = f"unexpected {type(exc).__name__}: {exc}"
    return " ".join(text.split()) or type(exc).__name__


def first_leaf(exc: BaseException) -> BaseException:
    """The first non-group exception of (nested) exception groups; ``exc`` otherwise."""
    while isinstance(exc, BaseExceptionGroup):
        leaves: list[BaseException] = list(exc.exceptions)
        interrupts = [e for e in leaves if isinstance(e, KeyboardInterrupt)]
        exc = (interrupts or leaves)[0]
    return exc


def translate(exc: BaseException, *, debug: bool) -> CommandError:
    """The :class:`CommandError` to exit with for ``exc``; prints the traceback if ``debug``."""
    if debug:
        traceback.print_exception(exc, file=sys.stderr)
    leaf = first_leaf(exc)
    if isinstance(leaf, CommandError):
        return leaf
    if isinstance(leaf, KeyboardInterrupt):
        return CommandError("interrupted", ExitCode.INTERRUPTED)
    message = describe(leaf)
    if not isinstance(leaf, DeltaGliderError | OSError) and not debug:
        message += " (run with --debug for a traceback)"
    return CommandError(message, exit_code_for(leaf))


def items_failed(failed: int, total: int, what: str) -> CommandError:
    """The error a multi-item command ends with when ``failed`` of ``total`` items failed."""
    return CommandError(f"{failed} of {total} {what} failed", ExitCode.FAILED)
