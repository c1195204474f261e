"""Hand-computed scenarios for the traffic beyond one UDP flow: IP fragments (reassembly in
ip_local_deliver), ... Every number follows from the kernel rule cited beside it and the
round-number profile tests/data/round-costs.toml (ip_defrag 100 ns, ip_frag_reasm 200 ns)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from replay.model.config import resolve_config
from replay.model.costs import load_profile
from replay.model.simulate import SimResult, simulate
from replay.runner import ReplayOptions
from tests.framegen import frames

ROUND = str(Path(__file__).parent / "data" / "round-costs.toml")
APP = ['app[0].match="udp dport 9000"', "app[0].cpu=1", "app[0].work-ns=1000"]


def run(rows: list[dict[str, Any]], *sets: str) -> SimResult:
    cfg = resolve_config(None, [f'costs.profile="{ROUND}"', "host.cpus=2", "nic.combined=1", *APP,
                                *sets])
    return simulate(frames(rows), cfg, load_profile(ROUND), ReplayOptions())


def pk(r: SimResult) -> pl.DataFrame:
    df = pl.from_arrow(r.packets)
    assert isinstance(df, pl.DataFrame)
    return df


# ------------------------------------------------------------------------------- fragments


def frag(ts: int, off: int, mf: bool, *, ident: int = 7, src: str = "10.0.0.2",
         dst: str = "10.0.0.1", v6: bool = False) -> dict[str, Any]:
    """One fragment of a 4000-byte UDP datagram to port 9000 (IP payload 4008 = 1480+1480+1048).
    Every frame is 1514 bytes on the wire to keep the arithmetic the same for each."""
    first = off == 0
    size = 1480 if mf else 4008 - off
    row: dict[str, Any] = {
        "ts_ns": ts, "wire_len": 1514, "cap_len": 1514, "frag": 1 if first else 2, "frag_off": off,
        "frag_mf": mf, "ip_id": ident, "ip_df": False, "src": src, "dst": dst,
        "payload_len": size - 8 if first else size,
        "sport": 4000 if first else None, "dport": 9000 if first else None,
    }
    if v6:
        row.update(ip_version=6, ethertype=0x86DD, ip_hlen=48)
    return row


def three(ts0: int = 0, gap: int = 1_000_000, **kw: Any) -> list[dict[str, Any]]:
    return [frag(ts0, 0, True, **kw), frag(ts0 + gap, 1480, True, **kw),
            frag(ts0 + 2 * gap, 2960, False, **kw)]


def test_fragments_reassembled_once_by_hand() -> None:
    r = run(three())
    df = pk(r)
    a, b, c = (df.row(i, named=True) for i in range(3))
    # 1514 B + 24 B FCS/preamble/IFG = 12304 bits at 10 Gb/s: last bit at 1230 ns; DMA 1000 ->
    # IRQ 2230; hard IRQ 1000, softirq + net_rx_action 200, napi poll 500 -> driver 3930..4030;
    # GRO 50 (a fragment is never merged); netif, ip, route 100 each -> 4380; ip_local_deliver
    # 100 + ip_defrag 100 -> 4580: held in the queue (-EINPROGRESS), consumed
    assert a["t_wire"] == 1230 and a["t_done"] == 4580
    assert a["outcome"] == "consumed" and a["cpu_local"] == 200 and a["cpu_l4"] is None
    assert a["drop_reason"] is None
    assert b["outcome"] == "consumed" and b["t_done"] == 1_004_580
    # the last fragment completes the datagram (FIRST_IN | LAST_IN, meat == len == 4008):
    # local 100 + defrag 100 + ip_frag_reasm 200 -> 2_004_780; udp 100 -> 2_004_880 (+ wake-up
    # 200 -> l4 ends 2_005_080); the reader wakes 2_004_880 + 200 + 2000 = 2_007_080, context
    # switch 1000, copy + consume 200, and the checksum the copy computes (ixgbe does not check a
    # fragment's L4 checksum: CHECKSUM_NONE -> skb_copy_and_csum_datagram_msg, 0.1 ns x 4000 B)
    # -> 2_008_680, work 1000 -> 2_009_680
    assert c["outcome"] == "delivered" and c["app"] == 0
    assert c["cpu_local"] == 400 and c["cpu_l4"] == 300 and c["cpu_copy"] == 600
    assert c["t_done"] == 2_009_680
    # the datagram's flow is the first fragment's (later fragments have no ports)
    assert c["flow"] == a["flow"] != b["flow"]
    snmp = r.counters["snmp"]
    assert snmp["Ip"]["InReceives"] == 3  # ip_rcv sees every fragment
    assert snmp["Ip"]["InDelivers"] == 1  # ip_protocol_deliver_rcu: the datagram once
    assert (snmp["Ip"]["ReasmReqds"], snmp["Ip"]["ReasmOKs"], snmp["Ip"]["ReasmFails"]) == (3, 1, 0)
    assert snmp["Udp"]["InDatagrams"] == 1 and snmp["Udp"]["NoPorts"] == 0
    # cpu.parquet: the two symbols of reassembly in the local stage
    cpu = pl.from_arrow(r.cpu)
    assert isinstance(cpu, pl.DataFrame)
    by = dict(cpu.group_by("symbol").agg(pl.col("ns").sum()).iter_rows())
    assert by["ip_defrag"] == 300 and by["inet_frag_reasm_finish"] == 200


def test_fragments_out_of_order_and_duplicate() -> None:
    # last, first, the first again (inside a queued fragment: IPFRAG_DUP), then the middle one
    rows = [frag(0, 2960, False), frag(1_000_000, 0, True), frag(2_000_000, 0, True),
            frag(3_000_000, 1480, True)]
    r = run(rows)
    df = pk(r)
    assert df["outcome"].to_list() == ["consumed", "consumed", "dropped", "delivered"]
    assert df["drop_reason"].to_list()[2] == "DUP_FRAG"
    # a duplicate is freed at once: local 100 + defrag 100 + kfree_skb 10
    assert df.row(2, named=True)["cpu_local"] == 210
    ip = r.counters["snmp"]["Ip"]
    assert (ip["ReasmReqds"], ip["ReasmOKs"], ip["ReasmFails"]) == (4, 1, 0)


def test_fragment_timeout_drops_the_queue_after_ipfrag_time() -> None:
    # the last fragment never comes: ip_expire fires at jiffies + ipfrag_time. The queue was made
    # at 4380 ns (jiffy 0 at HZ 250), so the timer fires at 7500 jiffies = 30 s exactly
    r = run(three()[:2])
    df = pk(r)
    assert df["outcome"].to_list() == ["dropped", "dropped"]
    assert df["drop_reason"].to_list() == ["FRAG_REASM_TIMEOUT"] * 2
    assert df["drop_stage"].to_list() == ["local", "local"]
    assert df["t_done"].to_list() == [30_000_000_000] * 2
    # the wait in the queue is the local stage's wait
    assert df.row(0, named=True)["wait_local"] == 30_000_000_000 - 4380 - 200
    ip = r.counters["snmp"]["Ip"]
    assert (ip["ReasmReqds"], ip["ReasmOKs"], ip["ReasmFails"], ip["ReasmTimeout"]) == (2, 0, 1, 1)
    # a shorter sysctl: 2 s = 500 jiffies
    r = run(three()[:2], "net.ipv4.ipfrag_time=2")
    assert pk(r)["t_done"].to_list() == [2_000_000_000] * 2


def test_fragment_memory_over_high_thresh_fails_every_fragment() -> None:
    # high_thresh 2000: the first fragment makes a queue (200 B of struct ipq + truesize 2304 ->
    # 2504 > 2000); inet_frag_find then refuses every fragment: ReasmFails, kfree_skb
    r = run(three(), "net.ipv4.ipfrag_high_thresh=2000", "net.ipv4.ipfrag_low_thresh=0")
    df = pk(r)
    assert df["outcome"].to_list() == ["dropped"] * 3
    assert df["drop_reason"].to_list() == ["FRAG_REASM_TIMEOUT", "NOT_SPECIFIED", "NOT_SPECIFIED"]
    ip = r.counters["snmp"]["Ip"]
    assert (ip["ReasmReqds"], ip["ReasmOKs"], ip["ReasmFails"], ip["ReasmTimeout"]) == (3, 0, 3, 1)


def test_fragment_too_far_reinits_the_queue() -> None:
    # ipfrag_max_dist 1: the peer 10.0.0.2 counts its fragments (rid). A1 rid 1; B1 (another
    # datagram) rid 2; A2 rid 3: 3 - 1 > 1 -> ip_frag_reinit: A1 dropped FRAG_TOO_FAR, ReasmFails,
    # A2 starts the queue again with a new timer; A3 rid 4: 4 - 3 = 1, queued. A never gets its
    # first fragment back: A2, A3 time out 30 s after the reinit; B1 times out too
    ms = 1_000_000
    rows = [frag(0, 0, True), frag(ms, 0, True, ident=8), frag(2 * ms, 1480, True),
            frag(3 * ms, 2960, False)]
    r = run(rows, "net.ipv4.ipfrag_max_dist=1")
    df = pk(r)
    assert df["drop_reason"].to_list() == ["FRAG_TOO_FAR", "FRAG_REASM_TIMEOUT",
                                           "FRAG_REASM_TIMEOUT", "FRAG_REASM_TIMEOUT"]
    # A1 is dropped when A2 reaches ip_defrag (2 ms + 4380 ns: the route stage's end)
    assert df["t_done"].to_list()[0] == 2 * ms + 4380
    # B1's timer: made at jiffy 0 -> 30 s; A's re-armed at jiffy 0 (2 ms / 4 ms) -> 30 s as well
    assert df["t_done"].to_list()[1:] == [30_000_000_000] * 3
    ip = r.counters["snmp"]["Ip"]
    assert (ip["ReasmReqds"], ip["ReasmOKs"], ip["ReasmFails"], ip["ReasmTimeout"]) == (4, 0, 3, 2)
    # the default max_dist 64 keeps A: it completes, B1 alone times out
    r = run(rows)
    assert pk(r)["outcome"].to_list() == ["consumed", "dropped", "consumed", "delivered"]
    ip = r.counters["snmp"]["Ip"]
    assert (ip["ReasmOKs"], ip["ReasmFails"], ip["ReasmTimeout"]) == (1, 1, 1)


def test_ipv6_fragments_count_in_snmp6_with_a_60s_timer() -> None:
    six = dict(v6=True, src="2001:db8::2", dst="2001:db8::1")
    r = run(three(**six))
    df = pk(r)
    assert df["outcome"].to_list() == ["consumed", "consumed", "delivered"]
    s6 = r.counters["snmp6"]
    assert (s6["Ip6ReasmReqds"], s6["Ip6ReasmOKs"], s6["Ip6ReasmFails"]) == (3, 1, 0)
    assert s6["Udp6InDatagrams"] == 1 and s6["Ip6InReceives"] == 3 and s6["Ip6InDelivers"] == 1
    assert r.counters["snmp"]["Ip"]["ReasmReqds"] == 0
    # ip6frag_time 60 s = 15000 jiffies at HZ 250
    r = run(three(**six)[:1])
    assert pk(r)["t_done"].to_list() == [60_000_000_000]
    assert r.counters["snmp6"]["Ip6ReasmTimeout"] == 1


def test_fragments_key_includes_the_protocol_on_ipv4() -> None:
    # same (saddr, daddr, id) but a different protocol: two queues (frag_v4_compare_key)
    rows = three()
    rows[1] = {**rows[1], "proto": 6}
    r = run(rows)
    ip = r.counters["snmp"]["Ip"]
    assert (ip["ReasmOKs"], ip["ReasmFails"], ip["ReasmTimeout"]) == (0, 2, 2)


def test_fragments_bundled_scenario_matches_tshark_reassembly(tmp_path: Path) -> None:
    """`replay synth fragments` end to end: every frame is a reassembly request; the datagrams
    tshark reassembles (its own defragmenter, independent of ours) are the ReasmOKs."""
    out = tmp_path / "frag.pcap"
    run_dir = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}
    py = [sys.executable, "-m", "replay"]
    subprocess.run([*py, "synth", "fragments", "-o", str(out), "--duration", "0.005"],
                   check=True, capture_output=True, env=env)
    subprocess.run([*py, "run", str(out), "-o", str(run_dir), "--set", "host.cpus=2"],
                   check=True, capture_output=True, env=env)
    counters = json.loads((run_dir / "run.json").read_text())["counters"]
    frames_n = json.loads((run_dir / "run.json").read_text())["summary"]["frames"]
    ip = counters["snmp"]["Ip"]
    assert ip["ReasmReqds"] == frames_n
    if shutil.which("tshark") is None:
        pytest.skip("tshark not installed: the independent count of datagrams is not available")
    res = subprocess.run(["tshark", "-r", str(out), "-Y", "udp"], capture_output=True, text=True,
                         check=True)
    datagrams = len([ln for ln in res.stdout.splitlines() if ln.strip()])
    assert datagrams > 0
    assert ip["ReasmOKs"] == datagrams
    assert counters["snmp"]["Udp"]["InDatagrams"] == datagrams


# ---------------------------------------------------------------------------- ip_summed


def big(**kw: Any) -> dict[str, Any]:
    """A 1000-byte UDP datagram to port 9000: 1042 bytes on the wire, last bit at 852 ns."""
    return {"ts_ns": 0, "wire_len": 1042, "cap_len": 1042, "payload_len": 1000, **kw}


def test_checksum_none_is_computed_in_gro_and_not_again_at_copy() -> None:
    # the path of test_two_frames_every_stage_by_hand shifted by the longer frame: t_wire 852,
    # driver 3552..3652, GRO 50 -> 3702, netif/ip/route/local/udp 100 each -> 4202, the reader
    # wakes 4202 + 200 + 2000, switch 1000, copy 200, work 1000 -> 8602
    on = pk(run([big()])).row(0, named=True)
    assert on["t_wire"] == 852 and on["t_done"] == 8602 and on["cpu_gro"] == 50
    # ethtool -K rx off: CHECKSUM_NONE; udp4_gro_receive validates it (csum_partial, 0.1 ns x
    # 1000 B = 100 ns in the gro stage) and marks it CHECKSUM_UNNECESSARY: the copy does not sum
    r = run([big()], "nic.rx-checksumming=false")
    off = pk(r).row(0, named=True)
    assert off["cpu_gro"] == 150 and off["cpu_copy"] == 200 and off["t_done"] == 8702
    cpu = pl.from_arrow(r.cpu)
    assert isinstance(cpu, pl.DataFrame)
    assert cpu.filter(pl.col("symbol") == "csum_partial")["stage"].to_list() == ["gro"]
    # no GRO (netif_elide_gro: no GRO work at all): udp_recvmsg copies with
    # skb_copy_and_csum_datagram_msg: copy 200 + 100
    nogro = pk(run([big()], "nic.rx-checksumming=false", "nic.gro=false")).row(0, named=True)
    assert nogro["cpu_gro"] == 0 and nogro["cpu_copy"] == 300 and nogro["t_done"] == 8652


def test_checksum_none_tcp_without_gro_is_summed_in_tcp_v4_rcv() -> None:
    seg = {"ts_ns": 0, "proto": 6, "sport": 443, "dport": 9000, "tcp_flags": 0x18,
           "wire_len": 1054, "cap_len": 1054, "payload_len": 1000, "tcp_hlen": 32}
    app = ['app[0].match="tcp dport 9000"']
    a = pk(run([seg], "nic.gro=false", *app)).row(0, named=True)
    b = pk(run([seg], "nic.gro=false", "nic.rx-checksumming=false", *app)).row(0, named=True)
    # tcp_checksum_complete over the 1000-byte segment: + 100 ns in the l4 stage, nowhere else
    assert b["cpu_l4"] - a["cpu_l4"] == 100
    assert (b["cpu_gro"], b["cpu_copy"]) == (a["cpu_gro"], a["cpu_copy"])
    assert b["t_done"] - a["t_done"] == 100


def test_mlx5_checksum_counters() -> None:
    # mlx5e_handle_csum: an IP frame over 64 bytes -> CHECKSUM_COMPLETE (no per-byte work later);
    # a 60-byte UDP frame -> CHECKSUM_UNNECESSARY (short_frame); ARP -> CHECKSUM_NONE
    arp = {"ts_ns": 2_000_000, "ip_version": 0, "ethertype": 0x0806, "proto": None,
           "sport": None, "dport": None, "dst_mac": b"\xff" * 6, "payload_len": 0}
    r = run([big(), {"ts_ns": 1_000_000}, arp], "nic.driver=mlx5", "nic.rx=1024",
            "host.addresses=[\"10.0.0.1\", \"02:00:00:00:00:01\"]")
    e = r.counters["ethtool"]
    assert (e["rx_csum_complete"], e["rx_csum_unnecessary"], e["rx_csum_none"]) == (1, 1, 1)
    assert pk(r).row(0, named=True)["cpu_copy"] == 200


def test_zero_udp_checksum_is_refused_over_ipv6_only() -> None:
    six = {"ip_version": 6, "ethertype": 0x86DD, "src": "2001:db8::2", "dst": "2001:db8::1",
           "ip_hlen": 40, "l4_csum_zero": True}
    r = run([{"ts_ns": 0, **six}])
    row = pk(r).row(0, named=True)
    assert (row["outcome"], row["drop_stage"], row["drop_reason"]) == ("dropped", "l4", "UDP_CSUM")
    s6 = r.counters["snmp6"]
    assert (s6["Udp6InCsumErrors"], s6["Udp6InErrors"], s6["Udp6InDatagrams"]) == (1, 1, 0)
    # over IPv4 a zero checksum means "none sent": delivered
    assert pk(run([{"ts_ns": 0, "l4_csum_zero": True}]))["outcome"].to_list() == ["delivered"]


def _real(name: str) -> Path:
    from tests.oracle import corpus_dir

    p = corpus_dir() / name
    if not p.exists():
        pytest.skip(f"{p} not found: set STACK_REPLAY_SHARED to the folder holding traces-real")
    return p


def _run_capture(path: Path, *sets: str) -> SimResult:
    from replay.capture import read_captures

    cap = read_captures([path])
    table = cap.frames if hasattr(cap, "frames") else cap.table  # type: ignore[attr-defined]
    cfg = resolve_config(None, list(sets))
    return simulate(table, cfg, load_profile("default"), ReplayOptions())


def test_real_ipv4_fragments_with_retransmitted_datagrams() -> None:
    """PcapPlusPlus ip4_fragments.pcap: NFS over UDP to 10.118.213.211, six 8 kB datagrams in six
    fragments each; the last three were sent twice (RPC retransmissions, same IP IDs). Kernel
    rules: the second copies inside a live queue are DUP_FRAG; a copy arriving after its datagram
    completed finds no queue (it was unhashed), makes a new one that never completes and times out
    30 s later. tshark, reassembling on its own, finds the same six datagrams (its `rpc` count)."""
    r = _run_capture(_real("pcapplusplus__ip4_fragments.pcap"))
    ip = r.counters["snmp"]["Ip"]
    assert (ip["ReasmReqds"], ip["ReasmOKs"], ip["ReasmFails"], ip["ReasmTimeout"]) == (50, 6, 2, 2)
    df = pk(r)
    drops = dict(df.filter(pl.col("outcome") == "dropped").group_by("drop_reason").len().iter_rows())
    assert drops == {"DUP_FRAG": 12, "FRAG_REASM_TIMEOUT": 2}
    assert df.filter(pl.col("outcome") == "delivered")["frame"].to_list() == [6, 12, 18, 28, 40, 53]
    assert r.counters["snmp"]["Udp"]["InDatagrams"] == 6


def test_real_ipv6_fragments() -> None:
    """PcapPlusPlus ip6_fragments.pcap: 36 IPv6 fragments of 4 UDP datagrams (mDNS and WS-
    Discovery to ff02::c / ff02::fb), tshark reassembles 4 `udp` datagrams as well."""
    r = _run_capture(_real("pcapplusplus__ip6_fragments.pcap"))
    s6 = r.counters["snmp6"]
    assert (s6["Ip6ReasmReqds"], s6["Ip6ReasmOKs"], s6["Ip6ReasmFails"]) == (36, 4, 0)
    assert s6["Udp6InDatagrams"] == 4


# ------------------------------------------------------------------------ SO_REUSEPORT


def _ref_jhash_3words(a: int, b: int, c: int, initval: int) -> int:
    """include/linux/jhash.h transcribed on Python ints, one value at a time."""
    m = 0xFFFFFFFF

    def rol(x: int, k: int) -> int:
        return ((x << k) | (x >> (32 - k))) & m

    iv = (initval + 0xDEADBEEF + 12) & m
    a, b, c = (a + iv) & m, (b + iv) & m, (c + iv) & m
    c = ((c ^ b) - rol(b, 14)) & m
    a = ((a ^ c) - rol(c, 11)) & m
    b = ((b ^ a) - rol(a, 25)) & m
    c = ((c ^ b) - rol(b, 16)) & m
    a = ((a ^ c) - rol(c, 4)) & m
    b = ((b ^ a) - rol(a, 14)) & m
    c = ((c ^ b) - rol(b, 24)) & m
    return c


def _ref_udp_ehash4(daddr: str, dport: int, saddr: str, sport: int, secret: int) -> int:
    """udp_ehashfn on x86: the __be32 addresses and the __be16 source port read little-endian."""
    import ipaddress

    la = int.from_bytes(ipaddress.IPv4Address(daddr).packed, "little")
    fa = int.from_bytes(ipaddress.IPv4Address(saddr).packed, "little")
    fport = int.from_bytes(sport.to_bytes(2, "big"), "little")
    return _ref_jhash_3words(la, fa, (dport << 16) | fport, secret)


def test_jhash_3words_matches_the_header_transcription() -> None:
    import numpy as np

    from replay.model.classify import jhash_3words

    rng = np.random.default_rng(5)
    w = rng.integers(0, 2**32, size=(200, 4), dtype=np.uint64)
    got = jhash_3words(w[:, 0], w[:, 1], w[:, 2], int(w[0, 3]))
    want = [_ref_jhash_3words(int(x), int(y), int(z), int(w[0, 3])) for x, y, z, _ in w]
    assert got.tolist() == want


REUSE = [f'app[{i}].match="udp dport 9000"' for i in range(4)] + \
    [f"app[{i}].reuseport=true" for i in range(4)] + [f"app[{i}].cpu=1" for i in range(4)]


def _clients(n: int) -> list[dict[str, Any]]:
    return [{"ts_ns": k * 100_000, "src": f"198.51.100.{k % 250 + 1}", "sport": 10000 + 7 * k}
            for k in range(n)]


@pytest.mark.parametrize("secret", [0, 0x9E3779B9])
def test_reuseport_group_spreads_by_udp_ehashfn(secret: int) -> None:
    rows = _clients(64)
    r = run(rows, *REUSE, f"host.ehash-secret={secret}")
    want = [(_ref_udp_ehash4("10.0.0.1", 9000, x["src"], x["sport"], secret) * 4) >> 32 for x in rows]
    assert pk(r)["app"].to_list() == want
    assert len(set(want)) == 4  # 64 flows reach every member


def test_reuseport_passes_over_connected_members() -> None:
    # member 1 is connected: reuseport_select_sock_by_hash steps from it to member 2
    rows = _clients(64)
    r = run(rows, *REUSE, "app[1].connected=true")
    start = [(_ref_udp_ehash4("10.0.0.1", 9000, x["src"], x["sport"], 0) * 4) >> 32 for x in rows]
    assert pk(r)["app"].to_list() == [2 if s == 1 else s for s in start]


def test_connected_udp_socket_takes_early_demux() -> None:
    # the two-frame path of test_model_scenarios with udp_v4_early_demux (50) instead of the FIB
    # lookup (100): 50 ns less, in the route stage
    base = pk(run([{"ts_ns": 0}])).row(0, named=True)
    r = run([{"ts_ns": 0}], "app[0].connected=true")
    row = pk(r).row(0, named=True)
    assert base["cpu_route"] == 100 and row["cpu_route"] == 50
    assert row["t_done"] == base["t_done"] - 50 == 7767
    cpu = pl.from_arrow(r.cpu)
    assert isinstance(cpu, pl.DataFrame)
    assert "udp_v4_early_demux" in cpu["symbol"].to_list()
    assert "ip_route_input_noref" not in cpu["symbol"].to_list()


def test_reuseport_scenario_end_to_end(tmp_path: Path) -> None:
    """`replay synth reuseport` (DNS queries from 1000 clients) through the CLI with a group of
    four sockets: each socket's reads equal the flows the header transcription sends it."""
    out = tmp_path / "dns.pcap"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}
    py = [sys.executable, "-m", "replay"]
    subprocess.run([*py, "synth", "reuseport", "-o", str(out), "--duration", "0.01",
                    "--flows", "1000"], check=True, capture_output=True, env=env)
    cfg = tmp_path / "c.toml"
    cfg.write_text("[host]\ncpus = 4\nehash-secret = 12345\n" + "".join(
        f'[[app]]\nname = "dns{i}"\nmatch = "udp dport 53"\ncpu = {i}\nreuseport = true\n'
        for i in range(4)))
    run_dir = tmp_path / "run"
    subprocess.run([*py, "run", str(out), "-c", str(cfg), "-o", str(run_dir)], check=True,
                   capture_output=True, env=env)
    from replay.capture import read_captures

    cap = read_captures([out])
    fr = pl.from_arrow(cap.frames if hasattr(cap, "frames") else cap.table)  # type: ignore[attr-defined]
    assert isinstance(fr, pl.DataFrame)
    import ipaddress

    want = [0, 0, 0, 0]
    for src, sport in fr.select(["src", "sport"]).iter_rows():
        s = str(ipaddress.IPv4Address(src[12:]))
        want[(_ref_udp_ehash4("10.0.0.53", 53, s, sport, 12345) * 4) >> 32] += 1
    got = pl.read_parquet(run_dir / "packets.parquet").filter(pl.col("outcome") == "delivered")
    counts = [got.filter(pl.col("app") == i).height for i in range(4)]
    assert counts == want and sum(want) == fr.height


def test_udp_gro_socket_aggregates_a_train() -> None:
    # six 1000-byte datagrams 1 us apart, then a 500-byte one and a
    # 1200-byte one, all in one poll (generic ethtool rule: the IRQ 10 us after the first
    # completion): udp_gro_receive_segment appends while ulen <= gso_size (1000); the 500-byte
    # datagram is appended and completes the skb (len mismatch); the 1200-byte one starts anew
    rows = [big(ts_ns=k * 1000) for k in range(6)] + [
        big(ts_ns=6000, payload_len=500, wire_len=542, cap_len=542),
        big(ts_ns=7000, payload_len=1200, wire_len=1242, cap_len=1242)]
    r = run(rows, "app[0].udp-gro=true", "nic.rx-usecs=10", "nic.driver=generic")
    df = pk(r)
    assert df["skb"].to_list() == [1] * 7 + [8]
    assert df["outcome"].to_list() == ["delivered"] * 8
    assert df["cpu_gro"].to_list() == [50, 30, 30, 30, 30, 30, 30, 50]
    # one skb up the stack: softnet processed and Udp InDatagrams count skbs, not datagrams
    assert r.counters["softnet_stat"][0]["processed"] == 2
    assert r.counters["snmp"]["Udp"]["InDatagrams"] == 2
    cpu = pl.from_arrow(r.cpu)
    assert isinstance(cpu, pl.DataFrame)
    seg = cpu.filter(pl.col("symbol") == "udp_gro_receive_segment")
    assert seg["frames"].sum() == 6 and seg["ns"].sum() == 180
    # without UDP_GRO on the socket: every datagram is its own skb
    plain = run(rows, "nic.rx-usecs=10", "nic.driver=generic")
    assert pk(plain)["skb"].to_list() == list(range(1, 9))
    # a zero checksum is never aggregated ("requires non zero csum, for symmetry with GSO")
    z = run([{**x, "l4_csum_zero": True} for x in rows], "app[0].udp-gro=true", "nic.rx-usecs=10",
            "nic.driver=generic")
    assert pk(z)["skb"].to_list() == list(range(1, 9))


# ---------------------------------------------------------------------------- tunnels


def vx(**kw: Any) -> dict[str, Any]:
    """A VXLAN frame to this host: outer UDP to 4789 carrying UDP to port 8080 (100 bytes)."""
    return {"ts_ns": 0, "sport": 50000, "dport": 4789, "payload_len": 8 + 14 + 20 + 8 + 100,
            "tunnel": "vxlan", "inner_proto": 17, "inner_sport": 1234, "inner_dport": 8080, **kw}


INNER_APP = ['app[0].match="udp dport 8080"', "app[0].cpu=1", "app[0].work-ns=1000"]


def test_vxlan_decapsulated_with_a_second_pass_by_hand() -> None:
    cfg = resolve_config(None, [f'costs.profile="{ROUND}"', "host.cpus=2", "nic.combined=1",
                                *INNER_APP, 'tunnel[0].type="vxlan"'])
    r = simulate(frames([vx()]), cfg, load_profile(ROUND), ReplayOptions())
    row = pk(r).row(0, named=True)
    # as test_two_frames_every_stage_by_hand up to the outer ip_local_deliver (3317); then udp_rcv
    # 100 + vxlan_rcv 100 + the inner pass (gro_cell_poll 50, core, ip_rcv, routing, local 100
    # each) + the inner udp_rcv 100 = 750 -> 4067 (+ wake-up 200); the reader wakes
    # 4067 + 200 + 2000, switch 1000, copy 200, work 1000 -> 8467
    assert row["outcome"] == "delivered" and row["app"] == 0
    assert row["cpu_local"] == 100 and row["cpu_l4"] == 950
    assert row["t_done"] == 8467
    c = r.counters
    assert c["softnet_stat"][0]["processed"] == 2  # outer and inner skb
    assert (c["snmp"]["Ip"]["InReceives"], c["snmp"]["Ip"]["InDelivers"]) == (2, 2)
    assert c["snmp"]["Udp"]["InDatagrams"] == 2  # the outer at encap_rcv, the inner at recvmsg
    cpu = pl.from_arrow(r.cpu)
    assert isinstance(cpu, pl.DataFrame)
    l4 = cpu.filter(pl.col("stage") == "l4").group_by("symbol").agg(pl.col("ns").sum())
    assert dict(l4.iter_rows()) == {
        "__udp4_lib_rcv": 200, "vxlan_rcv": 100, "gro_cell_poll": 50,
        "__netif_receive_skb_core": 100, "ip_rcv": 100, "ip_route_input_noref": 100,
        "ip_local_deliver": 100, "try_to_wake_up": 200}
    # the same frame without [[tunnel]]: nothing listens on 4789
    r = run([vx()], *INNER_APP[:1])
    assert pk(r)["drop_reason"].to_list() == ["NO_SOCKET"]
    assert r.counters["snmp"]["Udp"]["NoPorts"] == 1


def test_gre_and_geneve_tunnels() -> None:
    gre = {"ts_ns": 0, "proto": 47, "sport": None, "dport": None, "payload_len": 4 + 20 + 8 + 56,
           "tunnel": "gre", "inner_proto": 1, "inner_sport": 0, "inner_dport": 0}
    r = run([gre], 'tunnel[0].type="gre"')
    assert pk(r)["outcome"].to_list() == ["consumed"]  # the inner ICMP ends in icmp_rcv
    assert r.counters["snmp"]["Ip"]["InReceives"] == 2
    assert r.counters["snmp"]["Udp"]["InDatagrams"] == 0
    # without the tunnel GRE is a protocol nobody handles
    assert pk(run([gre]))["drop_reason"].to_list() == ["IP_NOPROTO"]
    # GENEVE on a non-default port: only frames to that port are decapsulated
    gen = vx(dport=7000, tunnel="geneve")
    r = run([gen, {**gen, "ts_ns": 1_000_000, "dport": 6081}], *INNER_APP,
            'tunnel[0].type="geneve"', "tunnel[0].port=7000")
    assert pk(r)["outcome"].to_list() == ["delivered", "dropped"]


def test_real_vxlan_capture_decapsulated() -> None:
    """tcpdump's vxlan.pcap: pings and one ARP inside VXLAN between two VTEPs; the host (inferred:
    192.168.202.1) receives frames 1, 3, 5, 7, 9 — four inner ICMP echo requests and an inner ARP
    reply. With [[tunnel]] vxlan each goes through the stack twice: 10 skbs in
    __netif_receive_skb_core, ip_rcv 5 outer + 4 inner (ARP is not IP), Udp InDatagrams 5 (the
    outer datagrams at encap_rcv)."""
    r = _run_capture(_real("tcpdump__vxlan.pcap"), 'tunnel[0].type="vxlan"')
    got = pk(r).filter(pl.col("outcome") != "ignored")
    assert got["frame"].to_list() == [1, 3, 5, 7, 9]
    assert set(got["outcome"].to_list()) == {"consumed"}
    assert sum(x["processed"] for x in r.counters["softnet_stat"]) == 10
    ip = r.counters["snmp"]["Ip"]
    assert (ip["InReceives"], ip["InDelivers"]) == (9, 9)
    assert r.counters["snmp"]["Udp"]["InDatagrams"] == 5


def test_real_geneve_capture_decapsulated() -> None:
    r = _run_capture(_real("zeek__geneve.pcap"), 'tunnel[0].type="geneve"')
    got = pk(r).filter(pl.col("outcome") != "ignored")
    n = got.height
    assert n > 0 and set(got["outcome"].to_list()) == {"consumed"}
    assert sum(x["processed"] for x in r.counters["softnet_stat"]) == 2 * n
    assert r.counters["snmp"]["Ip"]["InReceives"] == 2 * n


# ------------------------------------------------------------------------- TCP receive


TCP_APP = ['app[0].match="tcp dport 9000"', "app[0].cpu=1"]


def seg(ts: int, seq: int, *, flags: int = 0x10, n: int = 1000, **kw: Any) -> dict[str, Any]:
    return {"ts_ns": ts, "proto": 6, "sport": 443, "dport": 9000, "tcp_flags": flags,
            "tcp_seq": seq, "tcp_ack": 1, "payload_len": n, "wire_len": 54 + n, "cap_len": 54 + n,
            "tcp_hlen": 20, **kw}


def test_tcp_acks_quickack_then_every_second_segment() -> None:
    ms = 1_000_000
    rows = [seg(0, 999, flags=0x12, n=0)] + [seg((k + 1) * ms, 1000 + 1000 * k) for k in range(21)]
    r = run(rows, *TCP_APP)
    tcp = r.counters["snmp"]["Tcp"]
    # the SYN-ACK's ACK; 16 quick ACKs (tcp_incr_quickack(TCP_MAX_QUICKACKS) at the first data);
    # then segments 17..21 alone: 17 arms the delayed ACK, 18 (2 full frames unacked) sends one,
    # 19 arms, 20 sends, 21 arms and its timer fires after the trace: 1 + 16 + 2 + 1
    assert tcp["OutSegs"] == 20 and tcp["OutRsts"] == 0
    assert r.counters["snmp"]["TcpExt"]["DelayedACKs"] == 1
    df = pk(r)
    l4 = df["cpu_l4"].to_list()
    # tcp_v4_rcv 200 (+ tcp_send_ack 300 when an ACK leaves on the receive path, + wake-up 200
    # when the reader sleeps)
    acked = [x - 200 >= 300 for x in l4]
    assert acked[:17] == [True] * 17
    assert acked[17:] == [False, True, False, True, False]
    # a 50 ms gap lets the delayed-ACK timer (HZ/25 = 40 ms) fire before the next segment
    rows2 = [*rows[:18], seg(18 * ms + 50 * ms, 1000 + 1000 * 17)]
    t2 = run(rows2, *TCP_APP).counters
    assert t2["snmp"]["TcpExt"]["DelayedACKs"] == 2  # the 17th's timer, and the 18th's at the end
    assert t2["snmp"]["Tcp"]["OutSegs"] == 1 + 16 + 2
    # host.tcp-acks=false leaves them out
    assert run(rows, *TCP_APP, "host.tcp-acks=false").counters["snmp"]["Tcp"]["OutSegs"] == 0


def test_tcp_one_ack_per_gro_skb_of_two_mss_or_more() -> None:
    # a connection already running (no handshake in the trace: no quickack); three back-to-back
    # segments merged by GRO into one skb of 3000 bytes > rcv_mss 1000: one ACK at once
    rows = [seg(k * 1000, 5000 + 1000 * k) for k in range(3)]
    r = run(rows, *TCP_APP, "nic.driver=generic", "nic.rx-usecs=20")
    assert pk(r)["skb"].to_list() == [1, 1, 1]
    assert r.counters["snmp"]["Tcp"]["OutSegs"] == 1
    assert r.counters["snmp"]["TcpExt"]["DelayedACKs"] == 0


def test_tcp_rst_for_a_closed_port() -> None:
    rows = [seg(0, 1, dport=9999), seg(1_000_000, 1, dport=9999, flags=0x04, n=0),
            seg(2_000_000, 1, dport=9999, flags=0x02, n=0)]
    r = run(rows, *TCP_APP)
    assert pk(r)["drop_reason"].to_list() == ["NO_SOCKET"] * 3
    tcp = r.counters["snmp"]["Tcp"]
    # data and SYN get a RST (tcp_v4_send_reset); a RST does not
    assert (tcp["OutRsts"], tcp["OutSegs"], tcp["InSegs"]) == (2, 2, 3)


def test_download_acks_against_the_clients_own() -> None:
    """The bundled https-download.pcap holds the receiving client's own ACKs (its README: quick
    ACKs for the first 16 data segments, then every second full segment): 413 ACKs without data,
    SYN aside. Replayed without GRO (that client ACKed per segment) the model sends the same 413
    from the softirq, plus one window update from tcp_recvmsg (tcp_cleanup_rbuf) after
    receive-buffer autotuning grew the socket from tcp_rmem[1] = 131072 to 2440504 (the synthetic
    client sends no window updates); with SO_RCVBUF (no autotuning) exactly the client's 413.
    With GRO, one ACK per skb of >= 2 MSS: fewer."""
    trace = Path(__file__).parent.parent / "traces" / "https-download.pcap"
    r = _run_capture(trace, "nic.gro=false")
    assert r.counters["snmp"]["Tcp"]["InSegs"] == 809
    assert r.counters["snmp"]["Tcp"]["OutSegs"] == 414
    acks = pl.from_arrow(r.cpu).filter(pl.col("symbol") == "tcp_send_ack")
    assert dict(acks.group_by("context").agg(pl.col("frames").sum()).iter_rows()) == {
        "softirq": 413, "task": 1}
    grown = pl.from_arrow(r.events).filter(pl.col("kind") == "rcvbuf")["value"].to_list()
    assert grown == [2440504]
    r = _run_capture(trace, "nic.gro=false", 'app[0].match="tcp dport 54321"', "app[0].rcvbuf=131072")
    assert r.counters["snmp"]["Tcp"]["OutSegs"] == 413
    r = _run_capture(trace)
    # 224 from the softirq since the reader's consumed skbs are freed on the IRQ's CPU
    # (skb_attempt_defer_free, TCP 5.19+): the flushes shift the polls and one delayed ACK (225
    # before); + 1 window update after autotuning grew the buffer to 2773132
    assert (r.counters["snmp"]["Tcp"]["InSegs"], r.counters["snmp"]["Tcp"]["OutSegs"]) == (266, 225)
    acks = pl.from_arrow(r.cpu).filter(pl.col("symbol") == "tcp_send_ack")
    assert dict(acks.group_by("context").agg(pl.col("frames").sum()).iter_rows()) == {
        "softirq": 224, "task": 1}
    if shutil.which("tshark"):
        res = subprocess.run(["tshark", "-r", str(trace), "-Y", "ip.src==192.168.1.100 && tcp.len==0"
                              " && !(tcp.flags.syn==1)"], capture_output=True, text=True, check=True)
        assert len(res.stdout.splitlines()) == 413


# ------------------------------------------------------------------------------- IPv6


SIX = {"ip_version": 6, "ethertype": 0x86DD, "src": "2001:db8::2", "dst": "2001:db8::1"}


def test_ipv6_extension_headers_cost_in_local_delivery() -> None:
    plain = pk(run([{"ts_ns": 0, **SIX, "ip_hlen": 40}])).row(0, named=True)
    # a destination-options (8) and a routing header (16): ip6_protocol_deliver_rcu's walk, 50 ns
    r = run([{"ts_ns": 0, **SIX, "ip_hlen": 64}])
    ext = pk(r).row(0, named=True)
    assert plain["cpu_local"] == 100 and ext["cpu_local"] == 150
    assert ext["t_done"] == plain["t_done"] + 50
    s6 = r.counters["snmp6"]
    assert (s6["Ip6InReceives"], s6["Ip6InDelivers"], s6["Udp6InDatagrams"]) == (1, 1, 1)
    assert r.counters["snmp"]["Ip"]["InReceives"] == 0
    for name in ("Ip6InHdrErrors", "Ip6InUnknownProtos", "Ip6InTruncatedPkts", "Ip6ReasmReqds",
                 "Udp6NoPorts", "Udp6InErrors", "Udp6RcvbufErrors", "Udp6InCsumErrors"):
        assert s6[name] == 0, name


def test_real_ipv6_extension_headers() -> None:
    """libpcap's ipv6_ext_headers.pcap: one 872-byte UDP datagram (10 bytes of payload) behind 800
    bytes of extension headers (872 - 14 - 40 - 8 - 10; more than ip_hlen's 255 can say). The
    default profile's walk: 40 + 0.5 x 800 = 440 ns in the local stage."""
    r = _run_capture(_real("libpcap__ipv6_ext_headers.pcap"))
    cpu = pl.from_arrow(r.cpu)
    assert isinstance(cpu, pl.DataFrame)
    walk = cpu.filter(pl.col("symbol") == "ip6_protocol_deliver_rcu")
    assert set(walk["stage"].to_list()) == {"local"}
    assert (walk["frames"].sum(), walk["ns"].sum()) == (1, 440)
    s6 = r.counters["snmp6"]
    assert (s6["Ip6InReceives"], s6["Ip6InDelivers"], s6["Udp6InDatagrams"]) == (1, 1, 1)
