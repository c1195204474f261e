"""Hand-computed RPS, backlog and veth scenarios: every timestamp and counter below follows from
net/core/dev.c's rules (KERNEL.md §1 rows 5-5b, §3.5, §3c) and round-number costs (ROUND plus the
backlog entries written by `profile`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from replay.errors import ConfigError
from replay.model.config import resolve_config
from replay.model.costs import load_profile
from replay.model.engine import hash_32
from replay.model.rss import MICROSOFT_KEY, hash_frames
from replay.model.simulate import SimResult, _skb_hash, simulate
from replay.runner import ReplayOptions
from tests.framegen import a16, frames
from tests.test_model_invariants import check_accounting, traces

ROUND = str(Path(__file__).parent / "data" / "round-costs.toml")
APP = ['app[0].match="udp dport 9000"', "app[0].work-ns=1000"]


@pytest.fixture(scope="module")
def profile(tmp_path_factory: pytest.TempPathFactory) -> str:
    """round-costs + the backlog's entries as round numbers; `ipi` = latency.ipi."""
    return _profile(tmp_path_factory.mktemp("p"), ipi=1000)


def _profile(d: Path, ipi: int) -> str:
    body = [f'[profile]\nname = "backlog-round"\nghz = 1.0\nbase = "{ROUND}"\n']
    for sec, key, v in (("stage", "backlog", 50), ("fixed", "backlog_poll", 200),
                        ("fixed", "ipi_send", 300), ("fixed", "ipi_irq", 400),
                        ("fixed", "tx", 1000), ("latency", "ipi", ipi)):
        body.append(f'[{sec}.{key}]\nbase = {v}\nsource = "test: round number"\n')
    p = d / f"backlog-{ipi}.toml"
    p.write_text("\n".join(body))
    return str(p)


def _addrs(a: bytes, n: int) -> np.ndarray:
    return np.tile(np.frombuffer(a, np.uint8), (n, 1))


def run(rows: list[dict[str, Any]], profile: str, *sets: str) -> SimResult:
    cfg = resolve_config(None, [f'costs.profile="{profile}"', *sets])
    return simulate(frames(rows), cfg, load_profile(profile), ReplayOptions())


def pk(r: SimResult) -> pl.DataFrame:
    df = pl.from_arrow(r.packets)
    assert isinstance(df, pl.DataFrame)
    return df


def test_rps_steers_to_the_map_cpu_with_an_ipi_at_the_end_of_net_rx_action(profile: str) -> None:
    r = run([{"ts_ns": 0}], profile, "host.cpus=2", "nic.combined=1", 'sysfs.rps_cpus=["1"]',
            "app[0].cpu=0", *APP)
    p = pk(r).row(0, named=True)
    # CPU 0: IRQ 1067-2067, softirq+net_rx_action -2267, poll -2767, driver -2867, GRO -2917;
    # netif_receive_skb_list_internal: get_rps_cpu + enqueue_to_backlog 50 -> 2967 (netif);
    # net_rx_action ends: one IPI sent (300) -> 3267, it lands at 4267 (latency.ipi 1000).
    # CPU 1: IPI hard IRQ 400 -> 4667, softirq+net_rx_action -> 4867, process_backlog poll 200
    # -> 5067, __netif_receive_skb_core 100 -> 5167 (backlog), ip 5267, route 5367, local 5467,
    # udp 5567 + wake-up 200 -> 5767; the reader on CPU 0 wakes at 5567+200+2000 = 7767,
    # context switch -> 8767, copy+consume 200 -> 8967, work 1000 -> 9967
    assert (p["t_wire"], p["t_irq"], p["t_poll"], p["t_done"]) == (67, 1067, 2267, 9967)
    cpu = {"driver": 100, "gro": 50, "netif": 50, "backlog": 100, "ip": 100, "route": 100,
           "local": 100, "l4": 300, "copy": 200, "app": 1000}
    wait = {"driver": 2700, "gro": 0, "netif": 0, "backlog": 2100, "ip": 0, "route": 0,
            "local": 0, "l4": 0, "copy": 3000, "app": 0}
    for s in cpu:
        assert (p[f"cpu_{s}"], p[f"wait_{s}"]) == (cpu[s], wait[s]), s
    assert p["cpu"] == 1 and p["outcome"] == "delivered"
    c = r.counters
    assert [x["processed"] for x in c["softnet_stat"]] == [0, 1]
    assert [x["received_rps"] for x in c["softnet_stat"]] == [0, 1]
    assert c["softirqs"]["NET_RX"] == [1, 1]
    assert c["model"]["backlog_polls"] == [0, 1]
    cpu_t = pl.from_arrow(r.cpu)
    assert isinstance(cpu_t, pl.DataFrame)
    by = {(str(a), str(b), str(x)): int(n) for a, b, x, n in cpu_t.group_by(
        "cpu", "symbol", "context").agg(pl.col("ns").sum()).iter_rows()}
    assert by[("0", "net_rps_send_ipi", "softirq")] == 300
    assert by[("1", "rps_trigger_softirq", "hardirq")] == 400
    assert by[("1", "process_backlog", "softirq")] == 200
    assert by[("0", "enqueue_to_backlog", "softirq")] == 50
    assert by[("1", "__netif_receive_skb_core", "softirq")] == 100


def test_one_ipi_per_remote_cpu_at_the_end_of_the_run(profile: str) -> None:
    # two flows steered to CPUs 1 and 2 in one GRO-normal batch: two IPIs, sent together at the
    # end of CPU 0's net_rx_action (300 each), one received_rps on each target
    rows = [{"ts_ns": 0, "src": a} for a in _two_cpus_sources()]
    r = run(rows, profile, "host.cpus=3", "nic.combined=1", 'sysfs.rps_cpus=["1-2"]',
            "app[0].cpu=0", *APP)
    assert pk(r)["cpu"].to_list() == [1, 2]
    sn = r.counters["softnet_stat"]
    assert [x["received_rps"] for x in sn] == [0, 1, 1]
    assert r.counters["softirqs"]["NET_RX"] == [1, 1, 1]
    cpu_t = pl.from_arrow(r.cpu)
    assert isinstance(cpu_t, pl.DataFrame)
    sent = cpu_t.filter(pl.col("symbol") == "net_rps_send_ipi")
    assert sent["ns"].sum() == 600 and sent.height == 1  # one span: both in the same run


def _two_cpus_sources() -> list[str]:
    """Two source addresses that the RPS map 1-2 sends to different CPUs (ixgbe hashes UDP on the
    addresses only, Microsoft key): reciprocal_scale(hash, 2) = 0 and 1."""
    found: dict[int, str] = {}
    for k in range(2, 60):
        src = f"10.0.1.{k}"
        h = hash_frames(MICROSOFT_KEY, _addrs(a16(src), 1), _addrs(a16("10.0.0.1"), 1),
                        np.array([4000]), np.array([9000]), np.zeros(1, bool), np.zeros(1, bool))
        found.setdefault((int(h[0]) * 2) >> 32, src)
        if len(found) == 2:
            return [found[0], found[1]]
    raise AssertionError("no two sources found")


def test_before_6_4_the_remote_enqueue_raises_net_rx_again(profile: str) -> None:
    # 5.15: rps_ipi_queued raises NET_RX on the enqueuing CPU even inside net_rx_action, so
    # handle_softirqs restarts it once more with nothing to poll (KERNEL.md §3.1, §3b)
    sets = ["host.cpus=2", "nic.combined=1", 'sysfs.rps_cpus=["1"]', "app[0].cpu=0", *APP]
    old = run([{"ts_ns": 0}], profile, *sets, 'host.kernel="5.15"')
    new = run([{"ts_ns": 0}], profile, *sets, 'host.kernel="6.12"')
    assert old.counters["softirqs"]["NET_RX"] == [2, 1]
    assert new.counters["softirqs"]["NET_RX"] == [1, 1]


def test_veth_with_rps_runs_the_core_on_the_map_cpu(profile: str) -> None:
    # netif_rx_internal takes get_rps_cpu too: the sender raises NET_RX on its own CPU only to
    # send the IPI; the target's backlog runs in its idle task's interrupt (swapper/1)
    rows = [{"ts_ns": i * 100_000} for i in range(3)]
    r = run(rows, profile, "host.cpus=2", "nic.driver=veth", "nic.combined=1", "nic.gro=false",
            'sysfs.rps_cpus=["1"]', "app[0].cpu=1", "nic.sender-cpu=0", *APP)
    c = r.counters
    assert c["softirqs"]["NET_RX"] == [3, 3]
    assert [x["processed"] for x in c["softnet_stat"]] == [0, 3]
    assert [x["received_rps"] for x in c["softnet_stat"]] == [0, 3]
    cpu_t = pl.from_arrow(r.cpu)
    assert isinstance(cpu_t, pl.DataFrame)
    core = cpu_t.filter(pl.col("symbol") == "__netif_receive_skb_core")
    assert core["comm"].cast(pl.String).unique().to_list() == ["swapper/1"]
    assert pk(r)["cpu"].to_list() == [1, 1, 1]


def test_rps_spreads_flows_by_reciprocal_scale_of_the_hash(profile: str) -> None:
    rows = [{"ts_ns": i * 100_000, "sport": 1000 + i, "proto": 6, "dport": 9000,
             "tcp_flags": 0x18, "payload_len": 100, "wire_len": 166, "cap_len": 166}
            for i in range(40)]
    r = run(rows, profile, "host.cpus=4", "nic.combined=1", 'sysfs.rps_cpus=["1-3"]',
            "app[0].cpu=0", 'app[0].match="tcp dport 9000"')
    # RSS hash (ixgbe: TCP on the 4-tuple, Microsoft key) -> cpus[(hash * 3) >> 32]
    src, dst = a16("10.0.0.2"), a16("10.0.0.1")
    n = len(rows)
    h = hash_frames(MICROSOFT_KEY, _addrs(src, n), _addrs(dst, n),
                    np.array([x["sport"] for x in rows]), np.array([9000] * n), np.zeros(n, bool),
                    np.ones(n, bool))
    want = [1 + ((int(x) * 3) >> 32) for x in h]
    assert pk(r)["cpu"].to_list() == want
    counts = np.bincount(want, minlength=4)
    assert [x["processed"] for x in r.counters["softnet_stat"]] == counts.tolist()
    assert counts[1:].min() > 0  # all three CPUs of the map get flows


def test_rfs_moves_a_flow_to_the_cpu_that_reads_it(profile: str) -> None:
    # RFS (rps_sock_flow_entries + rps_flow_cnt): the first segment has no socket entry yet and
    # goes by the RPS map (CPU 1); the reader's recvmsg on CPU 0 records the flow there
    # (sock_rps_record_flow); the next segments find the entry, and the flow's rps_dev_flow CPU
    # is unset, so it switches to CPU 0 (get_rps_cpu, dev.c:5100-5133)
    rows = [{"ts_ns": i * 200_000, "proto": 6, "sport": 5555, "dport": 9000, "tcp_flags": 0x18,
             "tcp_seq": 1000 + 100 * i, "payload_len": 100, "wire_len": 166, "cap_len": 166}
            for i in range(4)]
    sets = ["host.cpus=2", "nic.combined=1", 'sysfs.rps_cpus=["1"]', "app[0].cpu=0",
            'app[0].match="tcp dport 9000"']
    r = run(rows, profile, *sets, "net.core.rps_sock_flow_entries=1024", "sysfs.rps_flow_cnt=256")
    assert pk(r)["cpu"].to_list() == [1, 0, 0, 0]
    sn = r.counters["softnet_stat"]
    assert [x["processed"] for x in sn] == [3, 1]
    assert [x["received_rps"] for x in sn] == [0, 1]  # the local enqueues need no IPI
    # RPS alone keeps every segment on the map's CPU
    r2 = run(rows, profile, *sets)
    assert pk(r2)["cpu"].to_list() == [1, 1, 1, 1]


def test_backlog_drops_beyond_netdev_max_backlog(tmp_path: Path) -> None:
    # latency.ipi 10 ms: CPU 1 cannot drain before CPU 0 has enqueued the whole burst
    prof = _profile(tmp_path, ipi=10_000_000)
    r = run([{"ts_ns": 0}] * 10, prof, "host.cpus=2", "nic.combined=1", 'sysfs.rps_cpus=["1"]',
            "net.core.netdev_max_backlog=2", "app[0].cpu=0", *APP)
    df = pk(r)
    # enqueue_to_backlog drops when qlen > max_backlog: qlen 0, 1, 2 are taken, the rest dropped
    assert df["outcome"].to_list() == ["delivered"] * 3 + ["dropped"] * 7
    d = df.filter(pl.col("outcome") == "dropped")
    assert set(d["drop_reason"].to_list()) == {"CPU_BACKLOG"}
    assert set(d["drop_stage"].to_list()) == {"backlog"}
    assert d["cpu_backlog"].to_list() == [10] * 7  # kfree_skb_reason (fixed.drop)
    assert d["cpu"].to_list() == [0] * 7  # dropped on the enqueuing CPU
    sn = r.counters["softnet_stat"]
    assert [x["dropped"] for x in sn] == [0, 7]  # counted on the target's softnet_data
    assert [x["processed"] for x in sn] == [0, 3]
    assert r.counters["softirqs"]["NET_RX"][1] == 1 and sn[1]["received_rps"] == 1
    assert {x["reason"]: x["count"] for x in r.summary["drops"]} == {"CPU_BACKLOG": 7}


def test_flow_limit_drops_the_flow_holding_half_the_history(tmp_path: Path) -> None:
    prof = _profile(tmp_path, ipi=10_000_000)
    n = 200
    r = run([{"ts_ns": 0}] * n, prof, "host.cpus=2", "nic.combined=1", "nic.rx=512",
            'sysfs.rps_cpus=["1"]', "net.core.netdev_max_backlog=200",
            'net.core.flow_limit_cpu_bitmap="0"', "app[0].cpu=0", "app[0].rcvbuf=100000000",
            *APP)
    # the flow's bucket is not bucket 0 (the zeroed history's): the count below relies on it
    # (ixgbe hashes UDP on the addresses only)
    fl = _skb_hash(hash_frames(MICROSOFT_KEY, _addrs(a16("10.0.0.2"), 1),
                               _addrs(a16("10.0.0.1"), 1), np.array([4000]), np.array([9000]),
                               np.zeros(1, bool), np.zeros(1, bool)), np.zeros(1, np.int64))
    assert hash_32(int(fl[0]), 12) != 0
    # qlen 0..99 (< max_backlog/2) skip the flow limit; from qlen 100 each enqueue adds to the
    # flow's bucket, and the 65th such packet (qlen 164, bucket 65 > FLOW_LIMIT_HISTORY/2) is
    # dropped, as is every later packet of the flow while the queue stays at 164
    df = pk(r)
    assert df["outcome"].to_list() == ["delivered"] * 164 + ["dropped"] * 36
    sn = r.counters["softnet_stat"]
    assert sn[0]["flow_limit_count"] == 36  # the enqueuing CPU's table
    assert sn[1]["dropped"] == 36
    # process_backlog's quota (dev_weight 64): 164 packets take 3 polls, each its own NET_RX run
    assert r.counters["model"]["backlog_polls"] == [0, 3]
    assert r.counters["softirqs"]["NET_RX"][1] == 3
    # without the bitmap, the queue takes all 200 (qlen <= 200)
    r2 = run([{"ts_ns": 0}] * n, prof, "host.cpus=2", "nic.combined=1", "nic.rx=512",
             'sysfs.rps_cpus=["1"]', "net.core.netdev_max_backlog=200", "app[0].cpu=0",
             "app[0].rcvbuf=100000000", *APP)
    assert pk(r2)["outcome"].to_list() == ["delivered"] * n
    assert r2.counters["softnet_stat"][0]["flow_limit_count"] == 0


def test_dev_weight_is_the_backlog_quota(tmp_path: Path) -> None:
    prof = _profile(tmp_path, ipi=10_000_000)
    r = run([{"ts_ns": 0}] * 20, prof, "host.cpus=2", "nic.combined=1",
            'sysfs.rps_cpus=["1"]', "net.core.dev_weight=8", "app[0].cpu=0", *APP)
    # 20 packets at 8 per process_backlog call: 8, 8, 4 -> 3 polls, 2 of them full
    assert r.counters["model"]["backlog_polls"] == [0, 3]
    assert r.counters["model"]["backlog_packets"] == [0, 20]
    assert r.counters["softirqs"]["NET_RX"][1] == 3


def test_veth_runs_net_rx_in_the_senders_context(profile: str) -> None:
    rows = [{"ts_ns": i * 100_000} for i in range(5)]
    r = run(rows, profile, "host.cpus=2", "nic.driver=veth", "nic.combined=1", "nic.gro=false",
            "app[0].cpu=1", *APP)
    df = pk(r)
    p = df.row(1, named=True)
    t = p["t_wire"]
    assert t == 100_000  # no link: the tap time (84 B at 800 Gb/s is 0.84 ns)
    # tcpreplay (CPU 0, the first CPU no app uses) starts its own transmit 1000 before the tap;
    # veth_xmit 100 -> t+100, enqueue_to_backlog 50 -> t+150; local_bh_enable runs NET_RX:
    # softirq+net_rx_action 200, process_backlog 200, __netif_receive_skb_core 100 -> t+650,
    # ip, route, local, udp -> t+1050, wake-up 200 -> t+1250; the reader wakes t+3250,
    # context switch -> t+4250, copy 200 -> t+4450, work -> t+5450
    assert p["t_done"] == t + 5450
    cpu = {"driver": 100, "netif": 50, "backlog": 100, "ip": 100, "l4": 300, "copy": 200}
    wait = {"driver": 0, "netif": 0, "backlog": 400, "ip": 0, "l4": 0, "copy": 3000}
    for s in cpu:
        assert (p[f"cpu_{s}"], p[f"wait_{s}"]) == (cpu[s], wait[s]), s
    assert p["wait_gro"] is None and p["t_irq"] is None
    assert df["cpu"].to_list() == [0] * 5
    c = r.counters
    assert c["softirqs"]["NET_RX"] == [5, 0]  # one NET_RX run per packet, on the sender's CPU
    assert [x["processed"] for x in c["softnet_stat"]] == [5, 0]
    assert c["interrupts"] == {} and c["napi"] == []
    assert c["ethtool"] == {"rx_packets": 5, "rx_bytes": 300, "rx_dropped": 0}
    cpu_t = pl.from_arrow(r.cpu)
    assert isinstance(cpu_t, pl.DataFrame)
    comm = dict(cpu_t.group_by("symbol").agg(pl.col("comm").cast(pl.String).unique())
                .iter_rows())
    for sym in ("__netif_receive_skb_core", "ip_rcv", "__udp4_lib_rcv", "process_backlog",
                "net_rx_action", "veth_xmit", "enqueue_to_backlog", "packet_sendmsg"):
        assert comm[sym] == ["tcpreplay"], sym
    assert comm["app_work"] == ["app0"]


def test_veth_sender_cpu_and_name_follow_the_config(profile: str) -> None:
    r = run([{"ts_ns": 0}, {"ts_ns": 50_000}], profile, "host.cpus=4", "nic.driver=veth",
            "nic.combined=1", "nic.gro=false", "app[0].cpu=0", "nic.sender-cpu=2",
            'nic.sender="pktgen"', *APP)
    assert r.counters["softirqs"]["NET_RX"] == [0, 0, 2, 0]
    cpu_t = pl.from_arrow(r.cpu)
    assert isinstance(cpu_t, pl.DataFrame)
    core = cpu_t.filter(pl.col("symbol") == "__netif_receive_skb_core")
    assert core["comm"].cast(pl.String).unique().to_list() == ["pktgen"]
    with pytest.raises(ConfigError, match=r"nic\.sender-cpu"):
        resolve_config(None, ["host.cpus=2", "nic.sender-cpu=5"])


def test_rps_off_keeps_the_list_path() -> None:
    # no rps_cpus: no backlog stage, no IPI, the same figures as before the backlog existed
    r = run([{"ts_ns": 0}], ROUND, "host.cpus=2", "nic.combined=1", "app[0].cpu=1", *APP)
    p = pk(r).row(0, named=True)
    assert p["cpu_backlog"] is None and p["t_done"] == 7817
    assert r.counters["model"]["backlog_polls"] == [0, 0]


# ---- invariants with RPS / RFS / the flow limit / veth on (tests/test_model_invariants.py's)

rps_configs = st.fixed_dictionaries({
    "host.cpus": st.integers(1, 4),
    "nic.combined": st.integers(1, 3),
    "nic.driver": st.sampled_from(["ixgbe", "mlx5", "veth"]),
    "nic.gro": st.booleans(),
    "nic.sender-tso": st.booleans(),
    "sysfs.threaded": st.booleans(),  # a threaded veth NAPI can fill the ptr_ring
    "host.kernel": st.sampled_from(['"5.15"', '"6.6"', '"6.18"']),
    "rps": st.sampled_from(["", "0", "0-3", "1-2"]),
    "net.core.netdev_max_backlog": st.sampled_from([0, 3, 1000]),
    "net.core.dev_weight": st.sampled_from([1, 4, 64]),
    "flow_limit": st.booleans(),
    "rfs": st.booleans(),
    "work": st.sampled_from([0, 2_000, 50_000]),
    "app_cpu": st.integers(0, 3),
})


def run_rps(rows: list[dict[str, Any]], c: dict[str, Any]) -> SimResult:
    cpus = c["host.cpus"]
    sets = [f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in c.items() if "." in k]
    if c["rps"]:
        cpus_ok = ",".join(str(x) for x in range(cpus) if str(x) in c["rps"] or (
            "-" in c["rps"] and int(c["rps"][0]) <= x <= int(c["rps"][-1]))) or "0"
        sets.append(f'sysfs.rps_cpus=["{cpus_ok}"]')
    if c["flow_limit"]:
        sets.append(f'net.core.flow_limit_cpu_bitmap="0-{cpus - 1}"')
    if c["rfs"]:
        sets += ["net.core.rps_sock_flow_entries=64", "sysfs.rps_flow_cnt=16"]
    sets += ['app[0].match="udp dport 9000"', f"app[0].cpu={c['app_cpu'] % cpus}",
             f"app[0].work-ns={c['work']}", "app[0].rcvbuf=4608",
             'app[1].match="tcp dport 5000"', f"app[1].cpu={(c['app_cpu'] + 1) % cpus}",
             "app[1].batch=16", 'host.addresses=["10.0.0.1", "02:00:00:00:00:01"]']
    return simulate(frames(rows), resolve_config(None, sets), PROFILE, ReplayOptions())


PROFILE = load_profile("default")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(traces(reorder=True), rps_configs)
def test_invariants_hold_with_rps_and_veth(rows: list[dict[str, Any]], c: dict[str, Any]) -> None:
    r = run_rps(rows, c)
    p = check_accounting(r, len(rows))
    # every CPU_BACKLOG drop is in softnet `dropped`; every skb that reached the core is counted
    sn = r.counters["softnet_stat"]
    # softnet counts skbs: the segments of one GRO skb share its `skb` frame
    n_bl = int(p.filter(pl.col("drop_reason") == "CPU_BACKLOG")["skb"].n_unique())
    assert sum(x["dropped"] for x in sn) == n_bl
    assert sum(x["flow_limit_count"] for x in sn) <= n_bl
    if c["nic.driver"] == "veth":
        assert r.counters["interrupts"] == {}
    r2 = run_rps(rows, c)
    assert r2.packets.equals(r.packets) and r2.counters == r.counters


def test_veth_with_gro_polls_the_ptr_ring_napi_in_the_senders_context(profile: str) -> None:
    # GRO on the peer: veth_xmit -> ptr_ring -> veth_poll (weight 64) scheduled on the sender's
    # CPU; one send, one NET_RX run, one poll; GRO completes each PSH segment
    rows = [{"ts_ns": i * 100_000, "proto": 6, "sport": 5555, "dport": 9000, "tcp_flags": 0x18,
             "tcp_seq": 1000 + 100 * i, "payload_len": 100, "wire_len": 166, "cap_len": 166}
            for i in range(4)]
    sets = ["host.cpus=2", "nic.driver=veth", "nic.combined=1", "nic.gro=true", "app[0].cpu=1",
            'app[0].match="tcp dport 9000"']
    # the sending end without TSO makes the skbs GRO-eligible (veth_skb_is_eligible_for_gro)
    r = run(rows, profile, *sets, "nic.sender-tso=false")
    df = pk(r)
    p = df.row(1, named=True)
    # tap t; veth_xmit 100 -> t+100 (driver); local_bh_enable: softirq+net_rx_action 200,
    # veth_poll 500 (fixed.napi_poll), GRO 50 -> t+850 (no backlog, no netif_rx); + 40
    # (fixed.skb_free): net_rx_action's first loop turn frees frame 0's skb, which the reader
    # on CPU 1 deferred to the sender's CPU that allocated it (TCP, 5.19+: skb_defer_free_flush)
    assert 0 <= p["t_wire"] - 100_000 <= 2  # 190 B on an 800 Gb/s "link": under 2 ns
    assert (p["cpu_driver"], p["wait_driver"]) == (100, 0)
    assert (p["cpu_gro"], p["wait_gro"]) == (50, 740)
    assert p["cpu_netif"] == 100 and p["cpu_backlog"] is None
    c = r.counters
    assert c["softirqs"]["NET_RX"] == [4, 0]
    assert [x["processed"] for x in c["softnet_stat"]] == [4, 0]
    assert c["napi"][0]["polls"] == 4 and c["napi"][0]["irqs"] == 0
    assert c["interrupts"] == {}
    assert df["outcome"].to_list() == ["delivered"] * 4
    # with TSO on the sending end (veth's default) GRO on the peer changes nothing: netif_rx
    # and the backlog, as this machine's kernel showed (process_backlog sampled, no veth_poll)
    r2 = run(rows, profile, *sets)
    assert pk(r2)["cpu_backlog"].null_count() == 0 and r2.counters["napi"] == []
    assert r2.counters["softirqs"]["NET_RX"] == [4, 0]


# ---- the veth model against this machine's kernel (root, network namespaces, tcpreplay)


@pytest.mark.root
def test_veth_model_matches_the_real_kernel_counts(tmp_path: Path) -> None:
    import shutil

    from replay.real.netns import netns_available

    why = "tcpreplay is not installed" if shutil.which("tcpreplay") is None else netns_available()
    if why is not None:
        pytest.skip(f"real-kernel harness unavailable: {why}")
    import json

    from typer.testing import CliRunner

    from replay.cli import app
    from replay.model.config import dump_toml
    from replay.real.harness import RealOptions, run_real
    from replay.store.rundir import read_run
    from tests.test_real_kernel import _flood

    trace = _flood(tmp_path / "paced.pcap", 2000, payload=256)
    cfg = tmp_path / "c.toml"
    cfg.write_text('[[app]]\nmatch = "udp dport 27015"\ncpu = 1\nwork-ns = 2000\nbatch = 8\n')
    res = run_real([trace], tmp_path / "real", cfg, [], ReplayOptions(pps=20000),
                   RealOptions(sender_cpu=0, max_seconds=10))
    real = read_run(res.run_dir)
    if not (res.run_dir / "sent.pcapng").exists():
        pytest.skip("dumpcap is not installed: no capture of the send times to replay")
    meta = json.loads((res.run_dir / "run.json").read_text())
    assert meta["config"]["nic"]["driver"] == "veth" and meta["config"]["nic"]["sender-cpu"] == 0
    (tmp_path / "m.toml").write_text(dump_toml(meta["config"]))
    out = CliRunner().invoke(app, ["run", str(res.run_dir / "sent.pcapng"), "-c",
                                   str(tmp_path / "m.toml"), "-o", str(tmp_path / "model")])
    assert out.exit_code == 0, out.output
    model = read_run(tmp_path / "model")
    sent = real.meta["real"]["sender"]["packets"]
    mc, rc = model.counters, real.counters
    # one NET_RX run and one `processed` per packet on the sending CPU, none on the reader's
    # (KERNEL.md §3c); the real counters are host-wide, so other work may add a little
    assert mc["softirqs"]["NET_RX"][0] == mc["softnet_stat"][0]["processed"] == sent
    assert mc["softirqs"]["NET_RX"][1] == 0
    assert abs(rc["softirqs"]["NET_RX"][0] / sent - 1) <= 0.02
    assert abs(rc["softnet_stat"][0]["processed"] / sent - 1) <= 0.02
    # paced well below the reader's rate: everything delivered on both sides
    assert model.meta["summary"]["outcomes"]["delivered"] == sent
    assert rc["snmp"]["Udp"]["InDatagrams"] == sent
    cpu = model.table("cpu")
    rx = cpu.filter(pl.col("stage").is_in(["netif", "backlog", "ip", "l4"]))
    assert set(rx["comm"].cast(pl.String).unique()) == {"tcpreplay"}


def test_threaded_veth_napi_behind_a_spinning_sender_fills_the_ptr_ring() -> None:
    # veth with GRO on the peer and a GRO-eligible skb (no TSO on the sender): each skb goes to
    # the 256-entry ptr_ring, whose NAPI here is a kthread on the sender's CPU. The sender sends
    # all 3,000 frames at top speed within its slice, so the kthread runs after it: 256 fit, the
    # rest are freed at veth_xmit (NOT_SPECIFIED, stage driver), their CPU in the driver stage.
    # The reader's buffer is large: 256 skbs at default costs (list-RX route hint, 5.7+) reach
    # the socket faster than the reader drains rmem_default, which is not the point here
    cfg = resolve_config(None, ['nic.driver="veth"', "nic.gro=true", "nic.sender-tso=false",
                                "sysfs.threaded=true", "host.cpus=2",
                                'app[0].match="udp dport 9000"', "app[0].cpu=1",
                                "app[0].rcvbuf=1000000000", 'host.addresses=["10.0.0.1"]'])
    r = simulate(frames([{"ts_ns": 0} for _ in range(3000)]), cfg, PROFILE,
                 ReplayOptions(topspeed=True))
    p = pk(r)
    dropped = p.filter(pl.col("outcome") == "dropped")
    assert dropped.height == 3000 - 256
    assert set(dropped["drop_reason"].to_list()) == {"NOT_SPECIFIED"}
    assert set(dropped["drop_stage"].to_list()) == {"driver"}
    cpu = pl.from_arrow(r.cpu)
    assert isinstance(cpu, pl.DataFrame)
    drv = int(cpu.filter(pl.col("stage") == "driver")["ns"].sum())
    assert int(p["cpu_driver"].fill_null(0).sum()) == drv
