"""`conn-flood` options → TCP handshakes to one listening port from real clients (columns).

The flash-crowd / connection-flood side of a SYN flood: --rate new connections per second
(Poisson) to 10.0.0.10:80 from --clients public addresses, each connection from its own source
port. Every client completes its handshake: the SYN (a random ISN, no options, window 64240,
DF, TTL 64), then one round trip (RTT_NS) later the ACK of the server's SYN-ACK (seq ISN + 1; the
ack number echoes a cookie or ISN the capture cannot know: random). As the server's host
captures them: 54-byte frames padded to 60, the SYN-ACKs it sent left out (they are not
received). A listener that accepts more slowly than --rate fills its accept queue: the report's
ListenOverflows / ListenDrops.
"""

from __future__ import annotations

import dpkt
import numpy as np

from replay.synth.game_server import public_addresses
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

RTT_NS = 200_000  # client to server and back: a 200 us metro-area round trip


def build(o: Options) -> Capture:
    rng = np.random.default_rng(o.seed)
    mean_gap = 1e9 / o.rate
    expect = o.duration_ns / mean_gap
    check_frames(2 * (int(expect * 1.1) + 10), SCENARIO.name)
    gaps = rng.exponential(mean_gap, int(expect + 6 * np.sqrt(expect) + 10))
    t_syn = np.cumsum(gaps).astype(np.int64)
    t_syn = t_syn[t_syn < o.duration_ns]
    if len(t_syn) == 0:
        t_syn = np.zeros(1, dtype=np.int64)
    n = len(t_syn)
    client = rng.integers(0, o.clients, n)
    addr = public_addresses(rng, o.clients)[client]
    # each connection its own source port: ports counted up per client from a random base
    base = rng.integers(1024, 60000, o.clients).astype(np.uint64)
    order = np.argsort(client, kind="stable")
    rank = np.empty(n, dtype=np.int64)
    first = np.searchsorted(client[order], client[order])
    rank[order] = np.arange(n) - first
    sport = 1024 + (base[client] - 1024 + rank.astype(np.uint64)) % np.uint64(64512)
    isn = rng.integers(0, 1 << 32, n, dtype=np.uint64)
    ts = np.concatenate([t_syn, t_syn + RTT_NS])
    is_syn = np.concatenate([np.ones(n, bool), np.zeros(n, bool)])
    conn = np.concatenate([np.arange(n), np.arange(n)])
    srt = np.lexsort((~is_syn, ts))  # a SYN before an ACK at the same nanosecond
    ts, is_syn, conn = ts[srt], is_syn[srt], conn[srt]
    m = 2 * n
    tcp = dpkt.tcp.TCP(sport=0, dport=80, seq=0, flags=dpkt.tcp.TH_SYN, win=64240)
    ip = dpkt.ip.IP(src=bytes(4), dst=ip4("10.0.0.10"), p=dpkt.ip.IP_PROTO_TCP, ttl=64, data=tcp)
    ip.df = 1
    frames = tile(
        ether(mac("00:1a:2b:3c:4d:5e"), mac("3c:fd:fe:aa:bb:01"), ip, dpkt.ethernet.ETH_TYPE_IP), m
    )
    l3, l4 = ETH_HLEN, ETH_HLEN + 20
    put_be(frames, l3 + 4, 2, rng.integers(0, 1 << 16, m, dtype=np.uint64))  # IP ID
    put_be(frames, l3 + 12, 4, addr[conn])
    put_be(frames, l4, 2, sport[conn])
    put_be(frames, l4 + 4, 4, np.where(is_syn, isn[conn], (isn[conn] + np.uint64(1)) & np.uint64(0xFFFFFFFF)))
    put_be(frames, l4 + 8, 4, np.where(is_syn, 0, rng.integers(0, 1 << 32, m, dtype=np.uint64)))
    put_be(frames, l4 + 13, 1, np.where(is_syn, dpkt.tcp.TH_SYN, dpkt.tcp.TH_ACK))
    fix_ipv4_csum(frames, l3)
    fix_l4_csum(frames, l3)
    return Capture(ts, frames, nano=True)


SCENARIO = Scenario(
    name="conn-flood",
    summary="TCP handshakes (SYN, then the ACK one 200 us RTT later) to 10.0.0.10:80 from"
    " --clients addresses at --rate connections/s (Poisson), ns timestamps",
    build=build,
    defaults={"duration": 0.05, "rate": 20e3, "clients": 200},
    rate_unit="pps",
)
