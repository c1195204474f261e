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
    # switch 1000, copy + consume 200 -> 2_008_280, work 1000 -> 2_009_280
    assert c["outcome"] == "delivered" and c["app"] == 0
    assert c["cpu_local"] == 400 and c["cpu_l4"] == 300
    assert c["t_done"] == 2_009_280
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
