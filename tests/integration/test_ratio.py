"""The max_ratio rule (SPEC §3.5): too-large deltas are stored direct; bad ratios refused."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from deltaglider_async._config import DeltaGliderConfig
from deltaglider_async._errors import InvalidRatioError
from deltaglider_async._models import DeltaSpace
from deltaglider_async.core.service import AsyncDeltaService
from tests.archives import make_versions

from .conftest import BundleFactory
from .support import head_metadata, key_of, list_keys


def random_file(path: Path, size: int, seed: int) -> Path:
    """A file of incompressible bytes unrelated to any other seed's."""
    path.write_bytes(random.Random(seed).randbytes(size))
    return path


def env_config(s3_config: DeltaGliderConfig) -> DeltaGliderConfig:
    """A config read from the environment, pointed at the test server."""
    return DeltaGliderConfig.from_env(
        endpoint_url=s3_config.endpoint_url,
        region_name=s3_config.region_name,
        aws_access_key_id=s3_config.aws_access_key_id,
        aws_secret_access_key=s3_config.aws_secret_access_key,
    )


async def test_unrelated_file_falls_back_to_direct(
    make_bundle: BundleFactory, bucket: str, s3_admin: Any, tmp_path: Path
) -> None:
    service = make_bundle(max_ratio=0.1).service
    space = DeltaSpace(bucket, "random")
    first = random_file(tmp_path / "first.zip", 64 * 1024, seed=1)
    second = random_file(tmp_path / "second.zip", 64 * 1024, seed=2)

    created = await service.put(first, space)
    fallback = await service.put(second, space)

    assert created.action == "create_reference"
    assert fallback.action == "upload_direct"
    assert fallback.key == "random/second.zip"
    assert fallback.stored_size == second.stat().st_size
    assert set(list_keys(s3_admin, bucket)) == {
        "random/reference.bin",
        "random/first.zip.delta",
        "random/second.zip",
    }
    meta = head_metadata(s3_admin, bucket, "random/second.zip")
    assert meta["dg-compression"] == "none"
    assert meta["dg-note"] == "passthrough"
    out = tmp_path / "out"
    await service.get(key_of(space, "second.zip"), out)
    assert out.read_bytes() == second.read_bytes()


async def test_per_call_ratio_overrides_the_configured_one(
    service: AsyncDeltaService, bucket: str, s3_admin: Any, tmp_path: Path
) -> None:
    first, second, third = make_versions(tmp_path, 3, "zip", seed=8)
    space = DeltaSpace(bucket, "app")
    await service.put(first, space)

    strict = await service.put(second, space, max_ratio=0.0)
    default = await service.put(third, space)

    assert strict.action == "upload_direct"
    assert default.action == "create_delta"
    assert set(list_keys(s3_admin, bucket)) == {
        "app/reference.bin",
        f"app/{first.name}.delta",
        f"app/{second.name}",
        f"app/{third.name}.delta",
    }


async def test_dg_max_ratio_environment_is_honoured(
    make_bundle: BundleFactory,
    s3_config: DeltaGliderConfig,
    bucket: str,
    s3_admin: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first, second, third = make_versions(tmp_path, 3, "zip", seed=8)
    space = DeltaSpace(bucket, "app")

    monkeypatch.setenv("DG_MAX_RATIO", "0")
    config = env_config(s3_config)
    assert config.max_ratio == 0.0
    strict = make_bundle(config).service
    await strict.put(first, space)
    # Any non-empty delta exceeds a ratio of 0: the similar version is stored direct,
    # where the default ratio (0.5) would store a delta.
    assert (await strict.put(second, space)).action == "upload_direct"
    # An explicit per-call ratio still wins over the environment.
    assert (await strict.put(third, space, max_ratio=0.5)).action == "create_delta"

    monkeypatch.setenv("DG_MAX_RATIO", "0.5")
    relaxed = make_bundle(env_config(s3_config)).service
    assert (await relaxed.put(second, space)).action == "create_delta"
    assert set(list_keys(s3_admin, bucket)) == {
        "app/reference.bin",
        f"app/{first.name}.delta",
        f"app/{second.name}.delta",
        f"app/{third.name}.delta",
    }


@pytest.mark.parametrize("ratio", ["-0.1", "1.5", "abc", "nan"])
def test_out_of_range_environment_ratio_is_refused(
    monkeypatch: pytest.MonkeyPatch, ratio: str
) -> None:
    monkeypatch.setenv("DG_MAX_RATIO", ratio)
    with pytest.raises(ValueError, match="DG_MAX_RATIO"):
        DeltaGliderConfig.from_env()


@pytest.mark.parametrize("ratio", [-0.1, 1.5, "abc", float("nan")])
async def test_out_of_range_ratio_is_refused_before_writing(
    service: AsyncDeltaService, bucket: str, s3_admin: Any, tmp_path: Path, ratio: Any
) -> None:
    first, second = make_versions(tmp_path, 2, "zip", seed=8)
    space = DeltaSpace(bucket, "app")
    await service.put(first, space)
    before = list_keys(s3_admin, bucket)

    with pytest.raises(ValueError, match="max_ratio") as info:
        await service.put(second, space, max_ratio=ratio)

    assert isinstance(info.value, InvalidRatioError)
    assert list_keys(s3_admin, bucket) == before
    with pytest.raises(ValueError, match="max_ratio"):
        DeltaGliderConfig(max_ratio=ratio)
