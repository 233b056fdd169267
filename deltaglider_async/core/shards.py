"""Shards: which part of a job split over many processes one run does.

A sharded job runs ``count`` times with ``index = 0 .. count - 1``, in parallel, on as
many machines as wanted; each run does its own part and nothing else, and together they
cover everything exactly once. Job engines number their workers themselves:

* a Kubernetes Indexed Job sets ``JOB_COMPLETION_INDEX`` in each pod (the count is the
  Job's ``completions``, which the pod is not told: give it explicitly);
* an AWS Batch array job sets ``AWS_BATCH_JOB_ARRAY_INDEX`` in each child and
  ``AWS_BATCH_JOB_ARRAY_SIZE`` to the array's size.

:func:`shard_from_environment` reads them. The parts themselves are cut by a stable hash
(:func:`shard_of`) or by position (:func:`share_of`), never by anything that differs
between machines.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

from .._errors import InvalidArgumentError

__all__ = [
    "COUNT_VARIABLE",
    "INDEX_VARIABLES",
    "Shard",
    "ShardSpec",
    "check_shard",
    "shard_from_environment",
    "shard_of",
    "share_of",
]

#: The environment variables that carry a worker's index, in the order they are read.
INDEX_VARIABLES: Final = ("JOB_COMPLETION_INDEX", "AWS_BATCH_JOB_ARRAY_INDEX")
#: The environment variable that carries the number of workers (AWS Batch only).
COUNT_VARIABLE: Final = "AWS_BATCH_JOB_ARRAY_SIZE"


@dataclass(frozen=True, slots=True)
class Shard:
    """Part ``index`` of ``count`` (``0 <= index < count``)."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if not (_is_int(self.index) and _is_int(self.count) and 0 <= self.index < self.count):
            raise InvalidArgumentError(
                f"a shard is (index, count) with integers 0 <= index < count, "
                f"got ({self.index!r}, {self.count!r})"
            )

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


#: What callers may pass as a shard: none, ``(index, count)``, a :class:`Shard`, or
#: ``"auto"`` (from the job engine's environment).
ShardSpec = tuple[int, int] | Shard | Literal["auto"] | None


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _env_int(environ: Mapping[str, str], name: str) -> int:
    text = environ[name].strip()
    if not text.isdigit():
        raise InvalidArgumentError(f"{name} must be a non-negative integer, got {text!r}")
    return int(text)


def shard_from_environment(environ: Mapping[str, str], count: int | None = None) -> Shard:
    """The shard a job engine gave this process, from ``environ`` (``os.environ``).

    The index comes from the first of :data:`INDEX_VARIABLES` that is set, the count from
    ``count`` when given, else from :data:`COUNT_VARIABLE`. Raises
    :class:`InvalidArgumentError`, naming the variables, when no index or no count is
    found, or when they are not integers with ``0 <= index < count``.
    """
    names = [name for name in INDEX_VARIABLES if environ.get(name, "").strip()]
    if not names:
        raise InvalidArgumentError(
            f"shard 'auto' needs the worker's index in {' or '.join(INDEX_VARIABLES)} "
            f"(set by a Kubernetes Indexed Job or an AWS Batch array job); neither is set"
        )
    index = _env_int(environ, names[0])
    if count is None:
        if not environ.get(COUNT_VARIABLE, "").strip():
            raise InvalidArgumentError(
                f"shard 'auto' needs the number of shards: give it (--shards N, shards=N) "
                f"or set {COUNT_VARIABLE}"
            )
        count = _env_int(environ, COUNT_VARIABLE)
    if not _is_int(count) or count < 1:
        raise InvalidArgumentError(f"the number of shards must be an integer >= 1, got {count!r}")
    if index >= count:
        raise InvalidArgumentError(
            f"{names[0]}={index} is not below the number of shards ({count})"
        )
    return Shard(index, count)


def check_shard(
    shard: object, count: int | None = None, environ: Mapping[str, str] | None = None
) -> Shard | None:
    """``shard`` (a :data:`ShardSpec`) as a :class:`Shard`, or None for an unsharded run.

    ``"auto"`` reads ``environ`` (:func:`shard_from_environment`), with ``count`` as the
    number of shards when given; ``count`` is refused with any other ``shard``. Raises
    :class:`InvalidArgumentError` for anything else.
    """
    if count is not None and shard != "auto":
        raise InvalidArgumentError("the number of shards is given only with shard='auto'")
    if shard is None or isinstance(shard, Shard):
        return shard
    if shard == "auto":
        return shard_from_environment(environ or {}, count)
    if isinstance(shard, tuple | list) and len(shard) == 2:
        index, total = shard
        if _is_int(index) and _is_int(total) and 0 <= index < total:
            return Shard(index, total)
    raise InvalidArgumentError(
        f"shard must be (k, n) with integers 0 <= k < n, or 'auto', got {shard!r}"
    )


def shard_of(relative_space: str, shards: int) -> int:
    """The shard (``0 <= k < shards``) of a deltaspace, from SHA-256 of its relative prefix.

    ``relative_space`` is the deltaspace's prefix relative to the migration's source
    prefix, without its trailing ``/`` (``""`` for the source root). The hash is stable
    across processes, machines and Python versions, unlike ``hash()``.
    """
    digest = hashlib.sha256(relative_space.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % shards


def share_of(total: int, shard: Shard) -> range:
    """The positions ``shard`` takes of ``total`` items cut into contiguous runs.

    Run ``k`` is ``[k * total // count, (k + 1) * total // count)``: the runs of all shards
    cover ``range(total)`` once, and their lengths differ by at most one.
    """
    return range(shard.index * total // shard.count, (shard.index + 1) * total // shard.count)
