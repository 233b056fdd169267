"""fsspec's own test suite for filesystems (copy, get, put) run on dg:// over both servers.

The test classes are fsspec's (``fsspec.tests.abstract``); only the fixtures are ours: a
filesystem on each S3 server and a fresh bucket as the working directory. S3 has no
empty directories, so ``supports_empty_directories`` is False, as for s3fs.
"""

from __future__ import annotations

import pytest
from fsspec.tests.abstract import AbstractFixtures
from fsspec.tests.abstract.copy import AbstractCopyTests
from fsspec.tests.abstract.get import AbstractGetTests
from fsspec.tests.abstract.put import AbstractPutTests

from deltaglider_async.filesystem import DeltaGliderFileSystem


class DeltaGliderFixtures(AbstractFixtures):  # type: ignore[misc]
    """The fixtures fsspec's abstract tests ask a filesystem to provide."""

    @pytest.fixture
    def fs(self, dg_fs: DeltaGliderFileSystem) -> DeltaGliderFileSystem:
        return dg_fs

    @pytest.fixture
    def fs_path(self, bucket: str) -> str:
        return bucket

    @pytest.fixture
    def supports_empty_directories(self) -> bool:
        return False


class TestDeltaGliderCopy(AbstractCopyTests, DeltaGliderFixtures):  # type: ignore[misc]
    """``cp`` within dg://."""


class TestDeltaGliderGet(AbstractGetTests, DeltaGliderFixtures):  # type: ignore[misc]
    """``get`` from dg:// to the local disk."""


class TestDeltaGliderPut(AbstractPutTests, DeltaGliderFixtures):  # type: ignore[misc]
    """``put`` from the local disk to dg://."""
