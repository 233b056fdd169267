"""The original ``deltaglider`` package from PyPI, in its own cached virtual environment.

Compatibility tests need the real upstream reader, never this repository's code, so the
upstream release is installed with pip into a separate virtual environment and driven in
a subprocess (``upstream_reader.py``) with that environment's interpreter, in isolated
mode (``python -I``: no script directory, current directory or ``PYTHON*`` variables on
``sys.path``).

The environment is built once per upstream version and reused by every later run:

* it lives outside the checkout, in
  ``${XDG_CACHE_HOME:-~/.cache}/deltaglider-async-tests/deltaglider-<version>/``;
* it is built in a temporary sibling directory and renamed into place, so the final
  directory is either absent or complete (it holds a marker file written last);
* builders hold an exclusive ``flock`` on ``deltaglider-<version>.lock`` beside it, so two
  pytest processes starting together build it once; the second waits and reuses it;
* an entry whose interpreter no longer resolves (its base Python was removed) or whose
  marker is missing is rebuilt.

Only ``<venv>/bin/python`` is used. Console scripts (``bin/pip``, ``bin/deltaglider``)
keep the temporary build path in their shebang lines and must not be run.

:class:`UpstreamReader` keeps one ``upstream_reader.py --serve`` child per S3 server (the
interpreter and boto3 start once, each request uses a new upstream client);
:func:`read_once` runs the reader's one-shot command line.

When ``pip install`` fails, :class:`PyPIUnreachableError` is raised only if the package
index cannot be reached (the tests then skip); any other failure raises ``RuntimeError``.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import anyio

__all__ = [
    "READER_SCRIPT",
    "UPSTREAM_VERSION",
    "PyPIUnreachableError",
    "UpstreamRead",
    "UpstreamReader",
    "cache_root",
    "ensure_upstream_python",
    "read_once",
    "venv_dir",
]

UPSTREAM_VERSION = "6.2.0"
READER_SCRIPT = Path(__file__).resolve().with_name("upstream_reader.py")

_MARKER = "deltaglider-async-tests.json"
_PYPI_SIMPLE = "https://pypi.org/simple"
_PIP_TIMEOUT = 600.0
_PROBE_TIMEOUT = 10.0
_STOP_TIMEOUT = 10.0


class PyPIUnreachableError(RuntimeError):
    """``pip install`` failed and the package index does not answer: no network."""


def cache_root() -> Path:
    """``${XDG_CACHE_HOME:-~/.cache}/deltaglider-async-tests`` (XDG: relative paths ignored)."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "deltaglider-async-tests"


def venv_dir(version: str = UPSTREAM_VERSION) -> Path:
    """The cached virtual environment holding ``deltaglider==version``."""
    return cache_root() / f"deltaglider-{version}"


def _python_in(venv: Path) -> Path:
    if sys.platform == "win32":  # pragma: no cover - the tests run on POSIX
        return venv / "Scripts" / "python.exe"
    return venv / "bin" / "python"


def _usable(venv: Path, version: str) -> bool:
    """Complete (marker written last) and its interpreter still resolves."""
    try:
        marker = json.loads((venv / _MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        isinstance(marker, dict)
        and marker.get("deltaglider") == version
        and _python_in(venv).exists()  # follows the symlink to the base interpreter
    )


@contextmanager
def _exclusive_lock(path: Path) -> Iterator[None]:
    with path.open("a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def ensure_upstream_python(version: str = UPSTREAM_VERSION) -> Path:
    """The interpreter of a virtual environment with ``deltaglider==version``; build it once.

    Raises :class:`PyPIUnreachableError` when pip fails and the index is unreachable,
    ``RuntimeError`` for any other failure.
    """
    final = venv_dir(version)
    if _usable(final, version):
        return _python_in(final)
    root = final.parent
    root.mkdir(parents=True, exist_ok=True)
    with _exclusive_lock(root / f"deltaglider-{version}.lock"):
        if _usable(final, version):  # another process built it while we waited
            return _python_in(final)
        if final.exists():  # incomplete or stale: move aside, then remove
            stale = Path(tempfile.mkdtemp(prefix=f".stale-deltaglider-{version}-", dir=root))
            final.rename(stale / "venv")
            shutil.rmtree(stale, ignore_errors=True)
        build = Path(tempfile.mkdtemp(prefix=f".build-deltaglider-{version}-", dir=root))
        try:
            _build(build, version)
            build.rename(final)
        except BaseException:
            shutil.rmtree(build, ignore_errors=True)
            raise
    return _python_in(final)


def _run(args: Sequence[str | os.PathLike[str]], what: str, cwd: Path) -> str:
    result = subprocess.run(
        [os.fspath(arg) for arg in args],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=_PIP_TIMEOUT,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"{what} failed with exit status {result.returncode}:\n"
            f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
        )
    return result.stdout


def _build(venv: Path, version: str) -> None:
    # `python -m venv` run from inside a virtual environment bases the new one on the
    # base interpreter, not on the project's .venv. Every command runs isolated (-I) in
    # the build directory, so the checkout (its deltaglider/ package, its egg-info) is
    # never on sys.path.
    _run([sys.executable, "-I", "-m", "venv", venv], "creating the virtual environment", venv)
    python = _python_in(venv)
    requirement = f"deltaglider=={version}"
    try:
        _run(
            [
                python,
                "-I",
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--no-input",
                "--retries",
                "2",
                "--timeout",
                "30",
                requirement,
            ],
            f"pip install {requirement}",
            venv,
        )
    except RuntimeError as exc:
        problem = _index_problem()
        if problem is not None:
            raise PyPIUnreachableError(
                f"cannot install {requirement}: the package index is unreachable ({problem})"
            ) from exc
        raise
    installed = _run(
        [python, "-I", "-c", "import importlib.metadata as m; print(m.version('deltaglider'))"],
        "checking the installed deltaglider version",
        venv,
    ).strip()
    if installed != version:
        raise RuntimeError(f"pip installed deltaglider {installed}, expected {version}")
    marker = {"deltaglider": version, "base_python": sys.version.split()[0]}
    (venv / _MARKER).write_text(json.dumps(marker), encoding="utf-8")


def _index_problem() -> str | None:
    """Why the package index cannot be reached, or None when it answers."""
    index = os.environ.get("PIP_INDEX_URL") or _PYPI_SIMPLE
    url = f"{index.rstrip('/')}/deltaglider/"
    try:
        with urllib.request.urlopen(url, timeout=_PROBE_TIMEOUT) as response:
            response.read(1)
    except urllib.error.HTTPError:
        return None  # it answered: the network is there, the failure is something else
    except (urllib.error.URLError, OSError) as exc:
        return f"{url}: {exc}"
    return None


@dataclass(frozen=True, slots=True)
class UpstreamRead:
    """What upstream's download of one logical key gave: a sha256 or an error."""

    key: str
    sha256: str | None = None
    error: str | None = None


def _child_env(endpoint_url: str, env: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without ``AWS_*``/``DG_*``/``PYTHON*``, plus ``env``.

    The AWS config and credential files are pointed at ``os.devnull`` so that the
    developer's ``~/.aws`` is never read.
    """
    child = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AWS_", "DG_", "PYTHON"))
    }
    child["AWS_CONFIG_FILE"] = os.devnull
    child["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    child["AWS_EC2_METADATA_DISABLED"] = "true"
    child.update(env)
    child["AWS_ENDPOINT_URL"] = endpoint_url
    return child


def _parse_results(document: object, keys: Sequence[str]) -> dict[str, UpstreamRead]:
    if not isinstance(document, dict) or document.get("deltaglider") != UPSTREAM_VERSION:
        raise RuntimeError(f"unexpected answer from the upstream reader: {document!r}")
    results = {
        key: UpstreamRead(key=key, sha256=outcome.get("sha256"), error=outcome.get("error"))
        for key, outcome in document["results"].items()
    }
    missing = [key for key in keys if key not in results]
    if missing:
        raise RuntimeError(f"the upstream reader returned no result for {missing}")
    return results


def read_once(
    python: Path,
    *,
    endpoint_url: str,
    env: Mapping[str, str],
    bucket: str,
    keys: Sequence[str],
    timeout: float = 180.0,
) -> dict[str, UpstreamRead]:
    """Run ``upstream_reader.py`` once (one-shot mode) on ``keys`` of ``bucket``."""
    with tempfile.TemporaryDirectory(prefix="deltaglider-upstream-") as workdir:
        result = subprocess.run(
            [
                os.fspath(python),
                "-I",
                os.fspath(READER_SCRIPT),
                "--endpoint-url",
                endpoint_url,
                "--bucket",
                bucket,
                "--expect-version",
                UPSTREAM_VERSION,
            ],
            input=json.dumps(list(keys)).encode(),
            capture_output=True,
            env=_child_env(endpoint_url, env),
            cwd=workdir,
            timeout=timeout,
            check=False,
        )
    if result.returncode != 0:
        stderr = result.stderr.decode(errors="replace")
        raise RuntimeError(
            f"the upstream reader exited with status {result.returncode}:\n{stderr[-4000:]}"
        )
    return _parse_results(json.loads(result.stdout), keys)


class UpstreamReader:
    """A long-lived ``upstream_reader.py --serve`` child for one S3 endpoint.

    Starting the upstream interpreter (boto3, deltaglider) costs about a second; one child
    per server answers every test. Its stderr goes to a log file whose tail is quoted in
    errors. ``read`` blocks; ``aread`` runs it in a worker thread and kills the child when
    a request takes more than ``timeout`` seconds. ``close()`` ends the child and removes
    its directory.
    """

    def __init__(
        self,
        python: Path,
        *,
        endpoint_url: str,
        env: Mapping[str, str],
        timeout: float = 180.0,
    ) -> None:
        self._endpoint_url = endpoint_url
        self._timeout = timeout
        self._workdir = Path(tempfile.mkdtemp(prefix="deltaglider-upstream-"))
        self._log_path = self._workdir / "stderr.log"
        self._lock = threading.Lock()
        with self._log_path.open("wb") as log:
            self._process = subprocess.Popen(
                [
                    os.fspath(python),
                    "-I",
                    os.fspath(READER_SCRIPT),
                    "--endpoint-url",
                    endpoint_url,
                    "--serve",
                    "--expect-version",
                    UPSTREAM_VERSION,
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                env=_child_env(endpoint_url, env),
                cwd=self._workdir,
            )

    @property
    def alive(self) -> bool:
        """True while the child runs."""
        return self._process.poll() is None

    def _failure(self, problem: str) -> RuntimeError:
        try:
            tail = self._log_path.read_text(encoding="utf-8", errors="replace")[-4000:]
        except OSError as exc:
            tail = f"(no log: {exc})"
        return RuntimeError(f"upstream reader for {self._endpoint_url}: {problem}\n{tail}")

    def read(self, bucket: str, keys: Sequence[str]) -> dict[str, UpstreamRead]:
        """Download ``keys`` of ``bucket`` with upstream's ``download()``; one result each."""
        stdin, stdout = self._process.stdin, self._process.stdout
        assert stdin is not None
        assert stdout is not None
        with self._lock:
            try:
                stdin.write(json.dumps({"bucket": bucket, "keys": list(keys)}).encode() + b"\n")
                stdin.flush()
            except OSError as exc:
                raise self._failure(f"cannot send the request ({exc})") from exc
            line = stdout.readline()
        if not line:
            self._process.wait(_STOP_TIMEOUT)
            raise self._failure(f"exited with status {self._process.returncode}")
        return _parse_results(json.loads(line), keys)

    async def aread(self, bucket: str, keys: Sequence[str]) -> dict[str, UpstreamRead]:
        """:meth:`read` in a worker thread; the child is killed after ``timeout`` seconds."""
        timeout = self._timeout
        try:
            with anyio.fail_after(timeout):
                return await anyio.to_thread.run_sync(
                    functools.partial(self.read, bucket, keys), abandon_on_cancel=True
                )
        except TimeoutError:
            self.close()
            raise self._failure(f"no answer within {timeout:.0f} s") from None

    def close(self) -> None:
        """End the child (EOF, then SIGKILL after a bound) and remove its directory."""
        process = self._process
        if process.poll() is None:
            if process.stdin is not None:
                with contextlib.suppress(OSError):
                    process.stdin.close()
            try:
                process.wait(_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(_STOP_TIMEOUT)
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        shutil.rmtree(self._workdir, ignore_errors=True)
