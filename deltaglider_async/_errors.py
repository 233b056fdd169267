"""The error tree of deltaglider-async, shared verbatim by the blocking `deltaglider` package.

Every error the library raises is a :class:`DeltaGliderError`. Each branch also subclasses
the builtin exception the documented API promises, so ``except FileNotFoundError`` keeps
working for callers that never heard of this package::

    DeltaGliderError
    ├── NotFoundError ................................. FileNotFoundError
    │   ├── BucketNotFoundError
    │   └── ObjectNotFoundError
    ├── AccessDeniedError ............................. PermissionError
    ├── InvalidArgumentError .......................... ValueError
    │   ├── InvalidURLError        (not an s3://bucket/key URL)
    │   ├── InvalidRatioError      (max_ratio outside [0, 1])
    │   └── ReservedKeyError       (reference.bin / *.delta user keys)
    ├── StorageError .................................. IOError
    │   ├── IntegrityError         (sha256 mismatch, undecodable delta, tampered cache)
    │   │   └── UnverifiableObjectError (its metadata is lost: nothing to check it against)
    │   ├── PreconditionFailedError (a condition such as If-Match does not hold)
    │   │   └── ObjectChangedError (replaced by another version while being read)
    │   ├── NotModifiedError       (If-None-Match / If-Modified-Since: HTTP 304)
    │   ├── ConditionalWriteNotSupportedError
    │   ├── BucketAlreadyExistsError (owned by someone else)
    │   └── BucketNotEmptyError
    ├── LocalFileError ................................ OSError
    │                              (a local file could not be read or written: no space,
    │                               name too long, read-only file system...)
    ├── DiffError ..................................... RuntimeError
    │   ├── DiffToolNotFoundError  (xdelta3 is not installed)
    │   ├── DiffToolUnsupportedError (the installed xdelta3 cannot do what is configured)
    │   └── DiffToolFailedError    (xdelta3 could not start, or was killed: a local fault)
    ├── ClientClosedError ............................. RuntimeError
    └── EventLoopThreadError .......................... RuntimeError
                                   (a blocking call from the client's own loop thread)

Local files follow one rule on every entry point (:func:`local_error`): a missing file or
directory is a :class:`NotFoundError`, a refused permission an :class:`AccessDeniedError`, a
directory where a file is expected an :class:`InvalidArgumentError`, anything else a
:class:`LocalFileError`; the message names the path. An :class:`IntegrityError` always means
the *stored* data does not match its SHA-256, never a local failure.

Lower-level errors (botocore, aiohttp, subprocess) are translated into this tree once, at
the adapter boundary; none of them reaches a caller. An ``ExceptionGroup`` never reaches a
caller either: see :func:`deltaglider_async._errors.unwrap_group`.

Code written for boto3 keeps working: every error has a ``response`` shaped like
``botocore.exceptions.ClientError.response`` (``e.response["Error"]["Code"]`` is the S3
error code, such as ``NoSuchKey``) and an ``operation_name``; the clients'
``exceptions`` attribute (:data:`exceptions`) names the classes as boto3's
``client.exceptions`` does (``NoSuchKey``, ``NoSuchBucket``, ``ClientError``...).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any, ClassVar


class DeltaGliderError(Exception):
    """Base class of every error raised by deltaglider and deltaglider_async.

    ``code`` is the S3 error code (the server's own when S3 refused a request, else the
    code S3 uses for the same condition, else the class name), ``status`` the HTTP status
    (``None`` for local failures) and ``operation_name`` the S3 operation that failed, if
    one did. ``response`` gives them in the shape of botocore's ``ClientError.response``.
    """

    code: ClassVar[str] = "DeltaGliderError"
    status: ClassVar[int | None] = None
    operation_name: str | None = None
    _s3: tuple[str, int | None] | None = None

    @property
    def response(self) -> dict[str, Any]:
        """``{"Error": {"Code", "Message"}, "ResponseMetadata": {"HTTPStatusCode"}}``."""
        code, status = self._s3 or (self.code, self.status)
        return {
            "Error": {"Code": code, "Message": str(self)},
            "ResponseMetadata": {} if status is None else {"HTTPStatusCode": status},
        }

    def from_s3(self, code: str, status: int | None, operation: str) -> DeltaGliderError:
        """Record the S3 ``code``, HTTP ``status`` and ``operation`` this error comes from."""
        self._s3 = (code, status)
        self.operation_name = operation
        return self


class NotFoundError(DeltaGliderError, FileNotFoundError):
    """A bucket, object or local file does not exist."""

    code = "NotFound"
    status = 404


class BucketNotFoundError(NotFoundError):
    """The bucket does not exist."""

    code = "NoSuchBucket"
    status = 404


class ObjectNotFoundError(NotFoundError):
    """The object does not exist (under its logical name nor its ``.delta`` name)."""

    code = "NoSuchKey"
    status = 404


class AccessDeniedError(DeltaGliderError, PermissionError):
    """The credentials were refused or lack permission for the operation."""

    code = "AccessDenied"
    status = 403


class InvalidArgumentError(DeltaGliderError, ValueError):
    """An argument is malformed: a URL, a ratio, a key, a body type."""

    code = "InvalidArgument"
    status = 400


class InvalidURLError(InvalidArgumentError):
    """A string is not a usable ``s3://bucket/key`` URL."""


class InvalidRatioError(InvalidArgumentError):
    """``max_ratio`` is outside ``[0, 1]``."""


class ReservedKeyError(InvalidArgumentError):
    """A user key collides with the storage format (``reference.bin`` or ``*.delta``)."""


class StorageError(DeltaGliderError, IOError):
    """The object store failed, or what it returned is unusable."""

    code = "InternalError"
    status = 500


class IntegrityError(StorageError):
    """Reconstructed or downloaded bytes do not match their recorded SHA-256."""

    code = "IntegrityError"
    status = 500


class UnverifiableObjectError(IntegrityError):
    """A stored object cannot be read as a file: its deltaglider metadata is lost or broken.

    Typically a ``.delta`` object copied by a tool that dropped its ``x-amz-meta-*``
    headers: its bytes are an xdelta3 patch with no recorded SHA-256 or reference, so they
    are never handed out as the file. The message says how to repair it.
    """

    code = "UnverifiableObject"


class PreconditionFailedError(StorageError):
    """A condition does not hold: ``If-Match``/``If-Unmodified-Since`` (HTTP 412), or a
    conditional write (``If-None-Match: *``) found the object already present."""

    code = "PreconditionFailed"
    status = 412


class ObjectChangedError(PreconditionFailedError):
    """The object was replaced by another version while it was being read.

    A read interrupted mid-body is resumed with a ranged GET conditional on the first
    answer's ETag; when that version is gone, the bytes already read cannot be completed.
    Reading the object again returns the new version whole.
    """


class NotModifiedError(StorageError):
    """``If-None-Match``/``If-Modified-Since`` on a read: the object has not changed (304)."""

    code = "NotModified"
    status = 304


class ConditionalWriteNotSupportedError(StorageError):
    """The object store refused a conditional write as not implemented."""

    code = "NotImplemented"
    status = 501


class BucketAlreadyExistsError(StorageError):
    """The bucket name is taken by another account."""

    code = "BucketAlreadyExists"
    status = 409


class BucketNotEmptyError(StorageError):
    """The bucket still holds objects and cannot be deleted."""

    code = "BucketNotEmpty"
    status = 409


class LocalFileError(DeltaGliderError, OSError):
    """A local file could not be read or written (no space, name too long, read-only...).

    ``errno`` is the operating system's error number when known.
    """

    code = "LocalFileError"


class DiffError(DeltaGliderError, RuntimeError):
    """xdelta3 failed to encode or decode."""

    code = "DiffError"


class DiffToolNotFoundError(DiffError):
    """The ``xdelta3`` binary is not installed."""

    code = "DiffToolNotFound"


class DiffToolUnsupportedError(DiffError):
    """The installed xdelta3 cannot do what is configured (a secondary compressor it was
    built without, for instance); the message names its version."""

    code = "DiffToolUnsupported"


class DiffToolFailedError(DiffError):
    """xdelta3 itself failed, not the data: it could not start (too many open files, no
    memory) or was killed by a signal (the OOM killer...). Never a sign of corrupted
    storage; retry when the machine has room."""

    code = "DiffToolFailed"


class ClientClosedError(DeltaGliderError, RuntimeError):
    """The client was used after ``close()``/``aclose()``."""

    code = "ClientClosed"


class EventLoopThreadError(DeltaGliderError, RuntimeError):
    """A blocking method was called from the client's own event-loop thread.

    Waiting there would deadlock (the loop that must run the call is the one waiting),
    so the call is refused. Code running on that loop must use ``deltaglider_async``
    and ``await`` the async client instead.
    """

    code = "EventLoopThread"


#: What boto3 users find as ``client.exceptions``: the error classes under boto3's names.
exceptions: Any = SimpleNamespace(
    ClientError=DeltaGliderError,
    NoSuchKey=ObjectNotFoundError,
    NoSuchBucket=BucketNotFoundError,
    BucketAlreadyExists=BucketAlreadyExistsError,
)


#: HTTP statuses that say "try again later": timeout, throttling, server-side failures.
_TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


def is_transient(error: BaseException) -> bool:
    """Whether ``error`` may pass if the same operation runs again later.

    True for an object store that failed without a definite answer (a dropped connection,
    a timeout, throttling or a 5xx that outlasted the retries), an object replaced while
    it was read (:class:`ObjectChangedError`), an xdelta3 process that was killed
    (:class:`DiffToolFailedError`) and a local file system that failed
    (:class:`LocalFileError`, such as a full disk). False for every definite refusal: not
    found, access denied, bad arguments, integrity failures, a missing xdelta3.
    """
    if isinstance(error, ObjectChangedError | DiffToolFailedError | LocalFileError):
        return True
    if type(error) is not StorageError:
        return False
    status = error.response["ResponseMetadata"].get("HTTPStatusCode")
    return status is None or status in _TRANSIENT_STATUSES


def local_error(exc: OSError, path: object, action: str) -> DeltaGliderError:
    """The library's error for a local file operation that failed with ``exc``.

    ``action`` says what was attempted (``"read"``, ``"write"``...) and ``path`` which
    file; both go into the message. Errors that are already the library's pass through.
    """
    if isinstance(exc, DeltaGliderError):
        return exc
    where = f"local file {str(path)!r}"
    reason = exc.strerror or str(exc)
    error: DeltaGliderError
    if isinstance(exc, FileNotFoundError):
        error = NotFoundError(f"cannot {action} {where}: it or its directory does not exist")
    elif isinstance(exc, PermissionError):
        error = AccessDeniedError(f"cannot {action} {where}: permission denied")
    elif isinstance(exc, IsADirectoryError | NotADirectoryError):
        error = InvalidArgumentError(f"cannot {action} {where}: {reason}")
    else:
        error = LocalFileError(exc.errno, f"cannot {action} {where}: {reason}")
    error.__cause__ = exc
    return error


@contextmanager
def translating_local(path: object, action: str) -> Iterator[None]:
    """Re-raise a builtin ``OSError`` from the block as :func:`local_error`."""
    try:
        yield
    except DeltaGliderError:
        raise
    except OSError as exc:
        raise local_error(exc, path, action) from exc


def unwrap_group(exc: BaseException) -> BaseException:
    """Return the first leaf of nested exception groups, so callers see one plain error.

    Task groups wrap failures in ``ExceptionGroup``; the documented API raises single
    exceptions. Cancellation-type errors win over others so that cancellation is never
    swallowed.
    """
    while isinstance(exc, BaseExceptionGroup):
        leaves = exc.exceptions
        preferred = [e for e in leaves if not isinstance(e, Exception)]
        exc = (preferred or list(leaves))[0]
    return exc


@contextmanager
def single_errors() -> Iterator[None]:
    """Re-raise the first leaf of any ``ExceptionGroup`` raised inside the block."""
    try:
        yield
    except BaseExceptionGroup as group:
        leaf = unwrap_group(group)
        # Keep the leaf's own cause (e.g. the botocore error); the group stays reachable
        # as its __context__.
        raise leaf from leaf.__cause__
