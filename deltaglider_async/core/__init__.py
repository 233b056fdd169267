"""The core: AsyncDeltaService and the pure decisions it relies on. Imports only ports."""

from .service import AsyncDeltaService as AsyncDeltaService
from .service import DeleteSummary as DeleteSummary
from .service import ResolvedObject as ResolvedObject

__all__ = ["AsyncDeltaService", "DeleteSummary", "ResolvedObject"]
