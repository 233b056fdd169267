"""AsyncDeltaService.put/put_stream over fakes: what ends up in the bucket."""

from __future__ import annotations

import random

import pytest

from deltaglider_async._errors import (
    InvalidArgumentError,
    InvalidRatioError,
    ReservedKeyError,
    StorageError,
)
from deltaglider_async._models import DeltaSpace, StoredAs
from deltaglider_async.core.metadata import ObjectKind
from deltaglider_async.core.service import AsyncDeltaService
from tests.fakes import decode_delta

from .conftest import MakeHarness
from .support import BUCKET, Harness, archive, chunks_of, md5, sha256, variant


async def test_first_upload_creates_reference_and_zero_diff_delta(h: Harness) -> None:
    data = archive(1)
    summary = await h.put("releases/app/app-1.zip", data)

    assert summary.action == "create_reference"
    assert summary.stored_as is StoredAs.DELTA
    assert summary.key == "releases/app/app-1.zip.delta"
    assert summary.logical_key == "releases/app/app-1.zip"
    assert summary.file_sha256 == sha256(data)
    assert summary.etag == f'"{md5(data)}"'
    assert h.stored_keys() == ["releases/app/app-1.zip.delta", "releases/app/reference.bin"]
    assert h.storage.data(BUCKET, "releases/app/reference.bin") == data
    meta = h.storage.metadata(BUCKET, "releases/app/app-1.zip.delta")
    assert meta["dg-note"] == "zero-diff (reference identical)"
    assert meta["dg-ref-sha256"] == sha256(data)
    # A zero diff is tiny and decodes to the reference.
    delta = h.storage.data(BUCKET, "releases/app/app-1.zip.delta")
    assert len(delta) < 32
    assert decode_delta(data, delta) == data
    # The reference was written once, conditionally.
    ref_puts = [r for r in h.storage.writes() if r.key == "releases/app/reference.bin"]
    assert [(r.if_none_match, r.outcome) for r in ref_puts] == [(True, "ok")]
    assert h.work_files() == []


async def test_second_upload_is_a_small_delta_against_the_reference(h: Harness) -> None:
    first = archive(1, size=20_000)
    second = variant(first, 2)
    await h.put("releases/app/app-1.zip", first)
    summary = await h.put("releases/app/app-2.zip", second)

    assert summary.action == "create_delta"
    assert summary.ref_key == "releases/app/reference.bin"
    assert summary.ref_sha256 == sha256(first)
    assert summary.delta_size is not None
    assert summary.delta_size < len(second) // 10
    assert summary.stored_size == summary.delta_size
    assert summary.savings_percent > 90
    meta = h.storage.metadata(BUCKET, "releases/app/app-2.zip.delta")
    assert meta["dg-ref-sha256"] == sha256(first)
    assert "dg-note" not in meta
    assert h.storage.data(BUCKET, "releases/app/reference.bin") == first  # untouched
    assert h.storage.count("put", "releases/app/reference.bin") == 1
    # The reference came from the local cache: no GET of reference.bin.
    assert h.storage.count("get", "releases/app/reference.bin") == 0
    assert await h.read("releases/app/app-2.zip") == second


async def test_identical_upload_is_a_zero_diff_delta(h: Harness) -> None:
    data = archive(1)
    await h.put("d/a.zip", data)
    await h.put("d/b.zip", data)
    assert h.storage.metadata(BUCKET, "d/b.zip.delta")["dg-note"] == (
        "zero-diff (reference identical)"
    )


async def test_ratio_fallback_stores_direct_and_leaves_no_delta(h: Harness) -> None:
    base = archive(1)
    await h.put("d/a.zip", base)
    await h.put("d/b.zip", variant(base, 2))
    assert "d/b.zip.delta" in h.stored_keys()

    unrelated = archive(99)
    summary = await h.put("d/b.zip", unrelated)
    assert summary.action == "upload_direct"
    assert summary.key == "d/b.zip"
    assert "d/b.zip.delta" not in h.stored_keys()
    assert h.storage.data(BUCKET, "d/b.zip") == unrelated
    meta = h.storage.metadata(BUCKET, "d/b.zip")
    assert meta["dg-compression"] == "none"
    assert meta["dg-note"] == "passthrough"
    assert "delta too large, storing direct" in h.logger.messages("info")
    assert await h.read("d/b.zip") == unrelated
    assert h.work_files() == []


@pytest.mark.parametrize(("max_ratio", "stored_as"), [(0.0, "direct"), (1.0, "delta")])
async def test_per_call_max_ratio(h: Harness, max_ratio: float, stored_as: str) -> None:
    base = archive(1)
    await h.put("d/a.zip", base)
    summary = await h.put("d/b.zip", variant(base, 2), max_ratio)
    assert summary.stored_as.value == stored_as


async def test_service_max_ratio_is_the_default(make_harness: MakeHarness) -> None:
    h = make_harness(max_ratio=0.0)
    base = archive(1)
    await h.put("d/a.zip", base)  # the reference itself is never subject to the ratio
    assert (await h.put("d/b.zip", variant(base, 2))).action == "upload_direct"
    assert (await h.put("d/c.zip", variant(base, 3), 1.0)).action == "create_delta"


async def test_non_eligible_files_are_stored_direct(h: Harness) -> None:
    summary = await h.put("d/notes.txt", b"hello")
    assert summary.action == "upload_direct"
    assert h.stored_keys() == ["d/notes.txt"]
    # Random bytes under a non-archive name: direct, no reference created.
    await h.put("d/blob.bin", random.Random(3).randbytes(5000))
    assert "d/reference.bin" not in h.stored_keys()


async def test_zip_content_under_another_name_is_delta_compressed(h: Harness) -> None:
    wheel = archive(4)
    summary = await h.put("d/pkg-1.0-py3-none-any.whl", wheel)
    assert summary.action == "create_reference"
    assert h.stored_keys() == ["d/pkg-1.0-py3-none-any.whl.delta", "d/reference.bin"]


async def test_empty_archive_is_stored_direct(h: Harness) -> None:
    summary = await h.put("d/empty.zip", b"")
    assert summary.action == "upload_direct"
    assert h.stored_keys() == ["d/empty.zip"]
    assert await h.read("d/empty.zip") == b""


async def test_allow_delta_false_stores_direct(h: Harness) -> None:
    summary = await h.put("d/a.zip", archive(1), allow_delta=False)
    assert summary.action == "upload_direct"
    assert h.stored_keys() == ["d/a.zip"]


async def test_reupload_as_direct_removes_the_delta_form(h: Harness) -> None:
    base = archive(1)
    await h.put("d/a.zip", base)
    await h.put("d/b.zip", variant(base, 2))
    await h.put("d/b.zip", b"now a plain file", allow_delta=False)
    assert "d/b.zip.delta" not in h.stored_keys()
    assert "d/b.zip" in h.stored_keys()
    assert await h.read("d/b.zip") == b"now a plain file"
    assert await h.read("d/a.zip") == base


async def test_reupload_as_delta_removes_the_direct_form(h: Harness) -> None:
    await h.put("d/a.zip", b"first stored direct", allow_delta=False)
    data = archive(5)
    await h.put("d/a.zip", data)
    assert "d/a.zip" not in h.stored_keys()
    assert "d/a.zip.delta" in h.stored_keys()
    assert await h.read("d/a.zip") == data


async def test_replacing_the_last_delta_by_a_direct_object_drops_the_reference(
    h: Harness,
) -> None:
    # A reference no delta needs is invisible to listings but billed: the overwrite that
    # made it unneeded removes it.
    base = archive(1)
    await h.put("d/a.zip", base)
    await h.put("d/a.zip", b"plain", allow_delta=False)
    assert h.stored_keys() == ["d/a.zip"]
    # The next version starts a new reference.
    summary = await h.put("d/a.zip", variant(base, 2))
    assert summary.action == "create_reference"
    assert h.stored_keys() == ["d/a.zip.delta", "d/reference.bin"]
    assert await h.read("d/a.zip") == variant(base, 2)


async def test_replacing_one_of_several_deltas_keeps_the_reference(h: Harness) -> None:
    base = archive(1)
    await h.put("d/a.zip", base)
    await h.put("d/b.zip", variant(base, 2))
    await h.put("d/a.zip", b"plain", allow_delta=False)
    assert h.stored_keys() == ["d/a.zip", "d/b.zip.delta", "d/reference.bin"]
    assert await h.read("d/b.zip") == variant(base, 2)


async def test_reupload_of_a_delta_replaces_it(h: Harness) -> None:
    base = archive(1)
    await h.put("d/a.zip", base)
    await h.put("d/b.zip", variant(base, 2))
    await h.put("d/b.zip", variant(base, 3))
    assert await h.read("d/b.zip") == variant(base, 3)
    assert h.stored_keys() == ["d/a.zip.delta", "d/b.zip.delta", "d/reference.bin"]


@pytest.mark.parametrize(
    ("prefix", "name"),
    [
        ("releases/app", "reference.bin"),
        ("", "reference.bin"),
        ("releases/app", "a.zip.delta"),
        ("", "x.delta"),
        ("releases/app", ""),
    ],
)
async def test_reserved_names_are_refused_and_nothing_is_written(
    h: Harness, prefix: str, name: str
) -> None:
    with pytest.raises(ValueError, match="object key") as info:
        await h.service.put_stream(chunks_of(archive(1)), DeltaSpace(BUCKET, prefix), name)
    assert isinstance(info.value, ReservedKeyError)
    key = f"{prefix}/{name}" if prefix else name
    if key:
        assert repr(key) in str(info.value)
    assert h.storage.requests == []
    assert h.work_files() == []


async def test_reserved_name_through_put_names_the_key(h: Harness) -> None:
    with pytest.raises(ReservedKeyError, match=r"'d/reference\.bin'"):
        await h.put("d/reference.bin", archive(1))
    assert h.storage.requests == []


async def test_name_with_a_slash_is_refused(h: Harness) -> None:
    with pytest.raises(InvalidArgumentError):
        await h.service.put_stream(chunks_of(b"x"), DeltaSpace(BUCKET, "d"), "a/b.zip")
    assert h.storage.requests == []


@pytest.mark.parametrize("ratio", [-0.5, 1.5, float("nan"), True, "abc"])
async def test_invalid_ratio_is_refused_before_anything_is_written(
    h: Harness, ratio: object
) -> None:
    with pytest.raises(InvalidRatioError):
        await h.put("d/a.zip", archive(1), ratio)  # type: ignore[arg-type]
    assert h.storage.requests == []


def test_invalid_service_ratio_is_refused(h: Harness) -> None:
    with pytest.raises(InvalidRatioError):
        AsyncDeltaService(
            storage=h.storage,
            diff=h.diff,
            hasher=h.hasher,
            cache=h.cache,
            clock=h.clock,
            logger=h.logger,
            metrics=h.metrics,
            tool_version="t",
            max_ratio=2.0,
        )


async def test_put_stream_accepts_async_chunks(h: Harness) -> None:
    data = archive(6, size=10_000)
    summary = await h.service.put_stream(chunks_of(data, 333), DeltaSpace(BUCKET, "s"), "a.zip")
    assert summary.file_size == len(data)
    assert summary.md5 == md5(data)
    assert await h.read("s/a.zip") == data


async def test_put_uses_the_given_name(h: Harness) -> None:
    src = h.write("local-name.zip", archive(1))
    summary = await h.service.put(src, DeltaSpace(BUCKET, "d"), name="remote.zip")
    assert summary.logical_key == "d/remote.zip"
    assert "d/remote.zip.delta" in h.stored_keys()


async def test_missing_source_file_is_file_not_found(h: Harness) -> None:
    with pytest.raises(FileNotFoundError):
        await h.service.put(h.tmp / "nope.zip", DeltaSpace(BUCKET, "d"))
    assert h.storage.writes() == []
    assert h.work_files() == []


async def test_storage_failure_on_delta_put_propagates_and_cleans_up(h: Harness) -> None:
    await h.put("d/a.zip", archive(1))
    h.storage.fail("put", "d/b.zip.delta", StorageError("disk full"))
    with pytest.raises(StorageError, match="disk full"):
        await h.put("d/b.zip", variant(archive(1), 2))
    assert "d/b.zip.delta" not in h.stored_keys()
    assert h.work_files() == []


async def test_failed_first_delta_put_does_not_leave_an_orphan_reference(h: Harness) -> None:
    h.storage.fail("put", "d/a.zip.delta", StorageError("boom"))
    with pytest.raises(StorageError, match="boom"):
        await h.put("d/a.zip", archive(1))
    assert h.stored_keys() == []
    # The space is usable afterwards.
    await h.put("d/a.zip", archive(1))
    assert await h.read("d/a.zip") == archive(1)


async def test_existing_reference_written_by_another_tool_is_used(h: Harness) -> None:
    # A reference.bin with no deltaglider metadata at all: its bytes are what counts.
    base = archive(1)
    h.storage.seed(BUCKET, "d/reference.bin", base)
    summary = await h.put("d/b.zip", variant(base, 2))
    assert summary.action == "create_delta"
    assert summary.ref_sha256 == sha256(base)
    assert await h.read("d/b.zip") == variant(base, 2)


async def test_conditional_writes_refused_by_the_server_fall_back_to_put_then_head(
    make_harness: MakeHarness,
) -> None:
    h = make_harness()
    h.storage.conditional_writes = "refused"
    data = archive(1)
    summary = await h.put("d/a.zip", data)
    assert summary.action == "create_reference"
    ref_puts = [r for r in h.storage.writes() if r.key == "d/reference.bin"]
    assert [(r.if_none_match, r.outcome) for r in ref_puts] == [
        (True, "ConditionalWriteNotSupportedError"),
        (False, "ok"),
    ]
    assert any("conditional" in m for m in h.logger.messages("warning"))
    assert await h.read("d/a.zip") == data


async def test_resolved_kind_of_each_form(h: Harness) -> None:
    base = archive(1)
    await h.put("d/a.zip", base)
    await h.put("d/n.txt", b"n")
    assert (await h.service.resolve(h.key("d/a.zip"))).meta.kind is ObjectKind.DELTA
    assert (await h.service.resolve(h.key("d/n.txt"))).meta.kind is ObjectKind.DIRECT
    assert (await h.service.resolve(h.key("d/reference.bin"))).meta.kind is ObjectKind.REFERENCE
