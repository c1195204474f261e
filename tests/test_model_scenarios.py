"""Hand-computed scenarios: every timestamp and counter below follows from the kernel rules
(KERNEL.md §2-§4) and the round-number cost profile in tests/data/round-costs.toml."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from replay.model.config import resolve_config
from replay.model.costs import load_profile
from replay.model.drivers import DRIVERS
from replay.model.rss import MICROSOFT_KEY, hash_frames, indirection_table, queue_of
from replay.model.simulate import SimResult, simulate
from replay.runner import ReplayOptions
from tests.framegen import a16, frames

ROUND = str(Path(__file__).parent / "data" / "round-costs.toml")


def run(rows: list[dict[str, Any]], *sets: str, profile: str = ROUND,
        opts: ReplayOptions | None = None) -> SimResult:
    cfg = resolve_config(None, [f'costs.profile="{profile}"', *sets])
    return simulate(frames(rows), cfg, load_profile(profile), opts or ReplayOptions())


def slow_profile(tmp_path: Path, **over: int) -> str:
    """round-costs with some entries replaced, e.g. hardirq=1_000_000."""
    sections = {"hardirq": "fixed", "driver": "stage", "napi_poll": "fixed"}
    body = [f'[profile]\nname = "slow"\nghz = 1.0\nbase = "{ROUND}"\n']
    for k, v in over.items():
        body.append(f'[{sections[k]}.{k}]\nbase = {v}\nsource = "test"\n')
    p = tmp_path / "slow.toml"
    p.write_text("\n".join(body))
    return str(p)


def pk(r: SimResult) -> pl.DataFrame:
    df = pl.from_arrow(r.packets)
    assert isinstance(df, pl.DataFrame)
    return df


APP = ['app[0].match="udp dport 9000"', "app[0].cpu=1", "app[0].work-ns=1000"]


def test_two_frames_every_stage_by_hand() -> None:
    r = run([{"ts_ns": 0}, {"ts_ns": 1_000_000}], "host.cpus=2", "nic.combined=1", *APP)
    df = pk(r)
    first = df.row(0, named=True)
    # 60 B + FCS/preamble/IFG = 84 B = 672 bits at 10 Gb/s: last bit at 67 ns; DMA 1000 ns
    # IRQ at 1067 (ITR: an idle queue fires at once); hard IRQ 1000 -> 2067; softirq+net_rx_action
    # 200 -> poll starts 2267; napi poll 500 -> driver 2767..2867; GRO 50 -> 2917; list RX:
    # netif 3017, ip 3117, route 3217; local 3317; udp 3417 + wake-up 200 -> 3617; the reader
    # sleeps on idle CPU 1: IPI 1000 + the scheduler's part 1000 -> it wakes 3617+2000 = 5617,
    # context switch 1000, copy+consume 200 -> 6817, work 1000 -> 7817
    assert first["t_wire"] == 67
    assert first["t_irq"] == 1067
    assert first["t_poll"] == 2267
    assert first["t_done"] == 7817
    expect_cpu = {"driver": 100, "gro": 50, "netif": 100, "ip": 100, "route": 100, "local": 100,
                  "l4": 300, "copy": 200, "app": 1000}
    expect_wait = {"driver": 2700, "gro": 0, "netif": 0, "ip": 0, "route": 0, "local": 0,
                   "l4": 0, "copy": 3000, "app": 0}
    for s, v in expect_cpu.items():
        assert first[f"cpu_{s}"] == v, s
        assert first[f"wait_{s}"] == expect_wait[s], s
    assert first["wait_backlog"] is None and first["cpu_backlog"] is None
    assert first["outcome"] == "delivered" and first["app"] == 0 and first["cpu"] == 0
    second = df.row(1, named=True)
    # the reader went back to sleep (a 300 ns recvmsg found nothing); the same path 1 ms later
    assert second["t_wire"] == 1_000_067
    assert second["t_done"] == 1_007_817
    for s in expect_cpu:
        assert second[f"cpu_{s}"] == first[f"cpu_{s}"]
        assert second[f"wait_{s}"] == first[f"wait_{s}"]
    c = r.counters
    assert c["softirqs"]["NET_RX"] == [2, 0]
    assert c["softnet_stat"][0]["processed"] == 2
    assert c["interrupts"] == {"eth0-TxRx-0": [2, 0]}
    assert c["snmp"]["Udp"]["InDatagrams"] == 2
    assert c["ethtool"]["rx_packets"] == 2 and c["ethtool"]["rx_missed_errors"] == 0
    assert c["napi"][0] == {"queue": 0, "cpu": 0, "irqs": 2, "polls": 2, "arms": 2,
                            "packets": 2, "budget_exhausted": 0, "timers": 0}


def test_ring_overflow_counts_rx_missed_errors(tmp_path: Path) -> None:
    # the CPU sits in a 1 ms hard IRQ while 100 frames arrive back to back: a 64-descriptor ring
    # holds 63 (ixgbe keeps one descriptor unused), the other 37 are missed
    prof = slow_profile(tmp_path, hardirq=1_000_000)
    rows = [{"ts_ns": 0} for _ in range(100)]
    r = run(rows, "host.cpus=2", "nic.combined=1", "nic.rx=64", *APP, profile=prof,
            opts=ReplayOptions(topspeed=True))
    df = pk(r)
    dropped = df.filter(pl.col("outcome") == "dropped")
    assert len(dropped) == 37
    assert set(dropped["drop_reason"].to_list()) == {"rx_missed_errors"}
    assert set(dropped["drop_stage"].to_list()) == {"driver"}
    assert dropped["frame"].to_list() == list(range(64, 101))
    assert r.counters["ethtool"]["rx_missed_errors"] == 37
    assert r.counters["ethtool"]["rx_packets"] == 63
    assert (df["outcome"] == "delivered").sum() == 63


def ports_for_queues(nq: int, dport: int = 9000) -> list[int]:
    """Source ports whose flows land on queues 0..nq-1 (ixgbe: UDP hashed on L3 only, so use
    different source addresses instead: returns host octets)."""
    drv = DRIVERS["ixgbe"]
    indir = indirection_table(drv.rss_table, nq)
    found: dict[int, int] = {}
    for octet in range(2, 250):
        src = np.frombuffer(a16(f"10.0.1.{octet}"), np.uint8)[None, :]
        dst = np.frombuffer(a16("10.0.0.1"), np.uint8)[None, :]
        h = hash_frames(MICROSOFT_KEY, src, dst, np.array([1000]), np.array([dport]),
                        np.array([False]), np.array([False]))
        q = int(queue_of(h, indir)[0])
        found.setdefault(q, octet)
        if len(found) == nq:
            break
    return [found[q] for q in range(nq)]


def test_budget_exhaustion_over_five_queues(tmp_path: Path) -> None:
    # 5 queues on CPU 0, 100 frames each waiting when the softirq starts: round 1 polls each once
    # (64) and 5 x 64 = 320 > netdev_budget 300 -> one time_squeeze (budget); round 2 finishes
    prof = slow_profile(tmp_path, hardirq=1_000_000)
    octets = ports_for_queues(5)
    rows = [{"ts_ns": 0, "src": f"10.0.1.{o}"} for _ in range(100) for o in octets]
    r = run(rows, "host.cpus=2", "nic.combined=5", "irq.affinity=[0,0,0,0,0]",
            'app[0].match="udp dport 9000"', "app[0].cpu=1", "app[0].rcvbuf=100000000",
            profile=prof, opts=ReplayOptions(topspeed=True))
    c = r.counters
    assert c["softnet_stat"][0]["time_squeeze"] == 1
    assert c["model"]["time_squeeze_budget"] == [1, 0]
    assert c["softirqs"]["NET_RX"][0] == 2
    for q in range(5):
        assert c["napi"][q]["polls"] == 2
        assert c["napi"][q]["budget_exhausted"] == 1
        assert c["napi"][q]["packets"] == 100
    assert (pk(r)["outcome"] == "delivered").all()


@pytest.mark.parametrize("kernel", ["5.15", "6.12"])
def test_one_busy_queue_never_exhausts_the_budget(kernel: str) -> None:
    # KERNEL.md §3.1: a NAPI that used its whole weight is polled once per net_rx_action, so
    # one queue with 500 waiting frames takes 8 rounds (7 x 64 + 52) and no time_squeeze
    rows = [{"ts_ns": 0} for _ in range(500)]
    r = run(rows, "host.cpus=2", "nic.combined=1", f'host.kernel="{kernel}"', *APP[:2],
            "app[0].rcvbuf=100000000", opts=ReplayOptions(topspeed=True))
    c = r.counters
    assert c["napi"][0]["polls"] == 8
    assert c["napi"][0]["budget_exhausted"] == 7
    assert c["softnet_stat"][0]["time_squeeze"] == 0


def test_softirq_restart_limit_hands_off_to_ksoftirqd() -> None:
    # 700 waiting frames need 11 rounds; handle_softirqs runs at most 10 (MAX_SOFTIRQ_RESTART),
    # then wakes ksoftirqd, which runs the 11th: 11 NET_RX runs, one ksoftirqd wake-up
    rows = [{"ts_ns": 0} for _ in range(700)]
    r = run(rows, "host.cpus=2", "nic.combined=1", "nic.rx=1024", *APP[:2],
            "app[0].rcvbuf=100000000", opts=ReplayOptions(topspeed=True))
    c = r.counters
    assert c["napi"][0]["polls"] == 11
    assert c["softirqs"]["NET_RX"][0] == 11
    assert c["model"]["ksoftirqd_wakeups"][0] == 1
    ctx = pl.from_arrow(r.cpu)
    assert isinstance(ctx, pl.DataFrame)
    assert "ksoftirqd/0" in ctx["comm"].cast(pl.Utf8).to_list()


def test_time_squeeze_by_time_in_jiffies(tmp_path: Path) -> None:
    # 100 us per packet: a 64-packet poll lasts ~6.4 ms. HZ=250 (4 ms jiffies), budget_usecs
    # 8000 = 2 jiffies. Run 1 (jiffy 0..1): one poll, no squeeze; the restart check sees jiffy 1
    # >= start + MAX_SOFTIRQ_TIME (1 jiffy) -> ksoftirqd. Run 2 starts in jiffy 1 (limit 3) and
    # its poll ends in jiffy 3: time_squeeze by time.
    prof = slow_profile(tmp_path, driver=100_000)
    rows = [{"ts_ns": 0} for _ in range(200)]
    r = run(rows, "host.cpus=2", "nic.combined=1", *APP[:2], "app[0].rcvbuf=100000000",
            profile=prof, opts=ReplayOptions(topspeed=True))
    c = r.counters
    assert c["model"]["time_squeeze_time"][0] == 1
    assert c["model"]["time_squeeze_budget"][0] == 0
    assert c["model"]["ksoftirqd_wakeups"][0] == 1
    assert c["napi"][0]["polls"] == 4  # 64 + 64 + 64 + 8


def tcp_rows(n: int, *, psh_last: bool = True, ts_change_at: int | None = None) -> list[dict[str, Any]]:
    rows = []
    for k in range(n):
        flags = 0x10 | (0x08 if psh_last and k == n - 1 else 0)
        rows.append({
            "ts_ns": k * 100, "proto": 6, "sport": 443, "dport": 5000, "wire_len": 1514,
            "cap_len": 1514, "payload_len": 1448, "tcp_seq": 1000 + 1448 * k, "tcp_ack": 77,
            "tcp_flags": flags, "tcp_hlen": 32, "ip_id": 10 + k,
            "tcp_opt_hash": 1 if ts_change_at is None or k < ts_change_at else 2,
        })
    return rows


TCP_APP = ['app[0].match="tcp dport 5000"', "app[0].cpu=1", "app[0].batch=64",
           "host.cpus=2", "nic.combined=1"]


def test_gro_merges_a_train_ending_in_psh(tmp_path: Path) -> None:
    # all ten segments wait in the ring (a 1 ms hard IRQ), so one poll sees the whole train;
    # with frames trickling in, each poll that empties the ring ends with a GRO flush instead
    r = run(tcp_rows(10), *TCP_APP, profile=slow_profile(tmp_path, hardirq=1_000_000),
            opts=ReplayOptions(topspeed=True))
    df = pk(r)
    assert df["skb"].n_unique() == 1 and df["skb"][0] == 1
    assert r.counters["softnet_stat"][0]["processed"] == 1  # one super-skb
    assert r.counters["snmp"]["Tcp"]["InSegs"] == 1
    assert (df["outcome"] == "delivered").all()
    # the stack's work of the super-skb is shared: 100 ns netif over 10 segments = 10 each
    assert df["cpu_netif"].to_list() == [10] * 10


def test_gro_trickle_flushes_at_each_empty_ring() -> None:
    # back-to-back 1514 B frames at 10 Gb/s arrive 1.23 us apart; the first poll (after a 1 us
    # hard IRQ and 700 ns of softirq/poll overhead) finds two segments, empties the ring and
    # napi_complete_done flushes them as one skb; the next IRQ waits for the 50 us ITR gap
    r = run(tcp_rows(10), *TCP_APP, opts=ReplayOptions(topspeed=True))
    assert pk(r)["skb"].to_list() == [1, 1] + [3] * 8


def test_gro_flushes_on_an_option_change(tmp_path: Path) -> None:
    r = run(tcp_rows(10, ts_change_at=4), *TCP_APP,
            profile=slow_profile(tmp_path, hardirq=1_000_000), opts=ReplayOptions(topspeed=True))
    df = pk(r)
    assert df["skb"].to_list() == [1] * 4 + [5] * 6
    assert r.counters["softnet_stat"][0]["processed"] == 2


def test_gro_off_passes_every_segment(tmp_path: Path) -> None:
    r = run(tcp_rows(10), *TCP_APP, "nic.gro=false",
            profile=slow_profile(tmp_path, hardirq=1_000_000), opts=ReplayOptions(topspeed=True))
    assert r.counters["softnet_stat"][0]["processed"] == 10
    assert pk(r)["skb"].to_list() == list(range(1, 11))


def test_no_socket_and_ignored() -> None:
    rows = [{"ts_ns": 0, "dport": 9000}, {"ts_ns": 10_000, "dport": 9999},
            {"ts_ns": 20_000, "dst": "10.0.0.77"}]
    r = run(rows, "host.cpus=2", "nic.combined=1", *APP, 'host.addresses=["10.0.0.1"]')
    df = pk(r)
    assert df["outcome"].to_list() == ["delivered", "dropped", "ignored"]
    assert df["drop_reason"].to_list()[1] == "NO_SOCKET"
    assert df["drop_stage"].to_list()[1] == "l4"
    assert r.counters["snmp"]["Udp"]["NoPorts"] == 1
    ign = df.row(2, named=True)
    assert ign["t_wire"] is None and ign["t_done"] is None and ign["queue"] is None


def test_cstate_exit_latency_delays_an_idle_cpus_interrupt() -> None:
    # the same two frames, the IRQ CPU idling in a state with a 5 us exit latency: the interrupt
    # is raised at the same time, the hard IRQ starts 5 us later, so does everything after it;
    # the exit is not CPU time (cpu_* unchanged, the 5 us are wait in the driver stage). The
    # reader's CPU 1 idles in the same state: its wake-up (an IPI, ttwu_queue_wakelist) waits
    # for that CPU's exit too, 5 us more in the socket queue (wait_copy)
    base = run([{"ts_ns": 0}, {"ts_ns": 1_000_000}], "host.cpus=2", "nic.combined=1", *APP)
    r = run([{"ts_ns": 0}, {"ts_ns": 1_000_000}], "host.cpus=2", "nic.combined=1", *APP,
            "host.cstate-exit-ns=5000")
    a, b = pk(base), pk(r)
    assert (b["t_irq"] - a["t_irq"]).to_list() == [0, 0]
    assert (b["t_poll"] - a["t_poll"]).to_list() == [5000, 5000]
    assert (b["t_done"] - a["t_done"]).to_list() == [10000, 10000]
    assert (b["wait_driver"] - a["wait_driver"]).to_list() == [5000, 5000]
    assert (b["wait_copy"] - a["wait_copy"]).to_list() == [5000, 5000]
    for s in ("driver", "gro", "netif", "ip", "route", "local", "l4", "copy", "app"):
        assert b[f"cpu_{s}"].to_list() == a[f"cpu_{s}"].to_list()
    assert r.summary["cpu_busy_ns"] == base.summary["cpu_busy_ns"]


def test_napi_defer_hard_irqs_lets_the_timer_poll_instead_of_an_irq() -> None:
    # KERNEL.md §3.3: napi_defer_hard_irqs=1, gro_flush_timeout=20 us. Frame 1 raises the IRQ;
    # its poll did work, so napi_complete_done keeps the IRQ masked and arms the 20 us timer.
    # Frame 2 (10 us later) waits for that timer's poll, which did work again: masked, timer
    # again; the next timer poll finds nothing, the count is spent, and the IRQ is re-enabled.
    rows = [{"ts_ns": 0}, {"ts_ns": 10_000}]
    sets = ["host.cpus=2", "nic.combined=1", *APP]
    base = run(rows, *sets)
    r = run(rows, *sets, "sysfs.napi_defer_hard_irqs=1", "sysfs.gro_flush_timeout=20000")
    assert base.counters["napi"][0]["irqs"] == 2
    napi = r.counters["napi"][0]
    assert (napi["irqs"], napi["timers"], napi["polls"], napi["arms"]) == (1, 2, 3, 1)
    assert r.counters["interrupts"] == {"eth0-TxRx-0": [1, 0]}
    df = pk(r)
    assert (df["outcome"] == "delivered").all()
    # frame 2 was picked up by the first timer poll (20 us after poll 1 ended), before the
    # IRQ it would otherwise have waited for (ITR: 50 us after the first one)
    assert df["t_poll"][1] < pk(base)["t_poll"][1]
    assert df["t_irq"][1] == df["t_irq"][0]  # no interrupt of its own


def test_defer_without_a_timeout_changes_nothing() -> None:
    # napi_complete_done keeps the IRQ masked only if gro_flush_timeout is set (dev.c:6722-6788)
    rows = [{"ts_ns": 0}, {"ts_ns": 10_000}]
    sets = ["host.cpus=2", "nic.combined=1", *APP]
    a = run(rows, *sets)
    b = run(rows, *sets, "sysfs.napi_defer_hard_irqs=5")
    assert pk(a).equals(pk(b))


def test_mlx5_period_modes() -> None:
    # KERNEL.md §3b: in CQE mode the 50 us period starts at the first completion, so a lone
    # packet on an idle queue waits for it; in EQE mode the period counts from the last
    # interrupt, so an idle queue interrupts at once (like Intel's ITR)
    rows = [{"ts_ns": 0}]
    sets = ["host.cpus=2", "nic.combined=1", 'nic.driver="mlx5"', *APP]
    cqe = pk(run(rows, *sets))
    eqe = pk(run(rows, *sets, "nic.rx-cqe-moder=false"))
    assert cqe["t_irq"][0] == 1067 + 50_000
    assert eqe["t_irq"][0] == 1067
    assert cqe["t_done"][0] - eqe["t_done"][0] == 50_000


def test_rx_cqe_moder_is_mlx5_only() -> None:
    from replay.errors import ConfigError

    with pytest.raises(ConfigError, match="mlx5 private flag"):
        resolve_config(None, ["nic.rx-cqe-moder=false"])


def test_switching_the_driver_says_where_its_own_defaults_differ() -> None:
    from replay.model.simulate import _driver_defaults_note

    assert _driver_defaults_note(resolve_config(None, [])) is None  # ixgbe: DESIGN.md's host
    note = _driver_defaults_note(resolve_config(None, ['nic.driver="mlx5"']))
    assert note == ("nic.driver mlx5: the driver's own defaults are rx 1024, adaptive-rx on; this run "
                    "uses rx 512, rx-usecs 50, rx-frames 0, adaptive-rx off (set nic.* to model it "
                    "as shipped)")
    shipped = ['nic.driver="mlx5"', "nic.rx=1024", "nic.adaptive-rx=true"]
    assert _driver_defaults_note(resolve_config(None, shipped)) is None
    assert "adaptive ITR on (I40E_ITR_DYNAMIC)" in str(
        _driver_defaults_note(resolve_config(None, ['nic.driver="i40e"'])))
