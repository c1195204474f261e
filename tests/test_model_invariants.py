"""Invariants of every run, as property tests over random traces and configs: one outcome per
packet, the latency sum, CPU conservation between packets.parquet and cpu.parquet, determinism."""

from __future__ import annotations

from typing import Any

import polars as pl
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from replay.model.config import resolve_config
from replay.model.costs import load_profile
from replay.model.simulate import simulate
from replay.model.stages import STAGE_IDS
from replay.runner import ReplayOptions
from tests.framegen import frames

PROFILE = load_profile("default")


@st.composite
def traces(draw: Any, reorder: bool = False) -> list[dict[str, Any]]:
    n = draw(st.integers(1, 120))
    rows = []
    t = 0
    seq: dict[int, int] = {}
    for _ in range(n):
        t += draw(st.sampled_from([0, 50, 700, 5_000, 80_000]))
        kind = draw(st.sampled_from(["udp", "udp", "tcp", "tcp", "ack", "syn", "arp", "icmp",
                                     "other"]))
        src = f"10.0.1.{draw(st.integers(2, 6))}"
        dst = draw(st.sampled_from(["10.0.0.1", "10.0.0.1", "10.0.0.1", "10.0.0.9"]))
        r: dict[str, Any] = {"ts_ns": t, "src": src, "dst": dst}
        if kind == "udp":
            size = draw(st.sampled_from([60, 200, 1514]))
            r.update(proto=17, dport=draw(st.sampled_from([9000, 9001])), wire_len=size,
                     cap_len=size, payload_len=size - 42)
        elif kind in ("tcp", "ack", "syn"):
            # a SYN opens (or reopens) a connection the listener of run()'s configs takes
            port = draw(st.integers(1, 3 if kind != "syn" else 6))
            pay = 1448 if kind == "tcp" else 0
            s0 = seq.get(port, 1000)
            seq[port] = s0 + pay
            # reordering and retransmission: a segment ahead of its turn (out of order until the
            # next fills the gap) or one already sent (old data); the sequence wraps at 2^32
            jump = draw(st.sampled_from([0, 0, 0, 0, 1448, -1448, -2896])) if pay and reorder else 0
            r.update(proto=6, sport=40000 + port, dport=5000, wire_len=66 + pay, cap_len=66 + pay,
                     payload_len=pay, tcp_seq=(s0 + jump - (kind == "syn")) % 2**32, tcp_ack=1,
                     tcp_flags=0x02 if kind == "syn" else 0x10 | (0x08 if draw(st.booleans()) else 0),
                     tcp_hlen=32,
                     tcp_opt_hash=draw(st.integers(0, 1)), ip_id=draw(st.integers(0, 3)))
        elif kind == "arp":
            r.update(ip_version=0, ethertype=0x0806, proto=None, sport=None, dport=None,
                     src="0.0.0.0", dst="0.0.0.0", dst_mac=b"\xff" * 6, payload_len=0)
        elif kind == "icmp":
            r.update(proto=1, sport=None, dport=None, payload_len=56, wire_len=98, cap_len=98)
        else:
            r.update(proto=47, sport=None, dport=None, payload_len=40)
        rows.append(r)
    return rows


configs = st.fixed_dictionaries({
    "host.cpus": st.integers(1, 4),
    "nic.combined": st.integers(1, 4),
    "nic.rx": st.sampled_from([64, 128, 512]),
    "nic.rx-usecs": st.sampled_from([0, 1, 8, 50]),  # 1: ixgbe dynamic ITR
    "nic.gro": st.booleans(),
    "nic.driver": st.sampled_from(["ixgbe", "mlx5", "generic"]),
    "host.kernel": st.sampled_from(['"5.15"', '"6.6"', '"6.12"', '"6.18"']),
    "host.hz": st.sampled_from([250, 1000]),
    "net.core.netdev_budget": st.sampled_from([8, 64, 300]),
    "net.core.gro_normal_batch": st.sampled_from([1, 8]),
    "work": st.sampled_from([0, 2_000, 50_000]),
    "batch": st.sampled_from([1, 4]),
    "rcvbuf": st.sampled_from([4608, 212992]),
    "app_cpu": st.integers(0, 3),
    "sysfs.threaded": st.booleans(),  # threaded NAPI: the kthreads instead of NET_RX
    "adaptive": st.booleans(),  # ixgbe's dynamic ITR or mlx5's net_dim where the driver has one
    # the TCP app as a listener: its backlog, cookies, accept() work (model/engine.py "Listen
    # sockets"); None: no listener
    "listen": st.sampled_from([None, (0, 1, 0), (1, 0, 50_000), (4096, 1, 0)]),
    "net.core.busy_read": st.sampled_from([0, 0, 50]),  # readers busy-poll their socket's NAPI
    # the NIC's aggregation where the driver has it: ixgbe RSC / mlx5 LRO, mlx5 hardware GRO
    "hwagg": st.sampled_from(["off", "lro", "gro-hw"]),
})


def run(rows: list[dict[str, Any]], c: dict[str, Any]) -> Any:
    cpus = c["host.cpus"]
    sets = [f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in c.items() if "." in k]
    if c.get("adaptive") and c["nic.driver"] in ("ixgbe", "mlx5"):
        sets.append("nic.adaptive-rx=true")
    if c.get("hwagg") == "lro" and c["nic.driver"] in ("ixgbe", "mlx5"):
        sets.append("nic.large-receive-offload=true")
    if c.get("hwagg") == "gro-hw" and c["nic.driver"] == "mlx5" and c["nic.gro"]:
        sets.append("nic.rx-gro-hw=true")
    if c["host.hz"] == 1000:
        sets.append("net.core.netdev_budget_usecs=2000")
    sets += ['app[0].match="udp dport 9000"', f"app[0].cpu={c['app_cpu'] % cpus}",
             f"app[0].work-ns={c['work']}", f"app[0].batch={c['batch']}",
             f"app[0].rcvbuf={c['rcvbuf']}",
             'app[1].match="tcp dport 5000"', f"app[1].cpu={(c['app_cpu'] + 1) % cpus}",
             "app[1].batch=16", 'host.addresses=["10.0.0.1", "02:00:00:00:00:01"]']
    if c.get("listen") is not None:
        backlog, cookies, accept_ns = c["listen"]
        sets += ["app[1].listen=true", f"app[1].backlog={backlog}",
                 f"net.ipv4.tcp_syncookies={cookies}", f"app[1].accept-ns={accept_ns}"]
    cfg = resolve_config(None, sets)
    return simulate(frames(rows), cfg, PROFILE, ReplayOptions())


def df(t: pa.Table) -> pl.DataFrame:
    out = pl.from_arrow(t)
    assert isinstance(out, pl.DataFrame)
    return out


def check_accounting(r: Any, n_frames: int) -> pl.DataFrame:
    """What every run must satisfy: one outcome per frame (a drop with a stage and a reason,
    nothing else with either), t_done - t_wire equal to the sum of the stages' waits and CPU,
    and, per stage, the packets' cpu_S summing to that stage's CPU in cpu.parquet."""
    p = df(r.packets)
    assert len(p) == n_frames
    assert p["outcome"].null_count() == 0
    dropped = p["outcome"] == "dropped"
    assert (p.filter(dropped)["drop_reason"].null_count()) == 0
    assert (p.filter(dropped)["drop_stage"].null_count()) == 0
    assert p.filter(~dropped)["drop_reason"].null_count() == int((~dropped).sum())
    rx = p.filter(pl.col("outcome") != "ignored")
    parts = [pl.col(f"{k}_{s}").fill_null(0) for s in STAGE_IDS for k in ("wait", "cpu")]
    chk = rx.select((pl.col("t_done") - pl.col("t_wire")).alias("lat"),
                    pl.sum_horizontal(parts).alias("sum"),
                    pl.min_horizontal([pl.col(f"wait_{s}") for s in STAGE_IDS]).alias("minw"))
    assert (chk["lat"] == chk["sum"]).all()
    assert (chk["minw"].fill_null(0) >= 0).all()
    cpu = df(r.cpu)
    by_stage = {str(k): int(v) for k, v in
                cpu.filter(pl.col("stage").is_not_null()).group_by("stage").agg(pl.col("ns").sum())
                .iter_rows()}
    for s in STAGE_IDS:
        assert int(p[f"cpu_{s}"].fill_null(0).sum()) == by_stage.get(s, 0), s
    return p


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(traces(reorder=True), configs)
def test_run_invariants(rows: list[dict[str, Any]], c: dict[str, Any]) -> None:
    r = run(rows, c)
    p = check_accounting(r, len(rows))
    # delivered packets reached the application
    assert p.filter(pl.col("outcome") == "delivered")["cpu_app"].null_count() == 0
    # threaded NAPI (no RPS here): every poll ran in a napi/ kthread, none in NET_RX
    if c["sysfs.threaded"]:
        assert set(r.counters["softirqs"]["NET_RX"]) == {0}
        assert r.counters["model"]["ksoftirqd_wakeups"] == [0] * c["host.cpus"]
    # deterministic: the same inputs give identical outputs
    r2 = run(rows, c)
    assert r2.packets.equals(r.packets)
    assert r2.cpu.equals(r.cpu)
    assert r2.counters == r.counters
