"""Reserved names (SPEC §2): refused with ValueError naming the key; nothing is written."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from deltaglider_async._errors import ReservedKeyError
from deltaglider_async._models import DeltaSpace
from deltaglider_async.core.service import AsyncDeltaService
from tests.archives import make_versions

from .support import list_keys, read_object

RESERVED = [
    ("", "reference.bin"),
    ("dir", "reference.bin"),
    ("", "x.delta"),
    ("dir", "a.zip.delta"),
]


async def one_chunk(data: bytes) -> AsyncIterator[bytes]:
    """An async byte iterator yielding ``data``."""
    yield data


@pytest.mark.parametrize(("prefix", "name"), RESERVED)
async def test_reserved_name_is_refused_and_nothing_changes(
    service: AsyncDeltaService,
    bucket: str,
    s3_admin: Any,
    tmp_path: Path,
    prefix: str,
    name: str,
) -> None:
    # A populated space, so that overwriting its reference or a delta would show.
    (first,) = make_versions(tmp_path / "src", 1, "zip", seed=1)
    await service.put(first, DeltaSpace(bucket, prefix))
    before = list_keys(s3_admin, bucket)
    ref_key = f"{prefix}/reference.bin" if prefix else "reference.bin"
    reference_before = read_object(s3_admin, bucket, ref_key)
    source = tmp_path / name
    source.write_bytes(b"PK\x03\x04 not really a zip")
    key = f"{prefix}/{name}" if prefix else name

    with pytest.raises(ValueError, match="reserved") as info:
        await service.put(source, DeltaSpace(bucket, prefix))
    assert isinstance(info.value, ReservedKeyError)
    assert repr(key) in str(info.value)

    with pytest.raises(ValueError, match="reserved") as info:
        await service.put_stream(one_chunk(b"data"), DeltaSpace(bucket, prefix), name)
    assert repr(key) in str(info.value)

    assert list_keys(s3_admin, bucket) == before
    assert read_object(s3_admin, bucket, ref_key) == reference_before
