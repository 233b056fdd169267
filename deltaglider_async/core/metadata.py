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
from .keys import reference_space_prefix

USER_PREFIX = "user-"
ZERO_DIFF_NOTE = "zero-diff (reference identical)"
REFERENCE_NOTE = "reference"
PASSTHROUGH_NOTE = "passthrough"

# Printable ASCII except '%' stays readable in an encoded value; every other byte is escaped.
_SAFE_ASCII = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "%")
_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_HEX = re.compile(r"^[0-9a-fA-F]{64}$")
#: Metadata key prefixes that mark an object as written by a deltaglider.
_CLAIM_PREFIXES = ("dg-", "dg_")


class ObjectKind(StrEnum):
    """How a stored object must be read."""

    PLAIN = "plain"  # no deltaglider metadata: served as is
    DIRECT = "direct"  # full bytes with recorded sha256
    DELTA = "delta"  # VCDIFF against a reference
    REFERENCE = "reference"  # a space's reference.bin
    BROKEN = "broken"  # claimed by deltaglider, but its metadata cannot be trusted


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


def _header_safe(text: str) -> bool:
    """True when ``text`` survives as an HTTP header value unchanged.

    Printable ASCII only (no control characters, nothing beyond 0x7E) and no leading or
    trailing space, which servers strip from header values.
    """
    return all(" " <= c <= "~" for c in text) and text == text.strip(" ")


def _unquoted(value: str) -> str | None:
    """``value`` with its percent escapes decoded as UTF-8; None when that is impossible."""
    if not _ESCAPE.search(value):
        return None
    try:
        return unquote(value, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        return None


def encode_name(name: str) -> str:
    """An ASCII metadata value for a name or key that survives HTTP headers byte for byte.

    A name that is printable ASCII without leading or trailing space is written as it is,
    so deltaglider 6.x reads it too. Any other name (non-ASCII, control characters, spaces
    at either end) is percent-encoded UTF-8 with every ``%`` escaped; so is an ASCII name
    whose ``%XX`` sequences would read back as such a name (``a%01.zip``), so that no two
    names share one encoding. :func:`decode_name` inverts it.
    """
    if _header_safe(name):
        decoded = _unquoted(name)
        if decoded is None or _header_safe(decoded):
            return name
    return quote(name, safe=_SAFE_ASCII, encoding="utf-8")


def decode_name(value: str) -> str:
    """Inverse of :func:`encode_name`.

    A value is decoded only when it is exactly what :func:`encode_name` makes of its
    decoding; a literal ASCII name such as ``100%.zip``, ``a%20b.zip`` or ``x%FF.zip`` is
    returned unchanged.
    """
    decoded = _unquoted(value)
    if decoded is not None and decoded != value and encode_name(decoded) == value:
        return decoded
    return value


def encode_own(name: str) -> str:
    """:func:`encode_name` for a value that names the object's own name or key (its
    ``dg-original-name``, its directory's ``dg-ref-key``): a header-safe ASCII name is
    written as it is even when it reads as a percent-encoding (``pct%C3%A9/``), as 6.x
    writes it, because the reader compares it with the object's own key first
    (:func:`_decode_own`) and takes it literally when it matches."""
    return name if _header_safe(name) else encode_name(name)


def _decode_own(value: str, own: str) -> str:
    """Decode a name or key, unless it is literally ``own`` (the object's own name or key).

    An ASCII key such as ``a%C3%A9.zip`` was written verbatim by older writers (6.x and
    earlier releases of this package) yet also reads as a valid percent-encoding; the
    object's own key settles which one was meant.
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
    #: For deltas: the reference named by ``dg-ref-path`` inside the delta's own directory
    #: (the Rust proxy's relative form), when it differs from ``ref_key``.
    local_ref_key: str | None = None
    #: For ``BROKEN`` objects: why the object cannot be read, and how to repair it.
    problem: str | None = None

    @property
    def ref_candidates(self) -> tuple[str, ...]:
        """Where a delta's reference may be, in the order to try them.

        The recorded ``dg-ref-key`` first, unless it lies outside the delta's own
        directory and ``dg-ref-path`` names one inside it (a copy made by another tool
        keeps the original's ``dg-ref-key``): then the local one first. Whichever is used
        must match ``dg-ref-sha256``.
        """
        keys = [k for k in (self.ref_key, self.local_ref_key) if k]
        if self.local_ref_key and self.ref_key and self.ref_key != self.local_ref_key:
            keys.reverse()
        return tuple(dict.fromkeys(keys))


def resolve_ref_key(delta_key: str, ref_key: str | None, ref_path: str | None) -> str | None:
    """The bucket-relative reference key of a delta, from ``dg-ref-key`` or ``dg-ref-path``."""
    if ref_key:
        return ref_key
    if ref_path:
        return _join_dir(delta_key, ref_path)
    return None


def _join_dir(key: str, relative: str) -> str:
    """``relative`` placed in the directory of ``key`` (up to and including its last ``/``)."""
    head, slash, _ = key.rpartition("/")
    return head + slash + relative


#: The fields deltaglider writers record (by their canonical names).
_FIELDS = (
    "tool",
    "original_name",
    "file_sha256",
    "file_size",
    "md5",
    "created_at",
    "ref_key",
    "ref_path",
    "ref_sha256",
    "delta_size",
    "delta_cmd",
    "note",
    "compression",
    "source_name",
)


def is_claimed(metadata: Mapping[str, str]) -> bool:
    """True when ``metadata`` marks an object as written by a deltaglider.

    That is a known field under a ``dg-``/``dg_`` name (``dg-file-sha256``...), or a
    64-digit hex SHA-256 under the bare ``file_sha256``/``file-sha256`` early 6.x releases
    wrote. Anything else, such as a user's own ``ref-key``, ``tool`` or ``dg-owner``, is
    the metadata of a plain object, served as it is.
    """
    meta = {k.lower(): v for k, v in metadata.items()}
    for name in _FIELDS:
        dashed = name.replace("_", "-")
        if meta.get(f"dg-{dashed}") or meta.get(f"dg_{name}"):
            return True
    bare = meta.get("file_sha256") or meta.get("file-sha256")
    return bare is not None and bool(_HEX.match(bare))


def decode(head: ObjectHead) -> StoredMeta:
    """Classify a stored object and decode its metadata (SPEC §2, "Metadata read").

    ``PLAIN``: no deltaglider metadata; ``DIRECT``, ``DELTA``, ``REFERENCE`` by the rules
    of the spec; ``BROKEN`` (with :attr:`StoredMeta.problem`) when the object cannot be
    read as what it is: a ``.delta`` object without the metadata that turns it back into
    the file (copied by a tool that dropped ``x-amz-meta-*``), or deltaglider metadata
    without a well-formed SHA-256 to verify the bytes against.
    """
    # A plain object's own metadata is never read as deltaglider's, whatever its names.
    meta = {k.lower(): v for k, v in head.metadata.items()} if is_claimed(head.metadata) else {}
    sha = _lookup(meta, "file_sha256")
    note = _lookup(meta, "note")
    compression = _lookup(meta, "compression")
    name_segment = head.key.rpartition("/")[2]
    own_dir = head.key[: len(head.key) - len(name_segment)]
    own_reference = own_dir + "reference.bin"
    raw_ref_key, raw_ref_path = _lookup(meta, "ref_key"), meta.get("dg-ref-path")
    recorded_ref = _decode_own(raw_ref_key, own_reference) if raw_ref_key else None
    # The delta's own directory's reference: named by dg-ref-path, else (deltas of 6.x
    # and other writers that record only dg-ref-key) the one SPEC §2 puts there; copies
    # made by other tools find their reference there once the original is gone.
    named_local = (
        _join_dir(head.key, _decode_own(raw_ref_path, "reference.bin")) if raw_ref_path else None
    )
    local_ref = named_local or own_reference
    ref_key = recorded_ref or named_local
    created = _lookup(meta, "created_at")
    created_at = parse_timestamp(created) if created else None
    if created_at is None:
        created_at = head.last_modified
    original = _lookup(meta, "original_name")
    source = _lookup(meta, "source_name")
    user = {k[len(USER_PREFIX) :]: v for k, v in meta.items() if k.startswith(USER_PREFIX)}
    explicit_direct = compression == "none" or note == PASSTHROUGH_NOTE
    is_delta_key = head.key.endswith(".delta")

    raw_size = _lookup(meta, "file_size")
    size = _int_or_none(raw_size)
    problem: str | None = None
    if sha is not None and not _HEX.match(sha):
        problem = f"its recorded SHA-256 {sha!r} is not 64 hexadecimal digits"
    elif sha is None and is_delta_key and not explicit_direct:
        problem = (
            "it is named like a deltaglider delta but carries no deltaglider metadata: "
            "either a delta whose x-amz-meta-* headers a copying tool dropped (its bytes "
            "are a patch that cannot be turned back into the file), or a plain file whose "
            "own name ends in .delta, which deltaglider cannot hold under that name (read "
            "it with plain S3 tools)"
        )
    elif sha is None and meta:
        problem = "it carries deltaglider metadata but no dg-file-sha256 to verify its bytes"
    elif raw_size is not None and (size is None or size < 0):
        problem = f"its recorded size {raw_size!r} is not a number of bytes"
    if sha is not None:
        sha = sha.lower()

    if problem is not None:
        kind = ObjectKind.BROKEN
    elif sha is None:
        kind = ObjectKind.PLAIN
    elif name_segment == "reference.bin" and (note == REFERENCE_NOTE or ref_key is None):
        kind = ObjectKind.REFERENCE
    elif explicit_direct or ref_key is None:
        kind = ObjectKind.DIRECT
    else:
        kind = ObjectKind.DELTA

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
        local_ref_key=local_ref if kind is ObjectKind.DELTA and local_ref != ref_key else None,
        problem=problem,
    )


#: S3 limits user metadata to 2 KB: the UTF-8 bytes of every key and value, summed.
MAX_METADATA_BYTES = 2048
# An HTTP header name is a "token" (RFC 9110): these characters and nothing else.
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


def metadata_size(metadata: Mapping[str, str]) -> int:
    """The size S3 counts against its 2 KB metadata limit (keys and values, UTF-8 bytes)."""
    return sum(len(k.encode("utf-8")) + len(v.encode("utf-8")) for k, v in metadata.items())


def fits(metadata: Mapping[str, str]) -> bool:
    """True when ``metadata`` is within S3's 2 KB user-metadata limit."""
    return metadata_size(metadata) <= MAX_METADATA_BYTES


def validate_user_metadata(metadata: Mapping[str, str] | None) -> dict[str, str]:
    """Check the caller's ``Metadata`` and return it with lower-cased keys.

    Keys must be HTTP header tokens and values printable ASCII (S3 sends both as
    ``x-amz-meta-*`` headers); anything else raises :class:`InvalidArgumentError`
    naming the key, before anything is stored.
    """
    if not metadata:
        return {}
    clean: dict[str, str] = {}
    for key, value in metadata.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise InvalidArgumentError(f"Metadata keys and values must be str, got {key!r}")
        if not _TOKEN.match(key):
            raise InvalidArgumentError(
                f"Metadata key {key!r}: S3 metadata keys must be non-empty ASCII letters, "
                "digits or !#$%&'*+.^_`|~- (they travel as HTTP header names)"
            )
        if not all(" " <= c <= "~" for c in value):
            raise InvalidArgumentError(
                f"Metadata value of {key!r}: S3 metadata values must be printable ASCII "
                "(they travel as HTTP header values)"
            )
        clean[key.lower()] = value
    if not fits({f"{USER_PREFIX}{k}": v for k, v in clean.items()}):
        raise InvalidArgumentError(
            f"Metadata is {metadata_size(clean)} bytes: S3 allows {MAX_METADATA_BYTES} bytes "
            "of user metadata per object, deltaglider's own included"
        )
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
    """Metadata of a new ``reference.bin``.

    ``dg-source-name`` is informational: it is left out when the name would take the
    metadata past S3's 2 KB.
    """
    meta = _common(tool, sha256, size, md5, created_at)
    meta["dg-note"] = REFERENCE_NOTE
    source = encode_name(source_name)
    if fits({**meta, "dg-source-name": source}):
        meta["dg-source-name"] = source
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
    short_delta_cmd: str | None = None,
) -> dict[str, str] | None:
    """Metadata of a ``.delta`` object; None when it cannot fit S3's 2 KB limit.

    Every field 6.x needs to read the delta is kept. ``dg-delta-cmd`` is descriptive: when
    the names in it take the metadata past the limit, ``short_delta_cmd`` (the same
    command without names) is written instead. A caller given None stores the file direct.
    """
    meta = _common(tool, sha256, size, md5, created_at)
    meta["dg-original-name"] = encode_own(original_name)
    # Keys under a non-ASCII prefix are percent-encoded like names: values must be ASCII.
    meta["dg-ref-key"] = encode_own(ref_key)
    # Relative to the delta's directory: ``reference.bin``, or the later reference of a
    # re-baselined directory (``.deltaglider/refs/<generation>-<sha>/reference.bin``).
    space = reference_space_prefix(ref_key)
    meta["dg-ref-path"] = encode_name(ref_key[len(space) + 1 :] if space else ref_key)
    meta["dg-ref-sha256"] = ref_sha256
    meta["dg-delta-size"] = str(delta_size)
    if zero_diff:
        meta["dg-note"] = ZERO_DIFF_NOTE
    meta.update({f"{USER_PREFIX}{k}": v for k, v in user_metadata.items()})
    for cmd in (delta_cmd, short_delta_cmd):
        if cmd is not None and fits({**meta, "dg-delta-cmd": encode_name(cmd)}):
            meta["dg-delta-cmd"] = encode_name(cmd)
            return meta
    return None


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
    """Metadata of a directly stored object.

    ``dg-original-name`` (the key's own last segment, which nothing needs to read the
    object) is left out when it would take the metadata past S3's 2 KB.
    """
    meta = _common(tool, sha256, size, md5, created_at)
    meta["dg-note"] = PASSTHROUGH_NOTE
    meta["dg-compression"] = "none"
    meta.update({f"{USER_PREFIX}{k}": v for k, v in user_metadata.items()})
    name = encode_own(original_name)
    if fits({**meta, "dg-original-name": name}):
        meta["dg-original-name"] = name
    return meta


def is_sha256(value: str) -> bool:
    """True for 64 lowercase hex digits."""
    return bool(_SHA256.match(value))
