"""boto3 arguments turned into checked values: names, keys, ranges, bodies, tags, deletes.

Each function raises :class:`InvalidArgumentError` (or :class:`InvalidURLError`) naming
the parameter and what was wrong; nothing here does I/O except reading a ``Body``.
"""

from __future__ import annotations

import base64
import binascii
import inspect
import os
import re
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote, urlencode

import anyio
import anyio.to_thread

from ._errors import InvalidArgumentError, InvalidURLError
from ._models import ContentChecks, ObjectKey, S3Url
from .core import bulk as _bulk
from .core.context import file_chunks

#: Bytes read from a ``Body`` at a time.
CHUNK: Final = 1024 * 1024
#: S3 caps a LIST page (and a DeleteObjects request) at 1000 keys.
MAX_KEYS: Final = 1000
_RANGE_RE: Final = re.compile(r"bytes=(\d*)-(\d*)")


def content_checks(honoured: Mapping[str, Any]) -> ContentChecks | None:
    """What ``ContentMD5``/``ChecksumSHA256`` (base64) and ``ContentLength`` announce."""
    algorithm = honoured.get("ChecksumAlgorithm", "SHA256")
    if algorithm != "SHA256":
        # Another algorithm's checksum would have to be computed, stored and returned for
        # the file; the stored object's own S3 checksum is the delta's, not the file's.
        raise InvalidArgumentError(
            f"ChecksumAlgorithm {algorithm!r} is not supported: deltaglider records and "
            "checks the SHA-256 of every file; give ChecksumAlgorithm='SHA256' (the "
            "response then carries ChecksumSHA256) or leave it out"
        )
    if not {"ContentMD5", "ChecksumSHA256", "ContentLength"} & honoured.keys():
        return None
    size = honoured.get("ContentLength")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
        raise InvalidArgumentError(f"ContentLength must be an int >= 0, got {size!r}")
    return ContentChecks(
        md5=_b64_hex("ContentMD5", honoured.get("ContentMD5"), 16),
        sha256=_b64_hex("ChecksumSHA256", honoured.get("ChecksumSHA256"), 32),
        size=size,
    )


def _b64_hex(name: str, value: Any, length: int) -> str | None:
    """A base64 digest as lowercase hex; InvalidArgumentError when it is not one."""
    if value is None:
        return None
    try:
        raw = base64.b64decode(str(value), validate=True)
    except (ValueError, binascii.Error):
        raw = b""
    if len(raw) != length:
        raise InvalidArgumentError(f"{name} must be a base64 digest of {length} bytes")
    return raw.hex()


def text_value(name: str, value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidArgumentError(f"{name} must be a str, got {type(value).__name__}")
    return value


def bucket_name(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidArgumentError(f"Bucket must be a non-empty str, got {value!r}")
    return value


def key_name(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidArgumentError(f"Key must be a non-empty str, got {value!r}")
    return value


def max_keys(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidArgumentError(f"MaxKeys must be an int >= 0, got {value!r}")
    return min(value, MAX_KEYS)


def object_url(s3_url: str) -> ObjectKey:
    """An ``s3://bucket/key`` URL naming one object (not a prefix)."""
    url = S3Url.parse(s3_url)
    if url.is_prefix:
        raise InvalidURLError(f"S3 URL must name an object, not a prefix: {s3_url!r}")
    return ObjectKey(url.bucket, url.key)


def copy_source(source: Any) -> ObjectKey:
    bucket: Any
    key: Any
    if isinstance(source, str):
        bucket, _, key = source.lstrip("/").partition("/")
        key = key.partition("?versionId=")[0]
    elif isinstance(source, Mapping):
        bucket, key = source.get("Bucket"), source.get("Key")
    else:
        raise InvalidArgumentError(
            f"CopySource must be 'bucket/key' or a mapping, got {type(source).__name__}"
        )
    return ObjectKey(bucket_name(bucket), key_name(key))


def parse_delete(delete: Any) -> tuple[list[str], bool]:
    if not isinstance(delete, Mapping) or not isinstance(delete.get("Objects"), Sequence):
        raise InvalidArgumentError('Delete must be {"Objects": [{"Key": ...}, ...]}')
    keys = []
    for entry in delete["Objects"]:
        if not isinstance(entry, Mapping):
            raise InvalidArgumentError(f"each Delete object must be a mapping, got {entry!r}")
        keys.append(key_name(entry.get("Key")))
    return keys, bool(delete.get("Quiet", False))


def tagging(tags: Mapping[str, str]) -> str:
    """``tags`` as the URL-encoded ``Tagging`` string S3 takes (``k1=v1&k2=v2``)."""
    if not isinstance(tags, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in tags.items()
    ):
        raise InvalidArgumentError(f"tags must map str to str, got {tags!r}")
    return urlencode(tags, quote_via=quote)


def parse_range(spec: Any) -> tuple[int | None, int | None]:
    """``bytes=a-b`` → (a, b); ``bytes=a-`` → (a, None); ``bytes=-n`` → (None, n)."""
    match = _RANGE_RE.fullmatch(spec.strip()) if isinstance(spec, str) else None
    if match is None or match.group(1) == match.group(2) == "":
        raise InvalidArgumentError(
            f"Range must be bytes=START-END, bytes=START- or bytes=-SUFFIX, got {spec!r}"
        )
    first, last = match.group(1), match.group(2)
    if first == "":
        return None, int(last)
    start = int(first)
    end = int(last) if last else None
    if end is not None and end < start:
        raise InvalidArgumentError(f"Range {spec!r} ends before it starts")
    return start, end


def span(
    wanted: tuple[int | None, int | None], size: int, spec: Any, label: str
) -> tuple[int, int]:
    """The inclusive byte span of a parsed range over ``size`` bytes."""
    first, second = wanted
    if first is None:
        start, end = max(0, size - (second or 0)), size - 1
        if second == 0:
            start = size
    else:
        start, end = first, size - 1 if second is None else min(second, size - 1)
    if start >= size or end < start:
        raise InvalidArgumentError(f"Range {spec!r} is not satisfiable: {label} has {size} bytes")
    return start, end


async def body_chunks(body: Any) -> AsyncIterator[bytes]:
    """The bytes of a ``put_object`` Body as an async iterator; type errors raise now."""
    if isinstance(body, bytes | bytearray | memoryview):
        return _memory_chunks(bytes(body))
    if isinstance(body, str):
        return _memory_chunks(body.encode("utf-8"))
    if isinstance(body, os.PathLike):
        path = Path(os.fspath(body))
        await _bulk.check_local_file(path)
        return file_chunks(path)
    read = getattr(body, "read", None)
    if callable(read):
        return _reader_chunks(read)
    if hasattr(body, "__aiter__"):
        return aiter(body)
    raise InvalidArgumentError(
        f"Body must be bytes, str, a Path, a binary file object or an async iterator of "
        f"bytes, got {type(body).__name__}"
    )


async def _memory_chunks(data: bytes) -> AsyncIterator[bytes]:
    view = memoryview(data)
    for start in range(0, len(data), CHUNK):
        yield bytes(view[start : start + CHUNK])


async def _reader_chunks(read: Callable[[int], Any]) -> AsyncIterator[bytes]:
    is_async = inspect.iscoroutinefunction(read)
    while True:
        chunk = await read(CHUNK) if is_async else await anyio.to_thread.run_sync(read, CHUNK)
        if isinstance(chunk, str):
            raise InvalidArgumentError("Body file object returns str: open it in binary mode")
        if not chunk:
            return
        yield chunk
