"""Shared helpers of the benchmark scripts: a local server, timing, memory figures."""

from __future__ import annotations

import os
import platform
import resource
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

MIB = 1024 * 1024


def machine() -> str:
    """One line describing the machine the figures come from."""
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def peak_children_rss_mib() -> float:
    """Largest peak RSS of any waited-for child (xdelta3), in MiB."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


class Stopwatch:
    """Wall-clock timings by label."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}

    @contextmanager
    def lap(self, label: str) -> Iterator[None]:
        """Time the block under ``label``."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.laps[label] = time.perf_counter() - start


def write_pseudo_random(path: Path, size: int, seed: int) -> None:
    """Write ``size`` incompressible bytes derived from ``seed``, 1 MiB at a time."""
    import random

    rng = random.Random(seed)
    with path.open("wb") as f:
        remaining = size
        while remaining:
            n = min(MIB, remaining)
            f.write(rng.randbytes(n))
            remaining -= n
