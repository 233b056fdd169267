"""The fakes behave like the real things where the core can tell (so core tests mean something)."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

from deltaglider_async._errors import (
    BucketNotEmptyError,
    BucketNotFoundError,
    ConditionalWriteNotSupportedError,
    DiffError,
    IntegrityError,
    InvalidArgumentError,
    ObjectNotFoundError,
    PreconditionFailedError,
    StorageError,
)
from tests.fakes import (
    FakeDiff,
    InMemoryReferenceCache,
    InMemoryStorage,
    Request,
    decode_delta,
    encode_delta,
)

from .support import BUCKET, archive, md5, sha256, variant

# --------------------------------------------------------------------------- storage


def _storage_with(keys: list[str]) -> InMemoryStorage:
    storage = InMemoryStorage(buckets=[BUCKET])
    for key in keys:
        storage.seed(BUCKET, key, key.encode())
    return storage


async def _all_pages(
    storage: InMemoryStorage, prefix: str = "", delimiter: str | None = None, max_keys: int = 2
) -> tuple[list[str], list[str], int]:
    keys: list[str] = []
    prefixes: list[str] = []
    token: str | None = None
    pages = 0
    while True:
        page = await storage.list_page(
            BUCKET, prefix, delimiter=delimiter, continuation_token=token, max_keys=max_keys
        )
        pages += 1
        assert page.key_count == len(page.objects) + len(page.common_prefixes)
        assert page.key_count <= max_keys
        keys += [o.key for o in page.objects]
        prefixes += list(page.common_prefixes)
        if not page.is_truncated:
            assert page.next_continuation_token is None
            return keys, prefixes, pages
        token = page.next_continuation_token
        assert token is not None


async def test_list_pages_follow_continuation_tokens() -> None:
    keys = [f"k{i:02d}" for i in range(7)]
    storage = _storage_with(keys)
    listed, prefixes, pages = await _all_pages(storage)
    assert listed == keys
    assert prefixes == []
    assert pages == 4


async def test_list_with_delimiter_groups_common_prefixes_across_pages() -> None:
    storage = _storage_with(["a/1", "a/2", "a/3", "b.zip", "c/x/1", "c/y", "d", "e/1", "e/2", "f"])
    listed, prefixes, _ = await _all_pages(storage, delimiter="/")
    assert listed == ["b.zip", "d", "f"]
    assert prefixes == ["a/", "c/", "e/"]
    listed, prefixes, _ = await _all_pages(storage, prefix="c/", delimiter="/", max_keys=1)
    assert listed == ["c/y"]
    assert prefixes == ["c/x/"]


async def test_list_start_after_and_bad_token() -> None:
    storage = _storage_with(["a", "b", "c"])
    page = await storage.list_page(BUCKET, start_after="a")
    assert [o.key for o in page.objects] == ["b", "c"]
    with pytest.raises(InvalidArgumentError):
        await storage.list_page(BUCKET, continuation_token="not-a-token")


async def test_iter_objects_pages_through_everything() -> None:
    storage = _storage_with([f"p/{i}" for i in range(5)] + ["q"])
    storage.page_size = 2
    assert [o.key async for o in storage.iter_objects(BUCKET, "p/")] == [f"p/{i}" for i in range(5)]
    assert storage.count("list") == 3


async def test_conditional_writes(tmp_path: Path) -> None:
    src = tmp_path / "f"
    src.write_bytes(b"one")
    storage = InMemoryStorage(buckets=[BUCKET])
    await storage.put_file(BUCKET, "k", src, metadata={}, if_none_match=True)
    src.write_bytes(b"two")
    with pytest.raises(PreconditionFailedError):
        await storage.put_file(BUCKET, "k", src, metadata={}, if_none_match=True)
    assert storage.data(BUCKET, "k") == b"one"
    storage.conditional_writes = "ignored"
    await storage.put_file(BUCKET, "k", src, metadata={}, if_none_match=True)
    assert storage.data(BUCKET, "k") == b"two"
    storage.conditional_writes = "refused"
    with pytest.raises(ConditionalWriteNotSupportedError):
        await storage.put_file(BUCKET, "k2", src, metadata={}, if_none_match=True)
    assert [r.outcome for r in storage.writes()] == [
        "ok",
        "PreconditionFailedError",
        "ok",
        "ConditionalWriteNotSupportedError",
    ]


async def test_metadata_is_lower_cased_and_must_be_ascii() -> None:
    storage = InMemoryStorage(buckets=[BUCKET])
    await storage.put_bytes(BUCKET, "k", b"x", metadata={"DG-Tool": "t"})
    head = await storage.head(BUCKET, "k")
    assert head is not None
    assert dict(head.metadata) == {"dg-tool": "t"}
    assert head.etag == f'"{md5(b"x")}"'
    with pytest.raises(StorageError):
        await storage.put_bytes(BUCKET, "k", b"y", metadata={"dg-tool": "café"})
    assert storage.data(BUCKET, "k") == b"x"


async def test_cancelled_put_stores_nothing(tmp_path: Path) -> None:
    src = tmp_path / "f"
    src.write_bytes(b"data")
    storage = InMemoryStorage(buckets=[BUCKET])

    async def hang(_: Request) -> None:
        await anyio.sleep_forever()

    storage.add_hook(hang, op="put")
    with anyio.move_on_after(0.01):
        await storage.put_file(BUCKET, "k", src, metadata={})
    assert storage.keys(BUCKET) == []
    assert storage.writes()[0].outcome == "cancelled"


async def test_get_missing_and_ranges(tmp_path: Path) -> None:
    storage = _storage_with(["abcdef"])
    with pytest.raises(ObjectNotFoundError):
        await storage.get_to_file(BUCKET, "nope", tmp_path / "x")
    with pytest.raises(BucketNotFoundError):
        await storage.head("nope", "k")
    for spec, data, content_range in [
        ("bytes=1-3", b"bcd", "bytes 1-3/6"),
        ("bytes=4-", b"ef", "bytes 4-5/6"),
        ("bytes=-2", b"ef", "bytes 4-5/6"),
    ]:
        body = await storage.open(BUCKET, "abcdef", range=spec)
        assert body.content_range == content_range
        assert body.head.size == 6
        assert b"".join([c async for c in body.iter_chunks(1)]) == data
        await body.aclose()
    assert not storage.open_bodies


async def test_buckets() -> None:
    storage = _storage_with(["k"])
    with pytest.raises(BucketNotEmptyError):
        await storage.delete_bucket(BUCKET)
    await storage.delete(BUCKET, "k")
    await storage.delete(BUCKET, "k")  # missing key: no error
    await storage.delete_bucket(BUCKET)
    with pytest.raises(BucketNotFoundError):
        await storage.head_bucket(BUCKET)
    await storage.create_bucket("new")
    assert [b.name for b in await storage.list_buckets()] == ["new"]


# --------------------------------------------------------------------------- diff


@pytest.mark.parametrize(
    ("reference", "target"),
    [
        (b"", b""),
        (b"", b"abc"),
        (b"abc", b""),
        (archive(1), archive(1)),
        (archive(1), variant(archive(1), 2)),
        (archive(1), archive(1)[100:] + archive(1)[:100]),
        (archive(1), archive(2)),
    ],
)
def test_delta_round_trips(reference: bytes, target: bytes) -> None:
    delta = encode_delta(reference, target)
    assert encode_delta(reference, target) == delta  # deterministic
    assert decode_delta(reference, delta) == target


def test_similar_files_give_small_deltas_unrelated_ones_do_not() -> None:
    base = archive(1, size=20_000)
    assert len(encode_delta(base, base)) < 20
    assert len(encode_delta(base, variant(base, 2))) < 200
    assert len(encode_delta(base, archive(2, size=20_000))) > 20_000


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d[:-3],
        lambda d: b"XXXXX" + d[5:],
        lambda d: d + b"\x07",
        lambda d: d[:5] + b"\x05" + d[6:],
    ],
)
def test_malformed_deltas_raise_diff_error(mutate: Callable[[bytes], bytes]) -> None:
    base = archive(1)
    delta = encode_delta(base, variant(base, 2))
    with pytest.raises(DiffError):
        decode_delta(base, mutate(delta))


def test_decoding_against_a_shorter_reference_fails() -> None:
    base = archive(1)
    with pytest.raises(DiffError):
        decode_delta(base[:100], encode_delta(base, base))


async def test_fake_diff_records_calls(tmp_path: Path) -> None:
    diff = FakeDiff()
    ref, target, out, back = (tmp_path / n for n in ("ref", "t", "d", "b"))
    ref.write_bytes(archive(1))
    target.write_bytes(random.Random(5).randbytes(100))
    await diff.encode(ref, target, out)
    await diff.decode(ref, out, back)
    assert back.read_bytes() == target.read_bytes()
    assert diff.encodes == [(ref, target, out)]
    assert diff.decodes == [(ref, out, back)]


# --------------------------------------------------------------------------- cache


async def test_cache_verifies_and_evicts(tmp_path: Path) -> None:
    cache = InMemoryReferenceCache()
    src, dest = tmp_path / "s", tmp_path / "d"
    src.write_bytes(b"ref")
    assert not await cache.fetch(sha256(b"ref"), dest)
    await cache.store(sha256(b"ref"), src)
    assert await cache.fetch(sha256(b"ref"), dest)
    assert dest.read_bytes() == b"ref"
    cache.tamper(sha256(b"ref"), b"bad")
    with pytest.raises(IntegrityError):
        await cache.fetch(sha256(b"ref"), tmp_path / "d2")
    assert not (tmp_path / "d2").exists()
    assert not await cache.contains(sha256(b"ref"))
    with pytest.raises(InvalidArgumentError):
        await cache.fetch("not-a-sha", dest)
