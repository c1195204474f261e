"""`gigabit-flood` options → 64-byte UDP frames at line rate, as pktgen sends them (columns).

A 64-byte frame (60 captured + 4 FCS) plus preamble/SFD (8) and inter-frame gap (12) takes
84 × 8 = 672 bits: at 1 Gbit/s one frame every 672 ns, 1,488,095 frames/s. The frames copy
what the kernel's pktgen writes (net/core/pktgen.c, `fill_packet_ipv4`): TTL 32, no DF, IP ID
+1 per frame, UDP checksum 0 unless the UDPCSUM flag is set, source port stepping through
udp_src_min..udp_src_max (one flow per port), and the pktgen header in the payload
(magic 0xbe9be955, sequence number, send time in s and µs).
"""

from __future__ import annotations

import numpy as np

from replay.synth.options import Options
from replay.synth.packets import ip4_int, line_rate_times, mac, put_be, udp4_frames
from replay.synth.scenario import Scenario, check_frames
from replay.synth.writer import EPOCH_NS, Capture

FRAME = 60  # 64 on the wire with the FCS
PKTGEN_MAGIC = 0xBE9BE955  # net/core/pktgen.c
SRC_PORT_MIN = 9  # pktgen's defaults: udp_src_min = udp_dst_min = 9 (discard)
DST_PORT = 9


def frame_count(duration_ns: int, rate_bps: int, frame_len: int = FRAME) -> int:
    """Frames starting before `duration_ns` at line rate."""
    bits = (frame_len + 24) * 8
    return -(-duration_ns * rate_bps // (bits * 1_000_000_000))


def build(o: Options) -> Capture:
    rate = round(o.rate)
    n = frame_count(o.duration_ns, rate)
    check_frames(n, SCENARIO.name)
    ts = line_rate_times(n, FRAME, rate)
    seq = np.arange(n, dtype=np.uint64)
    payload = np.zeros((n, FRAME - 42), dtype=np.uint8)
    put_be(payload, 0, 4, PKTGEN_MAGIC)
    put_be(payload, 4, 4, seq)
    when = (ts + EPOCH_NS) // 1000  # the sender stamps µs (do_gettimeofday in pktgen)
    put_be(payload, 8, 4, (when // 1_000_000).astype(np.uint64))
    put_be(payload, 12, 4, (when % 1_000_000).astype(np.uint64))
    frames = udp4_frames(
        n,
        src_mac=mac("02:00:00:00:00:01"),
        dst_mac=mac("3c:fd:fe:aa:bb:01"),
        src_ip=ip4_int("198.18.0.1"),  # RFC 2544 benchmarking range
        dst_ip=ip4_int("198.18.0.2"),
        sport=SRC_PORT_MIN + (seq % np.uint64(o.flows)),
        dport=DST_PORT,
        payload=payload,
        ip_id=seq & np.uint64(0xFFFF),
        ttl=32,
        df=False,
        checksum=False,
    )
    return Capture(ts, frames, nano=True)


SCENARIO = Scenario(
    name="gigabit-flood",
    summary="64-byte UDP frames at line rate (--rate: link bit/s, 1G = 1,488,095 frames/s,"
    " 672 ns apart), pktgen-style flows by source port, ns timestamps",
    build=build,
    defaults={"duration": 0.05, "rate": 1e9, "flows": 8},
    rate_unit="bit/s",
    max_duration_s=5.0,
    limits={"flows": (1, 65535 - SRC_PORT_MIN)},
)
