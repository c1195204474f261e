"""Trace frames → a pcap addressed to the namespace's veth, each UDP datagram tagged with its index.

What is sent: the IPv4 frames addressed to the traced host (config `host.addresses`, or, when
empty, the most frequent IPv4 destination of the capture, and the notes say so). Frames to other
hosts would be `ignored` by the model, so they are not sent; IPv6 and non-IP frames are not sent
either (the namespace has IPv6 off), and the notes count them.

How a frame is changed: the Ethernet header is rebuilt (dst = the peer veth's MAC, src = the host
side's, VLAN tags dropped since the peer has no VLAN device), IPv4 dst → the namespace's address,
src → the host side's address (flows stay apart by their ports), header checksum recomputed, and
the TCP/UDP checksum updated incrementally (RFC 1624) so fragments and truncated captures keep a
checksum that matches what changed. A frame captured shorter than it was on the wire is padded
with zeros to its IP total length; its L4 checksum cannot be right, so a UDP one gets checksum 0
("none", RFC 768) and the notes count it.

The tag: the first 4 payload bytes of every UDP datagram (its first fragment, when fragmented) with
at least 4 payload bytes there become the packet's 0-based index in the rewritten file
(big-endian); the checksum, which covers the whole datagram, is updated for it. The receiver
reads it back, so each message it reads is matched to the exact packet sent (loops repeat
indices; the harness matches those by time). Payload bytes do not change any kernel decision
on this path.
"""

from __future__ import annotations

import ipaddress
import struct
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from replay.errors import ConfigError, TraceError
from replay.real.pcapraw import Record, read_records

# link types (pcap-linktype(7))
LT_NULL, LT_EN10MB, LT_RAW, LT_RAW12, LT_RAW14 = 0, 1, 101, 12, 14
LT_SLL, LT_IPV4, LT_SLL2 = 113, 228, 276
ETH_P_IP = 0x0800
VLAN_TPIDS = (0x8100, 0x88A8, 0x9100)


@dataclass
class Rewritten:
    """The rewritten capture and, per packet in it, where it came from."""

    path: Path
    frame: np.ndarray  # uint64: 1-based frame number in the input(s), per written packet
    ts_ns: np.ndarray  # int64: the input's capture time
    proto: np.ndarray  # uint8
    dport: np.ndarray  # int32, -1 when none
    sport: np.ndarray  # int32, -1 when none
    ip_len: np.ndarray  # int32: IPv4 total length (what the wire carries after Ethernet)
    tagged: np.ndarray  # bool: carries its index in the first 4 payload bytes
    frag: np.ndarray  # uint8: 0 not a fragment, 1 first fragment, 2 later fragment
    host_ip: str  # the traced host's address that was rewritten to the namespace's
    inferred: bool
    frames_total: int
    notes: list[str] = field(default_factory=list)

    @property
    def max_ip_len(self) -> int:
        return int(self.ip_len.max()) if len(self.ip_len) else 0


def _csum_add(s: int, word: int) -> int:
    s += word
    return (s & 0xFFFF) + (s >> 16)


def _fold(s: int) -> int:
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def _words(b: bytes) -> list[int]:
    return list(struct.unpack(f"!{len(b) // 2}H", b))


def update_csum(old_csum: int, old: bytes, new: bytes) -> int:
    """RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'), over the 16-bit words that changed."""
    s = (~old_csum) & 0xFFFF
    for w in _words(old):
        s = _csum_add(s, (~w) & 0xFFFF)
    for w in _words(new):
        s = _csum_add(s, w)
    return (~_fold(s)) & 0xFFFF


def ip_header_csum(hdr: bytes) -> int:
    """The IPv4 header checksum of `hdr` with its checksum field taken as zero."""
    h = hdr[:10] + b"\x00\x00" + hdr[12:]
    return (~_fold(sum(_words(h)))) & 0xFFFF


def _l3(rec: Record) -> tuple[bytes, int] | None:
    """The frame's IPv4 packet bytes and its EtherType, or None when there is no IP in it."""
    d, lt = rec.data, rec.linktype
    if lt == LT_EN10MB:
        if len(d) < 14:
            return None
        off, et = 12, struct.unpack_from("!H", d, 12)[0]
        while et in VLAN_TPIDS and len(d) >= off + 6:
            off += 4
            et = struct.unpack_from("!H", d, off)[0]
        return d[off + 2 :], et
    if lt in (LT_RAW, LT_RAW12, LT_RAW14, LT_IPV4):
        return (d, ETH_P_IP) if d and d[0] >> 4 == 4 else (d, 0x86DD)
    if lt == LT_SLL and len(d) >= 16:
        return d[16:], struct.unpack_from("!H", d, 14)[0]
    if lt == LT_SLL2 and len(d) >= 20:
        return d[20:], struct.unpack_from("!H", d, 0)[0]
    if lt == LT_NULL and len(d) >= 4:
        af = struct.unpack_from("=I", d, 0)[0]
        return d[4:], ETH_P_IP if af == 2 else 0
    return None


def _ipv4_dst(ip: bytes) -> bytes | None:
    if len(ip) >= 20 and ip[0] >> 4 == 4:
        return ip[16:20]
    return None


def choose_host(records: list[Record], addresses: list[str]) -> tuple[bytes, bool]:
    """The traced host's IPv4 address: the configured one, else the most frequent destination."""
    for a in addresses:
        try:
            ip = ipaddress.ip_address(a)
        except ValueError:
            continue  # a MAC address: the harness selects by IP only
        if isinstance(ip, ipaddress.IPv4Address):
            return ip.packed, False
    counts: Counter[bytes] = Counter()
    for r in records:
        l3 = _l3(r)
        if l3 is not None and l3[1] == ETH_P_IP:
            dst = _ipv4_dst(l3[0])
            if dst is not None:
                counts[dst] += 1
    if not counts:
        raise ConfigError("the trace has no IPv4 packet to replay into the namespace; "
                          "replay real sends IPv4 only")
    return counts.most_common(1)[0][0], True


def rewrite(
    paths: list[str | Path],
    out: Path,
    *,
    ns_ip: str,
    host_ip: str,
    ns_mac: str,
    host_mac: str,
    addresses: list[str] | None = None,
    tag: bool = True,
) -> Rewritten:
    """Read the traces, keep what the traced host receives, rewrite it onto the pair, write `out`.

    Returns per written packet its input frame number, ports and tag state.
    """
    records: list[Record] = []
    for p in paths:
        records.extend(read_records(p))
    if not records:
        raise TraceError(str(paths[0]), "no frames in the capture")
    target, inferred = choose_host(records, addresses or [])
    nsb = ipaddress.IPv4Address(ns_ip).packed
    hsb = ipaddress.IPv4Address(host_ip).packed
    eth = bytes.fromhex(ns_mac.replace(":", "")) + bytes.fromhex(host_mac.replace(":", "")) + \
        struct.pack("!H", ETH_P_IP)

    frame, ts, proto, dport, sport, iplen, tagged, frags = [], [], [], [], [], [], [], []
    n_other = n_non_ip = n_v6 = n_padded = n_vlan = 0
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "wb") as f:
        # classic pcap, nanosecond magic, LINKTYPE_ETHERNET: what tcpreplay reads back exactly
        f.write(struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 262144, LT_EN10MB))
        for i, r in enumerate(records):
            l3 = _l3(r)
            if l3 is None or l3[1] not in (ETH_P_IP, 0x86DD):
                n_non_ip += 1
                continue
            ip = l3[0]
            if l3[1] == 0x86DD or not ip or ip[0] >> 4 != 4:
                n_v6 += 1
                continue
            if len(ip) < 20 or _ipv4_dst(ip) != target:
                n_other += 1
                continue
            if r.linktype == LT_EN10MB and len(r.data) >= 14 and \
                    struct.unpack_from("!H", r.data, 12)[0] in VLAN_TPIDS:
                n_vlan += 1
            ihl = (ip[0] & 0x0F) * 4
            tot = struct.unpack_from("!H", ip, 2)[0]
            if ihl < 20 or len(ip) < ihl:
                n_other += 1
                continue
            pkt = bytearray(ip[:tot] if len(ip) >= tot else ip)
            short = len(pkt) < tot
            if short:
                pkt.extend(b"\x00" * (tot - len(pkt)))
                n_padded += 1
            old_addrs = bytes(pkt[12:20])
            new_addrs = hsb + nsb
            pkt[12:20] = new_addrs
            pkt[10:12] = struct.pack("!H", ip_header_csum(bytes(pkt[:ihl])))
            pr = pkt[9]
            frag_off = struct.unpack_from("!H", pkt, 6)[0]
            first = (frag_off & 0x1FFF) == 0
            fragment = 0 if (first and not frag_off & 0x2000) else 1 if first else 2
            sp = dp = -1
            is_tagged = False
            l4 = ihl
            if first and pr in (6, 17) and len(pkt) >= l4 + 8:
                sp, dp = struct.unpack_from("!HH", pkt, l4)
                co = l4 + (16 if pr == 6 else 6)
                if pr == 6 and len(pkt) < l4 + 18:
                    co = -1
                if co > 0:
                    c = struct.unpack_from("!H", pkt, co)[0]
                    if pr == 17 and short:
                        c = 0  # unknown payload: no checksum rather than a wrong one
                    elif not (pr == 17 and c == 0):  # UDP checksum 0 means none; keep it so
                        c = update_csum(c, old_addrs, new_addrs)
                        if tag and pr == 17 and tot - l4 - 8 >= 4:
                            old_tag = bytes(pkt[l4 + 8 : l4 + 12])
                            new_tag = struct.pack("!I", len(frame))
                            c = update_csum(c, old_tag, new_tag)
                            pkt[l4 + 8 : l4 + 12] = new_tag
                            is_tagged = True
                        if pr == 17 and c == 0:
                            c = 0xFFFF  # RFC 768: a computed 0 is sent as all ones
                    struct.pack_into("!H", pkt, co, c)
                if tag and pr == 17 and not is_tagged and tot - l4 - 8 >= 4:
                    # checksum-less (0) UDP: tag without a checksum to update
                    pkt[l4 + 8 : l4 + 12] = struct.pack("!I", len(frame))
                    is_tagged = True
            data = eth + bytes(pkt)
            # ethernet minimum: the peer sees at least 60 bytes (as a NIC pads); the IP total
            # length tells the stack where the packet ends (ip_rcv_core trims the rest)
            if len(data) < 60:
                data += b"\x00" * (60 - len(data))
            sec, ns = divmod(r.ts_ns, 1_000_000_000)
            f.write(struct.pack("<IIII", sec, ns, len(data), len(data)))
            f.write(data)
            frame.append(i + 1)
            ts.append(r.ts_ns)
            proto.append(pr)
            dport.append(dp)
            sport.append(sp)
            iplen.append(tot)
            tagged.append(is_tagged)
            frags.append(fragment)

    notes = []
    host_txt = str(ipaddress.IPv4Address(target))
    if inferred:
        notes.append(f"traced host inferred as {host_txt} (the most frequent IPv4 destination); "
                     "set host.addresses to choose another")
    for n, what in ((n_other, "addressed to other hosts (the model ignores them)"),
                    (n_v6, "IPv6 (not replayed: the namespace runs IPv4 only)"),
                    (n_non_ip, "not IP (ARP, LLDP, ...; not replayed)"),
                    (n_vlan, "VLAN-tagged: sent untagged"),
                    (n_padded, "captured shorter than sent: padded with zeros to the IP length")):
        if n:
            notes.append(f"{n} frames {what}")
    if not frame:
        raise ConfigError(f"no IPv4 frame of the trace is addressed to {host_txt}; "
                          "set host.addresses to the receiving host's address")
    return Rewritten(
        out, np.asarray(frame, np.uint64), np.asarray(ts, np.int64), np.asarray(proto, np.uint8),
        np.asarray(dport, np.int32), np.asarray(sport, np.int32), np.asarray(iplen, np.int32),
        np.asarray(tagged, bool), np.asarray(frags, np.uint8), host_txt, inferred, len(records),
        notes,
    )
