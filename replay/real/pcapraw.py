"""pcap / pcapng bytes → raw records (ns timestamp, link type, original length, frame bytes).

The rewriting step needs each frame's exact bytes and its nanosecond timestamp; dpkt hands out
float seconds (≈240 ns resolution at today's epoch), so this small walker reads the containers
itself: classic pcap (µs and ns magic, either byte order) and pcapng (SHB byte order, IDB link
type, if_tsresol and if_tsoffset per interface, EPB/SPB/PB), optionally gzip/zstd/xz compressed.
It is on no hot path: the harness replays a few seconds of traffic.
"""

from __future__ import annotations

import gzip
import lzma
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from replay.errors import TraceError


@dataclass(frozen=True)
class Record:
    ts_ns: int
    linktype: int
    wire_len: int
    data: bytes


def _open_bytes(path: Path) -> bytes:
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        return gzip.decompress(raw)
    if raw[:4] == b"\x28\xb5\x2f\xfd":
        import zstandard

        return zstandard.ZstdDecompressor().decompressobj().decompress(raw)
    if raw[:6] == b"\xfd7zXZ\x00":
        return lzma.decompress(raw)
    return raw


def read_records(path: str | Path) -> Iterator[Record]:
    """Every frame of one capture file, in file order. A broken file is a TraceError."""
    p = Path(path)
    try:
        buf = _open_bytes(p)
    except OSError as e:
        raise TraceError(str(p), f"cannot read: {e.strerror or e}") from None
    except (EOFError, lzma.LZMAError, gzip.BadGzipFile) as e:
        raise TraceError(str(p), f"compressed stream is broken ({e})") from None
    if len(buf) < 4:
        raise TraceError(str(p), "too short to be a pcap or pcapng file", 0)
    if buf[:4] == b"\x0a\x0d\x0d\x0a":
        yield from _pcapng(buf, str(p))
    else:
        yield from _pcap(buf, str(p))


_PCAP_MAGIC = {
    b"\xd4\xc3\xb2\xa1": ("<", 1000),
    b"\xa1\xb2\xc3\xd4": (">", 1000),
    b"\x4d\x3c\xb2\xa1": ("<", 1),
    b"\xa1\xb2\x3c\x4d": (">", 1),
}


def _pcap(buf: bytes, name: str) -> Iterator[Record]:
    magic = _PCAP_MAGIC.get(buf[:4])
    if magic is None:
        raise TraceError(name, "not a pcap or pcapng file (unknown magic number)", 0)
    bo, mult = magic
    if len(buf) < 24:
        raise TraceError(name, "truncated pcap file header", 0)
    # link type: low 28 bits (the top bits carry FCS information, pcap-linktype(7))
    linktype = struct.unpack_from(bo + "I", buf, 20)[0] & 0x0FFFFFFF
    off = 24
    hdr = struct.Struct(bo + "IIII")
    while off < len(buf):
        if off + 16 > len(buf):
            raise TraceError(name, "truncated record header", off)
        sec, frac, incl, orig = hdr.unpack_from(buf, off)
        if off + 16 + incl > len(buf):
            raise TraceError(name, f"record of {incl} bytes runs past the end of the file", off)
        yield Record(sec * 1_000_000_000 + frac * mult, linktype, orig,
                     buf[off + 16 : off + 16 + incl])
        off += 16 + incl


def _pcapng(buf: bytes, name: str) -> Iterator[Record]:
    off = 0
    bo = "<"
    ifaces: list[tuple[int, int, int]] = []  # (linktype, ns per tick numerator/denominator, offset)
    while off + 12 <= len(buf):
        btype = struct.unpack_from(bo + "I", buf, off)[0]
        if btype == 0x0A0D0D0A:
            bom = buf[off + 8 : off + 12]
            bo = "<" if bom == b"\x4d\x3c\x2b\x1a" else ">" if bom == b"\x1a\x2b\x3c\x4d" else ""
            if not bo:
                raise TraceError(name, "bad byte-order magic in the section header", off)
            ifaces = []
        blen = struct.unpack_from(bo + "I", buf, off + 4)[0]
        if blen < 12 or blen % 4 or off + blen > len(buf):
            raise TraceError(name, f"bad block length {blen}", off)
        body = buf[off + 8 : off + blen - 4]
        if btype == 1:  # IDB
            linktype = struct.unpack_from(bo + "H", body, 0)[0]
            res, tsoff = 1_000_000, 0  # default if_tsresol 6: microseconds
            o = 8
            while o + 4 <= len(body):
                code, olen = struct.unpack_from(bo + "HH", body, o)
                val = body[o + 4 : o + 4 + olen]
                if code == 0:
                    break
                if code == 9 and olen >= 1:
                    r = val[0]
                    res = 2 ** (r & 0x7F) if r & 0x80 else 10 ** r
                elif code == 14 and olen == 8:
                    tsoff = struct.unpack(bo + "q", val)[0]
                o += 4 + ((olen + 3) & ~3)
            ifaces.append((linktype, res, tsoff))
        elif btype in (6, 2):  # EPB, obsolete PB
            if btype == 6:
                ifid, hi, lo, incl, orig = struct.unpack_from(bo + "IIIII", body, 0)
            else:
                ifid, _drops, hi, lo, incl, orig = struct.unpack_from(bo + "HHIIII", body, 0)
            if ifid >= len(ifaces):
                raise TraceError(name, f"packet names interface {ifid}, which is not defined", off)
            lt, res, tsoff = ifaces[ifid]
            ticks = (hi << 32) | lo
            ts_ns = tsoff * 1_000_000_000 + ticks * 1_000_000_000 // res
            yield Record(ts_ns, lt, orig, bytes(body[20 : 20 + incl]))
        elif btype == 3:  # SPB: no timestamp; interface 0
            orig = struct.unpack_from(bo + "I", body, 0)[0]
            if not ifaces:
                raise TraceError(name, "simple packet block before any interface", off)
            yield Record(0, ifaces[0][0], orig, bytes(body[4 : 4 + min(orig, len(body) - 4)]))
        off += blen
