"""game-server, fragments, vxlan, mixed: read back with dpkt, exact counts and structure."""

from __future__ import annotations

import itertools
import socket
from collections import defaultdict

import dpkt
import numpy as np
import pytest
from tests._synth_read import checksums_ok, read
from hypothesis import given, settings
from hypothesis import strategies as st

from replay.synth import SynthError, build, synthesize
from replay.synth.writer import pcap_bytes


@pytest.fixture(scope="module")
def game(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "game.pcap"
    synthesize("game-server", out, duration=0.1, rate=64, clients=2000, seed=1)
    return read(out)


def test_game_every_client_once_per_tick(game):
    # 64 Hz ticks at 0, 15.625, ..., 93.75 ms: 7 ticks before 0.1 s, 2000 datagrams each.
    assert len(game.frames) == 14_000 and not game.nano
    pkts = [dpkt.ethernet.Ethernet(f).data for f in game.frames]
    assert {(p.dst, p.data.dport) for p in pkts} == {(socket.inet_aton("10.0.0.10"), 27015)}
    per_client = defaultdict(list)
    for t, p in zip(game.ts_ns, pkts, strict=True):
        per_client[(p.src, p.data.sport)].append(int(t))
    assert len(per_client) == 2000 and {len(v) for v in per_client.values()} == {7}
    t0 = int(game.ts_ns[0]) - 30_000  # the first datagram comes ≥ 30 µs after tick 0
    for times in per_client.values():
        tick = (np.asarray(times) - t0) * 64 // 10**9
        assert list(tick) == list(range(7))  # one per tick, in its own tick


def test_game_is_bursty_right_after_each_tick(game):
    t = (game.ts_ns - game.ts_ns[0]) % 15_625_000
    # Within 2 ms of the tick (1.5 ms per-client offset + ~0.1 ms jitter), nearly nothing later.
    assert np.mean(t < 2_000_000) > 0.99
    assert np.all(np.diff(game.ts_ns) >= 0)


def test_game_payload_sizes_ttl_and_ids(game):
    pkts = [dpkt.ethernet.Ethernet(f).data for f in game.frames]
    sizes = np.array([len(p.data.data) for p in pkts])
    assert sizes.min() >= 36 and sizes.max() <= 320
    assert 0.01 < np.mean(sizes >= 160) < 0.03  # ~2 % voice
    assert 55 < np.median(sizes) < 80
    by = defaultdict(list)
    for p in pkts:
        by[p.src].append(p)
    for ps in list(by.values())[:200]:
        assert len({p.ttl for p in ps}) == 1
        assert all((b.id - a.id) & 0xFFFF == 1 for a, b in itertools.pairwise(ps))
    assert all(checksums_ok(f) for f in game.frames)


def test_fragments_reassemble_to_valid_datagrams():
    cap = build("fragments", duration=0.002, rate="10k", size=4000, flows=2, seed=2)
    assert len(cap) == 20 * 3  # 4008 UDP bytes = 1480 + 1480 + 1048
    by_id = defaultdict(list)
    for i in range(len(cap)):
        ip = dpkt.ethernet.Ethernet(cap.frame(i)).data
        assert ip.df == 0
        by_id[ip.id].append(ip)
    assert len(by_id) == 20
    for frags in by_id.values():
        assert [f.offset * 8 for f in frags] == [0, 1480, 2960]
        assert [f.mf for f in frags] == [1, 1, 0]
        whole = b"".join(bytes(f.data) for f in frags)
        udp = dpkt.udp.UDP(whole)
        assert udp.ulen == 4008 and udp.dport == 9000 and udp.sum != 0
        pseudo = frags[0].src + frags[0].dst + bytes([0, 17]) + len(whole).to_bytes(2, "big")
        assert dpkt.in_cksum(pseudo + whole) == 0
    assert all(checksums_ok(cap.frame(i)) for i in range(len(cap)))


def test_fragments_refuse_a_datagram_that_fits_the_mtu():
    with pytest.raises(SynthError, match="--size must be between 1473"):
        build("fragments", size=1000)


def test_vxlan_outer_header_and_valid_inner_frames():
    cap = build("vxlan", duration=0.001, rate="100k", size=500, flows=3, seed=1)
    assert len(cap) == 100
    sport_of = {}
    for i in range(len(cap)):
        outer = dpkt.ethernet.Ethernet(cap.frame(i)).data
        assert outer.dst == socket.inet_aton("10.0.0.10") and outer.data.dport == 4789
        assert outer.data.sum == 0 and outer.df == 0
        vx = outer.data.data
        assert vx[0] == 0x08 and int.from_bytes(vx[4:7], "big") == 42
        inner = vx[8:]
        assert checksums_ok(inner)
        iudp = dpkt.ethernet.Ethernet(inner).data.data
        assert iudp.dport == 8080 and len(iudp.data) == 500
        assert sport_of.setdefault(iudp.sport, outer.data.sport) == outer.data.sport
        assert 32768 <= outer.data.sport <= 60999
    assert len(sport_of) == 3


def test_mixed_holds_each_kind_of_traffic():
    cap = build("mixed", duration=0.5, rate="50M", clients=4, seed=1)
    host_mac = bytes.fromhex("3c22fb123456")
    kinds = defaultdict(int)
    for i in range(len(cap)):
        eth = dpkt.ethernet.Ethernet(cap.frame(i))
        assert checksums_ok(cap.frame(i))
        ip = eth.data
        if isinstance(ip, dpkt.arp.ARP):
            kinds["arp"] += 1
        elif isinstance(ip.data, dpkt.icmp.ICMP):
            kinds[f"icmp{ip.data.type}"] += 1
        elif isinstance(ip.data, dpkt.udp.UDP) and 53 in (ip.data.sport, ip.data.dport):
            kinds["dns"] += 1
        elif isinstance(ip.data, dpkt.tcp.TCP):
            kinds["tcp"] += 1
        if eth.dst[0] & 1:
            kinds["multicast/broadcast"] += 1
        elif eth.dst != host_mac and eth.src != host_mac:
            kinds["other hosts"] += 1
    assert kinds["icmp8"] == kinds["icmp0"] == 5  # one ping per 100 ms
    assert kinds["dns"] == 2 and kinds["arp"] == 2 + 4
    # Each other host: 25 datagrams out (every 20 ms), answers 9 ms later (the last may fall
    # past the end).
    assert kinds["tcp"] > 100 and 4 * 49 <= kinds["other hosts"] <= 4 * 50
    assert kinds["multicast/broadcast"] == 1 + 4 + 4 + 1  # ARPs, mDNS, SSDP
    assert np.all(np.diff(cap.ts_ns) >= 0) and cap.ts_ns[-1] < 500_000_000


@pytest.mark.parametrize("name", ["game-server", "fragments", "vxlan", "mixed"])
def test_same_options_same_bytes(name):
    assert pcap_bytes(build(name, duration=0.01, seed=3)) == pcap_bytes(
        build(name, duration=0.01, seed=3)
    )
    assert pcap_bytes(build(name, duration=0.01, seed=3)) != pcap_bytes(
        build(name, duration=0.01, seed=4)
    )


@settings(max_examples=15, deadline=None)
@given(
    clients=st.integers(1, 300),
    hz=st.sampled_from([20, 30, 60, 64, 66, 128]),
    ms=st.integers(1, 120),
    seed=st.integers(0, 1000),
)
def test_game_property_one_datagram_per_client_per_tick(clients, hz, ms, seed):
    cap = build("game-server", duration=ms / 1000, rate=hz, clients=clients, seed=seed)
    ticks = -(-ms * hz // 1000)
    assert len(cap) == ticks * clients
    seen = defaultdict(int)
    for i in range(len(cap)):
        assert checksums_ok(cap.frame(i))
        ip = dpkt.ethernet.Ethernet(cap.frame(i)).data
        seen[(ip.src, ip.data.sport)] += 1
    assert len(seen) == clients and set(seen.values()) == {ticks}
    assert np.all(np.diff(cap.ts_ns) >= 0)
