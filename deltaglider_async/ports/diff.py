"""The binary-diff port (implemented by xdelta3)."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol


class DiffPort(Protocol):
    """Encode a target against a reference into a delta, and decode it back."""

    async def encode(self, reference: Path, target: Path, out: Path) -> None:
        """Write the delta of ``target`` against ``reference`` to ``out``."""
        ...

    async def decode(self, reference: Path, delta: Path, out: Path) -> None:
        """Write the reconstruction of ``delta`` applied to ``reference`` to ``out``."""
        ...

    def describe_encode(self, reference_name: str, target_name: str, delta_name: str) -> str:
        """The human-readable command line recorded in ``dg-delta-cmd``."""
        ...
