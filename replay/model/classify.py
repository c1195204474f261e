"""Frame columns + [host] + [[app]] → which frames the host receives, what the stack does with
each (its kind), and which socket it is for.

Frames not addressed to the host are `ignored` (they never enter the model); the host's
addresses come from `[host] addresses` / `--local`, or are inferred from the capture (the
destination receiving most bytes) and said so (DESIGN.md "Which frames are received").
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numba import njit

from replay.model.groupby import group_rows, key_bytes16
from replay.model.layout import (
    K_ARP,
    K_BADIP,
    K_BADTCP,
    K_ICMP,
    K_ICMP_ECHO,
    K_ICMP_PING,
    K_IGMP,
    K_NONIP,
    K_NOPROTO,
    K_NOTLOCAL,
    K_TCP,
    K_TCP_CTRL,
    K_TRUNC,
    K_UDP,
)
from replay.model.match import match_mask, parse_match

ETH_P_ARP = 0x0806
BROADCAST_MAC = b"\xff" * 6
_V4_PREFIX = b"\x00" * 10 + b"\xff\xff"


@dataclass
class Columns:
    """The frame columns the model needs, as numpy arrays (nulls filled).

    Columns that take part in arithmetic are int64; those only compared, masked or copied into
    the engine's packet matrix keep the frames table's dtype (cap_len, ip_version, ethertype,
    the TCP and IP header fields, l4_csum_zero, frag, frag_mf, flow): widening each cost 8 MB
    and ~5 ms per million frames, most of it first-touched memory."""

    n: int
    ts_ns: np.ndarray
    wire_len: np.ndarray
    cap_len: np.ndarray
    ip_version: np.ndarray
    src: np.ndarray  # (n, 16) uint8
    dst: np.ndarray
    dst_mac: np.ndarray  # (n, 6) uint8, zeros if null
    has_mac: np.ndarray
    ethertype: np.ndarray
    proto: np.ndarray
    sport: np.ndarray
    dport: np.ndarray
    has_ports: np.ndarray
    tcp_flags: np.ndarray
    tcp_seq: np.ndarray
    tcp_ack: np.ndarray
    payload_len: np.ndarray
    ip_id: np.ndarray
    ttl: np.ndarray
    ip_tos: np.ndarray
    ip_df: np.ndarray
    ip_hlen: np.ndarray
    tcp_hlen: np.ndarray
    tcp_opt_hash: np.ndarray
    csum_zero: np.ndarray  # l4_csum_zero: a UDP checksum of 0
    frag: np.ndarray
    frag_off: np.ndarray  # byte offset of a fragment (0 if not one, or unknown)
    frag_mf: np.ndarray  # IP_MF / IP6_MF of a fragment
    has_frag: np.ndarray  # the fragment field was read (frag_off not null)
    tunnel: list[str | None]  # the frames' `tunnel` column
    inner_proto: np.ndarray  # the tunnelled packet's protocol and ports (0 if none)
    inner_sport: np.ndarray
    inner_dport: np.ndarray
    has_inner: np.ndarray
    flow: np.ndarray
    error: list[str | None]
    error_at: np.ndarray  # indices of the frames with an error (kinds() looks at those only)
    # the ICMP/ICMPv6 type of a frame that has an ICMP header (-1: none or not read), when the
    # frames table carries an `icmp_type` column (the capture decoder does not write one yet)
    icmp_type: np.ndarray | None = None


def _np(col: pa.ChunkedArray | pa.Array, fill: Any, dtype: Any = None) -> np.ndarray:
    """The column as numpy, nulls filled; widened to `dtype`, or (None) in the frames table's
    own dtype (a read-only view of a one-chunk table's buffer).

    Chunks are converted into one numpy array, never through combine_chunks: that copy would
    come from Arrow's allocator, whose freed memory numpy's later arrays cannot reuse (kept
    alive beside the engine's arrays, the narrow columns raised a run's peak RSS by ~50 MB per
    million frames)."""
    n = len(col)
    if col.null_count and col.null_count == n and not pa.types.is_null(col.type):
        # a header the trace never has (TCP fields of a UDP flood): no Arrow fill to convert;
        # zeros come from calloc, whose fresh pages cost nothing until written
        dt = dtype or col.type.to_pandas_dtype()
        return np.zeros(n, dt) if not fill else np.full(n, fill, dtype=dt)
    chunks = col.chunks if isinstance(col, pa.ChunkedArray) else [col]
    if len(chunks) == 1 or pa.types.is_null(col.type):
        arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
        if arr.null_count:
            arr = pc.fill_null(arr, fill)
        out = np.asarray(arr.to_numpy(zero_copy_only=False))
        return out if dtype is None else out.astype(dtype, copy=False)
    out = np.empty(n, dtype or col.type.to_pandas_dtype())
    pos = 0
    for c in chunks:
        if c.null_count:
            c = pc.fill_null(c, fill)
        out[pos : pos + len(c)] = c.to_numpy(zero_copy_only=False)
        pos += len(c)
    return out


def _fixed(col: pa.ChunkedArray | pa.Array, width: int) -> tuple[np.ndarray, np.ndarray]:
    """A fixed-size binary column as an (n, width) uint8 matrix (null rows zero) and its
    validity: a read-only view of a one-chunk table's buffer, else one numpy copy of the chunks
    (not combine_chunks': see _np)."""
    chunks = col.chunks if isinstance(col, pa.ChunkedArray) else [col]
    n = len(col)
    nulls = col.null_count
    valid = np.ones(n, dtype=bool) if nulls == 0 else np.concatenate(
        [np.asarray(c.is_valid()) for c in chunks])
    parts = []
    for c in chunks:
        buf = c.buffers()[1]
        if buf is None or len(c) == 0:
            parts.append(np.zeros((len(c), width), dtype=np.uint8))
            continue
        raw = np.frombuffer(buf, dtype=np.uint8)[c.offset * width : (c.offset + len(c)) * width]
        parts.append(raw.reshape(len(c), width))
    if not parts:
        return np.zeros((0, width), dtype=np.uint8), valid
    if len(parts) == 1 and nulls == 0:
        return parts[0], valid  # no 16 B per frame of copy
    out = np.concatenate(parts) if len(parts) > 1 else parts[0].copy()
    if nulls:
        out[~valid] = 0
    return out, valid


# Link types whose captures carry no Ethernet header, and the bytes of the header they carry
# instead: raw IP (12, 14, 101), IPv4/IPv6 (228, 229), BSD NULL/LOOP (0, 108: 4-byte family),
# Linux cooked SLL (113: 16 bytes) and SLL2 (276: 20 bytes). The host's NIC still received an
# Ethernet frame: the packet behind a 14-byte header, padded to ETH_ZLEN (60) — what the wire
# serialises (plus FCS, preamble and gap) and what the driver counts in rx_bytes (ixgbe adds
# skb->len before eth_type_trans pulls the header).
NOT_ETHERNET_HDR = {0: 4, 108: 4, 12: 0, 14: 0, 101: 0, 228: 0, 229: 0, 113: 16, 276: 20}
ETH_HLEN, ETH_ZLEN = 14, 60


def ethernet_len(wire_len: np.ndarray, linktype: np.ndarray) -> np.ndarray:
    """The length of the Ethernet frame the NIC received for each captured frame (wire_len
    itself when every frame is Ethernet)."""
    present = np.flatnonzero(np.bincount(linktype)) if len(linktype) else []
    fix = [int(lt) for lt in present if int(lt) in NOT_ETHERNET_HDR]
    if not fix:
        return wire_len  # Ethernet captures: nothing to change, no copy
    out = wire_len.copy()
    for lt in fix:  # a mask per link type present, not per link type known
        m = linktype == lt
        out[m] = np.maximum(wire_len[m] - NOT_ETHERNET_HDR[lt] + ETH_HLEN, ETH_ZLEN)
    return out


def columns(table: pa.Table) -> Columns:
    n = table.num_rows
    src, _ = _fixed(table["src"], 16)
    dst, _ = _fixed(table["dst"], 16)
    mac, has_mac = _fixed(table["dst_mac"], 6)
    sport = table["sport"]
    has_ports = np.asarray(sport.combine_chunks().is_valid()) if n else np.zeros(0, bool)
    err = table["error"].combine_chunks()
    errors = err.cast(pa.string()).to_pylist() if err.null_count < n else [None] * n
    error_at = np.flatnonzero(np.asarray(err.is_valid())) if err.null_count < n else \
        np.zeros(0, np.int64)
    return Columns(
        n=n,
        ts_ns=_np(table["ts_ns"], 0, np.int64),
        wire_len=ethernet_len(_np(table["wire_len"], 0, np.int64),
                              _np(table["linktype"], 1))
        if "linktype" in table.column_names else _np(table["wire_len"], 0, np.int64),
        cap_len=_np(table["cap_len"], 0),
        ip_version=_np(table["ip_version"], 0),
        src=src,
        dst=dst,
        dst_mac=mac,
        has_mac=has_mac,
        ethertype=_np(table["ethertype"], 0) if "ethertype" in table.column_names
        else np.zeros(n, np.uint16),
        proto=_np(table["proto"], 0, np.int64),
        sport=_np(sport, 0, np.int64),
        dport=_np(table["dport"], 0, np.int64),
        has_ports=has_ports,
        tcp_flags=_np(table["tcp_flags"], 0),
        tcp_seq=_np(table["tcp_seq"], 0),
        tcp_ack=_np(table["tcp_ack"], 0),
        payload_len=_np(table["payload_len"], 0, np.int64),
        ip_id=_np(table["ip_id"], 0),
        ttl=_np(table["ttl"], 0),
        ip_tos=_np(table["ip_tos"], 0),
        ip_df=_np(table["ip_df"], False),
        ip_hlen=_np(table["ip_hlen"], 0, np.int64),
        tcp_hlen=_np(table["tcp_hlen"], 0, np.int64),
        tcp_opt_hash=_np(table["tcp_opt_hash"], 0),
        csum_zero=_np(table["l4_csum_zero"], False),
        frag=_np(table["frag"], 0),
        frag_off=_np(table["frag_off"], 0, np.int64) if "frag_off" in table.column_names
        else np.zeros(n, np.int64),
        frag_mf=_np(table["frag_mf"], False) if "frag_mf" in table.column_names
        else np.zeros(n, np.bool_),
        has_frag=np.asarray(table["frag_off"].combine_chunks().is_valid())
        if "frag_off" in table.column_names and n else np.zeros(n, bool),
        tunnel=table["tunnel"].combine_chunks().cast(pa.string()).to_pylist()
        if n and table["tunnel"].null_count < n else [None] * n,
        inner_proto=_np(table["inner_proto"], 0, np.int64) if "inner_proto" in table.column_names
        else np.zeros(n, np.int64),
        inner_sport=_np(table["inner_sport"], 0, np.int64) if "inner_sport" in table.column_names
        else np.zeros(n, np.int64),
        inner_dport=_np(table["inner_dport"], 0, np.int64) if "inner_dport" in table.column_names
        else np.zeros(n, np.int64),
        has_inner=np.asarray(table["inner_proto"].combine_chunks().is_valid())
        if "inner_proto" in table.column_names and n else np.zeros(n, bool),
        flow=_np(table["flow"], 0),
        error=errors,
        error_at=error_at,
        icmp_type=_np(table["icmp_type"].cast(pa.int16()), -1, np.int64)
        if "icmp_type" in table.column_names
        else None,
    )


def addr16(text: str) -> bytes:
    a = ipaddress.ip_address(text)
    if isinstance(a, ipaddress.IPv4Address):
        return b"\x00" * 10 + b"\xff\xff" + a.packed
    return a.packed


def addr_text(b: bytes) -> str:
    if b[:12] == b"\x00" * 10 + b"\xff\xff":
        return str(ipaddress.IPv4Address(b[12:]))
    return str(ipaddress.IPv6Address(b))


@njit(cache=True)
def _multicast_rows(dst, v4, out):  # pragma: no cover - numba
    for i in range(dst.shape[0]):
        if v4[i]:
            d = dst[i, 12]
            out[i] = (224 <= d <= 239) or (d == 255 and dst[i, 13] == 255 and dst[i, 14] == 255
                                           and dst[i, 15] == 255)
        else:
            out[i] = dst[i, 0] == 0xFF


def _is_multicast(dst: np.ndarray, v4: np.ndarray) -> np.ndarray:
    """224.0.0.0/4, 255.255.255.255, ff00::/8: one compiled pass (the numpy form built five
    n-row temporaries, 0.05 s per million frames)."""
    out = np.empty(len(dst), np.bool_)
    _multicast_rows(np.ascontiguousarray(dst, dtype=np.uint8), np.ascontiguousarray(v4, np.bool_),
                    out)
    return out


@dataclass
class HostView:
    addresses: list[str]
    inferred: bool
    note: str
    received: np.ndarray  # bool per frame
    macs: list[bytes] = field(default_factory=list)
    # received for the host's MAC alone (another unicast IP; explicit addresses only): routing
    # finds no local route for them (layout.K_NOTLOCAL)
    notlocal: np.ndarray | None = None


def _rows_equal(a: np.ndarray, value: bytes) -> np.ndarray:
    """Rows of the (n, width) byte matrix `a` equal to `value`, compared a word at a time
    (`(a == v).all(axis=1)` builds an n x width temporary: 64 MB per 4M addresses)."""
    a = np.ascontiguousarray(a, dtype=np.uint8)
    width = a.shape[1]
    for word in (np.uint64, np.uint16):
        size = np.dtype(word).itemsize
        if width % size == 0:
            h = a.view(word)
            w = np.frombuffer(value, word)
            out = h[:, 0] == w[0]
            for k in range(1, width // size):
                out &= h[:, k] == w[k]
            return out
    return (a == np.frombuffer(value, np.uint8)).all(axis=1)


def _most_common_mac(macs: np.ndarray, sel: np.ndarray | None = None) -> bytes:
    """The most frequent 6-byte MAC (of the selected rows); ties go to the lowest in byte order
    (as np.unique sorts). A compiled group-by (model/groupby.py): np.unique sorted every row."""
    _, _, lo, _, counts = group_rows(macs, sel=sel, weight=np.ones(len(macs), np.int64))
    return int(lo[int(np.argmax(counts))]).to_bytes(8, "big")[2:]


def _bytes_per_address(addr: np.ndarray, nbytes: np.ndarray,
                       sel: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct 16-byte addresses of the selected rows in byte order (as np.unique sorts them),
    the bytes to each, and each row's index into them (-1 for rows not selected).

    A compiled hash group-by (model/groupby.py): np.unique over 16-byte void keys sorted with
    memcmp and took 0.3 s per million frames, a polars group-by 0.17 s with its copies."""
    ids, khi, klo, _, sums = group_rows(addr, sel=sel, weight=nbytes)
    return key_bytes16(khi, klo), sums.astype(np.float64), ids


def host_view(cols: Columns, addresses: list[str]) -> HostView:
    """Decide which frames the host receives (DESIGN.md "Which frames are received")."""
    n = cols.n
    ip = cols.ip_version > 0
    v4 = cols.ip_version == 4
    macs = [bytes.fromhex(a.replace(":", "")) for a in addresses if a.count(":") == 5 and len(a) == 17]
    ips = [a for a in addresses if not (a.count(":") == 5 and len(a) == 17)]
    inferred = False
    note = ""
    notlocal: np.ndarray | None = None
    inferred_hit: np.ndarray | None = None  # IP frames to the inferred address
    if not ips and not macs:
        inferred = True
        if ip.any():
            # the destination that receives the most bytes is the capturing host
            ua, sizes, ids = _bytes_per_address(cols.dst, cols.wire_len, ip)
            v4u = (ua[:, :12] == np.frombuffer(_V4_PREFIX, np.uint8)).all(axis=1)
            sizes = np.where(_is_multicast(ua, v4u), -1.0, sizes)
            b = int(np.argmax(sizes))
            best = ua[b].tobytes()
            ips = [addr_text(best)]
            inferred_hit = ids == b  # ids is -1 for non-IP frames
            sel = inferred_hit & cols.has_mac
            if sel.any():
                macs = [_most_common_mac(cols.dst_mac, sel)]
            note = (
                f"host addresses inferred from the capture: {', '.join(ips + [m.hex(':') for m in macs])}"
                " (the destination receiving the most bytes); set [host] addresses or --local to choose"
            )
        else:
            note = "no IP traffic in the capture: every frame is taken as received"
    received = np.zeros(n, dtype=bool)
    if ips:
        if inferred_hit is not None:
            hit = inferred_hit
        else:
            hit = np.zeros(n, dtype=bool)
            for a in ips:
                hit |= _rows_equal(cols.dst, addr16(a))
        received |= ip & (hit | _is_multicast(cols.dst, v4))
    if macs:
        bc = _rows_equal(cols.dst_mac, BROADCAST_MAC)
        mhit = np.zeros(n, dtype=bool)
        for m in macs:
            mhit |= _rows_equal(cols.dst_mac, m)
        nonip_ok = ~ip & cols.has_mac & (mhit | bc)
        received |= nonip_ok
        if not ips:
            received |= ip & cols.has_mac & mhit
        elif not inferred:
            # the NIC's filter passes a frame to its own MAC whatever its IP: ip_rcv takes it and
            # ip_route_input_slow (forwarding off) gives it ip_error: InAddrErrors (IPv6:
            # ip6_forward's error). Not with inferred addresses, which name one IP of the host
            notlocal = ip & cols.has_mac & mhit & ~received
            received |= notlocal
    if not ips and not macs:
        received[:] = True
    if not ip.any() and inferred:
        received[:] = True
    return HostView(ips + [m.hex(":") for m in macs], inferred, note, received, macs, notlocal)


def kinds(cols: Columns) -> np.ndarray:
    """What the stack does with each frame (layout.K_*)."""
    n = cols.n
    k = np.full(n, K_NOPROTO, dtype=np.int8)
    ip = cols.ip_version > 0
    k[~ip] = K_NONIP
    k[~ip & (cols.ethertype == ETH_P_ARP)] = K_ARP
    # an IP ethertype whose header could not be decoded (cut short): ip_rcv_core drops it as
    # PKT_TOO_SMALL, it is not an unknown protocol
    k[~ip & ((cols.ethertype == 0x0800) | (cols.ethertype == 0x86DD))] = K_TRUNC
    udp = ip & (cols.proto == 17)
    tcp = ip & (cols.proto == 6)
    icmp = ip & ((cols.proto == 1) | (cols.proto == 58))
    k[udp] = K_UDP
    k[tcp & (cols.payload_len > 0)] = K_TCP
    k[tcp & (cols.payload_len == 0)] = K_TCP_CTRL
    k[icmp] = K_ICMP
    # inet_init registers igmp_protocol under CONFIG_IP_MULTICAST (every distribution kernel):
    # an IGMP message is igmp_rcv's, not an unknown protocol
    k[ip & (cols.ip_version == 4) & (cols.proto == 2)] = K_IGMP
    if cols.icmp_type is not None:
        # icmp_rcv -> icmp_echo for ICMP_ECHO (8); icmpv6_rcv -> icmpv6_echo_reply for
        # ICMPV6_ECHO_REQUEST (128); a later fragment carries no type (its datagram takes the
        # first fragment's kind)
        echo = icmp & (cols.frag != 2) & (
            ((cols.proto == 1) & (cols.icmp_type == 8)) | ((cols.proto == 58) & (cols.icmp_type == 128)))
        k[echo] = K_ICMP_ECHO
        # ICMP_ECHOREPLY (0): icmp_pointers[0].handler = ping_rcv; ICMPV6_ECHO_REPLY (129):
        # icmpv6_rcv -> ping_rcv. ping_lookup by the echo id finds no ping socket: dropped
        ping = icmp & (cols.frag != 2) & (
            ((cols.proto == 1) & (cols.icmp_type == 0)) | ((cols.proto == 58) & (cols.icmp_type == 129)))
        k[ping] = K_ICMP_PING
    for i in cols.error_at.tolist():  # a Python loop over every frame cost 0.1 s per million
        e = cols.error[i]
        if e is None or not ip[i]:
            continue
        if e.startswith("truncated"):
            # a snaplen cut is not a broken packet on the wire: keep what was decoded
            if not cols.has_ports[i] and (udp[i] or tcp[i]):
                k[i] = K_TRUNC
        elif e == "bad-tcp-offset" and tcp[i]:
            # the IP header is fine: tcp_v4_rcv refuses th->doff < 5 (PKT_TOO_SMALL)
            k[i] = K_BADTCP
        else:
            k[i] = K_BADIP
    return k


_M32 = np.uint64(0xFFFFFFFF)


def _rol32(x: np.ndarray, k: int) -> np.ndarray:
    return ((x << np.uint64(k)) | (x >> np.uint64(32 - k))) & _M32


def jhash_3words(a: np.ndarray, b: np.ndarray, c: np.ndarray, initval: int) -> np.ndarray:
    """include/linux/jhash.h: jhash_3words = __jhash_nwords(a, b, c, initval + JHASH_INITVAL +
    (3 << 2)), i.e. each word plus the init value, then __jhash_final. uint32 per element."""
    iv = np.uint64((initval + 0xDEADBEEF + (3 << 2)) & 0xFFFFFFFF)
    a = (a.astype(np.uint64) + iv) & _M32
    b = (b.astype(np.uint64) + iv) & _M32
    c = (c.astype(np.uint64) + iv) & _M32
    # __jhash_final
    c = ((c ^ b) - _rol32(b, 14)) & _M32
    a = ((a ^ c) - _rol32(c, 11)) & _M32
    b = ((b ^ a) - _rol32(a, 25)) & _M32
    c = ((c ^ b) - _rol32(b, 16)) & _M32
    a = ((a ^ c) - _rol32(c, 4)) & _M32
    b = ((b ^ a) - _rol32(a, 14)) & _M32
    c = ((c ^ b) - _rol32(b, 24)) & _M32
    return c.astype(np.uint32)


def _le32(b4: np.ndarray) -> np.ndarray:
    """(n, 4) network-order bytes read as the u32 an x86 kernel sees for a __be32 ((__force u32))."""
    b = b4.astype(np.uint64)
    return b[:, 0] | (b[:, 1] << np.uint64(8)) | (b[:, 2] << np.uint64(16)) | (b[:, 3] << np.uint64(24))


def ehash(cols: Columns, secret: int) -> np.ndarray:
    """The hash reuseport_select_sock is given: udp_ehashfn / inet_ehashfn (and their IPv6
    forms) of the packet seen from the receiving socket: laddr = destination, lport = destination
    port (host order), faddr = source, fport = source port as the __be16 it is in the header.

    IPv4: __inet_ehashfn = jhash_3words(laddr, faddr, lport << 16 | fport, secret).
    IPv6: __inet6_ehashfn = jhash_3words(laddr.s6_addr32[3], __ipv6_addr_jhash(faddr, secret),
    lport << 16 | fport, secret), __ipv6_addr_jhash(a) = jhash_3words(a32[0] ^ a32[1], a32[2],
    a32[3], secret). The kernel draws the secret at random (net_get_random_once, plus the netns
    hash_mix; separate ones for UDP, TCP and IPv6); `host.ehash-secret` stands for all of them.
    """
    secret &= 0xFFFFFFFF
    dport = cols.dport.astype(np.uint64)
    sport = cols.sport.astype(np.uint64)
    fport = ((sport & np.uint64(0xFF)) << np.uint64(8)) | (sport >> np.uint64(8))  # __be16 on LE
    ports = ((dport << np.uint64(16)) | fport) & _M32
    v4 = jhash_3words(_le32(cols.dst[:, 12:16]), _le32(cols.src[:, 12:16]), ports, secret)
    fh = jhash_3words(_le32(cols.src[:, 0:4]) ^ _le32(cols.src[:, 4:8]), _le32(cols.src[:, 8:12]),
                      _le32(cols.src[:, 12:16]), secret)
    v6 = jhash_3words(_le32(cols.dst[:, 12:16]), fh.astype(np.uint64), ports, secret)
    return np.where(cols.ip_version == 6, v6, v4).astype(np.uint32)


def sockets(cols: Columns, apps: list[dict[str, Any]], secret: int = 0) -> np.ndarray:
    """Socket index (= [[app]] index) per frame, -1 if none.

    The first matching [[app]] wins; [[app]]s with the same match and reuseport = true form a
    SO_REUSEPORT group: reuseport_select_sock_by_hash (net/core/sock_reuseport.c) starts at
    reciprocal_scale(ehash, num_socks) = (hash * n) >> 32 over every member and steps to the next
    one that is not connected (sk_state != TCP_ESTABLISHED) — connected members get only what
    their own lookup finds first.
    """
    n = cols.n
    sock = np.full(n, -1, dtype=np.int32)
    taken = np.zeros(n, dtype=bool)
    groups: dict[str, list[int]] = {}
    for i, a in enumerate(apps):
        key = str(a["match"]) if a.get("reuseport") else f"#{i}"
        groups.setdefault(key, []).append(i)
    hashes: np.ndarray | None = None
    for members in groups.values():
        m = parse_match(str(apps[members[0]]["match"]))
        mask = match_mask(m, cols.proto, cols.sport, cols.dport, cols.has_ports, cols.src, cols.dst)
        mask &= ~taken & ((cols.proto == 17) | (cols.proto == 6))
        if len(members) == 1:
            sock[mask] = members[0]
        else:
            if hashes is None:
                hashes = ehash(cols, secret)
            k = len(members)
            start = ((hashes[mask].astype(np.uint64) * np.uint64(k)) >> np.uint64(32)).astype(np.int64)
            open_ = np.array([not apps[x].get("connected") for x in members], dtype=bool)
            if not open_.any():
                continue  # every member connected: reuseport_select_sock finds none
            # the first unconnected member at or after `start`, wrapping around
            nxt = np.empty(k, np.int64)
            for s0 in range(k):
                j = s0
                while not open_[j]:
                    j = (j + 1) % k
                nxt[s0] = j
            sock[mask] = np.asarray(members, dtype=np.int32)[nxt[start]]
        taken |= mask
    return sock


def infer_apps(cols: Columns, received: np.ndarray, ncpus: int) -> tuple[list[dict[str, Any]], str]:
    """No [[app]] configured: one reader per local (proto, port) carrying ≥1% of the received
    TCP/UDP packets (at most 8), on CPUs counted down from the last, and say so."""
    l4 = received & cols.has_ports & ((cols.proto == 17) | (cols.proto == 6))
    if not l4.any():
        return [], "no [[app]] configured and no TCP/UDP traffic: nothing is read by an application"
    key = cols.proto[l4] * 65536 + cols.dport[l4]
    u, c = np.unique(key, return_counts=True)
    # a local TCP port that receives SYNs (no ACK) has a listener behind it
    syn = l4 & (cols.proto == 6) & ((cols.tcp_flags & 0x12) == 0x02)
    listening = set(np.unique(6 * 65536 + cols.dport[syn]).tolist())
    order = np.argsort(-c, kind="stable")
    apps = []
    for j in order[:8]:
        if c[j] < 0.01 * l4.sum():
            break
        proto = "udp" if u[j] // 65536 == 17 else "tcp"
        port = int(u[j] % 65536)
        apps.append({
            "name": f"{proto}{port}",
            "match": f"{proto} dport {port}",
            "cpu": (ncpus - 1 - len(apps)) % ncpus,
            "batch": 64 if proto == "tcp" else 1,
            "listen": int(u[j]) in listening,
        })
    desc = ", ".join(f"{a['match']}{' (listening: SYNs seen)' if a['listen'] else ''}"
                     f" on CPU {a['cpu']}" for a in apps)
    return apps, (
        f"no [[app]] configured: inferred one reader per busy local port ({desc}); "
        "add [[app]] tables to model your application"
    )


@dataclass
class Fragments:
    """Per frame: its reassembly key and byte range (KERNEL.md §1 row 9; ip_fragment.c)."""

    key: np.ndarray  # dense id of (saddr, daddr, id, protocol) — IPv6: (saddr, daddr, id) — or -1
    off: np.ndarray  # first byte of the fragment in the datagram's IP payload
    end: np.ndarray  # one past its last byte
    peer: np.ndarray  # dense id of the IPv4 source (its inet_peer), -1 otherwise
    nkeys: int
    npeers: int
    v6_of_key: np.ndarray


def _l4_header_len(cols: Columns) -> np.ndarray:
    """Transport header bytes the decoder took off payload_len in a first fragment."""
    p = cols.proto
    hdr = np.zeros(cols.n, np.int64)
    hdr[(p == 17) | (p == 136) | (p == 1) | (p == 58)] = 8
    hdr[p == 6] = cols.tcp_hlen[p == 6]
    hdr[p == 132] = 12
    hdr[p == 33] = 16
    return hdr


def fragments(cols: Columns, fkind: np.ndarray) -> Fragments:
    """Reassembly keys of the fragments (frames with frag != 0 whose fragment field was read and
    whose IP header ip_rcv accepts). ip_find keys IPv4 queues on (saddr, daddr, id, protocol)
    (frag_v4_compare_key); IPv6 on (saddr, daddr, id) (frag_v6_compare_key: no next header)."""
    n = cols.n
    isf = (cols.frag != 0) & cols.has_frag & (cols.ip_version > 0) \
        & (fkind != K_BADIP) & (fkind != K_TRUNC) & (fkind != K_NOTLOCAL)
    key = np.full(n, -1, np.int64)
    peer = np.full(n, -1, np.int64)
    first = cols.frag_off == 0
    flen = cols.payload_len + np.where(first, _l4_header_len(cols), 0)
    off = cols.frag_off.copy()
    end = off + flen
    nkeys = npeers = 0
    v6k = np.zeros(0, np.int64)
    if isf.any():
        v6 = cols.ip_version[isf] == 6
        rec = np.zeros((int(isf.sum()), 40), np.uint8)
        rec[:, :16] = cols.src[isf]
        rec[:, 16:32] = cols.dst[isf]
        rec[:, 32:36] = cols.ip_id[isf].astype(">u4").view(np.uint8).reshape(-1, 4)
        rec[:, 36] = np.where(v6, 0, cols.proto[isf])
        rec[:, 37] = v6
        kv = np.ascontiguousarray(rec).view(np.dtype((np.void, 40))).ravel()
        uk, inv = np.unique(kv, return_inverse=True)
        key[isf] = inv
        nkeys = len(uk)
        v6k = np.frombuffer(b"".join(u.tobytes() for u in uk), np.uint8).reshape(-1, 40)[:, 37]
        v6k = v6k.astype(np.int64)
        sel4 = isf & (cols.ip_version == 4)
        if sel4.any():
            sv = np.ascontiguousarray(cols.src[sel4]).view(np.dtype((np.void, 16))).ravel()
            us, pinv = np.unique(sv, return_inverse=True)
            peer[sel4] = pinv
            npeers = len(us)
    return Fragments(key, off, end, peer, nkeys, npeers, v6k)


def ip_summed(cols: Columns, driver_kind: int, rx_checksumming: bool) -> np.ndarray:
    """skb->ip_summed per frame as the driver sets it, plus the GRO-validates and IPv6 zero-UDP-
    checksum bits (layout.CSUM_*).

    CHECKSUM_UNNECESSARY drivers (ixgbe_rx_checksum, i40e_rx_checksum) vouch only for TCP/UDP
    whose L4 checksum the NIC checked, never an IP fragment. mlx5e_handle_csum gives
    CHECKSUM_COMPLETE to every IP frame longer than 64 bytes (fragments too) and falls back to
    CHECKSUM_UNNECESSARY for short ones (short_frame: "CQE csum doesn't cover padding octets"),
    CHECKSUM_NONE for the rest. `ethtool -K rx off`: CHECKSUM_NONE for all. A zero UDP checksum
    over IPv4 means none was sent: udp4_csum_init takes it as CHECKSUM_UNNECESSARY.
    """
    from replay.model.layout import (
        CSUM_COMPLETE,
        CSUM_GRO_V,
        CSUM_NONE,
        CSUM_UNNECESSARY,
        CSUM_ZERO6,
    )

    n = cols.n
    ip = cols.ip_version > 0
    v6 = cols.ip_version == 6
    l4 = ip & ((cols.proto == 6) | (cols.proto == 17)) & (cols.frag == 0) & cols.has_ports
    kind = np.full(n, CSUM_NONE, np.int8)  # int8: a per-frame column copied into pk
    if rx_checksumming and driver_kind == CSUM_UNNECESSARY:
        kind[l4] = CSUM_UNNECESSARY
    elif rx_checksumming and driver_kind == CSUM_COMPLETE:
        short = cols.wire_len <= 64
        kind[ip & ~short] = CSUM_COMPLETE
        kind[l4 & short] = CSUM_UNNECESSARY
    udp = cols.proto == 17
    kind[l4 & udp & ~v6 & cols.csum_zero] = CSUM_UNNECESSARY
    # inet_gro_receive / ipv6_gro_receive hand the packet to tcp4/udp4_gro_receive only when it
    # is not a fragment and (IPv4) has no options: there the checksum is validated
    gro_v = l4 & (v6 | (cols.ip_hlen == 20))
    zero6 = ip & v6 & udp & cols.csum_zero & (cols.frag != 2) & cols.has_ports
    kind[gro_v] += CSUM_GRO_V
    kind[zero6] += CSUM_ZERO6
    return kind


# Outer headers before the inner IP header, by tunnel: VXLAN 8 + inner Ethernet 14 (RFC 7348);
# GENEVE 8 + Ethernet 14 (options unknown: taken as none, RFC 8926); GRE 4 (no key/sequence)
_ENCAP = {"vxlan": 22, "geneve": 22, "gre": 4}


def tunnels(cols: Columns, fkind: np.ndarray, tuns: list[dict[str, Any]], apps: list[dict[str, Any]],
            secret: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per frame: (TUN_* if this host decapsulates it, inner kind, inner socket, inner payload).

    A frame is decapsulated when a [[tunnel]] of its type exists and the outer header is the one
    that tunnel listens on: UDP to its port (vxlan_rcv / geneve_udp_encap_recv are the encap_rcv of
    a UDP socket on it), or IP protocol 47 (gre_rcv). The inner socket is found on the inner
    protocol and ports (the inner addresses are not in the frames table: `host` terms of a match
    see the outer ones). The inner payload length assumes a 20-byte inner IPv4 header.
    """
    from replay.model.layout import (
        K_ARP,
        K_ICMP,
        K_NOPROTO,
        K_TCP,
        K_UDP,
        TUN_GENEVE,
        TUN_GRE,
        TUN_NONE,
        TUN_VXLAN,
    )

    n = cols.n
    tun = np.full(n, TUN_NONE, np.int8)  # the TUN_* and K_* codes fit int8 (pk widens them)
    if not tuns or n == 0:
        return tun, np.zeros(n, np.int8), np.full(n, -1, np.int64), np.zeros(n, np.int64)
    code = {"vxlan": TUN_VXLAN, "geneve": TUN_GENEVE, "gre": TUN_GRE}
    names = np.array([t or "" for t in cols.tunnel], dtype=object)
    # a VXLAN/GENEVE frame whose inner Ethernet frame is not IP is decapsulated too: taken as ARP
    # (the frames table does not carry the inner ethertype)
    l2 = np.array([t in ("vxlan", "geneve") for t in cols.tunnel], dtype=bool) if n else \
        np.zeros(0, bool)
    clean = np.array([e is None for e in cols.error], dtype=bool)
    base = (cols.has_inner | (l2 & clean)) & (cols.frag == 0) & (cols.ip_version > 0)
    enc = np.zeros(n, np.int64)
    for t in tuns:
        ty = str(t["type"])
        m = base & (names == ty)
        if ty == "gre":
            m &= cols.proto == 47
        else:
            m &= (cols.proto == 17) & (cols.dport == int(t["port"]))
        tun[m] = code[ty]
        enc[m] = _ENCAP[ty]
    ip = cols.inner_proto
    ikind = np.full(n, K_NOPROTO, np.int8)
    ikind[ip == 17] = K_UDP
    ikind[ip == 6] = K_TCP
    ikind[(ip == 1) | (ip == 58)] = K_ICMP
    ikind[~cols.has_inner] = K_ARP
    l4h = np.where(ip == 6, 20, np.where((ip == 17) | (ip == 1) | (ip == 58), 8, 0))
    # payload_len is the outer UDP payload (VXLAN/GENEVE) or the IP payload (GRE)
    ilen = np.maximum(cols.payload_len - enc - 20 - l4h, 0)
    import dataclasses

    inner = dataclasses.replace(cols, proto=ip, sport=cols.inner_sport, dport=cols.inner_dport,
                                has_ports=cols.has_inner & ((ip == 6) | (ip == 17)))
    isock = sockets(inner, apps, secret).astype(np.int64)
    isock[tun == TUN_NONE] = -1
    return tun, ikind, isock, np.where(tun != TUN_NONE, ilen, 0)


def inner_view(cols: Columns, cfg: dict[str, Any]) -> Columns:
    """The columns with each frame a [[tunnel]] decapsulates showing its inner protocol/ports."""
    import dataclasses

    tuns = list(cfg.get("tunnel", []))
    if not tuns:
        return cols
    tun = tunnels(cols, np.zeros(cols.n, np.int64), tuns, [], 0)[0]
    m = tun != 0
    ip = cols.inner_proto
    return dataclasses.replace(
        cols, proto=np.where(m, ip, cols.proto), sport=np.where(m, cols.inner_sport, cols.sport),
        dport=np.where(m, cols.inner_dport, cols.dport),
        has_ports=np.where(m, cols.has_inner & ((ip == 6) | (ip == 17)), cols.has_ports))
