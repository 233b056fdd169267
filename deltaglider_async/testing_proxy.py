"""An HTTP proxy for tests and benchmarks: fixed latency and injected S3 faults.

The kernels these tests run on often lack ``netem``, so latency and failures between a
client and a local S3 server are made by a small HTTP/1.1 proxy on 127.0.0.1. For every
request it can

* wait a fixed ``delay`` before forwarding it (a per-request round trip to a far region);
* for a share ``fault_rate`` of the requests, chosen by a random generator seeded with
  ``seed`` (the same seed gives the same sequence of decisions), answer instead of the
  server, picking one of ``faults``:

  - ``"503"``: ``503 SlowDown`` with an S3 XML error body (throttling),
  - ``"429"``: ``429 TooManyRequests`` with an S3 XML error body (throttling as
    Cloudflare R2, Scaleway and others answer it),
  - ``"500"``: ``500 InternalError`` with an S3 XML error body,
  - ``"drop"``: close the connection without any answer, the request never forwarded,
  - ``"drop-response"``: forward the request, then close the connection instead of
    relaying the answer (the server did the work; the client never hears of it),
  - ``"truncate"``: forward the request and relay the answer's head and the first half
    of its body, then close the connection (a download cut mid-body: ``Response payload
    is not completed``). Answers without a body, or with a chunked one, pass whole,
  - ``"no-token"``: forward, and remove ``NextContinuationToken`` from a truncated
    ListObjectsV2 answer (a bug of older Ceph RGW and several SeaweedFS releases),
  - ``"slowdown-keys"``: answer a DeleteObjects request with ``200 OK`` and a per-key
    ``SlowDown`` error for every key, without forwarding it (what AWS does under load;
    the HTTP status says success, so the client's retry logic never sees it).

The response-shaping kinds (``truncate``, ``no-token``) and ``slowdown-keys`` leave other
requests alone (forwarded unchanged), though they are counted as injected.

``503``, ``429``, ``500`` and ``drop`` never reach the server, like a throttled or failed
request on AWS, so a client that retries them must end up with exactly what it would have
without faults.

:class:`FaultProxy` runs in a background thread with its own event loop, so blocking and
async tests (and code under test running on any loop) can share it::

    from deltaglider_async.testing import start_local_s3
    from deltaglider_async.testing_proxy import FaultProxy

    with start_local_s3("moto") as s3, FaultProxy(s3.endpoint_url, delay=0.02) as proxy:
        config = proxy.wrap(s3).config()      # clients now talk through the proxy
        ...
        print(proxy.stats().requests["HEAD"])  # requests seen, by method

:class:`ProxyProcess` runs the same proxy in a child process (``python -m
deltaglider_async.testing_proxy``), so that a benchmark's own CPU use does not slow the
proxy down and vice versa. This module is a testing utility; the library never imports it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import random
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Final, Literal, Self, cast
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from .testing import LocalS3

__all__ = [
    "FAULT_KINDS",
    "FaultKind",
    "FaultProxy",
    "ProxyProcess",
    "ProxyRequest",
    "ProxyStats",
    "operation_of",
]

FaultKind = Literal[
    "503", "429", "500", "drop", "drop-response", "truncate", "no-token", "slowdown-keys"
]
FAULT_KINDS: Final[tuple[FaultKind, ...]] = (
    "503",
    "429",
    "500",
    "drop",
    "drop-response",
    "truncate",
    "no-token",
    "slowdown-keys",
)
DEFAULT_FAULTS: Final[tuple[FaultKind, ...]] = ("503", "500", "drop")

_MAX_HEAD: Final = 64 * 1024
_CHUNK: Final = 256 * 1024
_START_TIMEOUT: Final = 10.0
_STOP_TIMEOUT: Final = 10.0
_NO_BODY_STATUSES: Final = frozenset({204, 304})
_ERRORS: Final[Mapping[str, tuple[int, str, str, str]]] = {
    "503": (503, "Service Unavailable", "SlowDown", "Please reduce your request rate."),
    "429": (429, "Too Many Requests", "TooManyRequests", "Reduce your request rate."),
    "500": (
        500,
        "Internal Server Error",
        "InternalError",
        "We encountered an internal error. Please try again.",
    ),
}


@dataclass(frozen=True, slots=True)
class ProxyRequest:
    """What a fault filter sees of a request: method, target (path and query), headers.

    Header names are lower-case.
    """

    method: str
    target: str
    headers: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class ProxyStats:
    """Counters of a proxy since it started (or since :meth:`FaultProxy.reset_stats`)."""

    #: Requests received, by HTTP method (faulted ones included).
    requests: Counter[str]
    #: Faults injected, by kind.
    faults: Counter[str]
    #: Requests received, by S3 operation (:func:`operation_of`: ``ListObjectsV2``...).
    operations: Counter[str] = dataclasses.field(default_factory=Counter)
    #: Requests received, by bucket and S3 operation (``"releases ListObjectsV2"``).
    bucket_operations: Counter[str] = dataclasses.field(default_factory=Counter)

    @property
    def total_requests(self) -> int:
        """Requests received."""
        return sum(self.requests.values())

    @property
    def total_faults(self) -> int:
        """Faults injected."""
        return sum(self.faults.values())


def operation_of(method: str, target: str, headers: Mapping[str, str] | None = None) -> str:
    """The S3 operation of a path-style request (``ListObjectsV2``, ``HeadObject``...).

    Operations this proxy does not tell apart are named by their HTTP method.
    """
    path, _, query = target.partition("?")
    params = {part.partition("=")[0] for part in query.split("&") if part}
    has_key = "/" in path.strip("/")
    if method == "GET":
        if "list-type" in params:
            return "ListObjectsV2"
        if "uploads" in params:
            return "ListMultipartUploads"
        return "GetObject" if has_key else "ListObjects"
    if method == "HEAD":
        return "HeadObject" if has_key else "HeadBucket"
    if method == "PUT" and has_key:
        if "partNumber" in params:
            return "UploadPart"
        return "CopyObject" if headers and "x-amz-copy-source" in headers else "PutObject"
    if method == "POST" and "delete" in params:
        return "DeleteObjects"
    if method == "DELETE" and has_key:
        return "AbortMultipartUpload" if "uploadId" in params else "DeleteObject"
    return method


class _ClosedByPeer(Exception):
    """The other side closed the connection where a message was expected."""


@dataclass(slots=True)
class _Message:
    start_line: str
    headers: list[tuple[str, str]]

    def get(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None

    def encode(self, *, drop: Iterable[str] = ()) -> bytes:
        skip = set(drop)
        lines = [self.start_line]
        lines += [f"{k}: {v}" for k, v in self.headers if k.lower() not in skip]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    @property
    def chunked(self) -> bool:
        return "chunked" in (self.get("transfer-encoding") or "").lower()

    @property
    def content_length(self) -> int | None:
        value = self.get("content-length")
        return None if value is None else int(value)

    @property
    def wants_close(self) -> bool:
        return (self.get("connection") or "").lower() == "close"


async def _read_message(reader: asyncio.StreamReader) -> _Message | None:
    """The start line and headers of the next message; None on a clean end of stream."""
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            return None
        raise _ClosedByPeer("connection closed inside a message head") from exc
    except asyncio.LimitOverrunError as exc:
        raise _ClosedByPeer("message head too large") from exc
    lines = raw.decode("latin-1").split("\r\n")
    headers = []
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers.append((name.strip(), value.strip()))
    return _Message(lines[0], headers)


async def _pipe_exact(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter | None, length: int
) -> None:
    remaining = length
    while remaining:
        data = await reader.read(min(_CHUNK, remaining))
        if not data:
            raise _ClosedByPeer(f"connection closed with {remaining} body bytes missing")
        remaining -= len(data)
        if writer is not None:
            writer.write(data)
            await writer.drain()


async def _pipe_chunked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter | None) -> None:
    while True:
        try:
            line = await reader.readuntil(b"\r\n")
        except asyncio.IncompleteReadError as exc:
            raise _ClosedByPeer("connection closed inside a chunked body") from exc
        if writer is not None:
            writer.write(line)
        size = int(line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            # Trailers, up to an empty line.
            while True:
                trailer = await reader.readuntil(b"\r\n")
                if writer is not None:
                    writer.write(trailer)
                if trailer == b"\r\n":
                    break
            if writer is not None:
                await writer.drain()
            return
        await _pipe_exact(reader, writer, size + 2)


async def _pipe_until_eof(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(_CHUNK):
        writer.write(data)
        await writer.drain()


async def _pipe_request_body(
    message: _Message, reader: asyncio.StreamReader, writer: asyncio.StreamWriter | None
) -> None:
    if message.chunked:
        await _pipe_chunked(reader, writer)
    else:
        await _pipe_exact(reader, writer, message.content_length or 0)


def _error_response(kind: str, method: str, *, close: bool) -> bytes:
    status, reason, code, message = _ERRORS[kind]
    request_id = secrets.token_hex(8).upper()
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>"
        f"<RequestId>{request_id}</RequestId><HostId>deltaglider-fault-proxy</HostId></Error>"
    ).encode()
    head = [
        f"HTTP/1.1 {status} {reason}",
        "Content-Type: application/xml",
        f"Content-Length: {len(body)}",
        f"x-amz-request-id: {request_id}",
    ]
    if close:
        head.append("Connection: close")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + (b"" if method == "HEAD" else body)


async def _close(writer: asyncio.StreamWriter | None) -> None:
    if writer is None:
        return
    writer.close()
    with contextlib.suppress(Exception):
        await writer.wait_closed()


class FaultProxy:
    """An HTTP/1.1 proxy to ``upstream_url`` adding latency and S3 faults (see the module).

    ``delay`` is in seconds, added to every request. ``fault_rate`` in ``[0, 1]`` is the
    share of requests answered with a fault drawn from ``faults``; ``fault_filter`` (a
    function of :class:`ProxyRequest`) limits faults to the requests it accepts. Every
    decision comes from one ``random.Random(seed)`` in the order requests arrive.
    ``extra_delay(index, request)`` adds seconds to one request, chosen by its arrival
    index (0 for the first request since the start or :meth:`reset_stats`): delaying each
    request of a client in turn replays every interleaving with another client.

    Start it with :meth:`start` or ``with``; settings can be changed while it runs with
    :meth:`configure`. :meth:`stop` closes every connection and the thread.
    """

    def __init__(
        self,
        upstream_url: str,
        *,
        delay: float = 0.0,
        fault_rate: float = 0.0,
        faults: Sequence[FaultKind] = DEFAULT_FAULTS,
        seed: int = 0,
        fault_filter: Callable[[ProxyRequest], bool] | None = None,
        extra_delay: Callable[[int, ProxyRequest], float] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        parts = urlsplit(upstream_url)
        if parts.scheme != "http" or parts.hostname is None:
            raise ValueError(f"upstream must be an http:// URL, got {upstream_url!r}")
        self._upstream = (parts.hostname, parts.port or 80)
        self._host = host
        self._port = port
        self._lock = threading.Lock()
        self._delay = 0.0
        self._fault_rate = 0.0
        self._faults: tuple[FaultKind, ...] = DEFAULT_FAULTS
        self._rng = random.Random(seed)
        self._filter = fault_filter
        self._extra_delay = extra_delay
        self._arrivals = 0
        self._requests: Counter[str] = Counter()
        self._operations: Counter[str] = Counter()
        self._bucket_operations: Counter[str] = Counter()
        self._injected: Counter[str] = Counter()
        self.configure(delay=delay, fault_rate=fault_rate, faults=faults)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopping: asyncio.Event | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._error: BaseException | None = None

    # -- settings and counters ----------------------------------------------------

    def configure(
        self,
        *,
        delay: float | None = None,
        fault_rate: float | None = None,
        faults: Sequence[FaultKind] | None = None,
        seed: int | None = None,
        fault_filter: Callable[[ProxyRequest], bool] | Literal[False] | None = False,
        extra_delay: Callable[[int, ProxyRequest], float] | Literal[False] | None = False,
    ) -> None:
        """Change settings; ``None`` keeps a setting (``fault_filter=None`` and
        ``extra_delay=None`` remove them)."""
        with self._lock:
            if delay is not None:
                if delay < 0:
                    raise ValueError(f"delay must be >= 0, got {delay}")
                self._delay = float(delay)
            if fault_rate is not None:
                if not 0.0 <= fault_rate <= 1.0:
                    raise ValueError(f"fault_rate must be in [0, 1], got {fault_rate}")
                self._fault_rate = float(fault_rate)
            if faults is not None:
                unknown = [f for f in faults if f not in FAULT_KINDS]
                if unknown or not faults:
                    raise ValueError(f"faults must be a non-empty subset of {FAULT_KINDS}")
                self._faults = tuple(faults)
            if seed is not None:
                self._rng = random.Random(seed)
            if fault_filter is not False:
                self._filter = fault_filter
            if extra_delay is not False:
                self._extra_delay = extra_delay

    def stats(self) -> ProxyStats:
        """A snapshot of the counters."""
        with self._lock:
            return ProxyStats(
                Counter(self._requests),
                Counter(self._injected),
                Counter(self._operations),
                Counter(self._bucket_operations),
            )

    def reset_stats(self) -> None:
        """Zero the counters."""
        with self._lock:
            self._requests.clear()
            self._operations.clear()
            self._bucket_operations.clear()
            self._injected.clear()
            self._arrivals = 0

    def _decide(self, request: ProxyRequest) -> tuple[float, str | None]:
        with self._lock:
            self._requests[request.method] += 1
            operation = operation_of(request.method, request.target, request.headers)
            bucket = request.target.partition("?")[0].strip("/").partition("/")[0]
            self._operations[operation] += 1
            self._bucket_operations[f"{bucket} {operation}"] += 1
            index, self._arrivals = self._arrivals, self._arrivals + 1
            delay = self._delay
            if self._extra_delay is not None:
                delay += self._extra_delay(index, request)
            # The draws happen for every request, so the sequence of decisions depends
            # only on the seed and the order of arrival, not on the filter.
            draw, pick = self._rng.random(), self._rng.randrange(len(self._faults))
            kind: str | None = None
            if draw < self._fault_rate and (self._filter is None or self._filter(request)):
                kind = self._faults[pick]
                self._injected[kind] += 1
            return delay, kind

    # -- lifecycle ----------------------------------------------------------------

    @property
    def port(self) -> int:
        """The port the proxy listens on (once started)."""
        if not self._port:
            raise RuntimeError("the proxy is not running")
        return self._port

    @property
    def endpoint_url(self) -> str:
        """``http://127.0.0.1:PORT``: give it to clients as their S3 endpoint."""
        return f"http://{self._host}:{self.port}"

    def wrap(self, s3: LocalS3) -> LocalS3:
        """``s3`` with its endpoint replaced by this proxy's."""
        return dataclasses.replace(s3, endpoint_url=self.endpoint_url)

    def start(self) -> Self:
        """Start listening (in a background thread); return once connections are accepted."""
        if self._thread is not None:
            return self
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name="deltaglider-fault-proxy", daemon=True
        )
        self._thread.start()
        if not ready.wait(_START_TIMEOUT) or self._error is not None:
            self.stop()
            raise RuntimeError(f"the proxy did not start: {self._error!r}")
        return self

    def stop(self) -> None:
        """Close the listener and every connection, and end the thread; idempotent."""
        thread, loop, stopping = self._thread, self._loop, self._stopping
        if thread is None:
            return
        if loop is not None and stopping is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop may have just finished
                loop.call_soon_threadsafe(stopping.set)
        thread.join(_STOP_TIMEOUT)
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _run(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve(ready))
            loop.run_until_complete(loop.shutdown_asyncgens())
        except BaseException as exc:
            self._error = exc
            ready.set()
        finally:
            loop.close()

    async def serve_forever(self, on_ready: Callable[[], None] | None = None) -> None:
        """Serve on the current event loop until cancelled (used by ``python -m``)."""
        self._stopping = asyncio.Event()
        server = await asyncio.start_server(self._handle, self._host, self._port)
        self._port = server.sockets[0].getsockname()[1]
        if on_ready is not None:
            on_ready()
        try:
            await self._stopping.wait()
        finally:
            server.close()
            for task in list(self._handlers):
                task.cancel()
            if self._handlers:
                await asyncio.gather(*self._handlers, return_exceptions=True)
            await server.wait_closed()

    async def _serve(self, ready: threading.Event) -> None:
        await self.serve_forever(ready.set)

    # -- one client connection ----------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        try:
            while True:
                request = await _read_message(reader)
                if request is None:
                    return
                upstream, keep_going = await self._exchange(request, reader, writer, upstream)
                if not keep_going:
                    return
        except (_ClosedByPeer, ConnectionError, OSError, ValueError, IndexError):
            return  # a peer went away or spoke nonsense: drop the connection
        except asyncio.CancelledError:
            # Only stop() cancels handlers. asyncio's stream server calls exception() on
            # the finished task and would log a cancelled one as an error.
            return
        finally:
            self._handlers.discard(task)
            await _close(None if upstream is None else upstream[1])
            await _close(writer)

    async def _exchange(
        self,
        request: _Message,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None,
    ) -> tuple[tuple[asyncio.StreamReader, asyncio.StreamWriter] | None, bool]:
        """Serve one request; return the upstream connection to reuse and whether to go on."""
        method, target, _ = request.start_line.split(" ", 2)
        expects = (request.get("expect") or "").lower() == "100-continue"
        seen = ProxyRequest(method, target, {k.lower(): v for k, v in request.headers})
        delay, kind = self._decide(seen)
        if delay:
            await asyncio.sleep(delay)
        query = target.partition("?")[2].split("&")
        if (
            kind == "slowdown-keys"
            and method == "POST"
            and ("delete" in query or "delete=" in query)
        ):
            body = await _read_request_body(request, reader)
            writer.write(_slowdown_keys_response(body))
            await writer.drain()
            return upstream, True
        if kind in ("503", "429", "500", "drop"):
            if not expects:
                # Read the body the client sends anyway, so it sees our answer, not a reset.
                await _pipe_request_body(request, reader, None)
            if kind == "drop":
                return upstream, False
            writer.write(_error_response(kind, method, close=expects))
            await writer.drain()
            return upstream, not expects
        if expects:
            # Answer the client ourselves and forward without Expect: the body is then
            # streamed straight through.
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            await writer.drain()
        if upstream is not None and upstream[0].at_eof():
            # The server closed the idle connection: open a new one.
            await _close(upstream[1])
            upstream = None
        if upstream is None:
            upstream = await asyncio.open_connection(*self._upstream, limit=_MAX_HEAD)
        up_reader, up_writer = upstream
        up_writer.write(request.encode(drop={"expect"}))
        await _pipe_request_body(request, reader, up_writer)
        await up_writer.drain()
        response = await _read_message(up_reader)
        while response is not None and response.start_line.split(" ", 2)[1].startswith("1"):
            response = await _read_message(up_reader)  # an interim answer: skip it
        if response is None:
            raise _ClosedByPeer("the server closed the connection without answering")
        status = int(response.start_line.split(" ", 2)[1])
        if kind == "drop-response":
            await self._relay_body(method, status, response, up_reader, None)
            return upstream, False
        length = response.content_length
        if kind == "no-token" and length and not response.chunked and "list-type=2" in query:
            body = await _read_exact(up_reader, length)
            body = _TOKEN_RE.sub(b"", body)
            response.headers = [
                (k, str(len(body)) if k.lower() == "content-length" else v)
                for k, v in response.headers
            ]
            writer.write(response.encode() + body)
            await writer.drain()
            return upstream, not (request.wants_close or response.wants_close)
        writer.write(response.encode())
        await writer.drain()
        if kind == "truncate" and _has_body(method, status) and length and not response.chunked:
            # Half the body, then the connection ends: the server's rest is discarded.
            await _pipe_exact(up_reader, writer, length // 2)
            await _pipe_exact(up_reader, None, length - length // 2)
            return upstream, False
        until_eof = await self._relay_body(method, status, response, up_reader, writer)
        if until_eof or response.wants_close or response.start_line.startswith("HTTP/1.0"):
            await _close(up_writer)
            upstream = None
        keep = not (until_eof or request.wants_close or response.wants_close)
        return upstream, keep

    @staticmethod
    async def _relay_body(
        method: str,
        status: int,
        response: _Message,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter | None,
    ) -> bool:
        """Copy a response body; True when it was delimited by the end of the connection."""
        if not _has_body(method, status):
            return False
        if response.chunked:
            await _pipe_chunked(reader, writer)
            return False
        length = response.content_length
        if length is not None:
            await _pipe_exact(reader, writer, length)
            return False
        if writer is not None:
            await _pipe_until_eof(reader, writer)
        return True


_TOKEN_RE: Final = re.compile(rb"<NextContinuationToken>[^<]*</NextContinuationToken>")
_DELETE_KEY_RE: Final = re.compile(rb"<Key>([^<]*)</Key>")


async def _read_exact(reader: asyncio.StreamReader, length: int) -> bytes:
    try:
        return await reader.readexactly(length)
    except asyncio.IncompleteReadError as exc:
        raise _ClosedByPeer("connection closed inside a body") from exc


async def _read_request_body(message: _Message, reader: asyncio.StreamReader) -> bytes:
    """A request body in memory (small ones only: DeleteObjects)."""
    if message.chunked:
        raise _ClosedByPeer("chunked request bodies are not buffered")
    return await _read_exact(reader, message.content_length or 0)


def _slowdown_keys_response(request_body: bytes) -> bytes:
    """A ``200 OK`` DeleteObjects answer failing every key with ``SlowDown``."""
    errors = "".join(
        f"<Error><Key>{key.decode()}</Key><Code>SlowDown</Code>"
        "<Message>Please reduce your request rate.</Message></Error>"
        for key in _DELETE_KEY_RE.findall(request_body)
    )
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<DeleteResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">{errors}</DeleteResult>'
    ).encode()
    head = [
        "HTTP/1.1 200 OK",
        "Content-Type: application/xml",
        f"Content-Length: {len(body)}",
        f"x-amz-request-id: {secrets.token_hex(8).upper()}",
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def _has_body(method: str, status: int) -> bool:
    """Whether an answer with ``status`` to a ``method`` request carries a body."""
    return method != "HEAD" and status not in _NO_BODY_STATUSES


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ProxyProcess:
    """:class:`FaultProxy` in a child process (``python -m deltaglider_async.testing_proxy``).

    Same arguments as :class:`FaultProxy` except ``fault_filter``; settings are fixed for
    the life of the process. Use it as a context manager; ``endpoint_url`` is the proxy.
    With ``stats_file``, the child writes its counters there (JSON) when it stops, and
    :meth:`stats` reads them back once it has.
    """

    def __init__(
        self,
        upstream_url: str,
        *,
        delay: float = 0.0,
        fault_rate: float = 0.0,
        faults: Sequence[FaultKind] = DEFAULT_FAULTS,
        seed: int = 0,
        stats_file: str | None = None,
    ) -> None:
        self._stats_file = stats_file
        self._args = [
            "--upstream",
            upstream_url,
            "--delay",
            repr(delay),
            "--fault-rate",
            repr(fault_rate),
            "--faults",
            ",".join(faults),
            "--seed",
            str(seed),
            *(["--stats-file", stats_file] if stats_file else []),
        ]
        self._process: subprocess.Popen[bytes] | None = None
        self._port = 0

    @property
    def endpoint_url(self) -> str:
        """``http://127.0.0.1:PORT`` of the running proxy."""
        if not self._port:
            raise RuntimeError("the proxy process is not running")
        return f"http://127.0.0.1:{self._port}"

    def wrap(self, s3: LocalS3) -> LocalS3:
        """``s3`` with its endpoint replaced by this proxy's."""
        return dataclasses.replace(s3, endpoint_url=self.endpoint_url)

    def start(self) -> Self:
        """Start the child and wait until it accepts connections."""
        if self._process is not None:
            return self
        port = _free_port()
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "deltaglider_async.testing_proxy",
                "--port",
                str(port),
                *self._args,
            ],
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + _START_TIMEOUT
        while True:
            if self._process.poll() is not None:
                self._process = None
                raise RuntimeError("the proxy process exited while starting")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("the proxy process did not start listening") from None
                time.sleep(0.02)
        self._port = port
        return self

    def stop(self) -> None:
        """SIGTERM the child (SIGKILL after a bound); idempotent."""
        process, self._process, self._port = self._process, None, 0
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(_STOP_TIMEOUT)

    def stats(self) -> ProxyStats:
        """The counters the stopped child wrote to ``stats_file``."""
        if self._stats_file is None or self._process is not None:
            raise RuntimeError("stats are read from stats_file once the proxy process stopped")
        with open(self._stats_file, encoding="utf-8") as f:
            data = json.load(f)
        return ProxyStats(
            Counter(data["requests"]),
            Counter(data["faults"]),
            Counter(data["operations"]),
            Counter(data["bucket_operations"]),
        )

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m deltaglider_async.testing_proxy --upstream URL [--delay S] ...``."""
    parser = argparse.ArgumentParser(description="HTTP proxy adding latency and S3 faults")
    parser.add_argument("--upstream", required=True, help="http://host:port of the S3 server")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds added per request")
    parser.add_argument("--fault-rate", type=float, default=0.0)
    parser.add_argument("--faults", default=",".join(DEFAULT_FAULTS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--stats-file", help="write the counters there (JSON) on exit")
    args = parser.parse_args(argv)
    faults = [f for f in args.faults.split(",") if f]
    proxy = FaultProxy(
        args.upstream,
        delay=args.delay,
        fault_rate=args.fault_rate,
        faults=cast("list[FaultKind]", faults),  # checked by configure()
        seed=args.seed,
        port=args.port,
    )

    async def run() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        serving = asyncio.create_task(proxy.serve_forever())
        await stop.wait()
        assert proxy._stopping is not None
        proxy._stopping.set()
        await serving

    asyncio.run(run())
    if args.stats_file:
        counters = proxy.stats()
        document = {
            "requests": counters.requests,
            "faults": counters.faults,
            "operations": counters.operations,
            "bucket_operations": counters.bucket_operations,
        }
        with open(args.stats_file, "w", encoding="utf-8") as f:
            json.dump(document, f)


if __name__ == "__main__":
    main()
