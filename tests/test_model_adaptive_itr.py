"""ixgbe's dynamic ITR (rx-usecs 1 / adaptive-rx): ixgbe_update_itr run at every
napi_complete_done, by hand. The kernel path is nearly free (tests/data/queueing-costs.toml), so
each poll cleans exactly the packets that arrived since the previous interrupt."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from replay.errors import ConfigError
from replay.model.config import resolve_config
from replay.model.costs import load_profile
from replay.model.simulate import SimResult, simulate
from replay.runner import ReplayOptions
from tests.framegen import frames

PROFILE = str(Path(__file__).parent / "data" / "queueing-costs.toml")


def run(gap_ns: int, n: int, *sets: str) -> SimResult:
    cfg = resolve_config(None, [f'costs.profile="{PROFILE}"', "host.cpus=2", "nic.combined=1",
                                "nic.rx=4096", *sets])
    rows = [{"ts_ns": i * gap_ns} for i in range(n)]
    return simulate(frames(rows), cfg, load_profile(PROFILE), ReplayOptions())


def irq_gaps_us(r: SimResult) -> list[float]:
    df = pl.from_arrow(r.packets)
    assert isinstance(df, pl.DataFrame)
    t = np.unique(df["t_irq"].to_numpy())
    return (np.diff(t) / 1000).tolist()


@pytest.mark.parametrize("knob", ["nic.rx-usecs=1", "nic.adaptive-rx=true"])
def test_itr_climbs_by_2us_until_48_packets_per_interrupt(knob: str) -> None:
    # 1 Mpps of 60-byte frames. The first update finds next_update stale: 10 us, latency mode.
    # Each later interrupt cleans gap-in-us packets: 4..47 packets -> itr + 2 us (the idle TX
    # container, 0x80 | itr + 2, loses the min); at 48 the "goldilocks" zone keeps it.
    r = run(1000, 2000, knob)
    gaps = irq_gaps_us(r)
    climb = list(range(10, 48, 2))  # 10, 12, ..., 46
    assert gaps[: len(climb)] == climb
    rest = gaps[len(climb):]
    assert rest[:-1] == [48.0] * (len(rest) - 1)
    # interrupts: the first packet's, 19 climbing gaps, then one per 48 us to the end
    spent = sum(climb)
    assert len(gaps) + 1 == 1 + len(climb) + (2000 - 1 - spent + 47) // 48
    assert r.counters["interrupts"] == {"eth0-TxRx-0": [len(gaps) + 1, 0]}


def test_itr_settles_where_an_interval_holds_48_packets() -> None:
    # 4 Mpps (250 ns): 10 us hold 40 packets -> +2 -> 12 us hold 48: kept
    r = run(250, 4000, "nic.rx-usecs=1")
    gaps = irq_gaps_us(r)
    assert gaps[0] == 10
    assert set(gaps[1:-1]) == {12}


def test_itr_at_line_rate_halves_to_the_10us_floor() -> None:
    # 60-byte frames back to back at 10G (67.2 ns): 148 packets in 10 us -> 96..255 halves
    # itr >> 3 = 5 us, floored at IXGBE_ITR_ADAPTIVE_MIN_USECS = 10
    cfg = resolve_config(None, [f'costs.profile="{PROFILE}"', "host.cpus=2", "nic.combined=1",
                                "nic.rx=4096", "nic.rx-usecs=1"])
    r = simulate(frames([{"ts_ns": 0} for _ in range(3000)]), cfg, load_profile(PROFILE),
                 ReplayOptions(topspeed=True))
    gaps = irq_gaps_us(r)
    assert {round(g, 3) for g in gaps[:-1]} == {10.0}


def test_sparse_traffic_stays_in_latency_mode() -> None:
    # one frame per 1 ms: one packet per update -> latency mode, 60 B -> 5120 >> 1 -> 10 us;
    # every interrupt fires on its packet (the gap is long past)
    r = run(1_000_000, 20, "nic.rx-usecs=1")
    df = pl.from_arrow(r.packets)
    assert isinstance(df, pl.DataFrame)
    assert (df["t_irq"] - df["t_wire"]).unique().to_list() == [0]


def test_fixed_itr_has_2us_resolution() -> None:
    # rx-usecs 25 is written as 25 << 2 and EITR masks 0xFF8: a 24 us interval
    r = run(1000, 200, "nic.rx-usecs=25")
    assert {round(g) for g in irq_gaps_us(r)[:-1]} == {24}


def test_adaptive_rx_is_refused_where_not_modelled() -> None:
    with pytest.raises(ConfigError, match="not i40e's algorithm"):
        resolve_config(None, ['nic.driver="i40e"', "nic.adaptive-rx=true"])


# ---- mlx5 net_dim (lib/dim/net_dim.c), CQE period mode: profiles 2/8/16/32/64 us, start at #1


def mlx5_dim(gap_ns: int, n: int) -> SimResult:
    return run(gap_ns, n, 'nic.driver="mlx5"', "nic.adaptive-rx=true", "nic.rx=8192")


def test_dim_climbs_to_the_longest_period_under_steady_load() -> None:
    # 1 Mpps of 60-byte frames. Every 64 interrupts net_dim compares bytes/ms (same), packets/ms
    # (same) and interrupts/ms with the last measurement:
    #  IRQ 1 starts a sample; IRQ 65: parked with no history -> "better" -> right, profile 1
    #  (unchanged: 8 us); IRQ 130 (a new sample started at 66): same rates -> turn left, profile
    #  0 (2 us); IRQ 195: 3x the interrupts -> worse -> turn right, profile 1; then each step
    #  right halves the interrupts -> better: 16, 32, 64 us; at the edge it parks on top.
    # A CQE period starts at the first completion after the re-arm, 1 us after the poll: gaps
    # are period + 1 us; at 64 us the 64-packet count fires first.
    r = mlx5_dim(1000, 60000)
    runs = [(k, len(list(v))) for k, v in itertools.groupby(round(g) for g in irq_gaps_us(r))]
    assert runs[:5] == [(9, 129), (3, 65), (9, 65), (17, 65), (33, 65)]
    assert runs[5][0] == 64 and runs[5][1] > 800


def test_dim_at_low_load_wanders_between_the_short_profiles() -> None:
    # one frame per 100 us: one packet per interrupt whatever the period, so every measurement is
    # the same: the climb turns at each decision (8, 2, 8, 2 us ...) until tired (10 steps), then
    # parks 10 decisions at 2 us before it starts again. The period is the interrupt's delay.
    r = mlx5_dim(100_000, 1500)
    df = pl.from_arrow(r.packets)
    assert isinstance(df, pl.DataFrame)
    delay = ((df["t_irq"] - df["t_wire"]) // 1000).to_list()  # one packet per interrupt
    expect = [8] * 130
    for _ in range(4):
        expect += [2] * 65 + [8] * 65
    # IRQ 715: too tired, parked at 2 us; the measurement restarts at once (no profile change),
    # so the 10 tired decisions come every 64 interrupts: 779 ... 1355, which steps right again
    expect += [2] * (1355 - 650) + [8] * 65 + [2] * 65 + [8] * (1500 - 1485)
    assert delay == expect
