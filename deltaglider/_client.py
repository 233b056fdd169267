"""DeltaGliderClient: the blocking API, a thin facade over ``AsyncDeltaGliderClient``.

Every method hands the coroutine of the async method with the same name to the client's
:class:`~deltaglider._runner.Runner`, which runs it on the client's private event-loop
thread. Names, parameters, return values, docstrings and exceptions are those of
:class:`deltaglider_async.AsyncDeltaGliderClient`; only ``get_object`` differs, in
returning a blocking :class:`StreamingBody`.
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime
from types import TracebackType
from typing import (
    Any,
    Concatenate,
    Final,
    NotRequired,
    ParamSpec,
    Self,
    TypedDict,
    TypeVar,
    cast,
)

from deltaglider_async import (
    AsyncDeltaGliderClient,
    AsyncStreamingBody,
    ClientClosedError,
    ClientState,
    DeltaGliderConfig,
    InvalidArgumentError,
    can_paginate,
    hold_log_level,
    make_paginator,
    release_log_level,
)
from deltaglider_async import GetObjectResponse as AsyncGetObjectResponse

from ._runner import Runner
from ._service import DeltaService

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DeltaGliderClient",
    "GetObjectResponse",
    "StreamingBody",
    "create_client",
]

P = ParamSpec("P")
R = TypeVar("R")

#: ``iter_chunks`` default, as for the async body.
DEFAULT_CHUNK_SIZE: Final = 1024 * 1024


class StreamingBody:
    """The blocking ``Body`` of a ``get_object`` response, like boto3's.

    Read it with ``body.read()`` / ``body.read(amt)``, ``for chunk in
    body.iter_chunks(chunk_size)``, ``body.iter_lines()`` or ``body.readlines()``, then
    ``body.close()`` (or use ``with body:``). Each read runs the async body's read on the
    client's event-loop thread; reads of one body from several threads are serialised.
    Integrity checks are those of :class:`deltaglider_async.AsyncStreamingBody`. Closing
    is idempotent and releases the HTTP connection or removes the reconstructed temp file;
    closing the client closes the bodies it handed out.
    """

    def __init__(self, runner: Runner[Any], body: AsyncStreamingBody) -> None:
        self._runner = runner
        self._body = body
        self._generation = runner.generation
        self._lock = threading.Lock()

    @property
    def content_length(self) -> int:
        """Number of bytes this body carries in total."""
        return self._body.content_length

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called (or the client was closed)."""
        return self._body.closed

    def _check_process(self) -> None:
        if self._runner.generation != self._generation:
            raise ClientClosedError(
                "this response body was opened before os.fork(); it belongs to the parent "
                "process. Call get_object() again in the child"
            )

    def read(self, amt: int | None = None) -> bytes:
        """Read up to ``amt`` bytes (everything left when ``None``); ``b""`` at the end.

        Raises :class:`IntegrityError` from the read that reaches the end of a direct
        object whose bytes do not match the recorded SHA-256, and
        :class:`ClientClosedError` after :meth:`close`.
        """
        self._check_process()  # before the lock: a parent's thread may have held it at fork
        with self._lock:
            return self._runner.run(self._body.read, amt)

    def iter_chunks(self, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[bytes]:
        """Yield the remaining bytes in chunks of at most ``chunk_size`` bytes."""
        if chunk_size <= 0:
            raise InvalidArgumentError(f"chunk_size must be positive, got {chunk_size}")
        while chunk := self.read(chunk_size):
            yield chunk

    def iter_lines(self, chunk_size: int = 1024, keepends: bool = False) -> Iterator[bytes]:
        """Yield the remaining lines (ending at ``\n``, ``\r\n`` or ``\r``), as botocore's
        ``StreamingBody.iter_lines`` does; the endings are kept when ``keepends``."""
        while lines := self.read_lines(chunk_size, keepends):
            yield from lines

    def readlines(self) -> list[bytes]:
        """All remaining lines, each with its line ending."""
        return list(self.iter_lines(DEFAULT_CHUNK_SIZE, keepends=True))

    def read_lines(self, chunk_size: int = 1024, keepends: bool = False) -> list[bytes]:
        """Read on until at least one line is complete; the complete lines (``[]`` only at
        the end), as the async body's ``read_lines``."""
        self._check_process()
        with self._lock:
            return self._runner.run(self._body.read_lines, chunk_size, keepends)

    def close(self) -> None:
        """Release the connection or remove the temp file; idempotent."""
        if self._body.closed or self._runner.closed:
            return  # a closed client already closed its bodies
        self._check_process()
        with self._lock:
            if not self._body.closed:
                self._runner.run(self._body.close)

    def __iter__(self) -> Iterator[bytes]:
        return self.iter_chunks()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return repr(self._body).replace("AsyncStreamingBody", "StreamingBody", 1)


class GetObjectResponse(TypedDict):
    """Response of the blocking ``get_object``; close ``Body`` when done with it."""

    Body: StreamingBody
    ContentLength: int
    ContentType: str
    ETag: str
    LastModified: datetime
    Metadata: dict[str, str]
    AcceptRanges: str
    DeltaGlider: dict[str, Any]
    ResponseMetadata: dict[str, Any]
    ContentRange: NotRequired[str]
    VersionId: NotRequired[str]


def _blocking(
    select: Callable[[AsyncDeltaGliderClient], Callable[P, Awaitable[R]]],
) -> Callable[Concatenate[DeltaGliderClient, P], R]:
    """The blocking twin of the ``AsyncDeltaGliderClient`` method ``select`` picks.

    ``select`` maps an async client to one of its bound methods (``lambda c:
    c.head_object``), which types the twin with that method's parameters and result. The
    twin keeps the method's name, signature and docstring, and runs the coroutine on the
    client's event-loop thread.
    """

    async def on_client(client: AsyncDeltaGliderClient, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return await select(client)(*args, **kwargs)

    def blocking(self: DeltaGliderClient, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return self._runner.call(on_client, *args, **kwargs)

    # Applied to the class, the selector yields the plain function, for its metadata.
    method: Callable[..., Any] = select(cast(AsyncDeltaGliderClient, AsyncDeltaGliderClient))
    blocking.__name__ = method.__name__
    blocking.__qualname__ = f"DeltaGliderClient.{method.__name__}"
    blocking.__doc__ = method.__doc__
    blocking.__signature__ = inspect.signature(method)  # type: ignore[attr-defined]
    return blocking


class DeltaGliderClient:
    """Delta-compressed S3 storage with a boto3-like blocking API.

    Build it with :func:`deltaglider.create_client` (recommended), from a
    :class:`DeltaGliderConfig`, or over a :class:`DeltaService`
    (``DeltaGliderClient(service, endpoint_url=None)``, as the API reference documents: the
    client shares the service's loop thread and adapters and closes them with itself); it
    is open at once and is also a context manager::

        with create_client() as client:
            client.put_object(Bucket="releases", Key="app/v2.zip", Body=path)

    The methods are those of :class:`deltaglider_async.AsyncDeltaGliderClient`, with the
    same parameters, results and errors, run on a private event-loop thread that starts
    on the first call and stops in :meth:`close` (or at interpreter exit, bounded). One
    client may be shared by many threads. Calling it from inside a running event loop
    works but blocks that loop (a one-time ``RuntimeWarning`` says so: use
    ``deltaglider_async`` there). After ``os.fork()`` the child builds its own loop and
    S3 client on its first call. Ctrl-C during a call cancels the operation (no xdelta3
    child, temp file or multipart upload is left) and raises ``KeyboardInterrupt``.
    """

    #: The error classes under boto3's names, as on the async client.
    exceptions: Any = AsyncDeltaGliderClient.exceptions

    def __init__(
        self,
        service: DeltaService | DeltaGliderConfig | None = None,
        endpoint_url: str | None = None,
    ) -> None:
        if isinstance(service, DeltaService):
            # The API reference's DeltaGliderClient(service, endpoint_url): the client runs
            # on the service's loop thread and adapters, and closes them with itself.
            self._config = service._config_in_force(endpoint_url)
            self._runner: Runner[AsyncDeltaGliderClient] = service._runner
            self._service = service
            return
        config = service if service is not None else DeltaGliderConfig.from_env()
        if endpoint_url is not None:
            config = config.with_changes(endpoint_url=endpoint_url)
        self._config = config
        if config.log_level is not None:
            hold_log_level(self, config.log_level)
        # The async client is built inside the loop, and again in a forked child.
        self._runner = Runner(functools.partial(AsyncDeltaGliderClient, self._config))
        self._service = DeltaService._over(self._runner, self._config)

    # ------------------------------------------------------------------ lifecycle

    @property
    def config(self) -> DeltaGliderConfig:
        """The configuration this client was built with."""
        return self._config

    @property
    def state(self) -> ClientState:
        """``OPENED`` from creation until :meth:`close`, then ``CLOSED``."""
        return ClientState.CLOSED if self._runner.closed else ClientState.OPENED

    @property
    def service(self) -> DeltaService:
        """The blocking :class:`DeltaService` (put/get/verify/delete) behind this client."""
        if self._runner.closed:
            raise ClientClosedError("this deltaglider client is closed; create a new one")
        return self._service

    def close(self) -> None:
        """Close open bodies, the S3 client and the local caches, then stop the loop thread.

        Idempotent and bounded in time. Calls still running in other threads are
        cancelled and raise :class:`ClientClosedError`; so does any later call.
        """
        self._runner.close()
        release_log_level(self)

    def __enter__(self) -> Self:
        if self._runner.closed:
            raise ClientClosedError("this deltaglider client is closed; create a new one")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        endpoint = self._config.endpoint_url or "AWS"
        return f"<DeltaGliderClient {endpoint} {self.state.value}>"

    # ------------------------------------------------------------------ objects

    put_object = _blocking(lambda c: c.put_object)

    def get_object(
        self, Bucket: str, Key: str, Range: str | None = None, **kwargs: Any
    ) -> GetObjectResponse:
        # The docstring is the async method's (set below): only the Body differs, a
        # blocking StreamingBody (read, iter_chunks, close, with).
        response = self._runner.call(_get_object, Bucket, Key, Range, kwargs)
        body = StreamingBody(self._runner, response["Body"])
        return {**response, "Body": body}  # type: ignore[typeddict-item]

    get_object.__doc__ = AsyncDeltaGliderClient.get_object.__doc__

    head_object = _blocking(lambda c: c.head_object)
    list_objects = _blocking(lambda c: c.list_objects)

    def get_paginator(self, operation_name: str) -> Any:
        # The docstring is the async method's (set below); the paginator calls the
        # blocking list_objects, so its paginate() is a plain iterator.
        if self._runner.closed:
            raise ClientClosedError("this deltaglider client is closed; create a new one")
        return make_paginator(operation_name, self.list_objects)

    def can_paginate(self, operation_name: str) -> bool:
        # The docstring is the async method's (set below).
        return can_paginate(operation_name)

    get_paginator.__doc__ = AsyncDeltaGliderClient.get_paginator.__doc__
    can_paginate.__doc__ = AsyncDeltaGliderClient.can_paginate.__doc__
    delete_object = _blocking(lambda c: c.delete_object)
    delete_objects = _blocking(lambda c: c.delete_objects)
    delete_objects_recursive = _blocking(lambda c: c.delete_objects_recursive)
    copy_object = _blocking(lambda c: c.copy_object)
    generate_presigned_url = _blocking(lambda c: c.generate_presigned_url)
    generate_presigned_url_with_rehydration = _blocking(
        lambda c: c.generate_presigned_url_with_rehydration
    )
    rehydrate_for_download = _blocking(lambda c: c.rehydrate_for_download)
    purge_temp_files = _blocking(lambda c: c.purge_temp_files)

    upload_file = _blocking(lambda c: c.upload_file)
    upload_fileobj = _blocking(lambda c: c.upload_fileobj)
    download_file = _blocking(lambda c: c.download_file)
    download_fileobj = _blocking(lambda c: c.download_fileobj)

    # ------------------------------------------------------------------ buckets

    create_bucket = _blocking(lambda c: c.create_bucket)
    delete_bucket = _blocking(lambda c: c.delete_bucket)
    list_buckets = _blocking(lambda c: c.list_buckets)
    head_bucket = _blocking(lambda c: c.head_bucket)
    put_bucket_acl = _blocking(lambda c: c.put_bucket_acl)
    get_bucket_acl = _blocking(lambda c: c.get_bucket_acl)

    # ------------------------------------------------------------------ simple API

    upload = _blocking(lambda c: c.upload)
    download = _blocking(lambda c: c.download)
    verify = _blocking(lambda c: c.verify)
    rebase = _blocking(lambda c: c.rebase)
    clear_cache = _blocking(lambda c: c.clear_cache)

    # Bulk operations run on the client's loop thread; a ``progress`` callback is called
    # there too, so it must be quick and thread-safe.
    upload_many = _blocking(lambda c: c.upload_many)
    download_many = _blocking(lambda c: c.download_many)
    upload_batch = _blocking(lambda c: c.upload_batch)
    download_batch = _blocking(lambda c: c.download_batch)
    migrate = _blocking(lambda c: c.migrate)
    get_bucket_stats = _blocking(lambda c: c.get_bucket_stats)
    get_directory_stats = _blocking(lambda c: c.get_directory_stats)
    cleanup = _blocking(lambda c: c.cleanup)
    list_hidden_objects = _blocking(lambda c: c.list_hidden_objects)


async def _get_object(
    client: AsyncDeltaGliderClient,
    bucket: str,
    key: str,
    range_: str | None,
    kwargs: dict[str, Any],
    /,
) -> AsyncGetObjectResponse:
    return await client.get_object(bucket, key, range_, **kwargs)


def create_client(
    endpoint_url: str | None = None, log_level: str | None = None, **kwargs: Any
) -> DeltaGliderClient:
    """An open :class:`DeltaGliderClient`, also usable as ``with create_client() as client:``.

    Keyword arguments: ``tool_version``, ``max_ratio``, ``rebase_ratio``, ``aws_access_key_id``,
    ``aws_secret_access_key``, ``aws_session_token``, ``region_name``, ``profile_name``,
    ``max_concurrency`` and any other :class:`DeltaGliderConfig` field. What is not given
    comes from the environment (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``,
    ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``AWS_DEFAULT_REGION``,
    ``AWS_PROFILE``, ``DG_LOG_LEVEL``, ``DG_MAX_RATIO``, ``DG_REBASE_RATIO``,
    ``DG_MAX_CONCURRENCY``), then from
    the defaults. ``log_level`` (default ``DG_LOG_LEVEL``) sets the level this client logs
    at; when neither is given the application's logging configuration alone decides.

    The configuration is checked here: unknown keyword arguments raise
    :class:`InvalidArgumentError` naming them and a ``max_ratio`` outside ``[0, 1]``
    raises :class:`InvalidRatioError`. No I/O and no thread start happen until the first
    call. Close the client with :meth:`DeltaGliderClient.close` (or ``with``); one left
    open is closed at interpreter exit.
    """
    config = DeltaGliderConfig.from_env(endpoint_url=endpoint_url, log_level=log_level, **kwargs)
    return DeltaGliderClient(config)
