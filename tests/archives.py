"""Deterministic generators of realistic versioned archives for tests, demos and benchmarks.

A *source tree* is a few dozen text files (Python-like modules, a README, a VERSION file)
plus one incompressible binary asset, all derived from a seed. Version ``n`` of a tree is
version ``n - 1`` with small edits: a few lines changed in two modules, a line appended to
the changelog, now and then a new module. Archives of successive versions therefore differ
the way successive releases of a real project do, and delta-compress accordingly.

Every function is deterministic: the same arguments give the same bytes (fixed
timestamps, sorted entries, no owner names, gzip headers without a time stamp)::

    from tests.archives import make_versions, make_zip_versions

    paths = make_zip_versions(tmp_path, 5, size=2_000_000)   # app-1.0.0.zip ... app-1.0.4.zip
    tars = make_versions(tmp_path, 3, "tar.gz", seed=7)
"""

from __future__ import annotations

import gzip
import io
import lzma
import random
import tarfile
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = [
    "ARCHIVE_FORMATS",
    "archive_bytes",
    "make_archive",
    "make_source_tree",
    "make_versions",
    "make_zip_versions",
    "source_tree_files",
    "version_string",
]

ARCHIVE_FORMATS: tuple[str, ...] = ("zip", "jar", "whl", "tar", "tar.gz", "gz", "xz")

# 2020-01-01 00:00:00: a fixed time for every archive entry.
_EPOCH = 1577836800
_ZIP_TIME = (2020, 1, 1, 0, 0, 0)

_WORDS = (
    *("self", "data", "value", "result", "config", "path", "name", "index", "count"),
    *("buffer", "stream", "client", "request", "response", "error", "items", "key"),
    *("token", "size", "offset", "chunk", "reader", "writer", "cache", "manager"),
    *("handler", "session", "record", "entry", "table", "column", "row", "schema"),
)
_KEYWORDS = ("if", "for", "while", "return", "yield", "with", "assert", "raise")


def version_string(version: int) -> str:
    """The release number of version ``version`` (``0`` → ``1.0.0``, ``12`` → ``1.1.2``)."""
    return f"1.{version // 10}.{version % 10}"


def _line(rng: random.Random) -> str:
    indent = "    " * rng.randint(1, 3)
    kind = rng.random()
    a, b, c = rng.choice(_WORDS), rng.choice(_WORDS), rng.choice(_WORDS)
    if kind < 0.45:
        return f"{indent}{a}_{b} = {c}.{rng.choice(_WORDS)}({rng.randint(0, 9999)})"
    if kind < 0.75:
        return f"{indent}{rng.choice(_KEYWORDS)} {a}_{b} in {c}:  # {rng.getrandbits(32):08x}"
    return f'{indent}log.debug("{a} {b} {c} %s", {a}_{rng.randint(0, 99)})'


def _module(rng: random.Random, name: str, size: int) -> str:
    lines = [f'"""Module {name}."""', "", "import logging", "", "log = logging.getLogger()", ""]
    length = sum(len(line) + 1 for line in lines)
    function = 0
    while length < size:
        header = f"def {name}_{function}({rng.choice(_WORDS)}, {rng.choice(_WORDS)}):"
        lines += ["", header]
        length += len(header) + 2
        for _ in range(rng.randint(4, 14)):
            line = _line(rng)
            lines.append(line)
            length += len(line) + 1
        function += 1
    return "\n".join(lines) + "\n"


def _base_tree(seed: int, files: int, file_size: int, asset_size: int) -> dict[str, bytes]:
    rng = random.Random(f"deltaglider-tree-{seed}")
    tree: dict[str, bytes] = {}
    packages = ["core", "io", "net", "util"]
    for index in range(files):
        package = packages[index % len(packages)]
        name = f"mod{index:03d}"
        size = max(64, int(file_size * rng.uniform(0.5, 1.5)))
        tree[f"src/app/{package}/{name}.py"] = _module(rng, name, size).encode()
    tree["README.md"] = b"# app\n\nA generated project used to exercise delta storage.\n"
    tree["CHANGELOG.md"] = b"# Changelog\n"
    if asset_size > 0:
        tree["assets/blob.bin"] = rng.randbytes(asset_size)
    return tree


def _evolve(tree: dict[str, bytes], seed: int, version: int) -> None:
    """Apply the small edits that turn version ``version - 1`` into ``version``."""
    rng = random.Random(f"deltaglider-edit-{seed}-{version}")
    modules = sorted(k for k in tree if k.endswith(".py"))
    for path in rng.sample(modules, min(2, len(modules))):
        lines = tree[path].decode().split("\n")
        for _ in range(3):
            at = rng.randrange(6, max(7, len(lines) - 1))
            lines[at] = _line(rng)
        tree[path] = "\n".join(lines).encode()
    tree["CHANGELOG.md"] += f"\n## {version_string(version)}\n\n- change {version}\n".encode()
    if version % 3 == 0:
        name = f"added{version:03d}"
        tree[f"src/app/extra/{name}.py"] = _module(rng, name, 1500).encode()
    blob = tree.get("assets/blob.bin")
    if blob is not None and version % 2 == 0 and len(blob) > 64:
        # A binary asset changes a little too: 16 bytes rewritten in place.
        at = rng.randrange(0, len(blob) - 16)
        tree["assets/blob.bin"] = blob[:at] + rng.randbytes(16) + blob[at + 16 :]


def source_tree_files(
    seed: int,
    version: int = 0,
    *,
    files: int = 24,
    file_size: int = 3000,
    asset_size: int = 0,
) -> dict[str, bytes]:
    """The files of version ``version`` of the tree of ``seed``: relative path → bytes.

    ``files`` text modules of about ``file_size`` bytes each, plus an incompressible
    ``assets/blob.bin`` of ``asset_size`` bytes when it is positive.
    """
    if version < 0:
        raise ValueError(f"version must be >= 0, got {version}")
    tree = _base_tree(seed, files, file_size, asset_size)
    for step in range(1, version + 1):
        _evolve(tree, seed, step)
    tree["VERSION"] = f"{version_string(version)}\n".encode()
    return dict(sorted(tree.items()))


def make_source_tree(
    root: Path,
    seed: int,
    version: int = 0,
    *,
    files: int = 24,
    file_size: int = 3000,
    asset_size: int = 0,
) -> list[Path]:
    """Write version ``version`` of the tree of ``seed`` under ``root``; return the paths."""
    written = []
    for relative, data in source_tree_files(
        seed, version, files=files, file_size=file_size, asset_size=asset_size
    ).items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        written.append(path)
    return written


def _zip_bytes(entries: Mapping[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    return buffer.getvalue()


def _tar_segments(entries: Mapping[str, bytes]) -> list[bytes]:
    """A ustar archive cut at entry boundaries: one segment per entry, then the end blocks."""
    segments = []
    for name, data in entries.items():
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mtime = _EPOCH
        info.mode = 0o644
        header = info.tobuf(format=tarfile.USTAR_FORMAT, encoding="utf-8", errors="strict")
        padding = -len(data) % tarfile.BLOCKSIZE
        segments.append(header + data + b"\0" * padding)
    length = sum(len(segment) for segment in segments) + 2 * tarfile.BLOCKSIZE
    # Two zero blocks end the archive; tar pads the whole archive to a full record.
    segments.append(b"\0" * (2 * tarfile.BLOCKSIZE + (-length % tarfile.RECORDSIZE)))
    return segments


def _gzip(data: bytes) -> bytes:
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0, filename="") as stream:
        stream.write(data)
    return buffer.getvalue()


def _text_parts(files: Mapping[str, bytes]) -> list[bytes]:
    """The text files of the tree as sections of one dump, one part per file."""
    return [
        f"=== {name} ===\n".encode() + data
        for name, data in files.items()
        if not name.endswith(".bin")
    ]


def archive_bytes(files: Mapping[str, bytes], fmt: str, *, package: str = "app") -> bytes:
    """The bytes of an archive of ``files`` in format ``fmt`` (one of :data:`ARCHIVE_FORMATS`).

    ``gz`` and ``xz`` compress one text stream of the tree (like a database dump); they and
    ``tar.gz`` are made of one compressed member per file, so that versions delta well.
    ``jar`` adds a manifest and ``whl`` the ``dist-info`` files of a wheel.
    """
    if fmt == "zip":
        return _zip_bytes(files)
    if fmt == "jar":
        manifest = b"Manifest-Version: 1.0\r\nCreated-By: deltaglider tests\r\n\r\n"
        return _zip_bytes({"META-INF/MANIFEST.MF": manifest, **files})
    if fmt == "whl":
        version = files.get("VERSION", b"1.0.0\n").decode().strip()
        info = f"{package}-{version}.dist-info"
        entries = {f"{package}/{k}": v for k, v in files.items()}
        entries[f"{info}/METADATA"] = (
            f"Metadata-Version: 2.1\nName: {package}\nVersion: {version}\n".encode()
        )
        entries[f"{info}/WHEEL"] = b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        entries[f"{info}/RECORD"] = "".join(f"{name},,\n" for name in entries).encode()
        return _zip_bytes(entries)
    if fmt == "tar":
        return b"".join(_tar_segments(files))
    # Compressed formats are written "rsyncable": one gzip member / xz stream per tar entry
    # or file, so a small edit changes only its own member (as pigz --rsyncable or bgzip
    # output does). Every standard tool decompresses concatenated members as one stream.
    if fmt == "tar.gz":
        return b"".join(_gzip(segment) for segment in _tar_segments(files))
    if fmt == "gz":
        return b"".join(_gzip(part) for part in _text_parts(files))
    if fmt == "xz":
        return b"".join(
            lzma.compress(part, format=lzma.FORMAT_XZ, preset=6) for part in _text_parts(files)
        )
    raise ValueError(f"unknown archive format {fmt!r}; expected one of {ARCHIVE_FORMATS}")


def _file_name(package: str, version: int, fmt: str) -> str:
    number = version_string(version)
    if fmt == "whl":
        return f"{package}-{number}-py3-none-any.whl"
    return f"{package}-{number}.{fmt}"


def make_archive(tree: Path, dest: Path, fmt: str) -> Path:
    """Archive the files under the directory ``tree`` into ``dest`` in format ``fmt``."""
    files = {
        path.relative_to(tree).as_posix(): path.read_bytes()
        for path in sorted(tree.rglob("*"))
        if path.is_file()
    }
    dest.write_bytes(archive_bytes(files, fmt, package=tree.name or "app"))
    return dest


def make_versions(
    directory: Path,
    n: int,
    fmt: str = "zip",
    *,
    seed: int = 0,
    files: int = 24,
    file_size: int = 3000,
    asset_size: int = 0,
    package: str = "app",
    names: Sequence[str] | None = None,
) -> list[Path]:
    """Write ``n`` successive versions of one project as ``fmt`` archives in ``directory``.

    Files are named ``app-1.0.0.zip``, ``app-1.0.1.zip``... (wheels
    ``app-1.0.0-py3-none-any.whl``) unless ``names`` gives the ``n`` file names.
    """
    if names is not None and len(names) != n:
        raise ValueError(f"expected {n} names, got {len(names)}")
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    tree = _base_tree(seed, files, file_size, asset_size)
    for version in range(n):
        if version:
            _evolve(tree, seed, version)
        current = dict(sorted({**tree, "VERSION": f"{version_string(version)}\n".encode()}.items()))
        name = names[version] if names is not None else _file_name(package, version, fmt)
        path = directory / name
        path.write_bytes(archive_bytes(current, fmt, package=package))
        paths.append(path)
    return paths


def make_zip_versions(
    directory: Path, n: int, size: int = 200_000, *, seed: int = 0, package: str = "app"
) -> list[Path]:
    """``n`` successive release zips of about ``size`` bytes each (within ~10 %).

    About a quarter of each zip is deflated source code, the rest an incompressible binary
    asset that changes by a few bytes every other version, as release bundles do.
    """
    if size < 4096:
        raise ValueError(f"size must be at least 4096 bytes, got {size}")
    text = size // 4
    # Generated modules deflate to about 43 % of their size.
    file_size = 3000
    files = max(4, int(text / 0.43) // file_size)
    return make_versions(
        directory,
        n,
        "zip",
        seed=seed,
        files=files,
        file_size=file_size,
        asset_size=size - text,
        package=package,
    )
