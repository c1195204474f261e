"""ixgbe's dynamic ITR (rx-usecs 1 / adaptive-rx): ixgbe_update_itr run at every
napi_complete_done, by hand. The kernel path is nearly free (tests/data/queueing-costs.toml), so
each poll cleans exactly the packets that arrived since the previous interrupt."""

from __future__ import annotations

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
    with pytest.raises(ConfigError, match="only ixgbe's dynamic ITR"):
        resolve_config(None, ['nic.driver="mlx5"', "nic.adaptive-rx=true"])
