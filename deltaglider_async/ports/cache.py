"""The reference-cache port: local, content-addressed copies of ``reference.bin`` files."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol


class ReferenceCachePort(Protocol):
    """A content-addressed store keyed by the SHA-256 of the plaintext."""

    async def fetch(self, sha256: str, dest: Path) -> bool:
        """Write the cached bytes for ``sha256`` to ``dest`` after verifying them.

        Return False when nothing is cached. A cached entry that fails verification is
        evicted and :class:`IntegrityError` is raised: nothing unverified reaches ``dest``.
        """
        ...

    async def store(self, sha256: str, src: Path) -> None:
        """Cache the file ``src``, whose SHA-256 the caller has already verified."""
        ...

    async def contains(self, sha256: str) -> bool:
        """True when an entry for ``sha256`` exists (not verified)."""
        ...

    async def clear(self) -> None:
        """Remove every entry."""
        ...

    async def aclose(self) -> None:
        """Remove the cache and its directory; idempotent."""
        ...
