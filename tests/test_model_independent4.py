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
