"""Hand-computed TCP receive scenarios: the sequence space of tcp_data_queue (in order, out of
order, old data, partial overlap) with the counters net/ipv4/tcp_input.c keeps. Costs from the
round-number profile tests/data/round-costs.toml; segments of 1000 bytes, 1 ms apart (no GRO
merging: each is its own skb)."""

from __future__ import annotations

from typing import Any

import polars as pl

from tests.test_model_breadth import TCP_APP, pk, run, seg

MS = 1_000_000


def _run(seqs: list[int], *sets: str, syn: bool = True) -> tuple[pl.DataFrame, dict[str, Any]]:
    rows = ([seg(0, 999, flags=0x12, n=0)] if syn else []) + [
        seg((k + 1) * MS, q) for k, q in enumerate(seqs)]
    r = run(rows, *TCP_APP, *sets)
    return pk(r), r.counters["snmp"]


def test_out_of_order_held_then_delivered_when_the_gap_fills() -> None:
    # rcv_nxt = ISN 999 + 1 = 1000 from the SYN-ACK; 2000 and 3000 arrive before 1000
    df, snmp = _run([2000, 3000, 1000, 4000])
    assert df["outcome"].to_list() == ["consumed"] + ["delivered"] * 4
    ext = snmp["TcpExt"]
    assert (ext["TCPOFOQueue"], ext["TCPOFODrop"], ext["TCPOFOMerge"]) == (2, 0, 0)
    assert (ext["DelayedACKLost"], ext["TCPDSACKOldSent"]) == (0, 0)
    # the reader gets them in sequence order: the held segments after the one filling the gap
    app_t = df["t_done"].to_list()
    assert app_t[3] < app_t[1] < app_t[2] < app_t[4]
    # ACKs: the SYN-ACK's; every data skb in quickack mode (16 quick ACKs armed at the first
    # in-order data, 1000, the third; the two earlier out-of-order ones go at once as the first
    # dup-ACKs for rcv_nxt 1000 (tcp_sack_compress)): 1 + 4
    assert snmp["Tcp"]["OutSegs"] == 5 and snmp["Tcp"]["InSegs"] == 5


def test_old_data_dropped_partial_overlap_trimmed() -> None:
    # 1000, 2000 in order; 1000 again: all old -> TCP_OLD_DATA (rcv_wup = 3000 after the
    # quick ACK of 2000, end_seq 2000 before it -> tcp_validate_incoming's TCP_OLD_SEQUENCE);
    # 2500 (1000 bytes, to 3500): partly old, its new 500 bytes queued
    df, snmp = _run([1000, 2000, 1000, 2500])
    assert df["outcome"].to_list() == ["consumed", "delivered", "delivered", "dropped",
                                       "delivered"]
    assert df["drop_reason"].to_list()[3] == "TCP_OLD_SEQUENCE"
    assert df["drop_stage"].to_list()[3] == "l4"
    ext = snmp["TcpExt"]
    assert (ext["DelayedACKLost"], ext["TCPDSACKOldSent"]) == (1, 2)
    assert ext["TCPOFOQueue"] == 0


def test_old_data_within_rcv_wup_is_tcp_old_data() -> None:
    # no handshake: no quickack; rcv_nxt = 5000 from the first segment. 5000 arms the delayed
    # ACK (rcv_wup stays 5000); 5000 again ends at 6000 = rcv_nxt, not before rcv_wup:
    # tcp_data_queue's retransmit branch, TCP_OLD_DATA, and an ACK at once
    df, snmp = _run([5000, 5000], syn=False)
    assert df["outcome"].to_list() == ["delivered", "dropped"]
    assert df["drop_reason"].to_list() == [None, "TCP_OLD_DATA"]
    assert snmp["TcpExt"]["DelayedACKLost"] == 1
    # the dup's immediate ACK also covers the first: the delayed timer never fires
    assert snmp["Tcp"]["OutSegs"] == 1 and snmp["TcpExt"]["DelayedACKs"] == 0


def test_out_of_order_duplicates_merge_and_the_stale_ones_go() -> None:
    # rcv_nxt 1000; 3000 queued out of order; 3000 again: all its bytes queued -> TCP_OFOMERGE
    # (TCPOFOQueue counts it too, then TCPOFOMerge, TCPDSACKOfoSent); 1000 fills to 2000, not
    # to 3000: 3000 stays; 2000 fills: 3000 delivered; the trace ends with 6000 held: freed
    # with the socket (NOT_SPECIFIED)
    df, snmp = _run([3000, 3000, 1000, 2000, 6000])
    assert df["outcome"].to_list() == ["consumed", "delivered", "dropped", "delivered",
                                       "delivered", "dropped"]
    assert df["drop_reason"].to_list()[2] == "TCP_OFOMERGE"
    assert df["drop_reason"].to_list()[5] == "NOT_SPECIFIED"
    ext = snmp["TcpExt"]
    assert (ext["TCPOFOQueue"], ext["TCPOFOMerge"], ext["TCPDSACKOfoSent"]) == (3, 1, 1)


def test_in_order_tcp_unchanged() -> None:
    df, snmp = _run([1000 + 1000 * k for k in range(5)])
    assert df["outcome"].to_list() == ["consumed"] + ["delivered"] * 5
    assert snmp["TcpExt"]["TCPOFOQueue"] == 0 and snmp["TcpExt"]["DelayedACKLost"] == 0


def test_zero_window_drops_in_order_data() -> None:
    """rcvbuf 23040, each skb 2304 of truesize (ixgbe), the reader takes the first segment and
    then works for 1 s. Without the ACK model every segment is taken as ACKed, so the window is
    re-chosen after each: tcp_space = (23040 - rmem) / 2, never shrinking the right edge. The
    first segment's window 10368 puts the edge at 6000 + 10368 = 16368, the second's at 17368;
    from there each new window (free space 9216, 8064, ... 0) is smaller than what is left, so the
    edge stays at 17368. Segments 2..10 (1000 bytes) take rcv_nxt to 15000; segment 11 (2368
    bytes) ends at the edge with the buffer full (10 skbs = 23040, which still fits): window 0.
    Then 17368 is dropped (TCP_ZEROWINDOW), 18368 lies beyond the window (tcp_sequence:
    TCP_INVALID_SEQUENCE), and 17368's retransmission is dropped again."""
    rows = [seg((k + 1) * MS, 5000 + 1000 * k) for k in range(10)]
    rows += [seg(11 * MS, 15000, n=2368), seg(12 * MS, 17368), seg(13 * MS, 18368),
             seg(14 * MS, 17368)]
    r = run(rows, *TCP_APP, "host.tcp-acks=false", "app[0].work-ns=1000000000",
            "app[0].rcvbuf=23040")
    df = pk(r)
    assert df["outcome"].to_list() == ["delivered"] * 11 + ["dropped"] * 3
    assert df["drop_reason"].to_list()[11:] == ["TCP_ZEROWINDOW", "TCP_INVALID_SEQUENCE",
                                                "TCP_ZEROWINDOW"]
    ext = r.counters["snmp"]["TcpExt"]
    assert (ext["TCPZeroWindowDrop"], ext["TCPRcvQDrop"], ext["TCPOFOQueue"]) == (2, 0, 0)


def test_real_capture_with_a_segment_not_captured() -> None:
    """zeek__gap-data-missing.pcapng, taken as the LDAP client's host: the server's data is 1..211
    (frame 7), then 1553..1780 (frame 10: 211..1553 was not captured), 1780..1990 (frame 13) and
    frame 13 again (14, a retransmission). Here the gap never fills: 10 and 13 wait in the
    out-of-order queue until the trace ends (NOT_SPECIFIED when the socket goes), 14 finds all its
    bytes queued (TCP_OFOMERGE, TCPOFOMerge, TCPDSACKOfoSent). ACKs: the SYN-ACK's, then quickack
    for 7, 10, 13 and 14 (the handshake started it): 5."""
    from tests.test_model_breadth import _real, _run_capture

    r = _run_capture(_real("zeek__gap-data-missing.pcapng"),
                     'host.addresses=["2a00:6020:ad0b:8381:fd70:e2f9:f031:9dc4"]',
                     'app[0].match="tcp dport 49980"')
    df = pk(r).filter(pl.col("outcome") != "ignored")
    assert df["frame"].to_list() == [2, 6, 7, 10, 12, 13, 14, 18]
    assert df["outcome"].to_list() == ["consumed", "consumed", "delivered", "dropped", "consumed",
                                       "dropped", "dropped", "consumed"]
    reasons = df["drop_reason"].to_list()
    assert [reasons[i] for i in (3, 5, 6)] == ["NOT_SPECIFIED", "NOT_SPECIFIED", "TCP_OFOMERGE"]
    ext = r.counters["snmp"]["TcpExt"]
    assert (ext["TCPOFOQueue"], ext["TCPOFOMerge"], ext["TCPDSACKOfoSent"]) == (3, 1, 1)
    assert r.counters["snmp"]["Tcp"]["OutSegs"] == 5
