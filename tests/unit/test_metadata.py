"""The metadata codec: what is written to S3 user metadata and how every alias is read back."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from deltaglider_async._errors import InvalidArgumentError
from deltaglider_async.core import metadata as codec
from deltaglider_async.core.metadata import ObjectKind
from deltaglider_async.ports.storage import ObjectHead

from .support import BUCKET, TOOL, Harness, archive, md5, sha256, variant

SHA_A = "a" * 64
SHA_B = "b" * 64
LAST_MODIFIED = datetime(2020, 5, 6, 7, 8, 9, tzinfo=UTC)
CREATED_AT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")
FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "upstream-6.2.0"


def head(key: str, metadata: dict[str, str], *, size: int = 10) -> ObjectHead:
    return ObjectHead(
        key=key, size=size, etag='"etag"', last_modified=LAST_MODIFIED, metadata=metadata
    )


def assert_ascii_lower(metadata: dict[str, str]) -> None:
    for key, value in metadata.items():
        assert key == key.lower(), key
        assert key.isascii(), key
        assert value.isascii(), (key, value)


# --------------------------------------------------------------------------- writing


async def test_reference_delta_and_direct_metadata_are_written_exactly(h: Harness) -> None:
    first = archive(1)
    second = variant(first, 2)
    await h.put("releases/app/app-1.zip", first, metadata={"Build": "17"})
    await h.put("releases/app/app-2.zip", second)
    await h.put("releases/app/notes.txt", b"plain text notes\n", metadata={"owner": "qa"})
    created = "2024-01-02T03:04:05.123456Z"

    reference = h.storage.metadata(BUCKET, "releases/app/reference.bin")
    assert reference == {
        "dg-tool": TOOL,
        "dg-source-name": "app-1.zip",
        "dg-file-sha256": sha256(first),
        "dg-file-size": str(len(first)),
        "dg-md5": md5(first),
        "dg-created-at": created,
        "dg-note": "reference",
    }

    zero = h.storage.metadata(BUCKET, "releases/app/app-1.zip.delta")
    zero_delta = h.storage.data(BUCKET, "releases/app/app-1.zip.delta")
    assert zero == {
        "dg-tool": TOOL,
        "dg-original-name": "app-1.zip",
        "dg-file-sha256": sha256(first),
        "dg-file-size": str(len(first)),
        "dg-md5": md5(first),
        "dg-created-at": created,
        "dg-ref-key": "releases/app/reference.bin",
        "dg-ref-path": "reference.bin",
        "dg-ref-sha256": sha256(first),
        "dg-delta-size": str(len(zero_delta)),
        "dg-delta-cmd": "fakediff -e -s reference.bin app-1.zip app-1.zip.delta",
        "dg-note": "zero-diff (reference identical)",
        "user-build": "17",
    }

    delta = h.storage.metadata(BUCKET, "releases/app/app-2.zip.delta")
    assert delta == {
        "dg-tool": TOOL,
        "dg-original-name": "app-2.zip",
        "dg-file-sha256": sha256(second),
        "dg-file-size": str(len(second)),
        "dg-md5": md5(second),
        "dg-created-at": created,
        "dg-ref-key": "releases/app/reference.bin",
        "dg-ref-path": "reference.bin",
        "dg-ref-sha256": sha256(first),
        "dg-delta-size": str(len(h.storage.data(BUCKET, "releases/app/app-2.zip.delta"))),
        "dg-delta-cmd": "fakediff -e -s reference.bin app-2.zip app-2.zip.delta",
    }

    direct = h.storage.metadata(BUCKET, "releases/app/notes.txt")
    assert direct == {
        "dg-tool": TOOL,
        "dg-original-name": "notes.txt",
        "dg-file-sha256": sha256(b"plain text notes\n"),
        "dg-file-size": "17",
        "dg-md5": md5(b"plain text notes\n"),
        "dg-created-at": created,
        "dg-note": "passthrough",
        "dg-compression": "none",
        "user-owner": "qa",
    }
    for meta in (reference, zero, delta, direct):
        assert_ascii_lower(meta)
        assert CREATED_AT.match(meta["dg-created-at"])


async def test_root_space_reference_key_has_no_prefix(h: Harness) -> None:
    await h.put("a.zip", archive(3))
    meta = h.storage.metadata(BUCKET, "a.zip.delta")
    assert meta["dg-ref-key"] == "reference.bin"
    assert meta["dg-ref-path"] == "reference.bin"
    assert h.stored_keys() == ["a.zip.delta", "reference.bin"]


async def test_content_type_is_the_object_header_not_metadata(h: Harness) -> None:
    await h.put("d/a.zip", archive(4), content_type="application/zip")
    await h.put("d/n.txt", b"x", content_type="text/plain")
    assert h.storage.objects(BUCKET)["d/a.zip.delta"].content_type == "application/zip"
    assert h.storage.objects(BUCKET)["d/n.txt"].content_type == "text/plain"
    for key in ("d/a.zip.delta", "d/n.txt"):
        assert not any("content" in k and "type" in k for k in h.storage.metadata(BUCKET, key))


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=UTC), "2024-01-02T03:04:05.123456Z"),
        (datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), "2024-01-02T03:04:05.000000Z"),
        (
            datetime(2024, 1, 2, 5, 4, 5, 7, tzinfo=timezone(timedelta(hours=2))),
            "2024-01-02T03:04:05.000007Z",
        ),
    ],
)
def test_created_at_format(moment: datetime, expected: str) -> None:
    assert codec.format_timestamp(moment) == expected
    assert codec.parse_timestamp(expected) == moment


def test_timestamps_of_6x_without_z_are_utc() -> None:
    # 6.2.0 wrote direct objects' created-at without the trailing Z.
    assert codec.parse_timestamp("2026-11-24T19:06:43.325282") == datetime(
        2026, 11, 24, 19, 6, 43, 325282, tzinfo=UTC
    )


# --------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    "name", ["café.zip", "日本語 リリース.tar.gz", "é%41.zip", "naïve 100%.zip", "ü%C3%A9.jar"]
)
def test_non_ascii_names_are_percent_encoded_and_decoded_back(name: str) -> None:
    encoded = codec.encode_name(name)
    assert encoded.isascii()
    assert encoded != name
    assert codec.decode_name(encoded) == name


@pytest.mark.parametrize(
    "name", ["100%.zip", "50%off.tar", "a%20b.zip", "x%zz.zip", "%", "x%FF.zip", "a%e9.zip"]
)
def test_ascii_names_with_percent_are_written_and_read_verbatim(name: str) -> None:
    assert codec.encode_name(name) == name
    assert codec.decode_name(name) == name


@pytest.mark.parametrize("name", ["app-1.0.zip", "50%off.zip", "x%FF.zip", "a%C3%A9.zip"])
def test_ascii_original_name_reads_back_unchanged(name: str) -> None:
    # A literal ASCII name that merely looks percent-encoded is the object's own name.
    meta = codec.decode(
        head(f"d/{name}", {"dg-file-sha256": SHA_A, "dg-original-name": codec.encode_name(name)})
    )
    assert meta.original_name == name


async def test_non_ascii_names_round_trip_through_the_service(h: Harness) -> None:
    data = archive(5)
    await h.put("données/café.zip", data)
    await h.put("données/café-2.zip", variant(data, 6))
    await h.put("données/résumé.txt", b"bonjour")
    for key in ("données/café.zip.delta", "données/café-2.zip.delta", "données/résumé.txt"):
        assert_ascii_lower(h.storage.metadata(BUCKET, key))
    assert h.storage.metadata(BUCKET, "données/café.zip.delta")["dg-original-name"] == (
        "caf%C3%A9.zip"
    )
    resolved = await h.service.resolve(h.key("données/café-2.zip"))
    assert resolved.meta.original_name == "café-2.zip"
    assert resolved.meta.ref_key == "données/reference.bin"
    ref_head = await h.storage.head(BUCKET, "données/reference.bin")
    assert ref_head is not None
    ref = codec.decode(ref_head)
    assert ref.source_name == "café.zip"
    assert await h.read("données/café-2.zip") == variant(data, 6)
    assert await h.read("données/résumé.txt") == b"bonjour"


# --------------------------------------------------------------------------- aliases

FIELD_VALUES: dict[str, tuple[str, Any]] = {
    "tool": ("deltaglider/6.2.0", "deltaglider/6.2.0"),
    "original_name": ("app-1.0.0.zip", "app-1.0.0.zip"),
    "file_sha256": ("C" * 64, "c" * 64),
    "file_size": ("183102", 183102),
    "created_at": (
        "2026-11-24T19:06:43.109666Z",
        datetime(2026, 11, 24, 19, 6, 43, 109666, tzinfo=UTC),
    ),
    "ref_key": ("releases/app/reference.bin", "releases/app/reference.bin"),
    "ref_sha256": ("D" * 64, "d" * 64),
    "delta_size": ("58", 58),
    "delta_cmd": ("xdelta3 -e -9 -s reference.bin a b", "xdelta3 -e -9 -s reference.bin a b"),
    "note": ("zero-diff (reference identical)", "zero-diff (reference identical)"),
    "compression": ("none", "none"),
    "source_name": ("app-1.0.0.zip", "app-1.0.0.zip"),
}


def alias_forms(field_name: str) -> list[str]:
    dashed = field_name.replace("_", "-")
    return [f"dg-{dashed}", f"dg_{field_name}", field_name, dashed]


@pytest.mark.parametrize(
    ("field_name", "alias"),
    [(f, a) for f in FIELD_VALUES for a in alias_forms(f)],
)
def test_every_alias_of_every_field_is_read(field_name: str, alias: str) -> None:
    raw, expected = FIELD_VALUES[field_name]
    base = {"dg-file-sha256": SHA_A, "dg-ref-key": "releases/app/reference.bin"}
    base.pop(f"dg-{field_name.replace('_', '-')}", None)
    meta = codec.decode(head("releases/app/app.zip.delta", {**base, alias: raw}))
    assert getattr(meta, field_name) == expected


def test_upper_case_metadata_keys_are_read() -> None:
    meta = codec.decode(
        head("d/a.zip.delta", {"DG-File-Sha256": SHA_A, "Dg-Ref-Key": "d/reference.bin"})
    )
    assert meta.kind is ObjectKind.DELTA
    assert meta.file_sha256 == SHA_A


@pytest.mark.parametrize(
    ("delta_key", "expected"),
    [
        ("releases/app/a.zip.delta", "releases/app/reference.bin"),
        ("a.zip.delta", "reference.bin"),
        ("a//b/a.zip.delta", "a//b/reference.bin"),
    ],
)
def test_ref_path_is_resolved_against_the_delta_space(delta_key: str, expected: str) -> None:
    meta = codec.decode(head(delta_key, {"dg-file-sha256": SHA_A, "dg-ref-path": "reference.bin"}))
    assert meta.kind is ObjectKind.DELTA
    assert meta.ref_key == expected


def test_ref_key_wins_over_ref_path() -> None:
    meta = codec.decode(
        head(
            "x/a.zip.delta",
            {"dg-file-sha256": SHA_A, "dg-ref-key": "x/reference.bin", "dg-ref-path": "other.bin"},
        )
    )
    assert meta.ref_key == "x/reference.bin"


# --------------------------------------------------------------------------- classification


@pytest.mark.parametrize(
    ("key", "metadata", "kind"),
    [
        ("d/a.zip", {}, ObjectKind.PLAIN),
        # Claimed by deltaglider (dg-* keys) but with no SHA-256 to check: never served.
        ("d/a.zip", {"dg-tool": "x", "dg-ref-key": "d/reference.bin"}, ObjectKind.BROKEN),
        ("d/a.zip.delta", {}, ObjectKind.BROKEN),
        ("d/a.zip.delta", {"dg-ref-key": "d/reference.bin"}, ObjectKind.BROKEN),
        ("d/a.zip", {"dg-file-sha256": "not-a-sha"}, ObjectKind.BROKEN),
        ("d/a.zip", {"note": "a user's own note"}, ObjectKind.PLAIN),
        ("d/a.zip.delta", {"dg-file-sha256": SHA_A}, ObjectKind.DIRECT),
        (
            "d/a.zip.delta",
            {"dg-file-sha256": SHA_A, "dg-ref-key": "d/reference.bin", "dg-compression": "none"},
            ObjectKind.DIRECT,
        ),
        (
            "d/a.zip.delta",
            {"dg-file-sha256": SHA_A, "dg-ref-key": "d/reference.bin", "dg-note": "passthrough"},
            ObjectKind.DIRECT,
        ),
        (
            "d/a.zip.delta",
            {"dg-file-sha256": SHA_A, "dg-ref-key": "d/reference.bin"},
            ObjectKind.DELTA,
        ),
        ("d/a.zip.delta", {"file_sha256": SHA_A, "dg-ref-path": "reference.bin"}, ObjectKind.DELTA),
        (
            "d/reference.bin",
            {"dg-file-sha256": SHA_A, "dg-note": "reference"},
            ObjectKind.REFERENCE,
        ),
        ("reference.bin", {"dg-file-sha256": SHA_A}, ObjectKind.REFERENCE),
    ],
)
def test_classification(key: str, metadata: dict[str, str], kind: ObjectKind) -> None:
    assert codec.decode(head(key, metadata)).kind is kind


@pytest.mark.parametrize("created", [None, "", "not a date"])
def test_missing_created_at_falls_back_to_last_modified(created: str | None) -> None:
    metadata = {"dg-file-sha256": SHA_A}
    if created is not None:
        metadata["dg-created-at"] = created
    assert codec.decode(head("d/a.txt", metadata)).created_at == LAST_MODIFIED


def test_sizes_of_direct_objects_fall_back_to_the_stored_size() -> None:
    assert codec.decode(head("d/a.txt", {"dg-file-sha256": SHA_A}, size=42)).file_size == 42
    delta = codec.decode(
        head("d/a.zip.delta", {"dg-file-sha256": SHA_A, "dg-ref-key": "d/reference.bin"})
    )
    assert delta.file_size is None  # the stored size is the delta's, not the file's


def test_every_object_written_by_6x_is_classified() -> None:
    manifest = json.loads((FIXTURE / "manifest.json").read_text())
    kinds = set()
    for obj in manifest["objects"]:
        meta = codec.decode(head(obj["key"], obj["metadata"], size=obj["size"]))
        name = obj["key"].rpartition("/")[2]
        if name == "reference.bin":
            expected = ObjectKind.REFERENCE
        elif name.endswith(".delta"):
            expected = ObjectKind.DELTA
        elif any(k.endswith("sha256") for k in obj["metadata"]):
            expected = ObjectKind.DIRECT
        else:
            expected = ObjectKind.PLAIN
        assert meta.kind is expected, obj["key"]
        kinds.add(meta.kind)
        assert meta.created_at is not None
        if meta.kind is ObjectKind.DELTA:
            assert meta.ref_key == obj["key"].rpartition("/")[0] + "/reference.bin" or (
                "/" not in obj["key"] and meta.ref_key == "reference.bin"
            )
    assert {ObjectKind.REFERENCE, ObjectKind.DELTA, ObjectKind.DIRECT} <= kinds


# --------------------------------------------------------------------------- user metadata


async def test_user_metadata_round_trips_without_prefix(h: Harness) -> None:
    data = archive(7)
    await h.put("d/a.zip", data, metadata={"Owner": "release-bot", "build-id": "1234"})
    await h.put("d/b.txt", b"text", metadata={"owner": "me"})
    stored = h.storage.metadata(BUCKET, "d/a.zip.delta")
    assert stored["user-owner"] == "release-bot"
    assert stored["user-build-id"] == "1234"
    assert (await h.service.resolve(h.key("d/a.zip"))).meta.user_metadata == {
        "owner": "release-bot",
        "build-id": "1234",
    }
    assert (await h.service.resolve(h.key("d/b.txt"))).meta.user_metadata == {"owner": "me"}
    # The reference never carries a caller's metadata.
    assert not any(k.startswith("user-") for k in h.storage.metadata(BUCKET, "d/reference.bin"))


@pytest.mark.parametrize(
    "metadata", [{"owner": "café"}, {"clé": "value"}, {"": "empty key"}, {"k": 3}]
)
async def test_non_ascii_user_metadata_is_refused_before_anything_is_written(
    h: Harness, metadata: dict[str, Any]
) -> None:
    with pytest.raises(ValueError, match="Metadata") as info:
        await h.put("d/a.zip", archive(8), metadata=metadata)
    assert isinstance(info.value, InvalidArgumentError)
    assert h.storage.writes() == []
    assert h.stored_keys() == []
    assert h.work_files() == []
