"""The blocking client called inside a running event loop, and from its own loop thread."""

from __future__ import annotations

import threading
import time
import warnings
from typing import Any

import anyio
import pytest

import deltaglider._runner
from deltaglider import DeltaGliderClient, EventLoopThreadError


@pytest.fixture
def warn_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forget that this process already warned about a running loop."""
    monkeypatch.setattr(deltaglider._runner, "_warned_running_loop", False)


@pytest.mark.usefixtures("warn_again")
async def test_inside_a_running_loop_works_and_warns_once(
    client: DeltaGliderClient, moto_bucket: str
) -> None:
    with pytest.warns(RuntimeWarning, match="deltaglider_async") as record:
        client.put_object(Bucket=moto_bucket, Key="loop/a.txt", Body=b"from a coroutine")
    assert len(record) == 1
    assert record[0].filename == __file__  # points at the caller's line
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a second warning would raise
        with client.get_object(Bucket=moto_bucket, Key="loop/a.txt")["Body"] as body:
            assert body.read() == b"from a coroutine"
        assert client.head_object(Bucket=moto_bucket, Key="loop/a.txt")["ContentLength"] == 16


@pytest.mark.usefixtures("warn_again")
def test_inside_a_loop_in_another_thread(client: DeltaGliderClient, moto_bucket: str) -> None:
    outcome: dict[str, Any] = {}

    async def app() -> None:
        with pytest.warns(RuntimeWarning, match="running an event loop"):
            client.put_object(Bucket=moto_bucket, Key="loop/b.txt", Body=b"b")
        outcome["size"] = client.head_object(Bucket=moto_bucket, Key="loop/b.txt")["ContentLength"]

    thread = threading.Thread(target=anyio.run, args=(app,))
    thread.start()
    thread.join(30)
    assert outcome == {"size": 1}


def test_no_warning_outside_a_loop(client: DeltaGliderClient, moto_bucket: str) -> None:
    deltaglider._runner._warned_running_loop = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        client.head_bucket(Bucket=moto_bucket)
    assert deltaglider._runner._warned_running_loop is False


def test_call_from_its_own_loop_thread_raises_instead_of_deadlocking(
    client: DeltaGliderClient, moto_bucket: str
) -> None:
    class ReadsThroughTheClient:
        """A Body whose async read (run on the client's loop) calls the blocking client."""

        async def read(self, size: int) -> bytes:
            with pytest.raises(EventLoopThreadError):
                client.close()
            client.head_bucket(Bucket=moto_bucket)
            return b""

    outcome: dict[str, BaseException] = {}

    def attempt() -> None:
        try:
            client.put_object(Bucket=moto_bucket, Key="loop/c.txt", Body=ReadsThroughTheClient())
        except BaseException as exc:
            outcome["error"] = exc

    started = time.monotonic()
    thread = threading.Thread(target=attempt, daemon=True)
    thread.start()
    thread.join(15)
    assert not thread.is_alive(), "deadlocked"
    assert time.monotonic() - started < 10
    error = outcome["error"]
    assert isinstance(error, EventLoopThreadError)
    assert isinstance(error, RuntimeError)
    assert "deltaglider_async" in str(error)
    # close() from the loop thread was refused too: the client is still usable.
    client.head_bucket(Bucket=moto_bucket)
