"""`https-download` options → one TLS bulk download over IPv4, captured at the client."""

from __future__ import annotations

import dataclasses

from replay.synth.options import Options
from replay.synth.packets import ip4, mac
from replay.synth.scenario import DPKT_MAX_FRAMES, Scenario, check_frames
from replay.synth.tcpflow import FlowSpec, data_segments, download
from replay.synth.writer import Capture

SPEC = FlowSpec(
    version=4,
    server_ip=ip4("142.250.185.46"),
    client_ip=ip4("192.168.1.100"),
    server_port=443,
    client_port=54321,
    gw_mac=mac("00:1a:2b:3c:4d:5e"),  # the home router
    client_mac=mac("3c:22:fb:12:34:56"),
    mss=1460,  # MTU 1500 - 40
    server_ttl=57,  # a Linux sender (64) seven hops away
)


def build(o: Options) -> Capture:
    spec = dataclasses.replace(SPEC, mss=o.size)
    check_frames(2 * data_segments(spec, o.rate, o.duration_ns), SCENARIO.name, DPKT_MAX_FRAMES)
    return download(spec, o.rate, o.duration_ns, o.seed)


SCENARIO = Scenario(
    name="https-download",
    summary="one TLS download 142.250.185.46:443 → 192.168.1.100:54321 seen at the client"
    " (--rate: bottleneck bit/s, --duration: data phase, --size: MSS)",
    build=build,
    defaults={"duration": 0.1, "rate": 100e6, "size": 1460},
    # TCP_MIN_MSS 88 (include/net/tcp.h) up to MTU 1500's 1460; 536 is RFC 879's default MSS, a
    # small-segment stream whose skbs carry far more truesize than payload (tcp_prune_queue)
    limits={"size": (88, 1460)},
    size_means="the MSS both ends advertise in their SYNs (1460 at MTU 1500)",
    rate_unit="bit/s",
    max_duration_s=60.0,
)
