"""Objects written by other deltaglider implementations read back byte-exactly.

``upstream-6.2.0`` is a real bucket written by the original Python package 6.2.0; the
"Rust proxy" shapes are deltas that carry only ``dg-ref-path`` and passthrough objects
marked only by ``dg-note: passthrough``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from deltaglider_async._models import DeltaSpace, ObjectKey, StoredAs
from deltaglider_async.core.service import AsyncDeltaService
from tests.archives import make_versions

from .conftest import BundleFactory
from .support import head_metadata, key_of, list_keys, rewrite_object, sha256_file


def load_manifest(fixtures_dir: Path) -> dict[str, Any]:
    """The manifest of the 6.2.0 fixture bucket."""
    manifest: dict[str, Any] = json.loads(
        (fixtures_dir / "upstream-6.2.0" / "manifest.json").read_text(encoding="utf-8")
    )
    return manifest


def load_fixture_bucket(s3_admin: Any, bucket: str, fixtures_dir: Path) -> dict[str, Any]:
    """PUT every object of the fixture (body, metadata, content type) into ``bucket``."""
    root = fixtures_dir / "upstream-6.2.0"
    manifest = load_manifest(fixtures_dir)
    for obj in manifest["objects"]:
        s3_admin.put_object(
            Bucket=bucket,
            Key=obj["key"],
            Body=(root / obj["file"]).read_bytes(),
            Metadata=obj["metadata"],
            ContentType=obj["content_type"],
        )
    return manifest


def user_objects(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """The fixture's objects that hold a user file (everything but references)."""
    return [o for o in manifest["objects"] if not o["key"].endswith("/reference.bin")]


def test_fixture_covers_deltas_and_direct_objects(fixtures_dir: Path) -> None:
    manifest = load_manifest(fixtures_dir)
    keys = [o["key"] for o in user_objects(manifest)]
    assert any(k.endswith(".delta") for k in keys)
    assert any(not k.endswith(".delta") for k in keys)
    originals = {k.removesuffix(".delta").rpartition("/")[2] for k in keys}
    assert originals == set(manifest["originals"])


async def test_every_original_reads_back_byte_exactly(
    service: AsyncDeltaService,
    bucket: str,
    s3_admin: Any,
    fixtures_dir: Path,
    tmp_path: Path,
) -> None:
    manifest = load_fixture_bucket(s3_admin, bucket, fixtures_dir)
    assert set(list_keys(s3_admin, bucket)) == {o["key"] for o in manifest["objects"]}

    checked = 0
    for obj in user_objects(manifest):
        stored_key = obj["key"]
        logical_key = stored_key.removesuffix(".delta")
        original = manifest["originals"][logical_key.rpartition("/")[2]]
        names = {logical_key, stored_key}
        for name in sorted(names):
            out = tmp_path / "out"
            out.unlink(missing_ok=True)
            summary = await service.get(ObjectKey(bucket, name), out)
            assert sha256_file(out) == original["sha256"], name
            assert out.stat().st_size == original["size"], name
            assert summary.sha256 == original["sha256"]
            assert summary.logical_key == logical_key
            expected = StoredAs.DELTA if stored_key.endswith(".delta") else StoredAs.DIRECT
            assert summary.stored_as is expected
            checked += 1
        result = await service.verify(ObjectKey(bucket, logical_key))
        assert result.valid, (logical_key, result)
        assert result.actual_sha256 == original["sha256"]
    # 4 deltas read by both names, 2 direct objects by one.
    assert checked == 10


async def test_new_versions_join_a_6x_deltaspace(
    service: AsyncDeltaService,
    make_bundle: BundleFactory,
    bucket: str,
    s3_admin: Any,
    fixtures_dir: Path,
    tmp_path: Path,
) -> None:
    """A file stored next to 6.2.0's deltas is encoded against 6.2.0's reference."""
    load_fixture_bucket(s3_admin, bucket, fixtures_dir)
    space = DeltaSpace(bucket, "releases/app")
    reference = tmp_path / "reference.zip"
    await service.get(ObjectKey(bucket, "releases/app/app-1.0.0.zip"), reference)
    data = bytearray(reference.read_bytes())
    data[1000:1010] = b"0123456789"
    new = tmp_path / "app-1.2.0.zip"
    new.write_bytes(bytes(data))

    summary = await service.put(new, space)

    assert summary.action == "create_delta"
    assert (
        summary.ref_sha256
        == head_metadata(s3_admin, bucket, "releases/app/reference.bin")["dg-file-sha256"]
    )
    reader = make_bundle().service
    out = tmp_path / "out"
    await reader.get(key_of(space, new.name), out)
    assert out.read_bytes() == bytes(data)


@pytest.mark.parametrize("drop", [("dg-ref-key", "dg-ref-sha256"), ("dg-ref-key",)])
async def test_delta_with_only_ref_path_reads_back(
    service: AsyncDeltaService,
    make_bundle: BundleFactory,
    bucket: str,
    s3_admin: Any,
    tmp_path: Path,
    drop: tuple[str, ...],
) -> None:
    first, second = make_versions(tmp_path / "src", 2, "zip", seed=21)
    space = DeltaSpace(bucket, "proxy/app")
    await service.put(first, space)
    assert (await service.put(second, space)).action == "create_delta"
    delta_key = f"proxy/app/{second.name}.delta"
    meta = head_metadata(s3_admin, bucket, delta_key)
    shaped = {k: v for k, v in meta.items() if k not in drop}
    assert shaped["dg-ref-path"] == "reference.bin"
    rewrite_object(s3_admin, bucket, delta_key, metadata=shaped)
    assert set(head_metadata(s3_admin, bucket, delta_key)) == set(shaped)

    # Through a fresh client (the reference comes from the bucket) and through the
    # writer (the reference comes from its cache).
    for reader in (make_bundle().service, service):
        for name in (f"proxy/app/{second.name}", delta_key):
            out = tmp_path / "out"
            out.unlink(missing_ok=True)
            summary = await reader.get(ObjectKey(bucket, name), out)
            assert out.read_bytes() == second.read_bytes()
            assert summary.stored_as is StoredAs.DELTA
        assert (await reader.verify(key_of(space, second.name))).valid


@pytest.mark.parametrize("name", ["notes.txt", "bundle.zip"])
async def test_passthrough_without_compression_key_reads_back(
    service: AsyncDeltaService,
    bucket: str,
    s3_admin: Any,
    tmp_path: Path,
    name: str,
) -> None:
    source = tmp_path / name
    source.write_bytes(b"passthrough body\n" * 100)
    space = DeltaSpace(bucket, "proxy")
    assert (await service.put(source, space, allow_delta=False)).action == "upload_direct"
    key = f"proxy/{name}"
    meta = head_metadata(s3_admin, bucket, key)
    assert meta["dg-note"] == "passthrough"
    shaped = {k: v for k, v in meta.items() if k != "dg-compression"}
    rewrite_object(s3_admin, bucket, key, metadata=shaped)
    assert "dg-compression" not in head_metadata(s3_admin, bucket, key)

    out = tmp_path / "out"
    summary = await service.get(key_of(space, name), out)

    assert out.read_bytes() == source.read_bytes()
    assert summary.stored_as is StoredAs.DIRECT
    assert (await service.verify(key_of(space, name))).valid
