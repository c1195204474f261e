"""Capture files → batches of the frames table, streamed in bounded chunks.

For each input: open (decompressing by magic), recognise pcap / pcapng by the first four bytes,
then alternate between the compiled container walk (walk.py), which indexes every record wholly
inside the current buffer, and the compiled header decode (decode.py). The buffer holds at most
one read chunk plus one partial record, so memory does not grow with the file.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import pyarrow as pa

from replay.capture import codes as d
from replay.capture import walk as w
from replay.capture.decode import decode_frames
from replay.capture.flows import FlowTable
from replay.capture.source import DECOMPRESS_ERRORS, FileHash, Source
from replay.capture.split import scatter
from replay.capture.table import frames_batch
from replay.errors import TraceError

CHUNK = 16 << 20  # bytes per read: large enough to amortise the per-batch Python work
BATCH = 1 << 18  # frames per batch at most (bounds the decode arrays: ~100 B per frame)
MAX_UNSUPPORTED = 64  # distinct "unsupported-linktype:N" strings before N is dropped

# First four bytes → (format, big-endian, record header length, ns per fraction unit).
_PCAP_MAGICS = {
    bytes.fromhex("d4c3b2a1"): ("pcap", False, 16, 1000),
    bytes.fromhex("a1b2c3d4"): ("pcap", True, 16, 1000),
    bytes.fromhex("4d3cb2a1"): ("pcap-ns", False, 16, 1),
    bytes.fromhex("a1b23c4d"): ("pcap-ns", True, 16, 1),
    # Alexey Kuznetsov's patched libpcap: 24-byte records (+ ifindex, protocol, pkt_type, pad).
    bytes.fromhex("34cdb2a1"): ("pcap-modified", False, 24, 1000),
    bytes.fromhex("a1b2cd34"): ("pcap-modified", True, 24, 1000),
}
_PCAPNG_MAGIC = bytes.fromhex("0a0d0d0a")


@dataclass
class CaptureInput:
    """What was read from one input file."""

    path: str  # as given ('-' for stdin)
    format: str  # pcap, pcap-ns, pcap-modified, pcapng
    compression: str | None  # gzip | zstd | xz | bzip2 | None
    _digest: str | FileHash  # the stored bytes' hash (algorithm `hash`), or what computes it
    frames: int
    linktypes: list[int]
    warnings: list[str]
    untimed_frames: int = 0  # pcapng Simple Packet Blocks: no timestamp of their own
    sections: int = 0  # pcapng sections
    interfaces: int = 0
    bytes_decompressed: int = 0
    bytes_stored: int = 0
    first_frame: int = 0  # global frame number of this input's first frame (0 if none)
    hash: str = "sha256"  # sha256 | blake3: the algorithm of `digest`

    @property
    def digest(self) -> str:
        """Hash (algorithm `hash`) of the file's bytes as stored ("" when reading was asked not
        to hash). A regular file's is computed apart from the decode, on first use, and cached."""
        if isinstance(self._digest, FileHash):
            self._digest = self._digest.value()
        return self._digest

    @digest.setter
    def digest(self, value: str | FileHash) -> None:
        self._digest = value

    def start_hash(self) -> None:
        """Start computing the digest on a thread of its own, if it is still to be computed
        (for a caller with a core to spare now that the reading is over)."""
        if isinstance(self._digest, FileHash):
            self._digest.start()

    @property
    def sha256(self) -> str:
        """sha256 of the file's bytes as stored ("" when not hashed, or hashed with another
        algorithm)."""
        return self.digest if self.hash == "sha256" else ""

    def to_dict(self) -> dict[str, Any]:
        """Every field as plain JSON-able values; the digest under its algorithm's name
        (`sha256` or `blake3`)."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")}
        del out["hash"]
        out = {"path": out.pop("path"), "format": out.pop("format"),
               "compression": out.pop("compression"), self.hash: self.digest, **out}  # fmt: skip
        return out


@dataclass
class Decoded:
    """One batch between FrameReader.decoded and FrameReader.finish: the records of frames
    frame0.. as decoded, and their container fields."""

    frame0: int
    rec: np.ndarray  # FRAME_DTYPE
    byts: dict[str, np.ndarray]  # BYTE_COLUMNS
    ts: np.ndarray
    cap: np.ndarray
    wire: np.ndarray
    iface: np.ndarray
    lt: np.ndarray


@dataclass
class _Walk:
    """Per-input container state between walker calls."""

    fmt: str
    be: bool = False
    hdr_len: int = 16
    frac_ns: int = 1000
    linktype: int = 0
    st: np.ndarray = field(default_factory=lambda: np.zeros(w.ST_SIZE, np.int64))
    if_lt: np.ndarray = field(default_factory=lambda: np.zeros(16, np.int64))
    if_snap: np.ndarray = field(default_factory=lambda: np.zeros(16, np.int64))
    if_tsk: np.ndarray = field(default_factory=lambda: np.zeros(16, np.int64))
    if_tsoff: np.ndarray = field(default_factory=lambda: np.zeros(16, np.int64))

    def grow(self) -> None:
        for name in ("if_lt", "if_snap", "if_tsk", "if_tsoff"):
            a = getattr(self, name)
            b = np.zeros(a.shape[0] * 2, np.int64)
            b[: a.shape[0]] = a
            setattr(self, name, b)


class FrameReader:
    """Iterate over frames-table batches of several inputs; `inputs` fills as they are read.

    Frames are numbered 1.. across all inputs and flow ids are dense across all inputs.
    """

    def __init__(
        self,
        paths: Sequence[str | os.PathLike[str]],
        *,
        on_warning: Callable[[str], None] | None = None,
        batch_frames: int = BATCH,
        chunk_bytes: int = CHUNK,
        keep_frame: int | None = None,
        sha256: bool | str = True,
        hash: str = "sha256",
    ) -> None:
        self.paths = [os.fspath(p) for p in paths]
        # True: a regular file's sha256 is computed when first asked for (CaptureInput.sha256);
        # "background": on a thread of its own from the moment the file is opened; False: ""
        # (no hashing work at all).
        self.sha256 = sha256
        self.hash = hash  # the algorithm: sha256 (run.json, pipeline keys) or blake3 (ingest)
        self.on_warning = on_warning
        self.batch_frames = batch_frames
        self.chunk_bytes = chunk_bytes
        self.inputs: list[CaptureInput] = []
        self.flows = FlowTable()
        self.inner_flows = FlowTable()
        self.error_dict: list[str] = [e for e in d.ERRORS[1:] if e != "unsupported-linktype"]
        self._unsupported: dict[int, int] = {}
        self._generic_unsupported: int | None = None
        self.next_frame = 1  # the frame number after the last finished batch
        self._next_decoded = 1  # the frame number after the last decoded batch
        self.keep_frame = keep_frame
        self.kept: tuple[bytes, int, int, int, int] | None = None  # bytes, lt, ts, wire, iface

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        for item in self.decoded():
            yield self.finish(item)

    def decoded(self) -> Iterator[Decoded]:
        """The first half of the work per batch: walk and decode (compiled, in the calling
        thread). `finish` turns each item into its record batch, in order, possibly on another
        thread: `replay ingest` runs it beside the Parquet writer, so the decode of the next
        batch overlaps the column work of this one (flows, bitmaps, Arrow arrays)."""
        for path in self.paths:
            yield from self._read_one(path)

    # -- one input -----------------------------------------------------------------------------

    def _warn(self, info: CaptureInput, message: str) -> None:
        info.warnings.append(message)
        if self.on_warning is not None:
            self.on_warning(message)

    def _read_one(self, path: str) -> Iterator[Decoded]:
        src = Source(path, sha256=self.sha256, hash=self.hash)
        try:
            yield from self._read_source(src)
        finally:
            src.close()

    def _fill(self, src: Source, rem: np.ndarray, want: int, info: CaptureInput) -> tuple[np.ndarray, bool]:
        """A new buffer: rem followed by up to `want` fresh bytes; (buffer, at end of stream)."""
        buf = np.empty(rem.shape[0] + want, np.uint8)
        buf[: rem.shape[0]] = rem
        try:
            got = src.readinto(memoryview(buf)[rem.shape[0] :])
        except DECOMPRESS_ERRORS as e:
            self._warn(
                info,
                f"{src.path}: {src.compression} data is corrupt or cut short after "
                f"{src.offset} decompressed bytes ({e}); frames before it are kept",
            )
            return buf[: rem.shape[0]], True
        return buf[: rem.shape[0] + got], got < want

    def _read_source(self, src: Source) -> Iterator[Decoded]:
        path = src.path
        info = CaptureInput(path, "", src.compression, "", 0, [], [], hash=self.hash)
        self.inputs.append(info)
        if src.mappable:
            buf = src.window(0, self.chunk_bytes)
            eof = buf.shape[0] >= src.size
        else:
            buf, eof = self._fill(src, np.empty(0, np.uint8), self.chunk_bytes, info)
            if buf.shape[0] == 0 and info.warnings:
                what = f"{src.compression} data is corrupt or cut short before any capture data"
                raise TraceError(path, what)
        magic = bytes(buf[:4])
        after = f" (after {src.compression} decompression)" if src.compression else ""
        if magic in _PCAP_MAGICS:
            fmt, be, hdr_len, frac_ns = _PCAP_MAGICS[magic]
            if buf.shape[0] < 24:
                raise TraceError(path, f"pcap file header cut short ({buf.shape[0]} of 24 bytes)")
            order = ">" if be else "<"
            major, minor = np.frombuffer(buf[4:8].tobytes(), order + "u2")
            network = int(np.frombuffer(buf[20:24].tobytes(), order + "u4")[0])
            if major != 2:
                # libpcap sf-pcap.c and wiretap/libpcap.c read only major version 2.
                raise TraceError(path, f"pcap version {major}.{minor} is not supported (only 2.x)")
            if network & 0x03FF0000:
                # draft-ietf-opsawg-pcap §4: bits 16-25 of LinkType are reserved, must be 0;
                # libpcap and tshark refuse such files.
                raise TraceError(path, f"pcap header: reserved link-type bits are set (0x{network:08x})")
            if frac_ns == 1000:
                fmt, hdr_len = _pcap_variant(buf, be, fmt)
            walk = _Walk(fmt, be=be, hdr_len=hdr_len, frac_ns=frac_ns, linktype=network & 0xFFFF)
            info.linktypes = [walk.linktype]
            info.interfaces = 1
            pos = 24
        elif magic == _PCAPNG_MAGIC:
            walk = _Walk("pcapng")
            walk.st[w.ST_LAST_TS] = w.NO_TS
            pos = 0
        else:
            raise TraceError(path, f"not a pcap or pcapng file{after}")
        info.format = walk.fmt
        base = 0  # stream offset of buf[0]
        while True:
            n, npos, status, extra, arrays = self._walk(walk, buf, pos)
            if n:
                info.frames += n
                yield self._decode(buf, arrays, n, info)
            pos = npos
            if status == w.FULL:
                continue
            if status == w.GROW:
                walk.grow()
                continue
            if status == w.NEED:
                if eof:
                    if pos < buf.shape[0]:
                        have = buf.shape[0] - pos
                        self._warn(
                            info,
                            f"{path}: cut short at byte {base + pos}{after}: the record there "
                            f"needs {extra} bytes, {have} remain; "
                            f"{info.frames} complete frames kept",
                        )
                    break
                if src.mappable:
                    base += pos
                    pos = 0
                    buf = src.window(base, max(self.chunk_bytes, extra))
                    eof = base + buf.shape[0] >= src.size
                    continue
                want = max(self.chunk_bytes, extra - (buf.shape[0] - pos))
                rem = buf[pos:]
                base += pos
                pos = 0
                buf, eof = self._fill(src, rem, want, info)
                continue
            where = f"at byte {base + pos}{after}"
            if status == w.TOO_BIG:
                msg = f"record {where} claims {extra} bytes (more than {w.MAX_RECORD >> 20} MiB)"
            elif status == w.CORRUPT:
                msg = f"pcapng block {where}: {w.CORRUPT_REASONS[extra]}"
            elif status == w.SHB_VERSION:
                ver = f"{extra >> 16}.{extra & 0xFFFF}"
                if walk.st[w.ST_SECTIONS] == 0:
                    raise TraceError(path, f"pcapng version {ver} is not supported (only 1.0 and 1.2)")
                msg = f"pcapng section {where} has unsupported version {ver}"
            else:  # BAD_IFACE
                msg = f"pcapng packet {where} names interface {extra}, which its section lacks"
            self._warn(info, f"{path}: {msg}; reading stopped, {info.frames} frames before it kept")
            break
        # Hash the whole stored file even when reading stopped early.
        with contextlib.suppress(OSError):
            src.drain()
        info.digest = src.digest()
        info.bytes_decompressed = base + buf.shape[0]
        info.bytes_stored = src._hashing.stored_bytes
        if walk.fmt == "pcapng":
            info.sections = int(walk.st[w.ST_SECTIONS])
            info.interfaces = int(walk.st[w.ST_NIF])
            info.untimed_frames = int(walk.st[w.ST_UNTIMED])
            lts = walk.if_lt[: info.interfaces]
            info.linktypes = list(dict.fromkeys(int(x) for x in lts))

    def _walk(self, walk: _Walk, buf: np.ndarray, pos: int) -> tuple:
        cap_n = self.batch_frames
        # Lengths and interface ids in their Arrow column types: the batch takes them as they are.
        off = np.empty(cap_n, np.int64)
        cap = np.empty(cap_n, np.uint32)
        wire = np.empty(cap_n, np.uint32)
        ts = np.empty(cap_n, np.int64)
        if walk.fmt == "pcapng":
            ifc = np.empty(cap_n, np.uint32)
            n, npos, status, extra = w.walk_pcapng(
                buf, pos, walk.st, walk.if_lt, walk.if_snap, walk.if_tsk, walk.if_tsoff,
                cap_n, off, cap, wire, ts, ifc,
            )  # fmt: skip
            lt = walk.if_lt[ifc[:n]]
        else:
            n, npos, status, extra = w.walk_pcap(
                buf, pos, walk.be, walk.hdr_len, walk.frac_ns, cap_n, off, cap, wire, ts
            )
            ifc = np.zeros(n, np.uint32)
            lt = np.full(n, walk.linktype, np.int64)
        return n, npos, status, extra, (off[:n], cap[:n], wire[:n], ts[:n], ifc[:n], lt)

    def _decode(self, buf: np.ndarray, arrays: tuple, n: int, info: CaptureInput) -> Decoded:
        off, cap, wire, ts, ifc, lt = arrays
        rec = np.zeros(n, d.FRAME_DTYPE)
        byts = {name: np.zeros((n, width), np.uint8) for name, width in d.BYTE_COLUMNS}
        decode_frames(buf, off, cap, lt, rec, *byts.values())
        frame0 = self._next_decoded
        self._next_decoded += n
        k = (self.keep_frame or 0) - frame0
        if 0 <= k < n:
            o = int(off[k])
            raw = bytes(buf[o : o + int(cap[k])])
            self.kept = (raw, int(lt[k]), int(ts[k]), int(wire[k]), int(ifc[k]))
        if info.first_frame == 0:
            info.first_frame = frame0
        return Decoded(frame0, rec, byts, ts, cap, wire, ifc, lt)

    def finish(self, item: Decoded) -> pa.RecordBatch:
        """The record batch of one decoded item; items must come in the order `decoded` gave
        them (flow ids are numbered in order of first appearance)."""
        rec, byts, ts, lt = item.rec, item.byts, item.ts, item.lt
        n = rec.shape[0]
        c = scatter(rec)
        c.update(byts)
        untimed = ts == w.NO_TS
        if untimed.any():
            ts = _fill_untimed(ts, untimed)
        everything = np.ones(n, bool)
        flow = self.flows.assign(c["src"], c["dst"], c["proto"], c["sport"], c["dport"], everything)
        inner = (c["valid"] & d.V_INNER) != 0
        inner_flow = (
            self.inner_flows.assign(
                c["isrc"],
                c["idst"],
                c["inner_proto"],
                c["inner_sport"],
                c["inner_dport"],
                inner,
            )
            if inner.any()
            else np.zeros(n, np.uint32)
        )
        codes = self._error_codes(c["error"], lt)
        batch = frames_batch(
            frame0=item.frame0, ts=ts, cap=item.cap, wire=item.wire, iface=item.iface, lt=lt, c=c,
            flow=flow, inner_flow=inner_flow, error_codes=codes,
            error_dict=self.error_dict,
        )  # fmt: skip
        self.next_frame = item.frame0 + n
        return batch

    def _error_codes(self, err: np.ndarray, lt: np.ndarray) -> np.ndarray:
        """decode.ERRORS codes → indices into self.error_dict (−1 clean)."""
        # error_dict is ERRORS[1:] without the generic "unsupported-linktype": shift by 1 or 2.
        codes = err.astype(np.int16) - 1
        codes[err > d.E_LINKTYPE] -= 1
        bad = err == d.E_LINKTYPE
        if bad.any():
            for t in np.unique(lt[bad]):
                codes[bad & (lt == t)] = self._unsupported_code(int(t))
        return codes.astype(np.int8)

    def _unsupported_code(self, lt: int) -> int:
        if lt in self._unsupported:
            return self._unsupported[lt]
        if len(self._unsupported) >= MAX_UNSUPPORTED:
            if self._generic_unsupported is None:
                self.error_dict.append("unsupported-linktype")
                self._generic_unsupported = len(self.error_dict) - 1
            return self._generic_unsupported
        self.error_dict.append(f"unsupported-linktype:{lt}")
        self._unsupported[lt] = len(self.error_dict) - 1
        return self._unsupported[lt]


# Patched libpcaps wrote longer record headers under the two µs magics (wiretap/libpcap.c):
# (format, record header bytes), tried in this order.
_VARIANTS = {
    "pcap": (("pcap", 16), ("pcap-nokia", 20), ("pcap-ss990915", 24)),  # Nokia IPSO, RedHat 6.1
    "pcap-modified": (("pcap-modified", 24), ("pcap-ss991029", 28)),  # Kuznetsov, SuSE 6.3
}
_PROBE_RECORDS = 8


def _sane_records(buf: np.ndarray, be: bool, hdr_len: int) -> tuple[int, str]:
    """How far records read with this header length look right: (records, why it stopped:
    "end" exactly at the end of buf, "short" a record runs past it, "probe" enough seen,
    "insane" a header with a length over 256 KiB or a time more than a week off the first).
    Broken but standard files (a fraction ≥ 1 s, captured > original length) must still read
    as standard, so neither of those counts against a layout."""
    order = ">" if be else "<"
    pos, good = 24, 0
    end = buf.shape[0]
    sec0 = -1
    while good < _PROBE_RECORDS:
        if pos == end:
            return good, "end"
        if pos + hdr_len > end:
            return good, "short"
        hdr = np.frombuffer(buf[pos : pos + 16].tobytes(), order + "u4")
        sec, incl, orig = int(hdr[0]), int(hdr[2]), int(hdr[3])
        sec0 = sec if sec0 < 0 else sec0
        if incl > 262144 or orig > 262144 or abs(sec - sec0) > 7 * 86400:
            return good, "insane"
        if pos + hdr_len + incl > end:
            return good, "short"
        pos += hdr_len + incl
        good += 1
    return good, "probe"


def _pcap_variant(buf: np.ndarray, be: bool, fmt: str) -> tuple[str, int]:
    """Which record header a µs pcap uses, judged on its first records as wiretap does: the
    standard layout unless it meets a nonsensical header within two records while another
    layout reads cleanly to the end of the data or for _PROBE_RECORDS records."""
    variants = _VARIANTS[fmt]
    good, why = _sane_records(buf, be, variants[0][1])
    if why != "insane" or good >= 2:
        return variants[0]
    for v in variants[1:]:
        g, w2 = _sane_records(buf, be, v[1])
        if g > good and w2 in ("end", "probe"):
            return v
    return variants[0]


def _fill_untimed(ts: np.ndarray, untimed: np.ndarray) -> np.ndarray:
    """Simple Packet Blocks before any timestamp take the next timestamp seen (else 0)."""
    ts = ts.copy()
    timed = np.flatnonzero(~untimed)
    if timed.size == 0:
        ts[:] = 0
        return ts
    idx = np.searchsorted(timed, np.flatnonzero(untimed))
    idx = np.minimum(idx, timed.size - 1)
    ts[untimed] = ts[timed[idx]]
    return ts
