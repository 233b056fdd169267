"""Multipart uploads (SPEC §3.6): files above the threshold round-trip byte-exactly."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any, cast

from deltaglider_async._config import DeltaGliderConfig
from deltaglider_async._models import DeltaSpace, StoredAs
from deltaglider_async.core.service import AsyncDeltaService
from deltaglider_async.ports.storage import ObjectHead

from .conftest import BundleFactory
from .support import (
    MIB,
    RecordingStorage,
    head_metadata,
    key_of,
    list_keys,
    open_uploads,
    sha256_file,
)

SIZE = 11 * MIB  # three parts of at most 5 MiB


def parts_of(s3_admin: Any, bucket: str, key: str) -> int:
    """Number of parts of a stored object, read from its multipart ETag (1 if not multipart)."""
    etag: str = s3_admin.head_object(Bucket=bucket, Key=key)["ETag"].strip('"')
    _, dash, count = etag.partition("-")
    return int(count) if dash else 1


async def read_all(
    reader: AsyncDeltaService, space: DeltaSpace, paths: list[Path], out: Path
) -> list[StoredAs]:
    """Get every path's name back and compare bytes; return how each was stored."""
    kinds = []
    for path in paths:
        got = await reader.get(key_of(space, path.name), out)
        assert sha256_file(out) == sha256_file(path), path.name
        kinds.append(got.stored_as)
    return kinds


async def test_direct_and_reference_uploads_above_the_threshold(
    make_bundle: BundleFactory, bucket: str, s3_admin: Any, tmp_path: Path
) -> None:
    rng = random.Random(81)
    first = tmp_path / "big-1.zip"
    data = bytearray(rng.randbytes(SIZE))
    first.write_bytes(data)
    data[5 * MIB : 5 * MIB + 64] = rng.randbytes(64)
    second = tmp_path / "big-2.zip"
    second.write_bytes(data)
    direct = tmp_path / "big.bin"
    direct.write_bytes(rng.randbytes(SIZE))
    service = make_bundle(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB).service
    space = DeltaSpace(bucket, "mp")

    operations = [(await service.put(path, space)).action for path in (first, second, direct)]

    assert operations == ["create_reference", "create_delta", "upload_direct"]
    assert set(list_keys(s3_admin, bucket)) == {
        "mp/reference.bin",
        "mp/big-1.zip.delta",
        "mp/big-2.zip.delta",
        "mp/big.bin",
    }
    # The reference (a conditional write) and the direct file went up in three parts.
    assert parts_of(s3_admin, bucket, "mp/reference.bin") == 3
    assert parts_of(s3_admin, bucket, "mp/big.bin") == 3
    assert head_metadata(s3_admin, bucket, "mp/reference.bin")["dg-file-sha256"] == sha256_file(
        first
    )
    assert head_metadata(s3_admin, bucket, "mp/big.bin")["dg-file-size"] == str(SIZE)
    assert open_uploads(s3_admin, bucket) == []

    kinds = await read_all(make_bundle().service, space, [first, second, direct], tmp_path / "o")
    assert kinds == [StoredAs.DELTA, StoredAs.DELTA, StoredAs.DIRECT]


class LateStorage(RecordingStorage):
    """Sees no reference.bin on its first two HEADs: a writer that lost the race by a hair.

    The service HEADs the reference twice before creating one (before and after taking
    its lock), so this writer attempts the conditional write over an existing reference.
    """

    def __init__(self, config: DeltaGliderConfig) -> None:
        super().__init__(config)
        self.hidden = 2

    async def head(self, bucket: str, key: str) -> ObjectHead | None:
        if key.endswith("/reference.bin") and self.hidden > 0:
            self.hidden -= 1
            return None
        return await super().head(bucket, key)


async def test_multipart_reference_write_is_conditional(
    make_bundle: BundleFactory, bucket: str, s3_admin: Any, tmp_path: Path
) -> None:
    rng = random.Random(82)
    data = bytearray(rng.randbytes(SIZE))
    first = tmp_path / "first.zip"
    first.write_bytes(data)
    data[MIB : MIB + 32] = rng.randbytes(32)
    late = tmp_path / "late.zip"
    late.write_bytes(data)
    multipart: dict[str, Any] = {"multipart_threshold": 5 * MIB, "multipart_chunksize": 5 * MIB}
    space = DeltaSpace(bucket, "mprace")
    assert (await make_bundle(**multipart).service.put(first, space)).action == ("create_reference")
    reference_sha = sha256_file(first)
    loser = make_bundle(storage_type=LateStorage, **multipart)

    summary = await loser.service.put(late, space)

    # Its multipart reference write was refused (412, the upload aborted), and it used
    # the reference already there.
    assert cast(LateStorage, loser.storage).conditional_puts == [("mprace/reference.bin", "412")]
    assert summary.action == "create_delta"
    assert summary.ref_sha256 == reference_sha
    assert open_uploads(s3_admin, bucket) == []
    assert head_metadata(s3_admin, bucket, "mprace/reference.bin")["dg-file-sha256"] == (
        reference_sha
    )
    assert head_metadata(s3_admin, bucket, "mprace/late.zip.delta")["dg-ref-sha256"] == (
        reference_sha
    )
    await read_all(make_bundle().service, space, [first, late], tmp_path / "o")
