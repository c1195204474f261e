"""`reuseport` options → DNS queries from many clients to one UDP port (columns).

The SO_REUSEPORT story: a resolver at 10.0.0.53:53 receives from --flows clients (distinct
public addresses and ports), Poisson arrivals at --rate queries per second. Each query is the
same 33-byte question (www.example.com A, RD set) with its own random DNS ID. The clients are
unconnected UDP sockets with DF set, so Linux sends IP ID 0 (`ip_select_ident_segs`).
"""

from __future__ import annotations

import dpkt
import numpy as np

from replay.synth.game_server import public_addresses
from replay.synth.options import Options
from replay.synth.packets import ip4_int, mac, put_be, udp4_frames
from replay.synth.scenario import Scenario, check_frames
from replay.synth.writer import Capture


def build(o: Options) -> Capture:
    rng = np.random.default_rng(o.seed)
    mean_gap = 1e9 / o.rate
    expect = o.duration_ns / mean_gap
    check_frames(int(expect * 1.1) + 10, SCENARIO.name)
    gaps = rng.exponential(mean_gap, int(expect + 6 * np.sqrt(expect) + 10))
    ts = np.cumsum(gaps).astype(np.int64)
    ts = ts[ts < o.duration_ns]
    if len(ts) == 0:
        ts = np.zeros(1, dtype=np.int64)
    n = len(ts)
    flow = rng.integers(0, o.flows, n)
    addr = public_addresses(rng, o.flows)
    port = rng.integers(1024, 65536, o.flows).astype(np.uint64)
    query = dpkt.dns.DNS(
        id=0, op=dpkt.dns.DNS_RD, qd=[dpkt.dns.DNS.Q(name="www.example.com", type=dpkt.dns.DNS_A)]
    )
    payload = np.tile(np.frombuffer(bytes(query), dtype=np.uint8), (n, 1))
    put_be(payload, 0, 2, rng.integers(0, 1 << 16, n, dtype=np.uint64))
    frames = udp4_frames(
        n,
        src_mac=mac("00:1a:2b:3c:4d:5e"),
        dst_mac=mac("3c:fd:fe:aa:bb:01"),
        src_ip=addr[flow],
        dst_ip=ip4_int("10.0.0.53"),
        sport=port[flow],
        dport=53,
        payload=payload,
        ip_id=0,
        ttl=57,
        df=True,
    )
    return Capture(ts, frames, nano=True)


SCENARIO = Scenario(
    name="reuseport",
    summary="DNS queries to 10.0.0.53:53 from --flows clients, Poisson arrivals (--rate pps),"
    " ns timestamps",
    build=build,
    defaults={"duration": 0.02, "rate": 200e3, "flows": 1024},
    rate_unit="pps",
    limits={"flows": (1, 100_000)},
)
