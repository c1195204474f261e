"""Receive-buffer autotuning → each TCP connection's sk_rcvbuf, by kernel generation.

tcp_init_sock starts a TCP socket at net.ipv4.tcp_rmem[1] (131072 from 4.20, 87380 before);
without SO_RCVBUF (SOCK_RCVBUF_LOCK) the kernel resizes it: tcp_fixup_rcvbuf at establishment
(up to 4.19), tcp_rcv_space_adjust after each skb tcp_recvmsg copies (net/ipv4/tcp_input.c,
one rule per generation: engine.py "Receive-buffer autotuning", layout.py DRS_*) on the receiver
RTT tcp_rcv_rtt_measure takes (the time rcv_nxt needs to cross one advertised window), and
tcp_clamp_window when tcp_prune_queue runs. Every expected size below is the kernel's integer
arithmetic worked by hand in the comments; the model's `rcvbuf` events carry each change.

The common scenario: 1448-byte segments without TCP options (advmss 1460), one every 10 us, one
RX queue without interrupt moderation (an interrupt per segment), GRO off, the reader alone on
CPU 1, ACKs left out (host.tcp-acks = false: every segment is taken as ACKed, so rcv_wnd follows
tcp_select_window after each one: half the free buffer, never shrinking the right edge). Each
segment is then handled alone, a fixed time after its arrival (round-costs.toml).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from replay.errors import ConfigError
from replay.model.config import dump_toml, resolve_config
from replay.model.simulate import SimResult
from tests.test_model_independent import pk, run, stream
from tests.test_model_independent2 import l4_end

READER = ['app[0].match="tcp dport 5000"', "app[0].cpu=1", "host.cpus=2", "nic.combined=1",
          "nic.gro=false", "nic.rx-usecs=0", "host.tcp-acks=false"]  # fmt: skip
GROW = "tcp_rcv_space_adjust"
FIXUP = "tcp_fixup_rcvbuf"
CLAMP = "tcp_clamp_window"


def paced(gaps_ns: list[int], payload: int = 1448) -> list[dict[str, Any]]:
    """One segment per gap (the first at 0), seq 1000, 1000 + payload, ..."""
    rows = stream(len(gaps_ns))
    t = 0
    for k, (row, gap) in enumerate(zip(rows, gaps_ns, strict=True)):
        t += gap if k else 0
        row["ts_ns"] = t
        row["tcp_flags"] = 0x10
        if payload != 1448:
            row["payload_len"] = payload
            row["wire_len"] = row["cap_len"] = 14 + 20 + 20 + payload
            row["tcp_seq"] = 1000 + payload * k
    return rows


def go(rows: list[dict[str, Any]], kernel: str, *sets: str) -> tuple[SimResult, pl.DataFrame]:
    r = run(rows, *READER, f'host.kernel="{kernel}"', *sets)
    return r, pk(r).sort("frame")


def rcvbuf_events(r: SimResult) -> list[tuple[int, str, int]]:
    ev = pl.from_arrow(r.events)
    assert isinstance(ev, pl.DataFrame)
    ev = ev.filter(pl.col("kind") == "rcvbuf").sort("t")
    return [(int(t), str(d), int(v)) for t, d, v in ev.select("t", "detail", "value").rows()]


def copy_end(df: pl.DataFrame) -> list[int]:
    """When tcp_recvmsg finished copying each segment (tcp_rcv_space_adjust runs there)."""
    return (l4_end(df) + df["wait_copy"] + df["cpu_copy"]).cast(pl.Int64).to_list()


def tcp_ext(r: SimResult, name: str) -> int:
    return int(r.counters["snmp"]["TcpExt"][name])


# ---------------------------------------------------------------------------------------------
# A fast reader: one growth, by kernel.
#
# Segment k (seq 1000 + 1448 k) is processed at 10 k us + c (the same c for every k) and copied
# before k + 1 arrives. After segment 0 the window is (131072 - 2304) >> 1 = 64384 (the segment's
# truesize still queued), so the first measurement (at segment 1, rcv_nxt 3896) waits for rcv_nxt
# >= 3896 + 64384 = 68280: 1000 + 1448 (k + 1) >= 68280 first at k = 46, 450 us later. The
# receiver RTT is 450 us (later samples are longer: the minimum stays). rcvq_space was set when
# segment 0 was processed: seq 1000, space = min(tcp_full_space, 65535, 10 x advmss) = 14600
# (4.20+). At segment 46's copy (460 us + the copy's offset, more than 450 us after segment 0)
# copied = 47 x 1448 = 68056 > 14600: the buffer grows; no later window of 450 us copies more
# than 46 segments, so that is the only growth.
#   6.12 (4.16-6.15 proportional grow, tcp_space_from_win since 6.6): rcvwin = 2 x 68056 +
#     16 x 1460 = 159472; grow = 159472 x (68056 - 14600) / 14600 = 583885; rcvbuf =
#     2 x (159472 + 2 x 583885) = 2654484.
#   6.16 (tcp_rcvbuf_grow, 65c5287892e9): rcvwin = 2 x (68056 - inq 0) = 136112; 272224.
#   6.18 (aa251c84636c): grow = 136112 x 53456 / 14600 = 498356, rcvwin += 2 x grow: 2265648.
#   6.19 (tcp_rcvbuf_low_rtt 1000 us > rtt 450 us): grow = 136112 x 450 / 1000 = 61250:
#     2 x 197362 = 394724.
# Up to 4.19 tcp_init_buffer_space first runs tcp_fixup_rcvbuf: 2 x SKB_TRUESIZE(1460 + 320) x
# 20 = 94240, x 4 (tcp_moderate_rcvbuf) = 376960 > 87380. The window after segment 0 is then
# (376960 - 2304) >> 1 = 187328: rcv_nxt must reach 3896 + 187328 = 191224, first at k = 131
# (1300 us), where copied = 132 x 1448 = 191136 and space = the SYN's rcv_wnd = min(43690,
# 10 x 1460) = 14600.
#   4.19 (4.16+): rcvwin = 2 x 191136 + 23360 = 405632 (+ 2 x 4904... grow): far past
#     tcp_rmem[2]: 6291456.
#   4.14 (the 25 % / 50 % steps): copied >= 1.5 x space: rcvwin = 2 x 405632 = 811264; rcvmem =
#     SKB_TRUESIZE(1460 + 320) = 2356 raised by 128 until half of it holds 1460: 2996; rcvbuf =
#     811264 / 1460 = 555 x 2996 = 1662780.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("kernel", "expect"), [
    ("6.12", [(46, GROW, 2654484)]),
    ("6.16", [(46, GROW, 272224)]),
    ("6.18", [(46, GROW, 2265648)]),
    ("6.19", [(46, GROW, 394724)]),
    ("4.19", [(0, FIXUP, 376960), (131, GROW, 6291456)]),
    ("4.14", [(0, FIXUP, 376960), (131, GROW, 1662780)]),
])  # fmt: skip
def test_fast_reader_grows_once(kernel: str, expect: list[tuple[int, str, int]]) -> None:
    r, df = go(paced([10_000] * 150), kernel)
    assert df["outcome"].unique().to_list() == ["delivered"]
    ev = rcvbuf_events(r)
    assert [(d, v) for _, d, v in ev] == [(d, v) for _, d, v in expect]
    ends, l4 = copy_end(df), l4_end(df).to_list()
    for (t, d, _), (k, _, _) in zip(ev, expect, strict=True):
        if d == GROW:
            assert t == ends[k]  # tcp_rcv_space_adjust after that segment's copy
        else:
            assert 0 < t <= l4[k]  # tcp_init_buffer_space as the first segment is processed


def test_fast_reader_on_4_9_keeps_its_rtt_in_jiffies() -> None:
    # Before 4.13 rcv_rtt_est and rcvq_space count jiffies (tcp_time_stamp; HZ 250: 4 ms): the
    # 1300 us sample is 0 jiffies, counted 1 (tcp_rcv_rtt_update), so tcp_rcv_space_adjust
    # measures once a jiffy has passed since segment 0: at the first copy in the next jiffy
    # (tick phase 0: at 4 ms): segment 400's (4000 us + c; 399's ends at 3990 us + c), with
    # copied = 401 x 1448 = 580648. 4.9 steps: 580648 >= 1.5 x 14600: rcvwin = 2 x (2 x 580648 +
    # 23360) = 2369312; 2369312 / 1460 = 1622 x 2996 = 4859512.
    r, df = go(paced([10_000] * 450), "4.9")
    ev = rcvbuf_events(r)
    assert [(d, v) for _, d, v in ev] == [(FIXUP, 376960), (GROW, 4859512)]
    assert ev[1][0] == copy_end(df)[400]


# ---------------------------------------------------------------------------------------------
# A sender that speeds up: one segment every 10 us for segments 0-99, then every 8 us from 1 ms.
# The RTT stays 450 us (later samples: 770 and 864 us on 6.16). Measurements end at the first
# copy at least 450 us after the previous one (copy ends at 10 k us + c, then 1 ms + 8 (k - 100)
# us + c, c < 8 us, the clock in whole us):
#   segment 46 (copied 47 segments = 68056 > 14600: grow), 91 (45 segments = 65160 <= 68056),
#   145 (54 segments = 78192 > 68056: grow), 202 (57 = 82536 > 78192: grow), 259 (57: equal).
#   6.16: 4 x copied: 272224, 312768, 330144.
#   6.19: 2 x (2 c + 2 c x 450 / 1000): 394724, 2 x (156384 + 70372) = 453512,
#         2 x (165072 + 74282) = 478708.
#   6.18: 2265648 first; then 2 x (156384 + 2 x 156384 x 10136 / 68056) is far below it.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("kernel", "expect"), [
    ("6.16", [(46, 272224), (145, 312768), (202, 330144)]),
    ("6.19", [(46, 394724), (145, 453512), (202, 478708)]),
    ("6.18", [(46, 2265648)]),
])  # fmt: skip
def test_faster_sender_grows_in_steps(kernel: str, expect: list[tuple[int, int]]) -> None:
    gaps = [10_000] * 100 + [8_000] * 200
    gaps[100] = 10_000  # segment 100 at 1 ms
    r, df = go(paced(gaps), kernel)
    assert df["outcome"].unique().to_list() == ["delivered"]
    ends = copy_end(df)
    assert rcvbuf_events(r) == [(ends[k], GROW, v) for k, v in expect]


# ---------------------------------------------------------------------------------------------
# SO_RCVBUF, tcp_moderate_rcvbuf
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kernel", ["6.12", "4.19"])
def test_so_rcvbuf_locks_the_buffer(kernel: str) -> None:
    # SOCK_RCVBUF_LOCK: tcp_fixup_rcvbuf, tcp_rcv_space_adjust and tcp_clamp_window all leave the
    # buffer alone
    r, _ = go(paced([10_000] * 150), kernel, "app[0].rcvbuf=131072")
    assert rcvbuf_events(r) == []


def test_unlocked_buffer_of_another_start_size() -> None:
    # rcvbuf 262144 without the lock (a larger tcp_rmem[1], in effect), 6.16: the window after
    # segment 0 is (262144 - 2304) >> 1 = 129920, so the RTT sample comes when rcv_nxt reaches
    # 3896 + 129920 = 133816: segment 91, 900 us; at its copy copied = 92 x 1448 = 133216 >
    # 14600 and rcvbuf = 4 x 133216 = 532864.
    r, df = go(paced([10_000] * 150), "6.16", "app[0].rcvbuf=262144", "app[0].rcvbuf-lock=false")
    assert rcvbuf_events(r) == [(copy_end(df)[91], GROW, 532864)]


@pytest.mark.parametrize(("kernel", "expect"), [
    ("6.12", []),
    # tcp_fixup_rcvbuf still runs (it checks only the lock), without its x 4: 94240
    ("4.19", [(FIXUP, 94240)]),
])  # fmt: skip
def test_moderate_rcvbuf_off(kernel: str, expect: list[tuple[str, int]]) -> None:
    r, _ = go(paced([10_000] * 150), kernel, "net.ipv4.tcp_moderate_rcvbuf=0")
    assert [(d, v) for _, d, v in rcvbuf_events(r)] == expect


# ---------------------------------------------------------------------------------------------
# A stalled reader: it copies segment 0, then works for 10 ms while the rest arrive.
#
# After segment k (k >= 1) sk_rmem_alloc = 2304 k and tcp_select_window offers free = (rcvbuf -
# 2304 k) >> 1 from rcv_nxt = 1000 + 1448 (k + 1), 0 once free < full / 16 (__tcp_select_window;
# full = rcvbuf / 2), never pulling the right edge back. The edge grows 296 bytes a segment while
# free is offered, then stays; in-order data at the edge meets a zero window (TCP_ZEROWINDOW,
# TCPZeroWindowDrop; the ones after it TCP_INVALID_SEQUENCE from tcp_sequence), before any memory
# check:
#   131072 (6.12 default, locked or not): free < 4096 from k = 54; edge 67984 + 296 x 53 =
#     83672; segment 58 (seq 84984) is the first refused. Segment 57 (83536..84984) still fits:
#     rmem before it 56 x 2304 = 129024 <= 131072.
#   212992 locked: free < 6656 from k = 87; edge 1000 + 1448 x 87 + 106496 - 1152 x 86 = 134400;
#     first refused: segment 93.
#   4.19 default (87380, tcp_fixup_rcvbuf to 376960): free < 11780 from k = 154; edge 190928 +
#     296 x 153 = 236216; first refused: segment 163.
# 6.17+ tcp_sequence also refuses data that ends beyond the window while the receive queue holds
# data (9ca48d616ed7): segment 57 ends at 84984 > 83672 with 56 segments queued:
# TCP_INVALID_END_SEQUENCE, before the memory check; that and the 142 refused after it count
# TcpExtBeyondWindow (6c758062c64d).
# ---------------------------------------------------------------------------------------------

STALL = ["app[0].work-ns=10000000"]


@pytest.mark.parametrize(("kernel", "sets", "first", "reason", "events"), [
    ("6.12", [], 58, "TCP_ZEROWINDOW", []),
    ("6.12", ["app[0].rcvbuf=131072"], 58, "TCP_ZEROWINDOW", []),
    ("6.12", ["app[0].rcvbuf=212992"], 93, "TCP_ZEROWINDOW", []),
    ("4.19", [], 163, "TCP_ZEROWINDOW", [(FIXUP, 376960)]),
    ("6.17", [], 57, "TCP_INVALID_END_SEQUENCE", []),
    ("6.18", ["app[0].rcvbuf=131072"], 57, "TCP_INVALID_END_SEQUENCE", []),
])  # fmt: skip
def test_stalled_reader_first_drop(kernel: str, sets: list[str], first: int, reason: str,
                                   events: list[tuple[str, int]]) -> None:  # fmt: skip
    r, df = go(paced([10_000] * 200), kernel, *STALL, *sets)
    dropped = df.filter(pl.col("outcome") == "dropped")
    assert (dropped["frame"] - 1).to_list() == list(range(first, 200))
    assert dropped["drop_reason"].to_list() == [reason] + ["TCP_INVALID_SEQUENCE"] * (199 - first)
    assert [(d, v) for _, d, v in rcvbuf_events(r)] == events
    assert tcp_ext(r, "PruneCalled") == 0
    assert tcp_ext(r, "TCPZeroWindowDrop") == (1 if reason == "TCP_ZEROWINDOW" else 0)
    if kernel in ("6.17", "6.18"):
        assert tcp_ext(r, "BeyondWindow") == 200 - first
    else:
        assert "BeyondWindow" not in r.counters["snmp"]["TcpExt"]  # no such MIB before 6.17


def test_small_segments_clamp_instead_of_collapsing() -> None:
    # 100-byte segments (truesize 2304: "bloated", 2304 / 2 > 100) to the stalled reader, 6.12:
    # the window (64384 from rcv_nxt) is far from closing, so memory decides. Up to 6.16 an skb
    # fits while sk_rmem_alloc <= sk_rcvbuf before it (one skb of overshoot): segments 1-57 fit
    # (rmem before 57: 56 x 2304 = 129024), segment 58 finds 131328 > 131072 and tcp_prune_queue
    # runs. Unlocked: tcp_clamp_window sets rcvbuf = rmem = 131328 and the skb fits; the same for
    # every later segment: rcvbuf = 2304 k before segment k + 1, k = 57..68 (12 prunes, nothing
    # collapsed). Locked (SO_RCVBUF 131072): tcp_collapse copies the 57 queued skbs' 5700 bytes
    # into a 3776-byte and a 1924-byte skb (truesize 4352 each: kmalloc 4096 + 256), rmem falls
    # to 8704 and no later segment prunes.
    rows = paced([10_000] * 70, payload=100)
    r, df = go(rows, "6.12", *STALL)
    assert df["outcome"].unique().to_list() == ["delivered"]  # all read in the end, none lost
    ev = rcvbuf_events(r)
    assert [(d, v) for _, d, v in ev] == [(CLAMP, 2304 * k) for k in range(57, 69)]
    assert [t for t, _, _ in ev] == l4_end(df)[58:70].cast(pl.Int64).to_list()
    assert tcp_ext(r, "PruneCalled") == 12
    assert tcp_ext(r, "TCPRcvCollapsed") == 0
    r2, _ = go(rows, "6.12", *STALL, "app[0].rcvbuf=131072")
    assert rcvbuf_events(r2) == []
    assert tcp_ext(r2, "PruneCalled") == 1
    assert tcp_ext(r2, "TCPRcvCollapsed") == 57


@pytest.mark.parametrize(("sets", "events"), [([], [(CLAMP, 129024)]),
                                              (["app[0].rcvbuf=131072"], [])])
def test_small_segments_on_6_17_shrink_then_collapse(sets: list[str],
                                                     events: list[tuple[str, int]]) -> None:
    # 6.17's tcp_can_ingest counts the incoming truesize (1d2fbaad7cd8): segment 57 needs
    # 56 x 2304 + 2304 = 131328 > 131072, tcp_prune_queue runs, and tcp_clamp_window now fires
    # whenever the skb does not fit: an unlocked buffer shrinks to sk_rmem_alloc = 129024. Still no
    # room: tcp_collapse copies the 56 queued skbs' 5600 bytes into a 3776- and a 1824-byte skb
    # (4352 each), rmem 8704, and segment 57 fits (8704 + 2304 <= 129024). Locked: the same
    # collapse without the shrink.
    r, df = go(paced([10_000] * 70, payload=100), "6.17", *STALL, *sets)
    assert df["outcome"].unique().to_list() == ["delivered"]
    assert [(d, v) for _, d, v in rcvbuf_events(r)] == events
    assert (tcp_ext(r, "PruneCalled"), tcp_ext(r, "TCPRcvCollapsed")) == (1, 56)


# ---------------------------------------------------------------------------------------------
# Invariants and config
# ---------------------------------------------------------------------------------------------


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(gaps=st.lists(st.integers(2_000, 40_000), min_size=20, max_size=120),
       kernel=st.sampled_from(["4.14", "4.19", "5.15", "6.12", "6.16", "6.17", "6.19"]),
       cap=st.sampled_from([None, 300_000]))  # fmt: skip
def test_rcvbuf_only_grows_and_stays_under_tcp_rmem_2(gaps: list[int], kernel: str,
                                                      cap: int | None) -> None:  # fmt: skip
    # Outside 6.17-6.19 (whose tcp_clamp_window can shrink), every change raises sk_rcvbuf; on
    # every kernel nothing takes it past tcp_rmem[2]
    sets = [] if cap is None else [f'net.ipv4.tcp_rmem="4096 131072 {cap}"']
    r, _ = go(paced(gaps), kernel, *sets, "app[0].work-ns=20000")
    vals = [v for _, _, v in rcvbuf_events(r)]
    if kernel not in ("6.17", "6.18", "6.19"):
        assert vals == sorted(vals)
    default_max = 33554432 if kernel in ("6.16", "6.17", "6.19") else 6291456  # 572be9bf9d0d
    assert all(v <= (cap or default_max) for v in vals)


def test_config_rcvbuf_lock_and_tcp_rmem_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="rcvbuf-lock must be true or false"):
        resolve_config(None, ['app[0].match="tcp dport 5000"', "app[0].rcvbuf-lock=1"])
    with pytest.raises(ConfigError, match=r"net\.ipv4\.tcp_rmem must be three integers"):
        resolve_config(None, ['net.ipv4.tcp_rmem="4096 131072"'])
    cfg = resolve_config(None, ['app[0].match="tcp dport 5000"', "app[0].rcvbuf=65536",
                                'host.kernel="6.16"'])  # fmt: skip
    assert cfg["app"][0]["rcvbuf-lock"] is True
    assert cfg["sysctl"]["net.ipv4.tcp_rmem"] == "4096 131072 33554432"  # 572be9bf9d0d (6.16)
    # a resolved config resolves to itself (run.json's config replays the same): the default
    # start size stays unlocked, SO_RCVBUF stays locked
    again = resolve_config(write_toml(tmp_path, cfg), [])
    assert again["app"] == cfg["app"] and again["sysctl"] == cfg["sysctl"]
    dflt = resolve_config(None, ['app[0].match="tcp dport 5000"'])
    again = resolve_config(write_toml(tmp_path, dflt), [])
    assert again["app"][0]["rcvbuf"] == 131072 and again["app"][0]["rcvbuf-lock"] is False


def write_toml(tmp_path: Path, cfg: dict[str, Any]) -> str:
    p = tmp_path / "resolved.toml"
    p.write_text(dump_toml(cfg))
    return str(p)
