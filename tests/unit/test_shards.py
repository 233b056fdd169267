"""Shards of a migration: from the job engine's environment, and how each part is read."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from pathlib import Path

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deltaglider_async import InvalidArgumentError, NotFoundError
from deltaglider_async.core.inventory import (
    InventoryManifest,
    load_manifest,
    parse_manifest,
    read_entries,
)
from deltaglider_async.core.key_list import read_keys
from deltaglider_async.core.partitioned_listing import ListingCount, list_shard
from deltaglider_async.core.shards import Shard, check_shard, shard_from_environment, share_of
from deltaglider_async.testing_memory import InMemoryStorage

# -- the environment -------------------------------------------------------------------


def test_index_from_kubernetes_count_given() -> None:
    assert shard_from_environment({"JOB_COMPLETION_INDEX": "3"}, 8) == Shard(3, 8)


def test_index_and_count_from_aws_batch() -> None:
    env = {"AWS_BATCH_JOB_ARRAY_INDEX": "0", "AWS_BATCH_JOB_ARRAY_SIZE": "10"}
    assert shard_from_environment(env) == Shard(0, 10)
    # A count given explicitly wins over the array's size.
    assert shard_from_environment(env, 4) == Shard(0, 4)


@pytest.mark.parametrize(
    ("env", "count", "message"),
    [
        ({}, 4, "JOB_COMPLETION_INDEX or AWS_BATCH_JOB_ARRAY_INDEX"),
        ({"JOB_COMPLETION_INDEX": ""}, 4, "neither is set"),
        ({"JOB_COMPLETION_INDEX": "1"}, None, "--shards N"),
        ({"JOB_COMPLETION_INDEX": "4"}, 4, "not below the number of shards (4)"),
        ({"JOB_COMPLETION_INDEX": "-1"}, 4, "non-negative integer"),
        ({"AWS_BATCH_JOB_ARRAY_INDEX": "1", "AWS_BATCH_JOB_ARRAY_SIZE": "x"}, None, "SIZE"),
        ({"JOB_COMPLETION_INDEX": "0"}, 0, ">= 1"),
    ],
)
def test_clear_errors(env: dict[str, str], count: int | None, message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=message.replace("(", r"\(").replace(")", r"\)")):
        shard_from_environment(env, count)


def test_check_shard_accepts_every_form() -> None:
    assert check_shard(None) is None
    assert check_shard((1, 3)) == Shard(1, 3)
    assert check_shard(Shard(2, 3)) == Shard(2, 3)
    assert check_shard("auto", 5, {"JOB_COMPLETION_INDEX": "4"}) == Shard(4, 5)
    with pytest.raises(InvalidArgumentError, match="only with shard='auto'"):
        check_shard((0, 2), 2)
    for bad in [(2, 2), (-1, 2), (0, 0), (True, 2), "0/2", (0, 1, 2)]:
        with pytest.raises(InvalidArgumentError):
            check_shard(bad)


@given(st.integers(0, 5000), st.integers(1, 64))
def test_shares_cover_every_position_once(total: int, count: int) -> None:
    seen = [i for k in range(count) for i in share_of(total, Shard(k, count))]
    assert seen == list(range(total))


# -- key lists ---------------------------------------------------------------------------


async def _keys_of_all_shards(
    storage: InMemoryStorage, location: str, count: int
) -> list[list[str]]:
    parts = []
    for k in range(count):
        parts.append([key async for key in read_keys(storage, location, Shard(k, count))])
    return parts


@settings(max_examples=40, deadline=None)
@given(
    # S3 keys are UTF-8: no lone surrogates.
    keys=st.lists(
        st.text(st.characters(codec="utf-8", blacklist_characters="\n\r"), min_size=1),
        max_size=40,
    ),
    count=st.integers(1, 9),
    crlf=st.booleans(),
    final_newline=st.booleans(),
)
async def test_key_list_shards_read_every_line_once(
    keys: list[str], count: int, crlf: bool, final_newline: bool
) -> None:
    storage = InMemoryStorage(buckets=["lists"])
    text = ("\r\n" if crlf else "\n").join(keys) + ("\n" if final_newline and keys else "")
    storage.seed("lists", "keys.txt", text.encode())

    parts = await _keys_of_all_shards(storage, "s3://lists/keys.txt", count)

    assert [key for part in parts for key in part] == keys
    # Each shard fetched one ranged GET at most.
    assert storage.count("get") <= count


async def test_key_list_from_a_local_file_skips_empty_lines(tmp_path: Path) -> None:
    path = tmp_path / "keys.txt"
    lines = [f"dir{n % 7}/file-{n}.zip" for n in range(1000)]
    path.write_text("\n".join(lines[:500]) + "\n\n" + "\n".join(lines[500:]) + "\n")
    storage = InMemoryStorage()

    parts = await _keys_of_all_shards(storage, str(path), 4)

    assert [key for part in parts for key in part] == lines
    assert all(200 < len(part) < 300 for part in parts), [len(p) for p in parts]


async def test_key_list_errors(tmp_path: Path) -> None:
    storage = InMemoryStorage(buckets=["lists"])
    with pytest.raises(NotFoundError):
        [k async for k in read_keys(storage, str(tmp_path / "none.txt"), None)]
    with pytest.raises(NotFoundError):
        [k async for k in read_keys(storage, "s3://lists/none.txt", None)]
    storage.seed("lists", "bad.txt", b"ok\n\xff\xfe\n")
    with pytest.raises(InvalidArgumentError, match="byte 3 is not UTF-8"):
        [k async for k in read_keys(storage, "s3://lists/bad.txt", None)]


# -- the partitioned listing ---------------------------------------------------------------


def _tree(storage: InMemoryStorage) -> list[str]:
    keys = [f"src/top-{n}.txt" for n in range(3)]
    for team in range(3):
        for app in range(12):
            keys += [f"src/team{team}/app{app}/v{v}.zip" for v in range(5)]
            keys.append(f"src/team{team}/app{app}/sub/deep.bin")
        keys.append(f"src/team{team}/README")
    for key in keys:
        storage.seed("b", key, b"x")
    return keys


@pytest.mark.parametrize("count", [1, 2, 3, 4, 16])
async def test_listing_shards_cover_everything_once_and_never_split_a_directory(
    count: int,
) -> None:
    storage = InMemoryStorage(buckets=["b"], page_size=7)
    keys = _tree(storage)
    owner: dict[str, int] = {}
    listed: list[str] = []
    counts = []
    for k in range(count):
        counter = ListingCount()
        async for info in list_shard(storage, "b", "src/", Shard(k, count), counter):
            listed.append(info.key)
            directory = info.key.rpartition("/")[0]
            assert owner.setdefault(directory, k) == k, f"{directory} split"
        counts.append(counter)

    assert sorted(listed) == sorted(keys)
    assert Counter(listed).most_common(1)[0][1] == 1
    if count > 1:
        assert len(set(owner.values())) == count, "every shard has work"
    # Together the shards list about once: every page of objects once, plus discovery.
    pages_once = -(-len(keys) // 7)
    total = sum(c.requests for c in counts)
    discovery = sum(c.discovery for c in counts)
    assert total - discovery <= pages_once + 4 * count * 4
    assert storage.count("list") == total


async def test_listing_discovery_stops_once_there_are_enough_prefixes() -> None:
    storage = InMemoryStorage(buckets=["b"])
    _tree(storage)
    counter = ListingCount()

    listed = [info.key async for info in list_shard(storage, "b", "src/", Shard(0, 2), counter)]

    # 3 team prefixes < 8 wanted: one more level (36 apps >= 8), so 1 + 3 discovery LISTs.
    assert counter.discovery == 4
    assert listed


# -- inventory reports ---------------------------------------------------------------------


def _manifest(files: list[dict[str, object]], **extra: object) -> bytes:
    document = {
        "sourceBucket": "src",
        "destinationBucket": "arn:aws:s3:::inv",
        "version": "2016-11-30",
        "fileFormat": "CSV",
        "fileSchema": "Bucket, Key, Size, ETag, IsLatest, IsDeleteMarker",
        "files": files,
        **extra,
    }
    return json.dumps(document).encode()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"fileFormat": "ORC"}, "only CSV reports"),
        ({"fileSchema": "Bucket, Size"}, "no Key column"),
        ({"fileSchema": None}, "needs a fileSchema"),
        ({"files": "x"}, "files must be a list"),
    ],
)
def test_manifest_errors(change: dict[str, object], message: str) -> None:
    document = json.loads(_manifest([]))
    document.update(change)
    with pytest.raises(InvalidArgumentError, match=message):
        parse_manifest(json.dumps(document).encode(), "m.json")
    with pytest.raises(InvalidArgumentError, match="not JSON"):
        parse_manifest(b"{", "m.json")
    with pytest.raises(InvalidArgumentError, match="no destinationBucket"):
        parse_manifest(b'{"sourceBucket": "a", "fileFormat": "CSV", "files": []}', "m.json")


def _data_file(rows: list[list[str]]) -> bytes:
    text = "".join(",".join(f'"{v}"' for v in row) + "\n" for row in rows)
    return gzip.compress(text.encode())


@pytest.mark.parametrize("count", [1, 2, 3, 5, 8])
async def test_inventory_shards_take_every_current_object_once(count: int, tmp_path: Path) -> None:
    storage = InMemoryStorage(buckets=["inv"])
    keys = [f"d{n % 9}/f {n}+x.zip" for n in range(120)]
    # Keys URL-encoded as the inventory writes them: space as +, + as %2B.
    encoded = [k.replace("+x", "%2Bx").replace(" ", "+") for k in keys]
    rows = [["src", k, "3", "e", "true", "false"] for k in encoded]
    # Old versions and delete markers are not current objects; other buckets are not ours.
    rows.insert(5, ["src", "old/version", "3", "e", "false", "false"])
    rows.insert(9, ["src", "deleted", "0", "", "true", "true"])
    rows.insert(11, ["other", "elsewhere", "3", "e", "true", "false"])
    files = []
    for n in range(3):
        data = _data_file(rows[n * 41 : (n + 1) * 41])
        storage.seed("inv", f"data/{n}.csv.gz", data)
        files.append({"key": f"data/{n}.csv.gz", "size": len(data), "MD5checksum": _md5(data)})
    storage.seed("inv", "manifest.json", _manifest(files))
    manifest = await load_manifest(storage, "s3://inv/manifest.json")
    counter = iter(range(10_000))

    def new_path() -> Path:
        return tmp_path / f"f{next(counter)}"

    taken = []
    for k in range(count):
        taken.append([e async for e in read_entries(storage, manifest, Shard(k, count), new_path)])

    assert sorted(e.key for part in taken for e in part) == sorted(keys)
    assert all(e.size == 3 and e.etag == "e" for part in taken for e in part)
    if count <= 3:
        # At least as many files as shards: each data file is read once (and the manifest).
        assert storage.count("get") == 3 + 1
    assert [p async for p in anyio.Path(tmp_path).iterdir()] == []


async def test_inventory_data_file_checks(tmp_path: Path) -> None:
    storage = InMemoryStorage(buckets=["inv"])
    good = _data_file([["src", "a", "1", "e", "true", "false"]])
    storage.seed("inv", "data/0.csv.gz", good)
    manifest = parse_manifest(
        _manifest([{"key": "data/0.csv.gz", "size": len(good), "MD5checksum": "0" * 32}]), "m"
    )
    with pytest.raises(Exception, match="has MD5"):
        [e async for e in read_entries(storage, manifest, None, lambda: tmp_path / "x")]
    storage.seed("inv", "data/0.csv.gz", b"not gzip")
    plain = InventoryManifest(
        "m",
        "src",
        "inv",
        manifest.columns,
        (manifest.files[0].__class__("data/0.csv.gz", 8, None),),
    )
    with pytest.raises(InvalidArgumentError, match="not gzip-compressed CSV"):
        [e async for e in read_entries(storage, plain, None, lambda: tmp_path / "y")]
    storage.seed("inv", "data/0.csv.gz", _data_file([["src", "a"]]))
    with pytest.raises(InvalidArgumentError, match="2 fields"):
        [e async for e in read_entries(storage, plain, None, lambda: tmp_path / "z")]


def _md5(data: bytes) -> str:
    import hashlib

    return hashlib.md5(data, usedforsecurity=False).hexdigest()
