"""Private temp directories that record their owner, and the sweep of dead owners' ones.

Every local staging area of the package (a client's bodies and downloads, the service's
work files, the encrypted reference cache, a migration's copies) is one
:class:`ScratchDir`: ``deltaglider-<label>-<random>`` (mode 0700, ``tempfile.mkdtemp``)
holding a small owner record, ``.deltaglider-owner``, with the creating process's pid,
its start time (Linux ``/proc/<pid>/stat``, so a reused pid is told apart) and the host.

Rules:

* a directory is removed when its owner closes it, and at interpreter exit (``atexit``)
  when it was not — so nothing is left after a normal exit, closed or not;
* a process killed by a signal (``kill -9``, or ``SIGTERM`` with Python's default
  handling) runs no exit hook: its directories — staged plaintext copies of user data —
  stay until a client of the same user on the same host opens (``async with``, or the
  blocking client's first call) or creates its first directory under that root, which
  removes every ``deltaglider-*`` directory of that root whose recorded owner no longer
  runs. Directories of other users, of other hosts, of live processes and
  without an owner record are never touched.
"""

from __future__ import annotations

import atexit
import json
import os
import secrets
import shutil
import socket
import tempfile
import threading
from pathlib import Path
from typing import Final

__all__ = ["OWNER_FILE", "ScratchDir", "sweep_once", "sweep_stale"]

PREFIX: Final = "deltaglider-"
OWNER_FILE: Final = ".deltaglider-owner"

_swept: set[str] = set()
_swept_lock = threading.Lock()


def _start_time(pid: int) -> str | None:
    """The start time of ``pid`` in clock ticks since boot (Linux), else ``None``."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after it.
    fields = stat.rpartition(")")[2].split()
    return fields[19] if len(fields) > 19 else None


def _alive(pid: int, started: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive, whoever it is
    if started is None:
        return True
    now = _start_time(pid)
    return now is None or now == started


def _owner_record() -> dict[str, object]:
    pid = os.getpid()
    return {"pid": pid, "started": _start_time(pid), "host": socket.gethostname()}


def sweep_stale(root: Path | None = None) -> list[Path]:
    """Remove the ``deltaglider-*`` directories under ``root`` (default: the system temp
    directory) whose owner process on this host no longer runs; the paths removed.

    Only directories owned by the current user and holding an owner record are looked
    at; errors (a directory vanishing meanwhile, no permission) skip that directory.
    """
    base = Path(tempfile.gettempdir()) if root is None else root
    host = socket.gethostname()
    uid = os.getuid() if hasattr(os, "getuid") else None
    removed: list[Path] = []
    try:
        entries = list(os.scandir(base))
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith(PREFIX):
            continue
        try:
            if not entry.is_dir(follow_symlinks=False):
                continue
            if uid is not None and entry.stat(follow_symlinks=False).st_uid != uid:
                continue
            record = json.loads((Path(entry.path) / OWNER_FILE).read_text())
            pid = int(record["pid"])
            started = record.get("started")
            if record.get("host") != host or pid == os.getpid():
                continue
            if _alive(pid, None if started is None else str(started)):
                continue
        except (OSError, ValueError, KeyError, TypeError):
            continue
        shutil.rmtree(entry.path, ignore_errors=True)
        removed.append(Path(entry.path))
    return removed


def sweep_once(root: Path | None = None) -> list[Path]:
    """:func:`sweep_stale` the first time it is called for ``root`` in this process."""
    key = str(root or tempfile.gettempdir())
    with _swept_lock:
        if key in _swept:
            return []
        _swept.add(key)
    return sweep_stale(root)


class ScratchDir:
    """One private temp directory, created on first use (see the module's rules).

    ``label`` names it (``deltaglider-<label>-…``); ``root`` is the parent (default: the
    system temp directory). Creating it sweeps dead owners' directories under the same
    root, once per process and root. Not for use across ``fork``: a child never removes
    its parent's directory.
    """

    def __init__(self, label: str, root: Path | None = None) -> None:
        self._label = label
        self._root = root
        self._path: Path | None = None
        self._pid = os.getpid()
        self._lock = threading.Lock()

    @property
    def created(self) -> Path | None:
        """The directory if it exists, without creating it."""
        return self._path

    def path(self) -> Path:
        """The directory, made (mode 0700, with its owner record) on first use."""
        path = self._path
        if path is not None:
            return path
        with self._lock:
            if self._path is None:
                self._path = self._create()
            return self._path

    def new_path(self, label: str) -> Path:
        """A fresh, unused path inside the directory (nothing is created)."""
        return self.path() / f"{secrets.token_hex(8)}-{label}"

    def _create(self) -> Path:
        root = self._root
        if root is not None:
            root.mkdir(mode=0o700, parents=True, exist_ok=True)
        sweep_once(root)
        path = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{self._label}-", dir=root))
        (path / OWNER_FILE).write_text(json.dumps(_owner_record()))
        self._pid = os.getpid()
        atexit.register(self._remove_at_exit)
        return path

    def _remove_at_exit(self) -> None:
        path, self._path = self._path, None
        # A forked child inherits this hook; the directory belongs to the parent.
        if path is not None and self._pid == os.getpid():
            shutil.rmtree(path, ignore_errors=True)

    def remove(self) -> None:
        """Remove the directory and everything in it (idempotent; blocking I/O)."""
        atexit.unregister(self._remove_at_exit)
        self._remove_at_exit()

    def forget(self) -> None:
        """Stop tracking the directory without touching it (it belongs to another process)."""
        atexit.unregister(self._remove_at_exit)
        self._path = None
