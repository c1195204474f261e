"""`tcp-ipv6` options → one TLS bulk download over IPv6, captured at the client."""

from __future__ import annotations

from replay.synth.options import Options
from replay.synth.packets import ip6, mac
from replay.synth.scenario import DPKT_MAX_FRAMES, Scenario, check_frames
from replay.synth.tcpflow import FlowSpec, data_segments, download
from replay.synth.writer import Capture

SPEC = FlowSpec(
    version=6,
    server_ip=ip6("2a00:1450:4001:82a::200e"),
    client_ip=ip6("2001:db8:1::100"),
    server_port=443,
    client_port=54322,
    gw_mac=mac("00:1a:2b:3c:4d:5e"),
    client_mac=mac("3c:22:fb:12:34:56"),
    mss=1440,  # MTU 1500 - 40 (IPv6) - 20 (TCP)
    server_ttl=57,  # hop limit
)


def build(o: Options) -> Capture:
    check_frames(2 * data_segments(SPEC, o.rate, o.duration_ns), SCENARIO.name, DPKT_MAX_FRAMES)
    return download(SPEC, o.rate, o.duration_ns, o.seed)


SCENARIO = Scenario(
    name="tcp-ipv6",
    summary="one TLS download [2a00:1450:4001:82a::200e]:443 → [2001:db8:1::100]:54322 over IPv6"
    " (--rate: bottleneck bit/s)",
    build=build,
    defaults={"duration": 0.05, "rate": 100e6},
    rate_unit="bit/s",
    max_duration_s=60.0,
)
