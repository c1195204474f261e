"""A path or `-` → decompressed byte chunks, the stored bytes' sha256, and the compression.

Compression is recognised by magic bytes, never by the file name (a `.pcap` may be gzip, a
`.gz` may be plain). The sha256 of the bytes as stored is computed on a helper thread while the
caller walks the data: hashlib releases the GIL on large updates, so on 2+ cores it costs no
wall time.
"""

from __future__ import annotations

import bz2
import contextlib
import hashlib
import io
import lzma
import mmap
import os
import queue
import stat
import sys
import threading
import zlib
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, BinaryIO

import numpy as np

from replay.errors import TraceError

# (magic, name): gzip RFC 1952, zstd RFC 8878 §3.1.1, xz (tukaani xz-file-format §2.1.1.1),
# bzip2 ("BZh" + block size digit).
MAGICS: tuple[tuple[bytes, str], ...] = (
    (b"\x1f\x8b", "gzip"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"BZh", "bzip2"),
)

# Errors the decompressors raise on corrupt or truncated input.
DECOMPRESS_ERRORS: tuple[type[BaseException], ...] = (
    EOFError, OSError, lzma.LZMAError, ValueError, zlib.error,
)  # fmt: skip
# gzip through ISA-L when installed (the `isal` package, zlib's API): it inflates ~1.9x faster
# than zlib here (0.145 vs 0.276 CPU-s for the 1M-frame benchmark .pcap.gz), and releases the GIL
# like zlib does; zlib otherwise.
try:
    from isal import isal_zlib as gzip_zlib

    DECOMPRESS_ERRORS = (*DECOMPRESS_ERRORS, gzip_zlib.error)
except ImportError:  # pragma: no cover - isal is a dependency
    gzip_zlib = zlib  # type: ignore[assignment]
try:
    import zstandard

    DECOMPRESS_ERRORS = (*DECOMPRESS_ERRORS, zstandard.ZstdError)
except ImportError:  # pragma: no cover - zstandard is a dependency
    zstandard = None  # type: ignore[assignment]


def new_hash(name: str) -> Any:
    """A hashlib-like object (update, hexdigest) of algorithm `name`: sha256, or blake3 (a
    cryptographic hash too, ≈4x faster here: 0.024 against 0.080-0.10 CPU-s per million
    frames of 145 bytes, measured; `b3sum` computes the same digest)."""
    if name == "sha256":
        return hashlib.sha256()
    if name == "blake3":
        from blake3 import blake3  # releases the GIL while hashing large buffers

        return blake3()
    raise ValueError(f"unknown hash {name!r}")


class _HashingReader(io.RawIOBase):
    """Reads the stored bytes, hashing them on a worker thread in order."""

    def __init__(self, raw: BinaryIO, prefix: bytes, enabled: bool = True, hash: str = "sha256") -> None:
        self._raw = raw
        self._prefix = prefix
        self._enabled = enabled
        self._sha = new_hash(hash)
        self._pool = ThreadPoolExecutor(max_workers=1)
        self._pending: Future[None] | None = None
        self.stored_bytes = 0
        if prefix:
            self._hash(prefix)

    def hash_bytes(self, data: bytes | memoryview) -> None:
        """Hash bytes read by other means (mmap), in order with the rest."""
        self._hash(data)

    def _hash(self, data: bytes | memoryview) -> None:
        if self._pending is not None:
            self._pending.result()
        self.stored_bytes += len(data)
        if self._enabled:
            self._pending = self._pool.submit(self._sha.update, data)

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if self._prefix:
            data, self._prefix = self._prefix, b""
            if n is not None and 0 <= n < len(data):
                data, self._prefix = data[:n], data[n:]
            return data
        data = self._raw.read() if n is None or n < 0 else self._raw.read(n)
        if data:
            self._hash(data)
        return data

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._prefix:
            data = self.read(len(b))
            b[: len(data)] = data
            return len(data)
        k = self._raw.readinto(b) or 0
        if k:
            # The caller never reuses a buffer it has filled, so the worker may hash it in place.
            self._hash(memoryview(b)[:k])
        return k

    def digest(self) -> str:
        """Hash of everything read so far (the caller reads to the end first)."""
        if self._pending is not None:
            self._pending.result()
            self._pending = None
        self._pool.shutdown()
        return self._sha.hexdigest() if self._enabled else ""

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        if self._raw is not sys.stdin.buffer:
            self._raw.close()
        super().close()


_HASH_STEP = 1 << 20  # bytes per read while hashing a file apart


class FileHash:
    """The hash (sha256 or blake3) of a regular file's stored bytes, computed apart from the
    decode: when first asked for (`value()`), or on a thread of its own from `start()`.

    hashlib and file reads release the GIL, so the background thread runs beside the compiled
    decode. The file's identity (device, inode, size, mtime) is taken when the reader opens it
    and checked before and after hashing: a file changed in between is refused rather than
    given a hash of bytes that were not the ones read.
    """

    def __init__(self, path: str, st: os.stat_result, hash: str = "sha256") -> None:
        self.path = path
        self.hash = hash
        self.size = st.st_size
        self._ident = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._value: str | None = None
        self._error: BaseException | None = None

    def start(self) -> None:
        with self._lock:
            if self._thread is None and self._value is None:
                self._thread = threading.Thread(target=self._run, name=self.hash, daemon=True)
                self._thread.start()

    def _same(self, st: os.stat_result) -> bool:
        return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns) == self._ident

    def _run(self) -> None:
        try:
            self._value = self._compute()
        except BaseException as e:  # handed to value()
            self._error = e

    def _compute(self) -> str:
        changed = TraceError(self.path, "changed while it was being read; read it again")
        try:
            with open(self.path, "rb") as f:
                if not self._same(os.fstat(f.fileno())):
                    raise changed
                h = new_hash(self.hash)
                buf = bytearray(_HASH_STEP)
                view = memoryview(buf)
                while k := f.readinto(buf):
                    h.update(view[:k])
                if not self._same(os.fstat(f.fileno())):
                    raise changed
        except OSError as e:
            raise TraceError(self.path, f"cannot read it again to hash it: {e.strerror}") from None
        return h.hexdigest()

    def value(self) -> str:
        """The hex digest (computing it now unless a thread already is)."""
        self.start()
        assert self._thread is not None or self._value is not None
        if self._thread is not None:
            self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._value is not None
        return self._value


_RAW_STEP = 1 << 18  # stored bytes fed to a decompressor at a time
_OUT_STEP = 1 << 20  # decompressed bytes produced per step (bounds a decompression bomb)
_QUEUE_DEPTH = 40  # decompressed chunks (≤ _OUT_STEP each) buffered ahead: over 2 read chunks

# zstd (RFC 8878). python-zstandard's decompressobj has no output limit: 8 KiB of RLE blocks
# (3-byte header + 1 byte, 128 KiB out each, §3.1.1.2) come back as 256 MiB in one call
# (measured), and its stream readers neither cross frames nor report a stream cut short. So the
# frames and block headers are walked here and the decompressor is fed whole blocks, at most
# _ZSTD_BLOCKS at a time: a block decompresses to at most 128 KiB (Block_Maximum_Size, §3.1.1.2.3),
# so one call yields at most 1 MiB whatever the data claims.
_ZSTD_MAGIC = 0xFD2FB528
_ZSTD_BLOCK_MAX = 1 << 17
_ZSTD_BLOCKS = 8


class CompressedDataError(ValueError):
    """The compressed stream ends before its end-of-stream marker, or is malformed."""


class _ZstdFrames:
    """zstd frames → decompressed pieces of at most _ZSTD_BLOCKS x 128 KiB (see above)."""

    def __init__(self, raw_read: Callable[[int], bytes]) -> None:
        self._raw = raw_read
        self._buf = bytearray()
        self._pos = 0
        self._state = "frame"  # frame | block | checksum
        self._checksum = False
        self._obj: Any = None

    def _need(self, k: int) -> bool:
        """At least k unparsed bytes buffered (False: the stream ended first)."""
        while len(self._buf) - self._pos < k:
            data = self._raw(max(_RAW_STEP, k))
            if not data:
                return False
            self._buf += data
        return True

    def _take(self, k: int) -> bytes:
        out = bytes(self._buf[self._pos : self._pos + k])
        self._pos += k
        return out

    def _cut(self, where: str) -> CompressedDataError:
        return CompressedDataError(f"zstd stream ends inside a {where}")

    def read(self) -> bytes:
        if self._pos > _RAW_STEP:  # drop what was parsed (the callers hold no views into it)
            del self._buf[: self._pos]
            self._pos = 0
        while True:
            if self._state == "frame":
                if not self._need(4):
                    if len(self._buf) > self._pos:
                        raise self._cut("frame header")
                    return b""
                magic = int.from_bytes(self._buf[self._pos : self._pos + 4], "little")
                if magic & 0xFFFFFFF0 == 0x184D2A50:  # skippable frame (§3.1.2): skip its bytes
                    if not self._need(8):
                        raise self._cut("skippable frame header")
                    size = int.from_bytes(self._buf[self._pos + 4 : self._pos + 8], "little")
                    self._pos += 8
                    while size:
                        if not self._need(1):
                            raise self._cut("skippable frame")
                        k = min(size, len(self._buf) - self._pos)
                        self._pos += k
                        size -= k
                        del self._buf[: self._pos]  # a skippable frame may claim 4 GiB
                        self._pos = 0
                    continue
                if magic != _ZSTD_MAGIC:
                    raise CompressedDataError(f"bad zstd frame magic 0x{magic:08x}")
                if not self._need(5):
                    raise self._cut("frame header")
                fhd = self._buf[self._pos + 4]
                single = (fhd >> 5) & 1
                fcs = (1 if single else 0, 2, 4, 8)[fhd >> 6]
                hlen = 5 + (0 if single else 1) + (0, 1, 2, 4)[fhd & 3] + fcs
                if not self._need(hlen):
                    raise self._cut("frame header")
                self._checksum = bool((fhd >> 2) & 1)
                self._obj = zstandard.ZstdDecompressor().decompressobj()
                self._obj.decompress(self._take(hlen))
                self._state = "block"
            elif self._state == "block":
                start, blocks = self._pos, 0
                while blocks < _ZSTD_BLOCKS:
                    if not self._need(3):
                        raise self._cut("block header")
                    h = int.from_bytes(self._buf[self._pos : self._pos + 3], "little")
                    kind, size = (h >> 1) & 3, h >> 3
                    if kind == 3 or size > _ZSTD_BLOCK_MAX:
                        raise CompressedDataError("corrupt zstd block header")
                    body = 1 if kind == 1 else size
                    if not self._need(3 + body):
                        raise self._cut("block")
                    self._pos += 3 + body
                    blocks += 1
                    if h & 1:  # last block of the frame
                        self._state = "checksum" if self._checksum else "frame"
                        break
                out = self._obj.decompress(bytes(self._buf[start : self._pos]))
                if out:
                    return out
            else:
                if not self._need(4):
                    raise self._cut("frame checksum")
                out = self._obj.decompress(self._take(4))
                self._state = "frame"
                if out:
                    return out


class _Decompressor:
    """Bounded incremental decompression of concatenated gzip members / xz, bzip2 streams /
    zstd frames: `read()` returns at most _OUT_STEP bytes, b'' at a clean end, and raises at
    corrupt data or at a stream cut short, after handing out everything before it."""

    def __init__(self, kind: str, raw_read: Callable[[int], bytes]) -> None:
        self.kind = kind
        self._raw = raw_read
        self._zstd = _ZstdFrames(raw_read) if kind == "zstd" else None
        self._obj = None if kind == "zstd" else self._new()
        self._tail = b""  # input not yet consumed (zlib's unconsumed_tail, unused_data)
        self._fed = False  # bytes fed to the current member

    def _new(self) -> Any:
        if self.kind == "gzip":
            return gzip_zlib.decompressobj(wbits=31)
        if self.kind == "xz":
            return lzma.LZMADecompressor()
        return bz2.BZ2Decompressor()

    def _input(self) -> bytes:
        data = self._tail or self._raw(_RAW_STEP)
        self._tail = b""
        if not data and self._fed:
            raise CompressedDataError(f"{self.kind} stream ends before its end marker")
        if data:
            self._fed = True
        return data

    def read(self) -> bytes:
        if self._zstd is not None:
            return self._zstd.read()
        while True:
            obj = self._obj
            if obj.eof:  # a member ended: another may follow
                rest = obj.unused_data or self._tail or self._raw(_RAW_STEP)
                if not rest:
                    return b""
                self._obj, self._tail, self._fed = self._new(), rest, False
                continue
            if self.kind == "gzip":
                data = self._input()
                if not data:
                    return b""
                out = obj.decompress(data, _OUT_STEP)
                self._tail = obj.unconsumed_tail
            else:  # lzma, bz2 keep unconsumed input themselves
                data = b""
                if obj.needs_input:
                    data = self._input()
                    if not data:
                        return b""
                out = obj.decompress(data, _OUT_STEP)
            if out:
                return out


class _Pipeline:
    """Decompression on a helper thread (zlib, lzma, bz2 and zstd release the GIL), a few
    chunks ahead of the reader, so a compressed capture reads at the decompressor's speed."""

    def __init__(self, decomp: _Decompressor) -> None:
        self._q: queue.Queue[bytes | BaseException | None] = queue.Queue(_QUEUE_DEPTH)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(decomp,), name="decompress", daemon=True)
        self._thread.start()

    def _put(self, item: bytes | BaseException | None) -> bool:
        while not self._stop.is_set():
            try:
                self._q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, decomp: _Decompressor) -> None:
        try:
            while True:
                out = decomp.read()
                if not out:
                    self._put(None)
                    return
                if not self._put(out):
                    return
        except DECOMPRESS_ERRORS as e:
            self._put(e)

    def get(self) -> bytes | BaseException | None:
        return self._q.get()

    def stop(self) -> None:
        self._stop.set()
        while self._thread.is_alive():
            with contextlib.suppress(queue.Empty):
                self._q.get(timeout=0.05)
        self._thread.join()


class Source:
    """One input: `read(n)` gives decompressed bytes; `sha256()` once fully read."""

    def __init__(self, path: str | os.PathLike[str], sha256: bool | str = True, hash: str = "sha256") -> None:
        """sha256: True hashes a regular file lazily (when `FileHash.value()` is first called),
        "background" starts hashing it on its own thread now, False does not hash at all;
        hash: the algorithm (sha256 or blake3)."""
        self.path = os.fspath(path)
        raw: BinaryIO
        if self.path == "-":
            raw = sys.stdin.buffer
        else:
            try:
                raw = open(self.path, "rb")  # noqa: SIM115 (closed by close())
            except FileNotFoundError:
                raise TraceError(self.path, "no such file") from None
            except IsADirectoryError:
                raise TraceError(self.path, "is a directory, not a capture file") from None
            except OSError as e:
                raise TraceError(self.path, f"cannot open: {e.strerror}") from None
        try:
            head = raw.read(8)
        except OSError as e:
            raw.close()
            raise TraceError(self.path, f"cannot read: {e.strerror}") from None
        # A regular file is hashed apart from the reading (FileHash: lazily, or on a thread of
        # its own), so the decode never waits for it; a pipe or stdin cannot be read twice and
        # is hashed as it streams past.
        st = None
        if self.path != "-":
            try:
                st = os.fstat(raw.fileno())
            except (OSError, ValueError):
                st = None
        regular = st is not None and stat.S_ISREG(st.st_mode)
        self.file_hash: FileHash | None = None
        if sha256 and regular:
            assert st is not None
            self.file_hash = FileHash(self.path, st, hash)
            if sha256 == "background":
                self.file_hash.start()
        self._hashing = _HashingReader(raw, head, bool(sha256) and self.file_hash is None, hash)
        self.compression: str | None = None
        for magic, name in MAGICS:
            if head.startswith(magic):
                self.compression = name
                break
        self._pipe: _Pipeline | None = None
        if self.compression:
            self._pipe = _Pipeline(_Decompressor(self.compression, self._hashing.read))
        self._pending: memoryview | bytes = b""
        self._ended = False
        self.offset = 0  # decompressed bytes handed out so far
        self._error: BaseException | None = None
        # A plain regular file is read through mmap windows: no copy into a buffer at all.
        self.size = 0
        self.mappable = False
        if self.compression is None and regular and st is not None and st.st_size > 0:
            self.mappable = True
            self.size = st.st_size
            self._raw = raw

    def window(self, start: int, length: int) -> np.ndarray:
        """Bytes [start, start + length) of the file (fewer at its end), mapped, not copied.

        The map covers only this window, so resident memory stays bounded by the window size
        however large the file is.
        """
        gran = mmap.ALLOCATIONGRANULARITY
        astart = start - start % gran
        end = min(self.size, start + length)
        if end <= start:
            return np.empty(0, np.uint8)
        try:
            # MAP_POPULATE maps the whole window in one call instead of one fault per page.
            flags = mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)
            mm = mmap.mmap(self._raw.fileno(), end - astart, flags=flags, prot=mmap.PROT_READ,
                           offset=astart)  # fmt: skip
        except OSError as e:
            raise TraceError(self.path, f"cannot map the file: {e.strerror}", start) from None
        if hasattr(mm, "madvise"):
            mm.madvise(mmap.MADV_SEQUENTIAL)
        self.offset = end
        return np.frombuffer(mm, np.uint8)[start - astart :]

    def readinto(self, arr: memoryview) -> int:
        """Fill arr with decompressed bytes as far as the stream goes; returns the count."""
        n = len(arr)
        got = 0
        if self.compression is None:
            while got < n:
                k = self._hashing.readinto(arr[got:])
                if not k:
                    break
                got += k
        else:
            if self._error is not None:
                raise self._error
            assert self._pipe is not None
            while got < n:
                if not self._pending:
                    if self._ended:
                        break
                    item = self._pipe.get()
                    if item is None:
                        self._ended = True
                        break
                    if isinstance(item, BaseException):
                        self._ended = True
                        if got == 0:
                            raise item
                        self._error = item  # raised by the next call, after these bytes
                        break
                    self._pending = memoryview(item)  # views: no copy but the one into arr
                k = min(n - got, len(self._pending))
                arr[got : got + k] = self._pending[:k]
                self._pending = self._pending[k:]
                got += k
        self.offset += got
        return got

    def drain(self) -> None:
        """Read the rest of the stored bytes (for the hash) without decompressing them."""
        if self.mappable:
            self._hashing.stored_bytes = self.size
            return
        if self._pipe is not None:
            self._pipe.stop()
        if self.file_hash is not None:  # hashed apart: only the stored size is wanted here
            self._hashing.stored_bytes = self.file_hash.size
            return
        while self._hashing.read(1 << 22):
            pass

    def digest(self) -> str | FileHash:
        """The stored bytes' hash ("" when not wanted), or for a regular file the FileHash
        that computes it when first asked."""
        if self.file_hash is not None:
            self._hashing.digest()  # shuts the unused worker down
            return self.file_hash
        return self._hashing.digest()

    def close(self) -> None:
        if self._pipe is not None:
            self._pipe.stop()
        self._hashing.close()
