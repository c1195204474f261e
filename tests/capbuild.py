"""Build pcap / pcapng bytes by hand (struct), independent of the reader under test."""

from __future__ import annotations

import struct


def pcap(frames: list[tuple[int, int, bytes]], *, linktype: int = 1, be: bool = False,
         ns: bool = False, modified: bool = False, orig: list[int] | None = None,
         version: tuple[int, int] = (2, 4)) -> bytes:  # fmt: skip
    """frames: (sec, frac, data). The magic is written in the file's byte order."""
    o = ">" if be else "<"
    magic = 0xA1B2CD34 if modified else (0xA1B23C4D if ns else 0xA1B2C3D4)
    out = [struct.pack(o + "IHHiIII", magic, version[0], version[1], 0, 0, 262144, linktype)]
    for k, (sec, frac, data) in enumerate(frames):
        wire = orig[k] if orig else len(data)
        out.append(struct.pack(o + "IIII", sec, frac, len(data), wire))
        if modified:
            out.append(struct.pack(o + "iHBB", 2, 0x0800, 0, 0))
        out.append(data)
    return b"".join(out)


def _opts(o: str, opts: list[tuple[int, bytes]]) -> bytes:
    if not opts:
        return b""
    out = b""
    for code, val in opts:
        out += struct.pack(o + "HH", code, len(val)) + val + b"\0" * (-len(val) % 4)
    return out + struct.pack(o + "HH", 0, 0)


def block(btype: int, body: bytes, *, be: bool = False) -> bytes:
    o = ">" if be else "<"
    body += b"\0" * (-len(body) % 4)
    n = len(body) + 12
    return struct.pack(o + "II", btype, n) + body + struct.pack(o + "I", n)


def shb(*, be: bool = False, version: tuple[int, int] = (1, 0)) -> bytes:
    o = ">" if be else "<"
    return block(0x0A0D0D0A, struct.pack(o + "IHHq", 0x1A2B3C4D, *version, -1), be=be)


def idb(linktype: int, *, snaplen: int = 0, tsresol: int | None = None,
        tsoffset: int | None = None, be: bool = False) -> bytes:  # fmt: skip
    o = ">" if be else "<"
    opts = []
    if tsresol is not None:
        opts.append((9, bytes([tsresol])))
    if tsoffset is not None:
        opts.append((14, struct.pack(o + "q", tsoffset)))
    return block(1, struct.pack(o + "HHI", linktype, 0, snaplen) + _opts(o, opts), be=be)


def epb(iface: int, ticks: int, data: bytes, *, orig: int | None = None, be: bool = False) -> bytes:
    o = ">" if be else "<"
    body = struct.pack(o + "IIIII", iface, ticks >> 32, ticks & 0xFFFFFFFF, len(data),
                       len(data) if orig is None else orig) + data  # fmt: skip
    return block(6, body, be=be)


def pb(iface: int, ticks: int, data: bytes, *, be: bool = False) -> bytes:
    """Obsolete Packet Block (type 2): 16-bit interface id and drops count."""
    o = ">" if be else "<"
    body = struct.pack(o + "HHIIII", iface, 0, ticks >> 32, ticks & 0xFFFFFFFF, len(data),
                       len(data)) + data  # fmt: skip
    return block(2, body, be=be)


def spb(data: bytes, orig: int | None = None, *, be: bool = False) -> bytes:
    o = ">" if be else "<"
    return block(3, struct.pack(o + "I", len(data) if orig is None else orig) + data, be=be)


def udp4(src: str = "10.0.0.1", dst: str = "10.0.0.2", sport: int = 1000, dport: int = 2000,
         payload: bytes = b"x" * 10) -> bytes:  # fmt: skip
    """An Ethernet/IPv4/UDP frame built with dpkt."""
    import socket

    import dpkt

    u = dpkt.udp.UDP(sport=sport, dport=dport, data=payload)
    u.ulen = 8 + len(payload)
    ip = dpkt.ip.IP(src=socket.inet_aton(src), dst=socket.inet_aton(dst), p=17, ttl=64, data=u)
    ip.len = 20 + len(u)
    eth = dpkt.ethernet.Ethernet(dst=b"\x02\0\0\0\0\x02", src=b"\x02\0\0\0\0\x01", data=ip)
    return bytes(eth)
