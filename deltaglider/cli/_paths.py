"""Local paths and ``s3://`` URLs as ``aws s3`` resolves them, and include/exclude filters.

Destination rules (as ``aws s3 cp``):

* ``cp a.zip s3://b/dir/`` stores ``dir/a.zip``; ``cp a.zip s3://b/dir/b.zip`` stores
  ``dir/b.zip``; ``cp a.zip s3://b`` stores ``a.zip``.
* ``cp s3://b/dir/a.zip ./out/`` writes ``./out/a.zip`` (also when ``./out`` is an
  existing directory without the slash); ``cp s3://b/dir/a.zip x.zip`` writes ``x.zip``.
* Recursive copies keep the tree below the source: ``cp -r dist s3://b/rel`` stores
  ``dist/x/y.zip`` as ``rel/x/y.zip``.

Unlike ``aws s3``, a recursive source ``s3://b/dir`` means the directory ``dir/``: it never
matches ``dir2/`` or ``dir.zip`` (see :func:`dir_prefix`).
"""

from __future__ import annotations

import fnmatch
import os
import re
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from deltaglider_async import AccessDeniedError, LocalFileError, S3Url

from ._errors import CliUsageError

DELTA_SUFFIX = ".delta"
STDIO = "-"

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_BARE_BUCKET = re.compile(r"[A-Za-z0-9._-]+")


@dataclass(frozen=True, slots=True)
class LocalPath:
    """A local path exactly as the user typed it (``-`` is stdin/stdout)."""

    text: str

    @property
    def path(self) -> Path:
        """The path, with ``~`` expanded."""
        return Path(os.path.expanduser(self.text))

    @property
    def is_stdio(self) -> bool:
        """True for ``-``."""
        return self.text == STDIO

    @property
    def names_directory(self) -> bool:
        """True when the text ends with a separator (``out/``) or names an existing directory."""
        return self.text.endswith(("/", os.sep)) or self.path.is_dir()


Location = LocalPath | S3Url


def parse_location(text: str, what: str = "path") -> Location:
    """An ``s3://bucket/key`` URL or a local path; anything else with a scheme is refused."""
    if text.startswith("s3://"):
        try:
            return S3Url.parse(text)
        except ValueError as exc:
            raise CliUsageError(f"bad {what}: {exc}") from None
    if _SCHEME.match(text):
        raise CliUsageError(
            f"bad {what} {text!r}: only s3://bucket/key URLs and local paths are supported"
        )
    if not text:
        raise CliUsageError(f"bad {what}: empty path")
    return LocalPath(text)


def parse_s3(text: str, what: str = "S3 URL") -> S3Url:
    """An ``s3://bucket[/key]`` URL; a bare bucket name is accepted where allowed by callers."""
    location = parse_location(text, what)
    if not isinstance(location, S3Url):
        raise CliUsageError(f"bad {what} {text!r}: expected s3://bucket[/key]")
    return location


def parse_s3_or_bucket(text: str, what: str = "S3 URL") -> S3Url:
    """``s3://bucket[/key]``, or a bare bucket name (as ``aws s3 ls bucket`` accepts)."""
    if _BARE_BUCKET.fullmatch(text):
        return S3Url(text, "")
    return parse_s3(text, what)


def parse_bucket(text: str) -> str:
    """A bucket from ``s3://bucket`` or ``bucket``; a key is refused."""
    url = parse_s3_or_bucket(text, "bucket")
    if url.key.strip("/"):
        raise CliUsageError(f"expected a bucket (s3://bucket), got {text!r}")
    return url.bucket


def dir_prefix(key: str) -> str:
    """``key`` as a directory prefix: empty, or ending with ``/`` (``dir`` → ``dir/``)."""
    return key if key == "" or key.endswith("/") else key + "/"


def logical_name(key: str) -> str:
    """The file name a user sees for a key: its last segment without ``.delta``."""
    return key.rpartition("/")[2].removesuffix(DELTA_SUFFIX)


def object_url(bucket: str, key: str) -> str:
    """``s3://bucket/key``."""
    return f"s3://{bucket}/{key}"


def display_local(path: Path | str) -> str:
    """A local path shown as ``aws s3`` does: relative to the working directory, ``./a.zip``."""
    absolute = os.path.abspath(path)
    directory, name = os.path.split(absolute)
    try:
        return os.path.join(os.path.relpath(directory), name)
    except ValueError:  # another drive on Windows
        return absolute


def upload_key(source: Path, dest: S3Url) -> str:
    """The key ``cp <file> <dest>`` stores: ``dest`` itself, or ``dest/<file name>``."""
    return dest.key + source.name if dest.is_prefix else dest.key


def copy_key(source_key: str, dest: S3Url) -> str:
    """The key ``cp s3://... <dest>`` stores: ``dest`` itself, or ``dest/<name>``."""
    return dest.key + logical_name(source_key) if dest.is_prefix else dest.key


def download_path(source_key: str, dest: LocalPath) -> Path:
    """The file ``cp s3://.../key <dest>`` writes: ``dest`` or ``dest/<name>``."""
    if dest.names_directory:
        return dest.path / logical_name(source_key)
    return dest.path


@dataclass(frozen=True, slots=True)
class LocalFile:
    """One file of a local tree: its path, its path relative to the root, its size."""

    path: Path
    relative: str
    size: int


def walk_local(root: Path) -> list[LocalFile]:
    """Every regular file under ``root`` (symlinks to files included), sorted by path.

    Symbolic links to directories are not followed, so a link loop cannot recurse forever.
    A directory that cannot be read raises (:class:`AccessDeniedError` for permission,
    else :class:`LocalFileError`) instead of being skipped: a tree read partly would look
    like deleted files to ``sync --delete``.
    """

    def refuse(exc: OSError) -> None:
        where = exc.filename or root
        if isinstance(exc, PermissionError):
            raise AccessDeniedError(
                f"cannot read local directory {str(where)!r}: permission denied; "
                "nothing was transferred or deleted"
            ) from exc
        if isinstance(exc, FileNotFoundError) and Path(where) != root:
            return  # removed while walking: it holds nothing any more
        raise LocalFileError(
            exc.errno, f"cannot read local directory {str(where)!r}: {exc.strerror or exc}"
        ) from exc

    found: list[LocalFile] = []
    for directory, dirnames, filenames in os.walk(root, onerror=refuse, followlinks=False):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(directory) / name
            try:
                info = path.stat()
            except OSError:
                continue  # a dangling symlink, or gone meanwhile
            if stat.S_ISREG(info.st_mode):
                found.append(LocalFile(path, path.relative_to(root).as_posix(), info.st_size))
    found.sort(key=lambda f: f.relative)
    return found


@dataclass(frozen=True, slots=True)
class Filters:
    """``--exclude``/``--include`` rules, applied in command-line order as ``aws s3`` does.

    Every path starts included; each rule whose pattern matches decides again, so the
    last matching rule wins: ``--exclude '*' --include '*.zip'`` keeps only zips.
    Patterns are :mod:`fnmatch` globs (``*``, ``?``, ``[abc]``; case-sensitive, ``*``
    also matches ``/``) matched against the path relative to the source directory or
    prefix (``sub/a.zip``).
    """

    rules: tuple[tuple[bool, str], ...] = ()

    def selects(self, relative: str) -> bool:
        """True when the path ``relative`` passes the rules."""
        selected = True
        for include, pattern in self.rules:
            if fnmatch.fnmatchcase(relative, pattern):
                selected = include
        return selected

    def __bool__(self) -> bool:
        return bool(self.rules)

    @classmethod
    def build(
        cls,
        ordered: Sequence[tuple[str, str]] | None,
        excludes: Iterable[str],
        includes: Iterable[str],
    ) -> Filters:
        """Rules from the command line: ``ordered`` holds ``("exclude"|"include", pattern)``
        in the order typed; when it disagrees with the parsed values it is not trusted and
        excludes apply first, then includes."""
        excludes, includes = list(excludes), list(includes)
        if ordered is not None:
            typed_excludes = [p for kind, p in ordered if kind == "exclude"]
            typed_includes = [p for kind, p in ordered if kind == "include"]
            if typed_excludes == excludes and typed_includes == includes:
                return cls(tuple((kind == "include", p) for kind, p in ordered))
        return cls(tuple([(False, p) for p in excludes] + [(True, p) for p in includes]))


def scan_filter_order(args: Sequence[str]) -> list[tuple[str, str]]:
    """The ``--exclude``/``--include`` values of raw arguments, in the order typed."""
    found: list[tuple[str, str]] = []
    tokens = iter(args)
    for token in tokens:
        if token == "--":
            break
        for kind in ("exclude", "include"):
            option = f"--{kind}"
            if token == option:
                value = next(tokens, None)
                if value is not None:
                    found.append((kind, value))
            elif token.startswith(option + "="):
                found.append((kind, token[len(option) + 1 :]))
    return found
