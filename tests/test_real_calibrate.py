"""Calibration arithmetic: run figures from a run directory, the size fit, the profile file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from replay.errors import ConfigError
from replay.model.costs import load_profile
from replay.real.calibrate import (
    _toml,
    fit,
    idle_table,
    run_figures,
    woken_idle,
    woken_latencies,
)


def test_fit_recovers_base_and_per_byte_exactly() -> None:
    lengths = np.array([106, 298, 554, 1066, 1442])
    base, pb, rel = fit(lengths, 10 + 0.5 * lengths)
    assert base == pytest.approx(10) and pb == pytest.approx(0.5) and rel == pytest.approx(0)


def test_fit_never_returns_a_cost_that_falls_with_size() -> None:
    lengths = np.array([100, 200, 300])
    base, pb, rel = fit(lengths, np.array([30.0, 20.0, 10.0]))
    assert (base, pb) == (20.0, 0.0)
    assert rel == pytest.approx(np.sqrt(200 / 3) / 20)


def test_run_figures_divide_stage_time_by_what_went_through_it(tmp_path: Path) -> None:
    meta = {
        "counters": {"snmp": {"Ip": {"InReceives": 1000}}, "softirqs": {"NET_RX": [0, 500]}},
        "real": {"sender": {"cpu": 1, "comm": "tcpreplay"}, "perf": {"wakeup_ns": 20_000}},
    }
    (tmp_path / "run.json").write_text(json.dumps(meta))
    k, u = "[kernel.kallsyms]", "tcpreplay"
    rows = [  # (cpu, context, comm, dso, symbol, stage, ns)
        (1, "task", u, k, "veth_xmit", "driver", 30_000),
        (1, "task", u, k, "enqueue_to_backlog", "netif", 50_000),
        (1, "softirq", u, k, "__netif_receive_skb_core", "backlog", 40_000),
        (1, "softirq", u, k, "__udp4_lib_rcv", "l4", 120_000),
        (1, "softirq", u, k, "process_backlog", None, 10_000),
        (1, "softirq", u, k, "net_rx_action", None, 25_000),
        (1, "task", u, k, "packet_sendmsg", None, 700_000),  # the sender's transmit: fixed.tx
        (1, "task", u, u, "main", None, 999_000),  # its user-space loop: not counted
        (0, "task", "app0", k, "udp_recvmsg", "copy", 80_000),
        (0, "task", "app0", "python3", "x", "app", 40_000),
    ]
    pl.DataFrame(rows, schema=["cpu", "context", "comm", "dso", "symbol", "stage", "ns"],
                 orient="row").with_columns(
        *(pl.col(x).cast(pl.Categorical) for x in ("context", "comm", "dso", "symbol", "stage"))
    ).write_parquet(tmp_path / "cpu.parquet")
    pl.DataFrame({"t_read": [1, 1, 2, 3]}).write_parquet(tmp_path / "messages.parquet")
    f = run_figures(tmp_path)
    assert f["driver"] == 30 and f["netif"] == 40 and f["backlog"] == 50 and f["tx"] == 700
    assert f["udp"] == 100  # (120 us - 20 us under sock_def_readable) / 1000 packets
    assert f["backlog_poll"] == 20 and f["net_rx_action"] == 50  # per NET_RX run (500)
    assert f["copy"] == 20_000 and f["app"] == 10_000  # per message (4)
    assert f["wakeup"] == 20_000 / 3  # per recv call that returned (3 distinct reads)


def test_the_written_profile_loads_and_inherits_the_rest(tmp_path: Path) -> None:
    text = _toml(
        {"stage.udp": {"base": 303.0, "per_byte": 0.0, "source": "measured"},
         "fixed.syscall": {"base": 250.5, "source": "measured"},
         "idle": {"exit-ns": [8000, 15000], "residency-ns": [1000, 9000], "source": "measured"}},
        {"name": "me", "cpu": "test", "ghz": 2.6, "kernel": "6.18", "base": "e5-1650v4",
         "traces": ["a.pcap"]},
    )
    p = tmp_path / "me.toml"
    p.write_text(text)
    prof = load_profile(str(p))
    assert prof["stage"]["udp"]["base"] == 303.0
    assert prof["fixed"]["syscall"]["base"] == 250.5
    assert prof["stage"]["ip"]["source"]  # inherited from e5-1650v4
    assert prof["profile"]["ghz"] == 2.6
    assert (prof["idle"]["exit-ns"], prof["idle"]["residency-ns"]) == ([8000, 15000], [1000, 9000])
    # a table the engine cannot take is refused when the profile loads, naming the file
    p.write_text(text.replace("residency-ns = [1000, 9000]", "residency-ns = [9000, 1000]"))
    with pytest.raises(ConfigError, match=r"me\.toml: \[idle\] residency-ns must increase"):
        load_profile(str(p))


def test_run_figures_cycle_is_the_mean_read_to_read_time_of_queued_messages(
        tmp_path: Path) -> None:
    meta = {
        "counters": {"snmp": {"Ip": {"InReceives": 4}}, "softirqs": {"NET_RX": [4]}},
        "real": {"sender": {"cpu": 0, "comm": "tcpreplay"}, "perf": {}},
    }
    (tmp_path / "run.json").write_text(json.dumps(meta))
    pl.DataFrame({"cpu": [0], "context": ["task"], "comm": ["app0"], "dso": ["python3"],
                  "symbol": ["x"], "stage": ["app"], "ns": [1]}).write_parquet(
        tmp_path / "cpu.parquet")
    # messages 2 and 4 were queued when the one before was done (t_kernel <= previous t_done);
    # message 3 arrived after the reader finished message 2: it slept, its gap is not a cycle
    pl.DataFrame({"t_kernel": [0, 500, 9_000, 9_100], "t_read": [100, 5_100, 9_200, 13_400],
                  "t_done": [600, 5_600, 9_700, 13_900]}).write_parquet(
        tmp_path / "messages.parquet")
    f = run_figures(tmp_path)
    assert f["cycle"] == (5_000 + 4_200) / 2


def test_woken_latencies_are_those_of_messages_that_found_the_reader_idle() -> None:
    msgs = pl.DataFrame({"t_kernel": [0, 500, 9_000, 20_000], "t_read": [100, 5_100, 9_200, 30_000],
                         "t_done": [600, 5_600, 9_700, 30_500]})
    # message 2 was queued while message 1 was read; 3 and 4 arrived to an idle reader
    assert woken_latencies(msgs).tolist() == [200.0, 10_000.0]
    assert len(woken_latencies(msgs.head(1))) == 0


def test_woken_idle_is_the_readers_idle_time_before_each_woken_message() -> None:
    msgs = pl.DataFrame({"t_kernel": [0, 500, 9_000, 20_000], "t_read": [100, 5_100, 9_200, 30_000],
                         "t_done": [600, 5_600, 9_700, 30_500]})
    # the woken messages 3 and 4 (test above) came 9000 - 5600 and 20000 - 9700 ns after the
    # reader finished the one before
    assert woken_idle(msgs).tolist() == [3_400.0, 10_300.0]


def test_idle_table_finds_the_halted_cpu() -> None:
    # 60 wake-ups after idles of 0.2-1.4 us take ~5 us; 40 after idles of 3-30 us take ~17 us:
    # the split falls in the gap (1.5-3 us: the first 500 ns step past 1.4 us), medians 5 and 17 us
    rng = np.random.default_rng(1)
    idle = np.concatenate([rng.uniform(200, 1_400, 60), rng.uniform(3_000, 30_000, 40)])
    lat = np.concatenate([rng.normal(5_000, 300, 60), rng.normal(17_000, 500, 40)])
    fast, deeper = idle_table(lat, idle)
    assert len(deeper) == 1 and deeper[0][0] in (1_500, 2_000, 2_500, 3_000)
    assert abs(fast - 5_000) < 300 and abs(deeper[0][1] - 17_000) < 500
    # one group only: no split, the overall median
    fast, deeper = idle_table(lat[:60], idle[:60] + 5_000)
    assert deeper == [] and abs(fast - 5_000) < 300
    assert idle_table(np.zeros(0), np.zeros(0))[1] == []


def test_idle_table_three_groups() -> None:
    # ~5 us below 1 us of idle, ~14 us from 1.6 to 8 us, ~25 us beyond 10 us (this VM without
    # perf: not yet halted, halted while the host polls, the host's vCPU thread asleep): two
    # states, at grid steps inside each gap, medians 14 and 25 us
    rng = np.random.default_rng(2)
    idle = np.concatenate([rng.uniform(100, 900, 300), rng.uniform(1_600, 8_000, 400),
                           rng.uniform(10_000, 200_000, 300)])
    lat = np.concatenate([rng.normal(5_000, 400, 300), rng.normal(14_000, 600, 400),
                          rng.normal(25_000, 800, 300)])
    fast, deeper = idle_table(lat, idle)
    assert deeper[0][0] in (1_000, 1_500) and deeper[1][0] in (8_000, 8_500, 9_000, 9_500, 10_000)
    assert abs(fast - 5_000) < 300
    assert [round(m, -3) for _, m in deeper] == [14_000, 25_000]
    # a deeper group that wakes faster is no deeper idle state: not split off
    lat2 = np.concatenate([lat[:700], rng.normal(10_000, 800, 300)])
    _, deeper2 = idle_table(lat2, idle)
    assert len(deeper2) == 1 and deeper2[0][0] in (1_000, 1_500)
