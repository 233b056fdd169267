"""Every example of the DeltaGlider Python SDK API reference, run as written against moto.

Each test follows one example of the reference (client creation, the boto3-compatible
methods, the simple API, cache management, ``UploadSummary``, ``DeltaService``, the models,
exceptions, environment variables, threads, logging), with the least set-up it needs
(a bucket, small local files), and checks what the example prints or returns.
"""

from __future__ import annotations

import io
import logging
import threading
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import pytest

import deltaglider
from deltaglider import (
    DeltaGliderClient,
    DeltaService,
    DeltaSpace,
    GetSummary,
    ObjectKey,
    PutSummary,
    UploadSummary,
    VerifyResult,
    create_client,
)
from deltaglider_async.adapters.clock import UtcClock
from deltaglider_async.adapters.hashing import StdlibHasher
from deltaglider_async.adapters.logging import StdLogger
from deltaglider_async.adapters.metrics import NoopMetrics
from deltaglider_async.adapters.reference_cache import EncryptedReferenceCache
from deltaglider_async.adapters.s3_storage import S3Storage
from deltaglider_async.adapters.xdelta3 import XDelta3Diff
from deltaglider_async.testing import LocalS3
from tests.archives import make_zip_versions


@pytest.fixture
def env(moto_s3: LocalS3, monkeypatch: pytest.MonkeyPatch) -> LocalS3:
    """The environment the reference assumes: credentials and endpoint in AWS_* variables."""
    for name, value in moto_s3.env().items():
        monkeypatch.setenv(name, value)
    return moto_s3


@pytest.fixture
def releases(tmp_path: Path) -> list[Path]:
    """Three versions of a small release zip (~20 KB)."""
    return make_zip_versions(tmp_path / "dist", 3, size=20_000)


def printed(fn: Any, *args: Any) -> str:
    out = io.StringIO()
    with redirect_stdout(out):
        fn(*args)
    return out.getvalue()


# --------------------------------------------------------------------------- creation


def test_create_client_examples(env: LocalS3, moto_bucket: str) -> None:
    clients = [
        create_client(),
        create_client(endpoint_url=env.endpoint_url),
        create_client(log_level="DEBUG"),
        create_client(max_ratio=0.3),
    ]
    try:
        for client in clients:
            assert isinstance(client, DeltaGliderClient)
            assert client.list_buckets()["ResponseMetadata"]["HTTPStatusCode"] == 200
        assert isinstance(clients[3].service, DeltaService)  # the service behind it
        assert clients[3].config.max_ratio == 0.3
    finally:
        for client in clients:
            client.close()


def test_constructor_over_a_service(env: LocalS3, moto_bucket: str, releases: list[Path]) -> None:
    service = DeltaService()
    with DeltaGliderClient(service, endpoint_url=env.endpoint_url) as client:
        summary = client.upload(releases[0], f"s3://{moto_bucket}/svc/")
        assert summary.operation == "PUT_DELTA"
        assert client.verify(f"s3://{moto_bucket}/svc/{releases[0].name}")


def test_a_client_over_a_service_reports_what_is_in_force(
    env: LocalS3, moto_bucket: str, releases: list[Path]
) -> None:
    config = deltaglider.DeltaGliderConfig.from_env()
    ports = (
        S3Storage(config),
        XDelta3Diff(),
        StdlibHasher(),
        EncryptedReferenceCache(),
        UtcClock(),
        StdLogger(),
        NoopMetrics(),
    )
    with DeltaService(*ports, max_ratio=0.0001) as service:
        # An endpoint the service does not use is refused, not reported.
        with pytest.raises(deltaglider.InvalidArgumentError, match="endpoint_url"):
            DeltaGliderClient(service, endpoint_url="http://127.0.0.1:1")
        client = DeltaGliderClient(service)
        assert client.config.endpoint_url == env.endpoint_url
        assert client.config.max_ratio == 0.0001
        assert env.endpoint_url in repr(client)
        summary = client.upload(releases[0], f"s3://{moto_bucket}/svc/")
        assert summary.is_delta
        assert not client.upload(releases[1], f"s3://{moto_bucket}/svc/").is_delta


def test_the_blocking_body_reads_lines_like_botocores(env: LocalS3, moto_bucket: str) -> None:
    text = b"first\nsecond\r\nthird\rlast"
    with create_client() as client:
        client.put_object(Bucket=moto_bucket, Key="lines.txt", Body=text)
        with client.get_object(Bucket=moto_bucket, Key="lines.txt")["Body"] as body:
            assert list(body.iter_lines(chunk_size=3)) == [b"first", b"second", b"third", b"last"]
        with client.get_object(Bucket=moto_bucket, Key="lines.txt")["Body"] as body:
            assert body.readlines() == text.splitlines(keepends=True)


# --------------------------------------------------------------------------- list_objects


def test_list_objects_examples(env: LocalS3, moto_bucket: str, releases: list[Path]) -> None:
    with create_client() as client:
        for path in releases:
            client.upload(path, f"s3://{moto_bucket}/")
        client.put_object(Bucket=moto_bucket, Key="notes.txt", Body=b"hello")

        def fast_listing() -> None:
            response = client.list_objects(Bucket=moto_bucket)
            for obj in response["Contents"]:
                print(f"{obj['Key']}: {obj['Size']} bytes")

        lines = printed(fast_listing).splitlines()
        assert [line.split(":")[0] for line in lines] == [
            *(p.name for p in releases),
            "notes.txt",
        ]

        def paginated() -> None:
            response = client.list_objects(Bucket=moto_bucket, MaxKeys=2)
            while response.get("IsTruncated"):
                for obj in response["Contents"]:
                    print(obj["Key"])
                response = client.list_objects(
                    Bucket=moto_bucket,
                    MaxKeys=2,
                    ContinuationToken=response.get("NextContinuationToken"),
                )
            for obj in response["Contents"]:
                print(obj["Key"])

        assert printed(paginated).split() == [*(p.name for p in releases), "notes.txt"]

        def compression_stats() -> None:
            response = client.list_objects(Bucket=moto_bucket, FetchMetadata=True)
            for obj in response["Contents"]:
                metadata = obj.get("Metadata", {})
                if metadata.get("deltaglider-is-delta") == "true":
                    compression = metadata.get("deltaglider-compression-ratio", "unknown")
                    print(f"{obj['Key']}: {compression} compression")

        stats_lines = printed(compression_stats).splitlines()
        assert [line.split(":")[0] for line in stats_lines] == [p.name for p in releases]
        for line, path in zip(stats_lines, releases, strict=True):
            ratio = float(line.split(": ")[1].split()[0])
            assert 0.0 <= ratio <= 1.0
            if path != releases[0]:
                assert ratio > 0.5  # later versions are small deltas
        listed = client.list_objects(Bucket=moto_bucket, FetchMetadata=True)["Contents"]
        notes = next(o for o in listed if o["Key"] == "notes.txt")
        assert notes["Metadata"] == {"deltaglider-is-delta": "false"}
        delta = next(o for o in listed if o["Key"] == releases[1].name)
        assert delta["Metadata"]["deltaglider-original-size"] == str(releases[1].stat().st_size)


# --------------------------------------------------------------------------- stats


def test_get_bucket_stats_examples(env: LocalS3, moto_bucket: str, releases: list[Path]) -> None:
    with create_client() as client:
        for path in releases:
            client.upload(path, f"s3://{moto_bucket}/app/")
        stats = client.get_bucket_stats(moto_bucket)
        assert printed(print, f"Objects: {stats.object_count}, Size: {stats.total_size}") == (
            f"Objects: 3, Size: {stats.total_size}\n"
        )
        sampled = client.get_bucket_stats(moto_bucket, mode="sampled")
        detailed = client.get_bucket_stats(moto_bucket, mode="detailed")
        assert sampled.object_count == detailed.object_count == 3
        assert detailed.total_size == sum(p.stat().st_size for p in releases)
        line = printed(print, f"Compression ratio: {detailed.average_compression_ratio:.1%}")
        assert 0.0 < detailed.average_compression_ratio <= 1.0
        assert line.startswith("Compression ratio: ")
        assert "-" not in line
        fresh = client.get_bucket_stats(moto_bucket, mode="quick", refresh_cache=True)
        uncached = client.get_bucket_stats(moto_bucket, use_cache=False)
        assert fresh.object_count == uncached.object_count == 3


def test_stats_of_a_single_file_directory_are_not_negative(
    env: LocalS3, moto_bucket: str, releases: list[Path]
) -> None:
    # A reference plus its zero-diff delta store slightly more than the file.
    with create_client() as client:
        client.upload(releases[0], f"s3://{moto_bucket}/one/")
        stats = client.get_bucket_stats(moto_bucket, mode="detailed")
        assert stats.space_saved == 0
        assert stats.average_compression_ratio == 0.0
        assert printed(print, f"{stats.average_compression_ratio:.1%}") == "0.0%\n"


# --------------------------------------------------------------------------- objects, buckets


def test_put_get_and_bucket_examples(env: LocalS3, moto_admin: Any, releases: list[Path]) -> None:
    with create_client() as client:
        client.create_bucket(Bucket="my-releases")
        client.create_bucket(Bucket="my-releases")  # idempotent
        client.create_bucket(
            Bucket="my-backups", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
        )
        try:
            put = client.put_object(Bucket="my-releases", Key="app/v1.zip", Body=releases[0])
            assert put["ETag"].startswith('"')
            empty = client.put_object(Bucket="my-releases", Key="empty.txt")  # Body=None
            assert empty["DeltaGliderInfo"]["StoredAs"] == "direct"
            got = client.get_object(Bucket="my-releases", Key="app/v1.zip")
            with got["Body"] as body:
                assert body.read() == releases[0].read_bytes()
            assert set(got["ResponseMetadata"]) >= {
                "RequestId",
                "HTTPStatusCode",
                "HTTPHeaders",
                "RetryAttempts",
            }

            def buckets() -> None:
                response = client.list_buckets()
                for bucket in response["Buckets"]:
                    print(f"{bucket['Name']} - Created: {bucket['CreationDate']}")

            names = [line.split(" - ")[0] for line in printed(buckets).splitlines()]
            assert {"my-releases", "my-backups"} <= set(names)
            response = client.list_buckets()
            assert set(response) == {"Buckets", "Owner", "ResponseMetadata"}
            stats = client.get_bucket_stats("my-releases", mode="detailed")
            assert (
                printed(
                    print,
                    f"my-releases -> {stats.object_count} objects, "
                    f"{stats.space_saved / (1024**3):.2f} GB saved",
                )
                == "my-releases -> 2 objects, 0.00 GB saved\n"
            )
        finally:
            client.delete_objects_recursive(Bucket="my-releases", Prefix="")
            client.delete_bucket(Bucket="my-releases")
            client.delete_bucket(Bucket="my-backups")
            client.delete_bucket(Bucket="old-releases")  # missing: idempotent


# --------------------------------------------------------------------------- simple API


def test_upload_download_verify_examples(
    env: LocalS3, moto_bucket: str, releases: list[Path], tmp_path: Path
) -> None:
    with create_client() as client:
        summary = client.upload(releases[0], f"s3://{moto_bucket}/v1.0.0/")
        assert summary.key == f"v1.0.0/{releases[0].name}"
        summary = client.upload(releases[1], f"s3://{moto_bucket}/v1.0.0/", max_ratio=0.3)

        def check_results() -> None:
            if summary.is_delta:
                print(f"Stored as delta: {summary.stored_size_mb:.1f} MB")
            else:
                print(f"Stored as full file: {summary.original_size_mb:.1f} MB")

        assert printed(check_results).startswith("Stored as delta: ")

        client.download(f"s3://{moto_bucket}/v1.0.0/{releases[1].name}", tmp_path / "dl.zip")
        assert (tmp_path / "dl.zip").read_bytes() == releases[1].read_bytes()
        output = tmp_path / "downloads" / "app.zip"
        output.parent.mkdir(parents=True, exist_ok=True)
        client.download(f"s3://{moto_bucket}/v1.0.0/{releases[0].name}", output)
        assert output.read_bytes() == releases[0].read_bytes()

        def verify() -> None:
            is_valid = client.verify(f"s3://{moto_bucket}/v1.0.0/{releases[1].name}")
            if is_valid:
                print("File integrity verified")
            else:
                print("File is corrupted!")

        assert printed(verify) == "File integrity verified\n"


def test_clear_cache_example(env: LocalS3, moto_bucket: str, releases: list[Path]) -> None:
    with create_client() as client:
        for i in range(4):
            client.upload(releases[i % len(releases)], f"s3://{moto_bucket}/")
            if i % 2 == 0:
                client.clear_cache()
        stats_before = client.get_bucket_stats(moto_bucket)
        stats_after = client.get_bucket_stats(moto_bucket, refresh_cache=True)
        assert stats_before == stats_after
        client.clear_cache()


def test_upload_summary_example(env: LocalS3, moto_bucket: str, releases: list[Path]) -> None:
    with create_client() as client:
        client.upload(releases[0], f"s3://{moto_bucket}/")
        summary = client.upload(releases[1], f"s3://{moto_bucket}/")

        def report() -> None:
            print(f"Operation: {summary.operation}")
            print(f"Location: s3://{summary.bucket}/{summary.key}")
            print(f"Original: {summary.original_size_mb:.1f} MB")
            print(f"Stored: {summary.stored_size_mb:.1f} MB")
            print(f"Saved: {summary.savings_percent:.0f}%")
            print(f"Delta used: {summary.is_delta}")
            if summary.is_delta:
                print(f"Delta ratio: {summary.delta_ratio:.2%}")

        lines = printed(report).splitlines()
        assert lines[0] == "Operation: PUT_DELTA"
        # The location a user lists and downloads, not the stored .delta key.
        assert lines[1] == f"Location: s3://{moto_bucket}/{releases[1].name}"
        assert lines[5] == "Delta used: True"
        client.download(lines[1].removeprefix("Location: "), Path(releases[1]).with_suffix(".x"))
        assert isinstance(summary, UploadSummary)


# --------------------------------------------------------------------------- DeltaService


def test_delta_service_with_its_ports(
    env: LocalS3, moto_bucket: str, releases: list[Path], tmp_path: Path
) -> None:
    config = deltaglider.DeltaGliderConfig.from_env()
    service = DeltaService(
        S3Storage(config),
        XDelta3Diff(),
        StdlibHasher(),
        EncryptedReferenceCache(),
        UtcClock(),
        StdLogger(),
        NoopMetrics(),
        tool_version="deltaglider/0.1.0",
        max_ratio=0.5,
    )
    with service:
        space = DeltaSpace(bucket=moto_bucket, prefix="svc")
        first = service.put(releases[0], space)
        second = service.put(file=releases[1], delta_space=space, max_ratio=None)
        assert isinstance(first, PutSummary)
        assert (first.operation, second.operation) == ("PUT_DELTA", "PUT_DELTA")
        assert len(second.file_hash) == len(second.delta_hash or "") == 64
        assert second.reference_hash == first.file_hash
        key = ObjectKey(bucket=moto_bucket, key=f"svc/{releases[1].name}")
        got = service.get(object_key=key, output_path=tmp_path / "out.zip")
        assert isinstance(got, GetSummary)
        assert (got.operation, got.reconstructed) == ("GET_DELTA", True)
        assert got.hash == second.file_hash
        result = service.verify(object_key=key)
        assert isinstance(result, VerifyResult)
        assert (result.valid, result.operation) == (True, "VERIFY_DELTA")
        assert result.expected_hash == result.actual_hash == second.file_hash
        assert result.details
        # The names before 0.2 still work.
        assert service.verify(key=key).valid
    head = env.boto3_client().head_object(Bucket=moto_bucket, Key=f"svc/{releases[1].name}.delta")
    assert head["Metadata"]["dg-tool"] == "deltaglider/0.1.0"


def test_delta_service_needs_every_port(env: LocalS3) -> None:
    config = deltaglider.DeltaGliderConfig.from_env()
    with pytest.raises(TypeError, match="missing: hasher"):
        DeltaService(S3Storage(config), XDelta3Diff())


# --------------------------------------------------------------------------- errors, env


def test_exception_handling_example(env: LocalS3, tmp_path: Path) -> None:
    with create_client() as client:

        def attempt(path: str, url: str) -> str:
            try:
                client.upload(path, url)
            except FileNotFoundError as exc:
                return f"File not found: {exc}"
            except PermissionError as exc:
                return f"Permission denied: {exc}"
            except ValueError as exc:
                return f"Invalid parameters: {exc}"
            except RuntimeError as exc:
                return f"System error: {exc}"
            return "ok"

        assert attempt(str(tmp_path / "missing.zip"), "s3://bucket/path/").startswith(
            "File not found"
        )
        assert attempt(str(tmp_path), "not-a-url").startswith("Invalid parameters")


def test_environment_variables_example(
    env: LocalS3, moto_bucket: str, monkeypatch: pytest.MonkeyPatch, releases: list[Path]
) -> None:
    monkeypatch.setenv("DG_LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("DG_MAX_RATIO", "0.3")
    with create_client() as client:
        assert client.config.max_ratio == 0.3
        assert client.config.log_level == "DEBUG"
        client.upload(releases[0], f"s3://{moto_bucket}/")


def test_thread_example(env: LocalS3, moto_bucket: str, releases: list[Path]) -> None:
    results: dict[str, float] = {}

    def worker(path: Path, url: str) -> None:
        client = create_client()
        try:
            summary = client.upload(path, url)
            results[threading.current_thread().name] = summary.savings_percent
        finally:
            client.close()

    threads = [
        threading.Thread(
            target=worker, args=(path, f"s3://{moto_bucket}/t{i}/"), name=f"Worker-{i}"
        )
        for i, path in enumerate(releases)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["Worker-0", "Worker-1", "Worker-2"]


# --------------------------------------------------------------------------- logging


def test_logging_levels(
    env: LocalS3, moto_bucket: str, releases: list[Path], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="deltaglider")
    with create_client(log_level="DEBUG") as verbose, create_client(log_level="INFO") as quiet:
        caplog.clear()
        quiet.upload(releases[0], f"s3://{moto_bucket}/q/")
        quiet.upload(releases[1], f"s3://{moto_bucket}/q/")
        quiet_records = list(caplog.records)
        caplog.clear()
        verbose.upload(releases[0], f"s3://{moto_bucket}/v/")
        verbose.upload(releases[1], f"s3://{moto_bucket}/v/")
        verbose_records = list(caplog.records)

    def messages(records: list[logging.LogRecord], level: int) -> list[str]:
        return [r.getMessage() for r in records if r.levelno == level]

    # INFO: what was stored and the compression achieved, for both clients.
    for records in (quiet_records, verbose_records):
        stored = [m for m in messages(records, logging.INFO) if m.startswith("stored delta")]
        assert len(stored) == 2
        assert "saved=" in stored[1]
        assert "ratio=" in stored[1]
    # DEBUG: the operations and the xdelta3 command lines, only for the DEBUG client.
    assert messages(quiet_records, logging.DEBUG) == []
    debug = messages(verbose_records, logging.DEBUG)
    assert any(m.startswith("xdelta3 encode") and "xdelta3 -e" in m for m in debug)
    assert any(m.startswith("put: staged") for m in debug)
