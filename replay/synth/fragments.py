"""`fragments` options → UDP datagrams larger than the MTU, as IPv4 fragments (dpkt).

A sender at 10.0.0.20 sends --size-byte UDP payloads to 10.0.0.10:9000 from --flows sockets,
--rate datagrams per second; the 1500-byte MTU splits each into fragments carrying 1480 bytes
of IP payload (a multiple of 8, RFC 791), in order, MF on all but the last, one IP ID per
datagram (no DF: fragmentation needs it clear). The fragments of one datagram leave back to back
at the sender's 10 Gbit/s line rate. The UDP checksum covers the whole datagram, so only the
first fragment carries the UDP header and reassembly (`ip_defrag`) must come first.
"""

from __future__ import annotations

import dpkt
import numpy as np

from replay.synth.options import Options, SynthError
from replay.synth.packets import WIRE_EXTRA, ether, ip4, mac
from replay.synth.scenario import DPKT_MAX_FRAMES, Scenario, check_frames
from replay.synth.writer import Capture

MTU = 1500
FRAG_PAYLOAD = MTU - 20  # 1480: the largest multiple of 8 that fits after the IP header
SENDER_BPS = 10e9


def fragment_count(size: int) -> int:
    return -(-(8 + size) // FRAG_PAYLOAD)


def build(o: Options) -> Capture:
    per = fragment_count(o.size)
    burst_ns = sum(
        (20 + 14 + min(FRAG_PAYLOAD, 8 + o.size - k * FRAG_PAYLOAD) + WIRE_EXTRA) * 8e9 / SENDER_BPS
        for k in range(per)
    )
    if burst_ns * o.rate > 1e9:
        raise SynthError(
            f"--rate {o.rate:,.0f} datagrams/s of {o.size} bytes exceeds the sender's 10 Gbit/s"
            f" (at most {1e9 / burst_ns:,.0f}/s)"
        )
    n = max(1, -(-o.duration_ns * round(o.rate) // 1_000_000_000))
    check_frames(n * per, SCENARIO.name, DPKT_MAX_FRAMES)
    rng = np.random.default_rng(o.seed)
    src, dst = ip4("10.0.0.20"), ip4("10.0.0.10")
    smac, dmac = mac("52:54:00:12:00:20"), mac("3c:fd:fe:aa:bb:01")
    ip_id0 = int(rng.integers(0, 1 << 16))
    times: list[int] = []
    frames: list[bytes] = []
    for d in range(n):
        t = d * 1_000_000_000 // round(o.rate)
        udp = dpkt.udp.UDP(sport=50000 + d % o.flows, dport=9000, data=rng.bytes(o.size))
        udp.ulen = len(udp)
        # dpkt fills the UDP checksum (pseudo-header included) when it packs the IP packet.
        whole = bytes(dpkt.ip.IP(src=src, dst=dst, p=dpkt.ip.IP_PROTO_UDP, data=udp))[20:]
        for off in range(0, len(whole), FRAG_PAYLOAD):
            chunk = whole[off : off + FRAG_PAYLOAD]
            frag = dpkt.ip.IP(
                src=src,
                dst=dst,
                p=dpkt.ip.IP_PROTO_UDP,
                ttl=64,
                id=(ip_id0 + d) & 0xFFFF,
                mf=int(off + FRAG_PAYLOAD < len(whole)),
                offset=off // 8,
                data=chunk,
            )
            frame = ether(dmac, smac, frag, dpkt.ethernet.ETH_TYPE_IP)
            t += round((len(frame) + WIRE_EXTRA) * 8e9 / SENDER_BPS)
            times.append(t)
            frames.append(frame)
    return Capture(np.asarray(times, dtype=np.int64), frames, nano=True)


SCENARIO = Scenario(
    name="fragments",
    summary="UDP datagrams of --size bytes (> MTU) to 10.0.0.10:9000 as IPv4 fragments"
    " (--rate datagrams/s), ns timestamps",
    build=build,
    defaults={"duration": 0.05, "rate": 10e3, "size": 4000, "flows": 4},
    rate_unit="pps",
    limits={"size": (1473, 65507), "flows": (1, 15535)},
    size_means="UDP payload bytes per datagram (1473-65507: more than fits in one 1500 MTU)",
)
