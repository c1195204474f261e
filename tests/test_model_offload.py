"""Hand-computed scenarios for busy polling (net.core.busy_read / SO_BUSY_POLL) and the NIC's
own receive aggregation (LRO / RSC): every number follows from the kernel rule cited beside it
and the round-number profile tests/data/round-costs.toml (napi poll 500 ns, napi_busy_loop
turn 50 ns, hard IRQ 1000 ns, DMA 1000 ns)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from replay.errors import ConfigError
from replay.model.config import resolve_config
from tests.test_model_breadth import pk, run

ROOT = Path(__file__).parent.parent


def udp(ts: int) -> dict[str, Any]:
    # 100 bytes on the wire: (100 + 24) * 8 bits at 10 Gb/s = 99 ns after ts
    return {"ts_ns": ts, "wire_len": 100, "cap_len": 100, "payload_len": 58}


# ------------------------------------------------------------------------------ busy polling

BP = ["nic.driver=generic", "nic.rx-usecs=0"]  # the IRQ at the first completion, on CPU 0


def cpu_by(r: Any) -> dict[tuple[str, str], int]:
    cpu = pl.from_arrow(r.cpu)
    assert isinstance(cpu, pl.DataFrame)
    return {(str(a), str(b)): int(n) for a, b, n in
            cpu.group_by(["comm", "symbol"]).agg(pl.col("ns").sum()).iter_rows()}


def test_busy_read_polls_the_napi_from_the_reader() -> None:
    rows = [udp(0), udp(100_300), udp(400_000)]
    base = pk(run(rows, *BP))
    # without busy polling every packet takes the interrupt path: visible 99 + 1000 (DMA) =
    # 1099, hard IRQ 1000 -> 2099, softirq 100 + net_rx_action 100 -> poll at 2299, poll 500,
    # driver 100, GRO 50, netif/ip/route/local/udp 100 each -> 3449, wake-up 200 -> 3649; the
    # reader on idle CPU 1: IPI 1000 + wake-up 1000 -> 5649, context switch 1000, copy 100 +
    # consume 100, work 1000 -> 7849: 7750 ns after the wire
    assert (base["t_done"] - base["t_wire"]).to_list() == [7750, 7750, 7750]

    r = run(rows, *BP, "net.core.busy_read=200")
    df = pk(r)
    a, b, c = (df.row(i, named=True) for i in range(3))
    # packet 1: the socket has no napi id yet (sk_mark_napi_id_once at its first skb), so
    # recvmsg sleeps: the interrupt path, as above
    assert a["t_done"] == 7849 and a["t_irq"] == 1099 and a["cpu"] == 0
    # the next recvmsg at 7849: syscall 300 -> 8149, queue empty: napi_busy_loop on queue 0
    # from 8149, taking the NAPI (not SCHED); each turn polls an empty ring: poll 500 +
    # napi_busy_loop 50 = 550 ns. Packet 2 is on the wire at 100_399, visible at 101_399; the
    # turn that sees it starts at 8149 + ceil(93_250 / 550) * 550 = 101_649 (170 empty turns)
    assert b["t_poll"] == 101_649 and b["t_irq"] is None and b["cpu"] == 1
    # poll 500 -> driver 100 (102_249), GRO 50, gro_normal_list: netif..udp 100 each
    # (102_799, no wake-up: the reader is running); the rest of the turn 50 (102_849):
    # loop_end (the queue has it) -> busy_poll_stop's napi->poll 500 (103_349); recvmsg copies
    # 200 (103_549), work 1000 -> 104_549
    assert b["wait_driver"] == 102_249 - 100 - 100_399 and b["cpu_l4"] == 100
    assert b["wait_copy"] == 550 and b["t_done"] == 104_549
    assert b["t_done"] - b["t_wire"] == 4150  # vs 7750: no IRQ, wake-up or switch on the path
    # packet 3 comes after the loop gave up: recvmsg at 104_549 + 300 = 104_849 spins until
    # busy_loop_current_time() (ns >> 10) passes 102 + 200, i.e. from 303 << 10 = 310_272: 374
    # turns -> 310_549, busy_poll_stop's poll -> 311_049, then sleeps; packet 3 takes the
    # interrupt path again
    assert c["t_done"] - c["t_wire"] == 7750 and c["cpu"] == 0
    # ... and after packet 3 the reader busy-polls again: recvmsg 407_849 + 300 = 408_149,
    # (408_149 >> 10) + 200 + 1 = 599 -> until 613_376: 374 turns, busy_poll_stop's poll
    # LINUX_MIB_BUSYPOLLRXPACKETS counts the work of the loop's polls (busy_poll_stop's not)
    assert r.counters["snmp"]["TcpExt"]["BusyPollRxPackets"] == 1
    napi = r.counters["napi"][0]
    # the interrupt of packet 2 still fires (the vector was armed) and finds NAPI_STATE_SCHED:
    # MISSED, cleared by busy_poll_stop. polls: 2 by interrupts; busy ones 170 + 1 + 1, then
    # 374 + 1 twice; re-arms: the 2 interrupt polls and 3 busy_poll_stop completions
    assert (napi["irqs"], napi["polls"], napi["arms"]) == (3, 2 + 172 + 375 + 375, 5)
    by = cpu_by(r)
    # the spinning is the reader's CPU time, as perf shows it: the driver's poll and
    # napi_busy_loop in the app's Command
    assert by[("app0", "driver_poll")] == (172 + 375 + 375) * 500
    assert by[("app0", "napi_busy_loop")] == (170 + 1 + 374 + 374) * 50
    assert by[("app0", "driver_clean_rx")] == 100 and by[("swapper/0", "driver_clean_rx")] == 200
    # more CPU: without busy polling CPU 1 works 3 x (switch 1000 + copy 200 + work 1000 +
    # the next recvmsg 300) = 7500 ns; with it, packet 1 2500, loop 1 170 x 550 + 1200 (poll,
    # driver, GRO, stack, turn) + 500, packet 2 1200 + 300, loops 2 and 3 374 x 550 + 500 each,
    # packet 3 2500
    assert run(rows, *BP).summary["cpu_busy_ns"][1] == 7500
    assert r.summary["cpu_busy_ns"][1] == 2500 + 93_500 + 1700 + 1500 + 2 * 206_200 + 2500


def test_busy_poll_spins_while_an_interrupt_owns_the_napi() -> None:
    # packet 2 (visible at 7099) raises the IRQ on CPU 0 while the reader still works on packet
    # 1; the hard IRQ's napi_schedule takes NAPI_STATE_SCHED at 8099, before the reader's next
    # recvmsg (7849 + syscall 300) starts its busy loop at 8149
    rows = [udp(0), udp(6000)]
    r = run(rows, *BP, "net.core.busy_read=200")
    df = pk(r)
    b = df.row(1, named=True)
    # softirq 100 +
    # net_rx_action 100 -> poll at 8299, poll 500, driver 100, GRO 50, stack 500: the socket
    # has it at 9449. The busy loop meanwhile turns without polling (50 ns each, goto count)
    # from 8149: the turn ending at 8149 + 26 x 50 = 9449 sees the queue; not the owner, so no
    # busy_poll_stop: copy 200, work 1000 -> 10_649
    assert b["t_irq"] == 7099 and b["t_poll"] == 8299 and b["cpu"] == 0
    assert b["t_done"] == 10_649 and b["wait_copy"] == 0
    assert r.counters["snmp"]["TcpExt"]["BusyPollRxPackets"] == 0
    by = cpu_by(r)
    # then the next recvmsg (10_949) owns the idle NAPI until 211 << 10 = 216_064: 373 turns
    assert by[("app0", "napi_busy_loop")] == 26 * 50 + 373 * 50
    assert by[("app0", "driver_poll")] == (373 + 1) * 500


def test_so_busy_poll_overrides_busy_read_and_bad_values_are_refused() -> None:
    rows = [udp(0), udp(100_300)]
    r = run(rows, *BP, "net.core.busy_read=200", "app[0].busy-poll=0")
    assert r.counters["snmp"]["TcpExt"]["BusyPollRxPackets"] == 0
    r = run(rows, *BP, "app[0].busy-poll=200")
    assert r.counters["snmp"]["TcpExt"]["BusyPollRxPackets"] == 1
    # an epoll reader busy-polls for net.core.busy_poll (ep_busy_loop), whatever sk_ll_usec
    # says; a recvmsg reader ignores net.core.busy_poll
    ep = ['app[0].wait="epoll"']
    first = pk(run(rows, *BP, "net.core.busy_read=200")).row(1, named=True)
    r = run(rows, *BP, *ep, "net.core.busy_poll=200")
    assert r.counters["snmp"]["TcpExt"]["BusyPollRxPackets"] == 1
    assert pk(r).row(1, named=True)["t_done"] == first["t_done"] == 104_549
    assert run(rows, *BP, *ep, "net.core.busy_read=200").counters["snmp"]["TcpExt"][
        "BusyPollRxPackets"] == 0
    assert run(rows, *BP, "net.core.busy_poll=200").counters["snmp"]["TcpExt"][
        "BusyPollRxPackets"] == 0
    with pytest.raises(ConfigError, match="wait"):
        resolve_config(None, ['app[0].match="udp dport 9"', 'app[0].wait="select"'])
    with pytest.raises(ConfigError, match="busy_read"):
        resolve_config(None, ["net.core.busy_read=-1"])
    with pytest.raises(ConfigError, match="veth"):
        resolve_config(None, ["nic.driver=veth", "net.core.busy_read=50",
                              'app[0].match="udp dport 9"'])


# ---------------------------------------------------------------- hardware aggregation (LRO)

TCP = ['app[0].match="tcp dport 9000"', "app[0].cpu=1"]


def seg(ts: int, seq: int, *, flags: int = 0x10, ack: int = 1) -> dict[str, Any]:
    # 1000 bytes of payload, 1054 on the wire: (1054 + 24) * 8 bits at 10 Gb/s = 862 ns
    return {"ts_ns": ts, "proto": 6, "sport": 443, "dport": 9000, "tcp_flags": flags,
            "tcp_seq": seq, "tcp_ack": ack, "payload_len": 1000, "wire_len": 1054,
            "cap_len": 1054, "tcp_hlen": 20}


def test_ixgbe_rsc_merges_a_flow_into_one_descriptor() -> None:
    rows = [seg(k * 1000, 5000 + 1000 * k) for k in range(4)] + [
        seg(4000, 9000, flags=0x18),  # PSH: appended, and it ends the RSC
        seg(10_000, 10_000), seg(11_000, 11_000, ack=2)]  # a new ACK number does not match
    r = run(rows, *TCP, "nic.large-receive-offload=true")
    df = pk(r)
    # one skb for the five segments; the sixth and seventh each alone
    assert df["skb"].to_list() == [1, 1, 1, 1, 1, 6, 7]
    assert df["outcome"].to_list() == ["delivered"] * 7
    five = df.head(5)
    # segment 1 is visible at 862 + 1000 = 1862 and opens an RSC; 2-4 append; 5 (PSH, visible
    # at 5862) appends and closes it: the descriptor is written back at 5862, the first
    # completion of an idle queue, so the ITR fires at once: hard IRQ 1000, softirq 100 +
    # net_rx_action 100 -> poll at 7062, ixgbe_poll 500, one ixgbe_clean_rx_irq 100 -> 7662
    assert set(five["t_irq"]) == {5862} and set(five["t_poll"]) == {7062}
    # the descriptor's driver work (100) and GRO (50: the LRO skb passes dev_gro_receive) are
    # shared by its five segments, like the stack's: netif 100, early demux 50, local 100,
    # tcp_v4_rcv 200 + tcp_send_ack 300 (one skb of 5 MSS) + wake-up 200
    assert five["cpu_driver"].to_list() == [20] * 5 and five["cpu_gro"].to_list() == [10] * 5
    assert five["cpu_route"].to_list() == [10] * 5 and five["cpu_l4"].to_list() == [140] * 5
    # waiting in the NIC counts in wait_driver: 7662 - t_wire - 20
    assert five["wait_driver"].to_list() == [7662 - (862 + 1000 * k) - 20 for k in range(5)]
    # the stack ends 7712 + 100 + 100 + 50 + 100 + 200 + 300 = 8562; the wake-up 200, IPI 1000
    # and wake-up latency 1000 -> 10_762, switch 1000, copy 100 + consume 60 (its free, 40, is
    # deferred to CPU 0 that built the skb: skb_attempt_defer_free, TCP 5.19+), work 1000
    assert set(five["t_done"]) == {12_922}
    six, seven = df.row(5, named=True), df.row(6, named=True)
    # segment 6 (visible 11_862) opens an RSC that segment 7 (ACK 2, visible 12_862) closes:
    # written back at 12_862, the IRQ waits for the ITR gap after the last one: 55_862
    assert six["t_irq"] == 55_862
    # segment 7's RSC closes at its timer, the ITR interval (50 us) after it opened: 62_862;
    # the interrupt at 55_862 + 50_000
    assert seven["t_irq"] == 105_862
    eth = r.counters["ethtool"]
    # ixgbe_update_rsc_stats: rsc_count += append_cnt (4), rsc_flush++ for the one RSC skb;
    # rx_queue_0_packets counts skbs (descriptors)
    assert (eth["hw_rsc_aggregated"], eth["hw_rsc_flushed"]) == (4, 1)
    assert eth["rx_queue_0_packets"] == 3 and r.counters["napi"][0]["irqs"] == 3
    assert r.counters["snmp"]["Tcp"]["InSegs"] == 3
    # without it: seven descriptors and no RSC counters
    off = run(rows, *TCP)
    assert off.counters["ethtool"]["rx_queue_0_packets"] == 7
    assert "hw_rsc_aggregated" not in off.counters["ethtool"]


def test_ixgbe_turns_rsc_off_at_low_rx_usecs() -> None:
    # ixgbe_update_rsc: rx-usecs <= IXGBE_MIN_RSC_ITR >> 2 = 6 (and not 1, the dynamic ITR)
    rows = [seg(k * 1000, 5000 + 1000 * k) for k in range(3)]
    r = run(rows, *TCP, "nic.large-receive-offload=true", "nic.rx-usecs=6")
    assert r.counters["ethtool"]["rx_queue_0_packets"] == 3
    assert any("disabling RSC" in n for n in r.notes)


def test_mlx5_lro_closes_at_its_timer_and_counts_segments() -> None:
    rows = [seg(k * 1000, 5000 + 1000 * k) for k in range(6)]
    r = run(rows, *TCP, "nic.driver=mlx5", "nic.large-receive-offload=true")
    df = pk(r)
    assert df["skb"].to_list() == [1] * 6
    # the session opened at 1862 closes at the LRO timeout (MLX5E_DEFAULT_LRO_TIMEOUT 32 us):
    # 33_862; CQE moderation fires rx-usecs (50 us) after that completion
    assert set(df["t_irq"]) == {83_862}
    eth = r.counters["ethtool"]
    # mlx5e_build_rx_skb: rx_packets counts the segments (stats->packets += lro_num_seg - 1),
    # lro_packets the LRO skbs, lro_bytes cqe_bcnt: 54 bytes of headers + 6 x 1000
    assert (eth["rx_packets"], eth["rx_lro_packets"], eth["rx_lro_bytes"]) == (6, 1, 6054)


def test_mlx5_hardware_gro_builds_skbs_from_matching_cqes() -> None:
    rows = [seg(k * 1000, 5000 + 1000 * k) for k in range(20)] + [
        seg(20_000, 25_000, flags=0x18)]  # the 21st has PSH: the NIC closes the session
    r = run(rows, *TCP, "nic.driver=mlx5", "nic.rx-usecs=30", "nic.rx-gro-hw=true")
    df = pk(r)
    # one CQE per segment, written at once: CQE moderation fires 30 us after the first
    # (visible 1862): 31_862; hard IRQ 1000, softirq 100 + net_rx_action 100 -> poll at
    # 33_062, mlx5e_napi_poll 500 -> 33_562; every CQE costs the driver 100 (mlx5e_poll_rx_cq)
    assert set(df["t_irq"]) == {31_862} and set(df["t_poll"]) == {33_062}
    assert df["cpu_driver"].to_list() == [100] * 21
    # CQEs 1-16 match and are appended to the driver's skb; the 17th matches but would not fit
    # (PAGE_SIZE x 16 frags + 1000 > GRO_LEGACY_MAX_SIZE): after its driver work (35_262) the
    # 16-segment skb goes to dev_gro_receive (50): len 16000 = 16 x gso_size 1000, so GRO holds
    # it -> 35_312. CQEs 17-21 make the next skb; the 21st's flush bit sends it after its
    # driver work (35_712): same flow, same gso_size, in sequence: merged (30) -> 35_742, and
    # PSH completes the held skb. One skb of 21 segments up the stack
    assert df["skb"].to_list() == [1] * 21
    gro = df["cpu_gro"].to_list()
    assert gro == [50] + [0] * 15 + [30] + [0] * 4
    w = df["wait_gro"].to_list()
    # (the 21st waits while its skb's merge, charged to the skb's first segment, runs)
    assert (w[0], w[16], w[20]) == (35_312 - 33_662 - 50, 35_742 - 35_262 - 30, 35_742 - 35_712)
    # the stack's CPU shared by 21: netif 100 -> 5 for the first 16, 4 for the rest
    assert df["cpu_netif"].to_list() == [5] * 16 + [4] * 5
    eth = r.counters["ethtool"]
    # mlx5e_shampo_flush_skb: two skbs of count > 1 (16 and 5 segments), 21 packets, their
    # frames' bytes (skb->data_len + skb_headlen * count: 21 x 1054); rx_packets per CQE
    assert (eth["rx_gro_skbs"], eth["rx_gro_packets"], eth["rx_gro_bytes"]) == (2, 21, 22_134)
    assert eth["rx_packets"] == 21 and "rx_lro_packets" not in eth
    assert r.counters["snmp"]["Tcp"]["InSegs"] == 1


@pytest.mark.parametrize("sets, msg", [
    (["nic.driver=generic", "nic.large-receive-offload=true"], "generic has no LRO"),
    (["nic.driver=i40e", "nic.large-receive-offload=true"], "i40e has no LRO"),
    (["nic.driver=veth", "nic.large-receive-offload=true"], "veth has no LRO"),
    (["nic.rx-gro-hw=true"], "ixgbe: it has no NETIF_F_GRO_HW"),
    (["nic.driver=mlx5", "nic.rx-gro-hw=true", "nic.large-receive-offload=true"],
     "packet_merge"),
    (["nic.driver=mlx5", "nic.rx-gro-hw=true", "nic.gro=false"], "needs nic.gro"),
])
def test_offloads_the_driver_lacks_are_refused(sets: list[str], msg: str) -> None:
    with pytest.raises(ConfigError, match=msg):
        resolve_config(None, sets)


# ------------------------------------------------------------------------- end to end (CLI)


def _cli(*args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-m", "replay", *args], check=True,
                         capture_output=True, text=True, env=env)
    return out.stdout


def test_bundled_download_with_rsc_through_replay_run(tmp_path: Path) -> None:
    run_dir = tmp_path / "lro"
    _cli("run", str(ROOT / "traces" / "https-download.pcap"), "-o", str(run_dir),
         "--set", "nic.large-receive-offload=true")
    text = _cli("report", str(run_dir), "--stdio")
    eth = dict(re.findall(r"^\s+(\w+): (\d+)$", text, re.M))
    agg, flushed = int(eth["hw_rsc_aggregated"]), int(eth["hw_rsc_flushed"])
    assert agg > flushed > 0
    # every segment the NIC took is a descriptor or was appended to one
    p = pl.read_parquet(run_dir / "packets.parquet").filter(pl.col("outcome") != "ignored")
    desc = sum(int(v) for k, v in eth.items() if re.fullmatch(r"rx_queue_\d+_packets", k))
    assert desc + agg == p.height
    # each aggregate is one skb of its segments: skbs of 2+ packets = hw_rsc_flushed (software
    # GRO merges nothing else here: an RSC skb is never held, and what the NIC wrote back alone
    # came alone: a PSH segment, the client's ACKs)
    sizes = p.group_by("skb").len()
    assert sizes.filter(pl.col("len") > 1).height == flushed


def test_bundled_game_server_with_busy_read_through_replay_run(tmp_path: Path) -> None:
    run_dir = tmp_path / "bp"
    _cli("run", str(ROOT / "traces" / "game-server.pcap"), "-o", str(run_dir),
         "--set", "net.core.busy_read=50")
    text = _cli("report", str(run_dir), "--stdio")
    n = int(re.search(r"^TcpExtBusyPollRxPackets\s+(\d+)", text, re.M).group(1))  # type: ignore[union-attr]
    assert n > 0
    assert re.search(r"\[k\] napi_busy_loop", text)
    # packets a busy poll took came without an interrupt (t_irq null); busy_poll_stop's last
    # polls take some more the same way
    p = pl.read_parquet(run_dir / "packets.parquet").filter(pl.col("outcome") != "ignored")
    assert p.filter(pl.col("t_irq").is_null()).height >= n


def test_bundled_download_with_mlx5_hardware_gro_through_replay_run(tmp_path: Path) -> None:
    run_dir = tmp_path / "hwgro"
    _cli("run", str(ROOT / "traces" / "https-download.pcap"), "-o", str(run_dir),
         "--set", "nic.driver=mlx5", "--set", "nic.rx-gro-hw=true")
    text = _cli("report", str(run_dir), "--stdio")
    eth = {k: int(v) for k, v in re.findall(r"^\s+(\w+): (\d+)$", text, re.M)}
    p = pl.read_parquet(run_dir / "packets.parquet").filter(pl.col("outcome") != "ignored")
    # one CQE per frame; the driver's skbs of 2+ segments hold rx_gro_packets of them
    assert eth["rx_packets"] == p.height
    assert eth["rx_gro_skbs"] > 0 and 2 * eth["rx_gro_skbs"] <= eth["rx_gro_packets"] <= p.height
    # software GRO goes on merging them: no more skbs than without hardware GRO
    off = tmp_path / "off"
    _cli("run", str(ROOT / "traces" / "https-download.pcap"), "-o", str(off),
         "--set", "nic.driver=mlx5")
    q = pl.read_parquet(off / "packets.parquet").filter(pl.col("outcome") != "ignored")
    assert p["skb"].n_unique() <= q["skb"].n_unique()


@pytest.mark.parametrize(("budget", "taken"), [(0, 8), (4, 4), (8, 8), (16, 16), (64, 30)])
def test_so_busy_poll_budget_sizes_each_busy_poll(budget: int, taken: int) -> None:
    # SO_BUSY_POLL_BUDGET (sk_busy_poll_budget; 0 -> BUSY_POLL_BUDGET = 8): sk_busy_loop hands it
    # to napi_busy_loop, whose napi->poll(napi, budget) takes at most that many. Packet 1 marks
    # the napi id; the reader then owns the idle NAPI from 8149, a turn every 550 ns. 30 frames
    # at 100 Gb/s (~10 ns apart) become visible from 101_399; the turn at 101_649 polls: its
    # 500 ns of poll work lets all 30 become visible, so it takes min(budget, 30); loop_end
    # then holds (the queue has data) and busy_poll_stop's poll takes the rest (not counted).
    rows = [udp(0)] + [udp(100_300)] * 30
    r = run(rows, *BP, "nic.speed=100G", "net.core.busy_read=200",
            f"app[0].busy-poll-budget={budget}")
    assert r.counters["snmp"]["TcpExt"]["BusyPollRxPackets"] == taken
    assert (pk(r)["outcome"] == "delivered").all()


def test_busy_poll_budget_needs_its_kernel() -> None:
    with pytest.raises(ConfigError, match=r"5\.11"):
        resolve_config(None, ['host.kernel="5.10"', 'app[0].match="udp"',
                              "app[0].busy-poll-budget=16"])
    with pytest.raises(ConfigError, match="U16_MAX"):
        resolve_config(None, ['app[0].match="udp"', "app[0].busy-poll-budget=65536"])
    with pytest.raises(ConfigError, match=r"6\.9"):
        resolve_config(None, ['host.kernel="6.6"', 'app[0].match="udp"', 'app[0].wait="epoll"',
                              "app[0].busy-poll-budget=16"])


DEFER_1MS = ["sysfs.napi_defer_hard_irqs=1", "sysfs.gro_flush_timeout=1000000"]


def test_prefer_busy_poll_keeps_the_interrupt_masked() -> None:
    # napi_defer_hard_irqs 1, gro_flush_timeout 1 ms; a packet every 100 us after the first,
    # each found by the reader's busy loop (busy_read 200 us). Packet 1 takes the interrupt and
    # its completion keeps the vector masked (defer count 1) with the watchdog 1 ms out.
    # Without prefer_busy_poll each busy_poll_stop's poll completes with work 0: no reload, the
    # count is spent, the vector is re-armed -> the next packet raises a hard IRQ that finds
    # the poller's SCHED (MISSED): packets 3..11 = 9 IRQs + packet 1's = 10; arms: 10 stops
    # after packets 2..11, the last loop's timeout stop, the watchdog's poll = 12.
    # With it, busy_poll_stop reloads the count (1) and arms the watchdog: the completion
    # spends the count and keeps the vector masked, so no packet after the first raises an
    # IRQ; the watchdog fires once, 1 ms after the last stop, polls nothing and re-arms (1).
    rows = [udp(0)] + [udp(100_300 + k * 100_000) for k in range(10)]
    base = run(rows, *BP, "net.core.busy_read=200", *DEFER_1MS)
    r = run(rows, *BP, "net.core.busy_read=200", *DEFER_1MS, "app[0].prefer-busy-poll=true")
    for x, irqs, arms in ((base, 10, 12), (r, 1, 1)):
        napi = x.counters["napi"][0]
        assert (napi["irqs"], napi["arms"], napi["timers"]) == (irqs, arms, 1)
        assert x.counters["interrupts"]["eth0-rx-0"] == [irqs, 0]
        assert x.counters["snmp"]["TcpExt"]["BusyPollRxPackets"] == 10
        assert (pk(x)["t_done"] - pk(x)["t_wire"]).to_list() == [7750] + [4150] * 10


BURST_APPS = ['app[0].match="udp dport 9000"', "app[0].cpu=1", "app[0].work-ns=20000",
              "app[0].busy-poll=200", 'app[1].match="udp dport 9001"', "app[1].cpu=2",
              "host.cpus=3"]


def _poll_events(r: Any) -> list[tuple[int, int, int, str]]:
    ev = pl.from_arrow(r.events)
    assert isinstance(ev, pl.DataFrame)
    ev = ev.filter(pl.col("kind").cast(pl.Utf8) == "poll").sort("t")
    return [(int(t), int(c), int(v), str(d)) for t, c, v, d in
            ev.select(["t", "cpu", "value", pl.col("detail").cast(pl.Utf8)]).rows()]


@pytest.mark.parametrize("prefer", [False, True])
def test_prefer_busy_poll_takes_the_napi_from_a_busy_softirq(prefer: bool) -> None:
    # Packet 1 (port 9000) marks the reader's napi id; its completion defers the IRQ (count 1,
    # gro_flush_timeout 5 us): the watchdog polls nothing at 9849 and re-arms. 300 datagrams
    # for another socket (port 9001) from 10 us: the IRQ, then the softirq on CPU 0 polls 64
    # per poll (12_299-50_349). The reader (work 20 us after packet 1) starts its busy loop
    # while that softirq owns the NAPI. Without prefer it spins until the softirq has drained
    # the ring (5 polls: 64 x 4 + 44) and polls nothing. With prefer it sets
    # PREFER_BUSY_POLL: the softirq's full poll exits early (napi_complete_done: count 1
    # reloaded and spent, the IRQ stays masked, the NAPI released) and the reader takes the
    # NAPI at once, polling the other 236 by 8 (BusyPollRxPackets; the socket 9000 stays empty,
    # so the loop runs to its timeout and busy_poll_stop's poll finds nothing).
    sets = [*BP, *BURST_APPS, "sysfs.napi_defer_hard_irqs=1", "sysfs.gro_flush_timeout=5000"]
    if prefer:
        sets.append("app[0].prefer-busy-poll=true")
    rows = [udp(0)] + [{**udp(10_000), "dport": 9001} for _ in range(300)]
    r = run(rows, *sets)
    c = r.counters
    polls = _poll_events(r)
    # (the list-RX route hint, 5.7+, makes most of a batch's skbs take ip_route_use_hint (20)
    # instead of the lookup (100): the first full poll ends ~4.7 us sooner than the 54_999 and
    # 55_099 this scenario was worked out with before the hint)
    assert polls[:4] == [(2299, 0, 1, "complete"), (9849, 0, 0, "complete"),
                         (12_299, 0, 64, "weight"),
                         (50_349, 1, 8, "weight") if prefer else (50_419, 0, 64, "weight")]
    assert r.summary["outcomes"]["delivered"] == 301
    if prefer:
        assert c["snmp"]["TcpExt"]["BusyPollRxPackets"] == 236
        assert c["softnet_stat"][0]["processed"] == 65
        assert sum(v for _, cpu, v, _ in polls if cpu == 1) == 236
    else:
        assert c["snmp"]["TcpExt"]["BusyPollRxPackets"] == 0
        assert c["softnet_stat"][0]["processed"] == 301
        assert [v for _, cpu, v, _ in polls if cpu == 0][2:] == [64, 64, 64, 64, 44]


def test_prefer_busy_poll_needs_its_kernel() -> None:
    with pytest.raises(ConfigError, match=r"5\.11"):
        resolve_config(None, ['host.kernel="5.10"', 'app[0].match="udp"',
                              "app[0].prefer-busy-poll=true"])
