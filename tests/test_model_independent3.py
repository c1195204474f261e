"""Independent review scenarios, round 3 → expected counters worked out by hand from the kernel.

A third red-team pass over the receive-path model, on what tests/test_model_independent.py and
tests/test_model_independent2.py do not cover: the counters block as the kernel counts it (IRQ and
`ethtool -S` names per driver, IP/TCP counters per skb after GRO, `rx_dropped`), drop reasons and
stages for unwanted or malformed input (unknown ethertype and IP protocol, a bad TCP data
offset, TTL on local delivery, overlapping and duplicate fragments, the reassembly timer's ICMP,
frames to our MAC but another IP), busy polling's counters, exclusive wake-up order over the
threads of one socket, SO_REUSEPORT's reciprocal_scale over udp_ehashfn, CFS vs EEVDF against a
CPU hog, UDP GRO (UDP_GRO trains, the 64-segment cap, a zero checksum), VXLAN's second NET_RX
run before 6.4, two NAPIs against netdev_budget_usecs at HZ 1000 and 250, and queueing: periodic
bursts into a finite socket (D/D/1/K, drops per burst) and two threads on one socket (M/D/2).

Every expected number was derived from the kernel source (cited beside it: file and function,
read in the 6.19 tree unless a version is named) and the profile's round numbers
(tests/data/round-costs.toml, with entries replaced per scenario) before the model was run.
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
    MS_KEY,
    pk,
    profile_with,
    run,
    skb_sizes,
    src_for_queue,
    stream,
    toeplitz,
    tuple_bytes,
)
from tests.test_model_independent2 import cpu_df, l4_end

APP1 = ['app[0].match="udp dport 9000"', "app[0].cpu=1", "app[0].rcvbuf=1000000000"]
# everything but the reader's own work costs nothing: queueing arithmetic by hand
ZERO = {"fixed.syscall": 0, "fixed.consume": 0, "stage.copy": 0, "stage.app": 0,
        "fixed.wakeup": 0, "fixed.ctx_switch": 0, "latency.wakeup": 0, "latency.ipi": 0}  # fmt: skip


def slow_irq(tmp_path: Path, **extra: int) -> str:
    """round-costs with a 1 ms hard IRQ, so a burst lands during it and one poll takes it all."""
    entries = {"fixed.hardirq": 1_000_000, **{k.replace("__", "."): v for k, v in extra.items()}}
    return profile_with(tmp_path, "irq1ms" + "".join(f"-{v}" for v in extra.values()), entries)


def skb_groups(r: SimResult) -> list[list[int]]:
    """The frames of each skb (GRO super-packet), in the order the skbs left GRO (their first
    frame's l4 end), each list in frame order."""
    df = pk(r).sort("frame").with_columns(l4_end(pk(r).sort("frame")).alias("l4e"))
    g = df.group_by("skb").agg(pl.col("frame").sort(), pl.col("l4e").min()).sort("l4e")
    return [list(x) for x in g["frame"].to_list()]


# ---------------------------------------------------------------------------------------------
# 1. The counters block as the kernel counts it
# ---------------------------------------------------------------------------------------------

# (driver, IRQ action name of queue q, per-queue ethtool -S names, UDP hashed on the 4-tuple)
DRIVER_NAMES = [
    # ixgbe_request_msix_irqs: "%s-TxRx-%u" with netdev->name; ixgbe_get_strings:
    # "rx_queue_%u_packets" / "rx_queue_%u_bytes"; UDP RSS on L3 only (ixgbe_setup_mrqc)
    ("ixgbe", "eth0-TxRx-{q}", ("rx_queue_{q}_packets", "rx_queue_{q}_bytes"), False),
    # i40e_vsi_open: basename "%s-%s" of dev_driver_string and netdev->name, then
    # i40e_vsi_request_irq_msix: "%s-%s-%d" basename, "TxRx", rx_int_idx; i40e_get_stat_strings
    # -> i40e_add_stat_strings(.., "rx", i): "rx-%u.packets" / "rx-%u.bytes"
    ("i40e", "i40e-eth0-TxRx-{q}", ("rx-{q}.packets", "rx-{q}.bytes"), True),
    # mlx5 irq_pool: "mlx5_comp%d" then "%s@pci:%s" with pci_name; en_stats.c per ring
    # "rx%d_packets" / "rx%d_bytes"; MLX5_HASH_IP_L4PORTS for UDP (en/rss.c)
    ("mlx5", "mlx5_comp{q}@pci:0000:00:00.0", ("rx{q}_packets", "rx{q}_bytes"), True),
]


@pytest.mark.parametrize(("driver", "irq", "qnames", "udp_l4"), DRIVER_NAMES)
def test_irq_and_ethtool_names_and_per_cpu_counts(driver: str, irq: str, qnames: tuple[str, str],
                                                  udp_l4: bool) -> None:  # fmt: skip
    # 2 queues, IRQ affinity spread (queue q -> CPU q), no moderation, 12 UDP datagrams 100 us
    # apart from 12 source ports: one IRQ, one NET_RX run and one poll each, on the CPU of its
    # queue. With 2 queues and any power-of-two table, queue = indir[h & (size - 1)] with
    # indir[i] = i % 2 is h & 1 (ethtool_rxfh_indir_default). Counts per CPU:
    # /proc/interrupts one per IRQ raised (kernel/irq/proc.c), /proc/softirqs NET_RX one per
    # net_rx_action (handle_softirqs kstat_incr_softirqs_this_cpu), softnet processed one per
    # skb (__netif_receive_skb_core). rx_bytes: the frame without FCS (60 B; ixgbe/i40e add
    # skb->len before eth_type_trans, mlx5 cqe_bcnt).
    rows, expect = [], [0, 0]
    for k in range(12):
        sport = 4000 + 17 * k
        rows.append({"ts_ns": 100_000 * k, "sport": sport})
        data = tuple_bytes("10.0.0.2", "10.0.0.1", sport, 9000) if udp_l4 else \
            tuple_bytes("10.0.0.2", "10.0.0.1")
        expect[toeplitz(MS_KEY, data) & 1] += 1
    extra = ["nic.rx-frames=1"] if driver == "mlx5" else []
    r = run(rows, f'nic.driver="{driver}"', "nic.combined=2", "host.cpus=2", "nic.rx-usecs=0",
            "nic.adaptive-rx=false", *extra, *APP1)  # fmt: skip
    c = r.counters
    assert c["interrupts"] == {irq.format(q=0): [expect[0], 0], irq.format(q=1): [0, expect[1]]}
    assert c["softirqs"]["NET_RX"] == expect
    assert [s["processed"] for s in c["softnet_stat"]] == expect
    e = c["ethtool"]
    assert (e["rx_packets"], e["rx_bytes"]) == (12, 720)
    for q in (0, 1):
        assert e[qnames[0].format(q=q)] == expect[q]
        assert e[qnames[1].format(q=q)] == 60 * expect[q]
    if udp_l4:  # the 4-tuple spreads the ports (a 2-tuple hash would put all on one queue)
        assert 0 < expect[0] < 12


def test_ixgbe_rx_dropped_counts_the_core_drops(tmp_path: Path) -> None:
    # 3 frames of an ethertype no protocol handler takes (0x88B5, IEEE local experimental) to
    # our MAC, among 4 UDP datagrams. __netif_receive_skb_core: no ptype -> `drop:` ->
    # dev_core_stats_rx_dropped_inc + kfree_skb_reason(UNHANDLED_PROTO) (softnet processed
    # counted them at another_round). ixgbe's ethtool -S "rx_dropped" is
    # IXGBE_NETDEV_STAT(rx_dropped) of dev_get_stats() (ixgbe_get_ethtool_stats), which adds
    # core_stats->rx_dropped: 3. rx_packets counts all 7 (the driver cleaned them); Ip
    # InReceives only the 4 IP datagrams.
    odd = {"ethertype": 0x88B5, "ip_version": 0, "proto": 0, "sport": None, "dport": None}
    rows = [{"ts_ns": 20_000 * k, **(odd if k % 2 else {})} for k in range(7)]
    r = run(rows, "host.cpus=2", "nic.combined=1", *APP1,
            'host.addresses=["10.0.0.1", "02:00:00:00:00:01"]')  # fmt: skip
    df = pk(r).sort("frame")
    assert df["outcome"].to_list() == ["delivered", "dropped"] * 3 + ["delivered"]
    drops = df.filter(pl.col("outcome") == "dropped")
    assert set(drops["drop_reason"].to_list()) == {"UNHANDLED_PROTO"}
    assert set(drops["drop_stage"].to_list()) == {"netif"}
    c = r.counters
    assert c["softnet_stat"][0]["processed"] == 7
    assert c["snmp"]["Ip"]["InReceives"] == 4
    assert (c["ethtool"]["rx_packets"], c["ethtool"]["rx_dropped"]) == (7, 3)


def test_ixgbe_rx_dropped_includes_backlog_drops(tmp_path: Path) -> None:
    # enqueue_to_backlog's drop path: dev_core_stats_rx_dropped_inc(skb->dev) as well as the
    # target's softnet "dropped". RPS to CPU 1 with netdev_max_backlog 10, 40 frames in one poll
    # (test_model_independent2.py: 29 CPU_BACKLOG drops): rx_dropped 29.
    prof = slow_irq(tmp_path)
    rows = [{"ts_ns": 0} for _ in range(40)]
    r = run(rows, "host.cpus=4", "nic.combined=1", 'sysfs.rps_cpus=["1-1"]',
            "net.core.netdev_max_backlog=10", 'app[0].match="udp dport 9000"', "app[0].cpu=2",
            "app[0].rcvbuf=1000000000", profile=prof)  # fmt: skip
    assert [s["dropped"] for s in r.counters["softnet_stat"]] == [0, 29, 0, 0]
    assert r.counters["ethtool"]["rx_dropped"] == 29


@pytest.mark.parametrize(("proto", "skbs"), [(6, 1), (17, 10)])
def test_ip_and_l4_counters_count_skbs_after_gro(tmp_path: Path, proto: int, skbs: int) -> None:
    # 10 frames in one poll. TCP: one flow, PSH on the last: one GRO skb of 10 segments. UDP
    # without UDP_GRO: 10 skbs (udp_gro_receive: no socket with GRO enabled, no GRO_UDP_FWD).
    # ip_rcv_core counts IPSTATS_MIB_IN (InReceives) once per skb (__IP_UPD_PO_STATS(..., skb->len)),
    # ip_protocol_deliver_rcu InDelivers once per skb, tcp_v4_rcv TCP_MIB_INSEGS once per skb;
    # the NIC counted 10 frames (rx_packets).
    rows = stream(10) if proto == 6 else [{"ts_ns": 0} for _ in range(10)]
    match = "tcp dport 5000" if proto == 6 else "udp dport 9000"
    r = run(rows, "host.cpus=2", "nic.combined=1", f'app[0].match="{match}"', "app[0].cpu=1",
            "app[0].rcvbuf=100000000", profile=slow_irq(tmp_path))  # fmt: skip
    c = r.counters
    assert c["softnet_stat"][0]["processed"] == skbs
    assert (c["snmp"]["Ip"]["InReceives"], c["snmp"]["Ip"]["InDelivers"]) == (skbs, skbs)
    assert c["snmp"]["Tcp"]["InSegs"] == (skbs if proto == 6 else 0)
    assert c["snmp"]["Udp"]["InDatagrams"] == (skbs if proto == 17 else 0)
    assert c["ethtool"]["rx_packets"] == 10


# ---------------------------------------------------------------------------------------------
# 2. Unwanted or malformed input: the drop reason, its stage and the counters
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("ratemask", "sent", "limited"), [(6168, 6, 2), (0, 8, 0)])
def test_unknown_ip_protocol_gets_a_protocol_unreachable(ratemask: int, sent: int,
                                                         limited: int) -> None:  # fmt: skip
    # 8 IPv4 packets of protocol 253 (RFC 3692 experimental; no inet_protos handler, no raw
    # socket) from one source, 10 us apart. ip_protocol_deliver_rcu: `if (!raw) { if
    # (xfrm4_policy_check(...)) { __IP_INC_STATS(net, IPSTATS_MIB_INUNKNOWNPROTOS);
    # icmp_send(skb, ICMP_DEST_UNREACH, ICMP_PROT_UNREACH, 0); } kfree_skb_reason(skb,
    # SKB_DROP_REASON_IP_NOPROTO); }` -- no InDelivers (that is counted only on the handler
    # path and for a raw socket's consume). The ICMP messages meet the limits of net/ipv4/icmp.c
    # (type 3 is in icmp_ratemask 0x1818): the global bucket starts full (50), the source's new
    # inet_peer has XRLIM_BURST_FACTOR = 6 tokens of icmp_ratelimit (1 s = HZ jiffies) each and
    # gains one per jiffy: 70 us gives none back. So 6 leave, 2 are stopped by the per-host
    # limit: OutDestUnreachs 6 = OutMsgs, OutRateLimitHost 2 (6.2+), IcmpMsg OutType3 6.
    # With net.ipv4.icmp_ratemask = 0, icmpv4_mask_allow lets every type through before either
    # limit is asked: all 8 leave.
    rows = [{"ts_ns": 10_000 * k, "proto": 253, "sport": None, "dport": None, "payload_len": 26}
            for k in range(8)]  # fmt: skip
    r = run(rows, "host.cpus=2", "nic.combined=1", *APP1, 'host.addresses=["10.0.0.1"]',
            f"net.ipv4.icmp_ratemask={ratemask}")  # fmt: skip
    df = pk(r)
    assert set(df["drop_reason"].to_list()) == {"IP_NOPROTO"}
    assert set(df["drop_stage"].to_list()) == {"local"}
    s = r.counters["snmp"]
    assert (s["Ip"]["InReceives"], s["Ip"]["InUnknownProtos"], s["Ip"]["InDelivers"]) == (8, 8, 0)
    assert (s["Icmp"]["OutMsgs"], s["Icmp"]["OutDestUnreachs"]) == (sent, sent)
    assert s["Icmp"]["OutRateLimitHost"] == limited
    assert s["IcmpMsg"]["OutType3"] == sent


V6 = {"ip_version": 6, "ethertype": 0x86DD, "src": "2001:db8::2", "dst": "2001:db8::1",
      "ip_hlen": 40}  # fmt: skip


def test_ipv6_unknown_next_header_gets_a_parameter_problem() -> None:
    # The same 8 packets over IPv6 (next header 253). ip6_protocol_deliver_rcu: no inet6_protos
    # handler, no raw socket -> `if (xfrm6_policy_check(...)) { __IP6_INC_STATS(...,
    # IPSTATS_MIB_INUNKNOWNPROTOS); icmpv6_send(skb, ICMPV6_PARAMPROB, ICMPV6_UNK_NEXTHDR,
    # nhoff); }` then kfree_skb_reason(IP_NOPROTO). icmpv6_xrlim_allow: type 4 is in the default
    # ratemask ("0-1,3-127"); the peer's burst is XRLIM_BURST_FACTOR = 6 whatever the
    # prefix-scaled interval: 6 leave (Icmp6OutParmProblems, Icmp6OutType4), 2 limited.
    rows = [{"ts_ns": 10_000 * k, "proto": 253, "sport": None, "dport": None, "payload_len": 26,
             "wire_len": 80, "cap_len": 80, **V6} for k in range(8)]  # fmt: skip
    r = run(rows, "host.cpus=2", "nic.combined=1", *APP1, 'host.addresses=["2001:db8::1"]')
    assert set(pk(r)["drop_reason"].to_list()) == {"IP_NOPROTO"}
    s6 = r.counters["snmp6"]
    assert (s6["Ip6InReceives"], s6["Ip6InUnknownProtos"], s6["Ip6InDelivers"]) == (8, 8, 0)
    assert (s6["Icmp6OutMsgs"], s6["Icmp6OutParmProblems"], s6["Icmp6OutType4"]) == (6, 6, 6)
    assert s6["Icmp6OutRateLimitHost"] == 2
    assert r.counters["snmp"]["Icmp"]["OutMsgs"] == 0


def test_prerouting_drop_counts_in_receives_only() -> None:
    # iptables -t raw -A PREROUTING -j DROP: ip_rcv_core has counted InReceives, then
    # NF_HOOK(NF_INET_PRE_ROUTING) returns NF_DROP -> kfree_skb_reason(NETFILTER_DROP) in the ip
    # stage; no SNMP counter of its own, nothing reaches routing or UDP (no NoPorts, no ICMP).
    rows = [{"ts_ns": 10_000 * k, "dport": 7777 if k % 2 else 9000} for k in range(6)]
    r = run(rows, "host.cpus=2", "nic.combined=1", *APP1, "netfilter.prerouting-drop=true",
            'host.addresses=["10.0.0.1"]')  # fmt: skip
    df = pk(r)
    assert set(df["drop_reason"].to_list()) == {"NETFILTER_DROP"}
    assert set(df["drop_stage"].to_list()) == {"ip"}
    assert df["cpu_route"].is_null().all()
    s = r.counters["snmp"]
    assert (s["Ip"]["InReceives"], s["Ip"]["InDelivers"], s["Ip"]["InHdrErrors"]) == (6, 0, 0)
    assert (s["Udp"]["NoPorts"], s["Udp"]["InDatagrams"], s["Icmp"]["OutMsgs"]) == (0, 0, 0)


def test_igmp_has_a_handler() -> None:
    # An IGMPv2 general query (IP protocol 2) to 224.0.0.1, as every multicast router sends
    # every 125 s. inet_protos[IPPROTO_IGMP] is igmp_protocol (af_inet.c inet_init registers it
    # under CONFIG_IP_MULTICAST, which every distribution kernel sets): igmp_rcv ->
    # igmp_heard_query, then consume_skb; ip_protocol_deliver_rcu counts InDelivers. Not an
    # unknown protocol: no InUnknownProtos, no IP_NOPROTO drop.
    rows = [{"ts_ns": 10_000 * k, "proto": 2, "sport": None, "dport": None, "dst": "224.0.0.1",
             "dst_mac": bytes.fromhex("01005e000001"), "ttl": 1, "payload_len": 8}
            for k in range(3)]  # fmt: skip
    r = run(rows, "host.cpus=2", "nic.combined=1", *APP1, 'host.addresses=["10.0.0.1"]')
    df = pk(r)
    assert df["outcome"].to_list() == ["consumed"] * 3
    ip = r.counters["snmp"]["Ip"]
    assert (ip["InReceives"], ip["InDelivers"], ip["InUnknownProtos"]) == (3, 3, 0)


def test_bad_tcp_data_offset_is_a_tcp_error() -> None:
    # A TCP header whose data offset is 4 (16 bytes, < sizeof(struct tcphdr)): the IP header is
    # fine, so ip_rcv_core and ip_local_deliver pass it (Ip InReceives, and InDelivers after the
    # handler returns in ip_protocol_deliver_rcu); tcp_v4_rcv counts TCP_MIB_INSEGS ("Count it
    # even if it's bad"), then `if (unlikely(th->doff < sizeof(struct tcphdr) / 4)) {
    # drop_reason = SKB_DROP_REASON_PKT_TOO_SMALL; goto bad_packet; }` -> TCP_MIB_INERRS and
    # sk_skb_reason_drop, no RST (bad_packet is inside the csum branch, before the reset). Not
    # an IP header error: InHdrErrors 0, InTruncatedPkts 0.
    rows = [{"ts_ns": 0, "proto": 6, "sport": 443, "dport": 5000, "tcp_flags": 0x18,
             "tcp_seq": 1000, "tcp_ack": 77, "tcp_hlen": 16, "payload_len": 0,
             "error": "bad-tcp-offset"},
            {"ts_ns": 20_000, "proto": 6, "sport": 443, "dport": 5000, "tcp_flags": 0x18,
             "tcp_seq": 1000, "tcp_ack": 77, "payload_len": 6, "wire_len": 60, "cap_len": 60}]  # fmt: skip
    r = run(rows, "host.cpus=2", "nic.combined=1", 'app[0].match="tcp dport 5000"',
            "app[0].cpu=1", 'host.addresses=["10.0.0.1"]')  # fmt: skip
    df = pk(r).sort("frame")
    assert df["outcome"].to_list() == ["dropped", "delivered"]
    assert (df["drop_stage"][0], df["drop_reason"][0]) == ("l4", "PKT_TOO_SMALL")
    s = r.counters["snmp"]
    assert (s["Ip"]["InReceives"], s["Ip"]["InDelivers"], s["Ip"]["InHdrErrors"]) == (2, 2, 0)
    assert s["IpExt"]["InTruncatedPkts"] == 0
    assert (s["Tcp"]["InSegs"], s["Tcp"]["InErrs"], s["Tcp"]["OutRsts"]) == (2, 1, 0)


@pytest.mark.parametrize("ttl", [0, 1, 255])
def test_ttl_is_not_checked_on_local_delivery(ttl: int) -> None:
    # ip_rcv_core / ip_rcv_finish / ip_local_deliver never look at the TTL; only ip_forward
    # does (`if (ip_hdr(skb)->ttl <= 1) goto too_many_hops`). A datagram for us with TTL 0 or 1
    # is delivered like any other, and no ICMP time exceeded leaves.
    rows = [{"ts_ns": 10_000 * k, "ttl": ttl} for k in range(3)]
    r = run(rows, "host.cpus=2", "nic.combined=1", *APP1, 'host.addresses=["10.0.0.1"]')
    assert (pk(r)["outcome"] == "delivered").all()
    assert r.counters["snmp"]["Icmp"]["OutMsgs"] == 0


def test_frame_to_our_mac_but_another_ip_is_an_address_error() -> None:
    # The NIC's filter passes a frame to its own MAC whatever the IP; ip_rcv_core counts
    # InReceives, ip_route_input_slow finds no local route and, forwarding off (the default),
    # sets err = -EHOSTUNREACH -> no_route -> a dst whose input is ip_error, which counts
    # IPSTATS_MIB_INADDRERRORS and frees the skb with SKB_DROP_REASON_IP_INADDRERRORS (net/ipv4/
    # route.c; no ICMP: `goto out` when !IN_DEV_FORWARD). A frame to another MAC stays ignored.
    rows = [{"ts_ns": 0, "dst": "10.0.0.99"}, {"ts_ns": 10_000},
            {"ts_ns": 20_000, "dst": "10.0.0.98", "dst_mac": bytes.fromhex("020000000009")}]
    r = run(rows, "host.cpus=2", "nic.combined=1", *APP1,
            'host.addresses=["10.0.0.1", "02:00:00:00:00:01"]')  # fmt: skip
    df = pk(r).sort("frame")
    assert df["outcome"].to_list() == ["dropped", "delivered", "ignored"]
    assert (df["drop_stage"][0], df["drop_reason"][0]) == ("route", "IP_INADDRERRORS")
    ip = r.counters["snmp"]["Ip"]
    assert (ip["InReceives"], ip["InAddrErrors"], ip["InDelivers"]) == (2, 1, 1)
    assert r.counters["snmp"]["Icmp"]["OutMsgs"] == 0


def test_ipv6_frame_to_our_mac_but_another_address_is_an_address_error() -> None:
    # IPv6: ip6_rcv_core counts Ip6InReceives; ip6_route_input finds the default route, whose
    # input is ip6_forward; forwarding off -> `goto error`: IPSTATS_MIB_INADDRERRORS and
    # SKB_DR_SET(reason, IP_INADDRERRORS) (net/ipv6/ip6_output.c).
    v6 = {"ip_version": 6, "ethertype": 0x86DD, "src": "2001:db8::2", "ip_hlen": 40,
          "wire_len": 80, "cap_len": 80}  # fmt: skip
    rows = [{"ts_ns": 0, **v6, "dst": "2001:db8::99"}, {"ts_ns": 10_000, **v6, "dst": "2001:db8::1"}]
    r = run(rows, "host.cpus=2", "nic.combined=1", *APP1,
            'host.addresses=["2001:db8::1", "02:00:00:00:00:01"]')  # fmt: skip
    df = pk(r).sort("frame")
    assert df["outcome"].to_list() == ["dropped", "delivered"]
    assert (df["drop_stage"][0], df["drop_reason"][0]) == ("route", "IP_INADDRERRORS")
    s6 = r.counters["snmp6"]
    assert (s6["Ip6InReceives"], s6["Ip6InAddrErrors"], s6["Ip6InDelivers"]) == (2, 1, 1)


def _frag(ts: int, off: int, mf: bool, ident: int = 7) -> dict[str, Any]:
    from tests.test_model_breadth import frag

    return frag(ts, off, mf, ident=ident)


def test_overlapping_fragment_kills_the_queue() -> None:
    # Datagram 7: A [0, 1488) with MF (1480 bytes of IP payload), then B at offset 1000 (MF),
    # then the last fragment C at 2960. ip_frag_queue -> inet_frag_queue_insert: B ends past
    # the tail run (1480 < 2480) and starts inside it (1000 < 1480) -> IPFRAG_OVERLAP ->
    # insert_error: IPSTATS_MIB_REASM_OVERLAPS, discard_qp: inet_frag_kill + REASMFAILS,
    # kfree_skb_reason(B, NOT_SPECIFIED) (SKB_DR(reason) initialises it so). The killed queue
    # is destroyed without INET_FRAG_DROP: inet_frag_destroy purges A with SKB_CONSUMED.
    # C then finds no queue (inet_frag_kill unhashed it): a new one, which never completes;
    # ip_expire 30 s later: REASMFAILS, REASMTIMEOUT, C freed FRAG_REASM_TIMEOUT, and no ICMP
    # (not INET_FRAG_FIRST_IN). Every fragment counted REASMREQDS in ip_defrag.
    rows = [_frag(0, 0, True), _frag(10_000, 1000, True), _frag(20_000, 2960, False)]
    r = run(rows, "host.cpus=2", "nic.combined=1", *APP1)
    df = pk(r).sort("frame")
    assert df["outcome"].to_list() == ["consumed", "dropped", "dropped"]
    assert df["drop_reason"].to_list()[1:] == ["NOT_SPECIFIED", "FRAG_REASM_TIMEOUT"]
    assert set(df["drop_stage"].to_list()[1:]) == {"local"}
    ip, ext = r.counters["snmp"]["Ip"], r.counters["snmp"]["IpExt"]
    assert (ip["ReasmReqds"], ip["ReasmOKs"], ip["ReasmFails"], ip["ReasmTimeout"]) == (3, 0, 2, 1)
    assert ext["ReasmOverlaps"] == 1
    assert ip["InDelivers"] == 0
    assert r.counters["snmp"]["Icmp"]["OutMsgs"] == 0


def test_duplicate_fragment_is_dropped_and_the_datagram_completes() -> None:
    # A, A again, B, C. The second A: inet_frag_queue_insert's search finds it inside the run
    # [0, 1480) -> IPFRAG_DUP -> kfree_skb_reason(DUP_FRAG), the queue kept, no REASMFAILS.
    # C completes the datagram: REASMOKS 1, delivered once (InDelivers 1, Udp InDatagrams 1).
    rows = [_frag(0, 0, True), _frag(10_000, 0, True), _frag(20_000, 1480, True),
            _frag(30_000, 2960, False)]  # fmt: skip
    r = run(rows, "host.cpus=2", "nic.combined=1", *APP1)
    df = pk(r).sort("frame")
    assert df["outcome"].to_list() == ["consumed", "dropped", "consumed", "delivered"]
    assert (df["drop_stage"][1], df["drop_reason"][1]) == ("local", "DUP_FRAG")
    ip = r.counters["snmp"]["Ip"]
    assert (ip["ReasmReqds"], ip["ReasmOKs"], ip["ReasmFails"], ip["InDelivers"]) == (4, 1, 0, 1)
    assert r.counters["snmp"]["Udp"]["InDatagrams"] == 1


@pytest.mark.parametrize(("first_in", "timeouts"), [(True, 1), (False, 0)])
def test_reassembly_timeout_sends_time_exceeded_only_with_the_first_fragment(
        first_in: bool, timeouts: int) -> None:  # fmt: skip
    # One fragment of datagram 7 alone; ipfrag_time 30 s later ip_expire: REASMFAILS,
    # REASMTIMEOUT, then `if (!(qp->q.flags & INET_FRAG_FIRST_IN)) goto out;` -- only with the
    # first fragment in does it route the head again and icmp_send(ICMP_TIME_EXCEEDED,
    # ICMP_EXC_FRAGTIME) ("Only an end host needs to send an ICMP Fragment Reassembly Timeout
    # message, per RFC792"; the route is local). Type 11 is in icmp_ratemask (0x1818): the
    # source's fresh inet_peer lets it through. Icmp OutTimeExcds and OutMsgs 1, IcmpMsg
    # OutType11 1.
    rows = [_frag(0, 0 if first_in else 2960, first_in)]
    r = run(rows, "host.cpus=2", "nic.combined=1", *APP1)
    df = pk(r)
    assert df["drop_reason"].to_list() == ["FRAG_REASM_TIMEOUT"]
    s = r.counters["snmp"]
    assert (s["Ip"]["ReasmFails"], s["Ip"]["ReasmTimeout"]) == (1, 1)
    assert s["Icmp"]["OutMsgs"] == timeouts
    assert s["Icmp"].get("OutTimeExcds", 0) == timeouts
    assert s.get("IcmpMsg", {}).get("OutType11", 0) == timeouts


def test_second_last_fragment_with_another_end_kills_the_queue() -> None:
    # A [0, 1480) MF, C the last fragment at 2960 (end 4008: q.len 4008, LAST_IN), then C' another
    # last fragment at 2960 but 500 bytes long (end 3460). ip_frag_queue: `if ((flags & IP_MF)
    # == 0) { if (end < qp->q.len || ((qp->q.flags & INET_FRAG_LAST_IN) && end != qp->q.len))
    # goto discard_qp; }` -> inet_frag_kill, REASMFAILS (no REASM_OVERLAPS: that is
    # insert_error's), C' freed NOT_SPECIFIED, A and C purged as consumed (no INET_FRAG_DROP).
    # B (1480, MF) then opens a new queue that never completes: ip_expire 30 s on (REASMFAILS,
    # REASMTIMEOUT; no ICMP, not FIRST_IN).
    short = {**_frag(20_000, 2960, False), "payload_len": 500}
    rows = [_frag(0, 0, True), _frag(10_000, 2960, False), short, _frag(30_000, 1480, True)]
    r = run(rows, "host.cpus=2", "nic.combined=1", *APP1)
    df = pk(r).sort("frame")
    assert df["outcome"].to_list() == ["consumed", "consumed", "dropped", "dropped"]
    assert df["drop_reason"].to_list()[2:] == ["NOT_SPECIFIED", "FRAG_REASM_TIMEOUT"]
    ip = r.counters["snmp"]["Ip"]
    assert (ip["ReasmReqds"], ip["ReasmOKs"], ip["ReasmFails"], ip["ReasmTimeout"]) == (4, 0, 2, 1)
    assert r.counters["snmp"]["IpExt"]["ReasmOverlaps"] == 0


def test_ipv6_reassembly_timeout_sends_time_exceeded() -> None:
    # The first fragment of an IPv6 datagram alone: ip6frag_expire_frag_queue after
    # ip6frag_time (60 s): Ip6ReasmFails, Ip6ReasmTimeout, and with INET_FRAG_FIRST_IN
    # icmpv6_send(ICMPV6_TIME_EXCEED, ICMPV6_EXC_FRAGTIME): Icmp6OutTimeExcds 1, Icmp6OutType3 1.
    from tests.test_model_breadth import frag

    rows = [frag(0, 0, True, src="2001:db8::2", dst="2001:db8::1", v6=True)]
    r = run(rows, "host.cpus=2", "nic.combined=1", *APP1, 'host.addresses=["2001:db8::1"]')
    df = pk(r)
    assert df["drop_reason"].to_list() == ["FRAG_REASM_TIMEOUT"]
    assert int(df["t_done"][0]) >= 60_000_000_000
    s6 = r.counters["snmp6"]
    assert (s6["Ip6ReasmFails"], s6["Ip6ReasmTimeout"]) == (1, 1)
    assert (s6["Icmp6OutMsgs"], s6["Icmp6OutTimeExcds"], s6["Icmp6OutType3"]) == (1, 1, 1)


def test_ipv6_gro_merges_across_a_destination_options_header(tmp_path: Path) -> None:
    # IPv6 TCP with an 8-byte Destination Options header (ip_hlen 48) on every segment.
    # ipv6_gro_receive: inet6_offloads[NEXTHDR_DEST] has no gro_receive (exthdrs_offload.c,
    # INET6_PROTO_GSO_EXTHDR only) -> ipv6_gso_pull_exthdrs pulls it and TCP's gro_receive
    # runs; the flows match when the extension headers are byte-equal (the memcmp over nlen -
    # sizeof(struct ipv6hdr)). 10 segments, PSH on the last: one skb.
    rows = stream(10)
    for row in rows:
        row.update(ip_version=6, ethertype=0x86DD, src="2001:db8::2", dst="2001:db8::1",
                   ip_hlen=48, wire_len=1530, cap_len=1530)  # fmt: skip
    r = run(rows, "host.cpus=2", "nic.combined=1", 'host.addresses=["2001:db8::1"]',
            'app[0].match="tcp dport 5000"', "app[0].cpu=1", "app[0].rcvbuf=100000000",
            profile=slow_irq(tmp_path))  # fmt: skip
    assert skb_sizes(r) == [10]
    assert r.counters["snmp6"]["Ip6InReceives"] == 1


# ---------------------------------------------------------------------------------------------
# 3. Busy polling: who polls, who counts (net/core/dev.c napi_busy_loop, busy_poll_stop;
#    include/net/busy_poll.h)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("busy_read", "processed", "net_rx", "bprx"),
                         [(200, [1, 5], [1, 0], 5), (50, [6, 0], [6, 0], 0)])  # fmt: skip
def test_busy_read_counters(busy_read: int, processed: list[int], net_rx: list[int],
                            bprx: int) -> None:  # fmt: skip
    # 6 datagrams 100 us apart, no moderation, reader on CPU 1, net.core.busy_read = sk_ll_usec.
    # Datagram 1: the socket has no napi_id yet (sk_mark_napi_id_once at its first skb): the IRQ
    # path on CPU 0. Then each recvmsg that finds the queue empty busy-polls the NAPI for
    # sk_ll_usec (busy_loop_current_time in 1024 ns units).
    # - 200 us > the 100 us gap: the loop owns the NAPI (SCHED | IN_BUSY_POLL) when each later
    #   datagram comes. The vector was re-armed by the last napi_complete_done, so the IRQ
    #   still fires (interrupts 6 on CPU 0), but napi_schedule_prep finds SCHED and only sets
    #   MISSED: no NET_RX. The reader's napi->poll takes the datagram in its own context:
    #   __netif_receive_skb_core counts processed on CPU 1; __napi_busy_loop adds the poll's
    #   work to LINUX_MIB_BUSYPOLLRXPACKETS (5). busy_poll_stop's last poll completes (IRQ
    #   re-armed) and is not counted.
    # - 50 us (51.2 us) < the gap: the loop times out first, busy_poll_stop releases the NAPI
    #   and re-arms; every datagram takes the IRQ path: NET_RX 6, processed on CPU 0, 0 polled.
    rows = [{"ts_ns": 100_000 * k} for k in range(6)]
    r = run(rows, 'nic.driver="generic"', "nic.rx-usecs=0", "host.cpus=2", "nic.combined=1",
            f"net.core.busy_read={busy_read}", *APP1)  # fmt: skip
    c = r.counters
    assert (pk(r)["outcome"] == "delivered").all()
    assert c["interrupts"] == {"eth0-rx-0": [6, 0]}
    assert c["softirqs"]["NET_RX"] == net_rx
    assert [s["processed"] for s in c["softnet_stat"]] == processed
    assert c["snmp"]["TcpExt"]["BusyPollRxPackets"] == bprx


@pytest.mark.parametrize(("cqe", "delay"), [(True, 8_000), (False, 0)])
def test_mlx5_dim_starts_at_profile_1_whatever_rx_usecs(cqe: bool, delay: int) -> None:
    # mlx5 with adaptive-rx (DIM) on: the channel's CQ moderation comes from
    # net_dim_get_def_rx_moderation(cq_period_mode) (lib/dim/net_dim.c NET_DIM_DEF_PROFILE_CQE /
    # _EQE = 1), not from ethtool's rx-usecs (50 here): CQE mode {8 us, 128 pkts}, EQE mode
    # {8 us, 256 pkts}. DIM takes its first decision after NET_DIM_NEVENTS = 64 interrupts: 20
    # frames 16 us apart (visible at c_k = 16000 k + 1067) all see profile 1.
    # CQE mode: the 8 us period starts at the first completion: every frame alone, IRQ at
    # c_k + 8 us. EQE mode: the period runs from the last interrupt, 16 us > 8 us ago: at once.
    rows = [{"ts_ns": 16_000 * k} for k in range(20)]
    r = run(rows, 'nic.driver="mlx5"', "nic.combined=1", "nic.rx-usecs=50", "nic.rx-frames=128",
            "nic.adaptive-rx=true", f"nic.rx-cqe-moder={'true' if cqe else 'false'}",
            "nic.rx=1024", *APP1, "host.cpus=2")  # fmt: skip
    irqs = sorted({t for t in pk(r)["t_irq"].to_list() if t is not None})
    assert irqs == [16_000 * k + 1067 + delay for k in range(20)]


# ---------------------------------------------------------------------------------------------
# 4. Several threads on one socket; SO_REUSEPORT groups
# ---------------------------------------------------------------------------------------------


def _reader_cpus(r: SimResult) -> list[int]:
    """The CPU of each datagram's copy (skb_copy_datagram_iter), in frame order."""
    cpu = cpu_df(r).filter(pl.col("symbol") == "skb_copy_datagram_iter").sort("start")
    out: list[int] = []
    for c, n in zip(cpu["cpu"].to_list(), cpu["frames"].to_list(), strict=True):
        out += [c] * n
    return out


def test_exclusive_wakeup_takes_the_longest_waiting_thread() -> None:
    # threads = 3 on one UDP socket (pinned to CPUs 1, 2, 3). A reader that finds the queue
    # empty sleeps in __skb_wait_for_more_packets with prepare_to_wait_exclusive, which adds
    # it at the TAIL of sk_sleep; sock_def_readable -> __wake_up_common wakes the first
    # exclusive waiter from the HEAD (nr_exclusive 1; receiver_wake_function ->
    # autoremove_wake_function takes it off). So the wait queue is FIFO: with work 50 us and
    # datagrams every 100 us every thread is idle at each arrival, and they take turns:
    # thread 0, 1, 2, 0, 1, 2 (CPUs 1, 2, 3, 1, 2, 3), not the last one to sleep.
    rows = [{"ts_ns": 100_000 * k} for k in range(6)]
    r = run(rows, "host.cpus=4", "nic.combined=1", 'app[0].match="udp dport 9000"',
            "app[0].cpu=1", "app[0].threads=3", "app[0].work-ns=50000")  # fmt: skip
    assert _reader_cpus(r) == [1, 2, 3, 1, 2, 3]


def _rol32(x: int, k: int) -> int:
    return ((x << k) | (x >> (32 - k))) & 0xFFFFFFFF


def _jhash_3words(a: int, b: int, c: int, initval: int) -> int:
    """include/linux/jhash.h: jhash_3words -> __jhash_nwords(a, b, c, initval + JHASH_INITVAL
    (0xdeadbeef) + (3 << 2)): a, b, c += that, then __jhash_final. Written here from the header,
    not taken from the model."""
    m = 0xFFFFFFFF
    iv = (initval + 0xDEADBEEF + 12) & m
    a, b, c = (a + iv) & m, (b + iv) & m, (c + iv) & m
    c ^= b
    c = (c - _rol32(b, 14)) & m
    a ^= c
    a = (a - _rol32(c, 11)) & m
    b ^= a
    b = (b - _rol32(a, 25)) & m
    c ^= b
    c = (c - _rol32(b, 16)) & m
    a ^= c
    a = (a - _rol32(c, 4)) & m
    b ^= a
    b = (b - _rol32(a, 14)) & m
    c ^= b
    c = (c - _rol32(b, 24)) & m
    return c


def _udp_ehashfn(laddr: str, lport: int, faddr: str, fport: int, secret: int) -> int:
    """udp_ehashfn -> __inet_ehashfn(laddr, lport, faddr, fport, secret) = jhash_3words(
    (__force u32) laddr, (__force u32) faddr, (u32) lport << 16 | (__force u32) fport): on
    little-endian x86 a __be32 address a.b.c.d reads as a | b << 8 | c << 16 | d << 24 and the
    __be16 source port is byte-swapped; lport is the host-order destination port."""
    import ipaddress

    la = int.from_bytes(ipaddress.ip_address(laddr).packed, "little")
    fa = int.from_bytes(ipaddress.ip_address(faddr).packed, "little")
    fp = int.from_bytes(fport.to_bytes(2, "big"), "little")
    return _jhash_3words(la, fa, ((lport << 16) | fp) & 0xFFFFFFFF, secret)


@pytest.mark.parametrize(("secret", "connected"), [(0, -1), (0xDEADBEEF, -1), (0, 1)])
def test_reuseport_picks_reciprocal_scale_of_udp_ehashfn(secret: int, connected: int) -> None:
    # Three SO_REUSEPORT sockets on port 9000 (bound in [[app]] order: reuse->socks[0..2]).
    # __udp4_lib_lookup -> udp4_lib_lookup2 -> inet_lookup_reuseport: hash = udp_ehashfn(net,
    # daddr, hnum, saddr, sport) (secret = udp_ehash_secret + net_hash_mix, host.ehash-secret);
    # reuseport_select_sock (no BPF) -> reuseport_select_sock_by_hash: i =
    # reciprocal_scale(hash, 3) = (hash * 3) >> 32, taken when not TCP_ESTABLISHED. 30
    # datagrams from 10.0.1.x:(5000 + 7x). With member 1 connect()ed (to a peer none of these
    # datagrams comes from: its compute_score is -1 for them), the loop steps past it
    # (`i++; if (i >= num_socks) i = 0;`): what hashed to 1 goes to 2.
    rows, expect = [], []
    for k in range(30):
        src, sport = f"10.0.1.{k + 2}", 5000 + 7 * k
        rows.append({"ts_ns": 50_000 * k, "src": src, "sport": sport})
        i = (_udp_ehashfn("10.0.0.1", 9000, src, sport, secret) * 3) >> 32
        expect.append(2 if i == connected else i)
    apps = []
    for i in range(3):
        apps += [f'app[{i}].match="udp dport 9000"', f"app[{i}].cpu={i + 1}",
                 f"app[{i}].reuseport=true",
                 f"app[{i}].connected={'true' if i == connected else 'false'}"]  # fmt: skip
    r = run(rows, "host.cpus=4", "nic.combined=1", f"host.ehash-secret={secret}", *apps,
            'host.addresses=["10.0.0.1"]')  # fmt: skip
    assert pk(r).sort("frame")["app"].to_list() == expect
    assert len(set(expect)) == (3 if connected < 0 else 2)  # each open socket gets some


# ---------------------------------------------------------------------------------------------
# 5. The scheduler: a reader woken onto a CPU a hog is using
# ---------------------------------------------------------------------------------------------


def _hog_and_reader(kernel: str) -> tuple[int, int]:
    """app1 (udp 9001) works 20 ms on one datagram from t=0 on CPU 1; app0 (udp 9000, CPU 1)
    gets a datagram at 5 ms. Returns (app0's t_done, app1's t_done)."""
    rows = [{"ts_ns": 0, "dport": 9001}, {"ts_ns": 5_000_000, "dport": 9000}]
    r = run(rows, "host.cpus=2", "nic.combined=1", f'host.kernel="{kernel}"', "host.hz=250",
            "host.tick-phase-ns=0", 'app[0].match="udp dport 9000"', "app[0].cpu=1",
            "app[0].work-ns=1000", 'app[1].match="udp dport 9001"', "app[1].cpu=1",
            "app[1].work-ns=20000000")  # fmt: skip
    df = pk(r).sort("frame")
    assert (df["outcome"] == "delivered").all()
    return int(df["t_done"][1]), int(df["t_done"][0])


def test_eevdf_reader_waits_for_the_hogs_deadline_at_a_tick() -> None:
    # 6.12 (EEVDF), HZ 250, 2 CPUs: base slice 0.75 ms x (1 + ilog2 2) = 1.5 ms. app1 runs
    # alone from ~10 us; update_curr at each tick renews its deadline (update_deadline:
    # vruntime + slice) without a resched (nr_running 1): at the 4 ms tick to ~5.5 ms. app0
    # wakes at ~5.0 ms (the wake-up of a busy remote CPU: enqueued at once) with lag 0 at the
    # average vruntime; pick_eevdf: app1 is still eligible (vruntime = avg) with the earlier
    # deadline (5.5 < 5.0 + 1.5): no preemption. At the 8 ms tick app1's vruntime passed its
    # deadline: update_deadline -> resched_curr (nr_running 2), and app1 (ahead of the average)
    # is no longer eligible: app0 runs, a few us after 8 ms.
    a0, a1 = _hog_and_reader("6.12")
    assert 8_000_000 < a0 < 8_050_000, a0
    assert a1 > 20_000_000


# CFS (5.15): ttwu_do_activate -> check_preempt_wakeup (wakeup_preempt_entity: the long sleeper
# is placed sched_latency/2 = 6 ms behind, more than the 2 ms wakeup granularity) ->
# resched_curr sends the reschedule IPI at once, and the hog, in user mode, schedules on the
# return from that interrupt (exit_to_user_mode_loop): the reader runs a few us after its wake-up


def test_cfs_reader_preempts_the_hog_at_the_resched_ipi() -> None:
    a0, _ = _hog_and_reader("5.15")
    assert 5_000_000 < a0 < 5_050_000, a0


# ---------------------------------------------------------------------------------------------
# 6. UDP GRO (net/ipv4/udp_offload.c udp_gro_receive, udp_gro_receive_segment)
# ---------------------------------------------------------------------------------------------


def _udp_sized(payloads: list[int], *, zero_at: int = -1) -> list[dict[str, Any]]:
    return [{"ts_ns": 0, "payload_len": p, "wire_len": 42 + p, "cap_len": 42 + p,
             "ip_id": 100 + k, "l4_csum_zero": k == zero_at}
            for k, p in enumerate(payloads)]  # fmt: skip


UDP_GRO_APP = ['app[0].match="udp dport 9000"', "app[0].cpu=1", "app[0].rcvbuf=1000000000"]


@pytest.mark.parametrize(("udp_gro", "groups"), [
    # udp_gro_receive_segment, per datagram against the held skb p (uh2 = p's first header):
    # `if (ulen > ntohs(uh2->len) || flush) pp = p;` (longer: p completes, the datagram is held
    # anew) else skb_gro_receive and `if (ret || ulen != ntohs(uh2->len) || count >=
    # UDP_GRO_CNT_MAX) pp = p;` (equal: merged; shorter: merged and completes).
    # 1000 x5, 500 -> [6]; 1000 x3, then 1200 (longer) -> [3]; 1200 then 1000 (shorter) -> [2];
    # the last 1000 held until the poll ends -> [1].
    (True, [[1, 2, 3, 4, 5, 6], [7, 8, 9], [10, 11], [12]]),
    # without UDP_GRO on the socket (and no GRO_UDP_FWD / fraglist on the device) udp_gro_receive
    # goes to `out`: every datagram is its own skb
    (False, [[k] for k in range(1, 13)]),
])  # fmt: skip
def test_udp_gro_trains(tmp_path: Path, udp_gro: bool, groups: list[list[int]]) -> None:
    payloads = [1000] * 5 + [500] + [1000] * 3 + [1200] + [1000] * 2
    r = run(_udp_sized(payloads), "host.cpus=2", "nic.combined=1", *UDP_GRO_APP,
            f"app[0].udp-gro={'true' if udp_gro else 'false'}", profile=slow_irq(tmp_path))  # fmt: skip
    assert skb_groups(r) == groups
    c = r.counters
    # one skb per train up the stack (softnet processed) and one recvmsg per train
    # (udp_recvmsg's UDP_MIB_INDATAGRAMS; a GRO skb with gro_enabled is queued whole)
    assert c["softnet_stat"][0]["processed"] == len(groups)
    assert c["snmp"]["Udp"]["InDatagrams"] == len(groups)


@pytest.mark.parametrize(("per_flow_id", "groups"), [
    # each sender's own IP ID sequence (100, 101, 102 and 500, 501, 502): two trains, both left
    # at napi_complete_done, where __gro_flush_chain walks the list from the tail (oldest
    # first): 4000's train, then 4001's
    (True, [[1, 3, 5], [2, 4, 6]]),
    # one ID counter across both (100..105, as one host's global counter would give): datagram
    # 3 (ID 102) against its train's first (100) with count 1 fails inet_gro_flush's
    # `ipid_offset ^ count` (2 ^ 1): it completes the 1-datagram train and is held anew; so does
    # every later one: six single skbs, each up when its flow's next datagram comes (the last
    # two at the poll's end)
    (False, [[1], [2], [3], [4], [5], [6]]),
])  # fmt: skip
def test_udp_gro_keeps_one_train_per_port_pair(tmp_path: Path, per_flow_id: bool,
                                               groups: list[list[int]]) -> None:  # fmt: skip
    # Two flows from one source (ports 4000 and 4001), interleaved: ixgbe hashes UDP on the
    # addresses only, so both land in the same GRO bucket and gro_list_prepare keeps both
    # candidates; udp_gro_receive_segment then compares the ports (`*(u32 *)&uh->source !=
    # *(u32 *)&uh2->source` -> not same_flow) and each datagram meets only its own port pair's
    # train, then the IP rules (gro.h inet_gro_flush: TTL, TOS, DF, the ID sequence).
    rows = _udp_sized([1000] * 6)
    for k, row in enumerate(rows):
        row["sport"] = 4000 + k % 2
        if per_flow_id:
            row["ip_id"] = (100 if k % 2 == 0 else 500) + k // 2
    r = run(rows, "host.cpus=2", "nic.combined=1", *UDP_GRO_APP, "app[0].udp-gro=true",
            profile=slow_irq(tmp_path))  # fmt: skip
    assert skb_groups(r) == groups


@pytest.mark.parametrize("case", ["ip-options", "ipv6"])
def test_udp_gro_needs_a_plain_ip_header(tmp_path: Path, case: str) -> None:
    # IPv4 with options (ihl 6): inet_gro_receive `if (*(u8 *)iph != 0x45) goto out_unlock;` --
    # udp4_gro_receive never runs: 5 skbs. IPv6 (no extension header): ipv6_gro_receive ->
    # udp6_gro_receive -> udp_gro_receive with the UDP_GRO socket: one train of 5.
    rows = _udp_sized([1000] * 5)
    sets = []
    for row in rows:
        if case == "ip-options":
            row.update(ip_hlen=24, wire_len=1046, cap_len=1046)
        else:
            row.update(V6, wire_len=1062, cap_len=1062)
    if case == "ipv6":
        sets = ['host.addresses=["2001:db8::1"]']
    r = run(rows, "host.cpus=2", "nic.combined=1", *UDP_GRO_APP, "app[0].udp-gro=true", *sets,
            profile=slow_irq(tmp_path))  # fmt: skip
    expect = [[k] for k in range(1, 6)] if case == "ip-options" else [[1, 2, 3, 4, 5]]
    assert skb_groups(r) == expect


def test_udp_gro_stops_at_64_segments(tmp_path: Path) -> None:
    # UDP_GRO_CNT_MAX = 64: the 64th equal datagram merges and `count >= UDP_GRO_CNT_MAX`
    # completes the train; 100 datagrams of 100 bytes -> 64 + 36.
    r = run(_udp_sized([100] * 100), "host.cpus=2", "nic.combined=1", *UDP_GRO_APP,
            "app[0].udp-gro=true", "nic.rx=1024", profile=slow_irq(tmp_path))  # fmt: skip
    assert [len(g) for g in skb_groups(r)] == [64, 36]


@pytest.mark.parametrize(("fixed_id", "groups"), [
    # DF with one IP ID for all (the fixed-ID flow inet_gro_flush decides at the 2nd datagram):
    # datagram 6 continues the held train: [5] first, then [1-4, 6-10] at the poll's end
    (True, [[5], [1, 2, 3, 4, 6, 7, 8, 9, 10]]),
    # incrementing IDs: datagram 5 took ID 104, so datagram 6 (105) against the held train's
    # first ID 100 with count 4 fails `ipid_offset ^ count` (5 ^ 4): flush, the train [1-4]
    # completes and datagram 6 starts the next one
    (False, [[5], [1, 2, 3, 4], [6, 7, 8, 9, 10]]),
])  # fmt: skip
def test_udp_gro_zero_checksum_passes_the_held_train(tmp_path: Path, fixed_id: bool,
                                                     groups: list[list[int]]) -> None:  # fmt: skip
    # Datagram 5 has a zero checksum: udp_gro_receive_segment `if (!uh->check) {
    # NAPI_GRO_CB(skb)->flush = 1; return NULL; }` before it looks at any held skb -- pp is
    # NULL, so the held train is not completed; dev_gro_receive sends datagram 5 up as
    # GRO_NORMAL at once (gro_normal_one): it reaches the socket before datagrams 1-4. Whether
    # datagram 6 continues the train is the IP ID rule (gro.h inet_gro_flush).
    rows = _udp_sized([1000] * 10, zero_at=4)
    if fixed_id:
        for row in rows:
            row["ip_id"] = 0
    r = run(rows, "host.cpus=2", "nic.combined=1", *UDP_GRO_APP, "app[0].udp-gro=true",
            profile=slow_irq(tmp_path))  # fmt: skip
    assert skb_groups(r) == groups


UDP_FWD = ("model: `ethtool -K eth0 rx-udp-gro-forwarding on` is accepted on ixgbe but changes"
           " nothing (UDP stays GRO_NORMAL). udp_gro_receive: `(!sk && (skb->dev->features &"
           " NETIF_F_GRO_UDP_FWD))` -- sk is NULL while no socket enabled UDP_GRO or an encap"
           " (udp_encap_needed_key off) -- takes udp_gro_receive_segment: the 10 equal"
           " datagrams go up as one skb (softnet processed 1, Ip InReceives 1, InDelivers 1,"
           " ip_protocol_deliver_rcu once), and udp_queue_rcv_skb splits it again for the"
           " socket without UDP_GRO (udp_unexpected_gso -> udp_rcv_segment): Udp InDatagrams 10")


@pytest.mark.xfail(strict=True, reason=UDP_FWD)
def test_udp_gro_forwarding_feature_aggregates_for_a_plain_socket(tmp_path: Path) -> None:
    r = run(_udp_sized([1000] * 10), "host.cpus=2", "nic.combined=1", *UDP_GRO_APP,
            "nic.rx-udp-gro-forwarding=true", profile=slow_irq(tmp_path))  # fmt: skip
    c = r.counters
    assert c["softnet_stat"][0]["processed"] == 1
    assert (c["snmp"]["Ip"]["InReceives"], c["snmp"]["Ip"]["InDelivers"]) == (1, 1)
    assert c["snmp"]["Udp"]["InDatagrams"] == 10


# ---------------------------------------------------------------------------------------------
# 7. VXLAN: the inner packet's NAPI (gro_cells) before and after 6.4
# ---------------------------------------------------------------------------------------------

# vxlan_rcv -> gro_cells_receive queues the inner skb and napi_schedule()s the cell's NAPI;
# before 6.4 ____napi_schedule raises NET_RX_SOFTIRQ even inside net_rx_action, which returns
# and handle_softirqs restarts to poll gro_cell_poll: 2 NET_RX runs per frame (6.4+:
# in_net_rx_action, no raise, `goto start` polls it in the same run: 1)


def _vxlan_rows(n: int) -> list[dict[str, Any]]:
    return [{"ts_ns": 100_000 * k, "sport": 50000, "dport": 4789,
             "payload_len": 8 + 14 + 20 + 8 + 100, "wire_len": 200, "cap_len": 200,
             "tunnel": "vxlan", "inner_proto": 17, "inner_sport": 1234, "inner_dport": 8080}
            for k in range(n)]  # fmt: skip


@pytest.mark.parametrize("kernel", ["6.12", "5.15"])
def test_vxlan_inner_napi_net_rx_runs(kernel: str) -> None:
    r = run(_vxlan_rows(4), "host.cpus=2", "nic.combined=1", f'host.kernel="{kernel}"',
            'app[0].match="udp dport 8080"', "app[0].cpu=1", 'tunnel[0].type="vxlan"')  # fmt: skip
    c = r.counters
    assert (pk(r)["outcome"] == "delivered").all()
    assert c["softnet_stat"][0]["processed"] == 8  # the outer and the inner skb
    assert c["softirqs"]["NET_RX"] == [4 if kernel == "6.12" else 8, 0]


# ---------------------------------------------------------------------------------------------
# 8. netdev_budget_usecs with two NAPIs (net_rx_action, handle_softirqs)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("hz", "squeezes", "ks_wakeups", "net_rx"),
                         [(1000, 2, 1, 2), (250, 0, 0, 2)])  # fmt: skip
def test_two_napis_against_the_time_limit(tmp_path: Path, hz: int, squeezes: int,
                                          ks_wakeups: int, net_rx: int) -> None:  # fmt: skip
    # Queues A and B (IRQs both on CPU 0), 100 frames each at t=0; the first hard IRQ lasts
    # 100 us so B's is pending at its end and both are on poll_list when net_rx_action starts
    # (~0.1 ms). The driver costs 21 us a frame: a poll of 64 lasts ~1.40 ms, of 36 ~0.79 ms.
    # Tick phase 0; netdev_budget_usecs = 2 jiffies; budget 300 never runs out (64 + 64).
    # HZ 1000 (MAX_SOFTIRQ_TIME = msecs_to_jiffies(2) = 2 jiffies):
    #   run 1 (jiffy 0, limit 2): A 64 ends ~1.5 ms (jiffy 1 < 2: go on), B 64 ends ~2.9 ms
    #     (jiffy 2): time_after_eq -> time_squeeze, break; both on repoll -> re-raise.
    #     handle_softirqs: time_before(2, 0 + 2) false -> wakeup_softirqd.
    #   run 2 (ksoftirqd, jiffy 2, limit 4): A 36 ends ~3.7 ms (jiffy 3), B 36 ends ~4.5 ms
    #     (jiffy 4) -> time_squeeze again, though both completed (the test follows the poll).
    #   NET_RX 2, time_squeeze 2 (time), one ksoftirqd wake-up.
    # HZ 250 (8000 us = 2 jiffies of 4 ms; MAX_SOFTIRQ_TIME 1 jiffy): run 1 ends at ~2.9 ms in
    #   jiffy 0: no squeeze; restart (time_before(0, 1)); run 2 ends ~4.5 ms in jiffy 1 < 2:
    #   no squeeze, both complete. NET_RX 2, no ksoftirqd.
    prof = profile_with(tmp_path, "drv21-irq100", {"stage.driver": 21_000,
                                                   "fixed.hardirq": 100_000})  # fmt: skip
    a, b = src_for_queue(0, 2), src_for_queue(1, 2)
    rows = [{"ts_ns": 0, "src": a if k % 2 == 0 else b} for k in range(200)]
    r = run(rows, "host.cpus=2", "nic.combined=2", "irq.affinity=[0,0]", f"host.hz={hz}",
            "host.tick-phase-ns=0", f"net.core.netdev_budget_usecs={2 * 1_000_000 // hz}",
            *APP1, profile=prof)  # fmt: skip
    c = r.counters
    assert [n["polls"] for n in c["napi"]] == [2, 2]
    assert c["softirqs"]["NET_RX"] == [net_rx, 0]
    assert c["softnet_stat"][0]["time_squeeze"] == squeezes
    assert c["model"]["time_squeeze_time"][0] == squeezes
    assert c["model"]["ksoftirqd_wakeups"][0] == ks_wakeups


# ---------------------------------------------------------------------------------------------
# 9. Queueing
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("kernel", "k"), [("6.12", 11), ("6.18", 10)])
def test_periodic_bursts_into_a_finite_socket_dd1k(tmp_path: Path, kernel: str, k: int) -> None:
    # D/D/1/K: 5 bursts of 50 datagrams, 10 ms apart; the reader works 100 us per datagram;
    # sk_rcvbuf 23040 = 10 ixgbe skbs (truesize 2304). A burst reaches the socket within ~35 us,
    # and the reader's first read (~8 us in) leaves the rest of the spliced queue in reader_queue:
    # udp_rmem_release keeps the deficit (2304 < forward_threshold 23040 >> 2 = 5760) while
    # reader_queue is not empty, so sk_rmem_alloc only grows during the burst.
    # __udp_enqueue_schedule_skb: up to 6.17 drop when rmem (before the add) > rcvbuf: accepted
    # while 2304 j <= 23040, j = 0..10 -> K = 11; 6.18 drop when rmem + truesize > rcvbuf (rmem
    # 0 excepted): 2304 (j + 1) <= 23040 -> K = 10. The reader drains the K in ~1.1 ms, the
    # last dequeue empties reader_queue and releases everything: each burst starts at rmem 0.
    # Per burst: datagrams K+1..50 dropped SOCKET_RCVBUFF, RcvbufErrors = InErrors = 5 (50 - K).
    rows = [{"ts_ns": 10_000_000 * b} for b in range(5) for _ in range(50)]
    r = run(rows, "host.cpus=2", "nic.combined=1", f'host.kernel="{kernel}"',
            'app[0].match="udp dport 9000"', "app[0].cpu=1", "app[0].work-ns=100000",
            "app[0].rcvbuf=23040")  # fmt: skip
    df = pk(r).sort("frame")
    dropped = df.filter(pl.col("outcome") == "dropped")["frame"].to_list()
    assert dropped == [50 * b + j for b in range(5) for j in range(k + 1, 51)]
    assert set(df.filter(pl.col("outcome") == "dropped")["drop_reason"].to_list()) == {
        "SOCKET_RCVBUFF"}
    udp = r.counters["snmp"]["Udp"]
    assert (udp["RcvbufErrors"], udp["InErrors"], udp["InDatagrams"]) == (
        5 * (50 - k), 5 * (50 - k), 5 * k)


def test_two_threads_on_one_socket_are_md2(tmp_path: Path) -> None:
    # threads = 2 on one socket (CPUs 1 and 2), D = 20 us of work per datagram, nothing else
    # costs. A FIFO queue served by whichever thread is free (an idle thread sleeps on the
    # socket and is woken for the next datagram; a busy one finds the queue at its next
    # recvmsg): M/D/2. Each datagram starts at max(arrival, earliest free thread)
    # (Kiefer-Wolfowitz), exactly; the mean wait is near Lee-Longton's M/D/c approximation,
    # half of M/M/2's (Erlang C: P(wait) = 2 rho^2 / (1 + rho), Wq = P(wait) D / (2 (1 - rho))).
    prof = profile_with(tmp_path, "md2", ZERO)
    d, n = 20_000, 16_000
    rng = np.random.default_rng(23)
    ts = np.cumsum(rng.exponential(d / (2 * 0.8), n)).astype(np.int64)
    r = run([{"ts_ns": int(t)} for t in ts], "host.cpus=3", "nic.combined=1", "nic.rx-usecs=0",
            'app[0].match="udp dport 9000"', "app[0].cpu=1", "app[0].threads=2",
            f"app[0].work-ns={d}", "app[0].rcvbuf=1000000000", profile=prof)  # fmt: skip
    df = pk(r).sort("frame")
    assert (df["outcome"] == "delivered").all()
    a = l4_end(df).to_numpy()
    wait = (df["wait_copy"] + df["cpu_copy"]).to_numpy()
    free = [-(10**18), -(10**18)]
    expect = np.empty(n, dtype=np.int64)
    for i in range(n):
        j = 0 if free[0] <= free[1] else 1
        start = max(int(a[i]), free[j])
        expect[i] = start - a[i]
        free[j] = start + d
    np.testing.assert_array_equal(wait, expect)
    lam = (n - 1) / (a[-1] - a[0])
    rho = lam * d / 2
    wq_mm2 = 2 * rho**2 / (1 + rho) * d / (2 * (1 - rho))
    assert 0.75 < rho < 0.85
    assert abs(wait.mean() / (wq_mm2 / 2) - 1) < 0.12, (wait.mean(), wq_mm2 / 2)


def test_burst_wait_is_dd1_by_hand(tmp_path: Path) -> None:
    # D/D/1 without drops: 40 datagrams 10 us apart, the reader needs D = 25 us each and
    # nothing else costs; the socket sees them 10 us apart (the same stack work each). Datagram
    # j (0-based) starts at s_0 + 25 j and arrived at a_0 + 10 j with s_0 = a_0 (idle reader,
    # zero wake-up): it waits 15 j us, the last 585 us.
    prof = profile_with(tmp_path, "dd1", ZERO)
    rows = [{"ts_ns": 10_000 * j} for j in range(40)]
    r = run(rows, "host.cpus=2", "nic.combined=1", "nic.rx-usecs=0", *APP1,
            "app[0].work-ns=25000", profile=prof)  # fmt: skip
    df = pk(r).sort("frame")
    a = l4_end(df).to_list()
    assert [b - x for x, b in itertools.pairwise(a)] == [10_000] * 39
    assert (df["wait_copy"] + df["cpu_copy"]).to_list() == [15_000 * j for j in range(40)]
