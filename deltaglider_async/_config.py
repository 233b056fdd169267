"""Configuration: one frozen dataclass, built from keyword arguments over the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from ._errors import InvalidArgumentError
from ._models import validate_ratio
from ._version import __version__

DEFAULT_MAX_RATIO = 0.5
#: Re-baselining threshold (see ``core.planner.DEFAULT_REBASE_RATIO``; kept equal by a test):
#: 0.25, measured best on release series; 1 turns re-baselining off.
DEFAULT_REBASE_RATIO = 0.25
DEFAULT_MULTIPART_THRESHOLD = 64 * 1024 * 1024
DEFAULT_MULTIPART_CHUNKSIZE = 16 * 1024 * 1024
DEFAULT_MAX_WINDOW = 2 * 1024 * 1024 * 1024
DEFAULT_METADATA_CONCURRENCY = 32
_LEVELS = {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}


def _flag(value: str, name: str) -> bool:
    """A boolean environment variable: 1/true/yes/on or 0/false/no/off."""
    text = value.strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise InvalidArgumentError(f"{name} must be 1/true/yes/on or 0/false/no/off, got {value!r}")


def default_concurrency() -> int:
    """Default bound on in-flight operations: enough for S3 latency, bounded for xdelta3."""
    return max(4, min(32, (os.cpu_count() or 2) * 4))


@dataclass(frozen=True, slots=True)
class DeltaGliderConfig:
    """Everything a client needs to know; build it with :meth:`from_env`.

    ``xdelta_level`` and ``xdelta_secondary`` choose xdelta3's compression (``-9``,
    ``-S djw``...). ``max_window`` caps xdelta3's source window (``-B``), whose memory
    is reserved up front. ``max_diff_processes`` bounds concurrent xdelta3 children.
    ``compressed_references`` lets files that xdelta3 decompresses (gzip, bzip2, xz,
    compress) become references: better savings for such files, but deltaglider 6.x can
    no longer read their directories' deltas (``DG_COMPRESSED_REFERENCES=1``).
    ``rebase_ratio`` re-baselines drifting directories: a file whose delta against the
    directory's newest reference exceeds this share of its size (but is related, at most
    90 %) becomes the next reference (``DG_REBASE_RATIO``; default 0.25, the value measured
    best on release series; ``1`` or ``off`` turns it off).
    ``opentelemetry`` reports spans and metrics through OpenTelemetry's global tracer and
    meter providers (``DG_OPENTELEMETRY=1``; needs the ``[otel]`` extra).
    """

    endpoint_url: str | None = None
    region_name: str | None = None
    profile_name: str | None = None
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = None
    aws_session_token: str | None = None
    tool_version: str = f"deltaglider-async/{__version__}"
    max_ratio: float = DEFAULT_MAX_RATIO
    max_concurrency: int = 0
    log_level: str | None = None
    xdelta_level: int = 9
    xdelta_secondary: str | None = None
    max_window: int = DEFAULT_MAX_WINDOW
    max_diff_processes: int = 0
    multipart_threshold: int = DEFAULT_MULTIPART_THRESHOLD
    multipart_chunksize: int = DEFAULT_MULTIPART_CHUNKSIZE
    max_attempts: int = 5
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    compressed_references: bool = False
    rebase_ratio: float = DEFAULT_REBASE_RATIO
    opentelemetry: bool = False

    def __post_init__(self) -> None:
        validate_ratio(self.max_ratio)
        validate_ratio(self.rebase_ratio, source="rebase_ratio")
        if self.max_concurrency < 0:
            raise InvalidArgumentError(f"max_concurrency must be >= 1, got {self.max_concurrency}")
        if self.log_level is not None and self.log_level.upper() not in _LEVELS:
            raise InvalidArgumentError(f"log_level must be one of {sorted(_LEVELS)}")
        if not 0 <= self.xdelta_level <= 9:
            raise InvalidArgumentError(f"xdelta_level must be 0..9, got {self.xdelta_level}")
        if self.xdelta_secondary not in (None, "djw", "lzma", "fgk", "none"):
            raise InvalidArgumentError(
                f"xdelta_secondary must be djw, lzma, fgk or none, got {self.xdelta_secondary!r}"
            )
        if self.multipart_chunksize < 5 * 1024 * 1024:
            raise InvalidArgumentError("multipart_chunksize must be at least 5 MiB (an S3 rule)")

    @property
    def concurrency(self) -> int:
        """The effective bound on in-flight operations."""
        return self.max_concurrency or default_concurrency()

    @property
    def metadata_concurrency(self) -> int:
        """Bound on concurrent metadata-only requests (the HEADs of stats and listings).

        A HEAD costs no local disk or CPU-heavy work, so its default bound is wider than
        that of transfers; an explicit ``max_concurrency`` applies to both.
        """
        return self.max_concurrency or max(DEFAULT_METADATA_CONCURRENCY, self.concurrency)

    @property
    def diff_processes(self) -> int:
        """The effective bound on concurrent xdelta3 processes."""
        return self.max_diff_processes or max(2, os.cpu_count() or 2)

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, **overrides: Any
    ) -> DeltaGliderConfig:
        """Build a config from ``environ`` (default ``os.environ``) and explicit overrides.

        Explicit keyword arguments win over the environment; ``None`` means "not given".
        Unknown keyword arguments raise :class:`InvalidArgumentError` naming them.
        """
        env = os.environ if environ is None else environ
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise InvalidArgumentError(f"unknown configuration option(s): {', '.join(unknown)}")
        values: dict[str, Any] = {}
        env_map = {
            "endpoint_url": "AWS_ENDPOINT_URL",
            "region_name": "AWS_DEFAULT_REGION",
            "profile_name": "AWS_PROFILE",
            "aws_access_key_id": "AWS_ACCESS_KEY_ID",
            "aws_secret_access_key": "AWS_SECRET_ACCESS_KEY",
            "aws_session_token": "AWS_SESSION_TOKEN",
            "log_level": "DG_LOG_LEVEL",
        }
        for name, var in env_map.items():
            if env.get(var):
                values[name] = env[var]
        if not values.get("region_name") and env.get("AWS_REGION"):
            values["region_name"] = env["AWS_REGION"]
        if env.get("DG_MAX_RATIO"):
            values["max_ratio"] = validate_ratio(env["DG_MAX_RATIO"], source="DG_MAX_RATIO")
        if env.get("DG_REBASE_RATIO"):
            values["rebase_ratio"] = rebase_setting(env["DG_REBASE_RATIO"], "DG_REBASE_RATIO")
        if env.get("DG_COMPRESSED_REFERENCES"):
            values["compressed_references"] = _flag(
                env["DG_COMPRESSED_REFERENCES"], "DG_COMPRESSED_REFERENCES"
            )
        if env.get("DG_OPENTELEMETRY"):
            values["opentelemetry"] = _flag(env["DG_OPENTELEMETRY"], "DG_OPENTELEMETRY")
        if env.get("DG_MAX_CONCURRENCY"):
            try:
                values["max_concurrency"] = int(env["DG_MAX_CONCURRENCY"])
            except ValueError:
                raise InvalidArgumentError(
                    f"DG_MAX_CONCURRENCY must be an integer, got {env['DG_MAX_CONCURRENCY']!r}"
                ) from None
        for name, value in overrides.items():
            if value is not None:
                values[name] = value
        if "max_ratio" in values:
            values["max_ratio"] = validate_ratio(values["max_ratio"])
        if "rebase_ratio" in values:
            values["rebase_ratio"] = rebase_setting(values["rebase_ratio"], "rebase_ratio")
        if "log_level" in values:
            values["log_level"] = str(values["log_level"]).upper()
        return cls(**values)

    @classmethod
    def of_service(
        cls,
        storage: object,
        *,
        tool_version: str | None = None,
        max_ratio: float = DEFAULT_MAX_RATIO,
        endpoint_url: str | None = None,
    ) -> DeltaGliderConfig:
        """The configuration in force for a service over ``storage`` (a storage port, or
        the configuration it was built from), as ``client.config`` reports it.

        The built-in S3 storage brings its own configuration (endpoint, region...):
        ``endpoint_url`` must then be ``None`` or the endpoint it uses, else
        :class:`InvalidArgumentError` (a client cannot talk to one endpoint and report
        another). Another storage port has no known endpoint, and ``endpoint_url`` is
        kept as a label, as deltaglider 6.x's ``DeltaGliderClient(service,
        endpoint_url)`` did. ``tool_version`` and ``max_ratio`` are the service's.
        """
        own = (
            storage if isinstance(storage, DeltaGliderConfig) else getattr(storage, "config", None)
        )
        if isinstance(own, DeltaGliderConfig):
            if endpoint_url is not None and endpoint_url != own.endpoint_url:
                raise InvalidArgumentError(
                    f"endpoint_url {endpoint_url!r} differs from the endpoint the service's "
                    f"S3 storage uses ({own.endpoint_url or 'AWS'}); give the endpoint to the "
                    "storage, or leave endpoint_url out"
                )
            base = own
        else:
            base = cls(endpoint_url=endpoint_url)
        return replace(base, tool_version=tool_version or base.tool_version, max_ratio=max_ratio)

    def with_changes(self, **changes: Any) -> DeltaGliderConfig:
        """A copy with some fields replaced."""
        return replace(self, **changes)


def rebase_setting(value: object, source: str) -> float:
    """A re-baselining threshold: a ratio in ``[0, 1]``, or ``off`` (the same as 1)."""
    if isinstance(value, str) and value.strip().lower() in ("off", "false", "no", "none"):
        return 1.0
    return validate_ratio(value, source=source)
