"""Decoded-frame record layout and codes: the vocabulary shared by the decoder and its readers.

FRAME_DTYPE is what decode.py writes per frame; the V_*/B_* bits of its `valid` field say which
nullable columns hold a value; ERRORS and TUNNELS are the strings of the dictionary columns.
"""

from __future__ import annotations

import numpy as np

FRAME_DTYPE = np.dtype(
    [
        ("valid", np.uint32),
        ("tcp_seq", np.uint32),
        ("tcp_ack", np.uint32),
        ("payload_len", np.uint32),
        ("ip_id", np.uint32),
        ("tcp_opt_hash", np.uint32),
        ("frag_off", np.uint16),  # fragment offset in bytes (V_FRAG)
        ("vlan", np.uint16),
        ("ethertype", np.uint16),
        ("sport", np.uint16),
        ("dport", np.uint16),
        ("tcp_flags", np.uint16),
        ("inner_sport", np.uint16),
        ("inner_dport", np.uint16),
        ("error", np.int16),
        ("ip_version", np.uint8),
        ("proto", np.uint8),
        ("ttl", np.uint8),
        ("ip_tos", np.uint8),
        ("ip_hlen", np.uint8),
        ("tcp_hlen", np.uint8),
        ("frag", np.uint8),
        ("tunnel", np.int8),
        ("inner_proto", np.uint8),
        ("inner_version", np.uint8),
        ("icmp_type", np.uint8),  # the ICMP/ICMPv6 type (V_ICMP)
    ],
    align=True,
)

# `valid` bits: which nullable columns hold a value.
V_DMAC = 1 << 0
V_SMAC = 1 << 1
V_VLAN = 1 << 2
V_ETYPE = 1 << 3
V_IP = 1 << 4  # ip_version, proto, ttl, ip_tos, ip_hlen
V_PORTS = 1 << 5
V_TCP = 1 << 6  # tcp_flags, tcp_seq, tcp_ack, tcp_hlen, tcp_opt_hash
V_IPID = 1 << 7
V_DF = 1 << 8
V_CSUM = 1 << 9
V_INNER = 1 << 10  # inner_flow key (inner addresses, proto, ports)
# Values of the two boolean columns, kept as bits too (Arrow stores booleans as bits).
B_DF = 1 << 11  # ip_df
B_CSUM_ZERO = 1 << 12  # l4_csum_zero
V_SRC = 1 << 13  # src (V_IP alone: an IPv6 header cut short before its addresses)
V_DST = 1 << 14
V_FRAG = 1 << 15  # frag_off, frag_mf (a fragment)
B_MF = 1 << 16  # frag_mf: more fragments follow (IP_MF / IP6_MF)
V_ICMP = 1 << 17  # icmp_type (an ICMP/ICMPv6 header's first byte was captured)
NBITS = 18

# Byte columns, each an (n, width) uint8 array (contiguous, so Arrow takes it as is).
BYTE_COLUMNS = (("dmac", 6), ("smac", 6), ("src", 16), ("dst", 16), ("isrc", 16), ("idst", 16))

TUNNELS = ("gre", "vxlan", "geneve", "ipip", "6in4", "mpls", "4in6", "6in6")
T_GRE, T_VXLAN, T_GENEVE, T_IPIP, T_6IN4, T_MPLS, T_4IN6, T_6IN6 = range(8)

ERRORS = (
    None,
    "truncated:ethernet",
    "truncated:vlan",
    "truncated:mpls",
    "truncated:pppoe",
    "truncated:sll",
    "truncated:sll2",
    "truncated:null",
    "truncated:radiotap",
    "truncated:802.11",
    "truncated:llc",
    "truncated:ipv4",
    "truncated:ipv6",
    "truncated:ipv6-ext",
    "truncated:tcp",
    "truncated:udp",
    "truncated:sctp",
    "truncated:gre",
    "truncated:vxlan",
    "truncated:geneve",
    "bad-ihl",
    "bad-ip-version",
    "bad-ip-length",
    "bad-tcp-offset",
    "unsupported-linktype",  # shown as unsupported-linktype:N
    "truncated:ip",
    "truncated:frelay",
    "truncated:token-ring",
    "truncated:fddi",
)
(
    E_OK, E_ETH, E_VLAN, E_MPLS, E_PPPOE, E_SLL, E_SLL2, E_NULL, E_RADIOTAP, E_WLAN, E_LLC,
    E_IPV4, E_IPV6, E_IPV6EXT, E_TCP, E_UDP, E_SCTP, E_GRE, E_VXLAN, E_GENEVE, E_IHL,
    E_IPVER, E_IPLEN, E_TCPOFF, E_LINKTYPE, E_IP, E_FRELAY, E_TR, E_FDDI,
) = range(len(ERRORS))  # fmt: skip

# Link types we decode (pcap LINKTYPE_* values, https://www.tcpdump.org/linktypes.html).
SUPPORTED_LINKTYPES = (0, 1, 6, 10, 12, 14, 101, 105, 107, 108, 113, 127, 228, 229, 276)

# Ethertypes.
ET_IPV4, ET_IPV6 = 0x0800, 0x86DD
ET_VLAN, ET_QINQ, ET_QINQ_OLD = 0x8100, 0x88A8, 0x9100
ET_MPLS_UC, ET_MPLS_MC = 0x8847, 0x8848
ET_PPPOE_SESSION = 0x8864
ET_TEB = 0x6558  # transparent Ethernet bridging (GRE, GENEVE)
ET_PPP = 0x880B  # PPP in enhanced GRE (PPTP, RFC 2637)

UDP_VXLAN = 4789  # IANA, RFC 7348
UDP_GENEVE = 6081  # IANA, RFC 8926
