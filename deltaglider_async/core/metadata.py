"""The metadata codec: what deltaglider writes into S3 user metadata, and how it reads it back.

Writing follows SPEC §2 exactly (``dg-`` keys, lower case, ASCII values). Reading accepts
every alias older writers used: ``dg-x``, ``dg_x``, bare ``x`` with underscores and bare
``x`` with dashes, plus the Rust proxy's ``dg-ref-path``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from urllib.parse import quote, unquote

from .._errors import InvalidArgumentError
from ..ports.storage import ObjectHead

USER_PREFIX = "user-"
ZERO_DIFF_NOTE = "zero-diff (reference identical)"
REFERENCE_NOTE = "reference"
PASSTHROUGH_NOTE = "passthrough"

# Printable ASCII except '%' stays readable; everything else is percent-encoded.
_SAFE_ASCII = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "%")
_NON_ASCII_ESCAPE = re.compile(r"%[89A-Fa-f][0-9A-Fa-f]")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class ObjectKind(StrEnum):
    """How a stored object must be read."""

    PLAIN = "plain"  # no deltaglider metadata: served as is
    DIRECT = "direct"  # full bytes with recorded sha256
    DELTA = "delta"  # VCDIFF against a reference
    REFERENCE = "reference"  # a space's reference.bin


def format_timestamp(moment: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SS.ffffffZ`` in UTC."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_timestamp(value: str) -> datetime | None:
    """Parse the timestamps 6.x and this package write (with or without ``Z``)."""
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def encode_name(name: str) -> str:
    """An ASCII metadata value for a file name; non-ASCII names are percent-encoded UTF-8."""
    if name.isascii():
        return name
    return quote(name, safe=_SAFE_ASCII, encoding="utf-8")


def decode_name(value: str) -> str:
    """Inverse of :func:`encode_name`; plain ASCII names containing ``%`` stay as written.

    Only values holding an escape of a non-ASCII byte that decode as valid UTF-8 were
    written by :func:`encode_name`; anything else (``100%.zip``, ``x%FF.zip``) is a
    literal ASCII name and is returned unchanged.
    """
    if _NON_ASCII_ESCAPE.search(value):
        try:
            return unquote(value, encoding="utf-8", errors="strict")
        except UnicodeDecodeError:
            return value
    return value


def _decode_own(value: str, own: str) -> str:
    """Decode a name or key, unless it is literally ``own`` (the object's own name or key).

    An ASCII key such as ``a%C3%A9.zip`` is written verbatim yet also reads as a valid
    percent-encoding; the object's own key settles which one was meant.
    """
    return value if value == own else decode_name(value)


def _aliases(field_name: str) -> tuple[str, ...]:
    dashed = field_name.replace("_", "-")
    return (f"dg-{dashed}", f"dg_{field_name}", field_name, dashed)


def _lookup(metadata: Mapping[str, str], field_name: str) -> str | None:
    for alias in _aliases(field_name):
        value = metadata.get(alias)
        if value is not None and value != "":
            return value
    return None


def _int_or_none(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class StoredMeta:
    """Decoded deltaglider metadata of one stored object."""

    kind: ObjectKind
    file_sha256: str | None = None
    file_size: int | None = None
    md5: str | None = None
    tool: str | None = None
    original_name: str | None = None
    source_name: str | None = None
    created_at: datetime | None = None
    ref_key: str | None = None
    ref_sha256: str | None = None
    delta_size: int | None = None
    delta_cmd: str | None = None
    note: str | None = None
    compression: str | None = None
    user_metadata: dict[str, str] = field(default_factory=dict)


def resolve_ref_key(delta_key: str, ref_key: str | None, ref_path: str | None) -> str | None:
    """The bucket-relative reference key of a delta, from ``dg-ref-key`` or ``dg-ref-path``."""
    if ref_key:
        return ref_key
    if ref_path:
        space, _, _ = delta_key.rpartition("/")
        return f"{space}/{ref_path}" if space else ref_path
    return None


def decode(head: ObjectHead) -> StoredMeta:
    """Classify a stored object and decode its metadata (SPEC §2, "Metadata read")."""
    meta = {k.lower(): v for k, v in head.metadata.items()}
    sha = _lookup(meta, "file_sha256")
    if sha is not None:
        sha = sha.lower()
    note = _lookup(meta, "note")
    compression = _lookup(meta, "compression")
    space, _, name_segment = head.key.rpartition("/")
    own_reference = f"{space}/reference.bin" if space else "reference.bin"
    raw_ref_key, raw_ref_path = _lookup(meta, "ref_key"), meta.get("dg-ref-path")
    ref_key = resolve_ref_key(
        head.key,
        _decode_own(raw_ref_key, own_reference) if raw_ref_key else None,
        _decode_own(raw_ref_path, "reference.bin") if raw_ref_path else None,
    )
    created = _lookup(meta, "created_at")
    created_at = parse_timestamp(created) if created else None
    if created_at is None:
        created_at = head.last_modified
    original = _lookup(meta, "original_name")
    source = _lookup(meta, "source_name")
    user = {k[len(USER_PREFIX) :]: v for k, v in meta.items() if k.startswith(USER_PREFIX)}

    if sha is None:
        kind = ObjectKind.PLAIN
    elif name_segment == "reference.bin" and (note == REFERENCE_NOTE or ref_key is None):
        kind = ObjectKind.REFERENCE
    elif compression == "none" or note == PASSTHROUGH_NOTE or ref_key is None:
        kind = ObjectKind.DIRECT
    else:
        kind = ObjectKind.DELTA

    size = _int_or_none(_lookup(meta, "file_size"))
    if size is None and kind in (ObjectKind.DIRECT, ObjectKind.REFERENCE, ObjectKind.PLAIN):
        size = head.size
    return StoredMeta(
        kind=kind,
        file_sha256=sha,
        file_size=size,
        md5=_lookup(meta, "md5"),
        tool=_lookup(meta, "tool"),
        original_name=(
            _decode_own(original, name_segment.removesuffix(".delta")) if original else None
        ),
        source_name=decode_name(source) if source else None,
        created_at=created_at,
        ref_key=ref_key,
        ref_sha256=(_lookup(meta, "ref_sha256") or "").lower() or None,
        delta_size=_int_or_none(_lookup(meta, "delta_size")),
        delta_cmd=_lookup(meta, "delta_cmd"),
        note=note,
        compression=compression,
        user_metadata=user,
    )


def validate_user_metadata(metadata: Mapping[str, str] | None) -> dict[str, str]:
    """Check the caller's ``Metadata`` (ASCII keys and values) and return it lower-cased."""
    if not metadata:
        return {}
    clean: dict[str, str] = {}
    for key, value in metadata.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise InvalidArgumentError(f"Metadata keys and values must be str, got {key!r}")
        if not key or not key.isascii() or not value.isascii():
            raise InvalidArgumentError(
                f"Metadata key {key!r}: S3 metadata keys and values must be non-empty ASCII"
            )
        clean[key.lower()] = value
    return clean


def _common(tool: str, sha256: str, size: int, md5: str, created_at: datetime) -> dict[str, str]:
    return {
        "dg-tool": encode_name(tool),
        "dg-file-sha256": sha256,
        "dg-file-size": str(size),
        "dg-md5": md5,
        "dg-created-at": format_timestamp(created_at),
    }


def reference_metadata(
    *, tool: str, source_name: str, sha256: str, size: int, md5: str, created_at: datetime
) -> dict[str, str]:
    """Metadata of a new ``reference.bin``."""
    meta = _common(tool, sha256, size, md5, created_at)
    meta["dg-source-name"] = encode_name(source_name)
    meta["dg-note"] = REFERENCE_NOTE
    return meta


def delta_metadata(
    *,
    tool: str,
    original_name: str,
    sha256: str,
    size: int,
    md5: str,
    created_at: datetime,
    ref_key: str,
    ref_sha256: str,
    delta_size: int,
    delta_cmd: str,
    zero_diff: bool,
    user_metadata: Mapping[str, str],
) -> dict[str, str]:
    """Metadata of a ``.delta`` object."""
    meta = _common(tool, sha256, size, md5, created_at)
    meta["dg-original-name"] = encode_name(original_name)
    # Keys under a non-ASCII prefix are percent-encoded like names: values must be ASCII.
    meta["dg-ref-key"] = encode_name(ref_key)
    meta["dg-ref-path"] = encode_name(ref_key.rpartition("/")[2])
    meta["dg-ref-sha256"] = ref_sha256
    meta["dg-delta-size"] = str(delta_size)
    meta["dg-delta-cmd"] = encode_name(delta_cmd)
    if zero_diff:
        meta["dg-note"] = ZERO_DIFF_NOTE
    meta.update({f"{USER_PREFIX}{k}": v for k, v in user_metadata.items()})
    return meta


def direct_metadata(
    *,
    tool: str,
    original_name: str,
    sha256: str,
    size: int,
    md5: str,
    created_at: datetime,
    user_metadata: Mapping[str, str],
) -> dict[str, str]:
    """Metadata of a directly stored object."""
    meta = _common(tool, sha256, size, md5, created_at)
    meta["dg-original-name"] = encode_name(original_name)
    meta["dg-note"] = PASSTHROUGH_NOTE
    meta["dg-compression"] = "none"
    meta.update({f"{USER_PREFIX}{k}": v for k, v in user_metadata.items()})
    return meta


def is_sha256(value: str) -> bool:
    """True for 64 lowercase hex digits."""
    return bool(_SHA256.match(value))
