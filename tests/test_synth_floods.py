"""gigabit-flood, udp-flood, syn-flood, reuseport: columnar floods read back exactly."""

from __future__ import annotations

import itertools
import socket
import time

import dpkt
import numpy as np
import pytest
from tests._synth_read import checksums_ok, read
from hypothesis import given, settings
from hypothesis import strategies as st

from replay.synth import SynthError, build, synthesize
from replay.synth.writer import pcap_bytes


@pytest.fixture(scope="module")
def flood(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "flood.pcap.gz"
    t0 = time.perf_counter()
    synthesize("gigabit-flood", out, duration=0.05, rate="1G", flows=8, seed=1)
    return read(out), time.perf_counter() - t0, out


def test_flood_is_1488095_pps_672ns_apart_for_50ms(flood):
    r, _, _ = flood
    assert r.nano and r.linktype == 1
    assert len(r.frames) == 74405  # frames starting before 50 ms: ceil(50e6 / 672)
    assert set(np.diff(r.ts_ns)) == {672}
    assert 10**9 // 672 == 1_488_095  # 84 bytes × 8 = 672 bits per 64-byte frame at 1 Gbit/s
    assert {len(f) for f in r.frames} == {60} and set(r.wire_len) == {60}


def test_flood_is_pktgen_like_flows_to_one_destination(flood):
    r, _, _ = flood
    pkts = [dpkt.ethernet.Ethernet(f).data for f in r.frames[:4000]]
    assert {(p.dst, p.data.dport) for p in pkts} == {(socket.inet_aton("198.18.0.2"), 9)}
    assert [p.data.sport for p in pkts[:10]] == [9, 10, 11, 12, 13, 14, 15, 16, 9, 10]
    assert {p.data.sum for p in pkts} == {0}  # pktgen leaves the UDP checksum out
    assert all((b.id - a.id) & 0xFFFF == 1 for a, b in itertools.pairwise(pkts))
    assert {p.ttl for p in pkts} == {32} and {p.df for p in pkts} == {0}
    assert all(p.data.data[:4] == bytes.fromhex("be9be955") for p in pkts)
    assert [int.from_bytes(p.data.data[4:8], "big") for p in pkts[:3]] == [0, 1, 2]
    assert all(checksums_ok(f) for f in r.frames[:4000])


def test_flood_builds_fast_and_compresses_under_2mb(flood):
    _, seconds, out = flood
    assert out.stat().st_size < 2_000_000
    assert seconds < 10  # ~1 s here (gzip -9 is most of it); columns, not per-frame objects


def test_flood_at_10g_keeps_exact_integer_spacing():
    cap = build("gigabit-flood", duration=0.0001, rate="10G")
    assert len(cap) == 1489  # ceil(100 µs / 67.2 ns)
    assert set(np.diff(cap.ts_ns)) == {67, 68}
    assert cap.ts_ns[-1] == 1488 * 672 // 10


def test_udp_flood_count_size_flows_and_spacing():
    cap = build("udp-flood", duration=0.001, rate="250k", size=128, flows=3, seed=4)
    assert len(cap) == 250 and set(np.diff(cap.ts_ns)) == {4000}
    pkts = [dpkt.ethernet.Ethernet(cap.frame(i)).data for i in range(len(cap))]
    assert {len(cap.frame(i)) for i in range(len(cap))} == {124}  # 128 minus the FCS
    assert [p.data.sport for p in pkts[:4]] == [40000, 40001, 40002, 40000]
    assert {(p.dst, p.data.dport) for p in pkts} == {(socket.inet_aton("10.0.0.10"), 5001)}
    for k in range(3):  # each socket's IP ID counts up by one
        ids = [p.id for p in pkts[k::3]]
        assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(ids))
    assert all(checksums_ok(cap.frame(i)) for i in range(len(cap)))
    assert all(p.data.sum != 0 for p in pkts)


@settings(max_examples=25, deadline=None)
@given(
    size=st.integers(64, 1518),
    flows=st.integers(1, 50),
    kpps=st.integers(1, 3000),
    seed=st.integers(0, 2**32 - 1),
)
def test_udp_flood_property_frames_checksums_determinism(size, flows, kpps, seed):
    cap = build("udp-flood", duration=0.0005, rate=kpps * 1000, size=size, flows=flows, seed=seed)
    assert len(cap) == -(-kpps * 1000 * 500_000 // 10**9)
    assert cap.frames.shape[1] == size - 4
    assert all(checksums_ok(cap.frame(i)) for i in range(0, len(cap), 7))
    again = build("udp-flood", duration=0.0005, rate=kpps * 1000, size=size, flows=flows, seed=seed)
    assert pcap_bytes(cap) == pcap_bytes(again)


def test_udp_flood_refuses_more_than_100g_line_rate():
    with pytest.raises(SynthError, match="exceeds 100 GbE line rate"):
        build("udp-flood", rate="200Mpps", size=64)


def test_syn_flood_frames_are_padded_syns_with_valid_checksums():
    cap = build("syn-flood", duration=0.001, rate="500k", seed=3)
    assert len(cap) == 500 and set(np.diff(cap.ts_ns)) == {2000}
    assert cap.frames.shape[1] == 60  # 54 bytes padded to the Ethernet minimum
    segs = [dpkt.ethernet.Ethernet(cap.frame(i)).data.data for i in range(len(cap))]
    assert {s.flags for s in segs} == {dpkt.tcp.TH_SYN} and {s.dport for s in segs} == {80}
    assert [s.sport for s in segs[:3]] == [segs[0].sport, segs[0].sport + 1, segs[0].sport + 2]
    srcs = {dpkt.ethernet.Ethernet(cap.frame(i)).data.src for i in range(len(cap))}
    assert len(srcs) == 500
    assert all(checksums_ok(cap.frame(i)) for i in range(len(cap)))


def test_reuseport_dns_queries_from_many_flows_poisson():
    cap = build("reuseport", duration=0.05, rate="200k", flows=1000, seed=9)
    n = len(cap)
    assert abs(n - 10_000) < 4 * 100  # Poisson: mean 10,000, sd 100
    pkts = [dpkt.ethernet.Ethernet(cap.frame(i)).data for i in range(n)]
    flows = {(p.src, p.data.sport) for p in pkts}
    assert 990 <= len(flows) <= 1000  # 10 queries per flow on average: all but ~0 appear
    assert {(p.dst, p.data.dport) for p in pkts} == {(socket.inet_aton("10.0.0.53"), 53)}
    assert {p.id for p in pkts} == {0} and {p.df for p in pkts} == {1}
    q = dpkt.dns.DNS(pkts[0].data.data)
    assert q.qd[0].name == "www.example.com"
    gaps = np.diff(cap.ts_ns)
    assert abs(gaps.mean() - 5000) < 200 and abs(np.median(gaps) - 5000 * np.log(2)) < 300
    assert all(checksums_ok(cap.frame(i)) for i in range(0, n, 13))
