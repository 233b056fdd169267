"""``iter_lines``/``readlines`` of a response body split like ``bytes.splitlines``, whatever
the chunk size: a line ending split across two reads (``\\r`` then ``\\n``) is one ending."""

from __future__ import annotations

import tempfile
from pathlib import Path

import anyio
from hypothesis import given, settings
from hypothesis import strategies as st

from deltaglider_async import AsyncStreamingBody

# Text made mostly of line endings and short runs, to hit every boundary case.
_TEXT = st.lists(st.sampled_from([b"a", b"bc", b"\n", b"\r", b"\r\n", b"\x0b"])).map(b"".join)


async def _lines(data: bytes, chunk_size: int, keepends: bool) -> list[bytes]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "body"
        path.write_bytes(data)
        body = AsyncStreamingBody.from_file(path, offset=0, length=len(data), label="t")
        async with body:
            return [line async for line in body.iter_lines(chunk_size, keepends)]


@settings(max_examples=300, deadline=None)
@given(data=_TEXT, chunk_size=st.integers(1, 8), keepends=st.booleans())
def test_iter_lines_splits_like_splitlines(data: bytes, chunk_size: int, keepends: bool) -> None:
    assert anyio.run(_lines, data, chunk_size, keepends) == data.splitlines(keepends=keepends)


def test_readlines_keeps_the_endings(tmp_path: Path) -> None:
    data = b"one\r\ntwo\nthree"
    path = tmp_path / "body"
    path.write_bytes(data)

    async def read() -> list[bytes]:
        async with AsyncStreamingBody.from_file(
            path, offset=0, length=len(data), label="t"
        ) as body:
            return await body.readlines()

    assert anyio.run(read) == [b"one\r\n", b"two\n", b"three"]
