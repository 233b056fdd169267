"""What the operations over many objects run on: the service and the client's bounds.

Bulk upload and download, statistics and migration (``core.bulk``, ``core.stats``,
``core.migrate``) take an :class:`Operations` rather than the client: they need the
service (and through it the ports) and two numbers from the configuration, nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass

from .service import AsyncDeltaService

__all__ = ["Operations"]


@dataclass(frozen=True, slots=True)
class Operations:
    """The service, with ``concurrency`` (default bound on objects in flight) and
    ``metadata_concurrency`` (bound on HEAD-only requests in flight)."""

    service: AsyncDeltaService
    concurrency: int
    metadata_concurrency: int
