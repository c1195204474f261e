"""The real-kernel harness's pure parts: containers, rewriting, counters, perf script, categories,
message matching and the packets table. No root needed."""

from __future__ import annotations

import socket
import struct
from pathlib import Path

import dpkt
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from replay.errors import ConfigError, TraceError
from replay.model.stages import STAGE_IDS
from replay.real import counters
from replay.real.assemble import match_messages, packets_table
from replay.real.categories import category, context_of, stage_of
from replay.real.pcapraw import read_records
from replay.real.perfscript import parse_leaves, parse_perf_script
from replay.real.rewrite import ip_header_csum, rewrite, update_csum

NS_MAC, HOST_MAC = "02:73:72:00:00:02", "02:73:72:00:00:01"


def _udp_frame(src: str, dst: str, sport: int, dport: int, payload: bytes,
               csum: bool = True) -> bytes:
    u = dpkt.udp.UDP(sport=sport, dport=dport, data=payload)
    u.ulen = 8 + len(payload)
    ip = dpkt.ip.IP(src=socket.inet_aton(src), dst=socket.inet_aton(dst), p=17, data=u, ttl=64)
    ip.len = 20 + len(u)
    b = bytes(ip)  # dpkt fills both checksums
    if not csum:
        b = b[:26] + b"\x00\x00" + b[28:]
    return b"\x04" * 6 + b"\x02" * 6 + b"\x08\x00" + b


def _write_pcap(path: Path, frames: list[tuple[int, bytes]], nano: bool = False) -> None:
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B23C4D if nano else 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for ts_ns, b in frames:
            sec, ns = divmod(ts_ns, 1_000_000_000)
            f.write(struct.pack("<IIII", sec, ns if nano else ns // 1000, len(b), len(b)))
            f.write(b)


def _l4_csum_ok(ip: dpkt.ip.IP) -> bool:
    raw = bytes(ip)
    ihl = ip.hl * 4
    seg = raw[ihl:]
    pseudo = raw[12:20] + struct.pack("!BBH", 0, ip.p, len(seg))
    data = pseudo + seg + (b"\x00" if len(seg) % 2 else b"")
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s == 0xFFFF


# ------------------------------------------------------------------------------- containers


def test_pcap_microsecond_and_nanosecond_timestamps_are_exact(tmp_path: Path) -> None:
    f = _udp_frame("10.0.0.1", "10.0.0.2", 1, 2, b"abcd")
    _write_pcap(tmp_path / "us.pcap", [(1_700_000_000_123_456_000, f)])
    _write_pcap(tmp_path / "ns.pcap", [(1_700_000_000_123_456_789, f)], nano=True)
    (us,) = read_records(tmp_path / "us.pcap")
    (ns,) = read_records(tmp_path / "ns.pcap")
    assert us.ts_ns == 1_700_000_000_123_456_000
    assert ns.ts_ns == 1_700_000_000_123_456_789
    assert us.data == f and us.linktype == 1 and us.wire_len == len(f)


def test_pcapng_uses_each_interfaces_tsresol_and_tsoffset(tmp_path: Path) -> None:
    def block(t: int, body: bytes) -> bytes:
        body += b"\x00" * (-len(body) % 4)
        n = len(body) + 12
        return struct.pack("<II", t, n) + body + struct.pack("<I", n)

    shb = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    opts = struct.pack("<HH", 9, 1) + b"\x09\x00\x00\x00" + struct.pack("<HHq", 14, 8, 100) + \
        struct.pack("<HH", 0, 0)
    idb = block(1, struct.pack("<HHI", 1, 0, 65535) + opts)
    pkt = b"\x01" * 61
    ticks = 5_000_000_007  # ns since the offset
    epb = block(6, struct.pack("<IIIII", 0, ticks >> 32, ticks & 0xFFFFFFFF, 61, 64) + pkt)
    (tmp_path / "t.pcapng").write_bytes(shb + idb + epb)
    (r,) = read_records(tmp_path / "t.pcapng")
    assert r.ts_ns == 100 * 1_000_000_000 + 5_000_000_007
    assert r.data == pkt and r.wire_len == 64


def test_truncated_pcap_record_is_one_trace_error_with_offset(tmp_path: Path) -> None:
    f = _udp_frame("10.0.0.1", "10.0.0.2", 1, 2, b"abcd")
    _write_pcap(tmp_path / "t.pcap", [(0, f)])
    (tmp_path / "t.pcap").write_bytes((tmp_path / "t.pcap").read_bytes()[:-5])
    with pytest.raises(TraceError, match=r"t\.pcap at byte 24: record of 46 bytes runs past"):
        list(read_records(tmp_path / "t.pcap"))


# ------------------------------------------------------------------------------- rewriting


def test_rfc1624_update_equals_a_full_recomputation() -> None:
    hdr = bytes(dpkt.ip.IP(src=b"\x0a\x00\x00\x01", dst=b"\x0a\x00\x00\x02", p=17, len=28))
    old = struct.unpack("!H", hdr[10:12])[0]
    new_addrs = socket.inet_aton("198.18.0.1") + socket.inet_aton("198.18.0.2")
    new_hdr = hdr[:12] + new_addrs
    assert update_csum(old, hdr[12:20], new_addrs) == ip_header_csum(new_hdr)


def _trace(tmp_path: Path) -> Path:
    arp = b"\xff" * 6 + b"\x02" * 6 + b"\x08\x06" + b"\x00" * 28
    frames = [
        (1_000, _udp_frame("10.0.0.1", "10.0.0.2", 4000, 27015, b"\xaa" * 32)),
        (2_000, _udp_frame("10.0.0.2", "10.0.0.1", 27015, 4000, b"\xbb" * 32)),  # host's own
        (3_000, arp),
        (4_000, _udp_frame("10.0.0.3", "10.0.0.2", 4001, 27015, b"\xcc" * 2)),  # too short to tag
        (5_000, _udp_frame("10.0.0.1", "10.0.0.2", 4000, 27016, b"\xdd" * 8, csum=False)),
        (6_000, _udp_frame("10.0.0.1", "10.0.0.2", 4000, 27015, b"\xee" * 40)),
    ]
    _write_pcap(tmp_path / "in.pcap", frames, nano=True)
    return tmp_path / "in.pcap"


def test_rewrite_keeps_the_hosts_frames_and_readdresses_them(tmp_path: Path) -> None:
    rw = rewrite([_trace(tmp_path)], tmp_path / "out.pcap", ns_ip="198.18.0.2",
                 host_ip="198.18.0.1", ns_mac=NS_MAC, host_mac=HOST_MAC)
    assert rw.host_ip == "10.0.0.2" and rw.inferred
    assert rw.frame.tolist() == [1, 4, 5, 6]
    assert rw.ts_ns.tolist() == [1_000, 4_000, 5_000, 6_000]
    assert rw.dport.tolist() == [27015, 27015, 27016, 27015]
    assert rw.tagged.tolist() == [True, False, True, True]
    assert any("1 frames addressed to other hosts" in n for n in rw.notes)
    assert any("1 frames not IP" in n for n in rw.notes)
    out = list(read_records(tmp_path / "out.pcap"))
    assert [r.ts_ns for r in out] == [1_000, 4_000, 5_000, 6_000]
    tags = []
    for r in out:
        e = dpkt.ethernet.Ethernet(r.data)
        assert e.dst == bytes.fromhex("027372000002") and e.src == bytes.fromhex("027372000001")
        ip = e.data
        assert socket.inet_ntoa(ip.src) == "198.18.0.1"
        assert socket.inet_ntoa(ip.dst) == "198.18.0.2"
        assert ip_header_csum(bytes(ip)[:20]) == ip.sum
        u = ip.data
        if u.sum:
            assert _l4_csum_ok(ip)
        tags.append(struct.unpack("!I", u.data[:4])[0] if len(u.data) >= 4 else None)
    assert tags == [0, None, 2, 3]  # each tagged datagram carries its index in the file
    # the checksum-less datagram stays checksum-less (RFC 768: 0 means none)
    assert dpkt.ethernet.Ethernet(out[2].data).data.data.sum == 0


def test_rewrite_to_a_configured_host_and_none_there_is_a_config_error(tmp_path: Path) -> None:
    t = _trace(tmp_path)
    rw = rewrite([t], tmp_path / "o.pcap", ns_ip="198.18.0.2", host_ip="198.18.0.1",
                 ns_mac=NS_MAC, host_mac=HOST_MAC, addresses=["10.0.0.1"])
    assert rw.frame.tolist() == [2] and not rw.inferred
    with pytest.raises(ConfigError, match=r"addressed to 10\.9\.9\.9"):
        rewrite([t], tmp_path / "o.pcap", ns_ip="198.18.0.2", host_ip="198.18.0.1",
                ns_mac=NS_MAC, host_mac=HOST_MAC, addresses=["10.9.9.9"])


@settings(max_examples=60, deadline=None)
@given(payload=st.binary(min_size=0, max_size=300), sport=st.integers(1, 65535),
       dport=st.integers(1, 65535), a=st.integers(1, 2**32 - 2), b=st.integers(1, 2**32 - 2))
def test_rewritten_udp_checksums_always_verify(tmp_path_factory: pytest.TempPathFactory,
                                               payload: bytes, sport: int, dport: int,
                                               a: int, b: int) -> None:
    d = tmp_path_factory.mktemp("p")
    src, dst = socket.inet_ntoa(struct.pack("!I", a)), socket.inet_ntoa(struct.pack("!I", b))
    _write_pcap(d / "i.pcap", [(0, _udp_frame(src, dst, sport, dport, payload))])
    rewrite([d / "i.pcap"], d / "o.pcap", ns_ip="198.18.7.2", host_ip="198.18.7.1",
            ns_mac=NS_MAC, host_mac=HOST_MAC)
    (r,) = read_records(d / "o.pcap")
    ip = dpkt.ethernet.Ethernet(r.data).data
    assert ip_header_csum(bytes(ip)[:20]) == ip.sum
    assert ip.data.sum != 0 and _l4_csum_ok(ip)


# ------------------------------------------------------------------------------- counters

SOFTNET = (
    "00004e38 00000002 00000003 00000000 00000000 00000000 00000000 00000000 00000000 00000004"
    " 00000005 00000000 00000000 00000000 00000000\n"
    "000024ad 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000"
    " 00000000 00000000 00000001 00000000 00000000\n"
)


def test_softnet_stat_columns_follow_the_kernels_order() -> None:
    rows = counters.parse_softnet_stat(SOFTNET)
    assert rows == [
        {"cpu": 0, "processed": 0x4E38, "dropped": 2, "time_squeeze": 3, "received_rps": 4,
         "flow_limit_count": 5},
        {"cpu": 1, "processed": 0x24AD, "dropped": 0, "time_squeeze": 0, "received_rps": 0,
         "flow_limit_count": 0},
    ]


def test_softirqs_snmp_and_diff() -> None:
    a = counters.parse_softirqs("        CPU0  CPU1\n  NET_RX:  10  20\n  NET_TX: 1 2\n")
    b = counters.parse_softirqs("        CPU0  CPU1\n  NET_RX:  15  20\n  NET_TX: 1 3\n")
    assert counters.diff(a, b) == {"NET_RX": [5, 0], "NET_TX": [0, 1]}
    s1 = counters.parse_snmp("Udp: InDatagrams NoPorts RcvbufErrors\nUdp: 5 1 0\n")
    s2 = counters.parse_snmp("Udp: InDatagrams NoPorts RcvbufErrors\nUdp: 9 1 7\n")
    assert counters.diff(s1, s2) == {"Udp": {"InDatagrams": 4, "NoPorts": 0, "RcvbufErrors": 7}}
    sn = counters.diff(counters.parse_softnet_stat(SOFTNET), counters.parse_softnet_stat(SOFTNET))
    assert [r["cpu"] for r in sn] == [0, 1] and sn[0]["processed"] == 0
    assert counters.parse_snmp6("Udp6InDatagrams  3\nIp6ReasmOKs 0\n") == {
        "Udp6InDatagrams": 3, "Ip6ReasmOKs": 0}


# ------------------------------------------------------------------------------- perf script

PERF_TEXT = """\
tcpreplay  7070/7070  [000]   512.848707:     100000 cpu-clock:
\tffffffff81e3ec9c skb_checksum ([kernel.kallsyms])
\tffffffff81e3ee09 __skb_checksum_complete ([kernel.kallsyms])
\tffffffff820494a8 __udp4_lib_rcv ([kernel.kallsyms])
\tffffffff81ff84c3 ip_protocol_deliver_rcu ([kernel.kallsyms])
\tffffffff81e6869d __netif_receive_skb_one_core ([kernel.kallsyms])
\tffffffff81e68983 process_backlog ([kernel.kallsyms])
\tffffffff81e695bb net_rx_action ([kernel.kallsyms])
\tffffffff8136213d handle_softirqs ([kernel.kallsyms])
\tffffffff81362424 __local_bh_enable_ip ([kernel.kallsyms])
\tffffffff81e659bc __dev_queue_xmit ([kernel.kallsyms])
\tffffffff82151dc3 packet_sendmsg ([kernel.kallsyms])
\t          10ab59 __send (/usr/lib/x86_64-linux-gnu/libc.so.6)

swapper     0/0     [001]   512.771661:     100000 cpu-clock:
\tffffffff821f4dab pv_native_safe_halt ([kernel.kallsyms])
\tffffffff821f68b5 default_idle ([kernel.kallsyms])
\tffffffff813c59a6 do_idle ([kernel.kallsyms])

app0  7099/7099  [001]   512.900000:     100000 cpu-clock:
\t          1234 _PyEval_EvalFrameDefault (/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0)
\t          2724a __libc_start_call_main (/usr/lib/x86_64-linux-gnu/libc.so.6)

app0  7099/7099  [001]   512.900100:     100000 cpu-clock:
\tffffffff81e3b000 _copy_to_iter ([kernel.kallsyms])
\tffffffff81e3c000 __skb_datagram_iter ([kernel.kallsyms])
\tffffffff81e3c100 skb_copy_datagram_iter ([kernel.kallsyms])
\tffffffff82040000 udp_recvmsg ([kernel.kallsyms])
\tffffffff821ef691 do_syscall_64 ([kernel.kallsyms])
"""


def test_perf_script_samples_get_leaf_stage_context_and_category() -> None:
    # perf prints a space after "cpu-clock:"; keep it as perf does
    s = parse_perf_script(PERF_TEXT.replace("cpu-clock:", "cpu-clock: ").splitlines())
    assert len(s) == 4
    assert s.comm == ["tcpreplay", "swapper", "app0", "app0"]
    assert s.pid == [7070, 0, 7099, 7099]
    assert s.cpu == [0, 1, 1, 1]
    assert s.time_ns == [512_848_707_000, 512_771_661_000, 512_900_000_000, 512_900_100_000]
    assert s.period == [100_000] * 4
    assert s.symbol == ["skb_checksum", "pv_native_safe_halt", "_PyEval_EvalFrameDefault",
                        "_copy_to_iter"]
    assert s.dso == ["[kernel.kallsyms]", "[kernel.kallsyms]", "libpython3.11.so.1.0",
                     "[kernel.kallsyms]"]
    assert s.stage == ["l4", None, "app", "copy"]
    assert s.context == ["softirq", "task", "task", "task"]
    assert s.category == ["skb", "sched", "app", "data_copy"]
    assert s.rx_path == [True, False, False, True]
    assert s.idle == [False, True, False, False]


def test_categories_follow_the_cai_table_then_the_prefix_rules() -> None:
    assert category("__netif_receive_skb_core") == "netdev"
    assert category("__netif_receive_skb") == "tcp/ip"  # as the artifact's table has it
    assert category("skb_copy_datagram_iter") == "data_copy"
    assert category("_raw_spin_unlock_irqrestore") == "lock"
    assert category("kmem_cache_alloc_node_noprof") == "mm"
    assert category("finish_task_switch.isra.0") == "sched"
    assert category("udp_rmem_release") == "tcp/ip"
    assert category("veth_xmit") == "netdev"
    assert category("csum_partial") == "etc"
    assert category("some_unknown_function") == "etc"
    assert category("main", "receiver") == "app"


def test_stage_is_the_innermost_named_frame() -> None:
    assert stage_of(["_raw_spin_lock", "enqueue_to_backlog", "__netif_rx", "veth_xmit"]) == \
        "netif"
    # the core run by process_backlog is the backlog stage; process_backlog's own work has none
    assert stage_of(["__netif_receive_skb_core", "__netif_receive_skb_one_core",
                     "process_backlog", "__napi_poll", "net_rx_action"]) == "backlog"
    assert stage_of(["__netif_receive_skb_core", "netif_receive_skb_list_internal",
                     "napi_complete_done"]) == "netif"
    assert stage_of(["process_backlog", "__napi_poll", "net_rx_action"]) is None
    assert stage_of(["fib_table_lookup", "ip_route_input_slow", "ip_rcv_finish", "ip_rcv",
                     "__netif_receive_skb_one_core"]) == "route"
    assert stage_of(["net_rx_action", "handle_softirqs"]) is None
    assert context_of(["foo", "__sysvec_apic_timer_interrupt", "handle_softirqs"], "x") == \
        "hardirq"
    assert context_of(["process_backlog", "net_rx_action", "run_ksoftirqd"], "ksoftirqd/0") == \
        "ksoftirqd"


# ------------------------------------------------------------------------------- assembly


def test_messages_match_the_latest_send_of_their_tag_before_arrival() -> None:
    # file of 2 packets looped twice: tags 0,1,0,1 sent at 0,10,100,110
    sent_tag = np.array([0, 1, 0, 1])
    sent_t = np.array([1000, 1010, 1100, 1110])
    recv_tag = np.array([1, 0, 1, 7, -1])
    recv_t = np.array([1012, 1101, 1111, 1200, 1300])
    assert match_messages(sent_tag, sent_t, recv_tag, recv_t).tolist() == [1, 2, 3, -1, -1]


def test_packets_table_outcomes_and_the_latency_sum_invariant() -> None:
    n = 4
    t = packets_table(
        sent_t=np.array([1000, 2000, 3000, 4000]), sent_index=np.arange(n),
        frame=np.array([1, 2, 3, 5], np.uint64), proto=np.array([17, 17, 17, 6], np.uint8),
        sport=np.array([9, 9, 9, 9], np.int32), dport=np.array([53, 53, 99, 80], np.int32),
        frag=np.zeros(n, np.uint8), n_rewritten=n, bound_ports={53: 0}, match=np.array([0]),
        recv_app=np.array([0]),
        recv_tk=np.array([1100]), recv_tr=np.array([1500]), recv_ts=np.array([1550]),
        recv_td=np.array([1700]),
        rx_cpu=0, reasons=["SOCKET_RCVBUFF"], t0=1000,
    ).to_pylist()
    assert [r["outcome"] for r in t] == ["delivered", "dropped", "dropped", "dropped"]
    assert [r["drop_reason"] for r in t] == [None, "SOCKET_RCVBUFF", "NO_SOCKET", "NO_SOCKET"]
    d = t[0]
    assert (d["t_wire"], d["wait_driver"], d["wait_copy"], d["wait_app"], d["cpu_app"],
            d["t_done"]) == (0, 100, 400, 50, 150, 700)
    for r in t:
        parts = [r[f"{k}_{s}"] for s in STAGE_IDS for k in ("wait", "cpu")]
        assert r["t_done"] - r["t_wire"] == sum(p for p in parts if p is not None)
    assert pa.Table.from_pylist(t).num_rows == n


def test_a_fragmented_datagram_is_tagged_in_its_first_fragment(tmp_path: Path) -> None:
    payload = bytes(range(200)) * 2  # 400 bytes: fragments of 8-byte units
    u = dpkt.udp.UDP(sport=1000, dport=2000, data=payload)
    u.ulen = 8 + len(payload)
    seg = bytes(u)
    whole = dpkt.ip.IP(src=socket.inet_aton("10.0.0.1"), dst=socket.inet_aton("10.0.0.2"), p=17,
                       data=u, ttl=64, id=7)
    whole.len = 20 + len(seg)
    seg = bytes(whole)[20:]  # with dpkt's checksum filled in
    frames = []
    for off, chunk, more in ((0, seg[:208], True), (208, seg[208:], False)):
        ip = dpkt.ip.IP(src=whole.src, dst=whole.dst, p=17, ttl=64, id=7, data=chunk)
        ip.offset, ip.mf = off, int(more)
        ip.len = 20 + len(chunk)
        frames.append((len(frames), b"\x04" * 6 + b"\x02" * 6 + b"\x08\x00" + bytes(ip)))
    _write_pcap(tmp_path / "f.pcap", frames)
    rw = rewrite([tmp_path / "f.pcap"], tmp_path / "o.pcap", ns_ip="198.18.0.2",
                 host_ip="198.18.0.1", ns_mac=NS_MAC, host_mac=HOST_MAC)
    assert rw.frag.tolist() == [1, 2]
    assert rw.tagged.tolist() == [True, False]
    a, b = (dpkt.ethernet.Ethernet(r.data).data for r in read_records(tmp_path / "o.pcap"))
    data = bytes(a.data) + bytes(b.data)
    reassembled = dpkt.ip.IP(src=a.src, dst=a.dst, p=17, ttl=64, data=data)
    reassembled.len = 20 + len(reassembled.data)
    assert bytes(a.data)[8:12] == b"\x00\x00\x00\x00"  # tag 0 in the first payload bytes
    assert _l4_csum_ok(reassembled)


def test_user_samples_without_a_callchain_take_their_leaf_from_the_flat_pass() -> None:
    # recorded with --kernel-callchains: a sample in user space prints no frames
    chains = ("app0  7099/7099  [001]   1.000000000:     100000 cpu-clock: \n\n"
              "app0  7099/7099  [001]   1.000100000:     100000 cpu-clock: \n"
              "\tffffffff81e3b000 _copy_to_iter ([kernel.kallsyms])\n"
              "\tffffffff82040000 udp_recvmsg ([kernel.kallsyms])\n\n")
    flat = ("  app0 7099/7099 [001]  1.000000000:  100000 cpu-clock:  7f88feeba754 "
            "_PyEval_EvalFrameDefault+0x1c (/usr/lib/libpython3.11.so.1.0)\n"
            "  app0 7099/7099 [001]  1.000100000:  100000 cpu-clock:  ffffffff81e3b000 "
            "_copy_to_iter ([kernel.kallsyms])\n")
    leaves = parse_leaves(flat.splitlines())
    assert leaves == [("_PyEval_EvalFrameDefault", "libpython3.11.so.1.0"),
                      ("_copy_to_iter", "[kernel.kallsyms]")]
    s = parse_perf_script(chains.splitlines(), leaves)
    assert s.symbol == ["_PyEval_EvalFrameDefault", "_copy_to_iter"]
    assert s.stage == ["app", "copy"]
    assert s.category == ["app", "data_copy"]
