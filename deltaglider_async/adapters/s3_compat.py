"""What makes every request acceptable to S3-compatible stores, not only to AWS.

botocore's defaults follow AWS. Stores that speak the S3 protocol differ in what they
answer and what they accept, and :func:`install` adjusts one aiobotocore client to the
common ground:

* **HTTP 429 is retried.** Cloudflare R2 (``TooManyRequests``), Scaleway and others
  throttle with 429 rather than AWS's 503 ``SlowDown``; botocore's standard retry mode
  retries 429 only when the error code is one of AWS's throttling codes. Here a 429 is
  retried whatever its code, within the client's ``max_attempts``, after the
  ``Retry-After`` the server asked for (capped) or an exponential backoff with full
  jitter (botocore's own formula: ``random() * min(2 ** (attempt - 1), 20)`` seconds).
* **DeleteObjects and PutBucketAcl carry Content-MD5**, the checksum every store accepts,
  instead of the CRC32 botocore >= 1.36 sends even when checksums are "when required":
  MinIO before 2025-01, OCI, OVH and others answer ``MissingContentMD5`` or
  ``InvalidRequest`` to the CRC32 form, and no store refuses Content-MD5.
* **No ``Expect: 100-continue``.** botocore asks for it on every upload; aiohttp then
  waits for the interim answer with no timeout at all, and some stores (R2 says so
  explicitly) never send one.

The request side of other differences lives where the request is made: conditional
writes answered with ``NotImplemented``/``InvalidRequest`` fall back (see
``s3_storage``), listings that end a truncated page without a token continue after the
last key, and bodies cut mid-transfer are resumed with a ranged GET.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import random
import time
from typing import Any, Final

from botocore.handlers import add_expect_header

__all__ = ["MAX_RETRY_AFTER", "backoff_delay", "install", "retry_after"]

#: Longest wait a ``Retry-After`` header can impose on one retry, in seconds.
MAX_RETRY_AFTER: Final = 20.0
#: Operations whose required checksum is sent as Content-MD5.
_MD5_OPERATIONS: Final = ("DeleteObjects", "PutBucketAcl")


def backoff_delay(attempt: int) -> float:
    """Seconds to wait before retry number ``attempt`` (1-based): full jitter, capped."""
    return random.random() * min(2.0 ** (attempt - 1), 20.0)


def retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """The delay a ``Retry-After`` header asks for (seconds or an HTTP date), capped at
    :data:`MAX_RETRY_AFTER`; ``None`` when absent or unreadable."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return min(float(text), MAX_RETRY_AFTER)
    try:
        when = email.utils.parsedate_to_datetime(text).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, min(when - (time.time() if now is None else now), MAX_RETRY_AFTER))


def install(client: Any, *, max_attempts: int) -> None:
    """Adjust the aiobotocore S3 ``client`` as the module docstring says.

    ``max_attempts`` is the client's retry budget (botocore's ``max_attempts``: retries
    after the first attempt), which 429 retries share.
    """
    events = client.meta.events

    def retry_429(response: Any = None, attempts: int = 1, **_: Any) -> float | None:
        # Registered after botocore's standard handler, which answers None for a 429
        # whose code is not an AWS throttling code: the first non-None answer wins.
        if response is None or attempts > max_attempts:
            return None
        http = response[0]
        if getattr(http, "status_code", None) != 429:
            return None
        asked = retry_after(http.headers.get("retry-after"))
        return asked if asked is not None else backoff_delay(attempts)

    events.register("needs-retry.s3", retry_429, unique_id="deltaglider-retry-429")

    def content_md5(params: dict[str, Any], **_: Any) -> None:
        body = params.get("body") or b""
        if isinstance(body, str):
            body = body.encode()
        if not isinstance(body, bytes | bytearray):
            return  # a streamed body: leave botocore's checksum in place
        digest = hashlib.md5(body, usedforsecurity=False).digest()
        params["headers"]["Content-MD5"] = base64.b64encode(digest).decode()
        # botocore adds x-amz-checksum-crc32 later from this context entry.
        params.get("context", {}).pop("checksum", None)

    for operation in _MD5_OPERATIONS:
        events.register(
            f"before-call.s3.{operation}",
            content_md5,
            unique_id=f"deltaglider-content-md5-{operation}",
        )
    events.unregister("before-call.s3", add_expect_header)
