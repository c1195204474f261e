"""A path or `-` → decompressed byte chunks, the stored bytes' sha256, and the compression.

Compression is recognised by magic bytes, never by the file name (a `.pcap` may be gzip, a
`.gz` may be plain). The sha256 of the bytes as stored is computed on a helper thread while the
caller walks the data: hashlib releases the GIL on large updates, so on 2+ cores it costs no
wall time.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma
import os
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from typing import BinaryIO

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
DECOMPRESS_ERRORS: tuple[type[BaseException], ...] = (EOFError, OSError, lzma.LZMAError, ValueError)
try:
    import zstandard

    DECOMPRESS_ERRORS = (*DECOMPRESS_ERRORS, zstandard.ZstdError)
except ImportError:  # pragma: no cover - zstandard is a dependency
    zstandard = None  # type: ignore[assignment]


class _HashingReader(io.RawIOBase):
    """Reads the stored bytes, hashing them on a worker thread in order."""

    def __init__(self, raw: BinaryIO, prefix: bytes) -> None:
        self._raw = raw
        self._prefix = prefix
        self._sha = hashlib.sha256()
        self._pool = ThreadPoolExecutor(max_workers=1)
        self._pending: Future[None] | None = None
        self.stored_bytes = 0
        if prefix:
            self._hash(prefix)

    def _hash(self, data: bytes | memoryview) -> None:
        if self._pending is not None:
            self._pending.result()
        self.stored_bytes += len(data)
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

    def sha256(self) -> str:
        """Hash of everything read so far (the caller reads to the end first)."""
        if self._pending is not None:
            self._pending.result()
            self._pending = None
        self._pool.shutdown()
        return self._sha.hexdigest()

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        if self._raw is not sys.stdin.buffer:
            self._raw.close()
        super().close()


class Source:
    """One input: `read(n)` gives decompressed bytes; `sha256()` once fully read."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
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
        self._hashing = _HashingReader(raw, head)
        self.compression: str | None = None
        for magic, name in MAGICS:
            if head.startswith(magic):
                self.compression = name
                break
        self._stream: BinaryIO
        hr: BinaryIO = self._hashing  # type: ignore[assignment]
        if self.compression == "gzip":
            self._stream = gzip.GzipFile(fileobj=hr, mode="rb")
        elif self.compression == "zstd":
            self._stream = zstandard.ZstdDecompressor().stream_reader(hr, read_across_frames=True)
        elif self.compression == "xz":
            self._stream = lzma.LZMAFile(hr)
        elif self.compression == "bzip2":
            self._stream = bz2.BZ2File(hr)
        else:
            self._stream = hr
        self.offset = 0  # decompressed bytes handed out so far

    def read(self, n: int) -> bytes:
        """Up to n decompressed bytes (b'' at the end). Raises DECOMPRESS_ERRORS when corrupt."""
        parts = []
        got = 0
        while got < n:
            data = self._stream.read(n - got)
            if not data:
                break
            parts.append(data)
            got += len(data)
        out = parts[0] if len(parts) == 1 else b"".join(parts)
        self.offset += len(out)
        return out

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
            while got < n:
                data = self._stream.read(n - got)
                if not data:
                    break
                arr[got : got + len(data)] = data
                got += len(data)
        self.offset += got
        return got

    def drain(self) -> None:
        """Read the rest of the stored bytes (for the hash) without decompressing them."""
        while self._hashing.read(1 << 22):
            pass

    def sha256(self) -> str:
        return self._hashing.sha256()

    def close(self) -> None:
        try:
            self._stream.close()
        except DECOMPRESS_ERRORS:
            pass
        self._hashing.close()
