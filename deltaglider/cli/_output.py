"""What the command prints: ``aws s3``-style lines, ``--json`` documents, a progress bar.

* Lines for people go to stdout (``upload: ./a.zip to s3://b/a.zip (delta, 2.1% of
  14.3 MiB)``); failures to stderr (``upload failed: ./a.zip to s3://b/a.zip: <reason>``).
  ``--quiet`` keeps only failures and data (listings).
* ``--json`` replaces the lines with one JSON document on stdout.
* The progress bar (rich) is drawn on stderr, and only when stderr is a terminal and the
  work has more than one item; while it is shown every line goes through it so the two
  never garble each other. Nothing here ever writes colour or escape codes to a pipe.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

import click

from deltaglider_async import UploadSummary

from ._engine import Progress, ProgressCallback
from ._errors import describe, items_failed

if TYPE_CHECKING:
    from rich.console import Console

_UNITS = ("KiB", "MiB", "GiB", "TiB", "PiB", "EiB")


def human_size(size: int | float) -> str:
    """A size as ``aws s3 ls --human-readable`` prints it: ``1 Byte``, ``12 Bytes``,
    ``14.3 MiB``."""
    value = float(size)
    if value == 1:
        return "1 Byte"
    if abs(value) < 1024:
        return f"{int(value)} Bytes"
    for index, unit in enumerate(_UNITS):
        scale = 1024 ** (index + 1)
        if round(abs(value) / scale) < 1024 or unit == _UNITS[-1]:
            return f"{value / scale:.1f} {unit}"
    raise AssertionError("unreachable")


def local_time(moment: datetime) -> str:
    """``YYYY-MM-DD HH:MM:SS`` in the local time zone, as ``aws s3 ls`` prints dates."""
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def stored_as(summary: UploadSummary) -> str:
    """``reference`` (the file became its directory's reference), ``delta`` or ``direct``."""
    if summary.action == "create_reference":
        return "reference"
    return "delta" if summary.is_delta else "direct"


def stored_detail(summary: UploadSummary) -> str:
    """How a file was stored: ``delta, 2.1% of 14.3 MiB``, ``reference, 14.3 MiB``..."""
    original = human_size(summary.original_size)
    if summary.action == "create_reference":
        return f"reference, {original}"
    if summary.is_delta:
        share = summary.stored_size / summary.original_size * 100 if summary.original_size else 0
        return f"delta, {share:.1f}% of {original}"
    return f"direct, {original}"


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


class Output:
    """The command's printer; one per invocation."""

    def __init__(self, *, json_mode: bool = False, quiet: bool = False) -> None:
        self.json_mode = json_mode
        self.quiet = quiet
        self._console: Console | None = None

    def line(self, text: str) -> None:
        """A line of data (a listing, a figure): printed unless ``--json``."""
        if not self.json_mode:
            self._stdout(text)

    def info(self, text: str) -> None:
        """A line about what was done: printed unless ``--quiet`` or ``--json``."""
        if not self.quiet and not self.json_mode:
            self._stdout(text)

    def problem(self, text: str) -> None:
        """A line about an item that failed: always printed, on stderr."""
        if self._console is not None:
            self._console.print(text, markup=False, highlight=False, emoji=False, soft_wrap=True)
        else:
            click.echo(text, err=True)

    def document(self, data: Any) -> None:
        """The ``--json`` document, on stdout."""
        click.echo(json.dumps(data, indent=2, default=_json_default, ensure_ascii=False))

    def _stdout(self, text: str) -> None:
        if self._console is not None and _isatty(sys.stdout):
            # stdout and the bar share the terminal: print above the bar.
            self._console.print(text, markup=False, highlight=False, emoji=False, soft_wrap=True)
        else:
            click.echo(text)

    @contextmanager
    def progress(self, total: int | None, label: str) -> Iterator[ProgressCallback | None]:
        """A progress callback drawing a bar for ``total`` items (None: not known yet, each
        event tells), or None when no bar is shown."""
        if self.quiet or (total is not None and total < 2) or not _isatty(sys.stderr):
            yield None
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TaskProgressColumn,
            TextColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as Bar

        console = Console(file=sys.stderr)
        if not console.is_terminal:
            yield None
            return
        bar = Bar(
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[size]}"),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        )
        transferred = 0
        with bar:
            task = bar.add_task(label, total=total, size="")
            self._console = console

            def update(event: Progress) -> None:
                nonlocal transferred
                transferred += event.bytes
                bar.update(
                    task, total=event.total, completed=event.done, size=human_size(transferred)
                )

            try:
                yield update
            finally:
                self._console = None


@dataclass(slots=True)
class Outcome:
    """One item of a command: what was (or, with ``--dryrun``, would be) done to it."""

    action: str
    source: str
    destination: str = ""
    error: BaseException | None = None
    summary: UploadSummary | None = None
    size: int | None = None
    dryrun: bool = False
    detail: str = ""

    @property
    def ok(self) -> bool:
        """True unless the item failed."""
        return self.error is None

    def line(self) -> str:
        """``upload: ./a.zip to s3://b/a.zip (delta, 2.1% of 14.3 MiB)``."""
        prefix = "(dryrun) " if self.dryrun else ""
        target = f" to {self.destination}" if self.destination else ""
        if self.summary is not None:
            detail = f" ({stored_detail(self.summary)})"
        else:
            detail = f" ({self.detail})" if self.detail else ""
        return f"{prefix}{self.action}: {self.source}{target}{detail}"

    def failure_line(self) -> str:
        """``upload failed: ./a.zip to s3://b/a.zip: <reason>``."""
        target = f" to {self.destination}" if self.destination else ""
        reason = describe(self.error) if self.error is not None else "failed"
        return f"{self.action} failed: {self.source}{target}: {reason}"

    def record(self) -> dict[str, Any]:
        """The item in ``--json`` output."""
        record: dict[str, Any] = {
            "action": self.action,
            "source": self.source,
            "destination": self.destination or None,
            "ok": self.ok,
            "dryrun": self.dryrun,
        }
        if self.error is not None:
            record["error"] = describe(self.error)
            record["error_type"] = type(self.error).__name__
        if self.summary is not None:
            record.update(
                stored_as=stored_as(self.summary),
                original_size=self.summary.original_size,
                stored_size=self.summary.stored_size,
                operation=self.summary.action,
            )
        if self.size is not None:
            record["size"] = self.size
        if self.detail:
            record["detail"] = self.detail
        return record


@dataclass(slots=True)
class Reporter:
    """Collects the outcomes of a command, prints them, and ends it with the right status."""

    out: Output
    command: str
    outcomes: list[Outcome] = field(default_factory=list)

    def add(self, outcome: Outcome) -> None:
        """Record and print one outcome."""
        self.outcomes.append(outcome)
        if outcome.ok:
            self.out.info(outcome.line())
        else:
            self.out.problem(outcome.failure_line())

    def totals(self) -> dict[str, int]:
        """Counts and byte totals of the recorded outcomes."""
        done = [o for o in self.outcomes if o.ok and not o.dryrun]
        stored = [o.summary for o in done if o.summary is not None]
        original = sum(s.original_size for s in stored)
        kept = sum(s.stored_size for s in stored)
        return {
            "total": len(self.outcomes),
            "succeeded": sum(1 for o in self.outcomes if o.ok),
            "failed": sum(1 for o in self.outcomes if not o.ok),
            "stored_files": len(stored),
            "original_bytes": original,
            "stored_bytes": kept,
            "saved_bytes": original - kept,
            "downloaded_bytes": sum(o.size or 0 for o in done if o.action == "download"),
        }

    def summary_lines(self) -> list[str]:
        """``Stored 5 files: 71.5 MiB as 15.2 MiB (saved 56.3 MiB, 78.7%)`` and the like."""
        totals = self.totals()
        lines = []
        if totals["stored_files"] >= 2:
            original, kept = totals["original_bytes"], totals["stored_bytes"]
            share = (original - kept) / original * 100 if original else 0.0
            lines.append(
                f"Stored {totals['stored_files']} files: {human_size(original)} as "
                f"{human_size(kept)} (saved {human_size(original - kept)}, {share:.1f}%)"
            )
        downloads = [o for o in self.outcomes if o.ok and not o.dryrun and o.action == "download"]
        if len(downloads) >= 2:
            lines.append(
                f"Downloaded {len(downloads)} files: {human_size(totals['downloaded_bytes'])}"
            )
        return lines

    def finish(self, what: str, **extra: Any) -> None:
        """Print the summary (or the JSON document); fail with exit code 1 if items failed."""
        totals = self.totals()
        if self.out.json_mode:
            self.out.document(
                {
                    "command": self.command,
                    **extra,
                    "results": [o.record() for o in self.outcomes],
                    "summary": totals,
                }
            )
        else:
            for text in self.summary_lines():
                self.out.info(text)
        if totals["failed"]:
            raise items_failed(totals["failed"], totals["total"], what)
