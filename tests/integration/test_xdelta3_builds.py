"""The installed xdelta3 decides what works, and says so.

Upstream xdelta3 3.2.0 is built without the ``fgk`` secondary compressor; Debian ships
3.0.11, which has it. A 3.2.0 binary is looked for at ``DG_TEST_XDELTA3_320`` or beside
the checkout (``../shared/tools/xdelta3-3.2.0/xdelta3``); tests needing it are skipped
where it is absent.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from deltaglider_async import (
    AsyncDeltaGliderClient,
    DiffToolFailedError,
    DiffToolUnsupportedError,
    IntegrityError,
)
from deltaglider_async.adapters.xdelta3 import XDelta3Diff
from deltaglider_async.testing import LocalS3
from tests.archives import make_zip_versions

_BESIDE = Path(__file__).resolve().parents[3] / "shared" / "tools" / "xdelta3-3.2.0" / "xdelta3"
XDELTA3_320 = Path(os.environ.get("DG_TEST_XDELTA3_320", _BESIDE))
needs_320 = pytest.mark.skipif(
    not (XDELTA3_320.is_file() and os.access(XDELTA3_320, os.X_OK)),
    reason=f"no upstream xdelta3 3.2.0 binary at {XDELTA3_320}",
)
SYSTEM_XDELTA3 = shutil.which("xdelta3")


@pytest.fixture
def versions(tmp_path: Path) -> list[Path]:
    return make_zip_versions(tmp_path / "src", 2, size=400_000)


def use_320(monkeypatch: pytest.MonkeyPatch) -> None:
    """Put the 3.2.0 binary first on PATH for clients created from now on."""
    monkeypatch.setenv("PATH", f"{XDELTA3_320.parent}{os.pathsep}{os.environ['PATH']}")


async def test_the_version_is_read_at_first_use(tmp_path: Path, versions: list[Path]) -> None:
    diff = XDelta3Diff()
    assert diff.version is None
    await diff.encode(versions[0], versions[1], tmp_path / "d")
    assert diff.version is not None
    assert diff.version[0].isdigit()


@needs_320
async def test_fgk_on_320_is_a_configuration_error_naming_the_version(
    tmp_path: Path, versions: list[Path]
) -> None:
    diff = XDelta3Diff(secondary="fgk", binary=XDELTA3_320)
    out = tmp_path / "delta"
    with pytest.raises(DiffToolUnsupportedError, match=r"3\.2\.0.*'fgk'") as caught:
        await diff.encode(versions[0], versions[1], out)
    assert "xdelta_secondary" in str(caught.value)
    assert not out.exists()
    # The same answer again, without running the probe twice.
    with pytest.raises(DiffToolUnsupportedError):
        await diff.encode(versions[0], versions[1], out)


@needs_320
async def test_djw_and_lzma_work_on_320(tmp_path: Path, versions: list[Path]) -> None:
    for secondary in ("djw", "lzma", "none"):
        diff = XDelta3Diff(secondary=secondary, binary=XDELTA3_320)
        delta, back = tmp_path / f"{secondary}.delta", tmp_path / f"{secondary}.out"
        await diff.encode(versions[0], versions[1], delta)
        await diff.decode(versions[0], delta, back)
        assert back.read_bytes() == versions[1].read_bytes()


@needs_320
async def test_an_fgk_delta_read_with_320_is_a_tool_error_not_corruption(
    s3_server: LocalS3,
    bucket: str,
    versions: list[Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with AsyncDeltaGliderClient(s3_server.config(xdelta_secondary="fgk")) as writer:
        for path in versions:
            await writer.upload(path, f"s3://{bucket}/rel/")
    use_320(monkeypatch)
    async with AsyncDeltaGliderClient(s3_server.config()) as reader:
        with pytest.raises(DiffToolUnsupportedError, match=r"3\.2\.0") as caught:
            await reader.download(f"s3://{bucket}/rel/{versions[1].name}", tmp_path / "out")
        assert not isinstance(caught.value, IntegrityError)
        # The stored data is fine: the same read with 3.0.11 succeeds.
    monkeypatch.undo()
    async with AsyncDeltaGliderClient(s3_server.config()) as reader:
        await reader.download(f"s3://{bucket}/rel/{versions[1].name}", tmp_path / "ok")
    assert (tmp_path / "ok").read_bytes() == versions[1].read_bytes()


@needs_320
@pytest.mark.skipif(SYSTEM_XDELTA3 is None, reason="no system xdelta3")
@pytest.mark.parametrize("writer_320", [True, False], ids=["320-writes", "3011-writes"])
async def test_default_settings_work_across_builds(
    s3_server: LocalS3,
    bucket: str,
    versions: list[Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    writer_320: bool,
) -> None:
    if writer_320:
        use_320(monkeypatch)
    async with AsyncDeltaGliderClient(s3_server.config()) as writer:
        for path in versions:
            summary = await writer.upload(path, f"s3://{bucket}/rel/")
    assert summary.is_delta
    monkeypatch.undo()
    if not writer_320:
        use_320(monkeypatch)
    async with AsyncDeltaGliderClient(s3_server.config()) as reader:
        for path in versions:
            out = tmp_path / f"back-{path.name}"
            await reader.download(f"s3://{bucket}/rel/{path.name}", out)
            assert out.read_bytes() == path.read_bytes()


@pytest.mark.skipif(SYSTEM_XDELTA3 is None, reason="no system xdelta3")
async def test_an_xdelta3_killed_while_decoding_is_a_tool_failure_not_corruption(
    s3_server: LocalS3,
    bucket: str,
    versions: list[Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The OOM killer (SIGKILL) ending a decode says nothing about the stored data."""
    async with AsyncDeltaGliderClient(s3_server.config()) as writer:
        for path in versions:
            await writer.upload(path, f"s3://{bucket}/rel/")
    wrapper = tmp_path / "bin" / "xdelta3"
    wrapper.parent.mkdir()
    wrapper.write_text(
        f'#!/bin/sh\nif [ "$1" = "-d" ]; then kill -9 $$; fi\nexec {SYSTEM_XDELTA3} "$@"\n'
    )
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{wrapper.parent}{os.pathsep}{os.environ['PATH']}")
    async with AsyncDeltaGliderClient(s3_server.config()) as reader:
        url = f"s3://{bucket}/rel/{versions[1].name}"
        with pytest.raises(DiffToolFailedError, match="killed by SIGKILL") as caught:
            await reader.download(url, tmp_path / "out")
        assert not isinstance(caught.value, IntegrityError)
        with pytest.raises(DiffToolFailedError):
            await reader.verify(url)
    assert not (tmp_path / "out").exists()
