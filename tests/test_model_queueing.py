"""Queueing theory where it applies: a Poisson stream into one UDP socket whose reader does a
fixed amount of work per datagram is an M/D/1 queue; when the reader sleeps on an empty queue,
the wake-up latency is a set-up time (M/D/1 with set-up, Takagi 1991 vol. 1 §2.5).

The profile (tests/data/queueing-costs.toml) makes the kernel path nearly free and the reader's
system call and context switch cost nothing, so the socket's arrivals are the wire's, shifted by
a constant, and the service time is exactly copy + consume + work."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pytest

from replay.model.config import resolve_config
from replay.model.costs import load_profile
from replay.model.simulate import simulate
from replay.runner import ReplayOptions
from tests.framegen import frames

PROFILE = str(Path(__file__).parent / "data" / "queueing-costs.toml")
N = 100_000
COPY_CONSUME = 200  # [stage.copy] 100 + [fixed.consume] 100 in round-costs.toml
SETUP = 2000  # [latency.wakeup] in round-costs.toml


def poisson_frames(rate_per_ns: float, n: int, seed: int) -> pa.Table:
    """n copies of one UDP datagram at Poisson times (exponential gaps, whole ns)."""
    rng = np.random.default_rng(seed)
    ts = np.cumsum(np.maximum(1, np.round(rng.exponential(1 / rate_per_ns, n)))).astype(np.int64)
    one = frames([{"ts_ns": 0}])
    t = one.take(np.zeros(n, dtype=np.int64))
    t = t.set_column(t.schema.get_field_index("ts_ns"), "ts_ns", pa.array(ts, pa.int64()))
    return t.set_column(t.schema.get_field_index("frame"), "frame",
                        pa.array(np.arange(1, n + 1), t.schema.field("frame").type))


def run_queue(rate_per_ns: float, work: int, setup: int, seed: int) -> pl.DataFrame:
    cfg = resolve_config(None, [
        f'costs.profile="{PROFILE}"', "host.cpus=2", "nic.combined=1", "nic.rx=4096",
        "nic.rx-usecs=0", 'app[0].match="udp dport 9000"', "app[0].cpu=1",
        f"app[0].work-ns={work}", "app[0].rcvbuf=1000000000",
    ])
    prof = load_profile(PROFILE)
    prof["latency"]["wakeup"]["base"] = setup
    r = simulate(poisson_frames(rate_per_ns, N, seed), cfg, prof, ReplayOptions())
    df = pl.from_arrow(r.packets)
    assert isinstance(df, pl.DataFrame)
    assert (df["outcome"] == "delivered").all()
    # the socket-enqueue time: everything before the reader's copy
    return df.select(
        (pl.col("t_done") - pl.col("wait_copy") - pl.col("cpu_copy") - pl.col("wait_app")
         - pl.col("cpu_app")).alias("t_enq"),
        pl.col("wait_copy").alias("wait"),
    )


def lindley(t_enq: np.ndarray, service: int, setup: int) -> np.ndarray:
    """Each datagram's wait by hand: served in order; a reader that found the queue empty
    sleeps, and one arriving to a sleeping reader waits the set-up time first (one arriving the
    very nanosecond the reader finishes is found by its next recvmsg)."""
    w = np.empty(len(t_enq), dtype=np.int64)
    free = np.iinfo(np.int64).min
    for i, t in enumerate(t_enq.tolist()):
        start = t + setup if t > free else free
        w[i] = start - t
        free = start + service
    return w


def takagi_wait(lam: float, d: float, s: float) -> float:
    """Mean wait in M/G/1 with set-up times, deterministic service d and set-up s:
    λE[X²]/(2(1-ρ)) + (2E[S] + λE[S²]) / (2(1 + λE[S]))."""
    rho = lam * d
    return lam * d * d / (2 * (1 - rho)) + (2 * s + lam * s * s) / (2 * (1 + lam * s))


@pytest.mark.parametrize(("rho", "setup"), [(0.5, 0), (0.8, 0), (0.5, SETUP), (0.8, SETUP)])
def test_one_socket_is_md1(rho: float, setup: int) -> None:
    work = 4800
    service = COPY_CONSUME + work
    lam = rho / service
    df = run_queue(lam, work, setup, seed=7)
    t_enq = df["t_enq"].to_numpy()
    # the kernel path adds the same delay to every datagram: the socket sees a Poisson stream
    wait = df["wait"].to_numpy()
    # every datagram's wait is the single-server queue's, to the nanosecond
    np.testing.assert_array_equal(wait, lindley(t_enq, service, setup))
    # and the mean is queueing theory's (100,000 datagrams: a few % of sampling error at ρ=0.8)
    expect = takagi_wait(lam, service, setup)
    assert wait.mean() == pytest.approx(expect, rel=0.04 if rho > 0.6 else 0.025)


def test_busy_fraction_is_rho() -> None:
    # the reader's CPU is busy ρ of the time (plus the near-free kernel path on CPU 0)
    work, rho = 4800, 0.5
    service = COPY_CONSUME + work
    df = run_queue(rho / service, work, 0, seed=11)
    span = int(df["t_enq"].max() - df["t_enq"].min())
    assert len(df) * service / span == pytest.approx(rho, rel=0.02)
