"""pandas and pyarrow read, through fsspec's ``dg://``, what ``upload()`` stored."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from deltaglider import DeltaGliderClient
from deltaglider_async.filesystem import DeltaGliderFileSystem
from deltaglider_async.testing import LocalS3

from .conftest import raw_keys, storage_options


@pytest.fixture
def options(s3_server: LocalS3) -> Iterator[dict[str, Any]]:
    """``storage_options`` for pandas; the filesystem fsspec caches for them is closed after."""
    given = storage_options(s3_server)
    try:
        yield given
    finally:
        fsspec.filesystem("dg", **given).close()


def _frame(rows: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "order": range(rows),
            "sku": [f"SKU-{n * 7919 % 100_000:06d}" for n in range(rows)],
            "price": [round(n * 0.37 % 90 + 1, 2) for n in range(rows)],
        }
    )


def _zipped_csv(frame: pd.DataFrame, member: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(zipfile.ZipInfo(member, (2024, 1, 1, 0, 0, 0)), frame.to_csv(index=False))
    return buffer.getvalue()


def test_pandas_read_csv_reads_plain_and_delta_uploads(
    options: dict[str, Any],
    dg_client: DeltaGliderClient,
    bucket: str,
    s3_admin: Any,
    tmp_path: Path,
) -> None:
    plain = tmp_path / "orders.csv"
    _frame(500).to_csv(plain, index=False)
    dg_client.upload(plain, f"s3://{bucket}/tables/")
    versions = []
    for day in (1, 2):
        path = tmp_path / f"orders-day{day}.csv.zip"
        path.write_bytes(_zipped_csv(_frame(20_000 + 100 * day), f"orders-day{day}.csv"))
        dg_client.upload(path, f"s3://{bucket}/exports/")
        versions.append(path)
    assert "exports/orders-day2.csv.zip.delta" in raw_keys(s3_admin, bucket)

    read_plain = pd.read_csv(f"dg://{bucket}/tables/orders.csv", storage_options=options)
    read_delta = pd.read_csv(f"dg://{bucket}/exports/orders-day2.csv.zip", storage_options=options)

    pd.testing.assert_frame_equal(read_plain, _frame(500))
    pd.testing.assert_frame_equal(read_delta, _frame(20_200))


def test_pandas_writes_through_dg_are_delta_compressed(
    options: dict[str, Any], bucket: str, s3_admin: Any
) -> None:
    for day in (1, 2):
        _frame(20_000 + 100 * day).to_csv(
            f"dg://{bucket}/exports/day{day}.csv.zip", index=False, storage_options=options
        )
    stored = raw_keys(s3_admin, bucket)
    assert "exports/reference.bin" in stored
    assert stored["exports/day2.csv.zip.delta"] < stored["exports/reference.bin"] // 2
    back = pd.read_csv(f"dg://{bucket}/exports/day2.csv.zip", storage_options=options)
    pd.testing.assert_frame_equal(back, _frame(20_200))


def test_pyarrow_reads_parquet_that_upload_stored(
    dg_fs: DeltaGliderFileSystem, dg_client: DeltaGliderClient, bucket: str, tmp_path: Path
) -> None:
    table = pa.Table.from_pandas(_frame(50_000), preserve_index=False)
    local = tmp_path / "orders.parquet"
    pq.write_table(table, local, row_group_size=10_000)
    dg_client.upload(local, f"s3://{bucket}/tables/")

    whole = pq.read_table(f"{bucket}/tables/orders.parquet", filesystem=dg_fs)
    assert whole.equals(table)
    # Column and row-group reads seek around the file: served from one verified copy.
    with dg_fs.open(f"{bucket}/tables/orders.parquet", "rb") as f:
        parquet = pq.ParquetFile(f)
        assert parquet.metadata.num_row_groups == 5
        assert (
            parquet.read_row_group(3, columns=["sku"])
            .column("sku")
            .equals(table.slice(30_000, 10_000).column("sku"))
        )
    frame = pd.read_parquet(f"dg://{bucket}/tables/orders.parquet", filesystem=dg_fs)
    pd.testing.assert_frame_equal(frame, _frame(50_000))


def test_pyarrow_writes_parquet_through_dg(dg_fs: DeltaGliderFileSystem, bucket: str) -> None:
    table = pa.Table.from_pandas(_frame(1_000), preserve_index=False)
    pq.write_table(table, f"{bucket}/out/orders.parquet", filesystem=dg_fs)
    assert dg_fs.info(f"{bucket}/out/orders.parquet")["type"] == "file"
    assert pq.read_table(f"{bucket}/out/orders.parquet", filesystem=dg_fs).equals(table)
