"""XDelta3Diff against the real xdelta3 binary."""

from __future__ import annotations

import gc
import gzip
import io
import os
import random
import shutil
import stat
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest

from deltaglider_async._errors import DiffError, DiffToolNotFoundError, InvalidArgumentError
from deltaglider_async.adapters.xdelta3 import (
    INSTALL_HINT,
    MAX_WINDOW,
    MIN_WINDOW,
    XDelta3Diff,
    source_window,
)
from deltaglider_async.ports.diff import DiffPort

MiB = 1024 * 1024

pytestmark = pytest.mark.skipif(shutil.which("xdelta3") is None, reason="xdelta3 not installed")


def _xdelta3_children() -> dict[int, str]:
    """pid → process state of every xdelta3 process whose parent is this process."""
    me = os.getpid()
    found: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path("/proc", entry, "stat").read_text()
        except OSError:
            continue
        comm = raw[raw.index("(") + 1 : raw.rindex(")")]
        state, ppid = raw[raw.rindex(")") + 2 :].split()[:2]
        if comm == "xdelta3" and int(ppid) == me:
            found[int(entry)] = state
    return found


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


async def _round_trip(diff: XDelta3Diff, tmp: Path, reference: bytes, target: bytes) -> int:
    ref = _write(tmp / "reference.bin", reference)
    tgt = _write(tmp / "target", target)
    delta = tmp / "target.delta"
    out = tmp / "decoded"
    await diff.encode(ref, tgt, delta)
    await diff.decode(ref, delta, out)
    assert out.read_bytes() == target
    return delta.stat().st_size


def _edited(data: bytes, rng: random.Random) -> bytes:
    """``data`` with a few insertions, deletions and overwrites."""
    out = bytearray(data)
    for _ in range(5):
        at = rng.randrange(len(out))
        out[at : at + 100] = rng.randbytes(100)
    for _ in range(3):
        at = rng.randrange(len(out))
        out[at:at] = rng.randbytes(rng.randrange(1, 5000))
    for _ in range(3):
        at = rng.randrange(len(out))
        del out[at : at + rng.randrange(1, 5000)]
    return bytes(out)


def test_implements_the_port() -> None:
    diff: DiffPort = XDelta3Diff()
    assert diff.describe_encode("reference.bin", "a.zip", "a.zip.delta") == (
        "xdelta3 -e -9 -D -A -s reference.bin a.zip a.zip.delta"
    )


def test_describe_encode_names_level_secondary_and_window() -> None:
    diff = XDelta3Diff(level=1, secondary="djw")
    assert diff.describe_encode("reference.bin", "a.zip", "a.zip.delta", reference_size=MiB) == (
        "xdelta3 -e -1 -S djw -D -A -B 1048576 -s reference.bin a.zip a.zip.delta"
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"level": 10},
        {"level": -1},
        {"secondary": "zstd"},
        {"max_window": MIN_WINDOW - 1},
        {"max_processes": 0},
    ],
)
def test_constructor_rejects_bad_settings(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidArgumentError):
        XDelta3Diff(**kwargs)  # type: ignore[arg-type]


async def test_round_trip_of_random_data_with_edits(tmp_path: Path) -> None:
    rng = random.Random(1)
    reference = rng.randbytes(2 * MiB)
    target = _edited(reference, rng)
    size = await _round_trip(XDelta3Diff(), tmp_path, reference, target)
    assert size < len(target) // 20


@pytest.mark.parametrize("secondary", [None, "none", "djw", "lzma", "fgk"])
async def test_round_trip_with_each_secondary_compressor(
    tmp_path: Path, secondary: str | None
) -> None:
    rng = random.Random(2)
    reference = rng.randbytes(300_000)
    target = _edited(reference, rng)
    size = await _round_trip(XDelta3Diff(level=1, secondary=secondary), tmp_path, reference, target)
    assert size < len(target) // 5


def _tar_gz(version: int) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=9) as tar:
        for i in range(20):
            body = (
                f"file {i}, version {version if i == 7 else 1}\n".encode()
                + bytes(range(256)) * 200
                + str(i).encode() * 1000
            )
            info = tarfile.TarInfo(f"pkg/file{i}.txt")
            info.size = len(body)
            info.mtime = 1_700_000_000
            tar.addfile(info, io.BytesIO(body))
    return buffer.getvalue()


async def test_gzip_payload_round_trip_is_byte_exact(tmp_path: Path) -> None:
    reference, target = _tar_gz(1), _tar_gz(2)
    assert target[:2] == b"\x1f\x8b"
    await _round_trip(XDelta3Diff(), tmp_path, reference, target)
    assert gzip.decompress((tmp_path / "decoded").read_bytes()) == gzip.decompress(target)


@pytest.mark.skipif(shutil.which("gzip") is None, reason="needs gzip to show the failure mode")
def test_without_dash_d_the_same_gzip_round_trip_is_not_byte_exact(tmp_path: Path) -> None:
    """The control for the test above: -D is what makes gzip payloads byte-exact."""
    ref = _write(tmp_path / "ref.tgz", _tar_gz(1))
    tgt = _write(tmp_path / "tgt.tgz", _tar_gz(2))
    delta, out = tmp_path / "d", tmp_path / "out"
    xdelta3 = shutil.which("xdelta3")
    assert xdelta3 is not None
    subprocess.run(
        [xdelta3, "-e", "-9", "-A", "-f", "-s", ref, tgt, delta], check=True, capture_output=True
    )
    subprocess.run([xdelta3, "-d", "-f", "-s", ref, delta, out], check=True, capture_output=True)
    assert out.read_bytes() != tgt.read_bytes()


@pytest.mark.parametrize(
    ("reference", "target"),
    [
        (b"some reference bytes" * 1000, b""),
        (b"some reference bytes" * 1000, b"x"),
        (b"", b"x"),
        (b"", b""),
        (b"", b"no reference at all" * 1000),
        (b"x", b""),
    ],
    ids=["empty-target", "one-byte-target", "empty-ref", "both-empty", "empty-ref-big", "1-to-0"],
)
async def test_tiny_and_empty_inputs(tmp_path: Path, reference: bytes, target: bytes) -> None:
    await _round_trip(XDelta3Diff(), tmp_path, reference, target)
    assert (tmp_path / "decoded").exists()


async def test_identical_files_give_a_tiny_delta(tmp_path: Path) -> None:
    data = random.Random(3).randbytes(MiB)
    assert await _round_trip(XDelta3Diff(), tmp_path, data, data) < 100


def test_source_window_sizing() -> None:
    assert source_window(0) == MIN_WINDOW == 524_288
    assert source_window(1) == MIN_WINDOW
    assert source_window(MIN_WINDOW) == MIN_WINDOW
    assert source_window(MIN_WINDOW + 1) == 2 * MIN_WINDOW
    assert source_window(20 * MiB) == 32 * MiB
    assert source_window(32 * MiB) == 32 * MiB
    assert source_window(5 * 1024 * MiB) == MAX_WINDOW == 2**31
    # The cap is rounded down to a power of two: xdelta3 rounds -B up internally.
    assert source_window(100 * MiB, max_window=48 * MiB) == 32 * MiB
    assert source_window(100 * MiB, max_window=64 * MiB) == 64 * MiB
    assert source_window(MiB, max_window=64 * MiB) == MiB
    assert source_window(100 * MiB, max_window=8 * 1024 * MiB) == 128 * MiB
    with pytest.raises(InvalidArgumentError):
        source_window(-1)


async def test_window_covers_a_large_reference(tmp_path: Path) -> None:
    """Swapped halves of a 20 MiB file: with an 8 MiB window xdelta3 emits a 20 MB delta."""
    reference = random.Random(4).randbytes(20 * MiB)
    half = len(reference) // 2
    target = reference[half:] + reference[:half]
    diff = XDelta3Diff()
    assert diff.window_for(len(reference)) == 32 * MiB
    size = await _round_trip(diff, tmp_path, reference, target)
    assert size < 4096


async def test_max_window_caps_the_window(tmp_path: Path) -> None:
    """The control: capping the window below the reference size loses the moved data."""
    reference = random.Random(5).randbytes(4 * MiB)
    half = len(reference) // 2
    target = reference[half:] + reference[:half]
    small = await _round_trip(XDelta3Diff(max_window=MiB), tmp_path, reference, target)
    full = await _round_trip(XDelta3Diff(), tmp_path, reference, target)
    assert full < 4096
    assert small > len(target) // 2


def _corruptions(delta: bytes) -> dict[str, bytes]:
    def flip(at: int) -> bytes:
        out = bytearray(delta)
        out[at] ^= 0x01
        return bytes(out)

    return {
        "magic": flip(0),
        "header": flip(5),
        "early-body": flip(30),
        "middle": flip(len(delta) // 2),
        "last-byte": flip(len(delta) - 1),
        "truncated-half": delta[: len(delta) // 2],
        "truncated-by-one": delta[:-1],
        "empty": b"",
        "trailing-garbage": delta + b"garbage",
        "random": random.Random(6).randbytes(len(delta)),
    }


async def test_corrupted_deltas_raise_diff_error_and_leave_no_output(tmp_path: Path) -> None:
    rng = random.Random(7)
    reference = rng.randbytes(300_000)
    target = reference[:100_000] + rng.randbytes(5_000) + reference[150_000:]
    diff = XDelta3Diff()
    ref = _write(tmp_path / "ref", reference)
    tgt = _write(tmp_path / "tgt", target)
    delta = tmp_path / "delta"
    await diff.encode(ref, tgt, delta)
    good = delta.read_bytes()
    for name, bad in _corruptions(good).items():
        bad_delta = _write(tmp_path / f"{name}.delta", bad)
        out = _write(tmp_path / f"{name}.out", b"stale")
        with pytest.raises(DiffError) as caught:
            await diff.decode(ref, bad_delta, out)
        assert not isinstance(caught.value, DiffToolNotFoundError), name
        assert "decode exited with status 1" in str(caught.value), name
        assert not out.exists(), name


async def test_wrong_or_damaged_reference_raises_diff_error(tmp_path: Path) -> None:
    rng = random.Random(8)
    reference = rng.randbytes(300_000)
    target = reference[:100_000] + rng.randbytes(5_000) + reference[150_000:]
    diff = XDelta3Diff()
    ref = _write(tmp_path / "ref", reference)
    delta = tmp_path / "delta"
    await diff.encode(ref, _write(tmp_path / "tgt", target), delta)
    damaged = bytearray(reference)
    damaged[-1] ^= 0x01  # a byte the delta copies from
    for name, other in {
        "other": rng.randbytes(300_000),
        "damaged": bytes(damaged),
        "truncated": reference[:200_000],
        "empty": b"",
    }.items():
        out = tmp_path / f"{name}.out"
        with pytest.raises(DiffError, match="status 1"):
            await diff.decode(_write(tmp_path / f"{name}.ref", other), delta, out)
        assert not out.exists(), name


async def test_error_message_carries_xdelta3s_explanation(tmp_path: Path) -> None:
    ref = _write(tmp_path / "ref", b"reference")
    delta = _write(tmp_path / "delta", b"this is not a VCDIFF file at all")
    with pytest.raises(DiffError) as caught:
        await XDelta3Diff().decode(ref, delta, tmp_path / "out")
    assert "not a VCDIFF input" in str(caught.value)


async def test_missing_reference_raises_diff_error(tmp_path: Path) -> None:
    tgt = _write(tmp_path / "tgt", b"target")
    out = tmp_path / "out"
    with pytest.raises(DiffError, match="not readable"):
        await XDelta3Diff().encode(tmp_path / "absent", tgt, out)
    assert not out.exists()


async def test_stderr_is_kept_to_its_last_two_kilobytes(tmp_path: Path) -> None:
    """A stand-in executable (not xdelta3) that writes its output, floods stderr and fails."""
    script = tmp_path / "failing-tool"
    script.write_text(
        '#!/bin/sh\nfor last; do :; done\necho partial > "$last"\n'
        "i=0; while [ $i -lt 200 ]; do echo 'noise noise noise noise noise' >&2; "
        "i=$((i+1)); done\necho 'the real reason' >&2\nexit 3\n"
    )
    script.chmod(0o755)
    ref = _write(tmp_path / "ref", b"r")
    out = tmp_path / "out"
    with pytest.raises(DiffError) as caught:
        await XDelta3Diff(binary=script).encode(ref, _write(tmp_path / "t", b"t"), out)
    message = str(caught.value)
    assert "exited with status 3" in message
    assert message.endswith("the real reason")
    assert 2000 < len(message) < 2200
    assert not out.exists()


async def test_missing_binary_path_raises_with_install_hint(tmp_path: Path) -> None:
    diff = XDelta3Diff(binary=tmp_path / "no-such-xdelta3")  # no I/O yet: no error
    ref = _write(tmp_path / "ref", b"r")
    with pytest.raises(DiffToolNotFoundError) as caught:
        await diff.encode(ref, _write(tmp_path / "t", b"t"), tmp_path / "out")
    assert isinstance(caught.value, RuntimeError)
    assert INSTALL_HINT in str(caught.value)
    assert "apt-get install -y xdelta3" in str(caught.value)
    assert "brew install xdelta" in str(caught.value)
    with pytest.raises(DiffToolNotFoundError):
        await diff.decode(ref, tmp_path / "t", tmp_path / "out")


async def test_non_executable_binary_raises_with_install_hint(tmp_path: Path) -> None:
    fake = _write(tmp_path / "xdelta3", b"#!/bin/sh\n")
    fake.chmod(stat.S_IRUSR | stat.S_IWUSR)
    with pytest.raises(DiffToolNotFoundError, match="apt-get install -y xdelta3"):
        XDelta3Diff(binary=fake).binary()


async def test_xdelta3_not_on_path_raises_with_install_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    ref = _write(tmp_path / "ref", b"r")
    with pytest.raises(DiffToolNotFoundError, match="put xdelta3 on PATH"):
        await XDelta3Diff().encode(ref, _write(tmp_path / "t", b"t"), tmp_path / "out")


async def test_binary_is_located_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    diff = XDelta3Diff()
    located = diff.binary()
    monkeypatch.setenv("PATH", str(tmp_path))
    assert diff.binary() == located
    await _round_trip(diff, tmp_path, b"abc" * 1000, b"abd" * 1000)


async def test_xdelta_environment_variable_is_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # -J would make xdelta3 compute without writing any output.
    monkeypatch.setenv("XDELTA", "-J")
    await _round_trip(XDelta3Diff(), tmp_path, b"abc" * 1000, b"abd" * 1000)


async def test_relative_paths_starting_with_a_dash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    diff = XDelta3Diff()
    _write(Path("-ref"), b"reference " * 500)
    _write(Path("-tgt"), b"reference " * 400 + b"target")
    await diff.encode(Path("-ref"), Path("-tgt"), Path("-delta"))
    await diff.decode(Path("-ref"), Path("-delta"), Path("-out"))
    assert (tmp_path / "-out").read_bytes() == (tmp_path / "-tgt").read_bytes()


@pytest.fixture(scope="module")
def large_inputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """64 MiB of unrelated random reference and target: minutes of work at -9."""
    base = tmp_path_factory.mktemp("large")
    ref, tgt = base / "ref", base / "tgt"
    for path in (ref, tgt):
        with path.open("wb") as f:
            for _ in range(64):
                f.write(os.urandom(MiB))
    return ref, tgt


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inspects /proc")
async def test_cancellation_kills_and_reaps_the_child(
    tmp_path: Path, large_inputs: tuple[Path, Path]
) -> None:
    ref, tgt = large_inputs
    out = _write(tmp_path / "out.delta", b"stale output")
    diff = XDelta3Diff(level=9)
    seen: dict[int, str] = {}
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:
            tg.start_soon(diff.encode, ref, tgt, out)
            with anyio.fail_after(10):
                while not seen or diff.running == 0:
                    await anyio.sleep(0.01)
                    seen = _xdelta3_children()
            assert diff.running == 1
            await anyio.sleep(0.2)
            assert _xdelta3_children() == seen, "the child should still be encoding"
            cancelled_at = time.monotonic()
            scope.cancel()
    assert scope.cancelled_caught
    assert time.monotonic() - cancelled_at < 2
    (pid,) = seen
    with pytest.raises(ProcessLookupError):  # gone, not even a zombie
        os.kill(pid, 0)
    assert _xdelta3_children() == {}
    assert diff.running == 0
    assert not out.exists()


class _Stop(Exception):
    pass


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inspects /proc")
def test_cancellation_while_the_child_starts_still_reaps_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cancelled right as the child appears, on a loop that closes right after.

    Unshielded, asyncio kills such a child but nobody waits for it: it is reported as
    "still running" (and its pipe as unclosed) once the loop is gone.
    """
    unraisable: list[str] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: unraisable.append(repr(u.exc_value)))
    ref = _write(tmp_path / "ref", os.urandom(4 * MiB))
    tgt = _write(tmp_path / "tgt", os.urandom(4 * MiB))

    async def start_then_fail() -> None:
        diff = XDelta3Diff()
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(diff.encode, ref, tgt, tmp_path / "out")
                with anyio.fail_after(10):
                    while not _xdelta3_children():
                        await anyio.lowlevel.checkpoint()
                raise _Stop
        except* _Stop:
            pass
        assert diff.running == 0

    for _ in range(20):
        anyio.run(start_then_fail)
        gc.collect()
    assert unraisable == []
    assert _xdelta3_children() == {}
    assert not (tmp_path / "out").exists()


async def _sample_children(diff: XDelta3Diff, peaks: list[int], stop: anyio.Event) -> None:
    while not stop.is_set():
        live = [s for s in _xdelta3_children().values() if s != "Z"]
        peaks.append(max(len(live), diff.running))
        await anyio.sleep(0.002)


async def _encode_concurrently(diff: XDelta3Diff, tmp: Path, jobs: int) -> int:
    rng = random.Random(9)
    reference = rng.randbytes(3 * MiB)
    ref = _write(tmp / "ref", reference)
    targets = [_write(tmp / f"t{i}", rng.randbytes(MiB) + reference[MiB:]) for i in range(jobs)]
    peaks: list[int] = []
    stop = anyio.Event()
    async with anyio.create_task_group() as tg:
        tg.start_soon(_sample_children, diff, peaks, stop)
        async with anyio.create_task_group() as encoders:
            for target in targets:
                encoders.start_soon(diff.encode, ref, target, target.with_suffix(".delta"))
        stop.set()
    for target in targets:
        await diff.decode(ref, target.with_suffix(".delta"), target.with_suffix(".out"))
        assert target.with_suffix(".out").read_bytes() == target.read_bytes()
    assert peaks, "the sampler never ran"
    return max(peaks)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inspects /proc")
async def test_limiter_bounds_concurrent_children(tmp_path: Path) -> None:
    assert await _encode_concurrently(XDelta3Diff(max_processes=1), tmp_path, jobs=3) == 1


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inspects /proc")
async def test_children_do_overlap_without_a_tight_limit(tmp_path: Path) -> None:
    """The control for the test above: the sampler does see overlapping children."""
    assert await _encode_concurrently(XDelta3Diff(max_processes=3), tmp_path, jobs=3) >= 2
