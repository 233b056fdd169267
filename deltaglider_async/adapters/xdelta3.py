"""The diff adapter: xdelta3 run as a child process, bounded in number, killed on cancel.

Facts about xdelta3 3.0.11 this module relies on (measured, see the tests):

- ``-B`` accepts 524288 (512 KiB) to 2147483648 (2 GiB) and is rounded up to a power of
  two internally; that much memory is reserved even for a tiny reference (``-B 2 GiB``
  with a 100 KB reference took 1 GB and 2.8 s). So the window is sized from the
  reference: the next power of two, at least 512 KiB, at most ``max_window`` (rounded
  down to a power of two so the cap really bounds memory).
- A window smaller than the reference ruins deltas of moved data (a 20 MiB file with
  swapped halves: 124 bytes with a 32 MiB window, 20 MB with 8 MiB).
- ``-D`` keeps gzip payloads byte-exact; ``-A`` drops the application header; outputs go
  to an explicit path. The ``XDELTA`` environment variable injects extra arguments into
  xdelta3, so it is removed from the child's environment.
- Corrupted or truncated deltas and wrong references exit with status 1 (``XD3_INVALID_INPUT``,
  ``target window checksum mismatch``, ``lzma decoding error``...), sometimes after writing
  part of the output. A delta cut exactly at a window boundary (every 8 MiB of target)
  decodes with status 0 to a shorter output: VCDIFF has no end marker, so the caller must
  verify the SHA-256 of what it decoded.

What the installed binary can do differs between builds: upstream 3.2.0 is built without
the ``fgk`` secondary compressor (``-S fgk`` encodes fail, and fgk deltas made by 3.0.11
do not decode: "unavailable secondary compressor"). The default settings (no ``-S``:
xdelta3's own default) work with 3.0.11 and 3.2.x in both directions. So at first use the
adapter reads the version (``xdelta3 -V``) and, when a secondary compressor is
configured, encodes a few bytes with it; an unusable setting is a
:class:`DiffToolUnsupportedError` naming the version, raised before any data is touched.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import Final

import anyio
import anyio.to_thread
from anyio.abc import Process
from anyio.lowlevel import RunVar

from .._config import DEFAULT_MAX_WINDOW
from .._errors import (
    DiffError,
    DiffToolFailedError,
    DiffToolNotFoundError,
    DiffToolUnsupportedError,
    InvalidArgumentError,
    LocalFileError,
)
from ..ports.logger import LoggerPort

__all__ = [
    "INSTALL_HINT",
    "MAX_WINDOW",
    "MIN_WINDOW",
    "XDelta3Diff",
    "source_window",
]

INSTALL_HINT: Final = (
    "xdelta3 is not installed: apt-get install -y xdelta3 (Debian/Ubuntu), "
    "brew install xdelta (macOS), or put xdelta3 on PATH"
)
MIN_WINDOW: Final = 512 * 1024
MAX_WINDOW: Final = 2 * 1024 * 1024 * 1024
_SECONDARIES: Final = frozenset({"djw", "lzma", "fgk", "none"})
_STDERR_TAIL: Final = 2048
_VERSION_RE: Final = re.compile(rb"Xdelta version (\S+)")
_PROBE_TIMEOUT: Final = 30.0
# What xdelta3 says when a delta needs a secondary compressor this build lacks.
_MISSING_SECONDARY: Final = ("unavailable secondary compressor", "not compiled secondary")
_REAP_TIMEOUT: Final = 5.0


def _pow2_floor(value: int) -> int:
    return 1 << (value.bit_length() - 1)


def source_window(reference_size: int, max_window: int = DEFAULT_MAX_WINDOW) -> int:
    """The ``-B`` value for a reference of ``reference_size`` bytes.

    The smallest power of two ≥ the reference size, at least :data:`MIN_WINDOW`, at most
    ``max_window`` rounded down to a power of two (and never above :data:`MAX_WINDOW`).
    """
    if reference_size < 0:
        raise InvalidArgumentError(f"reference size must be >= 0, got {reference_size}")
    cap = _pow2_floor(min(max(max_window, MIN_WINDOW), MAX_WINDOW))
    window = MIN_WINDOW
    while window < reference_size and window < cap:
        window *= 2
    return min(window, cap)


def _path_arg(path: Path | str) -> str:
    """A path as an argument xdelta3 cannot mistake for an option."""
    text = os.fspath(path)
    return os.path.join(".", text) if text.startswith("-") else text


def _remove_quietly(path: Path) -> None:
    # Best effort: a failure here must not hide the error that made us clean up.
    with contextlib.suppress(OSError):
        path.unlink()


#: Operating-system errors xdelta3 reports about its files: a local problem, never a
#: sign that a delta or reference is corrupted.
_LOCAL_ERRNOS: Final = (
    errno.ENOSPC,
    errno.EDQUOT,
    errno.EACCES,
    errno.EPERM,
    errno.EROFS,
    errno.ENAMETOOLONG,
    errno.EFBIG,
    errno.EISDIR,
    errno.EIO,
)


def _local_failure(message: str, out: Path) -> LocalFileError | None:
    """A :class:`LocalFileError` when xdelta3 failed on a local file, else None."""
    for number in _LOCAL_ERRNOS:
        if os.strerror(number) in message:
            return LocalFileError(
                number, f"xdelta3 could not write {str(out)!r}: {os.strerror(number)}"
            )
    return None


def _describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with status {returncode}"


async def _kill_and_reap(process: Process) -> None:
    """SIGKILL the child if it still runs and wait for it, for at most a few seconds."""
    with anyio.CancelScope(shield=True):
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
        with anyio.move_on_after(_REAP_TIMEOUT):
            await process.aclose()


def _version_probe(binary: str) -> subprocess.CompletedProcess[bytes]:
    """``xdelta3 -V`` in a scratch directory (a wrapper that writes files writes none here)."""
    with tempfile.TemporaryDirectory(prefix="deltaglider-xdelta3-probe-") as tmp:
        return subprocess.run(
            [binary, "-V"],
            cwd=tmp,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=_PROBE_TIMEOUT,
            check=False,
        )


def _encode_probe(binary: str, secondary: str) -> subprocess.CompletedProcess[bytes]:
    """Encode a few bytes with ``-S secondary`` in a scratch directory (blocking)."""
    with tempfile.TemporaryDirectory(prefix="deltaglider-xdelta3-probe-") as tmp:
        source, target, out = (Path(tmp) / name for name in ("source", "target", "out"))
        source.write_bytes(b"deltaglider probe " * 64)
        target.write_bytes(b"deltaglider probe, changed " * 64)
        args = [binary, "-e", "-S", secondary, "-f", "-s", str(source), str(target), str(out)]
        return subprocess.run(
            args,
            cwd=tmp,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=_PROBE_TIMEOUT,
            check=False,
        )


class XDelta3Diff:
    """:class:`~deltaglider_async.ports.DiffPort` implemented by the ``xdelta3`` binary.

    ``level`` (0–9) and ``secondary`` (``djw``, ``lzma``, ``fgk``, ``none``; ``None`` keeps
    xdelta3's default) choose the compression; ``max_window`` caps the source window and
    so the memory of each child; at most ``max_processes`` children run at once per event
    loop. ``binary`` is a path or command name; by default ``xdelta3`` is looked up on
    ``PATH`` at first use. The constructor does no I/O.
    """

    def __init__(
        self,
        level: int = 9,
        secondary: str | None = None,
        max_window: int = DEFAULT_MAX_WINDOW,
        max_processes: int = 2,
        binary: str | os.PathLike[str] | None = None,
        logger: LoggerPort | None = None,
    ) -> None:
        if isinstance(level, bool) or not 0 <= level <= 9:
            raise InvalidArgumentError(f"xdelta3 level must be 0..9, got {level!r}")
        if secondary is not None and secondary not in _SECONDARIES:
            raise InvalidArgumentError(
                f"xdelta3 secondary compressor must be one of {sorted(_SECONDARIES)} or None, "
                f"got {secondary!r}"
            )
        if max_window < MIN_WINDOW:
            raise InvalidArgumentError(
                f"max_window must be at least {MIN_WINDOW} bytes (xdelta3's minimum), "
                f"got {max_window}"
            )
        if max_processes < 1:
            raise InvalidArgumentError(f"max_processes must be >= 1, got {max_processes}")
        self._logger = logger
        self._level = level
        self._secondary = secondary
        self._max_window = max_window
        self._max_processes = max_processes
        self._binary_arg = None if binary is None else os.fspath(binary)
        self._binary: str | None = None
        # One limiter per event loop: anyio limiters belong to the loop they were made in.
        self._limiter_var: RunVar[anyio.CapacityLimiter] = RunVar(
            f"deltaglider-xdelta3-limiter-{id(self)}"
        )
        self._running = 0
        self._version: str | None = None
        self._checked_binary: str | None = None
        self._unsupported: DiffToolUnsupportedError | None = None

    @property
    def version(self) -> str | None:
        """The version the binary reported at first use (``"3.0.11"``), else ``None``."""
        return self._version

    @property
    def running(self) -> int:
        """How many xdelta3 children of this adapter are alive right now."""
        return self._running

    @property
    def max_processes(self) -> int:
        """The bound on concurrent children (per event loop)."""
        return self._max_processes

    def binary(self) -> str:
        """The path of the xdelta3 executable, located once; raise if it is missing."""
        if self._binary is None:
            self._binary = self._locate()
        return self._binary

    def _locate(self) -> str:
        wanted = self._binary_arg
        if wanted is None:
            found = shutil.which("xdelta3")
            if found is None:
                raise DiffToolNotFoundError(f"{INSTALL_HINT} (not found on PATH)")
            return found
        if os.sep in wanted or (os.altsep is not None and os.altsep in wanted):
            if os.path.isfile(wanted) and os.access(wanted, os.X_OK):
                return wanted
            raise DiffToolNotFoundError(f"{INSTALL_HINT} ({wanted} is not an executable file)")
        found = shutil.which(wanted)
        if found is None:
            raise DiffToolNotFoundError(f"{INSTALL_HINT} ({wanted} not found on PATH)")
        return found

    def window_for(self, reference_size: int) -> int:
        """The ``-B`` value this adapter uses for a reference of ``reference_size`` bytes."""
        return source_window(reference_size, self._max_window)

    def _compression_args(self) -> list[str]:
        args = [f"-{self._level}"]
        if self._secondary is not None:
            args += ["-S", self._secondary]
        return args

    def describe_encode(
        self,
        reference_name: str,
        target_name: str,
        delta_name: str,
        *,
        reference_size: int | None = None,
    ) -> str:
        """The command line recorded in ``dg-delta-cmd`` (descriptive; never executed).

        ``-B`` is included when ``reference_size`` is given, since the window depends on it.
        """
        parts = ["xdelta3", "-e", *self._compression_args(), "-D", "-A"]
        if reference_size is not None:
            parts += ["-B", str(self.window_for(reference_size))]
        parts += ["-s", reference_name, target_name, delta_name]
        return " ".join(parts)

    async def encode(self, reference: Path, target: Path, out: Path) -> None:
        """Write the VCDIFF delta of ``target`` against ``reference`` to ``out``.

        Raises :class:`DiffError` when xdelta3 fails (``out`` is then removed) and
        :class:`DiffToolNotFoundError` when it is not installed.
        """
        binary = self.binary()
        window = await self._window(reference)
        args = [
            binary,
            "-e",
            *self._compression_args(),
            "-D",
            "-A",
            "-f",
            "-B",
            str(window),
            "-s",
            _path_arg(reference),
            _path_arg(target),
            _path_arg(out),
        ]
        await self._run("encode", args, out)

    async def decode(self, reference: Path, delta: Path, out: Path) -> None:
        """Write ``delta`` applied to ``reference`` to ``out``.

        Raises :class:`DiffError` for a corrupted or truncated delta or a wrong reference
        (``out`` is then removed). A delta truncated at a window boundary can decode
        without error to a shorter output: callers verify the SHA-256 of ``out``.
        """
        binary = self.binary()
        window = await self._window(reference)
        args = [
            binary,
            "-d",
            "-D",
            "-R",
            "-f",
            "-B",
            str(window),
            "-s",
            _path_arg(reference),
            _path_arg(delta),
            _path_arg(out),
        ]
        await self._run("decode", args, out)

    async def _check(self, binary: str) -> None:
        """Check once that ``binary`` can do what is configured (run under the limiter,
        so the probe never adds a child beyond ``max_processes``).

        Raises :class:`DiffToolUnsupportedError` (every time, once found) when the
        configured secondary compressor does not work with the installed build.
        """
        if self._checked_binary != binary:
            self._version = await self._read_version(binary)
            self._unsupported = await self._probe_secondary(binary)
            self._checked_binary = binary
        if self._unsupported is not None:
            raise self._unsupported

    async def _read_version(self, binary: str) -> str | None:
        try:
            done = await anyio.to_thread.run_sync(_version_probe, binary)
        except (OSError, subprocess.TimeoutExpired):
            return None
        match = _VERSION_RE.search(done.stdout + done.stderr)
        return None if match is None else match.group(1).decode("ascii", "replace")

    async def _probe_secondary(self, binary: str) -> DiffToolUnsupportedError | None:
        secondary = self._secondary
        if secondary is None or secondary == "none":
            return None
        try:
            done = await anyio.to_thread.run_sync(_encode_probe, binary, secondary)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return DiffToolUnsupportedError(
                f"xdelta3 {self._version or '(unknown version)'} at {binary} could not be "
                f"checked for the secondary compressor {secondary!r}: {exc}"
            )
        if done.returncode == 0:
            return None
        said = done.stderr.decode("utf-8", "replace").strip() or "(no output)"
        return DiffToolUnsupportedError(
            f"xdelta3 {self._version or '(unknown version)'} at {binary} cannot encode with "
            f"the secondary compressor {secondary!r} ({said}): configure xdelta_secondary "
            "as None (the default), 'djw', 'lzma' or 'none', or install an xdelta3 built "
            f"with {secondary!r} (Debian's 3.0.11 has fgk; upstream 3.2.0 does not)"
        )

    async def _window(self, reference: Path) -> int:
        try:
            size = (await anyio.Path(reference).stat()).st_size
        except OSError as exc:
            raise DiffError(f"xdelta3 reference {reference} is not readable: {exc}") from exc
        return self.window_for(size)

    def _limiter(self) -> anyio.CapacityLimiter:
        try:
            return self._limiter_var.get()
        except LookupError:
            limiter = anyio.CapacityLimiter(self._max_processes)
            self._limiter_var.set(limiter)
            return limiter

    async def _run(self, operation: str, args: list[str], out: Path) -> None:
        async with self._limiter():
            try:
                await self._check(args[0])
                await self._run_child(operation, args)
            except DiffError as exc:
                _remove_quietly(out)
                local = _local_failure(str(exc), out)
                if local is not None:
                    raise local from exc
                raise
            except BaseException:
                _remove_quietly(out)
                raise

    async def _run_child(self, operation: str, args: list[str]) -> None:
        if self._logger is not None:
            self._logger.debug("xdelta3 " + operation, command=shlex.join(args))
        # XDELTA would inject arbitrary extra options into every run.
        env = {key: value for key, value in os.environ.items() if key != "XDELTA"}
        try:
            # Shielded: a cancellation landing while asyncio connects the pipes of a child
            # it has already started would leave that child killed but never waited for.
            # Spawning is quick; cancellation is honoured at the next await, below.
            with anyio.CancelScope(shield=True):
                process = await anyio.open_process(
                    args,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    env=env,
                )
        except (FileNotFoundError, PermissionError) as exc:
            self._binary = None  # the binary vanished since it was located: look again
            raise DiffToolNotFoundError(f"{INSTALL_HINT} (cannot run {args[0]}: {exc})") from exc
        except OSError as exc:
            raise DiffToolFailedError(f"xdelta3 {operation} could not start: {exc}") from exc

        self._running += 1
        tail = bytearray()
        try:
            stderr = process.stderr
            if stderr is not None:
                async for chunk in stderr:
                    tail += chunk
                    del tail[:-_STDERR_TAIL]
            returncode = await process.wait()
            await process.aclose()
        except BaseException:
            await _kill_and_reap(process)
            raise
        finally:
            self._running -= 1

        if returncode != 0:
            message = tail.decode("utf-8", errors="replace").strip() or "(no output)"
            if any(said in message for said in _MISSING_SECONDARY):
                raise DiffToolUnsupportedError(
                    f"xdelta3 {self._version or '(unknown version)'} cannot {operation}: the "
                    f"delta needs a secondary compressor this build lacks ({message}); use "
                    "an xdelta3 built with it (Debian's 3.0.11 has fgk; upstream 3.2.0 "
                    "does not)"
                )
            if returncode < 0:
                # Killed (the OOM killer, a signal from outside): nothing about the data.
                raise DiffToolFailedError(
                    f"xdelta3 {operation} {_describe_exit(returncode)}: {message}"
                )
            raise DiffError(
                f"xdelta3 {operation} {_describe_exit(returncode)}: {message}",
            )
