"""`game-server` options → UDP from thousands of game clients to one server port (columns).

A Source-engine-style server (10.0.0.10:27015) at a fixed tick rate; each client answers every
tick with one usercmd datagram, right after the tick (a per-client offset up to ~1.5 ms plus
~0.1 ms of per-packet jitter), so the server sees one dense burst per tick: the shape that
overflows a NIC ring or a socket buffer at a few thousand players. Payload sizes: usercmd
packets of 40-100 bytes (each client has its own typical size, ±4 bytes per packet) and 2 % voice
packets of 160-320 bytes. Clients are distinct public addresses behind NATs (random source
ports); 70 % Windows (TTL 128 minus hops), 30 % Linux/consoles (64 minus hops); IP ID +1 per
datagram per client; no DF; real UDP checksums.
"""

from __future__ import annotations

import numpy as np

from replay.synth.options import Options
from replay.synth.packets import ip4_int, mac, udp4_frames
from replay.synth.scenario import Scenario, check_frames
from replay.synth.writer import Capture

SERVER_PORT = 27015  # srcds default
VOICE_SHARE = 0.02
BURST_SPREAD_NS = 1_500_000
JITTER_NS = 100_000

_PRIVATE = [  # (network, prefix length) never seen as a public client address
    ("0.0.0.0", 8),
    ("10.0.0.0", 8),
    ("100.64.0.0", 10),
    ("127.0.0.0", 8),
    ("169.254.0.0", 16),
    ("172.16.0.0", 12),
    ("192.168.0.0", 16),
    ("198.18.0.0", 15),
    ("224.0.0.0", 3),
]


def public_addresses(rng: np.random.Generator, n: int) -> np.ndarray:
    """n distinct random public unicast IPv4 addresses (uint64 column)."""
    out = np.empty(0, dtype=np.uint64)
    while len(out) < n:
        cand = rng.integers(1 << 24, 1 << 32, 2 * n, dtype=np.uint64)
        ok = np.ones(len(cand), dtype=bool)
        for net, plen in _PRIVATE:
            ok &= (cand >> np.uint64(32 - plen)) != np.uint64(ip4_int(net) >> (32 - plen))
        cand = cand[ok]
        _, first = np.unique(np.concatenate([out, cand]), return_index=True)
        out = np.concatenate([out, cand])[np.sort(first)]
    return out[:n]


def tick_count(duration_ns: int, hz: float) -> int:
    """Ticks at k/hz that start before `duration_ns`."""
    return max(1, int(np.ceil(duration_ns * hz / 1e9 - 1e-9)))


def build(o: Options) -> Capture:
    rng = np.random.default_rng(o.seed)
    c = o.clients
    ticks = tick_count(o.duration_ns, o.rate)
    n = ticks * c
    check_frames(n, SCENARIO.name)
    # Per client: address, NAT port, TTL, IP ID start, typical size, offset after the tick.
    ip = public_addresses(rng, c)
    port = rng.integers(1024, 65536, c).astype(np.uint64)
    windows = rng.random(c) < 0.7
    ttl = np.where(windows, 128, 64) - rng.integers(6, 21, c)
    id0 = rng.integers(0, 1 << 16, c).astype(np.uint64)
    typical = rng.integers(40, 97, c)
    offset = rng.integers(30_000, BURST_SPREAD_NS, c)
    # Per packet (tick-major).
    client = np.tile(np.arange(c), ticks)
    tick = np.repeat(np.arange(ticks), c)
    t_tick = np.round(tick * 1e9 / o.rate).astype(np.int64)
    jitter = np.abs(rng.normal(0, JITTER_NS, n)).astype(np.int64)
    ts = t_tick + offset[client] + jitter
    size = typical[client] + rng.integers(-4, 5, n)
    voice = rng.random(n) < VOICE_SHARE
    size[voice] = rng.integers(160, 321, int(voice.sum()))
    order = np.argsort(ts, kind="stable")
    ts, client, tick, size = ts[order], client[order], tick[order], size[order]
    frames: list[bytes] = [b""] * n
    # One columnar batch per payload size: udp4_frames makes frames of one length.
    for length in np.unique(size):
        rows = np.flatnonzero(size == length)
        cl = client[rows]
        batch = udp4_frames(
            len(rows),
            src_mac=mac("00:1a:2b:3c:4d:5e"),  # the router in front of the server
            dst_mac=mac("3c:fd:fe:aa:bb:01"),
            src_ip=ip[cl],
            dst_ip=ip4_int("10.0.0.10"),
            sport=port[cl],
            dport=SERVER_PORT,
            payload=rng.integers(0, 256, (len(rows), int(length)), dtype=np.uint8),
            ip_id=(id0[cl] + tick[rows].astype(np.uint64)) & np.uint64(0xFFFF),
            ttl=ttl[cl],
        )
        for r, f in zip(rows, batch, strict=True):
            frames[r] = f.tobytes()
    return Capture(ts, frames, nano=False)


SCENARIO = Scenario(
    name="game-server",
    summary="UDP to 10.0.0.10:27015 from --clients players, one usercmd each per tick"
    " (--rate: tick Hz), bursty",
    build=build,
    defaults={"duration": 0.1, "rate": 64.0, "clients": 2000},
    rate_unit="Hz",
    max_duration_s=30.0,
    limits={"clients": (1, 100_000)},
)
