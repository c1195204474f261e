"""Frame bytes → header columns: link layer, VLAN/MPLS, IPv4/IPv6, TCP/UDP, tunnels (compiled).

`decode_frames` walks every frame of a record index once, writing one `FRAME_DTYPE` record and
the byte columns (MACs, addresses) per frame (split.py then turns the records into columns). A
frame that cannot be decoded further keeps what was decoded and gets an error code (ERRORS);
nothing here raises on bad input, and every load is bounds-checked against the captured length.

Helpers are inlined (inline="always"): a call to a compiled function that takes arrays costs
reference-count updates per array, which made the decode loop 2x slower when measured.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from replay.capture.binary import u16be, u32be
from replay.capture.codes import (
    B_CSUM_ZERO,
    B_DF,
    B_MF,
    E_GENEVE,
    E_GRE,
    E_IHL,
    E_IPLEN,
    E_IPV4,
    E_IPV6,
    E_IPV6EXT,
    E_IPVER,
    E_OK,
    E_TCP,
    E_TCPOFF,
    E_UDP,
    E_VXLAN,
    ET_IPV4,
    ET_IPV6,
    ET_PPP,
    ET_TEB,
    T_4IN6,
    T_6IN4,
    T_6IN6,
    T_GENEVE,
    T_GRE,
    T_IPIP,
    T_VXLAN,
    UDP_GENEVE,
    UDP_VXLAN,
    V_CSUM,
    V_DF,
    V_DST,
    V_ETYPE,
    V_FRAG,
    V_ICMP,
    V_INNER,
    V_IP,
    V_IPID,
    V_PORTS,
    V_SRC,
    V_TCP,
)  # fmt: skip
from replay.capture.linklayer import ethernet_header, follow_ethertype, link_header


@njit(cache=True, inline="always")
def _ipv4(b, p, end):
    """(err, hlen, proto, l4 offset, l4 length, frag, id, ttl, tos, df); err ≠ 0 → only err valid
    except that addresses are readable when err is E_IHL/E_IPV4 with ≥ 20 bytes."""
    if p + 20 > end:
        return E_IPV4, 0, 0, p, 0, 0, 0, 0, 0, 0
    if b[p] >> 4 != 4:
        return E_IPVER, 0, 0, p, 0, 0, 0, 0, 0, 0
    hl = (b[p] & 0xF) * 4
    tot = u16be(b, p + 2)
    ipid = u16be(b, p + 4)
    ff = u16be(b, p + 6)
    ttl = b[p + 8]
    proto = b[p + 9]
    tos = b[p + 1]
    df = (ff >> 14) & 1
    fo = ff & 0x1FFF
    frag = 0
    if fo:
        frag = 2
    elif ff & 0x2000:
        frag = 1
    if hl < 20:
        return E_IHL, hl, proto, p, 0, frag, ipid, ttl, tos, df
    if tot == 0:  # TSO/GSO capture on the sending host: the length is left to the NIC
        tot = end - p
    if tot < hl:
        return E_IPLEN, hl, proto, p, 0, frag, ipid, ttl, tos, df
    if p + hl > end:
        return E_IPV4, hl, proto, p, 0, frag, ipid, ttl, tos, df
    return E_OK, hl, proto, p + hl, tot - hl, frag, ipid, ttl, tos, df


@njit(cache=True, inline="always")
def _ipv6(b, p, end):
    """(err, hlen incl. extension headers, proto, l4 offset, l4 length, frag, id, has id,
    hop limit, traffic class)."""
    if p + 8 > end:
        return E_IPV6, 0, 0, p, 0, 0, 0, 0, 0, 0
    if b[p] >> 4 != 6:
        return E_IPVER, 0, 0, p, 0, 0, 0, 0, 0, 0
    tc = ((b[p] & 0xF) << 4) | (b[p + 1] >> 4)
    plen = u16be(b, p + 4)
    nh = np.int64(b[p + 6])
    hop = b[p + 7]
    if p + 40 > end:  # the fixed fields are there, the addresses perhaps in part
        return E_IPV6, 40, nh, p, 0, 0, 0, 0, hop, tc
    if plen == 0:  # jumbogram or TSO capture
        plen = end - p - 40
    q = p + 40
    frag = 0
    ipid = 0
    has_id = 0
    # Extension headers (RFC 8200 §4): hop-by-hop 0, routing 43, destination 60, fragment 44,
    # AH 51 (RFC 4302: length in 4-byte units minus 2), mobility 135, HIP 139, shim6 140.
    while nh == 0 or nh == 43 or nh == 60 or nh == 44 or nh == 51 or nh == 135 or nh == 139 or nh == 140:
        if q + 8 > end:
            return E_IPV6EXT, q - p, nh, q, 0, frag, ipid, has_id, hop, tc
        nxt = np.int64(b[q])
        if nh == 44:
            fo = u16be(b, q + 2)
            ipid = u32be(b, q + 4)
            has_id = 1
            ln = 8
            if fo >> 3:
                frag = 2
            elif fo & 1:
                frag = 1
        elif nh == 51:
            ln = (b[q + 1] + 2) * 4
        else:
            ln = (b[q + 1] + 1) * 8
        q += ln
        nh = nxt
        if frag == 2:
            break
    l4len = plen - (q - p - 40)
    if l4len < 0:
        return E_IPLEN, q - p, nh, q, 0, frag, ipid, has_id, hop, tc
    return E_OK, q - p, nh, q, l4len, frag, ipid, has_id, hop, tc


@njit(cache=True, inline="always")
def _frag_field(b, p, end, v):
    """(offset in bytes, MF) of a fragment's IPv4 header at p, or of the IPv6 fragment header
    found by walking the extension headers again (only called for fragments, which are rare)."""
    if v == 4:
        ff = u16be(b, p + 6)
        return (ff & 0x1FFF) * 8, (ff >> 13) & 1
    nh = np.int64(b[p + 6])
    q = p + 40
    while nh == 0 or nh == 43 or nh == 60 or nh == 51 or nh == 135 or nh == 139 or nh == 140:
        if q + 8 > end:
            return 0, 0
        ln = (b[q + 1] + 2) * 4 if nh == 51 else (b[q + 1] + 1) * 8
        nh = np.int64(b[q])
        q += ln
    if nh != 44 or q + 8 > end:
        return 0, 0
    fo = u16be(b, q + 2)
    return fo & 0xFFF8, fo & 1


@njit(cache=True, nogil=True)
def _fnv1a(b, p, q):
    h = np.uint32(2166136261)
    for k in range(p, q):
        h = (h ^ np.uint32(b[k])) * np.uint32(16777619)
    return h


@njit(cache=True, inline="always")
def _copy_addr(b, p, v, arr, i):
    if v == 4:  # IPv4-mapped IPv6, ::ffff:a.b.c.d (RFC 4291 §2.5.5.2)
        for k in range(10):
            arr[i, k] = 0
        arr[i, 10] = 0xFF
        arr[i, 11] = 0xFF
        for k in range(4):
            arr[i, 12 + k] = b[p + k]
    else:
        for k in range(16):
            arr[i, k] = b[p + k]


# What an IP header cut short still gives (_ip_any).
OK_NONE, OK_FIXED, OK_SRC, OK_ALL = 0, 1, 2, 3


@njit(cache=True, inline="always")
def _ipv4_dst_offset(b, p, hl, end):
    """Where an IPv4 header with options has the destination tshark shows as ip.dst, or −1.

    Wireshark's IP dissector walks the options for a source route first (measured against
    tshark 4.x with crafted headers: tests/test_capture_decode.py): ip.dst is the last address
    of the last loose/strict source route option (131/137, length ≥ 7, inside the header), else
    the header's own; and where the walk (type, then length, of each option up to the header's
    end, stopping at End of List or a length below 2) runs off the captured bytes, tshark shows
    no destination at all."""
    q = p + 20
    hend = p + hl
    dst = p + 16
    while q < hend:
        if q >= end:
            return -1
        t = b[q]
        if t == 0:  # End of Option List
            break
        if t == 1:  # No Operation
            q += 1
            continue
        if q + 1 >= end:
            return -1
        ln = np.int64(b[q + 1])
        if ln < 2:
            break
        if (t == 0x83 or t == 0x89) and ln >= 7 and q + ln <= hend:
            dst = q + ln - 4
        q += ln
    if dst + 4 > end:
        return -1
    return dst


@njit(cache=True, inline="always")
def _ip_any(b, p, end, v):
    """IPv4 or IPv6 → (err, hlen, proto, l4p, l4len, frag, id, has_id, ttl, tos, df, has_df,
    src offset, dst offset, what is readable: OK_NONE, OK_FIXED (version, proto, ttl, tos),
    OK_SRC (+ source), OK_ALL (+ destination)).

    As tshark shows them: an IPv6 header cut short still has its fixed fields and whichever
    address is whole; an IPv4 header with a bad IHL or total length has no addresses, one whose
    options run past the capture may lack its destination (_ipv4_dst_offset)."""
    if v == 4:
        err, hl, proto, l4p, l4len, frag, ipid, ttl, tos, df = _ipv4(b, p, end)
        ok = OK_ALL
        dp = p + 16
        if err == E_IPVER or (err == E_IPV4 and hl == 0 and (end - p < 16 or b[p] >> 4 != 4)):
            ok = OK_NONE
        elif err == E_IPV4 and hl == 0:
            ok = OK_SRC  # cut inside the header after the source address: tshark shows it
        elif err == E_IHL or err == E_IPLEN:  # noqa: SIM109
            ok = OK_FIXED  # tshark stops at a bad header or total length: no addresses
        elif hl > 20:
            # the fixed 20 bytes are there; the destination is wherever the options put it
            dp = _ipv4_dst_offset(b, p, hl, end)
            ok = OK_ALL if dp >= 0 else OK_SRC
        return err, hl, proto, l4p, l4len, frag, ipid, 1, ttl, tos, df, 1, p + 12, dp, ok
    err, hl, proto, l4p, l4len, frag, ipid, has_id, hop, tc = _ipv6(b, p, end)
    ok = OK_ALL
    if err == E_IPVER or p + 8 > end:
        ok = OK_NONE
    elif p + 24 > end:
        ok = OK_FIXED
    elif p + 40 > end:
        ok = OK_SRC
    return err, hl, proto, l4p, l4len, frag, ipid, has_id, hop, tc, 0, 0, p + 8, p + 24, ok


@njit(cache=True, inline="always")
def _ports(b, p, end, proto):
    """(has ports, sport, dport) of a TCP/UDP/UDP-Lite/SCTP/DCCP header at p."""
    if (proto == 6 or proto == 17 or proto == 136 or proto == 132 or proto == 33) and p + 4 <= end:
        return 1, u16be(b, p), u16be(b, p + 2)
    return 0, 0, 0


@njit(cache=True, nogil=True)
def _inner(b, p, end, v, ether, rec, isrc, idst, i):
    """Decode a tunnel's payload far enough for the inner 5-tuple; returns an error code."""
    if ether:
        err, p, et = ethernet_header(b, p, end)
        if err != E_OK or et < 0:
            return err
        err, p, et, v = follow_ethertype(b, p, end, et, rec, i, False)
        if err != E_OK or v == 0:
            return err
    err, _, proto, l4p, _, frag, _, _, _, _, _, _, sp, dp, ok = _ip_any(b, p, end, v)
    if ok != OK_ALL:
        return err
    _copy_addr(b, sp, v, isrc, i)
    _copy_addr(b, dp, v, idst, i)
    rec[i].inner_version = v
    rec[i].inner_proto = proto
    rec[i].valid |= V_INNER
    if err == E_OK and frag != 2:
        hp, s, d = _ports(b, l4p, end, proto)
        if hp:
            rec[i].inner_sport = s
            rec[i].inner_dport = d
    return err


@njit(cache=True, nogil=True)
def _gre(b, p, end):
    """GRE (RFC 2784/2890) and enhanced GRE (PPTP, RFC 2637) → (err, p, ether, ip version)."""
    if p + 4 > end:
        return E_GRE, p, 0, 0
    fl = u16be(b, p)
    pt = u16be(b, p + 2)
    q = p + 4
    if fl & 0x8000:  # checksum present (+ reserved1)
        q += 4
    if fl & 0x2000:  # key present (PPTP: payload length + call id)
        q += 4
    if fl & 0x1000:  # sequence number present
        q += 4
    if (fl & 7) == 1 and fl & 0x0080:  # enhanced GRE acknowledgment number
        q += 4
    if q > end:
        return E_GRE, p, 0, 0
    if pt == ET_IPV4:
        return E_OK, q, 0, 4
    if pt == ET_IPV6:
        return E_OK, q, 0, 6
    if pt == ET_TEB:
        return E_OK, q, 1, 0
    if pt == ET_PPP:
        if q + 2 <= end and b[q] == 0xFF and b[q + 1] == 0x03:  # address/control (RFC 1662)
            q += 2
        if q >= end:
            return E_OK, q, 0, 0
        if b[q] & 1:  # protocol field compression: one byte
            pp = np.int64(b[q])
            q += 1
        else:
            if q + 2 > end:
                return E_OK, q, 0, 0
            pp = u16be(b, q)
            q += 2
        if pp == 0x21:
            return E_OK, q, 0, 4
        if pp == 0x57:
            return E_OK, q, 0, 6
    return E_OK, q, 0, 0


@njit(cache=True, nogil=True)
def decode_frames(buf, off, cap, lt, rec, dmac, smac, src, dst, isrc, idst):
    """Decode frames i = 0..n-1 at buf[off[i]:off[i]+cap[i]] with link type lt[i] into the
    records rec (FRAME_DTYPE) and the byte columns (BYTE_COLUMNS)."""
    n = off.shape[0]
    for i in range(n):
        r = rec[i]
        r.valid = 0
        r.tunnel = -1
        r.error = E_OK
        p = off[i]
        end = p + cap[i]
        err, p, et, v = link_header(buf, p, end, lt[i], rec, dmac, smac, i)
        if err == E_OK and v == 0 and et >= 0:
            err, p, et, v = follow_ethertype(buf, p, end, et, rec, i, True)
        if et >= 0:
            r.ethertype = et
            r.valid |= V_ETYPE
        if err != E_OK or v == 0:
            r.error = err
            continue
        if v == 4 and p < end and buf[p] >> 4 == 6:
            v = 6  # IPv6 under the IPv4 ethertype: decoded as IPv6, as Wireshark's ip does
        err, hl, proto, l4p, l4len, frag, ipid, has_id, ttl, tos, df, has_df, sp, dp, ok = _ip_any(
            buf, p, end, v
        )
        if ok == OK_NONE:
            r.error = err
            continue
        if ok >= OK_SRC:
            _copy_addr(buf, sp, v, src, i)
            r.valid |= V_SRC
        if ok == OK_ALL:
            _copy_addr(buf, dp, v, dst, i)
            r.valid |= V_DST
        r.ip_version = v
        r.proto = proto
        r.ttl = ttl
        r.ip_tos = tos
        r.ip_hlen = min(hl, 255)
        r.frag = frag
        r.valid |= V_IP
        if frag != 0:
            fo, mf = _frag_field(buf, p, end, v)
            r.frag_off = fo
            r.valid |= V_FRAG | (B_MF if mf else 0)
        if has_id:
            r.ip_id = ipid
            r.valid |= V_IPID
        if has_df:
            if df:
                r.valid |= B_DF
            r.valid |= V_DF
        if err != E_OK:
            r.error = err
            continue
        if frag == 2:  # later fragment: no transport header in this frame
            r.payload_len = l4len
            continue
        # the transport header ends where the IP length says, as for tshark's tvb and the
        # kernel's pskb_trim_rcsum: Ethernet padding or a mutated length is not a header
        l4end = min(end, l4p + l4len)
        if proto == 6:
            if l4p + 4 <= l4end:
                r.sport = u16be(buf, l4p)
                r.dport = u16be(buf, l4p + 2)
                r.valid |= V_PORTS
            if l4p + 20 > l4end:
                r.error = E_TCP
                continue
            thl = (buf[l4p + 12] >> 4) * 4
            r.tcp_seq = u32be(buf, l4p + 4)
            r.tcp_ack = u32be(buf, l4p + 8)
            r.tcp_flags = ((buf[l4p + 12] & 0x0F) << 8) | buf[l4p + 13]
            r.tcp_hlen = thl
            if u16be(buf, l4p + 16) == 0:
                r.valid |= B_CSUM_ZERO
            r.valid |= V_TCP | V_CSUM
            if thl < 20:
                r.error = E_TCPOFF
                continue
            # Options differ → GRO does not merge (net/ipv4/tcp_offload.c tcp_gro_receive).
            r.tcp_opt_hash = _fnv1a(buf, l4p + 20, min(l4p + thl, l4end)) if thl > 20 else 0
            r.payload_len = max(l4len - thl, 0)
            if l4p + thl > l4end:
                r.error = E_TCP
            continue
        if proto == 17 or proto == 136:
            if l4p + 8 > l4end:
                if l4p + 4 <= l4end:
                    r.sport = u16be(buf, l4p)
                    r.dport = u16be(buf, l4p + 2)
                    r.valid |= V_PORTS
                r.error = E_UDP
                continue
            sport = u16be(buf, l4p)
            dport = u16be(buf, l4p + 2)
            ulen = u16be(buf, l4p + 4)
            r.sport = sport
            r.dport = dport
            if u16be(buf, l4p + 6) == 0:
                r.valid |= B_CSUM_ZERO
            r.valid |= V_PORTS | V_CSUM
            if frag == 0 and 8 <= ulen <= l4len:
                r.payload_len = ulen - 8
            else:
                r.payload_len = max(l4len - 8, 0)
            if frag != 0 or proto != 17:
                continue
            q = l4p + 8
            if dport == UDP_VXLAN or sport == UDP_VXLAN:
                r.tunnel = T_VXLAN
                if q + 8 > l4end:
                    r.error = E_VXLAN
                    continue
                r.error = _inner(buf, q + 8, l4end, 0, True, rec, isrc, idst, i)
            elif dport == UDP_GENEVE or sport == UDP_GENEVE:
                r.tunnel = T_GENEVE
                if q + 8 > l4end:
                    r.error = E_GENEVE
                    continue
                q2 = q + 8 + (buf[q] & 0x3F) * 4
                pt = u16be(buf, q + 2)
                if q2 > l4end:
                    r.error = E_GENEVE
                elif pt == ET_TEB:
                    r.error = _inner(buf, q2, l4end, 0, True, rec, isrc, idst, i)
                elif pt == ET_IPV4 or pt == ET_IPV6:  # noqa: SIM109
                    r.error = _inner(buf, q2, l4end, 4 if pt == ET_IPV4 else 6, False, rec, isrc, idst, i)
            continue
        if proto == 132 or proto == 33:  # SCTP, DCCP: ports only
            hp, s, d = _ports(buf, l4p, l4end, proto)
            if hp:
                r.sport = s
                r.dport = d
                r.valid |= V_PORTS
            r.payload_len = max(l4len - (12 if proto == 132 else 16), 0)
            continue
        if proto == 1 or proto == 58:  # ICMP/ICMPv6: 8-byte header
            r.payload_len = max(l4len - 8, 0)
            if l4p < l4end:
                # the type decides what icmp_rcv / icmpv6_rcv do with it (echo -> a reply,
                # echo reply -> ping_rcv, ...) and which per-type counter it bumps
                r.icmp_type = buf[l4p]
                r.valid |= V_ICMP
            continue
        r.payload_len = l4len
        if frag != 0:
            continue
        if proto == 47:
            r.tunnel = T_GRE
            gerr, q, ether, iv = _gre(buf, l4p, l4end)
            if gerr != E_OK:
                r.error = gerr
            elif ether or iv:
                r.error = _inner(buf, q, l4end, iv, ether == 1, rec, isrc, idst, i)
        elif proto == 4:
            r.tunnel = T_IPIP if v == 4 else T_4IN6
            r.error = _inner(buf, l4p, l4end, 4, False, rec, isrc, idst, i)
        elif proto == 41:
            r.tunnel = T_6IN4 if v == 4 else T_6IN6
            r.error = _inner(buf, l4p, l4end, 6, False, rec, isrc, idst, i)
