"""https-download / tcp-ipv6: the TCP+TLS download reads back with the properties GRO needs."""

from __future__ import annotations

import itertools
import socket
import struct
from dataclasses import dataclass

import dpkt
import numpy as np
import pytest
from tests._synth_read import checksums_ok, read
from hypothesis import given, settings
from hypothesis import strategies as st

from replay.synth import build, synthesize
from replay.synth.tcpflow import TLS_RECORD
from replay.synth.writer import pcap_bytes

SERVER, CLIENT = socket.inet_aton("142.250.185.46"), socket.inet_aton("192.168.1.100")
GW_MAC, CLIENT_MAC = bytes.fromhex("001a2b3c4d5e"), bytes.fromhex("3c22fb123456")


@dataclass
class Seg:
    t: int
    from_server: bool
    src_mac: bytes
    dst_mac: bytes
    ip: dpkt.Packet
    tcp: dpkt.tcp.TCP
    tsval: int
    tsecr: int


def segments(path) -> list[Seg]:
    r = read(path)
    out = []
    for t, f in zip(r.ts_ns, r.frames, strict=True):
        eth = dpkt.ethernet.Ethernet(f)
        ip, tcp = eth.data, eth.data.data
        opts = dict(dpkt.tcp.parse_opts(tcp.opts))
        tsval, tsecr = struct.unpack(">II", opts[dpkt.tcp.TCP_OPT_TIMESTAMP])
        out.append(Seg(int(t), tcp.sport == 443, eth.src, eth.dst, ip, tcp, tsval, tsecr))
    return out


@pytest.fixture(scope="module")
def dl(tmp_path_factory) -> list[Seg]:
    out = tmp_path_factory.mktemp("synth") / "dl.pcap"
    synthesize("https-download", out, duration=0.1, rate="100M", seed=1)
    return segments(out)


def data_segs(segs: list[Seg]) -> list[Seg]:
    """The response: server segments after the client's last data (its request)."""
    last_req = max(i for i, s in enumerate(segs) if not s.from_server and len(s.tcp.data))
    return [s for s in segs[last_req:] if s.from_server and len(s.tcp.data)]


def test_frame_count_follows_duration_and_rate(dl):
    # 0.1 s at 100 Mbit/s: 812 full frames of 1538 wire bytes fit, 812 × 1448 bytes hold 71
    # whole 16406-byte TLS records = 1,164,826 bytes = 804 × 1448 + 634.
    data = data_segs(dl)
    assert [len(s.tcp.data) for s in data] == [1448] * 804 + [634]
    assert len(dl) == 1225


def test_handshake_then_tls_then_data(dl):
    flags = [s.tcp.flags for s in dl[:3]]
    assert flags == [dpkt.tcp.TH_SYN, dpkt.tcp.TH_SYN | dpkt.tcp.TH_ACK, dpkt.tcp.TH_ACK]
    syn = dict(dpkt.tcp.parse_opts(dl[0].tcp.opts))
    assert struct.unpack(">H", syn[dpkt.tcp.TCP_OPT_MSS])[0] == 1460
    assert dpkt.tcp.TCP_OPT_SACKOK in syn and syn[dpkt.tcp.TCP_OPT_WSCALE] == b"\x07"
    hello = dl[3]
    assert not hello.from_server and hello.tcp.data[:3] == b"\x16\x03\x01"
    first_server_data = next(s for s in dl if s.from_server and len(s.tcp.data))
    assert first_server_data.tcp.data[:3] == b"\x16\x03\x03"  # ServerHello record
    assert data_segs(dl)[0].tcp.data[:5] == b"\x17\x03\x03" + (TLS_RECORD - 5).to_bytes(2, "big")


def test_psh_only_on_the_segment_ending_each_tls_record(dl):
    data = data_segs(dl)
    psh = [i for i, s in enumerate(data) if s.tcp.flags & dpkt.tcp.TH_PUSH]
    assert psh == [(r * TLS_RECORD - 1) // 1448 for r in range(1, 72)]


def test_stream_is_contiguous_with_one_ack_number(dl):
    data = data_segs(dl)
    for a, b in itertools.pairwise(data):
        assert b.tcp.seq == (a.tcp.seq + len(a.tcp.data)) & 0xFFFFFFFF
    assert len({s.tcp.ack for s in data}) == 1


def test_macs_addresses_and_ip_header_constants(dl):
    for s in dl:
        if s.from_server:
            assert (s.src_mac, s.dst_mac, s.ip.src, s.ip.dst) == (
                GW_MAC,
                CLIENT_MAC,
                SERVER,
                CLIENT,
            )
            assert s.ip.ttl == 57
        else:
            assert (s.src_mac, s.dst_mac, s.ip.src, s.ip.dst) == (
                CLIENT_MAC,
                GW_MAC,
                CLIENT,
                SERVER,
            )
            assert s.ip.ttl == 64
        assert s.ip.df == 1 and s.ip.tos == 0 and s.ip.hl == 5


def test_ip_id_increments_per_segment_and_synack_has_id_zero(dl):
    server = [s.ip.id for s in dl if s.from_server]
    assert server[0] == 0  # SYN-ACK: ip_build_and_send_pkt
    assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(server[1:]))
    client = [s.ip.id for s in dl if not s.from_server]
    assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(client))


def test_checksums_are_correct(dl, tmp_path):
    out = tmp_path / "again.pcap"
    synthesize("https-download", out, duration=0.1, rate="100M", seed=1)
    assert all(checksums_ok(f) for f in read(out).frames)


def test_tsval_is_a_1khz_clock_so_same_ms_segments_have_identical_options(dl):
    data = data_segs(dl)
    t = np.array([s.t for s in data])
    g = np.array([s.tsval - data[0].tsval for s in data])
    # TSval = base + floor((t + phase) / 1 ms) for one phase  ⇔  t - g·1ms spans < 1 ms
    # (+1 µs: the capture rounds arrival times down to µs).
    r = t - g * 1_000_000
    assert r.max() - r.min() < 1_000_000 + 1_000
    assert set(np.diff(g)) == {0, 1}  # 8 segments per ms at 100 Mbit/s: steps of one tick
    # Segments in the same ms with the same TSecr carry byte-identical option blocks.
    same = [(a, b) for a, b in itertools.pairwise(data) if (a.tsval, a.tsecr) == (b.tsval, b.tsecr)]
    assert len(same) > len(data) // 2
    assert all(a.tcp.opts == b.tcp.opts for a, b in same)


def test_inter_arrival_is_serialization_at_the_rate(dl):
    data = data_segs(dl)[:-1]
    gaps = np.diff([s.t for s in data])
    # (1514 + 24) × 8 bits at 100 Mbit/s = 123.04 µs, floored to whole µs in the file.
    assert set(gaps) <= {123_000, 124_000}
    span = data[-1].t - data[0].t
    assert abs(span - (len(data) - 1) * 123_040) < 1_000


def test_receiver_acks_every_second_full_segment_after_quickack(dl):
    first_data = dl.index(data_segs(dl)[0])
    acks = [s for s in dl[first_data:] if not s.from_server]
    data = data_segs(dl)
    start = data[0].tcp.seq
    acked_segments = [(a.tcp.ack - start) // 1448 for a in acks]
    # 16 quick ACKs (TCP_MAX_QUICKACKS), 3 of them spent on the server's TLS flight.
    assert acked_segments[:13] == list(range(1, 14))
    assert np.all(np.diff(acked_segments[13:-1]) == 2)  # the last one acks a short segment
    assert acks[-1].tcp.ack == (data[-1].tcp.seq + len(data[-1].tcp.data)) & 0xFFFFFFFF
    assert len(acks) == 13 + 396
    wins = [a.tcp.win for a in acks]
    assert wins == sorted(wins) and wins[0] > 0


def test_ack_echoes_tsval_of_the_first_unacked_segment(dl):
    # RFC 7323 §4.3 / tcp_replace_ts_recent: TS.Recent comes from the segment at rcv_wup.
    first_data = dl.index(data_segs(dl)[0])
    first: Seg | None = None
    checked = 0
    for s in dl[first_data:]:
        if not s.from_server:
            assert first is not None and s.tsecr == first.tsval
            checked += 1
            first = None
        elif first is None:
            first = s
    assert checked == 409


def test_same_seed_same_bytes_other_seed_other_bytes():
    a = pcap_bytes(build("https-download", duration=0.02, seed=5))
    b = pcap_bytes(build("https-download", duration=0.02, seed=5))
    c = pcap_bytes(build("https-download", duration=0.02, seed=6))
    assert a == b and a != c


@settings(max_examples=12, deadline=None)
@given(rate=st.integers(5_000_000, 2_000_000_000), ms=st.integers(5, 60))
def test_any_rate_gives_full_segments_and_one_psh_per_record(rate, ms):
    cap = build("https-download", duration=ms / 1000, rate=rate)
    data = [dpkt.ethernet.Ethernet(cap.frame(i)).data.data for i in range(len(cap))]
    data = [t for t in data if t.sport == 443 and len(t.data)][3:]  # skip the TLS flight
    sizes = [len(t.data) for t in data]
    assert sizes[:-1] == [1448] * (len(sizes) - 1)
    records = sum(sizes) // TLS_RECORD
    assert sum(sizes) == records * TLS_RECORD
    assert sum(1 for t in data if t.flags & dpkt.tcp.TH_PUSH) == records
    assert np.all(np.diff(cap.ts_ns) >= 0)


def test_ipv6_download_uses_mss_1440_constant_flow_label_and_valid_checksums(tmp_path):
    out = tmp_path / "v6.pcap"
    synthesize("tcp-ipv6", out, duration=0.02, rate="100M", seed=2)
    r = read(out)
    ip6s = [dpkt.ethernet.Ethernet(f).data for f in r.frames]
    assert all(isinstance(p, dpkt.ip6.IP6) for p in ip6s)
    server = [p for p in ip6s if p.data.sport == 443]
    sizes = [len(p.data.data) for p in server if len(p.data.data)]
    assert max(sizes) == 1428 and sizes.count(1428) >= len(sizes) - 2  # 1440 - 12 (timestamps)
    assert len(r.frames[[len(p.data.data) for p in ip6s].index(1428)]) == 1514
    assert len({p.flow for p in server}) == 1 and len({p.hlim for p in server}) == 1
    assert all(checksums_ok(f) for f in r.frames)
