"""Hand-computed scenarios for a TCP listener (tcp_conn_request, tcp_check_req, cookie_v4_check,
accept()), receive-queue pruning (tcp_prune_queue) and the window-update ACK of
tcp_cleanup_rbuf. Costs from the round-number profile tests/data/round-costs.toml
(tcp_v4_rcv 200, tcp_conn_request 400, the child socket 500, accept 600, a syscall 300, an ACK
300, tcp_collapse 100 per skb + 0.1 ns/B); every number below follows from the kernel rule cited
beside it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl

from tests.test_model_breadth import TCP_APP, pk, run, seg

MS = 1_000_000
US = 1_000
LISTEN = [*TCP_APP, "app[0].listen=true"]


def syn(ts: int, sport: int, seq: int = 1000) -> dict[str, Any]:
    return seg(ts, seq, flags=0x02, n=0, sport=sport)


def ack(ts: int, sport: int, seq: int = 1001, flags: int = 0x10) -> dict[str, Any]:
    return seg(ts, seq, flags=flags, n=0, sport=sport)


def ext(r: Any) -> dict[str, int]:
    return r.counters["snmp"]["TcpExt"]


def cpu_by_symbol(r: Any) -> dict[str, int]:
    cpu = pl.from_arrow(r.cpu)
    assert isinstance(cpu, pl.DataFrame)
    return dict(cpu.group_by("symbol").agg(pl.col("ns").sum()).iter_rows())


# ------------------------------------------------------------------------ SYN queue, cookies


def test_syn_queue_full_sends_cookies() -> None:
    """backlog 2 on 6.12: inet_csk_reqsk_queue_is_full is qlen >= sk_max_ack_backlog, so SYNs 1
    and 2 make request socks and 3..5 meet a full SYN queue: tcp_syn_flood_action
    (TCPReqQFullDoCookies) and cookie_init_sequence (SyncookiesSent) for each, nothing dropped.
    Every SYN gets a SYN-ACK (tcp_make_synack: OutSegs 5); the two requests are never ACKed: their
    timers resend tcp_synack_retries = 5 SYN-ACKs each after the trace (RetransSegs,
    TCPSynRetrans 10) and OutSegs ends at 15."""
    rows = [syn(k * MS, 5000 + k) for k in range(5)]
    r = run(rows, *LISTEN, "app[0].backlog=2", "host.kernel=6.12")
    df = pk(r)
    assert df["outcome"].to_list() == ["consumed"] * 5
    e = ext(r)
    assert (e["TCPReqQFullDoCookies"], e["SyncookiesSent"], e["ListenDrops"],
            e["ListenOverflows"], e["TCPReqQFullDrop"]) == (3, 3, 0, 0, 0)
    assert (e["TCPSynRetrans"], r.counters["snmp"]["Tcp"]["RetransSegs"]) == (10, 10)
    assert r.counters["snmp"]["Tcp"]["OutSegs"] == 15 and r.counters["snmp"]["Tcp"]["InSegs"] == 5
    # a 54-byte frame padded to the 60-byte minimum, + 24 (FCS, preamble, gap) at 10G: 672 bits,
    # 67 ns; DMA 1000 -> IRQ 1067 (ixgbe's ITR: an idle queue interrupts at once); hard IRQ 1000,
    # softirq + net_rx_action 200, poll 500 -> driver 2767; driver 100, GRO 50, netif/ip/route
    # 300, local 100 -> 3317; tcp_v4_rcv 200 -> 3517; tcp_conn_request 400 (request sock,
    # SYN-ACK) -> consumed at 3917
    a = df.row(0, named=True)
    assert (a["t_wire"], a["t_done"], a["cpu_l4"]) == (67, 3917, 600)
    assert cpu_by_symbol(r)["tcp_conn_request"] == 5 * 400
    # 6.13+ compares with > (3479c7549fb1): three requests, two cookies, 15 retransmissions
    r = run(rows, *LISTEN, "app[0].backlog=2", "host.kernel=6.13")
    e = ext(r)
    assert (e["SyncookiesSent"], e["TCPSynRetrans"]) == (2, 15)
    assert r.counters["snmp"]["Tcp"]["OutSegs"] == 5 + 15


def test_request_timers_of_a_crowded_syn_queue_give_up_sooner() -> None:
    """8 SYNs, backlog 8 on 6.13 (full only past 8): 8 requests, none ACKed; their timers run
    after the trace by reqsk_timer_handler's rule (qlen 8: 8 * 2 > max(8, 8)). At 1 s each is
    young: request j sees young = 8 - j, and 8 < 2 * young keeps 5 retries or one doubling more
    keeps 4: all resend (8). At 3 s none is young: the retries fall to 2 and all resend (8). At
    7 s (2 timeouts >= 2 retries) they expire until the queue is half full (qlen 4: 8 > 8 is
    false), then the rule is off: the other 4 resend at 7, 15, 31 s (12) and expire at 63 s.
    28 retransmissions, where a fixed 5 per request would give 40."""
    rows = [syn(k * MS, 5000 + k) for k in range(8)]
    r = run(rows, *LISTEN, "app[0].backlog=8", "host.kernel=6.13")
    assert (ext(r)["TCPSynRetrans"], ext(r)["SyncookiesSent"]) == (28, 0)
    assert r.counters["snmp"]["Tcp"]["OutSegs"] == 8 + 28


def test_without_syncookies_a_full_syn_queue_drops() -> None:
    """tcp_syncookies = 0, backlog 2 (6.12): SYNs 3..6 meet a full queue: TCPReqQFullDrop and
    ListenDrops (tcp_listendrop), no SYN-ACK; the SYN is still consumed (tcp_rcv_state_process's
    consume_skb). The ACK of dropped SYN 3 then finds only the listener: no cookie check without
    syncookies, so tcp_rcv_state_process(LISTEN) answers the ACK with a RST (TCP_FLAGS)."""
    rows = [syn(k * MS, 5000 + k) for k in range(6)] + [ack(7 * MS, 5002)]
    r = run(rows, *LISTEN, "app[0].backlog=2", "host.kernel=6.12", "net.ipv4.tcp_syncookies=0")
    df = pk(r)
    assert df["outcome"].to_list() == ["consumed"] * 6 + ["dropped"]
    assert df["drop_reason"].to_list()[6] == "TCP_FLAGS"
    e = ext(r)
    assert (e["TCPReqQFullDrop"], e["ListenDrops"], e["SyncookiesSent"]) == (4, 4, 0)
    tcp = r.counters["snmp"]["Tcp"]
    # 2 SYN-ACKs + 2 x 5 retransmissions after the trace + the RST
    assert (tcp["OutSegs"], tcp["OutRsts"]) == (13, 1)


def test_without_syncookies_the_last_quarter_is_for_proven_peers() -> None:
    """tcp_syncookies = 0, tcp_max_syn_backlog 4, backlog 10: the SYN queue is not full, but
    tcp_conn_request drops when max_syn_backlog - qlen < max_syn_backlog >> 2 (4 - 4 < 1) for a
    peer not proven by tcp_metrics: SYNs 5 and 6 count ListenDrops only."""
    rows = [syn(k * MS, 5000 + k) for k in range(6)]
    r = run(rows, *LISTEN, "app[0].backlog=10", "net.ipv4.tcp_syncookies=0",
            "net.ipv4.tcp_max_syn_backlog=4")
    e = ext(r)
    assert (e["ListenDrops"], e["TCPReqQFullDrop"], e["ListenOverflows"]) == (2, 0, 0)
    assert r.counters["snmp"]["Tcp"]["OutSegs"] == 4 + 4 * 5


# ------------------------------------------------------------------ accept queue, accept()


def test_accept_queue_overflow() -> None:
    """backlog 1 (6.15), an app that works 1 s on each connection it accepts. sk_acceptq_is_full
    is sk_ack_backlog > sk_max_ack_backlog, so the queue holds two children.
    A: SYN 0, ACK 0.1 ms -> child (queue 1), the app wakes and accepts it (queue 0), busy 1 s.
    B: SYN 1 ms, ACK 1.1 ms -> child (queue 1). E: SYN 1.5 ms -> request. C: SYN 2 ms, ACK 2.1 ms
    -> child (queue 2). D: SYN 3 ms -> tcp_conn_request finds the accept queue full:
    ListenOverflows, ListenDrops, no SYN-ACK. E: ACK 3.1 ms -> tcp_v4_syn_recv_sock finds it full:
    ListenOverflows, ListenDrops, the ACK dropped TCP_LISTEN_OVERFLOW; E's request stays and its
    timer resends 5 SYN-ACKs after the trace. SYN-ACKs: A, B, E, C."""
    rows = [syn(0, 5001), ack(100 * US, 5001), syn(1 * MS, 5002), ack(1100 * US, 5002),
            syn(1500 * US, 5005), syn(2 * MS, 5003), ack(2100 * US, 5003), syn(3 * MS, 5004),
            ack(3100 * US, 5005)]
    r = run(rows, *LISTEN, "app[0].backlog=1", "app[0].accept-ns=1000000000", "host.kernel=6.15")
    df = pk(r)
    assert df["outcome"].to_list() == ["consumed"] * 8 + ["dropped"]
    assert df["drop_reason"].to_list()[8] == "TCP_LISTEN_OVERFLOW"
    e = ext(r)
    assert (e["ListenOverflows"], e["ListenDrops"], e["SyncookiesSent"]) == (2, 2, 0)
    tcp = r.counters["snmp"]["Tcp"]
    assert (tcp["OutSegs"], tcp["RetransSegs"], tcp["InSegs"]) == (4 + 5, 5, 9)
    # A's ACK at 100_067 (the SYN's 67 ns): the queue's last IRQ was over 50 us ago (ITR gap
    # 50 us), so the IRQ is at 101_067; + 1000 + 200 + 500 + driver 100 + GRO 50 + 300 + local 100
    # + tcp 200 -> 103_517; the child socket 500 and the wake-up of the accept()ing app 200 ->
    # consumed at 104_217
    a = df.row(1, named=True)
    assert (a["t_done"], a["cpu_l4"]) == (104_217, 900)
    # accept(): A's after the wake-up (the blocked call's entry already paid): 600; B's and C's
    # each a new system call: 300 + 600; the app's own work: 1 s per connection
    by = cpu_by_symbol(r)
    assert by["inet_csk_accept"] == 600 + 2 * 900
    assert by["app_work"] == 3 * 1_000_000_000
    assert by["tcp_v4_syn_recv_sock"] == 3 * 500
    # tcp_abort_on_overflow: E's ACK gets a RST and its request goes (EmbryonicRsts): no
    # retransmissions after the trace
    r2 = run(rows, *LISTEN, "app[0].backlog=1", "app[0].accept-ns=1000000000",
             "host.kernel=6.15", "net.ipv4.tcp_abort_on_overflow=1")
    tcp = r2.counters["snmp"]["Tcp"]
    assert (tcp["OutSegs"], tcp["OutRsts"], ext(r2)["EmbryonicRsts"]) == (4 + 1, 1, 1)
    # before 6.15 the refused ACK is freed without a reason (NOT_SPECIFIED)
    r = run(rows, *LISTEN, "app[0].backlog=1", "app[0].accept-ns=1000000000", "host.kernel=6.12")
    assert pk(r)["drop_reason"].to_list()[8] == "NOT_SPECIFIED"


def test_cookie_ack_makes_a_child_and_a_stray_ack_fails() -> None:
    """backlog 1 on 6.12 (qlen >= 1 is full). SYN 5001 -> request; SYN 5002 -> cookie
    (tcp_synq_overflow stamps the listener). 5002's ACK: cookie_v4_check within 2 min of the
    overflow validates it (SyncookiesRecv) -> child. 5001's ACK -> child through its request.
    SYN 5004 -> request; a RST from 5004 resets it (tcp_check_req's embryonic_reset:
    EmbryonicRsts, freed NOT_SPECIFIED); 5004's ACK then meets the listener: the cookie check
    fails (SyncookiesFailed), tcp_rcv_state_process answers with a RST (TCP_FLAGS)."""
    rows = [syn(0, 5001), syn(1 * MS, 5002), ack(2 * MS, 5002), ack(3 * MS, 5001),
            syn(4 * MS, 5004), ack(5 * MS, 5004, seq=1001, flags=0x04), ack(6 * MS, 5004)]
    r = run(rows, *LISTEN, "app[0].backlog=1", "host.kernel=6.12")
    df = pk(r)
    assert df["outcome"].to_list() == ["consumed"] * 5 + ["dropped"] * 2
    assert df["drop_reason"].to_list()[5:] == ["NOT_SPECIFIED", "TCP_FLAGS"]
    e = ext(r)
    assert (e["SyncookiesSent"], e["SyncookiesRecv"], e["SyncookiesFailed"], e["EmbryonicRsts"],
            e["TCPReqQFullDoCookies"], e["ListenDrops"]) == (1, 1, 1, 1, 1, 0)
    tcp = r.counters["snmp"]["Tcp"]
    # 3 SYN-ACKs (no retransmission: every request ended within 1 s) and the RST
    assert (tcp["OutSegs"], tcp["OutRsts"], tcp["RetransSegs"]) == (4, 1, 0)
    # two children accepted, each by a blocked accept() the child woke: 600 each
    assert cpu_by_symbol(r)["inet_csk_accept"] == 2 * 600


def test_data_on_the_last_ack_reaches_the_app() -> None:
    """The handshake's ACK carrying data (the request completes, tcp_child_process queues the
    data): the child is accepted and the data delivered; a data segment of a connection whose
    SYN is not in the trace goes to the socket as an established one."""
    rows = [syn(0, 5001), seg(1 * MS, 1001, sport=5001), seg(2 * MS, 7000, sport=6000)]
    r = run(rows, *LISTEN)
    df = pk(r)
    assert df["outcome"].to_list() == ["consumed", "delivered", "delivered"]
    # the SYN-ACK; the child's first data ACKed at once (quickack from the handshake); the other
    # connection's first data arms the delayed ACK, which fires after the trace
    assert r.counters["snmp"]["Tcp"]["OutSegs"] == 3
    assert (ext(r)["DelayedACKs"], ext(r)["TCPSynRetrans"]) == (1, 0)


# --------------------------------------------------------------------------------- pruning


def test_prune_collapses_bloated_skbs() -> None:
    """rcvbuf 8000 on 6.12 (tcp_try_rmem_schedule prunes once rmem_alloc > sk_rcvbuf), 100-byte
    segments (truesize 2304: tcp_win_from_space(2304) = 1152 > 100, bloated), no handshake, ACKs
    off; the reader reads the first and then works 1 s. Segments 2..5 queue (rmem 2304 .. 9216:
    the fifth is taken at 6912 <= 8000). Segment 6 finds 9216 > 8000: tcp_prune_queue
    (PruneCalled) collapses the 4 queued skbs into one alloc_skb(400) (a 768-byte head from
    kmalloc-1024: truesize 1280), rmem 1280, TCPRcvCollapsed 4, and segment 6 fits. The copy
    costs 4 x 100 + 0.1 x 400 = 440 ns in segment 6's l4 stage."""
    rows = [seg(k * MS, 5000 + 100 * k, n=100) for k in range(6)]
    r = run(rows, *TCP_APP, "host.tcp-acks=false", "app[0].work-ns=1000000000",
            "app[0].rcvbuf=8000", "host.kernel=6.12")
    df = pk(r)
    assert df["outcome"].to_list() == ["delivered"] * 6
    e = ext(r)
    assert (e["PruneCalled"], e["TCPRcvCollapsed"], e["RcvPruned"], e["OfoPruned"],
            e["TCPRcvQDrop"]) == (1, 4, 0, 0, 0)
    assert df.row(5, named=True)["cpu_l4"] == 200 + 440
    assert cpu_by_symbol(r)["tcp_collapse"] == 440


GRO = ["nic.driver=generic", "nic.rx-usecs=20", "host.tcp-acks=false",
       "app[0].work-ns=1000000000", "app[0].rcvbuf=8000"]


def _gro3(ts: int, seq: int) -> list[dict[str, Any]]:
    """Three back-to-back 1448-byte segments GRO merges into one skb (4344 B, truesize 6912:
    not bloated, 3456 <= 4344)."""
    return [seg(ts + k * US, seq + 1448 * k, n=1448) for k in range(3)]


def test_rcvq_drop_when_pruning_cannot_help() -> None:
    """A 100-byte segment read at once, then two GRO skbs of 3 x 1448 while the reader works. On
    6.17 ("tcp: stronger sk_rcvbuf checks": rmem + truesize <= rcvbuf) the second finds
    6912 + 6912 > 8000: PruneCalled; nothing is bloated, no out-of-order queue: RcvPruned, and
    the receive queue is not empty, so PROTO_MEM and TCPRcvQDrop (once, for the skb) -- with the
    window left out: 6.17's tcp_sequence also checks the end (9ca48d616ed7) and the skb, ending at
    13788 past the window's edge (9444 + (8000 - 6912) / 2 = 9988) with the first skb queued, is
    refused there first: TCP_INVALID_END_SEQUENCE, TcpExtBeyondWindow, no pruning. On 6.12
    (rmem 6912 <= 8000, no end check) it is taken."""
    rows = [seg(0, 5000, n=100), *_gro3(1 * MS, 5100), *_gro3(2 * MS, 5100 + 3 * 1448)]
    r = run(rows, *TCP_APP, *GRO, "host.kernel=6.17")
    df = pk(r)
    assert df["skb"].to_list() == [1, 2, 2, 2, 5, 5, 5]
    assert df["outcome"].to_list() == ["delivered"] * 4 + ["dropped"] * 3
    assert df["drop_reason"].to_list()[4:] == ["TCP_INVALID_END_SEQUENCE"] * 3
    e = ext(r)
    assert (e["PruneCalled"], e["BeyondWindow"], e["TCPRcvQDrop"]) == (0, 1, 0)
    r = run(rows, *TCP_APP, *GRO, "host.kernel=6.12")
    assert pk(r)["outcome"].to_list() == ["delivered"] * 7
    assert ext(r)["PruneCalled"] == 0


def test_out_of_order_queue_pruned_for_an_earlier_segment() -> None:
    """6.17: segment s..s+100 read; a GRO skb at s+1548 (out of order: 6912 of truesize) waits;
    a 100-byte segment at s+200 (out of order, before it) needs 2304 more: 9216 > 8000.
    tcp_prune_queue: the lone 4344-byte range is not bloated (no collapse), so
    tcp_prune_ofo_queue frees from the highest sequence: the GRO skb (its seq is not before the
    incoming one's), which reaches the goal (sk_rcvbuf / 8) and makes room: OfoPruned, its three
    segments dropped TCP_OFO_QUEUE_PRUNE. The segment at s+100 then fills the hole."""
    rows = [seg(0, 5000, n=100), *_gro3(1 * MS, 5000 + 1548), seg(2 * MS, 5200, n=100),
            seg(3 * MS, 5100, n=100)]
    r = run(rows, *TCP_APP, *GRO, "host.kernel=6.17")
    df = pk(r)
    assert df["outcome"].to_list() == ["delivered", "dropped", "dropped", "dropped",
                                       "delivered", "delivered"]
    assert df["drop_reason"].to_list()[1:4] == ["TCP_OFO_QUEUE_PRUNE"] * 3
    e = ext(r)
    assert (e["PruneCalled"], e["OfoPruned"], e["RcvPruned"], e["TCPOFOQueue"]) == (1, 1, 0, 2)


# ------------------------------------------------------------------- tcp_cleanup_rbuf ACKs


def test_window_update_ack_after_a_read() -> None:
    """rcvbuf 8000 (full space 4000), a handshake (quickack: every data segment ACKed at once),
    1000-byte segments; the reader reads one message and works 1 s each time. Windows
    (tcp_select_window: half the free space, never shrinking the right edge): the SYN's 4000
    (edge 5000); after d1 3000 (edge 5000), after d2 2848 (edge 5848), d3 1848, d4 848 (free 544
    is below one rcv_mss: 0, the edge stays). Reading d2 leaves rmem 4608: __tcp_cleanup_rbuf
    has rcv_window_now 848 (2 x 848 <= 4000) and __tcp_select_window 1696 >= 2 x 848: an ACK.
    Reading d3: 1696 -> 2848 < 3392, none. Reading d4: 1696 -> 4000 >= 3392: an ACK. (Reading d1
    right away: 3000, 2 x 3000 > 4000: not considered.) OutSegs: the SYN-ACK, 4 quick ACKs, 2."""
    rows = [seg(0, 999, flags=0x12, n=0)] + [seg((k + 1) * MS, 1000 + 1000 * k) for k in range(4)]
    r = run(rows, *TCP_APP, "app[0].rcvbuf=8000", "app[0].work-ns=1000000000")
    df = pk(r)
    assert df["outcome"].to_list() == ["consumed"] + ["delivered"] * 4
    assert r.counters["snmp"]["Tcp"]["OutSegs"] == 1 + 4 + 2
    # the ACK is part of the recvmsg that read the skb: syscall 300 + copy 100 + consume 60
    # (100 less fixed.skb_free 40: the reader on CPU 1 defers the free to CPU 0, which built the
    # skb; TCP 5.19+, skb_attempt_defer_free), + tcp_send_ack 300 for d2 and d4
    # (d1: the woken reader's blocked call already paid its entry: 160)
    assert df["cpu_copy"].to_list()[1:] == [160, 460 + 300, 460, 460 + 300]
    assert cpu_by_symbol(r)["tcp_send_ack"] == 5 * 300 + 2 * 300


# ------------------------------------------------------------------------------ end to end


def _cli(*args: str) -> str:
    from typer.testing import CliRunner

    from replay.cli import app

    r = CliRunner().invoke(app, list(args))
    assert r.exit_code == 0, r.output
    return r.output


def test_syn_flood_end_to_end_cookies_after_the_backlog(tmp_path: Path) -> None:
    """`replay synth syn-flood` (spoofed SYNs, none completes) through `replay run` to a
    listener with the default backlog (SOMAXCONN 4096) on 6.12: the first 4096 SYNs that reach
    tcp_v4_rcv make request socks (the SYN queue is full at qlen >= 4096), every later one gets a
    cookie; each gets a SYN-ACK. After the trace the 4096 request timers run by
    reqsk_timer_handler's rule (the queue is over half full: qlen * 2 > max(8, 4096)): at 1 s
    every request is still young enough to keep 5 retries (resend: 4096); at 3 s none is young,
    so the retries drop to 2 and each resends (4096); at 7 s the first 2048 expire (2 timeouts
    >= 2 retries) until the queue is half full, after which the rule is off and the other 2048
    resend at 7, 15 and 31 s and expire at 63 s: 2 x 4096 + 3 x 2048 = 14336 retransmissions."""
    pcap = tmp_path / "syn.pcap"
    _cli("synth", "syn-flood", "-o", str(pcap), "--duration", "0.01", "--rate", "1M")
    run_dir = tmp_path / "run"
    _cli("run", str(pcap), "-o", str(run_dir), "--set", 'app[0].match="tcp dport 80"',
         "--set", "app[0].listen=true", "--set", "host.kernel=6.12")
    meta = json.loads((run_dir / "run.json").read_text())
    e = meta["counters"]["snmp"]["TcpExt"]
    packets = pl.read_parquet(run_dir / "packets.parquet")
    at_tcp = packets.filter(pl.col("cpu_l4").is_not_null()).height
    assert at_tcp > 4096  # the flood outran the backlog
    assert (e["SyncookiesSent"], e["TCPReqQFullDoCookies"]) == (at_tcp - 4096, at_tcp - 4096)
    assert (e["ListenDrops"], e["ListenOverflows"], e["TCPSynRetrans"]) == (0, 0, 14336)
    assert meta["counters"]["snmp"]["Tcp"]["OutSegs"] == at_tcp + 14336
    # every SYN that reached TCP is consumed, none dropped there
    assert packets.filter(pl.col("drop_stage") == "l4").height == 0
    text = _cli("report", str(run_dir), "--stdio")
    assert f"TcpExtSyncookiesSent{' ' * 12}{at_tcp - 4096}" in text


def test_conn_flood_end_to_end_overflows_a_slow_acceptor(tmp_path: Path) -> None:
    """`replay synth conn-flood` (clients completing handshakes at 20k/s) to a listener with
    backlog 16 whose app spends 200 us per accepted connection (~5k/s): the accept queue fills.
    Kernel accounting that must hold: every ListenOverflows is a ListenDrops (cookies are on, so
    no SYN-queue drop); the overflows are the refused handshake ACKs (TCP_LISTEN_OVERFLOW on
    6.15) plus the SYNs tcp_conn_request refused; children made = connections accepted."""
    pcap = tmp_path / "conn.pcap"
    _cli("synth", "conn-flood", "-o", str(pcap), "--duration", "0.02")
    run_dir = tmp_path / "run"
    _cli("run", str(pcap), "-o", str(run_dir), "--set", 'app[0].match="tcp dport 80"',
         "--set", "app[0].listen=true", "--set", "app[0].backlog=16",
         "--set", "app[0].accept-ns=200000", "--set", "host.kernel=6.15")
    meta = json.loads((run_dir / "run.json").read_text())
    e = meta["counters"]["snmp"]["TcpExt"]
    packets = pl.read_parquet(run_dir / "packets.parquet")
    refused_acks = packets.filter(pl.col("drop_reason") == "TCP_LISTEN_OVERFLOW").height
    assert refused_acks > 0 and e["ListenOverflows"] > refused_acks
    assert e["ListenDrops"] == e["ListenOverflows"]
    cpu = pl.read_parquet(run_dir / "cpu.parquet")
    children = cpu.filter(pl.col("symbol") == "tcp_v4_syn_recv_sock")["frames"].sum()
    accepts = cpu.filter(pl.col("symbol") == "inet_csk_accept").height
    assert children == accepts > 0
    text = _cli("report", str(run_dir), "--stdio")
    line = f"TcpExtListenOverflows{' ' * 11}{e['ListenOverflows']}"
    assert line in text and "TcpExtListenDrops" in text
    html = tmp_path / "r.html"
    _cli("report", str(run_dir), "-o", str(html))
    assert line in html.read_text()


def test_conn_flood_frames_are_handshakes_one_rtt_apart() -> None:
    """Each connection: a SYN (ISN), then its ACK 200 us later (ISN + 1), from its own source
    port; 54-byte frames padded to 60, checksums valid, Poisson SYN times at --rate."""
    import dpkt

    from replay.synth import build
    from replay.synth.conn_flood import RTT_NS
    from tests._synth_read import checksums_ok

    cap = build("conn-flood", duration=0.05, rate="20k", clients=50, seed=4)
    n = len(cap)
    assert cap.frames.shape[1] == 60 and n % 2 == 0
    assert abs(n // 2 - 1000) < 4 * 32  # Poisson: mean 1000 connections, sd ~32
    assert (cap.ts_ns[1:] >= cap.ts_ns[:-1]).all()
    conns: dict[tuple[bytes, int], list[tuple[int, int, int]]] = {}
    for i in range(n):
        ip = dpkt.ethernet.Ethernet(cap.frame(i)).data
        conns.setdefault((ip.src, ip.data.sport), []).append(
            (int(cap.ts_ns[i]), ip.data.flags, ip.data.seq))
    assert len(conns) == n // 2  # one source port per connection
    for (t0, f0, s0), (t1, f1, s1) in conns.values():
        assert (f0, f1) == (dpkt.tcp.TH_SYN, dpkt.tcp.TH_ACK)
        assert t1 - t0 == RTT_NS and s1 == (s0 + 1) % 2**32
    assert len({src for src, _ in conns}) <= 50
    assert all(checksums_ok(cap.frame(i)) for i in range(0, n, 7))


def test_real_ssh_server_capture_through_the_listener() -> None:
    """zeek__get-to-ssh-server.pcap taken at the SSH server 130.74.164.231 (its own segments are
    not received): the client's SYN (frame 1) makes a request and a SYN-ACK, its ACK (3) the child
    (tcp_v4_syn_recv_sock) that the server accept()s, the 605-byte banner (4) is the child's first
    data (quickack from the handshake: an ACK at once) and is delivered, the last ACK (8) is
    consumed by the child. Tcp OutSegs: the SYN-ACK and that ACK; no queue overflowed."""
    from tests.test_model_breadth import _real, _run_capture

    r = _run_capture(_real("zeek__get-to-ssh-server.pcap"), 'host.addresses=["130.74.164.231"]',
                     'app[0].match="tcp dport 22"', "app[0].listen=true")
    df = pk(r).filter(pl.col("outcome") != "ignored")
    assert df["frame"].to_list() == [1, 3, 4, 8]
    assert df["outcome"].to_list() == ["consumed", "consumed", "delivered", "consumed"]
    tcp = r.counters["snmp"]["Tcp"]
    assert (tcp["InSegs"], tcp["OutSegs"], tcp["RetransSegs"]) == (4, 2, 0)
    assert not any(ext(r).values())
    by = cpu_by_symbol(r)
    # the default profile: fixed.tcp_conn_request 1400, fixed.tcp_child_sock 2000, the accept()
    # the child woke (its system call already entered): fixed.accept 1500
    assert (by["tcp_conn_request"], by["tcp_v4_syn_recv_sock"], by["inet_csk_accept"]) == (
        1400, 2000, 1500)


def test_listen_config_is_checked() -> None:
    import re

    import pytest

    from replay.errors import ConfigError
    from replay.model.config import resolve_config

    with pytest.raises(ConfigError, match=re.escape("app[0].listen needs a TCP socket")):
        resolve_config(None, ['app[0].match="udp dport 53"', "app[0].listen=true"])
    with pytest.raises(ConfigError, match=re.escape("net.ipv4.tcp_syncookies must be 0, 1 or 2")):
        resolve_config(None, ["net.ipv4.tcp_syncookies=3"])
    # somaxconn: SOMAXCONN 4096 since 5.4, 128 before; listen()'s backlog defaults to it
    cfg = resolve_config(None, [*LISTEN, "host.kernel=5.4"])
    assert cfg["sysctl"]["net.core.somaxconn"] == 4096 and cfg["app"][0]["backlog"] == 4096
    cfg = resolve_config(None, [*LISTEN, "host.kernel=4.19"])
    assert cfg["sysctl"]["net.core.somaxconn"] == 128 and cfg["app"][0]["backlog"] == 128


def test_inferred_app_listens_where_syns_arrive() -> None:
    """Without [[app]]: a local TCP port receiving SYNs (no ACK) gets a listener; one that only
    sees a SYN-ACK (the host was the client) does not."""
    import numpy as np

    from replay.model.classify import columns, infer_apps
    from tests.framegen import frames

    rows = [syn(0, 5001), syn(MS, 5002), seg(2 * MS, 1, flags=0x12, n=0, dport=9001)]
    cols = columns(frames(rows))
    apps, note = infer_apps(cols, np.ones(cols.n, bool), 2)
    assert [(a["match"], a["listen"]) for a in apps] == [("tcp dport 9000", True),
                                                         ("tcp dport 9001", False)]
    assert "tcp dport 9000 (listening: SYNs seen)" in note


def test_each_connection_has_its_own_receive_memory() -> None:
    """Two connections to one app (rcvbuf 8000, 6.12, ACKs off), the reader busy for 1 s after
    the first segment: three 100-byte segments of each queue (6912 of truesize per connection,
    13824 for the app). Each is its own socket in the kernel, so neither reaches its sk_rcvbuf:
    no pruning, no drop."""
    rows = [seg(0, 5000, n=100)]
    for k in range(3):
        rows += [seg((k + 1) * MS, 5100 + 100 * k, n=100),
                 seg((k + 1) * MS + 500 * US, 9000 + 100 * k, n=100, sport=444)]
    r = run(rows, *TCP_APP, "host.tcp-acks=false", "app[0].work-ns=1000000000",
            "app[0].rcvbuf=8000", "host.kernel=6.12")
    assert pk(r)["outcome"].to_list() == ["delivered"] * 7
    e = ext(r)
    assert (e["PruneCalled"], e["TCPRcvQDrop"], e["TCPZeroWindowDrop"]) == (0, 0, 0)
    assert r.counters["model"]["socket_max_queue"] == [6]


def test_small_mss_download_prunes_end_to_end(tmp_path: Path) -> None:
    """`replay synth https-download --size 536` (RFC 879's default MSS: 524-byte segments, each
    in its own 2304 + 256-byte ixgbe skb without GRO, over four times its payload in truesize)
    through `replay run` to a reader that spends 200 us per read of a 64 KiB buffer: the queue's
    truesize passes sk_rcvbuf long before the advertised window closes, so tcp_prune_queue runs
    (PruneCalled) and collapses the bloated skbs (TCPRcvCollapsed, tcp_collapse in the report).
    Every frame still gets one outcome (a queue once sized by the frames' truesize overflowed
    here: collapsing shrinks a queued segment's share below any frame's)."""
    pcap = tmp_path / "dl.pcap"
    _cli("synth", "https-download", "-o", str(pcap), "--size", "536", "--duration", "0.01",
         "--rate", "1G")
    run_dir = tmp_path / "run"
    _cli("run", str(pcap), "-o", str(run_dir), "--set", 'app[0].match="tcp sport 443"',
         "--set", "app[0].rcvbuf=65536", "--set", "app[0].work-ns=200000", "--set", "nic.gro=false")
    meta = json.loads((run_dir / "run.json").read_text())
    e = meta["counters"]["snmp"]["TcpExt"]
    # the reader copies a few hundred ns per read here, between 200 us of work: segments
    # rarely find the socket owned, and none is refused by the backlog's limit
    assert (e["PruneCalled"], e["TCPRcvCollapsed"], e["TCPBacklogDrop"]) == (7, 93, 0)
    packets = pl.read_parquet(run_dir / "packets.parquet")
    assert packets["outcome"].null_count() == 0 and packets.height == 3031
    text = _cli("report", str(run_dir), "--stdio")
    assert "TcpExtPruneCalled" in text and "tcp_collapse" in text
