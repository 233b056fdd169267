"""The blocking client's own behaviour: lifecycle, bodies, errors, the service, every method."""

from __future__ import annotations

import gc
import signal
import threading
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from deltaglider import (
    BucketNotFoundError,
    ClientClosedError,
    ClientState,
    DeltaGliderClient,
    DeltaService,
    DeltaSpace,
    InvalidArgumentError,
    InvalidRatioError,
    InvalidURLError,
    ObjectKey,
    ObjectNotFoundError,
    ReservedKeyError,
    StreamingBody,
    create_client,
)
from deltaglider_async.testing import LocalS3


def _loop_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "deltaglider-loop"]


def _zip(size: int, seed: int) -> bytes:
    """Bytes that start with a zip signature (delta-eligible) and differ a little by seed."""
    block = bytes((i * 7 + seed) % 251 for i in range(4096))
    return b"PK\x03\x04" + block * (size // 4096) + seed.to_bytes(4, "big")


def test_create_client_checks_the_configuration_and_starts_nothing(moto_s3: LocalS3) -> None:
    with pytest.raises(InvalidRatioError):
        create_client(endpoint_url=moto_s3.endpoint_url, max_ratio=1.5)
    with pytest.raises(InvalidArgumentError, match="no_such_option"):
        create_client(no_such_option=1)
    before = _loop_threads()
    client = create_client(endpoint_url=moto_s3.endpoint_url, max_ratio=0.25)
    assert client.config.max_ratio == 0.25
    assert client.config.endpoint_url == moto_s3.endpoint_url
    assert client.state is ClientState.OPENED
    assert _loop_threads() == before  # the loop thread starts on the first call
    client.close()
    assert client.state.value == ClientState.CLOSED.value


def test_close_is_idempotent_and_final(moto_s3: LocalS3, moto_bucket: str) -> None:
    before = set(_loop_threads())
    with DeltaGliderClient(moto_s3.config()) as client:
        client.head_bucket(Bucket=moto_bucket)
        assert len(set(_loop_threads()) - before) == 1
    assert set(_loop_threads()) == before  # the loop thread has ended
    client.close()
    with pytest.raises(ClientClosedError):
        client.head_bucket(Bucket=moto_bucket)
    with pytest.raises(ClientClosedError):
        client.service  # noqa: B018
    with pytest.raises(ClientClosedError), client:
        pass


def test_close_cancels_calls_running_in_other_threads(
    client: DeltaGliderClient, moto_bucket: str
) -> None:
    entered = threading.Event()

    class SlowBody:
        """A Body whose async read never finishes on its own."""

        async def read(self, size: int) -> bytes:
            entered.set()
            await anyio.sleep(60)
            return b""

    outcome: dict[str, BaseException] = {}

    def upload() -> None:
        try:
            client.put_object(Bucket=moto_bucket, Key="slow.txt", Body=SlowBody())
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=upload)
    thread.start()
    assert entered.wait(10)
    started = time.monotonic()
    client.close()
    thread.join(10)
    assert time.monotonic() - started < 5
    assert isinstance(outcome["error"], ClientClosedError)


def test_an_abandoned_client_stops_its_loop_thread(moto_s3: LocalS3, moto_bucket: str) -> None:
    before = set(_loop_threads())
    client = DeltaGliderClient(moto_s3.config())
    client.head_bucket(Bucket=moto_bucket)
    (thread,) = set(_loop_threads()) - before
    del client
    gc.collect()
    thread.join(10)
    assert not thread.is_alive()


def test_errors_are_the_async_clients(client: DeltaGliderClient, moto_bucket: str) -> None:
    with pytest.raises(ObjectNotFoundError) as missing:
        client.head_object(Bucket=moto_bucket, Key="nothing/here.zip")
    assert isinstance(missing.value, FileNotFoundError)
    with pytest.raises(BucketNotFoundError):
        client.get_object(Bucket="no-such-bucket-facade", Key="a.zip")
    with pytest.raises(ReservedKeyError, match=r"reference\.bin"):
        client.put_object(Bucket=moto_bucket, Key="x/reference.bin", Body=b"x")
    with pytest.raises(InvalidArgumentError, match="Body"):
        client.put_object(Bucket=moto_bucket, Key="x/a.txt", Body=12345)
    with pytest.raises(InvalidURLError):
        client.upload(__file__, "http://not-s3/")
    with pytest.raises(InvalidRatioError):
        client.upload(__file__, f"s3://{moto_bucket}/x/", max_ratio=2.0)


def test_streaming_body(client: DeltaGliderClient, moto_bucket: str) -> None:
    data = _zip(300_000, 1)
    client.put_object(Bucket=moto_bucket, Key="body/v1.zip", Body=data)  # a delta (reference)
    client.put_object(Bucket=moto_bucket, Key="body/plain.txt", Body=data)  # direct
    for key in ("body/v1.zip", "body/plain.txt"):
        response = client.get_object(Bucket=moto_bucket, Key=key)
        body = response["Body"]
        assert isinstance(body, StreamingBody)
        assert response["ContentLength"] == body.content_length == len(data)
        assert body.read(10) == data[:10]
        assert b"".join(body.iter_chunks(65536)) == data[10:]
        assert body.read() == b""
        body.close()
        body.close()
        assert body.closed
        with pytest.raises(ClientClosedError):
            body.read()
        with client.get_object(Bucket=moto_bucket, Key=key, Range="bytes=5-14")["Body"] as ranged:
            assert b"".join(ranged) == data[5:15]
        with pytest.raises(InvalidArgumentError):
            next(client.get_object(Bucket=moto_bucket, Key=key)["Body"].iter_chunks(0))
    left_open = client.get_object(Bucket=moto_bucket, Key="body/v1.zip")["Body"]
    client.close()  # closes the bodies it handed out
    assert left_open.closed
    left_open.close()  # still fine


def test_service_from_the_client_and_standalone(
    client: DeltaGliderClient, moto_s3: LocalS3, moto_bucket: str, tmp_path: Path
) -> None:
    (tmp_path / "v1.zip").write_bytes(_zip(200_000, 1))
    (tmp_path / "v2.zip").write_bytes(_zip(200_000, 2))
    space = DeltaSpace(moto_bucket, "svc")
    service = client.service
    first = service.put(tmp_path / "v1.zip", space)
    assert first.action == "create_reference"
    with DeltaService(moto_s3.config()) as standalone:
        second = standalone.put(tmp_path / "v2.zip", space, max_ratio=0.9)
        assert second.action == "create_delta"
        got = standalone.get(ObjectKey(moto_bucket, "svc/v1.zip"), tmp_path / "out1.zip")
        assert got.size == (tmp_path / "v1.zip").stat().st_size
    assert (tmp_path / "out1.zip").read_bytes() == (tmp_path / "v1.zip").read_bytes()
    assert service.verify(ObjectKey(moto_bucket, "svc/v2.zip")).valid
    service.get(ObjectKey(moto_bucket, "svc/v2.zip.delta"), tmp_path / "out2.zip")
    assert (tmp_path / "out2.zip").read_bytes() == (tmp_path / "v2.zip").read_bytes()
    deleted = service.delete(ObjectKey(moto_bucket, "svc/v2.zip"))
    assert deleted.logical_key == "svc/v2.zip"
    service.close()  # the client's service: leaves the client open
    assert client.head_object(Bucket=moto_bucket, Key="svc/v1.zip")["ContentLength"] > 0
    with pytest.raises(ClientClosedError):
        standalone.verify(ObjectKey(moto_bucket, "svc/v1.zip"))


def test_every_method_round_trips(
    client: DeltaGliderClient, moto_bucket: str, tmp_path: Path, moto_admin: Any
) -> None:
    other = f"{moto_bucket}-2"
    assert client.create_bucket(Bucket=other)["Location"] == f"/{other}"
    client.create_bucket(Bucket=other)  # already ours: quietly fine
    client.head_bucket(Bucket=other)
    assert other in {b["Name"] for b in client.list_buckets()["Buckets"]}
    client.put_bucket_acl(Bucket=other, ACL="private")
    assert "Grants" in client.get_bucket_acl(Bucket=other)

    v1, v2 = _zip(100_000, 1), _zip(100_000, 2)
    put = client.put_object(Bucket=moto_bucket, Key="rel/v1.zip", Body=v1, Metadata={"a": "1"})
    assert put["DeltaGliderInfo"]["IsDelta"]
    (tmp_path / "v2.zip").write_bytes(v2)
    summary = client.upload(tmp_path / "v2.zip", f"s3://{moto_bucket}/rel/")
    assert summary.is_delta
    assert summary.savings_percent > 50
    head = client.head_object(Bucket=moto_bucket, Key="rel/v1.zip")
    assert head["ContentLength"] == len(v1)
    assert head["Metadata"] == {"a": "1"}
    client.download(f"s3://{moto_bucket}/rel/v2.zip", tmp_path / "got.zip")
    assert (tmp_path / "got.zip").read_bytes() == v2
    assert client.verify(f"s3://{moto_bucket}/rel/v2.zip.delta")
    client.clear_cache()
    client.copy_object(
        Bucket=other, Key="copied/v1.zip", CopySource={"Bucket": moto_bucket, "Key": "rel/v1.zip"}
    )
    with client.get_object(Bucket=other, Key="copied/v1.zip")["Body"] as body:
        assert body.read() == v1
    client.put_object(Bucket=moto_bucket, Key="notes.txt", Body="plain text")
    url = client.generate_presigned_url(
        "get_object", Params={"Bucket": moto_bucket, "Key": "notes.txt"}
    )
    assert url.startswith("http")
    assert "notes.txt" in url
    listed = client.list_objects(Bucket=moto_bucket, MaxKeys=2)
    assert [o["Key"] for o in listed["Contents"]] == ["notes.txt", "rel/v1.zip"]
    assert listed["IsTruncated"]
    rest = client.list_objects(
        Bucket=moto_bucket, ContinuationToken=listed["NextContinuationToken"]
    )
    assert [o["Key"] for o in rest["Contents"]] == ["rel/v2.zip"]
    client.delete_object(Bucket=moto_bucket, Key="notes.txt")
    batch = client.delete_objects(Bucket=moto_bucket, Delete={"Objects": [{"Key": "rel/v1.zip"}]})
    assert batch["Deleted"] == [{"Key": "rel/v1.zip"}]
    client.delete_objects_recursive(Bucket=moto_bucket, Prefix="rel/")
    assert moto_admin.list_objects_v2(Bucket=moto_bucket).get("KeyCount") == 0
    client.delete_objects_recursive(Bucket=other, Prefix="")
    client.delete_bucket(Bucket=other)
    client.delete_bucket(Bucket=other)  # idempotent


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs signal.setitimer")
def test_interrupted_wait_cancels_the_call_and_the_client_stays_usable(
    client: DeltaGliderClient, moto_bucket: str
) -> None:
    class Interrupted(Exception):
        """Raised by the signal handler, as KeyboardInterrupt is by SIGINT's."""

    cleaned_up = threading.Event()

    class SlowBody:
        """A Body whose async read waits for a minute, and records its cleanup."""

        async def read(self, size: int) -> bytes:
            try:
                await anyio.sleep(60)
            finally:
                with anyio.CancelScope(shield=True):
                    await anyio.sleep(0.2)  # cleanup that takes a while
                cleaned_up.set()
            return b""

    def interrupt(signum: int, frame: object) -> None:
        raise Interrupted

    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.5)
        started = time.monotonic()
        with pytest.raises(Interrupted):
            client.put_object(Bucket=moto_bucket, Key="slow/a.txt", Body=SlowBody())
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert time.monotonic() - started < 5
    assert cleaned_up.is_set()  # the coroutine was cancelled and its cleanup awaited
    client.put_object(Bucket=moto_bucket, Key="slow/a.txt", Body=b"after")
    with client.get_object(Bucket=moto_bucket, Key="slow/a.txt")["Body"] as body:
        assert body.read() == b"after"
