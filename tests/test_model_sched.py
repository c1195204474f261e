"""Hand-computed scheduler scenarios: threaded NAPI, local and remote wake-ups, C-state exit of
the reader's CPU, wake-up preemption (EEVDF and CFS). Costs from tests/data/round-costs.toml:
hard IRQ 1000, softirq + net_rx_action 200, napi poll 500, driver 100, GRO 50, netif/ip/route/
local/udp 100 each, try_to_wake_up 200, context switch 1000, recvmsg 300, copy + consume 200,
DMA 1000, latency.ipi 1000, latency.wakeup 1000."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from replay.errors import ConfigError
from replay.model.config import resolve_config
from replay.model.costs import load_profile
from replay.model.simulate import simulate
from replay.model.stages import STAGE_IDS
from replay.runner import ReplayOptions
from tests.framegen import frames
from tests.test_model_invariants import PROFILE, traces
from tests.test_model_scenarios import APP, ROUND, pk, run, slow_profile

TWO = [{"ts_ns": 0}, {"ts_ns": 1_000_000}]


def comms(r: object) -> set[str]:
    df = pl.from_arrow(r.cpu)  # type: ignore[attr-defined]
    assert isinstance(df, pl.DataFrame)
    return set(df["comm"].cast(pl.Utf8).to_list())


# ---------------------------------------------------------------------------- threaded NAPI


def test_threaded_napi_two_frames_by_hand() -> None:
    # IRQ at 1067, hard IRQ -> 2067; napi_schedule wakes napi/eth0-8193 on CPU 0 (idle: a local
    # wake-up, no IPI), context switch 1000 -> the poll starts 3067 (no softirq, no
    # net_rx_action); poll 500, driver 3667, GRO 3717, netif..udp 4217, wake-up 200 -> 4417;
    # the reader sleeps on idle CPU 1: IPI 1000 + scheduler 1000 -> 6417, switch 7417,
    # copy + consume 7617, work 8617
    r = run(TWO, "host.cpus=2", "nic.combined=1", *APP, "sysfs.threaded=true")
    df = pk(r)
    assert df["t_irq"].to_list() == [1067, 1_001_067]
    assert df["t_poll"].to_list() == [3067, 1_003_067]
    assert df["t_done"].to_list() == [8617, 1_008_617]
    assert df["wait_driver"].to_list() == [3500, 3500]
    c = r.counters
    assert c["softirqs"]["NET_RX"] == [0, 0]
    assert c["napi"][0]["polls"] == 2 and c["napi"][0]["irqs"] == 2
    cpu = pl.from_arrow(r.cpu)
    assert isinstance(cpu, pl.DataFrame)
    poll = cpu.filter(pl.col("symbol") == "ixgbe_poll")
    assert poll["comm"].cast(pl.Utf8).to_list() == ["napi/eth0-8193"] * 2
    assert poll["context"].cast(pl.Utf8).to_list() == ["task"] * 2
    assert poll["start"].to_list() == [2067, 1_002_067]  # the span opens at its context switch
    assert poll["end"].to_list() == [4417, 1_004_417]
    assert "net_rx_action" not in set(cpu["symbol"].cast(pl.Utf8).to_list())


def test_threaded_napi_shares_the_cpu_with_a_local_reader() -> None:
    # the reader on the IRQ's CPU 0: woken by the kthread at 4417 (local: runnable at once, no
    # IPI), it runs when the kthread's poll completes and it sleeps: switch 5417, copy 5617,
    # work 6617
    r = run(TWO, "host.cpus=2", "nic.combined=1", *APP[:1], "app[0].cpu=0", "app[0].work-ns=1000",
            "sysfs.threaded=true")
    assert pk(r)["t_done"].to_list() == [6617, 1_006_617]


def test_threaded_napi_has_no_budget_or_time_squeeze(tmp_path: Path) -> None:
    # the five-queue budget scenario of test_model_scenarios (netdev_budget 300 < 5 x 64 gives a
    # time_squeeze in softirq mode): threaded, each queue's kthread polls 64, repolls (weight
    # used: cond_resched, nobody has waited a slice) and takes the other 36; no NET_RX, no
    # squeeze, no ksoftirqd
    prof = slow_profile(tmp_path, hardirq=1_000_000)
    from tests.test_model_scenarios import ports_for_queues

    octets = ports_for_queues(5)
    rows = [{"ts_ns": 0, "src": f"10.0.1.{o}"} for _ in range(100) for o in octets]
    r = run(rows, "host.cpus=2", "nic.combined=5", "irq.affinity=[0,0,0,0,0]",
            'app[0].match="udp dport 9000"', "app[0].cpu=1", "app[0].rcvbuf=100000000",
            "sysfs.threaded=true", profile=prof, opts=ReplayOptions(topspeed=True))
    c = r.counters
    assert c["softirqs"]["NET_RX"] == [0, 0]
    assert c["softnet_stat"][0]["time_squeeze"] == 0
    assert c["model"]["ksoftirqd_wakeups"] == [0, 0]
    for q in range(5):
        assert c["napi"][q]["polls"] == 2
        assert c["napi"][q]["budget_exhausted"] == 1
        assert c["napi"][q]["packets"] == 100
    assert {f"napi/eth0-{8193 + q}" for q in range(5)} <= comms(r)
    assert (pk(r)["outcome"] == "delivered").all()


def test_threaded_napi_needs_no_ksoftirqd() -> None:
    # 700 waiting frames: softirq mode hands off to ksoftirqd after 10 rounds; the kthread just
    # repolls: 11 polls (10 x 64 + 60), NET_RX 0, ksoftirqd never woken
    rows = [{"ts_ns": 0} for _ in range(700)]
    r = run(rows, "host.cpus=2", "nic.combined=1", "nic.rx=1024", *APP[:2],
            "app[0].rcvbuf=100000000", "sysfs.threaded=true", opts=ReplayOptions(topspeed=True))
    c = r.counters
    assert c["napi"][0]["polls"] == 11
    assert c["napi"][0]["budget_exhausted"] == 10
    assert c["softirqs"]["NET_RX"] == [0, 0]
    assert c["model"]["ksoftirqd_wakeups"][0] == 0
    assert "ksoftirqd/0" not in comms(r) and "napi/eth0-8193" in comms(r)


# -------------------------------------------------------------------------------- wake-ups


def test_same_cpu_wake_needs_no_ipi() -> None:
    # the reader on the IRQ's CPU: ttwu_queue_cond is false for the local CPU, the reader is
    # runnable when try_to_wake_up ends (3617) and the idle task yields as the softirq ends:
    # switch 4617, copy 4817, work 5817 (the remote reader of test_two_frames_every_stage_by_hand
    # finishes at 7817: the 2000 ns of IPI + scheduler are the difference)
    r = run(TWO, "host.cpus=2", "nic.combined=1", *APP[:1], "app[0].cpu=0", "app[0].work-ns=1000")
    df = pk(r)
    assert df["t_done"].to_list() == [5817, 1_005_817]
    assert df["wait_copy"].to_list() == [1000, 1000]  # the context switch only


def test_cstate_exit_only_for_an_idle_reader_cpu() -> None:
    # host.cstate-exit-ns=3000: the IRQ's CPU leaves its idle state (+3000 before the hard IRQ);
    # a reader on another idle CPU is woken by an IPI and that CPU leaves its state too (+3000):
    # 7817 + 6000 = 13817. A reader on the IRQ's CPU finds it awake: 5817 + 3000 = 8817
    r = run(TWO, "host.cpus=2", "nic.combined=1", *APP, "host.cstate-exit-ns=3000")
    assert pk(r)["t_done"].to_list() == [13817, 1_013_817]
    r = run(TWO, "host.cpus=2", "nic.combined=1", *APP[:1], "app[0].cpu=0", "app[0].work-ns=1000",
            "host.cstate-exit-ns=3000")
    assert pk(r)["t_done"].to_list() == [8817, 1_008_817]


@pytest.mark.parametrize(("residency", "done"), [
    # 2 ms: no CPU has idled that long when its next interrupt or wake-up comes: no exit at all,
    # as with host.cstate-exit-ns=0 (test_two_frames_every_stage_by_hand's 7817)
    (2_000_000, [7817, 1_007_817]),
    # 0.5 ms: the first frame finds both CPUs idle since t=0 for less (IRQ at 1067, the IPI's
    # wake-up before 5 us): no exit; the second finds both idle for ~1 ms: +3000 twice
    (500_000, [7817, 1_013_817]),
    # 0: every idle CPU pays (test_cstate_exit_only_for_an_idle_reader_cpu)
    (0, [13817, 1_013_817]),
])  # fmt: skip
def test_cstate_exit_only_after_the_residency(residency: int, done: list[int]) -> None:
    r = run(TWO, "host.cpus=2", "nic.combined=1", *APP, "host.cstate-exit-ns=3000",
            f"host.cstate-residency-ns={residency}")  # fmt: skip
    assert pk(r)["t_done"].to_list() == done


@pytest.mark.parametrize(("exits", "residencies", "done"), [
    # two states: the shallow one from the first ns of idle (3000), the deep one after 0.5 ms
    # (7000). Frame 1 finds both CPUs idle since t=0 for under 5 us: 3000 twice, as residency 0
    # above (13817); frame 2 finds both idle for ~1 ms: 7000 twice, 1_007_817 + 14000
    ([3000, 7000], [0, 500_000], [13817, 1_021_817]),
    # three states, the deepest after 2 ms, which no idle period here reaches: frame 1 pays the
    # first (1000 twice: 9817), frame 2 the second (3000 twice: 1_013_817)
    ([1000, 3000, 7000], [0, 500_000, 2_000_000], [9817, 1_013_817]),
])  # fmt: skip
def test_the_deepest_idle_state_the_idle_time_reached(exits: list[int], residencies: list[int],
                                                      done: list[int]) -> None:
    r = run(TWO, "host.cpus=2", "nic.combined=1", *APP, f"host.cstate-exit-ns={exits}",
            f"host.cstate-residency-ns={residencies}")
    assert pk(r)["t_done"].to_list() == done


@pytest.mark.parametrize(("exits", "residencies", "says"), [
    ("[3000, 7000]", "[500000, 0]", "must increase"),
    ("[3000, 7000]", "[0]", "same length"),
    ("[1, 2, 3, 4]", "[0, 1, 2, 3]", "1 to 3 integers"),
    ("[3000, -1]", "[0, 10]", "between 0 and 1 s"),
    ("[3000, 7000]", '"auto"', "both as lists"),
])  # fmt: skip
def test_idle_state_lists_checked(exits: str, residencies: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        resolve_config(None, [f"host.cstate-exit-ns={exits}",
                              f"host.cstate-residency-ns={residencies}"])


def test_idle_state_from_the_profile(tmp_path: Path) -> None:
    # "auto" (the default) takes the profile's [idle]: the same run as residency 0.5 ms above,
    # and the numbers used are written back into the config run.json records
    p = tmp_path / "idle.toml"
    p.write_text(f'[profile]\nname = "idle"\nghz = 1.0\nbase = "{ROUND}"\n\n'
                 '[idle]\nexit-ns = 3000\nresidency-ns = 500000\nsource = "test"\n')
    cfg = resolve_config(None, [f'costs.profile="{p}"', "host.cpus=2", "nic.combined=1", *APP])
    assert cfg["host"]["cstate-exit-ns"] == "auto"
    r = simulate(frames(TWO), cfg, load_profile(str(p)), ReplayOptions())
    assert pk(r)["t_done"].to_list() == [7817, 1_013_817]
    assert (cfg["host"]["cstate-exit-ns"], cfg["host"]["cstate-residency-ns"]) == (3000, 500_000)
    # a profile's table of two states: the run of the first parametrization above
    p.write_text(f'[profile]\nname = "idle"\nghz = 1.0\nbase = "{ROUND}"\n\n'
                 '[idle]\nexit-ns = [3000, 7000]\nresidency-ns = [0, 500000]\nsource = "test"\n')
    cfg = resolve_config(None, [f'costs.profile="{p}"', "host.cpus=2", "nic.combined=1", *APP])
    r = simulate(frames(TWO), cfg, load_profile(str(p)), ReplayOptions())
    assert pk(r)["t_done"].to_list() == [13817, 1_021_817]
    assert cfg["host"]["cstate-exit-ns"] == [3000, 7000]
    # without [idle] (the published profiles): no idle-state exit
    cfg = resolve_config(None, ["host.cpus=2", "nic.combined=1", *APP])
    simulate(frames(TWO), cfg, load_profile(ROUND), ReplayOptions())
    assert (cfg["host"]["cstate-exit-ns"], cfg["host"]["cstate-residency-ns"]) == (0, 0)


# ---------------------------------------------------------------------- wake-up preemption


def busy_cpu_run(kernel: str, t_wake: int) -> tuple[list[int], int]:
    """app1 on CPU 1 reads three datagrams (1.2 ms of work each, from t=0); app0, asleep on
    CPU 1 since the start, gets one datagram at t_wake. Returns app1's t_done and app0's."""
    rows = [{"ts_ns": 0, "dport": 9001}, {"ts_ns": 1000, "dport": 9001},
            {"ts_ns": 2000, "dport": 9001}, {"ts_ns": t_wake, "dport": 9000}]
    r = run(rows, "host.cpus=2", "nic.combined=1", f'host.kernel="{kernel}"',
            'app[0].match="udp dport 9000"', "app[0].cpu=1", "app[0].work-ns=1000",
            'app[1].match="udp dport 9001"', "app[1].cpu=1", "app[1].work-ns=1200000")
    df = pk(r)
    assert (df["outcome"] == "delivered").all()
    return df.filter(pl.col("app") == 1)["t_done"].to_list(), int(df.filter(pl.col("app") == 0)["t_done"][0])


def test_cfs_wakeup_preempts_after_a_long_sleep() -> None:
    # 5.15 (CFS), 2 CPUs: wakeup granularity 1 ms x (1 + ilog2 2) = 2 ms. app0 slept 2.1 ms > 2 ms
    # while app1 ran: wakeup_preempt_entity preempts (resched IPI to CPU 1). app1 is in its second
    # datagram's work, in user mode: the return from the IPI schedules (exit_to_user_mode_loop).
    # The datagram's try_to_wake_up ends at 2_100_000 + 3617 (test_same_cpu_wake_needs_no_ipi's
    # path), the IPI arrives 1000 later, then switch 1000 + copy 200 + work 1000: 2_106_817;
    # app1's second datagram resumes after app0 and ends after it, the third later still
    a1, a0 = busy_cpu_run("5.15", 2_100_000)
    assert a0 == 2_100_000 + 3617 + 1000 + 2200
    assert a1[1] > a0 and a1[2] > a1[1]


def test_cfs_no_preemption_after_a_short_sleep() -> None:
    # the same at 1.9 ms: app0's lead is 1.9 ms < 2 ms, no preemption; app1's slice (1.5 ms from
    # its switch-in, renewed while it ran alone) covers its second datagram, so app0 waits for
    # the slice check after the third
    a1, a0 = busy_cpu_run("5.15", 1_900_000)
    assert a0 == a1[2] + 2200


def test_eevdf_run_to_parity_keeps_the_current_task() -> None:
    # 6.12 (EEVDF): a woken task with zero lag is placed at the average vruntime, the current task
    # stays eligible and RUN_TO_PARITY keeps it to the end of its (renewed) slice: app0 runs only
    # after app1's third datagram, even after the 2.1 ms sleep that preempts under CFS
    a1, a0 = busy_cpu_run("6.12", 2_100_000)
    assert a0 == a1[2] + 2200


def kthread_vs_reader(kernel: str) -> tuple[list[int], int]:
    """Threaded NAPI on CPU 0, whose reader app1 works 1.2 ms on each of three datagrams from
    t=0; a datagram for app0 (CPU 1) arrives at 2.2 ms and its IRQ wakes the kthread on CPU 0,
    asleep since its first poll ended a few us after t=0. Returns app1's t_done and the poll
    start (t_poll) of the last datagram."""
    rows = [{"ts_ns": 0, "dport": 9001}, {"ts_ns": 1000, "dport": 9001},
            {"ts_ns": 2000, "dport": 9001}, {"ts_ns": 2_200_000, "dport": 9000}]
    r = run(rows, "host.cpus=2", "nic.combined=1", f'host.kernel="{kernel}"', "sysfs.threaded=true",
            'app[0].match="udp dport 9000"', "app[0].cpu=1", "app[0].work-ns=1000",
            'app[1].match="udp dport 9001"', "app[1].cpu=0", "app[1].work-ns=1200000")
    df = pk(r)
    assert (df["outcome"] == "delivered").all()
    return df.filter(pl.col("app") == 1)["t_done"].to_list(), int(df["t_poll"][3])


def test_napi_kthread_wakeup_preemption_cfs_and_eevdf() -> None:
    # CFS (5.15): the kthread slept ~2.2 ms > the 2 ms granularity: it preempts app1, which yields
    # after its second datagram; the kthread's switch (1000) then its poll. EEVDF (6.12): app1,
    # alone past its first slice, got a new one (ends ~3 ms): the kthread waits for the check
    # after the third datagram
    a1, poll = kthread_vs_reader("5.15")
    assert poll == a1[1] + 1000
    a1, poll = kthread_vs_reader("6.12")
    assert poll == a1[2] + 1000


# ------------------------------------------------------- invariants with threaded NAPI + RPS

threaded_configs = st.fixed_dictionaries({
    "host.cpus": st.integers(2, 3),
    "nic.combined": st.integers(1, 3),
    "host.kernel": st.sampled_from(['"5.15"', '"6.6"', '"6.12"']),
    "sysfs.rps_cpus": st.sampled_from(['[]', '["0"]', '["1"]', '["0-1"]']),
    "sysfs.napi_defer_hard_irqs": st.sampled_from([0, 2]),
    "app[0].cpu": st.integers(0, 1),
    "app[0].work-ns": st.sampled_from([0, 5_000, 200_000]),
})


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(traces(), threaded_configs)
def test_threaded_napi_invariants(rows: list[dict[str, Any]], c: dict[str, Any]) -> None:
    # the latency sum and CPU conservation hold with the kthreads, RPS from their context and
    # softirqs run at their local_bh_enable; same inputs, same outputs
    sets = [f"{k}={v}" for k, v in c.items()]
    if c["sysfs.napi_defer_hard_irqs"]:
        sets.append("sysfs.gro_flush_timeout=20000")
    sets += ["sysfs.threaded=true", 'app[0].match="udp dport 9000"',
             'host.addresses=["10.0.0.1", "02:00:00:00:00:01"]']
    cfg = resolve_config(None, sets)
    r = simulate(frames(rows), cfg, PROFILE, ReplayOptions())
    p = pl.from_arrow(r.packets)
    assert isinstance(p, pl.DataFrame)
    rx = p.filter(pl.col("outcome") != "ignored")
    parts = [pl.col(f"{k}_{s}").fill_null(0) for s in STAGE_IDS for k in ("wait", "cpu")]
    chk = rx.select((pl.col("t_done") - pl.col("t_wire")).alias("lat"),
                    pl.sum_horizontal(parts).alias("sum"))
    assert (chk["lat"] == chk["sum"]).all()
    cpu = pl.from_arrow(r.cpu)
    assert isinstance(cpu, pl.DataFrame)
    by = {str(k): int(v) for k, v in cpu.filter(pl.col("stage").is_not_null())
          .group_by("stage").agg(pl.col("ns").sum()).iter_rows()}
    for s in STAGE_IDS:
        assert int(p[f"cpu_{s}"].fill_null(0).sum()) == by.get(s, 0), s
    # no NIC NAPI poll ran in NET_RX: the polls NET_RX made were the backlog's (RPS)
    if c["sysfs.rps_cpus"] == "[]":
        assert set(r.counters["softirqs"]["NET_RX"]) == {0}
    r2 = simulate(frames(rows), cfg, PROFILE, ReplayOptions())
    assert r2.packets.equals(r.packets) and r2.cpu.equals(r.cpu) and r2.counters == r.counters
