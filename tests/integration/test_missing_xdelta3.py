"""Without xdelta3 on PATH: a RuntimeError that says how to install it; nothing half-written."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from deltaglider_async._errors import IntegrityError
from deltaglider_async._models import DeltaSpace
from deltaglider_async.core.service import AsyncDeltaService
from tests.archives import make_versions

from .conftest import BundleFactory
from .support import key_of, list_keys

INSTALL_COMMAND = "apt-get install -y xdelta3"


@pytest.fixture
def no_xdelta3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """PATH holds only an empty directory: no xdelta3 can be found."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))


async def test_first_put_into_a_new_space(
    make_bundle: BundleFactory,
    bucket: str,
    s3_admin: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (archive,) = make_versions(tmp_path / "src", 1, "zip", seed=71)
    space = DeltaSpace(bucket, "app")
    real_path = os.environ["PATH"]
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    service = make_bundle().service

    with pytest.raises(RuntimeError, match=INSTALL_COMMAND):
        await service.put(archive, space)

    # Nothing half-written: no delta, and no reference left without the delta it was
    # written for.
    assert list_keys(s3_admin, bucket) == {}
    with pytest.raises(FileNotFoundError):
        await service.get(key_of(space, archive.name), tmp_path / "out")

    # Once xdelta3 is back, the same upload succeeds and reads back.
    monkeypatch.setenv("PATH", real_path)
    fixed = make_bundle().service
    assert (await fixed.put(archive, space)).action == "create_reference"
    assert set(list_keys(s3_admin, bucket)) == {"app/reference.bin", "app/app-1.0.0.zip.delta"}
    await fixed.get(key_of(space, archive.name), tmp_path / "out")
    assert (tmp_path / "out").read_bytes() == archive.read_bytes()


async def test_put_next_to_an_existing_reference(
    service: AsyncDeltaService,
    make_bundle: BundleFactory,
    bucket: str,
    s3_admin: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first, second = make_versions(tmp_path / "src", 2, "zip", seed=72)
    space = DeltaSpace(bucket, "app")
    await service.put(first, space)
    before = list_keys(s3_admin, bucket)
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    blind = make_bundle().service

    with pytest.raises(RuntimeError, match=INSTALL_COMMAND):
        await blind.put(second, space)

    assert list_keys(s3_admin, bucket) == before

    # Reading a delta needs xdelta3 too: the error says so, it does not claim corruption.
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match=INSTALL_COMMAND) as info:
        await blind.get(key_of(space, first.name), out)
    assert not isinstance(info.value, IntegrityError)
    assert not out.exists()


async def test_files_that_need_no_delta_still_upload(
    make_bundle: BundleFactory, bucket: str, s3_admin: Any, tmp_path: Path, no_xdelta3: None
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_bytes(b"plain text, never delta-compressed\n")
    service = make_bundle().service
    space = DeltaSpace(bucket, "docs")

    assert (await service.put(notes, space)).action == "upload_direct"
    out = tmp_path / "out"
    await service.get(key_of(space, notes.name), out)
    assert out.read_bytes() == notes.read_bytes()
    assert set(list_keys(s3_admin, bucket)) == {"docs/notes.txt"}
