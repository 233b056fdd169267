"""The reference cache: content-addressed copies of references, encrypted at rest.

Layout: one private directory (a ``ScratchDir``: ``deltaglider-cache-*``, mode 0700, with
its owner record) holding one file per entry, named by the SHA-256 of the plaintext.
Entries are written to a temporary file in the same directory and renamed into place, so
a reader sees a whole entry or none.

Entry format::

    b"DGRC\\x01"  nonce prefix (8 random bytes)  chunk 0  chunk 1  ...  final chunk

Each chunk is AES-256-GCM over at most 1 MiB of plaintext with the nonce
``prefix || chunk index (32-bit)`` and the associated data
``magic || sha256 || chunk index (64-bit) || final flag``. Every chunk but the last holds
exactly 1 MiB; the last holds less (possibly nothing) and is the only one flagged final.
So a flipped bit, a truncation (even at a chunk boundary), reordered chunks, appended
bytes or one entry's file renamed to another's name all fail authentication. The plaintext
is hashed again while it is decrypted and must match the entry's name.

The key is random, made per cache instance and per process: a forked child that uses an
inherited cache starts a directory and key of its own and leaves the parent's alone.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Final

import anyio
import anyio.to_thread
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .._errors import ClientClosedError, IntegrityError, InvalidArgumentError, StorageError
from .._scratch import ScratchDir

if TYPE_CHECKING:
    from _hashlib import HASH

__all__ = ["CHUNK_SIZE", "EncryptedReferenceCache"]

CHUNK_SIZE: Final = 1024 * 1024
_MAGIC: Final = b"DGRC\x01"
_PREFIX_SIZE: Final = 8
_TAG_SIZE: Final = 16
_MAX_CHUNKS: Final = 1 << 32  # the chunk index is the 32-bit tail of the nonce
_SHA256_HEX: Final = re.compile(r"[0-9a-f]{64}")
_TEMP_PREFIX: Final = ".tmp-"


class _CorruptEntry(Exception):
    """An entry failed authentication or verification (internal; becomes IntegrityError)."""


def _open_read(path: Path) -> BinaryIO:
    return open(path, "rb")


def _open_write(path: Path) -> BinaryIO:
    return open(path, "wb")


def _validated(sha256: str) -> str:
    if not isinstance(sha256, str) or not _SHA256_HEX.fullmatch(sha256):
        raise InvalidArgumentError(
            f"a cache key must be 64 lowercase hex characters (a SHA-256), got {sha256!r}"
        )
    return sha256


def _associated_data(sha256: bytes, index: int, final: bool) -> bytes:
    return _MAGIC + sha256 + index.to_bytes(8, "big") + (b"\x01" if final else b"\x00")


def _nonce(prefix: bytes, index: int) -> bytes:
    return prefix + index.to_bytes(4, "big")


class _Session:
    """The directory and key of one cache instance in one process.

    It registers its own removal at interpreter exit; the handler refers to this small
    object only, never to the cache, and does nothing in another (forked) process.
    """

    def __init__(self, root: Path | None) -> None:
        self._scratch = ScratchDir("cache", root)
        self.path = self._scratch.path()
        self.pid = os.getpid()
        self.aead = AESGCM(AESGCM.generate_key(bit_length=256))

    def owned(self) -> bool:
        return self.pid == os.getpid()

    def remove(self) -> None:
        self._scratch.remove()

    def forget(self) -> None:
        """Stop tracking the directory without touching it (it belongs to another process)."""
        self._scratch.forget()


def _open_temp(directory: Path) -> tuple[BinaryIO, Path]:
    fd, name = tempfile.mkstemp(prefix=_TEMP_PREFIX, dir=directory)
    return os.fdopen(fd, "wb"), Path(name)


def _encrypt_chunk(
    src: BinaryIO, dst: BinaryIO, aead: AESGCM, sha256: bytes, prefix: bytes, index: int
) -> bool:
    data = src.read(CHUNK_SIZE)
    final = len(data) < CHUNK_SIZE
    dst.write(aead.encrypt(_nonce(prefix, index), data, _associated_data(sha256, index, final)))
    return final


def _decrypt_chunk(
    src: BinaryIO,
    dst: BinaryIO,
    aead: AESGCM,
    sha256: bytes,
    prefix: bytes,
    index: int,
    plain_hash: HASH,
) -> bool:
    sealed = src.read(CHUNK_SIZE + _TAG_SIZE)
    if len(sealed) < _TAG_SIZE:
        raise _CorruptEntry(f"truncated before chunk {index}")
    final = len(sealed) < CHUNK_SIZE + _TAG_SIZE
    try:
        data = aead.decrypt(_nonce(prefix, index), sealed, _associated_data(sha256, index, final))
    except InvalidTag:
        raise _CorruptEntry(f"chunk {index} failed authentication") from None
    plain_hash.update(data)
    dst.write(data)
    return final


def _read_header(src: BinaryIO) -> bytes:
    header = src.read(len(_MAGIC) + _PREFIX_SIZE)
    if len(header) != len(_MAGIC) + _PREFIX_SIZE or not header.startswith(_MAGIC):
        raise _CorruptEntry("bad header")
    return header[len(_MAGIC) :]


def _expect_end(src: BinaryIO) -> None:
    if src.read(1):
        raise _CorruptEntry("trailing bytes after the final chunk")


def _close_quietly(file: BinaryIO) -> None:
    with contextlib.suppress(OSError):
        file.close()


def _unlink_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


def _evict(path: Path, identity: tuple[int, int]) -> None:
    """Remove ``path`` unless a concurrent store has already replaced it with a new file."""
    with contextlib.suppress(OSError):
        current = os.stat(path)
        if (current.st_dev, current.st_ino) == identity:
            path.unlink()


def _remove_entries(directory: Path) -> None:
    # Only finished entries: temporary files belong to stores still in flight.
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return
    for entry in entries:
        if _SHA256_HEX.fullmatch(entry.name):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)


class EncryptedReferenceCache:
    """:class:`~deltaglider_async.ports.ReferenceCachePort`: encrypted, verified on use.

    The private directory is created at the first ``store`` inside ``root`` (default: the
    system temporary directory) and removed by :meth:`aclose` or, failing that, at
    interpreter exit. The constructor does no I/O. After :meth:`aclose` every method but
    ``aclose`` raises :class:`ClientClosedError`.
    """

    def __init__(self, root: Path | None = None) -> None:
        self._root = root
        self._session: _Session | None = None
        self._closed = False

    @property
    def directory(self) -> Path | None:
        """The cache directory of this process; ``None`` before the first store and after close."""
        session = self._session
        if self._closed or session is None or not session.owned():
            return None
        return session.path

    def _current(self) -> _Session | None:
        if self._closed:
            raise ClientClosedError("the reference cache is closed")
        session = self._session
        if session is not None and not session.owned():
            # Inherited through fork: the parent owns that directory and key.
            session.forget()
            self._session = session = None
        return session

    def _ensure(self) -> _Session:
        session = self._current()
        if session is None:
            session = self._session = _Session(self._root)
        return session

    async def contains(self, sha256: str) -> bool:
        """True when an entry for ``sha256`` exists (its content is checked by fetch)."""
        _validated(sha256)
        session = self._current()
        if session is None:
            return False
        return await anyio.Path(session.path / sha256).is_file()

    async def store(self, sha256: str, src: Path) -> None:
        """Encrypt the file ``src`` (whose SHA-256 is ``sha256``) into the cache.

        The entry appears atomically; a concurrent store of the same key is harmless.
        """
        digest = bytes.fromhex(_validated(sha256))
        session = self._ensure()
        source: BinaryIO = await anyio.to_thread.run_sync(_open_read, src)
        try:
            try:
                temp, temp_path = await anyio.to_thread.run_sync(_open_temp, session.path)
            except FileNotFoundError:
                # The directory was removed behind our back (a tmp cleaner): start afresh.
                session.remove()
                self._session = None
                session = self._ensure()
                temp, temp_path = await anyio.to_thread.run_sync(_open_temp, session.path)
            try:
                prefix = os.urandom(_PREFIX_SIZE)
                await anyio.to_thread.run_sync(temp.write, _MAGIC + prefix)
                index = 0
                while not await anyio.to_thread.run_sync(
                    _encrypt_chunk, source, temp, session.aead, digest, prefix, index
                ):
                    index += 1
                    if index >= _MAX_CHUNKS:
                        raise StorageError(f"reference {sha256} is too large to cache")
                await anyio.to_thread.run_sync(temp.close)
                await anyio.to_thread.run_sync(os.replace, temp_path, session.path / sha256)
            except BaseException:
                _close_quietly(temp)
                _unlink_quietly(temp_path)
                raise
        finally:
            _close_quietly(source)

    async def fetch(self, sha256: str, dest: Path) -> bool:
        """Decrypt the entry for ``sha256`` into ``dest``; False when there is none.

        Every chunk is authenticated before it is written and the SHA-256 of the whole
        is checked at the end. On any failure ``dest`` is removed; if the entry itself is
        bad it is also evicted and :class:`IntegrityError` (naming ``sha256``) is raised.
        """
        digest = bytes.fromhex(_validated(sha256))
        session = self._current()
        if session is None:
            return False
        path = session.path / sha256
        try:
            source: BinaryIO = await anyio.to_thread.run_sync(_open_read, path)
        except FileNotFoundError:
            return False
        try:
            stat = os.fstat(source.fileno())
            identity = (stat.st_dev, stat.st_ino)
            target: BinaryIO = await anyio.to_thread.run_sync(_open_write, dest)
            try:
                await self._decrypt(source, target, session.aead, sha256, digest)
                await anyio.to_thread.run_sync(target.close)
            except _CorruptEntry as exc:
                _close_quietly(target)
                _unlink_quietly(dest)
                await anyio.to_thread.run_sync(_evict, path, identity)
                raise IntegrityError(
                    f"cached reference {sha256} failed verification ({exc}); the entry was evicted"
                ) from None
            except BaseException:
                _close_quietly(target)
                _unlink_quietly(dest)
                raise
        finally:
            _close_quietly(source)
        return True

    @staticmethod
    async def _decrypt(
        source: BinaryIO, target: BinaryIO, aead: AESGCM, sha256: str, digest: bytes
    ) -> None:
        prefix = await anyio.to_thread.run_sync(_read_header, source)
        plain_hash = hashlib.sha256()
        index = 0
        while not await anyio.to_thread.run_sync(
            _decrypt_chunk, source, target, aead, digest, prefix, index, plain_hash
        ):
            index += 1
            if index >= _MAX_CHUNKS:
                raise _CorruptEntry("too many chunks")
        await anyio.to_thread.run_sync(_expect_end, source)
        if plain_hash.hexdigest() != sha256:
            raise _CorruptEntry(f"content has SHA-256 {plain_hash.hexdigest()}")

    async def clear(self) -> None:
        """Remove every entry (the directory stays)."""
        session = self._current()
        if session is not None:
            await anyio.to_thread.run_sync(_remove_entries, session.path)

    async def aclose(self) -> None:
        """Remove the directory and everything in it; idempotent."""
        if self._closed:
            return
        self._closed = True
        session, self._session = self._session, None
        if session is None:
            return
        if not session.owned():
            session.forget()
            return
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(session.remove)
