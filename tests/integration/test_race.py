"""Concurrent first writers (SPEC §3.3): only the server's conditional write can save them.

Each writer has its own service (own S3 client, cache and per-space locks), as separate
processes or machines would, so the in-process lock cannot serialise them.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, cast

import anyio

from deltaglider_async._factory import ServiceBundle
from deltaglider_async._models import DeltaSpace, PutSummary
from tests.archives import make_versions

from .conftest import BundleFactory
from .support import (
    RecordingStorage,
    head_metadata,
    key_of,
    list_keys,
    read_object,
    sha256_bytes,
)

WRITERS = 16
ROUNDS = 5


async def write_all(
    bundles: list[ServiceBundle], paths: list[Path], space: DeltaSpace
) -> dict[str, PutSummary]:
    """Put ``paths[i]`` through ``bundles[i]`` concurrently, all released at once."""
    start = anyio.Event()
    summaries: dict[str, PutSummary] = {}

    async def write(bundle: ServiceBundle, path: Path) -> None:
        await start.wait()
        summaries[path.name] = await bundle.service.put(path, space)

    async with anyio.create_task_group() as tg:
        for bundle, path in zip(bundles, paths, strict=True):
            tg.start_soon(write, bundle, path)
        # Let every writer reach the start line before releasing them together.
        await anyio.wait_all_tasks_blocked()
        start.set()
    return summaries


async def test_concurrent_first_writers_share_one_reference(
    make_bundle: BundleFactory, bucket: str, s3_admin: Any, tmp_path: Path
) -> None:
    paths = make_versions(tmp_path / "src", WRITERS, "zip", seed=31, files=80, file_size=2000)
    # The race for a space's first reference, alone: these versions differ enough that
    # re-baselining would add later references (that race is in test_rebase.py).
    bundles = [make_bundle(storage_type=RecordingStorage, rebase_ratio=1.0) for _ in range(WRITERS)]
    # Open every S3 client first, so that the writers start together.
    for bundle in bundles:
        await bundle.storage.head_bucket(bucket)
    reader = make_bundle().service

    contested = 0
    for round_number in range(ROUNDS):
        space = DeltaSpace(bucket, f"race/round-{round_number}")
        summaries = await write_all(bundles, paths, space)

        prefix = f"{space.prefix}/"
        keys = set(list_keys(s3_admin, bucket, prefix))
        assert keys == {f"{prefix}reference.bin", *(f"{prefix}{p.name}.delta" for p in paths)}
        operations = Counter(s.action for s in summaries.values())
        assert operations == {"create_reference": 1, "create_delta": WRITERS - 1}
        attempts = Counter(
            outcome
            for bundle in bundles
            for key, outcome in cast(RecordingStorage, bundle.storage).conditional_puts
            if key == f"{prefix}reference.bin"
        )
        # Someone created it; losers got a 412. (moto checks If-None-Match and stores in
        # two steps, so two writes may both pass there: the service then settles the
        # winner by reading the reference back, and the checks below must still hold.)
        assert attempts["created"] >= 1
        contested += attempts["412"]

        reference = read_object(s3_admin, bucket, f"{prefix}reference.bin")
        reference_sha = sha256_bytes(reference)
        assert head_metadata(s3_admin, bucket, f"{prefix}reference.bin")["dg-file-sha256"] == (
            reference_sha
        )
        # The reference holds exactly the bytes of the writer that reported creating it.
        (creator,) = [s for s in summaries.values() if s.action == "create_reference"]
        assert reference_sha == creator.file_sha256
        for path in paths:
            meta = head_metadata(s3_admin, bucket, f"{prefix}{path.name}.delta")
            assert meta["dg-ref-sha256"] == reference_sha, (round_number, path.name)
            assert summaries[path.name].ref_sha256 == reference_sha

        for path in paths:
            out = tmp_path / "out"
            await reader.get(key_of(space, path.name), out)
            assert out.read_bytes() == path.read_bytes(), (round_number, path.name)
    # The writers really raced: the server refused at least one second reference.
    assert contested > 0
