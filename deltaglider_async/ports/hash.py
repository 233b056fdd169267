"""The hashing port: SHA-256 and MD5 in one pass, off the event loop."""

from __future__ import annotations

from collections.abc import AsyncIterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True, slots=True)
class FileDigest:
    """Digests and size of one byte stream."""

    sha256: str
    md5: str
    size: int


class HashPort(Protocol):
    """Hash files and streams without blocking the event loop."""

    async def hash_file(self, path: Path) -> FileDigest:
        """Digest an existing file."""
        ...

    async def write_and_hash(self, chunks: AsyncIterable[bytes], dest: Path) -> FileDigest:
        """Write ``chunks`` to ``dest`` (created or truncated) and digest them in one pass."""
        ...
