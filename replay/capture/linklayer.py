"""Link-layer bytes → where the network layer starts: Ethernet, SLL/SLL2, raw IP, NULL/LOOP,
802.11 (+ radiotap), Frame Relay, then VLAN/QinQ, MPLS and PPPoE (compiled, inlined into decode.py).

Each function returns (error code, offset after the header, ethertype or −1[, IP version]); the
MAC columns and the `valid`, `vlan`, `tunnel` record fields are written as found.
"""

from __future__ import annotations

from numba import njit

from replay.capture.binary import u16be, u16le, u32be, u32le
from replay.capture.codes import (
    E_ETH,
    E_FDDI,
    E_FRELAY,
    E_IP,
    E_IPVER,
    E_LINKTYPE,
    E_LLC,
    E_MPLS,
    E_NULL,
    E_OK,
    E_PPPOE,
    E_RADIOTAP,
    E_SLL,
    E_SLL2,
    E_TR,
    E_VLAN,
    E_WLAN,
    ET_IPV4,
    ET_IPV6,
    ET_MPLS_MC,
    ET_MPLS_UC,
    ET_PPPOE_SESSION,
    ET_QINQ,
    ET_QINQ_OLD,
    ET_VLAN,
    T_MPLS,
    V_DMAC,
    V_SMAC,
    V_VLAN,
)  # fmt: skip


@njit(cache=True, inline="always")
def follow_ethertype(b, p, end, et, rec, i, outer):
    """Follow VLAN tags, MPLS labels and PPPoE to the network layer: (err, p, ethertype, ipver)."""
    while True:
        if et == ET_VLAN or et == ET_QINQ or et == ET_QINQ_OLD:  # noqa: SIM109 (numba: no tuple `in`)
            if p + 4 > end:
                return E_VLAN, p, -1, 0
            if outer and not (rec[i].valid & V_VLAN):
                rec[i].vlan = u16be(b, p) & 0xFFF
                rec[i].valid |= V_VLAN
            et = u16be(b, p + 2)
            p += 4
        elif et == ET_MPLS_UC or et == ET_MPLS_MC:  # noqa: SIM109
            if outer and rec[i].tunnel < 0:
                rec[i].tunnel = T_MPLS
            while True:
                if p + 4 > end:
                    return E_MPLS, p, -1, 0
                bos = b[p + 2] & 1
                p += 4
                if bos:
                    break
            # RFC 3032 carries no payload type: the IP version nibble is what every decoder uses.
            if p >= end:
                return E_MPLS, p, -1, 0
            nib = b[p] >> 4
            if nib == 4:
                return E_OK, p, ET_IPV4, 4
            if nib == 6:
                return E_OK, p, ET_IPV6, 6
            return E_OK, p, et, 0
        elif et == ET_PPPOE_SESSION:
            if p + 8 > end:
                return E_PPPOE, p, -1, 0
            ppp = u16be(b, p + 6)
            p += 8
            if ppp == 0x0021:
                return E_OK, p, ET_IPV4, 4
            if ppp == 0x0057:
                return E_OK, p, ET_IPV6, 6
            return E_OK, p, et, 0
        else:
            break
    if et == ET_IPV4:
        return E_OK, p, et, 4
    if et == ET_IPV6:
        return E_OK, p, et, 6
    return E_OK, p, et, 0


@njit(cache=True, inline="always")
def snap_ethertype(b, q):
    """The SNAP protocol ID at q+3 as an ethertype, or −1 when the OUI at q makes it something
    else. Only three OUIs carry ethertypes (Wireshark's dissect_snap, RFC 1042): 00-00-00
    (encapsulated Ethernet), 00-00-F8 (Cisco's 802.1H bridge tunnel) and 08-00-07 (Apple's
    AppleTalk); any other OUI's PIDs are that vendor's own numbering (Cisco's CDP 0x2000, ...)."""
    o0, o1, o2 = b[q], b[q + 1], b[q + 2]
    if (o0 == 0 and o1 == 0 and (o2 == 0 or o2 == 0xF8)) or (o0 == 8 and o1 == 0 and o2 == 7):
        return u16be(b, q + 3)
    return -1


@njit(cache=True, inline="always")
def _llc(b, p, end):
    """802.2 LLC → (err, p, ethertype): only SNAP (AA AA 03, OUI, type) leads anywhere."""
    if p + 3 > end:
        return E_LLC, p, -1
    if b[p] == 0xAA and b[p + 1] == 0xAA and b[p + 2] == 0x03:
        if p + 8 > end:
            return E_LLC, p, -1
        et = snap_ethertype(b, p + 3)
        return E_OK, (p + 8 if et >= 0 else p), et
    return E_OK, p, -1


@njit(cache=True, inline="always")
def ethernet_header(b, p, end):
    """Ethernet II / 802.3 header → (err, p after it, ethertype or −1)."""
    if p + 14 > end:
        return E_ETH, p, -1
    et = u16be(b, p + 12)
    if et <= 1500:  # IEEE 802.3 length field: LLC follows
        return _llc(b, p + 14, end)
    return E_OK, p + 14, et


@njit(cache=True, inline="always")
def _mac_at(b, p, arr, i):
    for k in range(6):
        arr[i, k] = b[p + k]


@njit(cache=True, inline="always")
def _wlan(b, p, end, rec, dmac, smac, i):
    """IEEE 802.11 MAC header (+ LLC/SNAP for data frames) → (err, p, ethertype or −1)."""
    if p + 10 > end:
        return E_WLAN, p, -1
    fc0 = b[p]
    fc1 = b[p + 1]
    ftype = (fc0 >> 2) & 3
    sub = fc0 >> 4
    _mac_at(b, p + 4, dmac, i)  # addr1, receiver
    rec[i].valid |= V_DMAC
    if ftype == 1:  # control: RTS, PS-Poll, BlockAck(Req), CF-End carry a transmitter address
        if sub >= 8 and sub != 12 and sub != 13 and p + 16 <= end:
            _mac_at(b, p + 10, smac, i)
            rec[i].valid |= V_SMAC
        return E_OK, p, -1
    if p + 24 > end:
        return E_WLAN, p, -1
    tods = fc1 & 1
    fromds = (fc1 >> 1) & 1
    hl = 24
    if tods and fromds:
        hl = 30
        if p + 30 > end:
            return E_WLAN, p, -1
    if ftype != 2:  # management and extension frames carry no network layer
        _mac_at(b, p + 10, smac, i)
        rec[i].valid |= V_SMAC
        return E_OK, p, -1
    # DA/SA by the To-DS/From-DS bits (IEEE 802.11-2020 Table 9-30).
    if tods:
        _mac_at(b, p + 16, dmac, i)
    if fromds:
        _mac_at(b, p + (24 if tods else 16), smac, i)
    else:
        _mac_at(b, p + 10, smac, i)
    rec[i].valid |= V_SMAC
    if sub & 0x8:  # QoS data: QoS control, and an HT control field when the Order bit is set
        hl += 2
        if fc1 & 0x80:
            hl += 4
    if sub & 0x4 or fc1 & 0x40:  # null data, or a protected (encrypted) body
        return E_OK, p, -1
    return _llc(b, p + hl, end)


@njit(cache=True, inline="always")
def link_header(b, p, end, lt, rec, dmac, smac, i):
    """Link header by pcap link type → (err, p, ethertype or −1 before VLAN/MPLS, ip version
    when the link type itself says IP)."""
    if lt == 1:
        err, q, et = ethernet_header(b, p, end)
        if p + 14 <= end:
            _mac_at(b, p, dmac, i)
            _mac_at(b, p + 6, smac, i)
            rec[i].valid |= V_DMAC | V_SMAC
        return err, q, et, 0
    if lt == 113 or lt == 276:
        # Linux cooked v1: pkttype, ARPHRD, addr len, addr[8], protocol (16 bytes);
        # v2: protocol, reserved, ifindex, ARPHRD, pkttype, addr len, addr[8] (20 bytes).
        v2 = lt == 276
        hl = 20 if v2 else 16
        if p + hl > end:
            return (E_SLL2 if v2 else E_SLL), p, -1, 0
        hatype = u16be(b, p + 8) if v2 else u16be(b, p + 2)
        alen = b[p + 11] if v2 else u16be(b, p + 4)
        if alen == 6 and (hatype == 1 or hatype == 772):
            _mac_at(b, p + (12 if v2 else 6), smac, i)
            rec[i].valid |= V_SMAC
        if hatype == 824:  # ARPHRD_NETLINK: protocol is a netlink family
            return E_OK, p + hl, -1, 0
        proto = u16be(b, p) if v2 else u16be(b, p + 14)
        if proto == 4:  # ETH_P_802_2: an LLC frame
            err, q, et = _llc(b, p + hl, end)
            return err, q, et, 0
        if proto <= 1500:
            return E_OK, p + hl, -1, 0
        return E_OK, p + hl, proto, 0
    if lt == 101 or lt == 12 or lt == 14:  # raw IP: the version nibble decides
        if p >= end:
            return E_IP, p, -1, 0
        v = b[p] >> 4
        if v == 4:
            return E_OK, p, ET_IPV4, 4
        if v == 6:
            return E_OK, p, ET_IPV6, 6
        return E_IPVER, p, -1, 0
    if lt == 228:
        return E_OK, p, ET_IPV4, 4
    if lt == 229:
        return E_OK, p, ET_IPV6, 6
    if lt == 0 or lt == 108:  # BSD loopback: AF_ value, host order (NULL) / network order (LOOP)
        if p + 4 > end:
            return E_NULL, p, -1, 0
        if lt == 108:
            af = u32be(b, p)
        else:
            af = u32le(b, p)
            if af > 0xFFFF:  # written by a big-endian host
                af = u32be(b, p)
        if af == 2:
            return E_OK, p + 4, ET_IPV4, 4
        # AF_INET6 is 10 on Linux, 23 on Windows, 24/28/30 on the BSDs and macOS.
        if af == 10 or af == 23 or af == 24 or af == 28 or af == 30:
            return E_OK, p + 4, ET_IPV6, 6
        return E_OK, p + 4, -1, 0
    if lt == 127 or lt == 105:
        if lt == 127:  # radiotap: little-endian it_len at offset 2, then 802.11
            if p + 4 > end:
                return E_RADIOTAP, p, -1, 0
            hl = u16le(b, p + 2)
            if hl < 8 or p + hl > end:
                return E_RADIOTAP, p, -1, 0
            p += hl
        err, q, et = _wlan(b, p, end, rec, dmac, smac, i)
        return err, q, et, 0
    if lt == 6:  # IEEE 802.5 Token Ring: AC, FC, dst, src, [routing info], LLC
        if p + 14 > end:
            return E_TR, p, -1, 0
        _mac_at(b, p + 2, dmac, i)
        _mac_at(b, p + 8, smac, i)
        smac[i, 0] &= 0x7F  # the top bit says "routing information follows", not address
        rec[i].valid |= V_DMAC | V_SMAC
        q = p + 14
        if b[p + 8] & 0x80:
            if q >= end:
                return E_TR, p, -1, 0
            q += b[q] & 0x1F
        if (b[p + 1] >> 6) != 1:  # MAC frame, not LLC
            return E_OK, q, -1, 0
        err, q, et = _llc(b, q, end)
        return err, q, et, 0
    if lt == 10:  # FDDI: FC, dst, src, LLC
        if p + 13 > end:
            return E_FDDI, p, -1, 0
        _mac_at(b, p + 1, dmac, i)
        _mac_at(b, p + 7, smac, i)
        rec[i].valid |= V_DMAC | V_SMAC
        if (b[p] & 0x30) != 0x10:  # not an LLC frame
            return E_OK, p + 13, -1, 0
        err, q, et = _llc(b, p + 13, end)
        return err, q, et, 0
    if lt == 107:  # Frame Relay: Q.922 address (EA bit ends it), then RFC 2427 or Cisco
        q = p
        while True:
            if q >= end:
                return E_FRELAY, p, -1, 0
            ea = b[q] & 1
            q += 1
            if ea or q - p == 4:
                break
        if q - p < 2 or q + 2 > end:
            return E_FRELAY, p, -1, 0
        if b[q] != 0x03:  # Cisco HDLC-style: an ethertype follows the address
            return E_OK, q + 2, u16be(b, q), 0
        q += 1
        if b[q] == 0 and q + 1 < end:  # optional pad before the NLPID
            q += 1
        nlpid = b[q]
        q += 1
        if nlpid == 0xCC:
            return E_OK, q, ET_IPV4, 4
        if nlpid == 0x8E:
            return E_OK, q, ET_IPV6, 6
        if nlpid == 0x80:  # SNAP: OUI + PID (an ethertype)
            if q + 5 > end:
                return E_FRELAY, p, -1, 0
            et = snap_ethertype(b, q)
            return E_OK, (q + 5 if et >= 0 else q), et, 0
        return E_OK, q, -1, 0
    return E_LINKTYPE, p, -1, 0
