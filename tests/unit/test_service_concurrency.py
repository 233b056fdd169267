"""Concurrent writers, races with deletes, and cancellation, over fakes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import anyio
import pytest

from deltaglider_async._errors import StorageError
from deltaglider_async._models import DeltaSpace
from deltaglider_async.core import metadata as codec
from deltaglider_async.core.locks import KeyedActivity, KeyedLocks
from tests.fakes import InMemoryStorage, Request

from .conftest import MakeHarness
from .support import BUCKET, Harness, archive, files_under, sha256, variant

N = 8


async def assert_consistent(
    storage: InMemoryStorage, reader: Harness, expected: dict[str, bytes]
) -> None:
    """Every delta points at the reference it was encoded against, no reference is
    orphaned, and every logical object reads back exactly as ``expected``."""
    keys = storage.keys(BUCKET)
    logical: set[str] = set()
    referenced: set[str] = set()
    for key in keys:
        head = await storage.head(BUCKET, key)
        assert head is not None
        meta = codec.decode(head)
        if key.endswith(".delta"):
            assert meta.kind is codec.ObjectKind.DELTA
            assert meta.ref_key in keys, f"{key} points at a missing reference"
            assert meta.ref_key is not None
            assert sha256(storage.data(BUCKET, meta.ref_key)) == meta.ref_sha256, key
            referenced.add(meta.ref_key)
            logical.add(key.removesuffix(".delta"))
        elif key.rpartition("/")[2] != "reference.bin":
            logical.add(key)
    references = {k for k in keys if k.rpartition("/")[2] == "reference.bin"}
    assert references == referenced, "orphaned reference"
    assert logical == set(expected)
    for key, data in expected.items():
        assert await reader.read(key) == data, key


# --------------------------------------------------------------------------- writers


async def test_concurrent_puts_through_one_service_write_the_reference_once(
    h: Harness, make_harness: MakeHarness
) -> None:
    base = archive(1)
    files = {f"d/v{i}.zip": (base if i == 0 else variant(base, i)) for i in range(N)}

    async def slow(_: Request) -> None:
        await anyio.sleep(0.05)

    h.storage.add_hook(slow, op="put", key="d/reference.bin")
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            for key, data in files.items():
                tg.start_soon(h.put, key, data)

    assert h.storage.count("put", "d/reference.bin") == 1
    assert h.storage.count("get", "d/reference.bin") == 0  # everyone used the local copy
    await assert_consistent(h.storage, make_harness(), files)
    assert h.work_files() == []


@pytest.mark.parametrize("mode", ["supported", "refused", "ignored"])
async def test_concurrent_puts_through_separate_services_agree_on_one_reference(
    storage: InMemoryStorage, make_harness: MakeHarness, mode: str
) -> None:
    storage.conditional_writes = mode  # type: ignore[assignment]
    writers = [make_harness() for _ in range(N)]
    files = {f"d/v{i}.zip": variant(archive(1), i) for i in range(N)}
    arrived = 0
    everyone = anyio.Event()

    async def barrier(_: Request) -> None:
        # Hold every reference write until all writers have tried: a real race.
        nonlocal arrived
        arrived += 1
        if arrived >= N:
            everyone.set()
        with anyio.move_on_after(1):
            await everyone.wait()

    storage.add_hook(barrier, op="put", key="d/reference.bin")
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            for writer, (key, data) in zip(writers, files.items(), strict=True):
                tg.start_soon(writer.put, key, data)

    ref_puts = [r for r in storage.writes() if r.key == "d/reference.bin"]
    assert len(ref_puts) >= N  # every writer raced for the reference
    if mode == "supported":
        assert [r.outcome for r in ref_puts].count("ok") == 1
        assert [r.outcome for r in ref_puts].count("PreconditionFailedError") == N - 1
    await assert_consistent(storage, make_harness(), files)
    for writer in writers:
        assert writer.work_files() == []


async def test_reference_vanishing_between_encode_and_confirm_is_restored(
    h: Harness, make_harness: MakeHarness
) -> None:
    base = archive(1)
    await h.put("d/a.zip", base)

    async def delete_reference(op: str, *_: Path) -> None:
        if op == "encode":
            h.storage.remove(BUCKET, "d/reference.bin")

    h.diff.after.append(delete_reference)
    await h.put("d/b.zip", variant(base, 2))
    h.diff.after.clear()

    assert h.storage.data(BUCKET, "d/reference.bin") == base
    assert "reference vanished, restoring it" in h.logger.messages("warning")
    await assert_consistent(
        h.storage, make_harness(), {"d/a.zip": base, "d/b.zip": variant(base, 2)}
    )


async def test_reference_replaced_between_encode_and_confirm_is_re_encoded(
    h: Harness, make_harness: MakeHarness
) -> None:
    base = archive(1)
    other = variant(base, 50)  # similar, so the delta against either one is small
    await h.put("d/a.zip", base)
    other_meta = codec.reference_metadata(
        tool="x", source_name="o.zip", sha256=sha256(other), size=len(other), md5="0" * 32,
        created_at=h.clock.now(),
    )  # fmt: skip

    async def replace_reference(op: str, *_: Path) -> None:
        if op == "encode" and len(h.diff.encodes) == 2:
            h.storage.seed(BUCKET, "d/reference.bin", other, other_meta)

    h.diff.after.append(replace_reference)
    summary = await h.put("d/b.zip", variant(base, 2))
    assert summary.ref_sha256 == sha256(other)
    assert len(h.diff.encodes) == 3  # encoded again against the new reference
    meta = h.storage.metadata(BUCKET, "d/b.zip.delta")
    assert meta["dg-ref-sha256"] == sha256(other)
    assert await make_harness().read("d/b.zip") == variant(base, 2)


async def test_reference_that_keeps_changing_leaves_no_inconsistent_delta(
    h: Harness, make_harness: MakeHarness
) -> None:
    base = archive(1)
    await h.put("d/a.zip", base)
    generation = 0

    async def churn(op: str, *_: Path) -> None:
        nonlocal generation
        if op != "encode":
            return
        generation += 1
        data = variant(base, 100 + generation)
        meta = codec.reference_metadata(
            tool="x", source_name="o.zip", sha256=sha256(data), size=len(data), md5="0" * 32,
            created_at=h.clock.now(),
        )  # fmt: skip
        h.storage.seed(BUCKET, "d/reference.bin", data, meta)

    h.diff.after.append(churn)
    with pytest.raises(StorageError, match="kept changing"):
        await h.put("d/b.zip", variant(base, 2))
    assert "d/b.zip.delta" not in h.stored_keys()
    assert h.work_files() == []


async def test_delete_of_the_last_delta_racing_a_put_never_orphans_the_new_delta(
    h: Harness, make_harness: MakeHarness
) -> None:
    base = archive(1)
    await h.put("d/a.zip", base)
    listing = anyio.Event()
    delta_stored = anyio.Event()

    async def hold_listing(request: Request) -> None:
        # The delete's LIST saw no delta; let the put store its delta before the
        # delete goes on to remove the reference.
        listing.set()
        await delta_stored.wait()

    async def stored(_: Request) -> None:
        delta_stored.set()

    confirmed = anyio.Event()
    heads_after_delta = 0

    async def head_after_delta(_: Request) -> None:
        # One HEAD is the delete's own check; the other is the put confirming.
        nonlocal heads_after_delta
        if "d/b.zip.delta" in h.storage.objects(BUCKET):
            heads_after_delta += 1
            if heads_after_delta == 2:
                confirmed.set()

    async def delete_late(_: Request) -> None:
        # Worst case for the put: it checks the reference is there, then it goes away.
        # (A put that waits for the delete to finish first times this wait out.)
        with anyio.move_on_after(0.3):
            await confirmed.wait()

    h.storage.add_hook(hold_listing, op="list", key="d/", after=True, times=1)
    h.storage.add_hook(stored, op="put", key="d/b.zip.delta", after=True)
    h.storage.add_hook(head_after_delta, op="head", key="d/reference.bin", after=True)
    h.storage.add_hook(delete_late, op="delete", key="d/reference.bin")
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(h.service.delete, h.key("d/a.zip"))
            await listing.wait()
            tg.start_soon(h.put, "d/b.zip", variant(base, 2))

    await assert_consistent(h.storage, make_harness(), {"d/b.zip": variant(base, 2)})


async def test_puts_into_one_space_confirm_their_reference_concurrently(
    h: Harness, make_harness: MakeHarness
) -> None:
    base = archive(1)
    await h.put("d/a.zip", base)
    files = {f"d/v{i}.zip": variant(base, i) for i in range(N)}

    in_flight = peak = 0

    async def slow_confirm(_: Request) -> None:
        nonlocal in_flight, peak
        if any(k in h.storage.objects(BUCKET) for k in (f"{k}.delta" for k in files)):
            in_flight += 1
            peak = max(peak, in_flight)
            try:
                await anyio.sleep(0.2)
            finally:
                in_flight -= 1

    h.storage.add_hook(slow_confirm, op="head", key="d/reference.bin")
    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            for key, data in files.items():
                tg.start_soon(h.put, key, data)
    # Confirmations overlap: one put's slow check of the reference does not hold the others.
    assert peak >= 2
    await assert_consistent(h.storage, make_harness(), {"d/a.zip": base, **files})


async def test_concurrent_deletes_and_puts_stay_consistent(
    h: Harness, make_harness: MakeHarness
) -> None:
    base = archive(1)
    for i in range(4):
        await h.put(f"d/old{i}.zip", variant(base, i))
    new = {f"d/new{i}.zip": variant(base, 10 + i) for i in range(4)}
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            for i in range(4):
                tg.start_soon(h.service.delete, h.key(f"d/old{i}.zip"))
            for key, data in new.items():
                tg.start_soon(h.put, key, data)
    await assert_consistent(h.storage, make_harness(), new)


# --------------------------------------------------------------------------- cancellation

Arm = Callable[[Harness, anyio.Event], None]


def _block_request(op: str, key: str, *, only_when: str | None = None) -> Arm:
    def arm(h: Harness, reached: anyio.Event) -> None:
        async def block(_: Request) -> None:
            if reached.is_set():
                return  # only the first matching request (not the clean-up's)
            if only_when is not None and only_when not in h.storage.objects(BUCKET):
                return
            reached.set()
            await anyio.sleep_forever()

        h.storage.add_hook(block, op=op, key=key)

    return arm


def _block_diff(op: str) -> Arm:
    def arm(h: Harness, reached: anyio.Event) -> None:
        async def block(called: str, *_: Path) -> None:
            if called == op:
                reached.set()
                await anyio.sleep_forever()

        h.diff.before.append(block)

    return arm


CANCEL_POINTS: dict[str, Arm] = {
    "reference-head": _block_request("head", "d/reference.bin"),
    "reference-put": _block_request("put", "d/reference.bin"),
    "reference-readback": _block_request("head", "d/reference.bin", only_when="d/reference.bin"),
    "encode": _block_diff("encode"),
    "delta-put": _block_request("put", "d/new.zip.delta"),
    "confirm": _block_request("head", "d/reference.bin", only_when="d/new.zip.delta"),
    "other-form": _block_request("head", "d/new.zip"),
}


@pytest.mark.parametrize(
    ("point", "existing"),
    [(p, False) for p in CANCEL_POINTS]
    + [(p, True) for p in CANCEL_POINTS if p != "reference-put"],  # no reference PUT then
)
async def test_cancelled_put_leaves_no_temp_files_and_no_partial_object(
    h: Harness, make_harness: MakeHarness, point: str, existing: bool
) -> None:
    base = archive(1)
    expected: dict[str, bytes] = {}
    if existing:
        await h.put("d/a.zip", base)
        expected["d/a.zip"] = base
    reached = anyio.Event()
    CANCEL_POINTS[point](h, reached)
    new = variant(base, 2)

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(h.put, "d/new.zip", new)
            await reached.wait()
            tg.cancel_scope.cancel()

    h.storage.clear_hooks()
    h.diff.before.clear()
    assert h.work_files() == []
    assert not h.storage.open_bodies
    if "d/new.zip.delta" in h.stored_keys():
        expected["d/new.zip"] = new
    await assert_consistent(h.storage, make_harness(), expected)
    # The space still works.
    await h.put("d/new.zip", new)
    assert await h.read("d/new.zip") == new


async def test_cancelled_put_while_streaming_the_input(h: Harness) -> None:
    reached = anyio.Event()

    async def endless() -> AsyncIterator[bytes]:
        yield archive(1)
        reached.set()
        await anyio.sleep_forever()

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(h.service.put_stream, endless(), DeltaSpace(BUCKET, "d"), "a.zip")
            await reached.wait()
            tg.cancel_scope.cancel()
    assert h.work_files() == []
    assert h.storage.requests == []


async def test_cancelled_put_of_a_local_file_closes_it(h: Harness) -> None:
    reached = anyio.Event()

    async def block(called: str, *_: Path) -> None:
        reached.set()
        await anyio.sleep_forever()

    h.diff.before.append(block)
    src = h.write("a.zip", archive(1))
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(h.service.put, src, DeltaSpace(BUCKET, "d"))
            await reached.wait()
            tg.cancel_scope.cancel()
    assert h.work_files() == []


@pytest.mark.parametrize("point", ["get-delta", "decode"])
async def test_cancelled_get_leaves_destination_and_work_dir_clean(
    h: Harness, make_harness: MakeHarness, point: str
) -> None:
    base = archive(1)
    await h.put("d/a.zip", base)
    await h.put("d/b.zip", variant(base, 2))
    reader = make_harness()
    reached = anyio.Event()
    if point == "decode":
        _block_diff("decode")(reader, reached)
    else:
        _block_request("get", "d/b.zip.delta")(reader, reached)
    out_dir = reader.tmp / "downloads"
    out_dir.mkdir()
    out = out_dir / "b.zip"
    out.write_bytes(b"old")

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(reader.service.get, reader.key("d/b.zip"), out)
            await reached.wait()
            tg.cancel_scope.cancel()
    assert files_under(out_dir) == [out]
    assert out.read_bytes() == b"old"
    assert reader.work_files() == []


async def test_aclose_removes_the_work_directory(h: Harness) -> None:
    await h.put("d/a.zip", archive(1))
    work = h.service.work_dir
    assert work is not None
    assert work.is_dir()
    assert work.parent == h.work_root
    await h.service.aclose()
    assert not work.exists()
    await h.service.aclose()  # idempotent


# --------------------------------------------------------------------------- locks


async def test_keyed_activity_lets_waiters_through_together_once_idle() -> None:
    activity = KeyedActivity()
    await activity.wait_idle("k")  # nothing running: returns at once
    release = anyio.Event()
    passed: list[int] = []

    async def run() -> None:
        with activity.running("k"):
            await release.wait()

    async def wait(i: int) -> None:
        await activity.wait_idle("k")
        passed.append(i)

    async with anyio.create_task_group() as tg:
        tg.start_soon(run)
        await anyio.wait_all_tasks_blocked()
        for i in range(3):
            tg.start_soon(wait, i)
        await anyio.wait_all_tasks_blocked()
        assert passed == []
        await activity.wait_idle("other")  # other keys are not affected
        release.set()
    assert sorted(passed) == [0, 1, 2]
    assert len(activity) == 0


async def test_keyed_locks_serialise_one_key_and_forget_idle_keys() -> None:
    locks = KeyedLocks()
    inside: dict[str, int] = {"a": 0, "b": 0}
    peak: dict[str, int] = {"a": 0, "b": 0}

    async def worker(key: str) -> None:
        async with locks.hold(key):
            inside[key] += 1
            peak[key] = max(peak[key], inside[key])
            await anyio.sleep(0.001)
            inside[key] -= 1

    async with anyio.create_task_group() as tg:
        for i in range(10):
            tg.start_soon(worker, "ab"[i % 2])
    assert peak == {"a": 1, "b": 1}
    assert len(locks) == 0


async def test_keyed_lock_waiter_cancelled_is_forgotten() -> None:
    locks = KeyedLocks()
    held = anyio.Event()
    release = anyio.Event()

    async def holder() -> None:
        async with locks.hold("k"):
            held.set()
            await release.wait()

    async with anyio.create_task_group() as tg:
        tg.start_soon(holder)
        await held.wait()
        with anyio.move_on_after(0.01):
            async with locks.hold("k"):
                pytest.fail("acquired a held lock")
        release.set()
    assert len(locks) == 0
