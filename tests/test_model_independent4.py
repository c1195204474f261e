"""Independent review scenarios, round 4 → expected counters worked out by hand from the kernel.

A fourth red-team pass over the receive-path model (issue 4), on what rounds 1-3
(tests/test_model_independent.py, test_model_independent2.py, test_model_independent3.py) do not
cover: the IPv4 GRO rules per kernel version (the IP ID decided at the second segment, an ID that
wraps, a DF or TOS change, and 6.18's fixed IDs without DF), the 64 KiB limit at its exact
boundary with and without TCP options, GRO bucket eviction by age of insertion (not by last
use), the MAX_SOFTIRQ_RESTART count at its boundary (HZ 100 and 1000, before and after 6.5),
napi_defer_hard_irqs counted down on an idle queue, gro_flush_timeout flushing only the older
jiffy's packets and re-arming its hrtimer, and queueing (D/D/1 in overload, M/D/1 with a set-up
time at a third load).

Every expected number was derived from the kernel source (cited beside it: file and function,
6.19 unless a version is named) and the profile's round numbers (tests/data/round-costs.toml,
entries replaced per scenario) before the model was run.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from replay.model.simulate import SimResult
from tests.test_model_independent import (
    TOP,
    _ports_in_bucket0,
    pk,
    profile_with,
    run,
    skb_sizes,
)
from tests.test_model_independent2 import l4_end

TCPAPP = ['app[0].match="tcp dport 5000"', "app[0].cpu=1", "app[0].rcvbuf=100000000",
          "app[0].work-ns=1000"]  # fmt: skip
UDPAPP = ['app[0].match="udp dport 9000"', "app[0].cpu=1", "app[0].rcvbuf=1000000000"]


def slow_irq(tmp_path: Path) -> str:
    """round-costs with a 1 ms hard IRQ: a burst lands in the ring during it and one poll (of at
    most 64, the weight) takes it, so GRO sees the segments back to back."""
    return profile_with(tmp_path, "irq1ms4", {"fixed.hardirq": 1_000_000})


def segs(n: int, *, payload: int = 1448, tcp_hlen: int = 20, ip_id: Any = None,
         df: Any = None, tos: Any = None) -> list[dict[str, Any]]:  # fmt: skip
    """n contiguous TCP segments 10.0.0.2:443 -> 10.0.0.1:5000, all at t=0, PSH only on the
    last; ip_id/df/tos: functions of the segment index (default: ID 100 + k, DF set, TOS 0)."""
    rows = []
    for k in range(n):
        rows.append({
            "ts_ns": 0, "proto": 6, "sport": 443, "dport": 5000,
            "wire_len": 14 + 20 + tcp_hlen + payload, "cap_len": 14 + 20 + tcp_hlen + payload,
            "payload_len": payload, "tcp_seq": 1000 + payload * k, "tcp_ack": 77,
            "tcp_flags": 0x10 | (0x08 if k == n - 1 else 0), "tcp_hlen": tcp_hlen,
            "tcp_opt_hash": 0, "ip_id": (100 + k) if ip_id is None else ip_id(k),
            "ip_df": True if df is None else df(k), "ip_tos": 0 if tos is None else tos(k),
        })  # fmt: skip
    return rows


# ---------------------------------------------------------------------------------------------
# 1. The IPv4 header's part in a TCP merge: inet_gro_flush (include/net/gro.h), called from
#    tcp_gro_receive through gro_receive_network_flush for the held skb p of the same ports.
#      if ((iph->ttl ^ iph2->ttl) | (iph->tos ^ iph2->tos) | ((id ^ id2) & IP_DF)) flush;
#      ipid_offset = (u16)(id - id2)    (id2: p's first segment's ID)
#      if (count == 1 && [df &&] !ipid_offset) ip_fixedid = 1   (decided at the 2nd segment)
#      return ipid_offset ^ (count * !ip_fixedid)
#    The `df &&` went away in f095a358faf2 "net: gro: remove unnecessary df checks" (Richard
#    Gobert, applied to net-next on 25 Sep 2025 with the series "net: gso: restore outer ip ids
#    correctly": in 6.18): since then a constant ID merges with or without DF.
#    A segment refused for any of these: mss = 1 at out_check_final, flush = len < 1 = 0 and no
#    PSH/URG/RST/SYN/FIN -> the held skb p is completed (the new one is not same_flow) and the
#    new segment is held as a new flow (dev_gro_receive). All segments wait in the ring during
#    the 1 ms IRQ and one poll (<= 64) takes them; its napi_complete_done flushes the rest.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("kernel", "sizes"), [
    # up to 6.17: DF clear -> never "fixed": the 2nd segment's offset 0 ^ count 1 -> flush, and
    # so on at every segment: 10 skbs of 1
    ("5.15", [1] * 10), ("6.17", [1] * 10),
    # 6.18+: count == 1 && offset 0 -> fixed without DF: all 10 merge
    ("6.18", [10]), ("6.19", [10]),
])  # fmt: skip
def test_fixed_ip_id_without_df_merges_from_6_18(tmp_path: Path, kernel: str,
                                                 sizes: list[int]) -> None:  # fmt: skip
    rows = segs(10, ip_id=lambda k: 5, df=lambda k: False)
    r = run(rows, "host.cpus=2", "nic.combined=1", f'host.kernel="{kernel}"', *TCPAPP,
            profile=slow_irq(tmp_path))  # fmt: skip
    assert skb_sizes(r) == sizes
    c = r.counters
    assert c["softnet_stat"][0]["processed"] == len(sizes)  # __netif_receive_skb_core per skb
    assert c["snmp"]["Tcp"]["InSegs"] == len(sizes)  # tcp_v4_rcv per skb
    assert (pk(r)["outcome"] == "delivered").all()


@pytest.mark.parametrize(("kernel", "df", "sizes"), [
    # IDs 5, 5, 6, 7, 8 with DF: the 2nd segment fixes the flow's ID (offset 0 at count 1); the
    # 3rd has offset 1 != 0 -> flush: [2]; segment 3 (ID 6) starts a flow whose 2nd segment
    # (ID 7) has offset 1 at count 1: not fixed, incrementing -> ID 8 at offset 2 = count 2
    # merges: [2, 3]
    ("6.12", True, [2, 3]),
    # DF clear before 6.18: the 2nd segment (offset 0 ^ count 1) flushes; segment 2 (ID 5)
    # starts a flow that increments 5, 6, 7, 8: [1, 4]
    ("6.12", False, [1, 4]),
    # DF clear from 6.18: as with DF: [2, 3]
    ("6.18", False, [2, 3]),
])  # fmt: skip
def test_ip_id_mode_is_decided_at_the_second_segment(tmp_path: Path, kernel: str, df: bool,
                                                     sizes: list[int]) -> None:  # fmt: skip
    ids = [5, 5, 6, 7, 8]
    rows = segs(5, ip_id=lambda k: ids[k], df=lambda k: df)
    r = run(rows, "host.cpus=2", "nic.combined=1", f'host.kernel="{kernel}"', *TCPAPP,
            profile=slow_irq(tmp_path))  # fmt: skip
    assert skb_sizes(r) == sizes


def test_incrementing_ip_id_wraps_at_65536(tmp_path: Path) -> None:
    # IDs 65533, 65534, 65535, 0, 1, ..., 6, DF clear: ipid_offset is a u16, (0 - 65533) mod
    # 65536 = 3 = count at the 4th segment: the wrap is invisible -> one skb of 10
    rows = segs(10, ip_id=lambda k: (65533 + k) & 0xFFFF, df=lambda k: False)
    r = run(rows, "host.cpus=2", "nic.combined=1", *TCPAPP, profile=slow_irq(tmp_path))
    assert skb_sizes(r) == [10]


@pytest.mark.parametrize(("name", "kw", "sizes"), [
    # DF set on segments 1-5, clear on 6-10 (IDs incrementing): (id ^ id2) & IP_DF at
    # segment 6 -> flush; segments 6-10 merge among themselves: [5, 5]
    ("df-flip", {"df": lambda k: k < 5}, [5, 5]),
    # ECT(0) (TOS 0x02) on all but segment 6, which a router marked CE (0x03): iph->tos ^
    # iph2->tos at segment 6 -> flush, segment 6 held; segment 7 differs from it again -> it
    # leaves alone: [5, 1, 4]
    ("ecn-ce", {"tos": lambda k: 3 if k == 5 else 2}, [5, 1, 4]),
])  # fmt: skip
def test_ip_header_change_completes_the_skb(tmp_path: Path, name: str, kw: dict[str, Any],
                                            sizes: list[int]) -> None:  # fmt: skip
    r = run(segs(10, **kw), "host.cpus=2", "nic.combined=1", *TCPAPP, profile=slow_irq(tmp_path))
    assert skb_sizes(r) == sizes
    assert r.counters["snmp"]["Tcp"]["InSegs"] == len(sizes)


@pytest.mark.parametrize(("kernel", "groups"), [("6.17", 8), ("6.18", 1)])
def test_udp_gro_fixed_id_without_df(tmp_path: Path, kernel: str, groups: int) -> None:
    # A UDP_GRO socket (udp_gro_receive_segment calls the same gro_receive_network_flush):
    # 8 equal datagrams, DF clear, IP ID 7 on all (a sender that does not increment it). Up to
    # 6.17 every one fails `ipid_offset ^ count` and goes alone (8 skbs); from 6.18 the 2nd
    # fixes the ID and the train holds all 8 (completed at the poll's end).
    rows = [{"ts_ns": 0, "payload_len": 1000, "wire_len": 1042, "cap_len": 1042, "ip_id": 7,
             "ip_df": False} for _ in range(8)]  # fmt: skip
    r = run(rows, "host.cpus=2", "nic.combined=1", f'host.kernel="{kernel}"', *UDPAPP,
            "app[0].udp-gro=true", profile=slow_irq(tmp_path))  # fmt: skip
    assert r.counters["softnet_stat"][0]["processed"] == groups
    assert r.counters["snmp"]["Udp"]["InDatagrams"] == groups  # one recvmsg per GRO skb


def test_ipv6_traffic_class_change_completes_the_skb(tmp_path: Path) -> None:
    # ipv6_gro_receive / ipv6_gro_flush (include/net/gro.h): first_word = *(__be32 *)iph ^
    # *(__be32 *)iph2; flush on (first_word & htonl(0x0FF00000)) -- the traffic class -- or a
    # hop-limit difference. Segment 6 marked CE (TC 0x03 among 0x02): [5, 1, 4], as for IPv4.
    rows = segs(10, tos=lambda k: 3 if k == 5 else 2)
    for row in rows:
        row.update(ip_version=6, ethertype=0x86DD, src="2001:db8::2", dst="2001:db8::1",
                   ip_hlen=40, wire_len=1522, cap_len=1522)  # fmt: skip
    r = run(rows, "host.cpus=2", "nic.combined=1", 'host.addresses=["2001:db8::1"]', *TCPAPP,
            profile=slow_irq(tmp_path))  # fmt: skip
    assert skb_sizes(r) == [5, 1, 4]
    assert r.counters["snmp6"]["Ip6InReceives"] == 3


# ---------------------------------------------------------------------------------------------
# 2. The 64 KiB limit at its boundary. skb_gro_receive (net/core/gro.c):
#      if (p->len + len >= netif_get_gro_max_size(p->dev, p)) return -E2BIG;
#    gro_max_size = GRO_LEGACY_MAX_SIZE = 65536 by default; p->len is the held skb's length from
#    the IP header (eth_type_trans pulled the MAC header): IP + TCP header + the payloads merged;
#    len = skb_gro_len(skb), the new segment's payload. Payload 1284 B:
#      TCP header 32 (timestamps): 52 + 1284 n; the 51st segment would make 52 + 51 x 1284 =
#        65536 >= 65536 -> refused: skbs of 50 (exactly at the limit: the `>=` matters)
#      TCP header 20: 40 + 51 x 1284 = 65524 < 65536 -> merged; 52nd: 66808 -> skbs of 51
#    The refused segment is held as a new flow (flush recomputed as len < mss = 1: 0).
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("tcp_hlen", "sizes"), [(32, [50, 10]), (20, [51, 9])])
def test_gro_max_size_boundary_counts_the_headers(tmp_path: Path, tcp_hlen: int,
                                                  sizes: list[int]) -> None:  # fmt: skip
    rows = segs(60, payload=1284, tcp_hlen=tcp_hlen)
    r = run(rows, "host.cpus=2", "nic.combined=1", *TCPAPP, profile=slow_irq(tmp_path))
    assert skb_sizes(r) == sizes
    assert r.counters["napi"][0]["polls"] == 1  # 60 < 64: one poll took them all
    assert r.counters["softnet_stat"][0]["processed"] == 2


# ---------------------------------------------------------------------------------------------
# 3. GRO bucket eviction goes by age of insertion. dev_gro_receive (net/core/gro.c): a new flow
#    is list_add()ed at the head of its bucket's list; a merge leaves the held skb where it is;
#    when the bucket holds MAX_GRO_SKBS (8), gro_flush_oldest completes list_last_entry: the
#    flow held longest, however recently it merged.
# ---------------------------------------------------------------------------------------------


def test_gro_evicts_the_first_held_flow_not_the_least_recently_used(tmp_path: Path) -> None:
    # Flows F1..F9 all in GRO bucket 0 (skb->hash & 7 = the Toeplitz hash & 7). Order in the
    # ring: F1..F8 first segments (held; bucket full), F1's 2nd segment (merges into F1), F9's
    # first, F1's 3rd.
    # - F9: bucket full -> gro_flush_oldest completes F1 (inserted first; 2 segments) -> skb 1.
    # - F1's 3rd segment: F1 is gone, new flow; bucket full again (F2..F9) -> F2 completed.
    # - napi_complete_done flushes F3..F9 and F1's 3rd: 8 skbs.
    # processed = 1 + 1 + 8 = 10 skbs (an LRU eviction would keep F1 and merge its 3rd: 9).
    ports = _ports_in_bucket0(9)

    def seg(p: int, k: int) -> dict[str, Any]:
        return {"ts_ns": 0, "proto": 6, "sport": p, "dport": 5000, "wire_len": 1502,
                "cap_len": 1502, "payload_len": 1448, "tcp_seq": 1000 + 1448 * k, "tcp_ack": 77,
                "tcp_flags": 0x10, "tcp_hlen": 20, "ip_id": 100 + k}  # fmt: skip

    rows = [seg(p, 0) for p in ports[:8]] + [seg(ports[0], 1), seg(ports[8], 0), seg(ports[0], 2)]
    r = run(rows, "host.cpus=2", "nic.combined=1", *TCPAPP, profile=slow_irq(tmp_path))
    assert r.counters["napi"][0]["polls"] == 1
    assert r.counters["softnet_stat"][0]["processed"] == 10
    df = pk(r).sort("frame")
    skb = df["skb"].to_list()
    # frames 1 and 9 (F1's first two segments) share an skb; frame 11 (F1's third) has its own
    assert skb[0] == skb[8] and skb[10] != skb[0]
    assert len(set(skb)) == 10


# ---------------------------------------------------------------------------------------------
# 4. handle_softirqs' restart count (kernel/softirq.c): max_restart = MAX_SOFTIRQ_RESTART = 10;
#    after the vectors ran, `if (pending) { if (time_before(jiffies, end) && !need_resched() &&
#    --max_restart) goto restart; wakeup_softirqd(); }`. The pre-decrement allows 9 restarts:
#    10 NET_RX runs inline, the 11th goes to ksoftirqd. One NAPI at full weight is polled once
#    per net_rx_action (it goes on repoll; an empty local list with a non-empty repoll breaks,
#    re-raising NET_RX: dev.c net_rx_action), so run k polls frames 64(k-1)+1 .. 64k.
#    All frames land in the ring during the 1 ms IRQ (ring 1024). Per frame the softirq spends
#    ~0.6 µs (driver 100 + GRO 50 + netif 100 + IP 100 + early demux 50 + local 100 + UDP 100):
#    ten runs take ~0.4 ms, inside MAX_SOFTIRQ_TIME at HZ 100 (1 jiffy = 10 ms) and at HZ 1000
#    (2 jiffies; the runs start at ~1.0 ms in jiffy 1, end = 3) and inside netdev_budget_usecs:
#    the count is what stops them. The reader runs on CPU 1, so no wake-up sets need_resched
#    on CPU 0.
#    n = 584 = 9 x 64 + 8: the 10th run's poll takes 8 < 64, completes: nothing pending.
#    n = 640 = 10 x 64: the 10th poll is full (the driver returns its budget: ixgbe_poll's
#      clean_complete false), NET_RX pending, --max_restart = 0 -> ksoftirqd, whose run polls an
#      empty ring (work 0, napi_complete_done): 11 runs, 0 frames in ksoftirqd.
#    n = 648: as 640, and ksoftirqd's poll takes the last 8.
#    5.15 (ksoftirqd "does its job" until 6.5): nothing raises NET_RX at an IRQ exit meanwhile
#    (the IRQ stays masked), so the same counts.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "hz", "kernel", "net_rx", "polls", "wakeups", "in_ks"), [
    (584, 100, "6.12", 10, 10, 0, 0),
    (640, 100, "6.12", 11, 11, 1, 0),
    (648, 100, "6.12", 11, 11, 1, 8),
    (648, 1000, "6.12", 11, 11, 1, 8),
    (648, 100, "5.15", 11, 11, 1, 8),
])  # fmt: skip
def test_max_softirq_restart_allows_ten_runs(tmp_path: Path, n: int, hz: int, kernel: str,
                                             net_rx: int, polls: int, wakeups: int,
                                             in_ks: int) -> None:  # fmt: skip
    rows = [{"ts_ns": 0} for _ in range(n)]
    r = run(rows, "host.cpus=2", "nic.combined=1", "nic.rx=1024", f"host.hz={hz}",
            "host.tick-phase-ns=0", f"net.core.netdev_budget_usecs={2 * 1_000_000 // hz}",
            f'host.kernel="{kernel}"', *UDPAPP, profile=slow_irq(tmp_path), opts=TOP)  # fmt: skip
    c = r.counters
    assert c["napi"][0]["irqs"] == 1
    assert c["napi"][0]["polls"] == polls
    assert c["napi"][0]["budget_exhausted"] == n // 64
    assert c["softirqs"]["NET_RX"] == [net_rx, 0]
    assert c["softnet_stat"][0]["time_squeeze"] == 0  # one poll per run: 64 < 300, in time
    assert c["model"]["ksoftirqd_wakeups"][0] == wakeups
    cpu = pl.from_arrow(r.cpu)
    assert isinstance(cpu, pl.DataFrame)
    drv = cpu.filter(pl.col("symbol").cast(pl.Utf8) == "ixgbe_clean_rx_irq")
    ks = drv.filter(pl.col("context").cast(pl.Utf8) == "ksoftirqd")["frames"].sum()
    assert ks == in_ks
    assert drv["frames"].sum() == n
    assert (pk(r)["outcome"] == "delivered").all()


# ---------------------------------------------------------------------------------------------
# 5. napi_complete_done (net/core/dev.c) with napi_defer_hard_irqs and gro_flush_timeout:
#      if (work_done) { if (n->gro.bitmask) timeout = gro_flush_timeout;
#                       n->defer_hard_irqs_count = napi_defer_hard_irqs; }
#      if (n->defer_hard_irqs_count > 0) { n->defer_hard_irqs_count--;
#                       timeout = gro_flush_timeout; if (timeout) ret = false; }
#      gro_flush_normal(&n->gro, !!timeout);   ... if (timeout) hrtimer_start(timeout)
#    ret false: the driver leaves the IRQ masked; napi_watchdog schedules the NAPI when the
#    hrtimer fires. An idle queue after a poll with work: the count goes D -> D-1 at that poll,
#    then each empty timer poll takes one more, and the poll that finds it 0 re-arms the IRQ:
#    D empty polls after the last poll with work, D timer firings, one re-arm.
# ---------------------------------------------------------------------------------------------


def _poll_starts(r: SimResult) -> list[int]:
    ev = pl.from_arrow(r.events)
    assert isinstance(ev, pl.DataFrame)
    return ev.filter(pl.col("kind").cast(pl.Utf8) == "poll").sort("t")["t"].to_list()


@pytest.mark.parametrize("defer", [1, 3])
def test_defer_hard_irqs_counts_down_on_an_idle_queue(defer: int) -> None:
    # One UDP datagram; gro_flush_timeout 50 µs; no NIC moderation. Polls: 1 with work + defer
    # empty ones 50 µs apart (plus the timer IRQ's and softirq's own cost: < 3 µs here).
    r = run([{"ts_ns": 0}], "host.cpus=2", "nic.combined=1", "nic.rx-usecs=0",
            f"sysfs.napi_defer_hard_irqs={defer}", "sysfs.gro_flush_timeout=50000", *UDPAPP)  # fmt: skip
    n = r.counters["napi"][0]
    assert (n["irqs"], n["polls"], n["timers"], n["arms"]) == (1, 1 + defer, defer, 1)
    # napi_watchdog is a hard hrtimer (HRTIMER_MODE_REL_PINNED, not _SOFT): it fires in the
    # local timer interrupt, not on the NIC's line, and its napi_schedule raises NET_RX run at
    # that interrupt's exit: one NET_RX per poll, one NIC interrupt
    assert r.counters["interrupts"]["eth0-TxRx-0"] == [1, 0]
    assert r.counters["softirqs"]["NET_RX"] == [1 + defer, 0]
    starts = _poll_starts(r)
    assert len(starts) == 1 + defer
    for a, b in itertools.pairwise(starts):
        assert 50_000 <= b - a < 53_000


def test_work_during_deferral_reloads_the_count() -> None:
    # defer 3, timeout 50 µs. Datagram 1 at 0: poll 1 (work; count 3 -> 2), the timer polls at
    # ~+52 µs (empty; 2 -> 1). Datagram 2 at 75 µs: the IRQ is masked (no interrupt); the
    # timer poll at ~+104 µs finds it (work: count reloaded 3 -> 2), then 3 empty polls (2 -> 1,
    # 1 -> 0, 0: re-arm). 6 polls, 5 timers, 1 IRQ, 1 re-arm; datagram 2 waits for the timer.
    r = run([{"ts_ns": 0}, {"ts_ns": 75_000}], "host.cpus=2", "nic.combined=1", "nic.rx-usecs=0",
            "sysfs.napi_defer_hard_irqs=3", "sysfs.gro_flush_timeout=50000", *UDPAPP)  # fmt: skip
    n = r.counters["napi"][0]
    assert (n["irqs"], n["polls"], n["timers"], n["arms"], n["packets"]) == (1, 6, 5, 1, 2)
    df = pk(r).sort("frame")
    t_poll = df["t_poll"].to_list()
    assert 100_000 <= t_poll[1] - t_poll[0] < 106_000
    assert df["t_irq"].to_list()[1] is None or df["t_irq"][1] == df["t_irq"][0]


def _seg(t: int, sport: int, *, psh: bool = False) -> dict[str, Any]:
    return {"ts_ns": t, "proto": 6, "sport": sport, "dport": 5000, "wire_len": 1502,
            "cap_len": 1502, "payload_len": 1448, "tcp_seq": 1000, "tcp_ack": 77,
            "tcp_flags": 0x10 | (0x08 if psh else 0), "tcp_hlen": 20, "ip_id": 100}  # fmt: skip


@pytest.mark.parametrize("timeout", [0, 100_000])
def test_gro_flush_timeout_holds_a_lone_segment(timeout: int) -> None:
    # One TCP segment without PSH (held by GRO). timeout 0: napi_complete_done flushes it at the
    # end of the poll. timeout 100 µs (defer 0): work and a held packet -> timeout; the count
    # is 0 -> ret true (the IRQ is re-armed) but gro_flush_normal(flush_old = true) keeps a
    # packet of this jiffy and the hrtimer is armed: napi_watchdog's poll (work 0 -> timeout 0)
    # flushes it 100 µs later. 2 polls, 1 timer, 2 re-arms.
    r0 = run([_seg(0, 443)], "host.cpus=2", "nic.combined=1", "nic.rx-usecs=0", "host.hz=1000",
             "host.tick-phase-ns=0", *TCPAPP)  # fmt: skip
    r = run([_seg(0, 443)], "host.cpus=2", "nic.combined=1", "nic.rx-usecs=0", "host.hz=1000",
            "host.tick-phase-ns=0", f"sysfs.gro_flush_timeout={timeout}", *TCPAPP)  # fmt: skip
    n = r.counters["napi"][0]
    if timeout == 0:
        assert (n["polls"], n["timers"], n["arms"]) == (1, 0, 1)
    else:
        assert (n["polls"], n["timers"], n["arms"]) == (2, 1, 2)
    d = int(l4_end(pk(r))[0] - l4_end(pk(r0))[0])
    assert timeout <= d < timeout + 3_000


def test_gro_flush_timeout_flushes_only_older_jiffies_and_rearms_the_timer() -> None:
    # HZ 1000, tick phase 0 (replay time 0, the first frame's arrival, starts jiffy 0),
    # gro_flush_timeout 2 ms, defer 0. Segment A (flow 443, no PSH) at 0: poll 1 holds it (age
    # jiffy 0) and arms the hrtimer for ~2.0 ms; the IRQ is re-armed. Segment B (flow 444) at
    # 1.4 ms (jiffy 1): IRQ, poll 2 holds B; work + held -> timeout -> gro_flush_normal(
    # flush_old): A (jiffy 0 != 1) leaves now, B (jiffy 1) stays; hrtimer_start re-programs the
    # pending timer to ~3.4 ms. At 3.4 ms napi_watchdog -> poll 3 (work 0, timeout 0) flushes B.
    # 2 IRQs, 3 polls, 1 timer firing, 3 re-arms.
    r = run([_seg(0, 443), _seg(1_400_000, 444)], "host.cpus=2", "nic.combined=1",
            "nic.rx-usecs=0", "host.hz=1000", "host.tick-phase-ns=0",
            "sysfs.gro_flush_timeout=2000000", *TCPAPP)  # fmt: skip
    n = r.counters["napi"][0]
    assert (n["irqs"], n["polls"], n["timers"], n["arms"]) == (2, 3, 1, 3)
    ends = l4_end(pk(r).sort("frame")).to_list()
    assert 1_400_000 < ends[0] < 1_410_000
    assert 3_400_000 < ends[1] < 3_410_000


# ---------------------------------------------------------------------------------------------
# 6. ICMP from a capture, through the reader: the type decides the handler and the counters.
#    icmp_rcv (net/ipv4/icmp.c): ICMP_MIB_INMSGS, checksum, ICMPMSGIN_INC_STATS(type), then
#    icmp_pointers[type].handler: ICMP_ECHO -> icmp_echo -> icmp_reply (consumed; OutEchoReps);
#    ICMP_ECHOREPLY -> ping_rcv: ping_lookup finds no ping socket -> SKB_DROP_REASON_NO_SOCKET,
#    kfree_skb_reason (5.19+, b384c95a861e; before it a bool handler and plain kfree_skb:
#    NOT_SPECIFIED); ICMP_DEST_UNREACH -> icmp_unreach (consumed). /proc/net/snmp's Icmp
#    In<name> columns are the per-type counters of icmpmibmap (net/ipv4/proc.c icmp_put), the
#    IcmpMsg line prints InType<n> for each type seen. icmpv6_rcv (net/ipv6/icmp.c) likewise:
#    ICMPV6_ECHO_REQUEST -> icmpv6_echo_reply, ICMPV6_ECHO_REPLY -> ping_rcv (NO_SOCKET),
#    NDISC_NEIGHBOUR_SOLICITATION -> ndisc_rcv; snmp6 prints every icmp6type2name
#    Icmp6In<name> and Icmp6InType<n> where nonzero. ip_protocol_deliver_rcu counts InDelivers
#    whatever the handler returns.
# ---------------------------------------------------------------------------------------------


def _icmp_pcap(path: Path) -> None:
    import socket

    import dpkt

    from tests.capbuild import pcap

    def eth(ip: Any, v6: bool) -> bytes:
        return bytes(dpkt.ethernet.Ethernet(dst=b"\x02\0\0\0\0\x01", src=b"\x02\0\0\0\0\x02",
                                             type=0x86DD if v6 else 0x0800, data=ip))  # fmt: skip

    def v4(icmp: Any) -> bytes:
        ip = dpkt.ip.IP(src=socket.inet_aton("10.0.0.2"), dst=socket.inet_aton("10.0.0.1"), p=1,
                        ttl=64, data=icmp)  # fmt: skip
        ip.len = 20 + len(bytes(icmp))
        return eth(ip, False)

    def v6(icmp: Any, hlim: int = 64) -> bytes:
        ip = dpkt.ip6.IP6(src=socket.inet_pton(socket.AF_INET6, "2001:db8::2"),
                          dst=socket.inet_pton(socket.AF_INET6, "2001:db8::1"), nxt=58, hlim=hlim,
                          data=icmp)  # fmt: skip
        ip.plen = len(bytes(icmp))
        return eth(ip, True)

    echo = dpkt.icmp.ICMP.Echo(id=7, seq=1, data=b"p" * 32)
    inner = bytes(dpkt.ip.IP(src=socket.inet_aton("10.0.0.1"), dst=socket.inet_aton("10.0.0.2"),
                             p=17, data=b"\0" * 8))[:28]  # fmt: skip
    frames = [
        v4(dpkt.icmp.ICMP(type=8, data=echo)),  # 1 echo request
        v4(dpkt.icmp.ICMP(type=0, data=echo)),  # 2 echo reply
        v4(dpkt.icmp.ICMP(type=3, code=3, data=dpkt.icmp.ICMP.Unreach(data=inner))),  # 3
        v6(dpkt.icmp6.ICMP6(type=128, data=dpkt.icmp6.ICMP6.Echo(id=7, seq=1, data=b"p" * 32))),
        v6(dpkt.icmp6.ICMP6(type=129, data=dpkt.icmp6.ICMP6.Echo(id=7, seq=1, data=b"p" * 32))),
        # 6: a neighbour solicitation for our address (hop limit 255, as ndisc_rcv wants)
        v6(dpkt.icmp6.ICMP6(type=135, data=b"\0" * 4
                            + socket.inet_pton(socket.AF_INET6, "2001:db8::1")), hlim=255),
    ]  # fmt: skip
    path.write_bytes(pcap([(0, 1000 * k, f) for k, f in enumerate(frames)]))


@pytest.mark.parametrize(("kernel", "reason"), [("6.12", "NO_SOCKET"), ("5.15", "NOT_SPECIFIED")])
def test_icmp_types_from_a_capture(tmp_path: Path, kernel: str, reason: str) -> None:
    from replay.capture import read_captures
    from replay.model.config import resolve_config
    from replay.model.costs import load_profile
    from replay.model.simulate import simulate
    from replay.runner import ReplayOptions
    from tests.test_model_independent import ROUND

    cap = tmp_path / "icmp.pcap"
    _icmp_pcap(cap)
    table = read_captures([cap], sha256=False).table
    # the reader keeps each ICMP header's type
    assert table["icmp_type"].to_pylist() == [8, 0, 3, 128, 129, 135]
    cfg = resolve_config(None, [f'costs.profile="{ROUND}"', "host.cpus=2", "nic.combined=1",
                                f'host.kernel="{kernel}"',
                                'host.addresses=["10.0.0.1", "2001:db8::1"]'])  # fmt: skip
    r = simulate(table, cfg, load_profile(ROUND), ReplayOptions())
    df = pk(r).sort("frame")
    assert df["outcome"].to_list() == ["consumed", "dropped", "consumed", "consumed", "dropped",
                                       "consumed"]  # fmt: skip
    assert df["drop_reason"].to_list()[1] == reason and df["drop_reason"].to_list()[4] == reason
    assert df["drop_stage"].to_list()[1] == "l4"
    s = r.counters["snmp"]
    icmp = s["Icmp"]
    assert (icmp["InMsgs"], icmp["InErrors"], icmp["InDestUnreachs"], icmp["InEchos"],
            icmp["InEchoReps"], icmp["InTimeExcds"]) == (3, 0, 1, 1, 1, 0)  # fmt: skip
    assert (icmp["OutMsgs"], icmp["OutEchoReps"]) == (1, 1)
    assert s["IcmpMsg"] == {"InType0": 1, "InType3": 1, "InType8": 1, "OutType0": 1}
    assert (s["Ip"]["InReceives"], s["Ip"]["InDelivers"]) == (3, 3)
    s6 = r.counters["snmp6"]
    assert (s6["Icmp6InMsgs"], s6["Icmp6InEchos"], s6["Icmp6InEchoReplies"],
            s6["Icmp6InNeighborSolicits"], s6["Icmp6InDestUnreachs"]) == (3, 1, 1, 1, 0)  # fmt: skip
    assert (s6["Icmp6InType128"], s6["Icmp6InType129"], s6["Icmp6InType135"]) == (1, 1, 1)
    assert "Icmp6InType1" not in s6  # Icmp6InType<n> only where nonzero
    assert (s6["Icmp6OutEchoReplies"], s6["Ip6InDelivers"]) == (1, 3)


# ---------------------------------------------------------------------------------------------
# 7. UDP receive memory released in batches (net/ipv4/udp.c). The reader dequeues from its
#    private reader_queue, splicing in all of sk_receive_queue when it is empty
#    (__skb_recv_udp); the dequeue's destructor calls udp_rmem_release(sk, truesize, 1):
#      forward_deficit += size; if (forward_deficit < forward_threshold (sk_rcvbuf >> 2) &&
#      !skb_queue_empty(&up->reader_queue)) return;   else: sk_rmem_alloc -= forward_deficit,
#      forward_deficit = 0, and sk_receive_queue is spliced onto reader_queue.
#    Enqueue (__udp_enqueue_schedule_skb): up to 6.17 drop when rmem > sk_rcvbuf before the add;
#    6.18+ when rmem + truesize > sk_rcvbuf (an empty queue excepted).
#    Here: ixgbe truesize T = 2304 (SKB_TRUESIZE(2048 - 320)), sk_rcvbuf R = 8T = 18432, so the
#    threshold R >> 2 = 2T: memory comes back two datagrams at a time while the reader_queue
#    holds more. Datagram 1 at t = 0 (read at once: the queue empties, rmem 0); then bursts of
#    20 at 0.1, 1.5, 2.5, 3.5, 4.5 ms; the reader works 1 ms per datagram, so its reads fall at
#    ~1, 2, 3, 4 ms, between the bursts.
#    6.12: A (0.1 ms) accepted while rmem <= 8T: rmem 0..8T -> 9 (frames 2-10), rmem 9T.
#      1 ms: splice 9, dequeue (8 left), deficit T < 2T -> nothing released, rmem 9T.
#      B (1.5 ms): 9T > 8T -> all 20 dropped.   2 ms: 7 left, deficit 2T -> rmem 7T.
#      C (2.5 ms): 7T, 8T accepted (frames 42, 43), rmem 9T.   3 ms: deficit T, rmem 9T.
#      D: all dropped.   4 ms: deficit 2T -> rmem 7T (C's 2 spliced in).   E: frames 82, 83.
#      RcvbufErrors = 11 + 20 + 18 + 20 + 18 = 87.
#    6.18: A accepted while rmem + T <= 8T: 8 (frames 2-9), rmem 8T; 1 ms: rmem 8T; B dropped;
#      2 ms: rmem 6T; C: 42, 43 (7T, 8T); 3 ms: 8T; D dropped; 4 ms: 6T; E: 82, 83.
#      RcvbufErrors = 12 + 20 + 18 + 20 + 18 = 88.
#    (Released per datagram instead, B would find 8T at 6.12 and take one.)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("kernel", "first_burst"), [("6.12", 9), ("6.18", 8)])
def test_udp_forward_deficit_releases_two_at_a_time(kernel: str, first_burst: int) -> None:
    rows = [{"ts_ns": 0}] + [{"ts_ns": t} for t in (100_000, 1_500_000, 2_500_000, 3_500_000,
                                                     4_500_000) for _ in range(20)]  # fmt: skip
    r = run(rows, "host.cpus=2", "nic.combined=1", "nic.rx-usecs=0", f'host.kernel="{kernel}"',
            'app[0].match="udp dport 9000"', "app[0].cpu=1", "app[0].work-ns=1000000",
            f"app[0].rcvbuf={8 * 2304}")  # fmt: skip
    df = pk(r).sort("frame")
    kept = df.filter(pl.col("outcome") == "delivered")["frame"].to_list()
    assert kept == [1, *range(2, 2 + first_burst), 42, 43, 82, 83]
    udp = r.counters["snmp"]["Udp"]
    assert udp["RcvbufErrors"] == udp["InErrors"] == 100 - first_burst - 4
    assert udp["InDatagrams"] == len(kept)
    assert set(df.filter(pl.col("outcome") == "dropped")["drop_reason"].to_list()) \
        == {"SOCKET_RCVBUFF"}


# ---------------------------------------------------------------------------------------------
# 8. Queueing by hand.
# ---------------------------------------------------------------------------------------------

# everything but the reader's own work costs nothing (no wake-up, switch or copy cost)
ZERO = {"fixed.syscall": 0, "fixed.consume": 0, "stage.copy": 0, "stage.app": 0,
        "fixed.wakeup": 0, "fixed.ctx_switch": 0, "latency.wakeup": 0, "latency.ipi": 0}  # fmt: skip


def test_overloaded_reader_is_dd1_with_linear_waits(tmp_path: Path) -> None:
    # D/D/1 with service D = 15 µs > interarrival T = 10 µs (rho = 1.5): datagram k (0-based)
    # reaches the socket at e_k = e_0 + k T (each alone: no moderation, the softirq path the
    # same for all and done long before the next); the reader, woken by datagram 0 at no cost,
    # never sleeps again and starts datagram k at e_0 + k D. So its time in the socket queue
    # is k (D - T) = 5 k µs and it is done at e_0 + (k + 1) D:
    #   t_done - l4_end = k (D - T) + D, exactly.
    prof = profile_with(tmp_path, "zero4", ZERO)
    rows = [{"ts_ns": 10_000 * k} for k in range(20)]
    r = run(rows, "host.cpus=2", "nic.combined=1", "nic.rx-usecs=0", *UDPAPP,
            "app[0].work-ns=15000", profile=prof)  # fmt: skip
    df = pk(r).sort("frame")
    e = l4_end(df)
    assert [int(x) for x in (e - e[0])] == [10_000 * k for k in range(20)]
    assert [int(x) for x in (df["t_done"] - e)] == [5_000 * k + 15_000 for k in range(20)]
    assert df["wait_copy"].to_list() == [5_000 * k for k in range(20)]


def test_md1_with_setup_at_a_third_load(tmp_path: Path) -> None:
    # M/D/1 whose server sleeps when idle and pays a set-up time U before the first service of
    # each busy period (Welch 1964; Takagi vol. 1 §2.3): mean time in queue
    #   Wq = lambda D^2 / (2 (1 - rho)) + (2 U + lambda U^2) / (2 (1 + lambda U)).
    # D = 20 µs of work, rho = 0.3 (lambda = 1/66.7 µs), U = the wake-up's cost chain: the IPI
    # to the reader's CPU (latency.ipi 1000) + the scheduler's wake-up latency (latency.wakeup
    # 1000) + the context switch (fixed.ctx_switch 1000) = 3 µs. Wq = 2857 + 3025 = 5882 ns
    # (the set-up part is 57 % of it at this load). 20 000 arrivals: the sample mean's standard
    # error is ~1.5 % of Wq; 5 % tolerance.
    zero = {k: v for k, v in ZERO.items()
            if k not in ("fixed.ctx_switch", "latency.wakeup", "latency.ipi")}  # fmt: skip
    prof = profile_with(tmp_path, "setup4", zero)
    d, rho, u = 20_000, 0.3, 3_000
    lam = rho / d
    gaps = np.random.default_rng(4).exponential(1 / lam, 20_000)
    rows = [{"ts_ns": int(t)} for t in np.cumsum(gaps)]
    r = run(rows, "host.cpus=2", "nic.combined=1", "nic.rx-usecs=0", *UDPAPP,
            f"app[0].work-ns={d}", profile=prof)  # fmt: skip
    df = pk(r)
    # time from the enqueue to the start of the work = queue wait (incl. the set-up)
    wq = float((df["t_done"] - l4_end(df) - d).mean())
    expect = lam * d * d / (2 * (1 - rho)) + (2 * u + lam * u * u) / (2 * (1 + lam * u))
    assert abs(wq - expect) / expect < 0.05, (wq, expect)
