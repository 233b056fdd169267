"""S3's conditional parameters, applied to the logical object (the file, not its delta).

``IfMatch``/``IfNoneMatch`` compare the file's ETag (the quoted MD5 of its bytes, whatever
its stored form); ``IfModifiedSince``/``IfUnmodifiedSince`` its ``LastModified`` (the time
it was stored, to the second as HTTP dates are). The rules and their precedence are S3's
(RFC 9110 §13.2.2): a true ``If-Match`` overrides a false ``If-Unmodified-Since``, a false
``If-None-Match`` overrides a true ``If-Modified-Since``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from ._errors import InvalidArgumentError, NotModifiedError, PreconditionFailedError

__all__ = ["READ_CONDITIONS", "check_read", "check_write", "etag_matches", "same_second"]

READ_CONDITIONS = frozenset({"IfMatch", "IfNoneMatch", "IfModifiedSince", "IfUnmodifiedSince"})


def etag_matches(condition: str, etag: str) -> bool:
    """True when an ``If-Match``-style list (``*``, ``"a", "b"``) matches ``etag``."""
    wanted = {part.strip().removeprefix("W/").strip('"') for part in condition.split(",")}
    return "*" in wanted or etag.strip('"') in wanted


def _moment(name: str, value: Any) -> datetime:
    if not isinstance(value, datetime):
        raise InvalidArgumentError(f"{name} must be a datetime, got {type(value).__name__}")
    moment = value if value.tzinfo else value.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(microsecond=0)


def same_second(given: Any, actual: datetime) -> bool:
    """True when the datetime ``given`` is ``actual`` to the second (HTTP date precision)."""
    return _moment("IfMatchLastModifiedTime", given) == actual.astimezone(UTC).replace(
        microsecond=0
    )


def check_read(
    what: str,
    conditions: Mapping[str, Any],
    etag: str,
    last_modified: datetime,
    *,
    prefix: str = "",
) -> None:
    """Apply GET/HEAD conditions (``prefix="CopySource"`` for ``copy_object``'s source).

    Raises :class:`PreconditionFailedError` (HTTP 412) or :class:`NotModifiedError` (304)
    naming ``what``.
    """
    modified = last_modified.astimezone(UTC).replace(microsecond=0)
    if_match = conditions.get(f"{prefix}IfMatch")
    if_none_match = conditions.get(f"{prefix}IfNoneMatch")
    if if_match is not None and not etag_matches(str(if_match), etag):
        raise PreconditionFailedError(f"{what}: ETag {etag} does not match If-Match {if_match}")
    since = conditions.get(f"{prefix}IfUnmodifiedSince")
    if if_match is None and since is not None:
        limit = _moment(f"{prefix}IfUnmodifiedSince", since)
        if modified > limit:
            raise PreconditionFailedError(
                f"{what}: modified {modified.isoformat()}, after If-Unmodified-Since"
            )
    not_modified = NotModifiedError if not prefix else PreconditionFailedError
    if if_none_match is not None and etag_matches(str(if_none_match), etag):
        raise not_modified(f"{what}: ETag {etag} matches If-None-Match {if_none_match}")
    since = conditions.get(f"{prefix}IfModifiedSince")
    if if_none_match is None and since is not None:
        limit = _moment(f"{prefix}IfModifiedSince", since)
        if modified <= limit:
            raise not_modified(f"{what}: not modified since {limit.isoformat()}")


def check_write(what: str, conditions: Mapping[str, Any], current_etag: str | None) -> None:
    """Apply PUT conditions to the name's current ETag (None when it does not exist).

    ``IfNoneMatch="*"``: the name must not exist; ``IfMatch``: its ETag must match.
    Raises :class:`PreconditionFailedError`. (Checked before the write: another writer may
    still store the name meanwhile, as on servers without conditional writes.)
    """
    if_none_match = conditions.get("IfNoneMatch")
    if if_none_match is not None:
        if if_none_match != "*":
            raise InvalidArgumentError("IfNoneMatch on a write must be '*'")
        if current_etag is not None:
            raise PreconditionFailedError(f"{what} already exists (If-None-Match: *)")
    if_match = conditions.get("IfMatch")
    if if_match is not None and (
        current_etag is None or not etag_matches(str(if_match), current_etag)
    ):
        raise PreconditionFailedError(
            f"{what}: current ETag {current_etag} does not match If-Match"
        )
