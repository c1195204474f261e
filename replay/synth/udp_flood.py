"""`udp-flood` options → evenly spaced UDP datagrams to one port, iperf-like (columns).

For the socket-buffer story: one receiver port (10.0.0.10:5001, iperf's), --flows sender sockets
(source ports 40000+k) taking turns, --size-byte frames (counting the 4-byte FCS, as RFC 2544
sizes frames), --rate frames per second. Each sender is a connected Linux UDP socket: DF set and
IP ID +1 per datagram of that socket; real UDP checksums (GRO needs them non-zero, KERNEL.md §4).
The payload starts with iperf2's header: a 32-bit datagram id and the send time (s, µs).
"""

from __future__ import annotations

import numpy as np

from replay.synth.options import Options, SynthError
from replay.synth.packets import WIRE_EXTRA, ip4_int, mac, put_be, udp4_frames
from replay.synth.scenario import Scenario, check_frames
from replay.synth.writer import EPOCH_NS, Capture

LINK_BPS = 100e9  # frames closer than 100 GbE line rate cannot exist on any common link


def build(o: Options) -> Capture:
    frame = o.size - 4  # captured bytes: the FCS is not in the capture
    max_pps = LINK_BPS / ((frame + WIRE_EXTRA) * 8)
    if o.rate > max_pps:
        raise SynthError(
            f"--rate {o.rate:,.0f} pps exceeds 100 GbE line rate for {o.size}-byte frames"
            f" ({max_pps:,.0f} pps)"
        )
    n = max(1, -(-o.duration_ns * round(o.rate) // 1_000_000_000))
    check_frames(n, SCENARIO.name)
    i = np.arange(n, dtype=np.int64)
    ts = i * 1_000_000_000 // round(o.rate)
    flow = (i % o.flows).astype(np.uint64)
    per_flow_seq = (i // o.flows).astype(np.uint64)
    rng = np.random.default_rng(o.seed)
    id_base = rng.integers(0, 2**16, o.flows).astype(np.uint64)
    payload = np.zeros((n, frame - 42), dtype=np.uint8)
    put_be(payload, 0, 4, per_flow_seq)
    when = (ts + EPOCH_NS) // 1000
    put_be(payload, 4, 4, (when // 1_000_000).astype(np.uint64))
    put_be(payload, 8, 4, (when % 1_000_000).astype(np.uint64))
    frames = udp4_frames(
        n,
        src_mac=mac("52:54:00:12:00:20"),
        dst_mac=mac("3c:fd:fe:aa:bb:01"),
        src_ip=ip4_int("10.0.0.20"),
        dst_ip=ip4_int("10.0.0.10"),
        sport=np.uint64(40000) + flow,
        dport=5001,
        payload=payload,
        ip_id=(id_base[flow] + per_flow_seq) & np.uint64(0xFFFF),
        ttl=64,
        df=True,
    )
    return Capture(ts, frames, nano=True)


SCENARIO = Scenario(
    name="udp-flood",
    summary="evenly spaced UDP to 10.0.0.10:5001 from --flows sockets (--rate pps, --size frame"
    " bytes with FCS), ns timestamps",
    build=build,
    defaults={"duration": 0.01, "rate": 1e6, "size": 512, "flows": 1},
    rate_unit="pps",
    limits={"size": (64, 1518), "flows": (1, 25535)},
    size_means="Ethernet frame bytes including the 4-byte FCS (64-1518)",
)
