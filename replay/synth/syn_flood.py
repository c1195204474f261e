"""`syn-flood` options → spoofed TCP SYNs to one listening port, as hping3 --flood sends (columns).

hping3 -S --flood --rand-source -p 80: random 32-bit source addresses, the source port counting
up from a random base, a random sequence number, window 64, no TCP options, TTL 64, a random IP ID,
no DF. 54-byte frames, captured at the receiver padded to the 60-byte minimum. Evenly spaced at
--rate frames per second.
"""

from __future__ import annotations

import dpkt
import numpy as np

from replay.synth.options import Options
from replay.synth.packets import (
    ETH_HLEN,
    ether,
    fix_ipv4_csum,
    fix_l4_csum,
    ip4,
    mac,
    put_be,
    tile,
)
from replay.synth.scenario import Scenario, check_frames
from replay.synth.writer import Capture


def build(o: Options) -> Capture:
    n = max(1, -(-o.duration_ns * round(o.rate) // 1_000_000_000))
    check_frames(n, SCENARIO.name)
    rng = np.random.default_rng(o.seed)
    ts = np.arange(n, dtype=np.int64) * 1_000_000_000 // round(o.rate)
    tcp = dpkt.tcp.TCP(sport=0, dport=80, seq=0, flags=dpkt.tcp.TH_SYN, win=64)
    ip = dpkt.ip.IP(src=bytes(4), dst=ip4("10.0.0.10"), p=dpkt.ip.IP_PROTO_TCP, ttl=64, data=tcp)
    frames = tile(
        ether(mac("3c:fd:fe:aa:bb:01"), mac("00:1a:2b:3c:4d:5e"), ip, dpkt.ethernet.ETH_TYPE_IP), n
    )
    l3, l4 = ETH_HLEN, ETH_HLEN + 20
    put_be(frames, l3 + 4, 2, rng.integers(0, 1 << 16, n, dtype=np.uint64))
    put_be(frames, l3 + 12, 4, rng.integers(1 << 24, 0xE0000000, n, dtype=np.uint64))
    base = int(rng.integers(0, 64512))
    put_be(frames, l4, 2, 1024 + (base + np.arange(n, dtype=np.uint64)) % np.uint64(64512))
    put_be(frames, l4 + 4, 4, rng.integers(0, 1 << 32, n, dtype=np.uint64))
    fix_ipv4_csum(frames, l3)
    fix_l4_csum(frames, l3)
    return Capture(ts, frames, nano=True)


SCENARIO = Scenario(
    name="syn-flood",
    summary="spoofed TCP SYNs to 10.0.0.10:80 from random sources, hping3-style (--rate pps),"
    " ns timestamps",
    build=build,
    defaults={"duration": 0.02, "rate": 500e3},
    rate_unit="pps",
)
