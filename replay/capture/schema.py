"""The frames table (contract): one row per captured frame, as ../DESIGN.md defines it.

`replay ingest` writes it, `replay run` reads it. Readers build numpy columns and hand them to
`frames_table`, which is the only place the Arrow types are decided.
"""

from __future__ import annotations

import pyarrow as pa

FRAMES_SCHEMA = pa.schema(
    [
        pa.field("frame", pa.uint64(), nullable=False),  # 1-based, across all inputs
        pa.field("ts_ns", pa.int64(), nullable=False),  # ns since the epoch
        pa.field("wire_len", pa.uint32(), nullable=False),
        pa.field("cap_len", pa.uint32(), nullable=False),
        pa.field("dst_mac", pa.binary(6)),
        pa.field("src_mac", pa.binary(6)),
        pa.field("iface", pa.uint32(), nullable=False),
        pa.field("linktype", pa.uint16(), nullable=False),
        pa.field("vlan", pa.uint16()),
        pa.field("ethertype", pa.uint16()),  # innermost ethertype after VLAN/MPLS; null if none
        pa.field("ip_version", pa.uint8(), nullable=False),
        pa.field("src", pa.binary(16)),  # IPv4 as ::ffff:a.b.c.d
        pa.field("dst", pa.binary(16)),
        pa.field("proto", pa.uint8()),
        pa.field("sport", pa.uint16()),
        pa.field("dport", pa.uint16()),
        pa.field("tcp_flags", pa.uint16()),
        pa.field("tcp_seq", pa.uint32()),
        pa.field("tcp_ack", pa.uint32()),
        pa.field("payload_len", pa.uint32(), nullable=False),
        pa.field("ip_id", pa.uint32()),
        pa.field("ttl", pa.uint8()),
        pa.field("ip_tos", pa.uint8()),
        pa.field("ip_df", pa.bool_()),
        pa.field("ip_hlen", pa.uint8()),
        pa.field("tcp_hlen", pa.uint8()),
        pa.field("l4_csum_zero", pa.bool_()),
        pa.field("tcp_opt_hash", pa.uint32()),
        pa.field("frag", pa.uint8(), nullable=False),  # 0 none, 1 first, 2 later
        pa.field("frag_off", pa.uint16()),  # fragment offset in bytes; null if not a fragment
        pa.field("frag_mf", pa.bool_()),  # more fragments (IP_MF / IP6_MF); null if not a fragment
        pa.field("icmp_type", pa.uint8()),  # ICMP/ICMPv6 type; null if not ICMP (or cut short)
        pa.field("tunnel", pa.dictionary(pa.int8(), pa.string())),
        pa.field("inner_flow", pa.uint32()),
        # the tunnelled packet's protocol and ports (a decapsulating host demuxes on them);
        # null when not tunnelled, ports 0 when the inner packet has none
        pa.field("inner_proto", pa.uint8()),
        pa.field("inner_sport", pa.uint16()),
        pa.field("inner_dport", pa.uint16()),
        pa.field("flow", pa.uint32(), nullable=False),
        pa.field("error", pa.dictionary(pa.int8(), pa.string())),
    ]
)

FRAME_COLUMNS = tuple(FRAMES_SCHEMA.names)
