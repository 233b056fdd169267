"""The ``deltaglider`` command line: ``aws s3``-style commands over delta-compressed storage.

``main()`` is the console script (``deltaglider``, also ``python -m deltaglider``); ``cli``
is the click group, for embedding and for click's test runner. Commands: ``cp``, ``ls``,
``rm``, ``sync``, ``stats``, ``verify``, ``migrate``, ``rebase``, ``mb``, ``rb``. Exit codes are
documented in :mod:`deltaglider.cli._errors`.
"""

from . import (
    _cmd_buckets,
    _cmd_cleanup,
    _cmd_cp,
    _cmd_ls,
    _cmd_migrate,
    _cmd_rebase,
    _cmd_rm,
    _cmd_stats,
    _cmd_sync,
)
from ._app import cli as cli
from ._app import main as main

# The command modules register themselves on ``cli`` when imported.
del (
    _cmd_buckets,
    _cmd_cleanup,
    _cmd_cp,
    _cmd_ls,
    _cmd_migrate,
    _cmd_rebase,
    _cmd_rm,
    _cmd_stats,
    _cmd_sync,
)

__all__ = ["cli", "main"]
