"""AsyncDeltaService read paths over fakes: resolve, get, materialize, verify, delete."""

from __future__ import annotations

import pytest

from deltaglider_async._errors import (
    AccessDeniedError,
    BucketNotFoundError,
    DiffToolNotFoundError,
    IntegrityError,
    ObjectNotFoundError,
    StorageError,
)
from deltaglider_async._models import ObjectKey, StoredAs

from .conftest import MakeHarness
from .support import BUCKET, Harness, archive, files_under, sha256, variant

# --------------------------------------------------------------------------- resolve


async def test_resolve_by_logical_and_stored_name(h: Harness) -> None:
    base = archive(1)
    await h.put("d/a.zip", base)
    await h.put("d/n.txt", b"note")
    for name in ("d/a.zip", "d/a.zip.delta"):
        resolved = await h.service.resolve(h.key(name))
        assert resolved.stored == ObjectKey(BUCKET, "d/a.zip.delta")
        assert resolved.logical_key == "d/a.zip"
        assert resolved.stored_as is StoredAs.DELTA
        assert resolved.original_size == len(base)
        assert resolved.etag.strip('"') == resolved.meta.md5
    direct = await h.service.resolve(h.key("d/n.txt"))
    assert direct.stored == ObjectKey(BUCKET, "d/n.txt")
    assert direct.logical_key == "d/n.txt"
    assert direct.stored_as is StoredAs.DIRECT


async def test_resolve_missing_object_is_file_not_found(h: Harness) -> None:
    with pytest.raises(FileNotFoundError) as info:
        await h.service.resolve(h.key("d/missing.zip"))
    assert isinstance(info.value, ObjectNotFoundError)
    assert "d/missing.zip" in str(info.value)


async def test_resolve_in_a_missing_bucket_is_bucket_not_found(h: Harness) -> None:
    with pytest.raises(BucketNotFoundError):
        await h.service.resolve(ObjectKey("no-such-bucket", "a.zip"))


async def test_plain_s3_objects_are_served_as_is(h: Harness) -> None:
    h.storage.seed(BUCKET, "d/plain.zip", b"uploaded by someone else")
    resolved = await h.service.resolve(h.key("d/plain.zip"))
    assert resolved.stored_as is StoredAs.DIRECT
    assert await h.read("d/plain.zip") == b"uploaded by someone else"


# --------------------------------------------------------------------------- get


async def test_get_round_trip_of_every_form(h: Harness) -> None:
    base = archive(1, size=30_000)
    files = {
        "d/a.zip": base,
        "d/b.zip": variant(base, 2),
        "d/c.tar.gz": variant(base, 3),
        "d/n.txt": b"text file\n",
        "root.zip": archive(9),
    }
    for key, data in files.items():
        await h.put(key, data)
    for key, data in files.items():
        assert await h.read(key) == data
        assert await h.read(key) == data  # and again, from the cache
    summary = await h.service.get(h.key("d/b.zip.delta"), h.tmp / "by-stored-name")
    assert (h.tmp / "by-stored-name").read_bytes() == variant(base, 2)
    assert summary.sha256 == sha256(variant(base, 2))
    assert summary.logical_key == "d/b.zip"
    assert summary.stored_as is StoredAs.DELTA
    assert h.work_files() == []


async def test_get_of_missing_object_leaves_destination_alone(h: Harness) -> None:
    out = h.tmp / "dest.zip"
    out.write_bytes(b"old")
    with pytest.raises(ObjectNotFoundError):
        await h.service.get(h.key("d/missing.zip"), out)
    assert out.read_bytes() == b"old"


async def test_second_get_from_a_space_does_not_fetch_the_reference_again(
    h: Harness, make_harness: MakeHarness
) -> None:
    base = archive(1)
    await h.put("d/a.zip", base)
    await h.put("d/b.zip", variant(base, 2))
    await h.put("d/c.zip", variant(base, 3))

    reader = make_harness()  # a fresh service: empty cache
    assert await reader.read("d/b.zip") == variant(base, 2)
    assert reader.storage.count("get", "d/reference.bin") == 1
    summary = await reader.service.get(reader.key("d/c.zip"), reader.tmp / "c.zip")
    assert summary.reference_cache_hit
    assert await reader.read("d/a.zip") == base
    assert reader.storage.count("get", "d/reference.bin") == 1
    assert reader.storage.count("get", "d/c.zip.delta") == 1


async def test_tampered_cache_entry_raises_integrity_error_then_is_refetched(
    h: Harness,
) -> None:
    base = archive(1)
    await h.put("d/a.zip", base)
    await h.put("d/b.zip", variant(base, 2))
    h.cache.tamper(sha256(base), b"rotten bits")
    dest = h.tmp / "b.zip"
    dest.write_bytes(b"previous content")
    with pytest.raises(IntegrityError, match="locally cached copy"):
        await h.service.get(h.key("d/b.zip"), dest)
    assert dest.read_bytes() == b"previous content"  # no wrong byte reached it
    assert sha256(base) not in h.cache.entries  # evicted
    # The next read downloads the reference again and succeeds.
    assert await h.read("d/b.zip") == variant(base, 2)
    assert h.storage.count("get", "d/reference.bin") == 1
    assert h.cache.entries[sha256(base)] == base


async def _corrupt_delta_literal(h: Harness, key: str) -> None:
    data = bytearray(h.storage.data(BUCKET, key))
    data[-1] ^= 0xFF  # the delta ends with the appended tail, stored as a literal
    h.storage.tamper(BUCKET, key, bytes(data))


async def test_get_writes_atomically_when_integrity_fails(h: Harness) -> None:
    base = archive(1)
    await h.put("d/a.zip", base)
    await h.put("d/b.zip", variant(base, 2))
    await _corrupt_delta_literal(h, "d/b.zip.delta")
    out = h.tmp / "dest" / "b.zip"
    out.parent.mkdir()
    out.write_bytes(b"previous content")

    with pytest.raises(IntegrityError, match="sha256") as info:
        await h.service.get(h.key("d/b.zip"), out)
    assert isinstance(info.value, OSError)
    assert out.read_bytes() == b"previous content"
    assert files_under(out.parent) == [out]
    assert h.work_files() == []
    assert h.metrics.counters["deltaglider.integrity.failed"] == 1


async def test_undecodable_delta_is_an_integrity_error(h: Harness) -> None:
    base = archive(1)
    await h.put("d/a.zip", base)
    await h.put("d/b.zip", variant(base, 2))
    h.storage.tamper(BUCKET, "d/b.zip.delta", h.storage.data(BUCKET, "d/b.zip.delta")[:-5])
    out = h.tmp / "b.zip"
    with pytest.raises(IntegrityError, match="corrupted"):
        await h.service.get(h.key("d/b.zip"), out)
    assert not out.exists()
    assert files_under(h.tmp) == files_under(h.tmp / "src")


async def test_tampered_direct_object_fails_integrity(h: Harness) -> None:
    await h.put("d/n.txt", b"original text")
    h.storage.tamper(BUCKET, "d/n.txt", b"modified text")
    out = h.tmp / "n.txt"
    out.write_bytes(b"keep me")
    with pytest.raises(IntegrityError):
        await h.service.get(h.key("d/n.txt"), out)
    assert out.read_bytes() == b"keep me"


async def test_tampered_reference_fails_integrity_for_a_fresh_reader(
    h: Harness, make_harness: MakeHarness
) -> None:
    base = archive(1)
    await h.put("d/a.zip", base)
    await h.put("d/b.zip", variant(base, 2))
    h.storage.tamper(BUCKET, "d/reference.bin", variant(base, 7))
    reader = make_harness()
    with pytest.raises(IntegrityError, match="reference"):
        await reader.read("d/b.zip")
    assert reader.cache.entries == {}  # nothing unverified was cached
    assert reader.work_files() == []


async def test_missing_reference_is_an_integrity_error_not_a_missing_object(
    h: Harness, make_harness: MakeHarness
) -> None:
    base = archive(1)
    await h.put("d/a.zip", base)
    h.storage.remove(BUCKET, "d/reference.bin")
    reader = make_harness()
    with pytest.raises(IntegrityError, match="reference"):
        await reader.read("d/a.zip")


async def test_delta_deleted_between_resolve_and_get_is_not_found(h: Harness) -> None:
    base = archive(1)
    await h.put("d/a.zip", base)
    await h.put("d/b.zip", variant(base, 2))

    async def vanish(_: object) -> None:
        h.storage.remove(BUCKET, "d/b.zip.delta")

    h.storage.add_hook(vanish, op="get", key="d/b.zip.delta", times=1)
    with pytest.raises(ObjectNotFoundError):
        await h.read("d/b.zip")


async def test_missing_diff_tool_is_a_runtime_error(h: Harness) -> None:
    base = archive(1)
    await h.put("d/a.zip", base)
    h.diff.missing_tool = True
    with pytest.raises(RuntimeError) as info:
        await h.read("d/a.zip")
    assert isinstance(info.value, DiffToolNotFoundError)
    assert h.work_files() == []


async def test_materialize_yields_a_verified_copy_and_removes_it(h: Harness) -> None:
    base = archive(1)
    await h.put("d/a.zip", base)
    async with h.service.materialize(h.key("d/a.zip")) as (path, summary):
        assert path.read_bytes() == base
        assert summary.size == len(base)
        assert path.parent == h.service.work_dir
    assert not path.exists()
    assert h.work_files() == []


# --------------------------------------------------------------------------- verify


async def test_verify_is_valid_for_intact_objects(h: Harness) -> None:
    base = archive(1)
    await h.put("d/a.zip", base)
    await h.put("d/b.zip", variant(base, 2))
    await h.put("d/n.txt", b"note")
    for key in ("d/a.zip", "d/b.zip", "d/b.zip.delta", "d/n.txt"):
        result = await h.service.verify(h.key(key))
        assert result.valid, (key, result.message)
        assert result.actual_sha256 == result.expected_sha256
    assert h.work_files() == []


async def test_verify_detects_a_tampered_delta(h: Harness) -> None:
    base = archive(1)
    await h.put("d/a.zip", base)
    await h.put("d/b.zip", variant(base, 2))
    await _corrupt_delta_literal(h, "d/b.zip.delta")
    result = await h.service.verify(h.key("d/b.zip"))
    assert not result.valid
    assert result.expected_sha256 == sha256(variant(base, 2))
    assert result.actual_sha256 != result.expected_sha256
    assert (await h.service.verify(h.key("d/a.zip"))).valid


async def test_verify_detects_an_undecodable_delta(h: Harness) -> None:
    await h.put("d/a.zip", archive(1))
    h.storage.tamper(BUCKET, "d/a.zip.delta", b"garbage")
    result = await h.service.verify(h.key("d/a.zip"))
    assert not result.valid
    assert "corrupted" in result.message


async def test_verify_detects_a_tampered_reference_even_when_cached(h: Harness) -> None:
    base = archive(1)
    await h.put("d/a.zip", base)
    await h.put("d/b.zip", variant(base, 2))
    assert await h.read("d/b.zip") == variant(base, 2)  # the reference is now cached
    h.storage.tamper(BUCKET, "d/reference.bin", variant(base, 5))
    for key in ("d/a.zip", "d/b.zip"):
        result = await h.service.verify(h.key(key))
        assert not result.valid, key
        assert "reference" in result.message
    assert h.work_files() == []


async def test_verify_detects_a_tampered_direct_object(h: Harness) -> None:
    await h.put("d/n.txt", b"note")
    h.storage.tamper(BUCKET, "d/n.txt", b"nope")
    result = await h.service.verify(h.key("d/n.txt"))
    assert not result.valid
    assert result.actual_sha256 == sha256(b"nope")


async def test_verify_of_a_missing_object_raises(h: Harness) -> None:
    with pytest.raises(ObjectNotFoundError):
        await h.service.verify(h.key("d/none.zip"))


# --------------------------------------------------------------------------- delete


async def test_delete_keeps_the_reference_while_other_deltas_remain(h: Harness) -> None:
    base = archive(1)
    await h.put("d/a.zip", base)
    await h.put("d/b.zip", variant(base, 2))
    await h.put("d/n.txt", b"direct")

    first = await h.service.delete(h.key("d/a.zip"))
    assert first.key == "d/a.zip.delta"
    assert first.logical_key == "d/a.zip"
    assert not first.reference_deleted
    assert h.stored_keys() == ["d/b.zip.delta", "d/n.txt", "d/reference.bin"]
    assert await h.read("d/b.zip") == variant(base, 2)

    second = await h.service.delete(h.key("d/b.zip.delta"))
    assert second.reference_deleted
    assert h.stored_keys() == ["d/n.txt"]

    direct = await h.service.delete(h.key("d/n.txt"))
    assert direct.stored_as is StoredAs.DIRECT
    assert not direct.reference_deleted
    assert h.stored_keys() == []


async def test_delete_only_counts_deltas_of_its_own_space(h: Harness) -> None:
    base = archive(1)
    await h.put("d/a.zip", base)
    await h.put("d/sub/a.zip", base)
    await h.put("d/sub2/a.zip", base)
    await h.service.delete(h.key("d/a.zip"))
    assert h.stored_keys() == [
        "d/sub/a.zip.delta",
        "d/sub/reference.bin",
        "d/sub2/a.zip.delta",
        "d/sub2/reference.bin",
    ]


async def test_delete_finds_remaining_deltas_across_list_pages(
    make_harness: MakeHarness,
) -> None:
    h = make_harness()
    h.storage.page_size = 2
    base = archive(1)
    await h.put("d/a.zip", base)
    for i in range(5):
        await h.put(f"d/n{i}.txt", b"x")
    await h.put("d/z.zip", variant(base, 2))
    await h.service.delete(h.key("d/a.zip"))
    assert "d/reference.bin" in h.stored_keys()
    assert await h.read("d/z.zip") == variant(base, 2)


async def test_delete_missing_object_raises_not_found(h: Harness) -> None:
    with pytest.raises(ObjectNotFoundError):
        await h.service.delete(h.key("d/none.zip"))


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("failing", ["d/a.zip", "d/a.zip.delta"])
async def test_errors_in_concurrent_heads_are_not_exception_groups(
    h: Harness, failing: str
) -> None:
    await h.put("d/a.zip", archive(1))
    h.storage.fail("head", failing, AccessDeniedError("denied"))
    with pytest.raises(PermissionError) as info:
        await h.service.resolve(h.key("d/a.zip"))
    assert type(info.value) is AccessDeniedError


async def test_both_heads_failing_gives_one_plain_error(h: Harness) -> None:
    h.storage.fail("head", None, AccessDeniedError("denied"), times=2)
    with pytest.raises(AccessDeniedError) as info:
        await h.service.get(h.key("d/a.zip"), h.tmp / "out")
    assert not isinstance(info.value, BaseExceptionGroup)


async def test_error_fetching_the_delta_while_the_reference_downloads_is_plain(
    h: Harness, make_harness: MakeHarness
) -> None:
    base = archive(1)
    await h.put("d/a.zip", base)
    reader = make_harness()
    reader.storage.fail("get", "d/a.zip.delta", StorageError("connection reset"))
    with pytest.raises(StorageError, match="connection reset") as info:
        await reader.read("d/a.zip")
    assert type(info.value) is StorageError
    assert reader.work_files() == []


async def test_errors_in_both_concurrent_fetches_give_one_plain_error(
    h: Harness, make_harness: MakeHarness
) -> None:
    base = archive(1)
    await h.put("d/a.zip", base)
    reader = make_harness()
    reader.storage.fail("get", None, StorageError("down"), times=2)
    with pytest.raises(StorageError, match="down") as info:
        await reader.service.verify(reader.key("d/a.zip"))
    assert type(info.value) is StorageError
    assert reader.work_files() == []
