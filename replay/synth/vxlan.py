"""`vxlan` options → UDP inside VXLAN (port 4789) to this host as the tunnel endpoint (dpkt).

A remote VTEP (10.0.0.2) sends to this host (10.0.0.10) on UDP 4789, VNI 42 (RFC 7348): each
frame carries an inner Ethernet/IPv4/UDP datagram from one of --flows pods (10.244.1.x) to a pod
here (10.244.2.20:8080), --size bytes of inner UDP payload. Linux's vxlan driver picks the outer
source port by hashing the inner flow into the local port range 32768-60999
(`udp_flow_src_port`), sends the outer UDP checksum as 0 (`noudpcsum` is the IPv4 default) and
no DF (`df unset`), TTL 64, IP ID +1 per packet. Evenly spaced at --rate frames per second.
"""

from __future__ import annotations

import zlib

import dpkt
import numpy as np

from replay.synth.options import Options
from replay.synth.packets import ether, ip4, mac
from replay.synth.scenario import DPKT_MAX_FRAMES, Scenario, check_frames
from replay.synth.writer import Capture

VXLAN_PORT = 4789  # IANA (RFC 7348 §5)
VNI = 42
PORT_MIN, PORT_MAX = 32768, 60999  # net.ipv4.ip_local_port_range default


def outer_sport(inner: bytes) -> int:
    """The outer source port for an inner flow: a stable hash into the local port range."""
    return PORT_MIN + zlib.crc32(inner) % (PORT_MAX - PORT_MIN + 1)


def build(o: Options) -> Capture:
    n = max(1, -(-o.duration_ns * round(o.rate) // 1_000_000_000))
    check_frames(n, SCENARIO.name, DPKT_MAX_FRAMES)
    rng = np.random.default_rng(o.seed)
    host_mac, vtep_mac = mac("3c:fd:fe:aa:bb:01"), mac("3c:fd:fe:aa:bb:02")
    pod_mac, gw_mac = mac("0a:58:0a:f4:02:14"), mac("0a:58:0a:f4:02:01")
    outer_src, outer_dst = ip4("10.0.0.2"), ip4("10.0.0.10")
    ip_id0 = int(rng.integers(0, 1 << 16))
    times = np.arange(n, dtype=np.int64) * 1_000_000_000 // round(o.rate)
    frames = []
    for i in range(n):
        f = i % o.flows
        inner_src = ip4(f"10.244.1.{10 + f % 240}")
        inner_sport = 33000 + f
        udp = dpkt.udp.UDP(sport=inner_sport, dport=8080, data=rng.bytes(o.size))
        udp.ulen = len(udp)
        inner_ip = dpkt.ip.IP(
            src=inner_src,
            dst=ip4("10.244.2.20"),
            p=dpkt.ip.IP_PROTO_UDP,
            ttl=63,
            id=(i // o.flows) & 0xFFFF,
            df=1,
            data=udp,
        )
        inner = bytes(
            dpkt.ethernet.Ethernet(
                dst=pod_mac, src=gw_mac, type=dpkt.ethernet.ETH_TYPE_IP, data=inner_ip
            )
        )
        vx = b"\x08\x00\x00\x00" + VNI.to_bytes(3, "big") + b"\x00"  # flags: I (VNI valid)
        outer_udp = dpkt.udp.UDP(
            sport=outer_sport(inner_src + inner_sport.to_bytes(2, "big")),
            dport=VXLAN_PORT,
            sum=0,
            data=vx + inner,
        )
        outer_udp.ulen = len(outer_udp)
        outer = dpkt.ip.IP(
            src=outer_src,
            dst=outer_dst,
            p=dpkt.ip.IP_PROTO_UDP,
            ttl=64,
            id=(ip_id0 + i) & 0xFFFF,
            data=bytes(outer_udp),
        )
        frames.append(ether(host_mac, vtep_mac, outer, dpkt.ethernet.ETH_TYPE_IP))
    return Capture(times, frames, nano=True)


SCENARIO = Scenario(
    name="vxlan",
    summary="VXLAN (UDP 4789, VNI 42) from 10.0.0.2 to 10.0.0.10 carrying UDP from --flows pods"
    " (--rate pps, --size inner payload), ns timestamps",
    build=build,
    defaults={"duration": 0.02, "rate": 100e3, "size": 1000, "flows": 4},
    rate_unit="pps",
    limits={"size": (1, 1422), "flows": (1, 30000)},  # inner source ports 33000 + flow
    size_means="inner UDP payload bytes (1-1422: the inner packet fits the 1450-byte VXLAN MTU)",
)
