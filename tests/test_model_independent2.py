"""Independent review scenarios, round 2 → expected counters worked out by hand from the kernel.

A second red-team pass over the receive-path model (issue 4), on what tests/test_model_independent.py
does not cover: link serialization per speed, RPS/RFS (rps_cpus, the backlog NAPI and dev_weight,
netdev_max_backlog, the flow limit, IPIs at the end of net_rx_action, the 6.4 change), threaded
NAPI, gro_normal_batch in segments, several NAPIs sharing netdev_budget, ring refill, Intel ITR
register rounding, mlx5 EQE mode with a frame count, UDP rcvbuf arithmetic at other kernels and
sizes, recvmmsg, C-state exit latency, an M/G/1 reader, IPv6/fragment counters and the TCP socket
backlog. Every expected number was derived from the kernel source (net/core/dev.c, net-sysfs.c,
net/ipv4/udp.c, tcp_ipv4.c, kernel/softirq.c, the drivers) and queueing theory before the model
was run; the derivation sits beside each assertion. Costs are tests/data/round-costs.toml (round
numbers), with a few entries replaced per scenario, so times can be followed by hand.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from replay.model.simulate import SimResult
from tests.test_model_independent import (
    MS_KEY,
    TOP,
    pk,
    profile_with,
    run,
    skb_sizes,
    src_for_queue,
    stream,
    toeplitz,
    tuple_bytes,
)

# The RPS entries are [ASSUMED] in the published profiles; round numbers here.
RPS_COSTS = {"stage.backlog": 100, "fixed.backlog_poll": 200, "fixed.ipi_send": 100,
             "fixed.ipi_irq": 500}  # fmt: skip
# A reader on CPU 2 of 4 (CPU 0 takes the IRQ, CPU 1 is the RPS target) that keeps up.
APP2 = ['app[0].match="udp dport 9000"', "app[0].cpu=2", "app[0].rcvbuf=1000000000"]


def rps_profile(tmp_path: Path, **extra: int) -> str:
    entries = {**RPS_COSTS, **{k.replace("__", "."): v for k, v in extra.items()}}
    return profile_with(tmp_path, "rps" + "".join(f"-{v}" for v in extra.values()), entries)


def l4_end(df: pl.DataFrame) -> pl.Series:
    """End of a packet's l4 stage (the socket enqueue): t_wire + every wait and CPU up to l4."""
    t = df["t_wire"]
    for s in ("driver", "gro", "netif", "backlog", "ip", "route", "local", "l4"):
        t = t + df[f"wait_{s}"].fill_null(0) + df[f"cpu_{s}"].fill_null(0)
    return t


def cpu_df(r: SimResult) -> pl.DataFrame:
    df = pl.from_arrow(r.cpu)
    assert isinstance(df, pl.DataFrame)
    return df.with_columns(pl.col(c).cast(pl.Utf8) for c in ("context", "comm", "symbol"))


# ---------------------------------------------------------------------------------------------
# 1. Link serialization (IEEE 802.3: 7 B preamble + 1 B SFD + 12 B inter-frame gap + 4 B FCS the
#    capture lacks; frames shorter than 60 B are padded to 60 before the FCS). Frames captured
#    at the same instant leave the link back to back: frame k's last bit is k x bits/speed after
#    frame 0's.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("speed", "bps"), [("1G", 10**9), ("10G", 10**10), ("25G", 25 * 10**9),
                                            ("100G", 100 * 10**9)])  # fmt: skip
def test_serialization_per_link_speed(speed: str, bps: int) -> None:
    # 40 frames of 1514 B: (1514 + 4 + 20) x 8 = 12304 bits -> 12304 ns at 1G, 1230.4 at 10G,
    # 492.16 at 25G, 123.04 at 100G. Then 40 frames of 42 B (an untagged ARP as the sender
    # captured it, before padding): (60 + 4 + 20) x 8 = 672 bits each.
    rows = [{"ts_ns": 0, "wire_len": 1514, "cap_len": 1514, "payload_len": 1472}] * 40
    rows += [{"ts_ns": 0, "wire_len": 42, "cap_len": 42, "payload_len": 0}] * 40
    r = run(rows, f'nic.speed="{speed}"', "nic.rx=4096", "host.cpus=2", "nic.combined=1",
            'app[0].match="udp dport 9000"', "app[0].cpu=1", "app[0].rcvbuf=1000000000")  # fmt: skip
    t = pk(r).sort("frame")["t_wire"].to_numpy()
    exact = [k * 12304 * 10**9 / bps for k in range(40)]
    exact += [exact[-1] + (k + 1) * 672 * 10**9 / bps for k in range(40)]
    got = t - t[0]
    assert np.all(np.abs(got - np.array(exact)) <= 1.0), list(zip(got[:5], exact[:5], strict=True))
    # the first frame: its last bit is one serialization after the capture time (time 0)
    assert abs(t[0] - 12304 * 10**9 / bps) <= 1.0


# ---------------------------------------------------------------------------------------------
# 2. RPS (KERNEL.md §1 rows 5-5b, §3.5; dev.c get_rps_cpu, enqueue_to_backlog, napi_schedule_rps,
#    rps_trigger_softirq, net_rps_action_and_irq_enable, process_backlog).
#    rps_cpus here is "1": the sysfs file takes a hex mask, and the config a CPU list; "1" is
#    CPU 0 in one and CPU 1 in the other, see test_rps_cpus_as_sysfs_prints_it below.
# ---------------------------------------------------------------------------------------------


def test_rps_burst_to_one_remote_cpu(tmp_path: Path) -> None:
    # 40 UDP frames land during a 1 ms hard IRQ on CPU 0; one poll takes all 40 (< 64).
    # Each GRO-normal batch goes to netif_receive_skb_list_internal -> get_rps_cpu -> CPU 1 ->
    # enqueue_to_backlog(CPU 1). The first enqueue finds CPU 1's backlog NAPI unscheduled:
    # napi_schedule_rps puts CPU 1's sd on CPU 0's rps_ipi_list (no NET_RX raise inside
    # net_rx_action, 6.4+); the next 39 find NAPI_STATE_SCHED set: nothing. The IPI leaves at
    # the end of net_rx_action: one rps_trigger_softirq on CPU 1 (received_rps 1), one NET_RX run
    # there, whose process_backlog (quota 64) splices and processes all 40.
    # processed counts in __netif_receive_skb_core, which runs on CPU 1 only: [0, 40, 0, 0].
    prof = rps_profile(tmp_path, fixed__hardirq=1_000_000)
    rows = [{"ts_ns": 0} for _ in range(40)]
    r = run(rows, "host.cpus=4", "nic.combined=1", 'sysfs.rps_cpus=["1"]', *APP2, profile=prof)
    c = r.counters
    assert [s["processed"] for s in c["softnet_stat"]] == [0, 40, 0, 0]
    assert [s["received_rps"] for s in c["softnet_stat"]] == [0, 1, 0, 0]
    assert c["softirqs"]["NET_RX"] == [1, 1, 0, 0]
    assert c["model"]["backlog_polls"] == [0, 1, 0, 0]
    df = pk(r)
    assert (df["outcome"] == "delivered").all()
    assert df["cpu_backlog"].is_not_null().all()


@pytest.mark.parametrize(("kernel", "target", "net_rx"),
                         [("6.12", "1", [5, 5, 0, 0]), ("5.15", "1", [10, 5, 0, 0]),
                          ("6.12", "0", [5, 0, 0, 0]), ("5.15", "0", [10, 0, 0, 0])])  # fmt: skip
def test_rps_net_rx_runs_before_and_after_6_4(tmp_path: Path, kernel: str, target: str,
                                              net_rx: list[int]) -> None:  # fmt: skip
    # 5 frames 100 us apart: each gets its own IRQ and NET_RX run on CPU 0.
    # Remote target (CPU 1):
    #  - 6.4+ (napi_schedule_rps: `if (!mysd->in_net_rx_action ...) __raise_softirq_irqoff`):
    #    no raise; net_rx_action ends (list and repoll empty, rps IPI waiting -> break) and sends
    #    the IPI: 1 NET_RX run on CPU 0 per frame, 1 on CPU 1 (rps_trigger_softirq ->
    #    ____napi_schedule raises NET_RX there), received_rps 5.
    #  - 5.15 (rps_ipi_queued raises NET_RX on the local CPU unconditionally): net_rx_action
    #    sends the IPI and returns with NET_RX pending -> handle_softirqs restarts: a second
    #    (empty) run. CPU 0: 2 per frame.
    # Local target (CPU 0): enqueue_to_backlog -> napi_schedule_rps(sd == mysd) ->
    #    __napi_schedule_irqoff(backlog):
    #  - 6.4+: ____napi_schedule inside net_rx_action does not raise; the device NAPI completes,
    #    list and repoll are empty, poll_list is not -> goto start: the backlog is polled in the
    #    same run. 1 per frame, received_rps 0.
    #  - 5.15: ____napi_schedule raises NET_RX; net_rx_action's local list is empty and no IPI
    #    waits -> return; the restart polls the backlog: 2 per frame.
    prof = rps_profile(tmp_path)
    rows = [{"ts_ns": 100_000 * k} for k in range(5)]
    r = run(rows, "host.cpus=4", "nic.combined=1", f'sysfs.rps_cpus=["{target}"]',
            f'host.kernel="{kernel}"', *APP2, profile=prof)  # fmt: skip
    c = r.counters
    assert c["softirqs"]["NET_RX"] == net_rx
    cpu = int(target)
    assert [s["received_rps"] for s in c["softnet_stat"]] == [5 if i == cpu and cpu else 0
                                                              for i in range(4)]  # fmt: skip
    assert [s["processed"] for s in c["softnet_stat"]] == [5 if i == cpu else 0 for i in range(4)]
    assert c["model"]["ksoftirqd_wakeups"] == [0, 0, 0, 0]


def test_rps_cpus_as_sysfs_prints_it(tmp_path: Path) -> None:
    # /sys/class/net/<dev>/queues/rx-0/rps_cpus is a hex CPU mask both ways: store_rps_map
    # parses with bitmap_parse() and show_rps_map prints "%*pb" (net/core/net-sysfs.c;
    # Documentation/networking/scaling.rst: "rps_cpus ... is a bitmap of CPUs", example
    # "echo f > ..."). `cat` on a 4-CPU host shows "2" for CPU 1 alone, and a wider host pads it,
    # e.g. "00000002". A config pasted from there must steer to CPU 1.
    prof = rps_profile(tmp_path)
    rows = [{"ts_ns": 100_000 * k} for k in range(3)]
    # ("2" alone stays the config's documented cpulist form: CPU 2; see config._is_hex_mask)
    for mask in ("00000002", "0x2", "00000000,00000002"):
        r = run(rows, "host.cpus=4", "nic.combined=1", f'sysfs.rps_cpus=["{mask}"]', *APP2,
                profile=prof)  # fmt: skip
        assert [s["processed"] for s in r.counters["softnet_stat"]] == [0, 3, 0, 0], mask


def test_netdev_max_backlog_drops_on_the_target(tmp_path: Path) -> None:
    # netdev_max_backlog 10. All 40 enqueues to CPU 1 happen in one net_rx_action on CPU 0,
    # before the IPI, so nothing drains input_pkt_queue meanwhile. enqueue_to_backlog accepts
    # while qlen (before the add) <= max_backlog: qlen 0..10 -> 11 accepted (frames 1-11), the
    # other 29 go to cpu_backlog_drop: SKB_DROP_REASON_CPU_BACKLOG, counted in the *target's*
    # softnet_data (sd = &per_cpu(softnet_data, cpu); softnet_stat column 2 "dropped").
    prof = rps_profile(tmp_path, fixed__hardirq=1_000_000)
    rows = [{"ts_ns": 0} for _ in range(40)]
    r = run(rows, "host.cpus=4", "nic.combined=1", 'sysfs.rps_cpus=["1"]',
            "net.core.netdev_max_backlog=10", *APP2, profile=prof)  # fmt: skip
    c = r.counters
    df = pk(r).sort("frame")
    dropped = df.filter(pl.col("outcome") == "dropped")
    assert dropped["frame"].to_list() == list(range(12, 41))
    assert set(dropped["drop_reason"].to_list()) == {"CPU_BACKLOG"}
    assert set(dropped["drop_stage"].to_list()) == {"backlog"}
    assert [s["dropped"] for s in c["softnet_stat"]] == [0, 29, 0, 0]
    assert [s["processed"] for s in c["softnet_stat"]] == [0, 11, 0, 0]
    assert c["snmp"]["Udp"]["InDatagrams"] == 11


def _hash_32(h: int, bits: int) -> int:
    """include/linux/hash.h hash_32: (val * GOLDEN_RATIO_32) >> (32 - bits)."""
    return ((h * 0x61C88647) & 0xFFFFFFFF) >> (32 - bits)


@pytest.mark.parametrize(("bitmap", "dropped"), [
    # the kernel's own format (flow_limit_cpu_sysctl: cpumask_parse, printed "%*pb"): hex
    # masks, "00000001" = CPU 0, "00000002" = CPU 1 (a bare "1" is the config's cpulist form)
    ("00000001", 136), ("00000002", 0), ("0x1", 136),
    # the same CPU sets in the config's cpulist form, which no kernel reading confuses
    ("0-0", 136), ("1-1", 0),
])  # fmt: skip
def test_flow_limit_is_the_enqueuing_cpus(tmp_path: Path, bitmap: str, dropped: int) -> None:
    # dev.c skb_flow_limit(): `if (qlen < max_backlog >> 1) return false; sd =
    # this_cpu_ptr(&softnet_data); fl = sd->flow_limit` -- the table of the CPU running
    # enqueue_to_backlog (CPU 0 here), which exists only for CPUs in flow_limit_cpu_bitmap.
    # Setup: frame 1 at t=0 reaches CPU 1, whose process_backlog splices it into process_queue
    # and spends 10 ms in ip_rcv on it (stage.ip = 10 ms); the backlog NAPI stays SCHED. A burst
    # of 700 frames of one flow at 100 us is enqueued by CPU 0 into CPU 1's input_pkt_queue,
    # which nobody drains before 10 ms. max_backlog 1000 -> the flow limit applies from
    # qlen >= 500: frames with qlen 0..499 go in; then each call records the flow in the
    # 128-entry history and counts buckets[hash_32(hash, 12)]: the 1st..64th calls leave it
    # <= 64 (accepted: qlen 500..563), the 65th and every later one make it > 64 -> drop.
    # 700 - 564 = 136 drops: CPU_BACKLOG, softnet "dropped" of CPU 1 (the target's sd), and
    # flow_limit_count of CPU 0 (fl->count of this_cpu's table).
    # With the bitmap naming CPU 1 only, CPU 0 has no table: no flow limit, qlen <= 700 <= 1000.
    prof = rps_profile(tmp_path, stage__ip=10_000_000)
    h = toeplitz(MS_KEY, tuple_bytes("10.0.0.2", "10.0.0.1"))  # ixgbe: UDP on the 2-tuple
    assert _hash_32(h, 12) != 0  # bucket 0 would make the history's zero entries count
    rows = [{"ts_ns": 0}] + [{"ts_ns": 100_000}] * 700
    r = run(rows, "host.cpus=4", "nic.combined=1", "nic.rx=1024", 'sysfs.rps_cpus=["1"]',
            f'net.core.flow_limit_cpu_bitmap="{bitmap}"', *APP2, profile=prof)  # fmt: skip
    c = r.counters
    df = pk(r).sort("frame")
    drops = df.filter(pl.col("outcome") == "dropped")
    assert drops["frame"].to_list() == list(range(566, 566 + dropped))
    assert set(drops["drop_reason"].to_list()) <= {"CPU_BACKLOG"}
    assert [s["flow_limit_count"] for s in c["softnet_stat"]] == [dropped, 0, 0, 0]
    assert [s["dropped"] for s in c["softnet_stat"]] == [0, dropped, 0, 0]


def test_backlog_quota_is_dev_weight(tmp_path: Path) -> None:
    # net.core.dev_weight 16: process_backlog's quota is dev_rx_weight = dev_weight x
    # dev_weight_rx_bias (1) = 16. 40 skbs queued on CPU 1 in one go (as above): polls of 16, 16,
    # 8. A poll that used its whole quota is left scheduled (__napi_poll: work == weight ->
    # repoll); net_rx_action sees the list empty and repoll not -> break, no squeeze (budget
    # 300 - 16 > 0), re-raise; handle_softirqs restarts. CPU 1: 3 NET_RX runs, 3 backlog polls.
    prof = rps_profile(tmp_path, fixed__hardirq=1_000_000)
    rows = [{"ts_ns": 0} for _ in range(40)]
    r = run(rows, "host.cpus=4", "nic.combined=1", 'sysfs.rps_cpus=["1"]',
            "net.core.dev_weight=16", *APP2, profile=prof)  # fmt: skip
    c = r.counters
    assert c["model"]["backlog_polls"] == [0, 3, 0, 0]
    assert c["model"]["backlog_packets"] == [0, 40, 0, 0]
    assert c["softirqs"]["NET_RX"] == [1, 3, 0, 0]
    assert [s["time_squeeze"] for s in c["softnet_stat"]] == [0, 0, 0, 0]
    assert [s["received_rps"] for s in c["softnet_stat"]] == [0, 1, 0, 0]


@pytest.mark.parametrize("connected", [True, False])
def test_rfs_steers_to_the_readers_cpu(tmp_path: Path, connected: bool) -> None:
    # RFS (rps_sock_flow_entries 32768, rps_flow_cnt 256), rps_cpus "0-1", reader on CPU 3.
    # inet_recvmsg -> sock_rps_record_flow records sk_rxhash -> this CPU only for a socket in
    # TCP_ESTABLISHED (a connect()ed UDP socket is; an unconnected one is not), and UDP saves
    # sk_rxhash only when inet_daddr is set (__udp_queue_rcv_skb).
    # Frame 1 (5 frames 100 us apart): no matching ident in the sock flow table -> try_rps:
    #   cpus[reciprocal_scale(hash, 2)] = [0, 1][hash >> 31].
    # Connected: the reader's next recvmsg (blocking, long before frame 2) records hash -> CPU 3.
    #   Frame 2: ident matches, next_cpu 3; the per-queue rflow->cpu is still RPS_NO_CPU (frame 1
    #   went through try_rps, which does not set it) -> "current CPU unset" -> switch to 3:
    #   frames 2-5 are processed on CPU 3, a CPU outside rps_cpus (RFS is not limited to it).
    # Unconnected: never recorded -> all 5 on the RPS CPU.
    prof = rps_profile(tmp_path)
    h = toeplitz(MS_KEY, tuple_bytes("10.0.0.2", "10.0.0.1"))
    rps = h >> 31
    rows = [{"ts_ns": 100_000 * k} for k in range(5)]
    r = run(rows, "host.cpus=4", "nic.combined=1", 'sysfs.rps_cpus=["0-1"]',
            "net.core.rps_sock_flow_entries=32768", "sysfs.rps_flow_cnt=256",
            'app[0].match="udp dport 9000"', "app[0].cpu=3",
            f"app[0].connected={'true' if connected else 'false'}", profile=prof)  # fmt: skip
    processed = [s["processed"] for s in r.counters["softnet_stat"]]
    expect = [0, 0, 0, 0]
    if connected:
        expect[rps] += 1
        expect[3] += 4
    else:
        expect[rps] = 5
    assert processed == expect
    assert (pk(r)["outcome"] == "delivered").all()


def test_rps_after_gro_counts_super_skbs(tmp_path: Path) -> None:
    # GRO runs in the driver's poll on CPU 0, before get_rps_cpu: the RPS target gets the
    # super-skbs. 40 TCP segments, PSH on every 4th -> 10 skbs of 4; processed counts them on
    # CPU 1 only: [0, 10, 0, 0]; one tcp_v4_rcv per skb: InSegs 10.
    prof = rps_profile(tmp_path, fixed__hardirq=1_000_000)
    r = run(stream(40, psh_every=4), "host.cpus=4", "nic.combined=1", 'sysfs.rps_cpus=["1"]',
            'app[0].match="tcp dport 5000"', "app[0].cpu=2", "app[0].rcvbuf=100000000",
            profile=prof)  # fmt: skip
    assert skb_sizes(r) == [4] * 10
    assert [s["processed"] for s in r.counters["softnet_stat"]] == [0, 10, 0, 0]
    assert r.counters["snmp"]["Tcp"]["InSegs"] == 10


# ---------------------------------------------------------------------------------------------
# 3. NAPI: threaded mode, several NAPIs in one budget, gro_normal_batch
# ---------------------------------------------------------------------------------------------


def test_threaded_napi_ignores_netdev_budget(tmp_path: Path) -> None:
    # sysfs threaded = 1: ____napi_schedule wakes napi/eth0-<id> instead of raising NET_RX.
    # napi_threaded_poll_loop calls __napi_poll with the NAPI's weight (64) and repolls while
    # it returns repoll, with cond_resched() between: no netdev_budget, no time limit, no
    # time_squeeze, no NET_RX count. netdev_budget 50 (which squeezes every softirq poll in
    # test_budget_below_weight_squeezes_every_full_poll) changes nothing: 200 frames -> polls
    # 64, 64, 64, 8 in the kthread (context task), NET_RX 0 everywhere.
    rows = [{"ts_ns": 0} for _ in range(200)]
    r = run(rows, "host.cpus=2", "nic.combined=1", "sysfs.threaded=true",
            "net.core.netdev_budget=50", 'app[0].match="udp dport 9000"', "app[0].cpu=1",
            "app[0].rcvbuf=100000000", opts=TOP)  # fmt: skip
    c = r.counters
    assert c["napi"][0]["polls"] == 4
    assert c["napi"][0]["budget_exhausted"] == 3
    assert c["softirqs"]["NET_RX"] == [0, 0]
    assert c["softnet_stat"][0]["time_squeeze"] == 0
    assert c["softnet_stat"][0]["processed"] == 200
    cpu = cpu_df(r).filter(pl.col("symbol") == "ixgbe_clean_rx_irq")
    assert set(cpu["context"].to_list()) == {"task"}
    assert all(s.startswith("napi/eth0-") for s in cpu["comm"].to_list())
    assert cpu["frames"].sum() == 200


def test_five_napis_share_one_budget(tmp_path: Path) -> None:
    # 5 queues, all IRQs on CPU 0, 100 frames each, all landing within the first 34 us.
    # Queue a's IRQ fires first; its handler runs 100 us (fixed.hardirq). The other four
    # vectors fire meanwhile and stay pending (IRQs are off in the handler). At irq_exit,
    # handle_softirqs does local_irq_enable() before calling net_rx_action: the four pending
    # IRQs are taken there, each ____napi_schedule adding its NAPI to poll_list. So
    # net_rx_action splices all five: polls of 64 each -> budget 300 - 5 x 64 = -20 <= 0 after
    # the 5th -> time_squeeze (budget), break, re-raise. Round 2 (restart; still jiffy 0):
    # 36 each, all complete. NET_RX 2, squeeze 1, 2 polls and 1 full-weight poll per NAPI.
    prof = profile_with(tmp_path, "irq100", {"fixed.hardirq": 100_000})
    srcs = [src_for_queue(q, 5) for q in range(5)]
    rows = [{"ts_ns": 0, "src": srcs[k % 5]} for k in range(500)]
    r = run(rows, "host.cpus=2", "nic.combined=5", "irq.affinity=[0,0,0,0,0]",
            'app[0].match="udp dport 9000"', "app[0].cpu=1", "app[0].rcvbuf=1000000000",
            profile=prof)  # fmt: skip
    c = r.counters
    assert pk(r)["queue"].to_list() == [k % 5 for k in range(500)]
    assert [n["irqs"] for n in c["napi"]] == [1] * 5
    assert c["softirqs"]["NET_RX"] == [2, 0]
    assert c["softnet_stat"][0]["time_squeeze"] == 1
    assert c["model"]["time_squeeze_budget"] == [1, 0]
    assert [n["polls"] for n in c["napi"]] == [2] * 5
    assert [n["budget_exhausted"] for n in c["napi"]] == [1] * 5


@pytest.mark.parametrize(("batch", "boundaries"), [(8, [8, 16]), (1, list(range(1, 24))),
                                                   (5, [5, 10, 15])])  # fmt: skip
def test_gro_normal_batch_groups_the_stack(tmp_path: Path, batch: int,
                                           boundaries: list[int]) -> None:  # fmt: skip
    # 24 UDP frames in one poll (they land during a 1 ms hard IRQ). Each is GRO_NORMAL: the
    # driver + dev_gro_receive (100 + 50 ns) then gro_normal_one, which flushes rx_list to
    # netif_receive_skb_list_internal when rx_count reaches gro_normal_batch. The list path runs
    # __netif_receive_skb_core for all, then ip_list_rcv for all, then routing for all (100 +
    # 100 + 100 ns each; on 5.7+ only the batch's first skb takes the FIB lookup, the other
    # n - 1 reuse its route through the hint, ip_route_use_hint at fixed.route_hint 20 ns), then
    # ip_local_deliver + udp_rcv per skb (100 + 100 ns). So the socket enqueues of one batch are
    # 200 ns apart, and between the last of one batch of n and the first of the next lie
    # n x 150 + n x 300 - (n - 1) x 80 + 200 ns.
    prof = profile_with(tmp_path, "slowirq-nowake", {"fixed.hardirq": 1_000_000,
                                                     "fixed.wakeup": 0})  # fmt: skip
    rows = [{"ts_ns": 0} for _ in range(24)]
    r = run(rows, "host.cpus=2", "nic.combined=1", f"net.core.gro_normal_batch={batch}",
            'app[0].match="udp dport 9000"', "app[0].cpu=1", "app[0].rcvbuf=1000000000",
            profile=prof)  # fmt: skip
    t = l4_end(pk(r).sort("frame")).to_list()
    diffs = [b - a for a, b in itertools.pairwise(t)]
    for k, d in enumerate(diffs, start=1):  # d: between frame k and frame k + 1
        if k in boundaries:
            assert d == batch * 450 - (batch - 1) * 80 + 200, (k, diffs)
        elif k < max(boundaries, default=0) or batch == 8:
            assert d == 200, (k, diffs)


def test_gro_normal_batch_counts_segments(tmp_path: Path) -> None:
    # gro_normal_one(gro, skb, NAPI_GRO_CB(skb)->count): rx_count grows by the skb's segments.
    # TCP, PSH every 4th segment: skbs of 4 segments, so 8 segments = every 2 skbs flush the
    # batch. The socket enqueue times of skbs 1..6: pairs close together, a gap between pairs
    # (counting skbs, the whole poll would have gone up as one batch of 6 at the end).
    prof = profile_with(tmp_path, "slowirq-nowake", {"fixed.hardirq": 1_000_000,
                                                     "fixed.wakeup": 0})  # fmt: skip
    r = run(stream(24, psh_every=4), "host.cpus=2", "nic.combined=1",
            'app[0].match="tcp dport 5000"', "app[0].cpu=1", "app[0].rcvbuf=100000000",
            profile=prof)  # fmt: skip
    assert skb_sizes(r) == [4] * 6
    t = l4_end(pk(r).sort("frame")).to_list()[::4]  # one per skb (its segments share it)
    d = [b - a for a, b in itertools.pairwise(t)]
    assert d[0] == d[2] == d[4], d  # within a batch: the second skb's local delivery only
    assert d[1] == d[3], d
    assert d[1] > d[0] + 8 * 100, d  # across batches: 8 more driver steps at least


# ---------------------------------------------------------------------------------------------
# 4. NIC: ring refill, ITR register rounding, mlx5 EQE mode with a frame count
# ---------------------------------------------------------------------------------------------


def test_ixgbe_refill_mid_poll_and_rx_missed(tmp_path: Path) -> None:
    # ixgbe, ring 128: ixgbe_configure_rx_ring posts ixgbe_desc_unused = 127 buffers.
    # ixgbe_clean_rx_irq starts with cleaned_count = ixgbe_desc_unused() (0) and refills at the
    # top of its loop once cleaned_count >= IXGBE_RX_BUFFER_WRITE (16). Burst 1, 20 frames: at
    # the 17th iteration 16 are re-posted; frames 17-20 leave 4 unposted; the 21st iteration
    # finds no descriptor and breaks (no refill after the loop): 123 posted. Burst 2, 200 frames
    # at 10 ms, lands during the 1 ms hard IRQ: 123 are stored, 77 are rx_missed_errors (frames
    # 144-220). rx_packets counts what the driver cleaned: 20 + 123.
    prof = profile_with(tmp_path, "slowirq", {"fixed.hardirq": 1_000_000})
    rows = [{"ts_ns": 0}] * 20 + [{"ts_ns": 10_000_000}] * 200
    r = run(rows, "host.cpus=2", "nic.combined=1", "nic.rx=128", 'app[0].match="udp dport 9000"',
            "app[0].cpu=1", "app[0].rcvbuf=1000000000", profile=prof)  # fmt: skip
    df = pk(r)
    missed = df.filter(pl.col("drop_reason") == "rx_missed_errors")["frame"].to_list()
    assert missed == list(range(144, 221))
    e = r.counters["ethtool"]
    assert e["rx_missed_errors"] == 77
    assert e["rx_packets"] == 143 and e["rx_queue_0_packets"] == 143
    assert set(df.filter(pl.col("drop_reason") == "rx_missed_errors")["drop_stage"]) == {"driver"}


def _irq_times(r: SimResult) -> list[int]:
    return sorted({t for t in pk(r)["t_irq"].to_list() if t is not None})


def test_ixgbe_itr_register_rounds_to_even_usecs() -> None:
    # ixgbe_set_coalesce: rx_itr_setting = rx-usecs << 2 = 52 for 13 us; ixgbe_write_eitr
    # writes q_vector->itr & IXGBE_MAX_EITR (0xFF8): 48, i.e. the interval field (bits 11:3)
    # holds 6 units of ~2 us: a 12 us minimum gap, not 13.
    # 20 frames of 60 B every 5 us: visible (DMA 1000 ns) at c_k = 5000 k + 1067. Frame 0 fires
    # at once (idle queue); a poll takes a frame or two within ~3 us, and a new frame is pending
    # within 5 us, so every interrupt comes exactly one gap after the last: 1067 + G i, until
    # frame 19 (96067) is taken. With G = 12 us: 9 IRQs (the 9th at 97067 takes frame 19).
    r = run([{"ts_ns": 5_000 * k} for k in range(20)], "nic.combined=1", "nic.rx-usecs=13",
            "host.cpus=2", 'app[0].match="udp dport 9000"', "app[0].cpu=1")  # fmt: skip
    irqs = _irq_times(r)
    gaps = {b - a for a, b in itertools.pairwise(irqs)}
    assert len(gaps) == 1, irqs
    gap = gaps.pop()
    assert gap in (12_000, 12_288), irqs  # 6 x 2 us (or the 82599's 2.048 us unit)
    assert irqs[0] == 1067


def test_mlx5_eqe_mode_with_max_count() -> None:
    # mlx5 EQE-based moderation (rx-cqe-moder off): the period runs from the last event (EQE);
    # the counter counts completions since it. cq_period 50 us, cq_max_count 3 (rx-frames 3).
    # Frames every 16 us (c_k = 16000 k + 1067): frame 0 -> EQE at once (the last one was long
    # ago); then the 3rd completion after it comes 48 us later, before the 50 us period: an
    # interrupt at c_3, c_6, ..., c_18; frame 19 alone waits for the period: c_18 + 50 us.
    rows = [{"ts_ns": 16_000 * k} for k in range(20)]
    r = run(rows, 'nic.driver="mlx5"', "nic.combined=1", "nic.rx-usecs=50", "nic.rx-frames=3",
            "nic.rx-cqe-moder=false", "nic.adaptive-rx=false", "nic.rx=1024",
            'app[0].match="udp dport 9000"', "app[0].cpu=1", "host.cpus=2")  # fmt: skip
    c = [16_000 * k + 1067 for k in range(20)]
    assert _irq_times(r) == [c[0], c[3], c[6], c[9], c[12], c[15], c[18], c[18] + 50_000]


def test_rfs_tcp_follows_the_reader_outside_rps_cpus(tmp_path: Path) -> None:
    # The same with an established TCP connection (no handshake in the trace: taken as
    # established before it): segment 1 by RPS ([0, 1][hash >> 31], the 4-tuple hash for TCP),
    # then the reader's recvmsg on CPU 3 records the flow and segments 2-10 go to CPU 3.
    prof = rps_profile(tmp_path)
    rows = stream(10)
    for k, row in enumerate(rows):
        row["ts_ns"] = 100_000 * k
        row["tcp_flags"] = 0x18  # PSH on each: one skb per segment
    h = toeplitz(MS_KEY, tuple_bytes("10.0.0.2", "10.0.0.1", 443, 5000))
    r = run(rows, "host.cpus=4", "nic.combined=1", 'sysfs.rps_cpus=["0-1"]',
            "net.core.rps_sock_flow_entries=32768", "sysfs.rps_flow_cnt=256",
            'app[0].match="tcp dport 5000"', "app[0].cpu=3", profile=prof)  # fmt: skip
    expect = [0, 0, 0, 9]
    expect[h >> 31] += 1
    assert [s["processed"] for s in r.counters["softnet_stat"]] == expect


# ---------------------------------------------------------------------------------------------
# 5. UDP socket memory at other kernels and sizes (KERNEL.md §3b; udp.c
#    __udp_enqueue_schedule_skb). ixgbe's skb truesize is 2304 (SKB_TRUESIZE(1728), see
#    test_model_independent.py §4). Frame 1 is read alone first (the dequeue that empties the
#    reader queue releases everything: rmem 0); 40 frames arrive at 1 ms while the reader
#    still works on frame 1 (work-ns 10 ms), so none of them is read before all are queued.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("kernel", "rcvbuf", "accepted"), [
    # <= 6.17: drop when rmem (before the add) > sk_rcvbuf: accepted while 2304 k <= rcvbuf
    ("5.15", 65536, 29),   # k <= 28.4
    ("5.15", 4608, 3),     # SOCK_MIN_RCVBUF = 2 x (2048 + 256) = 4608: k <= 2
    # 6.18+: drop when rmem + truesize > sk_rcvbuf, except into an empty queue (rmem 0)
    ("6.18", 65536, 28),   # 2304 (k + 1) <= 65536: k <= 27
    ("6.18", 4608, 2),     # k <= 1
    ("6.18", 2304 * 3, 3),  # exactly three truesizes fit
])  # fmt: skip
def test_udp_rcvbuf_arithmetic(kernel: str, rcvbuf: int, accepted: int) -> None:
    rows = [{"ts_ns": 0}] + [{"ts_ns": 1_000_000}] * 40
    r = run(rows, "host.cpus=2", "nic.combined=1", f'host.kernel="{kernel}"',
            'app[0].match="udp dport 9000"', "app[0].cpu=1", "app[0].work-ns=10000000",
            f"app[0].rcvbuf={rcvbuf}")  # fmt: skip
    df = pk(r).sort("frame")
    dropped = df.filter(pl.col("outcome") == "dropped")["frame"].to_list()
    assert dropped == list(range(2 + accepted, 42))
    udp = r.counters["snmp"]["Udp"]
    assert udp["RcvbufErrors"] == udp["InErrors"] == 40 - accepted
    assert udp["InDatagrams"] == 1 + accepted


# ---------------------------------------------------------------------------------------------
# 6. The reader: recvmmsg, C-state exit latency, an M/G/1 queue
# ---------------------------------------------------------------------------------------------


def test_recvmmsg_returns_up_to_vlen(tmp_path: Path) -> None:
    # batch 4 = recvmmsg(vlen 4, MSG_WAITFORONE). Frame 1 at t=0 is read alone (the only one
    # queued); the reader then works 2 ms on it. 16 frames at 100 us queue meanwhile. After the
    # work, each recvmmsg returns min(4, queued): 4 calls of 4. Work is per message (work-ns x
    # messages per call).
    rows = [{"ts_ns": 0}] + [{"ts_ns": 100_000}] * 16
    r = run(rows, "host.cpus=2", "nic.combined=1", 'app[0].match="udp dport 9000"',
            "app[0].cpu=1", "app[0].work-ns=2000000", "app[0].batch=4",
            "app[0].rcvbuf=100000000")  # fmt: skip
    cpu = cpu_df(r).filter(pl.col("cpu") == 1).sort("start")
    copies = cpu.filter(pl.col("symbol") == "skb_copy_datagram_iter")["frames"].to_list()
    assert copies == [1, 4, 4, 4, 4]
    work = cpu.filter(pl.col("symbol") == "app_work")
    assert work["ns"].to_list() == [2_000_000 * n for n in copies]
    assert r.counters["snmp"]["Udp"]["InDatagrams"] == 17


def test_cstate_exit_latency_at_low_rate() -> None:
    # host.cstate-exit-ns 50 us. 5 frames 1 ms apart: both CPUs are idle between them. Each
    # frame pays the exit once on CPU 0 (before its hard IRQ handler can run) and once on
    # CPU 1 (before the woken reader runs): its latency is 100 us longer than with C0 polling,
    # exactly, and everything else is the same.
    rows = [{"ts_ns": 1_000_000 * k} for k in range(5)]
    base = ["host.cpus=2", "nic.combined=1", 'app[0].match="udp dport 9000"', "app[0].cpu=1"]
    a = pk(run(rows, *base)).sort("frame")
    b = pk(run(rows, *base, "host.cstate-exit-ns=50000")).sort("frame")
    lat_a = (a["t_done"] - a["t_wire"]).to_list()
    lat_b = (b["t_done"] - b["t_wire"]).to_list()
    assert [y - x for x, y in zip(lat_a, lat_b, strict=True)] == [100_000] * 5
    assert (b["cpu_app"].fill_null(0) == a["cpu_app"].fill_null(0)).all()


def test_exponential_copy_is_mg1(tmp_path: Path) -> None:
    # A Poisson stream into one socket whose reader's only cost is the copy, 100 ns per byte of
    # UDP payload (skb_copy_datagram_iter copies the datagram's data, udp_recvmsg's `copied`),
    # with payloads ~ exponential (mean 150 B): M/G/1 with S ~ 15 us, near M/M/1. rho = 0.6.
    # Every datagram's wait follows Lindley's recursion exactly; the mean wait is
    # Pollaczek-Khinchine's lambda E[S^2] / (2 (1 - rho)) with the sample's own moments.
    zero = {"fixed.syscall": 0, "fixed.consume": 0, "stage.app": 0, "fixed.wakeup": 0,
            "fixed.ctx_switch": 0, "latency.wakeup": 0, "latency.ipi": 0}  # fmt: skip
    prof = profile_with(tmp_path, "mg1", zero)
    body = Path(prof).read_text() + '[stage.copy]\nbase = 0\nper_byte = 100.0\nsource = "test"\n'
    Path(prof).write_text(body)
    rng = np.random.default_rng(11)
    n = 20_000
    pay = np.clip(rng.exponential(150, n).astype(np.int64), 1, 1472)
    mean_s = 100 * pay.mean()
    ts = np.cumsum(rng.exponential(mean_s / 0.6, n)).astype(np.int64)
    rows = [{"ts_ns": int(t), "payload_len": int(p), "wire_len": max(60, 42 + int(p)),
             "cap_len": max(60, 42 + int(p))} for t, p in zip(ts, pay, strict=True)]  # fmt: skip
    r = run(rows, "host.cpus=2", "nic.combined=1", "nic.rx-usecs=0", "nic.rx=4096",
            'app[0].match="udp dport 9000"', "app[0].cpu=1", "app[0].rcvbuf=1000000000",
            profile=prof)  # fmt: skip
    df = pk(r).sort("frame")
    assert (df["outcome"] == "delivered").all()
    assert (df["cpu_copy"] == 100 * df.join(pl.DataFrame({"frame": np.arange(1, n + 1),
                                                          "pay": pay}), on="frame")["pay"]).all()
    a = l4_end(df).to_numpy()
    start = a + df["wait_copy"].to_numpy()
    s = (df["cpu_copy"] + df["wait_app"].fill_null(0) + df["cpu_app"].fill_null(0)).to_numpy()
    free = -(10**18)
    expect = np.empty(n, dtype=np.int64)
    for i in range(n):
        expect[i] = max(a[i], free)
        free = expect[i] + s[i]
    np.testing.assert_array_equal(start, expect)
    wait = start - a
    lam = (n - 1) / (a[-1] - a[0])
    rho = lam * s.mean()
    wq = lam * (s.astype(float) ** 2).mean() / (2 * (1 - rho))
    assert 0.55 < rho < 0.65
    assert abs(wait.mean() / wq - 1) < 0.1, (wait.mean(), wq)


# ---------------------------------------------------------------------------------------------
# 7. IPv6 and fragment counters (net/ipv6/udp.c counts in UDP6_MIB only; ip_rcv_core counts
#    every fragment in InReceives, ip_defrag every fragment in ReasmReqds, ip_local_deliver's
#    protocol handler runs once per datagram: InDelivers, Udp InDatagrams once)
# ---------------------------------------------------------------------------------------------


def test_ipv6_udp_counts_only_in_snmp6() -> None:
    rows = [{"ts_ns": 10_000 * k, "ip_version": 6, "ethertype": 0x86DD, "src": "2001:db8::2",
             "dst": "2001:db8::1", "ip_hlen": 40, "wire_len": 80, "cap_len": 80}
            for k in range(5)]  # fmt: skip
    r = run(rows, "host.cpus=2", "nic.combined=1", 'host.addresses=["2001:db8::1"]',
            'app[0].match="udp dport 9000"', "app[0].cpu=1")  # fmt: skip
    c = r.counters
    assert c["snmp6"]["Udp6InDatagrams"] == 5
    assert c["snmp6"]["Ip6InReceives"] == 5 and c["snmp6"]["Ip6InDelivers"] == 5
    assert c["snmp"]["Udp"]["InDatagrams"] == 0
    assert c["snmp"]["Ip"]["InReceives"] == 0 and c["snmp"]["Ip"]["InDelivers"] == 0


def test_fragments_in_and_out_of_order() -> None:
    from tests.test_model_breadth import frag

    # datagram A (id 7): fragments at offsets 0, 1480, 2960 in order -> the 3rd completes it.
    # datagram B (id 8): last, first, middle -> the middle (frame 6) completes it.
    rows = [frag(0, 0, True), frag(10_000, 1480, True), frag(20_000, 2960, False),
            frag(30_000, 2960, False, ident=8), frag(40_000, 0, True, ident=8),
            frag(50_000, 1480, True, ident=8)]  # fmt: skip
    r = run(rows, "host.cpus=2", "nic.combined=1", 'app[0].match="udp dport 9000"',
            "app[0].cpu=1")  # fmt: skip
    df = pk(r).sort("frame")
    assert df.filter(pl.col("outcome") == "delivered")["frame"].to_list() == [3, 6]
    assert df.filter(pl.col("outcome") == "consumed")["frame"].to_list() == [1, 2, 4, 5]
    ip = r.counters["snmp"]["Ip"]
    assert (ip["InReceives"], ip["ReasmReqds"], ip["ReasmOKs"], ip["ReasmFails"]) == (6, 6, 2, 0)
    assert ip["InDelivers"] == 2
    assert r.counters["snmp"]["Udp"]["InDatagrams"] == 2
    assert r.counters["softnet_stat"][0]["processed"] == 6  # GRO never merges fragments


# ---------------------------------------------------------------------------------------------
# 8. TCP: a segment that arrives while the reader owns the socket (tcp_ipv4.c tcp_v4_rcv:
#    `if (!sock_owned_by_user(sk)) ret = tcp_v4_do_rcv(sk, skb); else tcp_add_backlog()`;
#    the backlog runs in release_sock -> __release_sock -> sk_backlog_rcv = tcp_v4_do_rcv, in
#    the reader's own context)
# ---------------------------------------------------------------------------------------------

def test_segment_during_copy_goes_to_the_socket_backlog(tmp_path: Path) -> None:
    # The copy costs 100 ns per byte: 144.8 us for a 1448-byte segment. Segment 1 at t=0 is
    # being copied on CPU 1 from ~8 us to ~153 us; segment 2 at 50 us is taken by the softirq
    # on CPU 0 at ~53 us, finds the socket owned and goes to the backlog. Its protocol
    # processing (and the socket enqueue) comes when the reader releases the socket, after
    # segment 1's copy: its l4 stage cannot end before that copy does.
    prof = profile_with(tmp_path, "slowcopy", {})
    Path(prof).write_text(Path(prof).read_text()
                          + '[stage.copy]\nbase = 0\nper_byte = 100.0\nsource = "test"\n')
    rows = stream(2)
    for k, row in enumerate(rows):
        row["ts_ns"] = 50_000 * k
        row["tcp_flags"] = 0x18
    r = run(rows, "host.cpus=2", "nic.combined=1", 'app[0].match="tcp dport 5000"',
            "app[0].cpu=1", profile=prof)  # fmt: skip
    df = pk(r).sort("frame")
    copy1_end = int(l4_end(df)[0] + df["wait_copy"][0] + df["cpu_copy"][0])
    assert int(df["cpu_copy"][0]) >= 144_800
    assert int(l4_end(df)[1]) >= copy1_end


# ---------------------------------------------------------------------------------------------
# 9. Properties of RPS over random bursts and settings
# ---------------------------------------------------------------------------------------------


# derandomize: a fixed set of examples, so the suite stays deterministic; the one failure this
# property found is pinned below as test_rps_lost_packet_reproducer
@settings(max_examples=12, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
@given(
    bursts=st.lists(st.tuples(st.integers(0, 400), st.integers(1, 150)), min_size=1, max_size=3),
    masks=st.lists(st.sets(st.integers(0, 3), min_size=1), min_size=2, max_size=2),
    max_backlog=st.integers(1, 200),
    weight=st.sampled_from([4, 16, 64]),
    kernel=st.sampled_from(["5.15", "6.12"]),
)
def test_rps_conservation(bursts: list[tuple[int, int]], masks: list[set[int]],
                          max_backlog: int, weight: int, kernel: str) -> None:  # fmt: skip
    # Two queues (IRQs on CPUs 0 and 1), each with its own rps_cpus; UDP to a reader with a
    # huge buffer, so every frame the ring took is either processed by some CPU's backlog or
    # dropped there (CPU_BACKLOG). Then:
    #  - sum(processed) = delivered = sum(backlog_packets) (every skb passes a backlog),
    #  - sum(softnet dropped) = CPU_BACKLOG drops,
    #  - processed and received_rps only on CPUs of some mask; received_rps <= NET_RX per CPU.
    q0, q1 = src_for_queue(0, 2), src_for_queue(1, 2)
    rows = []
    for i, (t_us, n) in enumerate(bursts):
        rows += [{"ts_ns": t_us * 1000, "src": q0 if (i + k) % 2 else q1} for k in range(n)]
    rows.sort(key=lambda r: r["ts_ns"])
    spec = ",".join('"' + ",".join(map(str, sorted(m))) + '"' for m in masks)
    r = run(rows, "host.cpus=4", "nic.combined=2", "nic.rx=1024", f"sysfs.rps_cpus=[{spec}]",
            f"net.core.netdev_max_backlog={max_backlog}", f"net.core.dev_weight={weight}",
            f'host.kernel="{kernel}"', 'app[0].match="udp dport 9000"', "app[0].cpu=3",
            "app[0].rcvbuf=1000000000")  # fmt: skip
    c = r.counters
    df = pk(r)
    sn = c["softnet_stat"]
    delivered = int((df["outcome"] == "delivered").sum())
    backlog_drops = int((df["drop_reason"] == "CPU_BACKLOG").sum())
    ring = int((df["drop_reason"] == "rx_missed_errors").sum())
    assert delivered + backlog_drops + ring == len(rows)
    assert sum(s["processed"] for s in sn) == delivered == sum(c["model"]["backlog_packets"])
    assert sum(s["dropped"] for s in sn) == backlog_drops
    allowed = set().union(*masks)
    for cpu in range(4):
        if cpu not in allowed:
            assert sn[cpu]["processed"] == 0 and sn[cpu]["received_rps"] == 0
        assert sn[cpu]["received_rps"] <= c["softirqs"]["NET_RX"][cpu]
    lat = df.filter(pl.col("outcome") != "ignored")
    total = lat["t_wire"] * 0
    for col in lat.columns:
        if col.startswith(("wait_", "cpu_")) and col != "cpu":
            total = total + lat[col].fill_null(0)
    assert (lat["t_done"] - lat["t_wire"] == total).all()


# ---------------------------------------------------------------------------------------------
# 10. More net_rx_action and GRO arithmetic
# ---------------------------------------------------------------------------------------------


def _events(r: SimResult, kind: str) -> pl.DataFrame:
    ev = pl.from_arrow(r.events)
    assert isinstance(ev, pl.DataFrame)
    ev = ev.with_columns(pl.col("kind").cast(pl.Utf8), pl.col("detail").cast(pl.Utf8))
    return ev.filter(pl.col("kind") == kind).sort("t")


def test_repoll_goes_to_the_tail(tmp_path: Path) -> None:
    # netdev_budget 100, three NAPIs A, B, C (queues 0, 1, 2, IRQs all on CPU 0) with 100 frames
    # each, all on poll_list when net_rx_action starts (see test_five_napis_share_one_budget).
    # Run 1: A 64 (budget 36), B 64 (-28) -> squeeze, break. The unpolled list [C] goes first,
    #   then repoll [A, B] at the tail (list_splice_tail(&repoll, &list)): [C, A, B].
    # Run 2: C 64 (36), A 36 -> completes, budget 0 -> squeeze, break: [B] + repoll [C].
    # Run 3: B 36, C 36: both complete, budget 28 > 0, lists empty -> end.
    # Poll order A B C A B C; with repoll at the head it would be A B A B C C.
    prof = profile_with(tmp_path, "irq100", {"fixed.hardirq": 100_000})
    srcs = [src_for_queue(q, 3) for q in range(3)]
    rows = [{"ts_ns": 0, "src": srcs[k % 3]} for k in range(300)]
    r = run(rows, "host.cpus=2", "nic.combined=3", "irq.affinity=[0,0,0]",
            "net.core.netdev_budget=100", 'app[0].match="udp dport 9000"', "app[0].cpu=1",
            "app[0].rcvbuf=1000000000", profile=prof)  # fmt: skip
    polls = _events(r, "poll")
    assert polls["queue"].to_list() == [0, 1, 2, 0, 1, 2]
    assert polls["value"].to_list() == [64, 64, 64, 36, 36, 36]
    c = r.counters
    assert c["softirqs"]["NET_RX"] == [3, 0]
    assert c["model"]["time_squeeze_budget"] == [2, 0]


@pytest.mark.parametrize(("phase", "sizes"), [(0, [45, 45, 10]), (717_000, [45, 19, 36])])
def test_gro_exhausted_poll_flushes_packets_of_an_older_jiffy(tmp_path: Path, phase: int,
                                                              sizes: list[int]) -> None:  # fmt: skip
    # HZ 1000. 100 segments of 1448 B (PSH on the last) land during a 1 ms hard IRQ; the driver
    # costs 5 us per frame. Poll 1 starts at ~1.003 ms (frame 1 visible at 1220.8 + 1000 ns
    # DMA, hard IRQ 1 ms, softirq + net_rx_action + napi_poll 700 ns) and cleans 64 frames
    # (~5.03 us each) until ~1.325 ms. Segment 46 does not fit the 64 KB skb: it completes the
    # 45-segment one and is held as a new flow at ~1.234 ms (age = that jiffy); 47-64 merge
    # into it. The poll used its weight: gro_flush_normal(gro, HZ >= 1000) flushes only held
    # skbs whose age != jiffies.
    # - tick phase 0: ticks at whole ms, none in [1.234, 1.325]: segment 46's skb is kept,
    #   poll 2 merges 65-90 into it (45) and 91-100 make the last skb: [45, 45, 10].
    # - tick phase 0.717 ms: time 0 is 0.717 ms into jiffy 0, ticks at 0.283, 1.283, ... ms:
    #   one tick between the hold (1.234) and the poll's end (1.325): the held skb is a jiffy
    #   old and leaves with 19 segments; poll 2's 36 make one skb: [45, 19, 36].
    prof = profile_with(tmp_path, "slowirq5", {"fixed.hardirq": 1_000_000, "stage.driver": 5_000})
    r = run(stream(100), "host.cpus=2", "nic.combined=1", "host.hz=1000",
            f"host.tick-phase-ns={phase}", "net.core.netdev_budget_usecs=2000",
            'app[0].match="tcp dport 5000"', "app[0].cpu=1", "app[0].rcvbuf=100000000",
            profile=prof)  # fmt: skip
    assert skb_sizes(r) == sizes
    assert r.counters["napi"][0]["polls"] == 2


def test_mlx5_channel_counters() -> None:
    # mlx5e_napi_poll counts ch_stats->poll at every poll and ch_stats->arm when
    # napi_complete_done lets it re-arm the CQs; mlx5e_completion_event counts ch_stats->events
    # per interrupt (en_stats.c: ch%d_events, ch%d_poll, ch%d_arm). rx_packets / rx_bytes count
    # CQEs and cqe_bcnt (the frame without FCS). 20 frames 100 us apart, cq_period 0 (no
    # moderation): 20 events, 20 polls, 20 arms; 20 x 60 B.
    rows = [{"ts_ns": 100_000 * k} for k in range(20)]
    r = run(rows, 'nic.driver="mlx5"', "nic.combined=1", "nic.rx-usecs=0", "nic.rx-frames=1",
            "nic.adaptive-rx=false", "nic.rx=1024", 'app[0].match="udp dport 9000"',
            "app[0].cpu=1", "host.cpus=2")  # fmt: skip
    e = r.counters["ethtool"]
    assert (e["ch0_events"], e["ch0_poll"], e["ch0_arm"]) == (20, 20, 20)
    assert (e["rx_packets"], e["rx_bytes"]) == (20, 1200)


@pytest.mark.parametrize(("linktype", "hdr"), [
    (101, 0), (113, 16), (276, 20), (0, 4), (1, 14),
])  # fmt: skip
def test_serialization_of_captures_without_ethernet_headers(linktype: int, hdr: int) -> None:
    # A raw-IP capture (LINKTYPE_RAW 101) or `tcpdump -i any` (Linux cooked, 113: a 16-byte
    # SLL header instead of the 14-byte Ethernet one) still came over Ethernet: a 46-byte IP
    # packet is a 60-byte frame, 84 bytes with FCS, preamble and IFG: 672 ns apart at 1 Gb/s;
    # the NIC counts 60 bytes per frame in rx_bytes.
    rows = [{"ts_ns": 0, "linktype": linktype, "wire_len": 46 + hdr, "cap_len": 46 + hdr,
             "dst_mac": None if hdr != 14 else bytes.fromhex("020000000001")}
            for _ in range(10)]  # fmt: skip
    r = run(rows, 'nic.speed="1G"', "host.cpus=2", "nic.combined=1",
            'app[0].match="udp dport 9000"', "app[0].cpu=1", 'host.addresses=["10.0.0.1"]')  # fmt: skip
    t = pk(r).sort("frame")["t_wire"].to_list()
    assert [b - a for a, b in itertools.pairwise(t)] == [672] * 9
    assert r.counters["ethtool"]["rx_bytes"] == 600


def test_local_rps_backlog_shares_the_budget(tmp_path: Path) -> None:
    # rps_cpus "0": the IRQ's own CPU. 200 frames land during a 1 ms hard IRQ (6.12).
    # Run 1: the device NAPI polls 64 (full -> repoll); its enqueues schedule the backlog NAPI
    #   on poll_list without a raise (in_net_rx_action); the loop breaks because repoll is not
    #   empty (goto start only when both lists are empty): poll_list [backlog] + repoll [dev].
    # Run 2: backlog splices and processes 64 (its quota: full -> repoll), the device 64 more.
    # Run 3: the same. Run 4: backlog 64 (repoll), device 8 (completes). Run 5: backlog 8.
    # Budget per run at most 128 < 300: no squeeze. NET_RX 5; 4 device polls, 4 backlog polls.
    prof = rps_profile(tmp_path, fixed__hardirq=1_000_000)
    rows = [{"ts_ns": 0} for _ in range(200)]
    r = run(rows, "host.cpus=2", "nic.combined=1", 'sysfs.rps_cpus=["0"]',
            'app[0].match="udp dport 9000"', "app[0].cpu=1", "app[0].rcvbuf=1000000000",
            profile=prof)  # fmt: skip
    c = r.counters
    assert c["softirqs"]["NET_RX"] == [5, 0]
    assert c["napi"][0]["polls"] == 4
    assert c["model"]["backlog_polls"] == [4, 0]
    assert c["model"]["backlog_packets"] == [200, 0]
    assert c["softnet_stat"][0]["time_squeeze"] == 0
    assert c["softnet_stat"][0]["received_rps"] == 0
    polls = _events(r, "poll")
    assert polls["value"].to_list() == [64, 64, 64, 64, 64, 64, 8, 8]


def test_vlan_frames_take_another_round(tmp_path: Path) -> None:
    # A VLAN-tagged frame for the host (which has the VLAN device, or it could not receive on
    # that VLAN's address): __netif_receive_skb_core counts softnet processed at
    # `another_round:`, then vlan_do_receive() moves the skb to the VLAN device and jumps back
    # to another_round: processed counts twice per frame (KERNEL.md §1 row 6).
    rows = [{"ts_ns": 10_000 * k, "vlan": 100, "wire_len": 64, "cap_len": 64} for k in range(5)]
    r = run(rows, "host.cpus=2", "nic.combined=1", 'app[0].match="udp dport 9000"',
            "app[0].cpu=1")  # fmt: skip
    assert (pk(r)["outcome"] == "delivered").all()
    assert r.counters["softnet_stat"][0]["processed"] == 10


@pytest.mark.parametrize("rho", [0.5, 0.9])
def test_recvmmsg_bulk_service_recursion(tmp_path: Path, rho: float) -> None:
    # recvmmsg(vlen 4, MSG_WAITFORONE) under Poisson arrivals, a reader with no cost but its
    # work (D = 20 us per message, after the call returns). Bulk service: when the reader is
    # free at f and the queue holds q datagrams it takes k = min(4, q) at once and is busy
    # k x D; with an empty queue it sleeps and takes the next arrival (and any arriving at the
    # same instant). Each datagram's time in the socket queue (wait_copy) follows from that.
    zero = {"fixed.syscall": 0, "fixed.consume": 0, "stage.copy": 0, "stage.app": 0,
            "fixed.wakeup": 0, "fixed.ctx_switch": 0, "latency.wakeup": 0, "latency.ipi": 0}  # fmt: skip
    prof = profile_with(tmp_path, "bulk", zero)
    d = 20_000
    n = 8000
    rng = np.random.default_rng(int(rho * 10))
    ts = np.cumsum(rng.exponential(d / rho, n)).astype(np.int64)
    r = run([{"ts_ns": int(t)} for t in ts], "host.cpus=2", "nic.combined=1", "nic.rx-usecs=0",
            'app[0].match="udp dport 9000"', "app[0].cpu=1", f"app[0].work-ns={d}",
            "app[0].batch=4", "app[0].rcvbuf=1000000000", profile=prof)  # fmt: skip
    df = pk(r).sort("frame")
    assert (df["outcome"] == "delivered").all()
    a = l4_end(df).to_numpy()
    got = df["wait_copy"].to_numpy() + df["cpu_copy"].to_numpy()
    expect = np.empty(n, dtype=np.int64)
    i, free = 0, -(10**18)
    while i < n:
        t = max(free, int(a[i]))
        j = i
        while j < n and j - i < 4 and a[j] <= t:
            j += 1
        expect[i:j] = t - a[i:j]
        free = t + (j - i) * d
        i = j
    np.testing.assert_array_equal(got, expect)


@pytest.mark.parametrize(("kernel", "full"), [
    ("6.12", 3),
    ("5.4", 24),  # before the hint: a lookup per skb
])  # fmt: skip
def test_route_hint_in_list_receive(tmp_path: Path, kernel: str, full: int) -> None:
    # 24 UDP datagrams to one address (an unconnected socket: no early-demux dst) in one poll,
    # three GRO-normal batches of 8: the first skb of each batch takes the FIB lookup, the
    # other 7 reuse its route through the hint.
    prof = profile_with(tmp_path, "slowirq", {"fixed.hardirq": 1_000_000})
    rows = [{"ts_ns": 0} for _ in range(24)]
    r = run(rows, "host.cpus=2", "nic.combined=1", f'host.kernel="{kernel}"',
            'app[0].match="udp dport 9000"', "app[0].cpu=1", profile=prof)  # fmt: skip
    route = cpu_df(r).filter(pl.col("stage").cast(pl.Utf8) == "route")
    lookups = route.filter(pl.col("symbol") != "ip_route_use_hint")["frames"].sum()
    assert lookups == full
    assert route["frames"].sum() == 24


def test_no_gro_normal_batching_before_5_4(tmp_path: Path) -> None:
    # gro_normal_batch and the listified GRO_NORMAL path came with 323ebb61e32b (5.4). Before
    # it napi_skb_finish hands a GRO_NORMAL skb to netif_receive_skb_internal at once: each of
    # the 24 datagrams goes through the whole stack before the driver cleans the next, so the
    # socket enqueues are driver + GRO + netif + ip + route + local + udp = 650 ns apart.
    prof = profile_with(tmp_path, "slowirq-nowake", {"fixed.hardirq": 1_000_000,
                                                     "fixed.wakeup": 0})  # fmt: skip
    rows = [{"ts_ns": 0} for _ in range(24)]
    r = run(rows, "host.cpus=2", "nic.combined=1", 'host.kernel="4.19"',
            'app[0].match="udp dport 9000"', "app[0].cpu=1", "app[0].rcvbuf=1000000000",
            profile=prof)  # fmt: skip
    t = l4_end(pk(r).sort("frame")).to_list()
    assert [b - a for a, b in itertools.pairwise(t)] == [650] * 23


# sock_init_data sets rmem_default, but tcp_init_sock then sets sk_rcvbuf = net.ipv4.tcp_rmem[1]:
# 131072 since a337531b942b (4.20), 87380 before (KERNEL.md §2); autotuning
# (tcp_rcv_space_adjust) grows it only as the reader reads (tests/test_model_tcp_autotune.py)
@pytest.mark.parametrize(("kernel", "rcvbuf"), [("6.12", 131072), ("4.19", 87380)])
def test_tcp_socket_starts_at_tcp_rmem_default(kernel: str, rcvbuf: int) -> None:
    from replay.model.config import resolve_config

    cfg = resolve_config(None, [f'host.kernel="{kernel}"', 'app[0].match="tcp dport 5000"'])
    assert cfg["app"][0]["rcvbuf"] == rcvbuf
    udp = resolve_config(None, [f'host.kernel="{kernel}"', 'app[0].match="udp dport 5000"'])
    assert udp["app"][0]["rcvbuf"] == 212992  # UDP keeps rmem_default


def _flags_at(n: int, k: int, flag: int, *, ack_from: int | None = None) -> list[dict[str, Any]]:
    rows = stream(n)
    for i, row in enumerate(rows):
        if i == k:
            row["tcp_flags"] |= flag
        if ack_from is not None and i >= ack_from:
            row["tcp_ack"] = 99
    return rows


@pytest.mark.parametrize(("name", "rows", "sizes"), [
    # tcp_gro_receive (tcp_offload.c): `flush |= flags & TCP_FLAG_CWR` stops the CWR segment
    # merging into the held skb; at out_check_final flush is recomputed (len < mss with mss = 1,
    # or URG/PSH/RST/SYN/FIN): 0, so the held skb is completed (the new skb is not same_flow)
    # and the CWR segment itself is held as a new flow, and later ones (flags differ only in
    # CWR, which the mismatch mask excludes) merge into it: [3, 7].
    ("cwr", _flags_at(10, 3, 0x80), [3, 7]),
    # CWR on the very first segment: nothing to merge into; held; the rest merge: [10].
    ("cwr-first", _flags_at(10, 0, 0x80), [10]),
    # FIN is excluded from the mismatch mask: it merges, then out_check_final completes: [3, 7]
    ("fin", _flags_at(10, 2, 0x01), [3, 7]),
    # URG differs -> flush; out_check_final: flags & URG -> the held skb is completed and the
    # URG segment gets NAPI_GRO_CB(skb)->flush -> GRO_NORMAL, alone: [2, 1, 7]
    ("urg", _flags_at(10, 2, 0x20), [2, 1, 7]),
    # ECE differs -> flush, recomputed 0 -> completes the held skb, the ECE segment is held;
    # the next one differs from it in ECE again -> it leaves alone: [4, 1, 5]
    ("ece", _flags_at(10, 4, 0x40), [4, 1, 5]),
    # ack_seq changes at segment 6: `flush |= th->ack_seq ^ th2->ack_seq`: [5, 5]
    ("ack", _flags_at(10, -1, 0, ack_from=5), [5, 5]),
])  # fmt: skip
def test_gro_tcp_flag_rules(tmp_path: Path, name: str, rows: list[dict[str, Any]],
                            sizes: list[int]) -> None:  # fmt: skip
    prof = profile_with(tmp_path, "slowirq", {"fixed.hardirq": 1_000_000})
    r = run(rows, "host.cpus=2", "nic.combined=1", 'app[0].match="tcp dport 5000"',
            "app[0].cpu=1", "app[0].rcvbuf=100000000", profile=prof)  # fmt: skip
    assert skb_sizes(r) == sizes
    assert r.counters["softnet_stat"][0]["processed"] == len(sizes)


def test_gro_skips_ipv4_with_options(tmp_path: Path) -> None:
    # inet_gro_receive: `if (*(u8 *)iph != 0x45) goto out_unlock;` -- a header with options
    # (ihl 6) is never aggregated: 10 segments, 10 skbs.
    rows = stream(10)
    for row in rows:
        row["ip_hlen"] = 24
        row["wire_len"] = row["cap_len"] = 1506
    prof = profile_with(tmp_path, "slowirq", {"fixed.hardirq": 1_000_000})
    r = run(rows, "host.cpus=2", "nic.combined=1", 'app[0].match="tcp dport 5000"',
            "app[0].cpu=1", "app[0].rcvbuf=100000000", profile=prof)  # fmt: skip
    assert skb_sizes(r) == [1] * 10


def test_gro_ipv6_hop_limit_change(tmp_path: Path) -> None:
    # ipv6_gro_receive: `flush |= iph->hop_limit ^ iph2->hop_limit` (and the traffic class):
    # the held skb completes at segment 6 and segment 6 starts a new one: [5, 5].
    rows = stream(10, ttl=lambda k: 64 if k < 5 else 63)
    for row in rows:
        row.update(ip_version=6, ethertype=0x86DD, src="2001:db8::2", dst="2001:db8::1",
                   ip_hlen=40, wire_len=1522, cap_len=1522)  # fmt: skip
    prof = profile_with(tmp_path, "slowirq", {"fixed.hardirq": 1_000_000})
    r = run(rows, "host.cpus=2", "nic.combined=1", 'host.addresses=["2001:db8::1"]',
            'app[0].match="tcp dport 5000"', "app[0].cpu=1", "app[0].rcvbuf=100000000",
            profile=prof)  # fmt: skip
    assert skb_sizes(r) == [5, 5]


def test_pure_acks_are_consumed(tmp_path: Path) -> None:
    # Segments without payload to an established socket: tcp_v4_rcv counts InSegs, tcp_ack
    # processes them and the skb is freed with __kfree_skb / consumed (tcp_rcv_established:
    # "Bulk data transfer: sender" path, no data to queue): consumed in l4, nothing to read.
    rows = [{"ts_ns": 10_000 * k, "proto": 6, "sport": 443, "dport": 5000, "tcp_flags": 0x10,
             "tcp_seq": 1000, "tcp_ack": 77 + 100 * k, "payload_len": 0} for k in range(5)]  # fmt: skip
    r = run(rows, "host.cpus=2", "nic.combined=1", 'app[0].match="tcp dport 5000"',
            "app[0].cpu=1")  # fmt: skip
    df = pk(r)
    assert df["outcome"].to_list() == ["consumed"] * 5
    assert set(df["drop_stage"].drop_nulls().to_list()) == set()
    assert r.counters["snmp"]["Tcp"]["InSegs"] == 5
    assert r.counters["softnet_stat"][0]["processed"] == 5


def test_udp_finite_buffer_is_dd1k(tmp_path: Path) -> None:
    # sk_rcvbuf 9216, kernel 6.12: forward_threshold = 9216 >> 2 = 2304 = one skb's truesize,
    # so udp_rmem_release gives every datagram back at its read. Enqueue accepts while rmem
    # (before the add) <= 9216: up to 5 queued skbs (2304 x 4 = 9216 still passes). Arrivals
    # every 10 us, a reader that only works 23.3 us per message: a D/D/1/K queue. Which
    # datagrams are dropped follows from replaying that rule over the socket arrival times.
    zero = {"fixed.syscall": 0, "fixed.consume": 0, "stage.copy": 0, "stage.app": 0,
            "fixed.wakeup": 0, "fixed.ctx_switch": 0, "latency.wakeup": 0, "latency.ipi": 0}  # fmt: skip
    prof = profile_with(tmp_path, "dd1k", zero)
    d, n = 23_333, 300
    rows = [{"ts_ns": 10_000 * k} for k in range(n)]
    r = run(rows, "host.cpus=2", "nic.combined=1", "nic.rx-usecs=0", 'host.kernel="6.12"',
            'app[0].match="udp dport 9000"', "app[0].cpu=1", f"app[0].work-ns={d}",
            "app[0].rcvbuf=9216", profile=prof)  # fmt: skip
    df = pk(r).sort("frame")
    a = l4_end(df).to_numpy()
    # the little simulation: events in time order; a read frees its truesize at once
    queue: list[int] = []
    rmem, free, dropped = 0, 0, []
    reads: list[int] = []
    for i in range(n):
        while queue and free <= a[i]:  # reads that happen before this arrival
            t = max(free, int(a[queue[0]]))
            if t > a[i]:
                break
            assert t != a[i]  # no ties in this setup
            queue.pop(0)
            rmem -= 2304
            reads.append(t)
            free = t + d
        if rmem <= 9216:
            queue.append(i)
            rmem += 2304
        else:
            dropped.append(i + 1)
    got = df.filter(pl.col("outcome") == "dropped")["frame"].to_list()
    assert got == dropped
    assert r.counters["snmp"]["Udp"]["RcvbufErrors"] == len(dropped)
    assert 150 < len(dropped) < 180  # about 1 - 10/23.3 of 300, less the start-up


def test_ksoftirqd_gets_the_cpu_at_the_tick_after_the_readers_slice() -> None:
    # 6.12, HZ 250, tick phase 0; the reader shares CPU 0 with the IRQ. Frame 1 (t=0) wakes it
    # and it works 20 ms on it. A burst of 1000 frames at 1 ms: the IRQ interrupts the reader,
    # irq_exit runs NET_RX inline: 10 rounds of 64 (MAX_SOFTIRQ_RESTART) by ~1.5 ms, then
    # wakeup_softirqd. The NAPI stays scheduled (IRQ masked), so only ksoftirqd can poll the
    # other 360 frames. The reader is past its 1.5 ms slice at the 4 ms tick at the latest
    # (earlier if the wake-up itself finds it past its deadline): ksoftirqd runs by then and is
    # done well before 5 ms.
    rows = [{"ts_ns": 0}] + [{"ts_ns": 1_000_000}] * 1000
    r = run(rows, "host.cpus=2", "nic.combined=1", "nic.rx=1024", "nic.rx-usecs=0",
            'host.kernel="6.12"', "host.hz=250", "host.tick-phase-ns=0",
            'app[0].match="udp dport 9000"', "app[0].cpu=0", "app[0].work-ns=20000000",
            "app[0].rcvbuf=1000000000")  # fmt: skip
    df = pk(r).sort("frame")
    assert r.counters["model"]["ksoftirqd_wakeups"][0] >= 1
    last = int(l4_end(df)[1000])
    assert 1_000_000 < last < 5_000_000, last


def test_rps_lost_packet_reproducer() -> None:
    q0, q1 = src_for_queue(0, 2), src_for_queue(1, 2)
    rows = [{"ts_ns": 0, "src": q0 if k % 2 else q1} for k in range(63)]
    rows += [{"ts_ns": 9_000, "src": q1 if k % 2 else q0} for k in range(78)]
    r = run(rows, "host.cpus=4", "nic.combined=2", "nic.rx=1024", 'sysfs.rps_cpus=["1","3"]',
            "net.core.netdev_max_backlog=1000", "net.core.dev_weight=4", 'host.kernel="6.12"',
            'app[0].match="udp dport 9000"', "app[0].cpu=3", "app[0].rcvbuf=1000000000")  # fmt: skip
    assert (pk(r)["outcome"] == "delivered").all()
    assert sum(s["processed"] for s in r.counters["softnet_stat"]) == 141


@pytest.mark.parametrize(("kernel", "net_rx0"), [("6.12", 0), ("6.1", 5)])
def test_threaded_napi_sends_rps_ipis(tmp_path: Path, kernel: str, net_rx0: int) -> None:
    # Threaded NAPI on CPU 0, RPS to CPU 1; 5 frames 100 us apart, one kthread poll each.
    # 6.5+ (87eff2ec57b6 "net: optimize napi_threaded_poll() vs RPS/RFS"): napi_schedule_rps
    #   does not raise NET_RX while in_napi_threaded_poll, and napi_threaded_poll_loop sends the
    #   pending IPIs itself (net_rps_action_and_irq_enable): no NET_RX run on CPU 0.
    # Before (6.1): the enqueue raises NET_RX on CPU 0; the kthread's local_bh_enable runs
    #   net_rx_action there, which finds nothing to poll and sends the IPI: one NET_RX per poll.
    # Either way CPU 1 takes one IPI (received_rps) and one NET_RX run per frame.
    prof = rps_profile(tmp_path)
    rows = [{"ts_ns": 100_000 * k} for k in range(5)]
    r = run(rows, "host.cpus=4", "nic.combined=1", "sysfs.threaded=true",
            'sysfs.rps_cpus=["1"]', f'host.kernel="{kernel}"', *APP2, profile=prof)  # fmt: skip
    c = r.counters
    assert c["softirqs"]["NET_RX"] == [net_rx0, 5, 0, 0]
    assert [s["received_rps"] for s in c["softnet_stat"]] == [0, 5, 0, 0]
    assert [s["processed"] for s in c["softnet_stat"]] == [0, 5, 0, 0]


def test_tcp_out_of_order_segment_and_acks() -> None:
    # Segments 1, 3, 2, 4, 5 (PSH on each: one skb each), 10 us apart, on a connection that was
    # running before the trace (no quickack). tcp_data_queue / __tcp_ack_snd_check:
    #  - seg 1 in order, one rcv_mss unacknowledged: delayed ACK armed;
    #  - seg 3 out of order: tcp_data_queue_ofo (TCPOFOQueue 1); with the OFO queue non-empty
    #    the first TCP_FASTRETRANS_THRESH dup-ACKs go at once: ACK 1 (it clears the delack timer);
    #  - seg 2 fills the gap: tcp_ofo_queue moves seg 3, the OFO queue empties ->
    #    ICSK_ACK_NOW (RFC 5681 4.2): ACK 2;
    #  - seg 4: one MSS unacknowledged: delayed; seg 5: two: at once: ACK 3.
    # Tcp InSegs 5, OutSegs 3, DelayedACKs 0; all five read, seg 3 after seg 2.
    order = [0, 2, 1, 3, 4]
    base = stream(5)
    rows = []
    for i, k in enumerate(order):
        rows.append({**base[k], "ts_ns": 10_000 * i, "tcp_flags": 0x18})
    r = run(rows, "host.cpus=2", "nic.combined=1", 'app[0].match="tcp dport 5000"',
            "app[0].cpu=1")  # fmt: skip
    c = r.counters
    assert c["snmp"]["TcpExt"]["TCPOFOQueue"] == 1
    assert c["snmp"]["Tcp"]["InSegs"] == 5
    assert c["snmp"]["Tcp"]["OutSegs"] == 3
    assert c["snmp"]["TcpExt"]["DelayedACKs"] == 0
    df = pk(r).sort("frame")
    assert (df["outcome"] == "delivered").all()
    done = df["t_done"].to_list()
    assert done[1] > done[2]  # frame 2 (seg 3) is read after frame 3 (seg 2)


def test_cstate_exit_on_every_idle_cpu_on_the_path(tmp_path: Path) -> None:
    # With RPS the path crosses three idle CPUs: the IRQ on CPU 0, the RPS IPI on CPU 1
    # (rps_trigger_softirq runs only once CPU 1 is out of its idle state) and the reader's
    # wake-up IPI on CPU 2. Frames 1 ms apart: each pays the 30 us exit three times.
    prof = rps_profile(tmp_path)
    rows = [{"ts_ns": 1_000_000 * k} for k in range(4)]
    base = ["host.cpus=4", "nic.combined=1", 'sysfs.rps_cpus=["1"]', *APP2]
    a = pk(run(rows, *base, profile=prof)).sort("frame")
    b = pk(run(rows, *base, "host.cstate-exit-ns=30000", profile=prof)).sort("frame")
    lat = (b["t_done"] - b["t_wire"]) - (a["t_done"] - a["t_wire"])
    assert lat.to_list() == [90_000] * 4


def test_reuseport_pair_is_two_md1_queues(tmp_path: Path) -> None:
    # Two SO_REUSEPORT sockets (readers on CPUs 1 and 2, D = 20 us of work each, nothing else
    # costs). Every datagram comes from a new source port, so reuseport_select_sock's hash
    # splits the Poisson stream (total rho 1.2) independently per datagram: each socket sees a
    # Poisson stream of about half the rate, an M/D/1 queue of rho ~0.6. Each datagram's wait
    # follows Lindley's recursion within its own socket, and each mean is Pollaczek-Khinchine's
    # with that socket's rate.
    zero = {"fixed.syscall": 0, "fixed.consume": 0, "stage.copy": 0, "stage.app": 0,
            "fixed.wakeup": 0, "fixed.ctx_switch": 0, "latency.wakeup": 0, "latency.ipi": 0}  # fmt: skip
    prof = profile_with(tmp_path, "rp", zero)
    d, n = 20_000, 16_000
    rng = np.random.default_rng(5)
    ts = np.cumsum(rng.exponential(d / 1.2, n)).astype(np.int64)
    rows = [{"ts_ns": int(t), "sport": 1024 + i % 60000} for i, t in enumerate(ts)]
    apps = []
    for i, cpu in enumerate((1, 2)):
        apps += [f'app[{i}].match="udp dport 9000"', f"app[{i}].cpu={cpu}",
                 f"app[{i}].work-ns={d}", f"app[{i}].reuseport=true",
                 f"app[{i}].rcvbuf=1000000000"]  # fmt: skip
    r = run(rows, "host.cpus=3", "nic.combined=1", "nic.rx-usecs=0", *apps, profile=prof)
    df = pk(r).sort("frame")
    assert (df["outcome"] == "delivered").all()
    for j in (0, 1):
        s = df.filter(pl.col("app") == j)
        assert 0.4 < s.height / n < 0.6
        a = l4_end(s).to_numpy()
        wait = (s["wait_copy"] + s["cpu_copy"]).to_numpy()
        free = -(10**18)
        expect = np.empty(len(a), dtype=np.int64)
        for i in range(len(a)):
            start = max(int(a[i]), free)
            expect[i] = start - a[i]
            free = start + d
        np.testing.assert_array_equal(wait, expect)
        lam = (len(a) - 1) / (a[-1] - a[0])
        rho = lam * d
        wq = lam * d * d / (2 * (1 - rho))
        assert abs(wait.mean() / wq - 1) < 0.12, (j, wait.mean(), wq)


def test_ixgbe_ring_size_is_a_multiple_of_8(tmp_path: Path) -> None:
    # ixgbe_set_ringparam: new_rx_count = ALIGN(clamp(rx_pending, 64, max), 8): `ethtool -G rx
    # 100` gives a 104-descriptor ring, 103 posted. 200 frames landing during a 1 ms hard IRQ:
    # 103 stored, 97 rx_missed_errors.
    prof = profile_with(tmp_path, "slowirq", {"fixed.hardirq": 1_000_000})
    rows = [{"ts_ns": 0}] * 200
    r = run(rows, "host.cpus=2", "nic.combined=1", "nic.rx=100", 'app[0].match="udp dport 9000"',
            "app[0].cpu=1", "app[0].rcvbuf=1000000000", profile=prof)  # fmt: skip
    assert r.counters["ethtool"]["rx_missed_errors"] == 97


def _sized(sizes: list[int]) -> list[dict[str, Any]]:
    rows, seq = [], 1000
    for k, size in enumerate(sizes):
        rows.append({"ts_ns": 0, "proto": 6, "sport": 443, "dport": 5000, "payload_len": size,
                     "wire_len": 54 + size, "cap_len": 54 + size, "tcp_seq": seq, "tcp_ack": 77,
                     "tcp_flags": 0x10 | (0x08 if k == len(sizes) - 1 else 0), "tcp_hlen": 20,
                     "tcp_opt_hash": 0, "ip_id": 100 + k})  # fmt: skip
        seq += size
    return rows


@pytest.mark.parametrize(("sizes", "skbs"), [
    # a shorter segment merges and completes the skb (out_check_final: len < mss): [3, 2]
    ([1448, 1448, 1000, 1448, 1448], [3, 2]),
    # the held skb's gso_size is its first segment's length (1000); a longer segment
    # (`flush |= (len - 1) >= mss`) completes it and starts a new one: [1, 4]
    ([1000, 1448, 1448, 1448, 1448], [1, 4]),
])  # fmt: skip
def test_gro_segment_size_rules(tmp_path: Path, sizes: list[int], skbs: list[int]) -> None:
    prof = profile_with(tmp_path, "slowirq", {"fixed.hardirq": 1_000_000})
    r = run(_sized(sizes), "host.cpus=2", "nic.combined=1", 'app[0].match="tcp dport 5000"',
            "app[0].cpu=1", "app[0].rcvbuf=100000000", profile=prof)  # fmt: skip
    assert skb_sizes(r) == skbs


def test_tcpreplay_timing_options() -> None:
    # tcpreplay -x 2 halves every capture gap; -p 1000 spaces packets 1 ms apart whatever the
    # capture says; -l 3 replays the capture three times (one row per replayed packet).
    from replay.runner import ReplayOptions

    rows = [{"ts_ns": t} for t in (0, 100_000, 300_000)]
    base = ["host.cpus=2", "nic.combined=1", 'app[0].match="udp dport 9000"', "app[0].cpu=1"]

    def gaps(opts: ReplayOptions) -> list[int]:
        t = pk(run(rows, *base, opts=opts)).sort("pkt")["t_wire"].to_list()
        return [b - a for a, b in itertools.pairwise(t)]

    assert gaps(ReplayOptions(multiplier=2.0)) == [50_000, 100_000]
    assert gaps(ReplayOptions(pps=1000)) == [1_000_000, 1_000_000]
    looped = pk(run(rows, *base, opts=ReplayOptions(loop=3)))
    assert looped.height == 9
    assert (looped["outcome"] == "delivered").all()


def test_rps_lost_packet_reproducer_tcp() -> None:
    # The same bug from a TCP fuzz (shrunk to 11 segments): kernel 6.18, GRO off, RPS over
    # CPUs 0, 2, 3 with the reader on CPU 2, dev_weight 4, no interrupt moderation.
    times = [0, 100, 200, 200, 200, 85228, 86728, 86728, 88228, 89728, 99239]
    rows = []
    for k, t in enumerate(times):
        rows.append({"ts_ns": t, "proto": 6, "sport": 443, "dport": 5000, "wire_len": 1502,
                     "cap_len": 1502, "payload_len": 1448, "tcp_seq": 122632 + 1448 * k,
                     "tcp_ack": 77, "tcp_flags": 0x10, "tcp_hlen": 20, "tcp_opt_hash": 0,
                     "ip_id": 100 + k})  # fmt: skip
    r = run(rows, "host.cpus=4", "nic.combined=1", 'host.kernel="6.18"', "host.hz=1000",
            "nic.rx-usecs=0", "nic.gro=false", 'sysfs.rps_cpus=["0,2,3"]',
            "net.core.dev_weight=4", 'app[0].match="tcp dport 5000"', "app[0].cpu=2",
            "app[0].work-ns=1000", "app[0].rcvbuf=100000000")  # fmt: skip
    assert (pk(r)["outcome"] == "delivered").all()


def test_veth_runs_net_rx_in_the_senders_context() -> None:
    # veth without GRO on the peer: veth_xmit -> __netif_rx -> enqueue_to_backlog on the
    # sending CPU; __dev_queue_xmit holds rcu_read_lock_bh, so the NET_RX it raised runs at
    # its rcu_read_unlock_bh (local_bh_enable -> do_softirq) in the sender's task context:
    # one NET_RX run and one process_backlog per packet, on the sender's CPU, Command = the
    # sender (KERNEL.md §3c). No IRQ, no NIC ring.
    rows = [{"ts_ns": 100_000 * k} for k in range(10)]
    r = run(rows, 'nic.driver="veth"', "host.cpus=2", "nic.combined=1", "nic.sender-cpu=0",
            'app[0].match="udp dport 9000"', "app[0].cpu=1")  # fmt: skip
    c = r.counters
    assert c["softirqs"]["NET_RX"] == [10, 0]
    assert c["softnet_stat"][0]["processed"] == 10
    assert c["model"]["backlog_polls"] == [10, 0]
    assert sum(sum(v) for v in c["interrupts"].values()) == 0
    core = cpu_df(r).filter(pl.col("symbol") == "__netif_receive_skb_core")
    assert set(core["comm"].to_list()) == {"tcpreplay"}


def test_ipv6_fragments_and_no_port_counters() -> None:
    from tests.test_model_breadth import frag

    # IPv6: three fragments of one datagram (ipv6_frag_rcv: Ip6ReasmReqds per fragment, one
    # Ip6ReasmOKs, the datagram delivered once: Ip6InDelivers 1, Udp6InDatagrams 1), then two
    # datagrams to a port nobody listens on (__udp6_lib_rcv: Udp6NoPorts, NO_SOCKET;
    # ip6_input_finish still counts Ip6InDelivers for them). Ip6InReceives counts all 5.
    v6 = {"v6": True, "src": "2001:db8::2", "dst": "2001:db8::1"}
    rows = [frag(0, 0, True, **v6), frag(10_000, 1480, True, **v6),
            frag(20_000, 2960, False, **v6)]  # fmt: skip
    rows += [{"ts_ns": 30_000 + 10_000 * k, "ip_version": 6, "ethertype": 0x86DD,
              "src": "2001:db8::2", "dst": "2001:db8::1", "ip_hlen": 40, "dport": 9999,
              "wire_len": 80, "cap_len": 80} for k in range(2)]  # fmt: skip
    r = run(rows, "host.cpus=2", "nic.combined=1", 'host.addresses=["2001:db8::1"]',
            'app[0].match="udp dport 9000"', "app[0].cpu=1")  # fmt: skip
    s6 = r.counters["snmp6"]
    assert (s6["Ip6InReceives"], s6["Ip6ReasmReqds"], s6["Ip6ReasmOKs"]) == (5, 3, 1)
    assert s6["Ip6InDelivers"] == 3
    assert (s6["Udp6InDatagrams"], s6["Udp6NoPorts"]) == (1, 2)
    df = pk(r).sort("frame")
    assert df["outcome"].to_list() == ["consumed", "consumed", "delivered", "dropped", "dropped"]
    assert df["drop_reason"].to_list()[3:] == ["NO_SOCKET", "NO_SOCKET"]


def test_mlx5_rss_table_grows_with_channels() -> None:
    # mlx5e RQT size: max(256, roundup_pow_of_two(2 x nch)) (en/rqt.c): 512 entries for 160
    # channels; queue = indir[hash & 511] with indir[i] = i % 160. TCP: the 4-tuple.
    from tests.test_model_independent import VECTORS

    rows, expect = [], []
    for dst, dport, src, sport, _, h4 in VECTORS:
        rows.append({"ts_ns": len(rows) * 100_000, "src": src, "dst": dst, "sport": sport,
                     "dport": dport, "proto": 6})  # fmt: skip
        expect.append((h4 & 511) % 160)
    assert expect != [(h4 & 255) % 160 for *_, h4 in VECTORS]  # the table size shows
    addrs = ",".join(f'"{v[0]}"' for v in VECTORS)
    r = run(rows, 'nic.driver="mlx5"', "host.cpus=160", "nic.combined=160", "nic.rx=1024",
            'host.kernel="6.19"', 'nic.hkey="microsoft"', f"host.addresses=[{addrs}]")  # fmt: skip
    assert pk(r)["queue"].to_list() == expect


def test_i40e_rss_lut_is_512_entries() -> None:
    # i40e: the PF's hash LUT has 512 entries (i40e.h I40E_HLUT_ARRAY_SIZE (127 + 1) x 4),
    # filled i % rss_size (i40e_fill_rss_lut); queue = lut[hash & 511]. TCP, 4-tuple, 3 queues.
    from tests.test_model_independent import VECTORS

    rows, expect = [], []
    for dst, dport, src, sport, _, h4 in VECTORS:
        rows.append({"ts_ns": len(rows) * 100_000, "src": src, "dst": dst, "sport": sport,
                     "dport": dport, "proto": 6})  # fmt: skip
        expect.append((h4 & 511) % 3)
    assert expect != [(h4 & 127) % 3 for *_, h4 in VECTORS]
    addrs = ",".join(f'"{v[0]}"' for v in VECTORS)
    r = run(rows, 'nic.driver="i40e"', "nic.combined=3", 'nic.hkey="microsoft"',
            f"host.addresses=[{addrs}]")  # fmt: skip
    assert pk(r)["queue"].to_list() == expect


def test_rfs_keeps_a_flow_on_its_cpu_until_the_queue_drains(tmp_path: Path) -> None:
    # get_rps_cpu's switch rule (dev.c, KERNEL.md §3.5): when the desired CPU (sock flow table)
    # differs from rflow->cpu, switch only if rflow->cpu is unset/offline or its backlog head
    # has passed rflow->last_qtail (what this rflow last enqueued there).
    # rps_flow_cnt 1: one rflow shared by every flow of the queue. Flows A (sport 1001, reader
    # on CPU 2) and B (sport 1002, reader on CPU 3); rps_cpus 0-1; sock flow table 32768.
    # Phase 1: A0 (t=0), B0 (t=100 us): nothing recorded yet -> RPS map [0, 1][hash >> 31];
    #   each reader's next recvmsg records its flow -> CPU 2 / CPU 3.
    # Phase 2 (10 ms): A1, B1, B2, B3 in one poll (1 ms hard IRQ): A1 -> rflow unset -> CPU 2
    #   (last_qtail = A1's tail there). B1: desired 3, rflow->cpu 2, CPU 2's head has not
    #   passed A1 (its IPI leaves at the end of this net_rx_action) -> stays on CPU 2; B2, B3
    #   likewise. Phase 3: B4 at 20 ms: CPU 2 drained -> switch to CPU 3.
    # processed: A0, B0 on their RPS CPUs; 4 on CPU 2; 1 on CPU 3.
    prof = rps_profile(tmp_path, fixed__hardirq=1_000_000)

    def seg(t: int, sport: int, k: int) -> dict[str, Any]:
        return {"ts_ns": t, "proto": 6, "sport": sport, "dport": 5000, "wire_len": 1502,
                "cap_len": 1502, "payload_len": 1448, "tcp_seq": 1000 + 1448 * k, "tcp_ack": 77,
                "tcp_flags": 0x18, "tcp_hlen": 20, "tcp_opt_hash": 0, "ip_id": 100 + k}  # fmt: skip

    rows = [seg(0, 1001, 0), seg(100_000, 1002, 0), seg(10_000_000, 1001, 1),
            seg(10_000_000, 1002, 1), seg(10_000_000, 1002, 2), seg(10_000_000, 1002, 3),
            seg(20_000_000, 1002, 4)]  # fmt: skip
    r = run(rows, "host.cpus=4", "nic.combined=1", 'sysfs.rps_cpus=["0-1"]',
            "net.core.rps_sock_flow_entries=32768", "sysfs.rps_flow_cnt=1",
            'app[0].match="tcp sport 1001"', "app[0].cpu=2",
            'app[1].match="tcp sport 1002"', "app[1].cpu=3", profile=prof)  # fmt: skip
    expect = [0, 0, 4, 1]
    for sport in (1001, 1002):
        h = toeplitz(MS_KEY, tuple_bytes("10.0.0.2", "10.0.0.1", sport, 5000))
        expect[h >> 31] += 1
    assert [s["processed"] for s in r.counters["softnet_stat"]] == expect
    assert (pk(r)["outcome"] == "delivered").all()


@pytest.mark.parametrize(("defer", "timeout"), [(2, 0), (0, 20_000)])
def test_irq_deferral_needs_a_timeout_and_held_gro(defer: int, timeout: int) -> None:
    # napi_complete_done (dev.c): `if (work_done) { if (n->gro.bitmask) timeout =
    # gro_flush_timeout; n->defer_hard_irqs_count = napi_defer_hard_irqs; } if
    # (n->defer_hard_irqs_count > 0) { n->defer_hard_irqs_count--; timeout = gro_flush_timeout;
    # if (timeout) ret = false; }`.
    # - napi_defer_hard_irqs 2 with gro_flush_timeout 0: timeout stays 0, the IRQ is re-armed.
    # - gro_flush_timeout 20 us, no deferral, UDP (GRO holds nothing): no timer either.
    # Either way every frame (50 us apart, no moderation) gets its own IRQ and poll.
    rows = [{"ts_ns": 50_000 * k} for k in range(10)]
    r = run(rows, "host.cpus=2", "nic.combined=1", "nic.rx-usecs=0",
            f"sysfs.napi_defer_hard_irqs={defer}", f"sysfs.gro_flush_timeout={timeout}",
            'app[0].match="udp dport 9000"', "app[0].cpu=1")  # fmt: skip
    n = r.counters["napi"][0]
    assert (n["irqs"], n["polls"], n["arms"], n["timers"]) == (10, 10, 10, 0)


def test_malformed_ipv4_headers_are_inhdr_errors() -> None:
    # ip_rcv_core: IPSTATS_MIB_IN (InReceives) first, then `if (iph->ihl < 5 || iph->version
    # != 4) goto inhdr_error;` -> InHdrErrors, SKB_DROP_REASON_IP_INHDR, in the ip stage.
    # softnet processed counts them (they passed __netif_receive_skb_core).
    rows = [{"ts_ns": 0, "error": "bad-ihl", "ip_hlen": 16, "sport": None, "dport": None},
            {"ts_ns": 10_000, "error": "bad-ip-version", "sport": None, "dport": None},
            {"ts_ns": 20_000}]  # fmt: skip
    r = run(rows, "host.cpus=2", "nic.combined=1", 'app[0].match="udp dport 9000"',
            "app[0].cpu=1", 'host.addresses=["10.0.0.1"]')  # fmt: skip
    df = pk(r).sort("frame")
    assert df["outcome"].to_list() == ["dropped", "dropped", "delivered"]
    assert df["drop_reason"].to_list()[:2] == ["IP_INHDR", "IP_INHDR"]
    assert df["drop_stage"].to_list()[:2] == ["ip", "ip"]
    ip = r.counters["snmp"]["Ip"]
    assert (ip["InReceives"], ip["InHdrErrors"], ip["InDelivers"]) == (3, 2, 1)
    assert r.counters["softnet_stat"][0]["processed"] == 3


def test_flow_limit_spares_the_light_flow(tmp_path: Path) -> None:
    # As test_flow_limit_is_the_enqueuing_cpus (CPU 1 stuck 10 ms in ip_rcv on frame 1; the
    # burst queues on its input_pkt_queue), but the 700-frame burst mixes a heavy flow (9 in
    # 10 frames, 10.0.0.2) and a light one (every 10th, 10.0.0.3). skb_flow_limit, replayed
    # here exactly: from qlen >= 500 each call overwrites history[head] (128 entries, zeroed
    # at allocation), decrements the old entry's bucket if non-zero, increments
    # buckets[hash_32(hash, 12)] and drops when that exceeds 64. Only the heavy flow reaches it.
    prof = rps_profile(tmp_path, stage__ip=10_000_000)
    srcs = ["10.0.0.3" if k % 10 == 9 else "10.0.0.2" for k in range(700)]
    rows = [{"ts_ns": 0}] + [{"ts_ns": 100_000, "src": s} for s in srcs]
    r = run(rows, "host.cpus=4", "nic.combined=1", "nic.rx=1024", 'sysfs.rps_cpus=["1"]',
            'net.core.flow_limit_cpu_bitmap="0-0"', *APP2,
            'host.addresses=["10.0.0.1"]', profile=prof)  # fmt: skip
    history, buckets, head, qlen, dropped = [0] * 128, [0] * 4096, 0, 0, []
    for k, src in enumerate(srcs):
        if qlen > 1000:
            dropped.append(k + 2)
            continue
        if qlen >= 500:
            new = _hash_32(toeplitz(MS_KEY, tuple_bytes(src, "10.0.0.1")), 12)
            old, history[head] = history[head], new
            head = (head + 1) & 127
            if buckets[old]:
                buckets[old] -= 1
            buckets[new] += 1
            if buckets[new] > 64:
                dropped.append(k + 2)
                continue
        qlen += 1
    df = pk(r).sort("frame")
    got = df.filter(pl.col("outcome") == "dropped")["frame"].to_list()
    assert got == dropped
    light = {k + 2 for k, s in enumerate(srcs) if s == "10.0.0.3"}
    assert not light & set(dropped) and len(dropped) > 100
    assert r.counters["softnet_stat"][0]["flow_limit_count"] == len(dropped)


def test_i40e_itr_is_a_minimum_gap_too() -> None:
    # i40e's ITR (static, rx-usecs 50, adaptive off) is the same minimum inter-interrupt gap as
    # ixgbe's: 20 frames every 16 us (visible at 16000 k + 1067): IRQs every 50 us from 1067,
    # 8 of them (see test_model_independent.py::test_ixgbe_itr_is_a_minimum_gap).
    rows = [{"ts_ns": 16_000 * k} for k in range(20)]
    r = run(rows, 'nic.driver="i40e"', "nic.combined=1", "nic.rx-usecs=50",
            "nic.adaptive-rx=false", 'app[0].match="udp dport 9000"', "app[0].cpu=1",
            "host.cpus=2")  # fmt: skip
    assert _irq_times(r) == [1067 + 50_000 * i for i in range(8)]


def test_md1_with_cstate_setup_time(tmp_path: Path) -> None:
    # M/D/1 with exceptional first service (Welch 1964): a reader that sleeps when the queue
    # empties pays a set-up U before each busy period: the wake-up IPI (1 us), CPU 1's
    # idle-state exit (host.cstate-exit-ns 20 us), the scheduler (1 us) and the context switch
    # (1 us): U = 23 us, against D = 20 us of work, rho = 0.5.
    # Lindley with set-up: S_n = A_n + U if the reader was asleep (A_n >= S_{n-1} + D), else
    # S_{n-1} + D, exactly, for every datagram. (Welch's mean, lambda D^2 / (2 (1 - rho)) +
    # (2 U + lambda U^2) / (2 (1 + lambda U)), does not apply here: CPU 0 pays the same 20 us
    # exit before its IRQs, which bunches the arrivals at the socket; test_model_independent
    # checks Welch's mean with a set-up that leaves the arrivals Poisson.)
    zero = {"fixed.syscall": 0, "fixed.consume": 0, "stage.copy": 0, "stage.app": 0,
            "fixed.wakeup": 0}  # fmt: skip
    prof = profile_with(tmp_path, "md1c", zero)
    d, n, u = 20_000, 20_000, 23_000
    rng = np.random.default_rng(17)
    ts = np.cumsum(rng.exponential(d / 0.5, n)).astype(np.int64)
    r = run([{"ts_ns": int(t)} for t in ts], "host.cpus=2", "nic.combined=1", "nic.rx-usecs=0",
            "host.cstate-exit-ns=20000", 'app[0].match="udp dport 9000"', "app[0].cpu=1",
            f"app[0].work-ns={d}", "app[0].rcvbuf=1000000000", profile=prof)  # fmt: skip
    df = pk(r).sort("frame")
    a = l4_end(df).to_numpy()
    wait = (df["wait_copy"] + df["cpu_copy"]).to_numpy()
    start = np.empty(n, dtype=np.int64)
    free = -(10**18)
    for i in range(n):
        start[i] = a[i] + u if a[i] >= free else free
        free = start[i] + d
    np.testing.assert_array_equal(wait, start - a)
    assert (wait == u).sum() > n // 4  # many busy periods start with the full set-up


# nf_defrag_ipv4 (ipv4_conntrack_defrag at NF_INET_PRE_ROUTING, priority -400) gathers the
# fragments with ip_defrag(IP_DEFRAG_CONNTRACK_IN) inside ip_rcv's PREROUTING hook: a fragment
# that does not complete the datagram is stolen there, before routing and ip_local_deliver


def test_conntrack_reassembles_in_prerouting() -> None:
    from tests.test_model_breadth import frag

    rows = [frag(0, 0, True), frag(10_000, 1480, True), frag(20_000, 2960, False)]
    r = run(rows, "host.cpus=2", "nic.combined=1", "netfilter.conntrack=true",
            'app[0].match="udp dport 9000"', "app[0].cpu=1")  # fmt: skip
    df = pk(r).sort("frame")
    assert df["outcome"].to_list() == ["consumed", "consumed", "delivered"]
    ip = r.counters["snmp"]["Ip"]
    assert (ip["ReasmReqds"], ip["ReasmOKs"], ip["InDelivers"]) == (3, 1, 1)
    # the two fragments end in the ip stage: no routing, no local delivery of their own
    assert df["cpu_route"].to_list()[:2] == [None, None]
    assert df["cpu_local"].to_list()[:2] == [None, None]


@pytest.mark.parametrize(("hz", "in_ksoftirqd", "wakeups"), [(100, 0, 0), (300, 8, 1)])
def test_restart_limit_at_hz_100_and_300(tmp_path: Path, hz: int, in_ksoftirqd: int,
                                         wakeups: int) -> None:  # fmt: skip
    # CONFIG_HZ 100 and 300 exist too. MAX_SOFTIRQ_TIME = msecs_to_jiffies(2), rounded up: 1
    # jiffy at both (10 ms, 3.33 ms); netdev_budget_usecs defaults to 2 jiffies (20000, 6666 us,
    # usecs_to_jiffies rounds up to 2). The driver costs 21 us per frame: 200 frames at t=0 are
    # polled 64, 64, 64, 8 in runs of ~1.4 ms (tick phase 0).
    # HZ 100: every run ends in jiffy 0: restarts, 4 NET_RX runs in softirq, no ksoftirqd.
    # HZ 300: runs end at ~1.4, ~2.8 (jiffy 0: restart) and ~4.2 ms (jiffy 1:
    #   time_before(1, 0 + 1) false -> wakeup_softirqd); ksoftirqd polls the last 8. Run 3
    #   started in jiffy 0 with a limit of jiffy 2: no squeeze.
    prof = profile_with(tmp_path, "slowdrv", {"stage.driver": 21_000})
    rows = [{"ts_ns": 0} for _ in range(200)]
    r = run(rows, "host.cpus=2", "nic.combined=1", f"host.hz={hz}", "host.tick-phase-ns=0",
            f"net.core.netdev_budget_usecs={2 * 1_000_000 // hz}", 'app[0].match="udp dport 9000"',
            "app[0].cpu=1", "app[0].rcvbuf=100000000", profile=prof, opts=TOP)  # fmt: skip
    c = r.counters
    assert c["softirqs"]["NET_RX"] == [4, 0]
    assert c["softnet_stat"][0]["time_squeeze"] == 0
    assert c["model"]["ksoftirqd_wakeups"][0] == wakeups
    cpu = cpu_df(r).filter(pl.col("symbol") == "ixgbe_clean_rx_irq")
    assert cpu.filter(pl.col("context") == "ksoftirqd")["frames"].sum() == in_ksoftirqd


def test_rps_map_uses_reciprocal_scale(tmp_path: Path) -> None:
    # get_rps_cpu: tcpu = map->cpus[reciprocal_scale(hash, map->len)] = cpus[(hash x len) >> 32],
    # map->cpus in ascending CPU order (store_rps_map: for_each_cpu_and). rps_cpus "1-3": 3
    # CPUs. 30 sources 10.0.1.x (UDP: ixgbe's 2-tuple hash), 200 us apart.
    prof = rps_profile(tmp_path)
    srcs = [f"10.0.1.{k}" for k in range(2, 32)]
    rows = [{"ts_ns": 200_000 * k, "src": s} for k, s in enumerate(srcs)]
    r = run(rows, "host.cpus=4", "nic.combined=1", 'sysfs.rps_cpus=["1-3"]',
            'app[0].match="udp dport 9000"', "app[0].cpu=0", "app[0].rcvbuf=100000000",
            'host.addresses=["10.0.0.1"]', profile=prof)  # fmt: skip
    expect = [0, 0, 0, 0]
    for s in srcs:
        h = toeplitz(MS_KEY, tuple_bytes(s, "10.0.0.1"))
        expect[[1, 2, 3][(h * 3) >> 32]] += 1
    assert [s["processed"] for s in r.counters["softnet_stat"]] == expect
    assert len([e for e in expect if e]) == 3


def test_broadcast_without_a_socket_is_ignored_multi() -> None:
    rows = [{"ts_ns": 0, "dst": "255.255.255.255", "dst_mac": bytes.fromhex("ffffffffffff"),
             "dport": 7777},  # DHCP-, discovery-style broadcast nobody here listens to
            {"ts_ns": 10_000, "dst": "255.255.255.255",
             "dst_mac": bytes.fromhex("ffffffffffff")}]  # fmt: skip
    r = run(rows, "host.cpus=2", "nic.combined=1", 'app[0].match="udp dport 9000"',
            "app[0].cpu=1", 'host.addresses=["10.0.0.1"]')  # fmt: skip
    df = pk(r).sort("frame")
    assert df["outcome"].to_list() == ["dropped", "delivered"]  # port 9000 has a socket
    assert df["drop_reason"].to_list()[0] == "NOT_SPECIFIED"
    udp = r.counters["snmp"]["Udp"]
    assert udp["NoPorts"] == 0 and udp.get("IgnoredMulti") == 1


@pytest.mark.parametrize("mask", [
    # the kernel's printed mask ("%*pb" pads to the CPU count: "00000002" on a 32-CPU host) and
    # an explicit 0x mask; a bare "2" is the config's documented cpulist form (CPU 2)
    "00000002", "0x2",
    "1-1",  # the same CPU as a range, which both readings agree on (the control)
])  # fmt: skip
def test_replay_run_cli_rps_backlog_drops(tmp_path: Path, mask: str) -> None:
    # End to end: a pcap written by hand, a TOML config as a user writes it, `replay run`, the
    # counters read back from run.json. The config pastes rps_cpus as `cat rps_cpus` shows CPU
    # 1 on a wider host ("00000002"). netdev_max_backlog 10, 40
    # frames in one poll (1 ms hard IRQ): 11 enqueued, 29 CPU_BACKLOG drops counted in CPU 1's
    # softnet "dropped" (test_netdev_max_backlog_drops_on_the_target).
    import json
    import os
    import subprocess
    import sys

    from tests.capbuild import pcap, udp4

    frame = udp4("10.0.0.2", "10.0.0.1", 4000, 9000, b"x" * 18)
    cap = tmp_path / "burst.pcap"
    cap.write_bytes(pcap([(0, 0, frame)] * 40))
    prof = rps_profile(tmp_path, fixed__hardirq=1_000_000)
    (tmp_path / "cfg.toml").write_text(
        '[host]\ncpus = 4\nkernel = "6.12"\n[nic]\ncombined = 1\n'
        f'[sysctl]\n"net.core.netdev_max_backlog" = 10\n[sysfs]\nrps_cpus = ["{mask}"]\n'
        f'[costs]\nprofile = "{prof}"\n'
        '[[app]]\nmatch = "udp dport 9000"\ncpu = 3\nrcvbuf = 100000000\n'
    )
    out = tmp_path / "run"
    repo = Path(__file__).resolve().parents[1]
    p = subprocess.run([sys.executable, "-m", "replay", "run", str(cap), "-o", str(out),
                        "--local", "10.0.0.1", "-c", str(tmp_path / "cfg.toml")],
                       env={**os.environ, "PYTHONPATH": str(repo)}, capture_output=True,
                       text=True, check=False)  # fmt: skip
    assert p.returncode == 0, p.stderr
    c = json.loads((out / "run.json").read_text())["counters"]
    assert [s["dropped"] for s in c["softnet_stat"]] == [0, 29, 0, 0]
    assert [s["processed"] for s in c["softnet_stat"]] == [0, 11, 0, 0]
    assert c["snmp"]["Udp"]["InDatagrams"] == 11
