"""pandas and pyarrow on delta storage, through the ``dg://`` fsspec filesystem.

A nightly job exports a table; each export is the previous one plus the day's rows.
Written as zipped CSV through ``dg://`` (``df.to_csv("dg://...csv.zip")``), every export
after the first is stored as a small xdelta3 delta, and ``pd.read_csv`` reads any of them
back, verified. A Parquet file goes the same way for pyarrow. Needs the ``[fsspec]`` extra
plus pandas and pyarrow. Configure S3 through the environment (``AWS_ENDPOINT_URL``,
``AWS_ACCESS_KEY_ID``...), then run::

    python examples/fsspec_dataframes.py my-bucket
"""

from __future__ import annotations

import sys

import fsspec
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


def export(day: int) -> pd.DataFrame:
    """Stand-in for the nightly export: an order log that grows by 200 rows a day."""
    rows = range(20_000 + 200 * day)
    return pd.DataFrame(
        {
            "order": list(rows),
            "sku": [f"SKU-{n * 7919 % 100_000:06d}" for n in rows],
            "quantity": [n * 31 % 17 + 1 for n in rows],
        }
    )


def main(bucket: str) -> None:
    fs = fsspec.filesystem("dg")  # options come from the environment, as for boto3
    fs.mkdir(bucket)

    for day in range(1, 5):
        export(day).to_csv(f"dg://{bucket}/exports/orders-day{day}.csv.zip", index=False)

    for entry in fs.ls(f"{bucket}/exports", detail=True):
        name = entry["name"].rpartition("/")[2]
        stored = "delta" if entry["IsDelta"] else "direct"
        print(f"{name}: {entry['size']} bytes, stored as {stored} of {entry['StoredSize']} bytes")

    day3 = pd.read_csv(f"dg://{bucket}/exports/orders-day3.csv.zip")
    print("day 3 read back, identical:", day3.equals(export(3)))

    table = pa.Table.from_pandas(export(4))
    pq.write_table(table, f"{bucket}/tables/orders.parquet", filesystem=fs)
    column = pq.read_table(f"{bucket}/tables/orders.parquet", filesystem=fs, columns=["sku"])
    print("parquet column read back, identical:", column.column("sku").equals(table["sku"]))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "fsspec-example")
