"""Store two versions of a release archive with the blocking API and read them back.

Configure the S3 endpoint and credentials the usual way (``AWS_ENDPOINT_URL``,
``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_DEFAULT_REGION`` or a profile),
then run::

    python examples/blocking_quickstart.py my-bucket
"""

from __future__ import annotations

import io
import sys
import tempfile
import zipfile
from pathlib import Path

from deltaglider import create_client


def make_release(path: Path, version: int) -> None:
    """A small zip whose content changes a little from one version to the next."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for module in range(40):
            lines = [f"def function_{module}_{n}(x):\n    return x * {n}\n" for n in range(200)]
            if module == version:
                lines.append(f"# changed in version {version}\n")
            archive.writestr(f"app/module_{module}.py", "".join(lines))
        archive.writestr("app/VERSION", f"1.0.{version}\n")


def main(bucket: str) -> None:
    with create_client() as client, tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        client.create_bucket(Bucket=bucket)  # succeeds if it is already yours

        for version in (1, 2):
            release = work / f"app-1.0.{version}.zip"
            make_release(release, version)
            summary = client.upload(release, f"s3://{bucket}/releases/app/")
            print(
                f"{release.name}: {summary.action}, {summary.original_size_mb:.3f} MB "
                f"stored as {summary.stored_size_mb:.3f} MB"
            )

        # boto3-style calls work too, with logical names (no .delta, no reference.bin).
        listing = client.list_objects(Bucket=bucket, Prefix="releases/app/")
        print("listed:", [item["Key"] for item in listing["Contents"]])

        restored = work / "restored.zip"
        client.download(f"s3://{bucket}/releases/app/app-1.0.2.zip", restored)
        same = restored.read_bytes() == (work / "app-1.0.2.zip").read_bytes()
        print("downloaded app-1.0.2.zip, identical:", same)

        response = client.get_object(Bucket=bucket, Key="releases/app/app-1.0.1.zip")
        with response["Body"] as body:
            names = zipfile.ZipFile(io.BytesIO(body.read())).namelist()
        print(f"app-1.0.1.zip holds {len(names)} files")
        print("verified:", client.verify(f"s3://{bucket}/releases/app/app-1.0.2.zip"))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "deltaglider-quickstart")
