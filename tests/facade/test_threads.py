"""One blocking client shared by many threads."""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor

from deltaglider import DeltaGliderClient, ObjectNotFoundError

THREADS = 16
OPERATIONS = 50


def test_sixteen_threads_share_one_client(client: DeltaGliderClient, moto_bucket: str) -> None:
    start = threading.Barrier(THREADS)

    def worker(index: int) -> int:
        rng = random.Random(index)
        mine: dict[str, bytes] = {}  # this thread's keys and their latest bytes
        start.wait()
        for step in range(OPERATIONS):
            op = rng.choice(["put", "put", "get", "head", "list", "delete"])
            if op == "put" or not mine:
                key = f"t{index}/f{rng.randrange(5)}.txt"
                data = f"thread {index} step {step} ".encode() * rng.randint(1, 200)
                response = client.put_object(Bucket=moto_bucket, Key=key, Body=data)
                assert response["DeltaGliderInfo"]["OriginalSizeMB"] * 1024 * 1024 == len(data)
                mine[key] = data
                continue
            key = rng.choice(sorted(mine))
            if op == "get":
                with client.get_object(Bucket=moto_bucket, Key=key)["Body"] as body:
                    assert body.read() == mine[key]
            elif op == "head":
                head = client.head_object(Bucket=moto_bucket, Key=key)
                assert head["ContentLength"] == len(mine[key])
            elif op == "list":
                listed = client.list_objects(Bucket=moto_bucket, Prefix=f"t{index}/")
                assert {item["Key"] for item in listed["Contents"]} == set(mine)
            else:
                client.delete_object(Bucket=moto_bucket, Key=key)
                del mine[key]
                try:
                    client.head_object(Bucket=moto_bucket, Key=key)
                except ObjectNotFoundError:
                    pass
                else:
                    raise AssertionError(f"{key} still exists after delete_object")
        for key, data in mine.items():
            with client.get_object(Bucket=moto_bucket, Key=key)["Body"] as body:
                assert body.read() == data
        return OPERATIONS

    client.head_bucket(Bucket=moto_bucket)
    loop_threads = _loop_threads()
    with ThreadPoolExecutor(THREADS) as pool:
        done = list(pool.map(worker, range(THREADS)))
    assert sum(done) == THREADS * OPERATIONS
    assert _loop_threads() == loop_threads  # one event-loop thread served every thread


def _loop_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == "deltaglider-loop"}


def test_one_body_read_from_several_threads(client: DeltaGliderClient, moto_bucket: str) -> None:
    data = bytes(range(256)) * 4096  # 1 MiB
    client.put_object(Bucket=moto_bucket, Key="shared/body.bin", Body=data)
    chunks: list[bytes] = []
    lock = threading.Lock()
    with client.get_object(Bucket=moto_bucket, Key="shared/body.bin")["Body"] as body:

        def reader() -> None:
            while chunk := body.read(4096):
                with lock:
                    chunks.append(chunk)

        threads = [threading.Thread(target=reader) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert not any(thread.is_alive() for thread in threads)
    # Every byte was handed out exactly once, in 4 KiB chunks of the original.
    assert sum(len(c) for c in chunks) == len(data)
    assert sorted(chunks) == sorted(data[i : i + 4096] for i in range(0, len(data), 4096))
