"""Test helper: a pcap file (or .gz) → timestamps (int ns) and frames, read back with dpkt."""

from __future__ import annotations

import gzip
import hashlib
import struct
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import dpkt
import numpy as np


@dataclass
class Read:
    ts_ns: np.ndarray
    frames: list[bytes]
    wire_len: list[int]
    nano: bool
    linktype: int


def raw(path: Path) -> bytes:
    data = Path(path).read_bytes()
    return gzip.decompress(data) if str(path).endswith(".gz") else data


def read(path: Path) -> Read:
    data = raw(path)
    magic, linktype = struct.unpack_from("<I", data)[0], struct.unpack_from("<I", data, 20)[0]
    rdr = dpkt.pcap.Reader(__import__("io").BytesIO(data))
    ts, frames = [], []
    for t, buf in rdr:
        # dpkt gives Decimal seconds for nanosecond files and float for microsecond ones.
        ts.append(int(t * 10**9) if isinstance(t, Decimal) else round(t * 1e6) * 1000)
        frames.append(bytes(buf))
    # Original lengths from the record headers (dpkt's iterator does not hand them out).
    wire, off = [], 24
    while off < len(data):
        _, _, caplen, length = struct.unpack_from("<IIII", data, off)
        wire.append(length)
        off += 16 + caplen
    return Read(np.asarray(ts, dtype=np.int64), frames, wire, magic == 0xA1B23C4D, linktype)


def sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def checksums_ok(frame: bytes) -> bool:
    """IPv4 header and TCP/UDP/ICMP checksums verify (RFC 1071: the sum over the covered bytes,
    checksum included, is 0xFFFF). A UDP checksum of 0 means none; fragments other than the
    first are skipped (their checksum is in the first)."""
    eth = dpkt.ethernet.Ethernet(frame)
    ip = eth.data
    if isinstance(ip, dpkt.ip.IP):
        hdr = frame[14 : 14 + ip.hl * 4]
        if dpkt.in_cksum(hdr) != 0:
            return False
        if ip.mf or ip.offset:
            return True
        seg = frame[14 + ip.hl * 4 : 14 + ip.len]
        pseudo = ip.src + ip.dst + struct.pack(">xBH", ip.p, len(seg))
    elif isinstance(ip, dpkt.ip6.IP6):
        seg = frame[54 : 54 + ip.plen]
        pseudo = ip.src + ip.dst + struct.pack(">I3xB", len(seg), ip.nxt)
    else:
        return True
    proto = ip.p if isinstance(ip, dpkt.ip.IP) else ip.nxt
    if proto == dpkt.ip.IP_PROTO_UDP and seg[6:8] == b"\0\0":
        return True
    if proto == dpkt.ip.IP_PROTO_ICMP:
        return dpkt.in_cksum(seg) == 0
    return dpkt.in_cksum(pseudo + seg) == 0
