"""events.parquet + cpu.parquet → what a kernel engineer looks for (mpstat-like %hi/%si over time,
softirq raise→entry latency, ksoftirqd delay, work per napi_poll, time_squeeze split, GRO ratio,
IRQ rate and RSS imbalance per queue and CPU, ring/backlog/socket occupancy and drops over time).

All outputs are bounded: time series are binned (at most `bins` points per series), latencies are
reduced to nearest-rank percentiles.
"""

from __future__ import annotations

import math
from typing import Any

import polars as pl

from replay.report.aggregate import PERCENTILES, _quantiles
from replay.store.rundir import Run

DEFAULT_BINS = 200


def _bin_ns(duration_ns: int, bins: int) -> int:
    return max(1, math.ceil(max(duration_ns, 1) / bins))


def _events(run: Run) -> pl.LazyFrame:
    return run.scan("events").with_columns(pl.col("kind").cast(pl.String),
                                           pl.col("detail").cast(pl.String))


def cpu_timeline(run: Run, duration_ns: int, bins: int = DEFAULT_BINS) -> dict[str, Any]:
    """Per CPU and context, the share (%) of each time bin spent, like mpstat's %irq/%soft.

    A span's symbol time is spread over the bins the span overlaps, in proportion to the
    overlap (cpu.parquet keeps each symbol's ns in the span, not where in the span it ran).
    """
    w = _bin_ns(duration_ns, bins)
    span = pl.col("end") - pl.col("start")
    df = (
        run.scan("cpu")
        .select("cpu", pl.col("context").cast(pl.String), "start", "end", "ns")
        .with_columns(pl.int_ranges(pl.col("start") // w,
                                    pl.max_horizontal(pl.col("end") - 1, pl.col("start")) // w
                                    + 1).alias("bin"))
        .explode("bin")
        .with_columns(
            pl.when(span > 0)
            .then(pl.col("ns") * (pl.min_horizontal(pl.col("end"), (pl.col("bin") + 1) * w)
                                  - pl.max_horizontal(pl.col("start"), pl.col("bin") * w))
                  / span)
            .otherwise(pl.col("ns").cast(pl.Float64)).alias("ns")
        )
        .group_by(["cpu", "context", "bin"]).agg(pl.col("ns").sum())
        .sort(["cpu", "context", "bin"]).collect()
    )
    series: dict[str, dict[str, list[float]]] = {}
    for (cpu, ctx), part in df.group_by(["cpu", "context"], maintain_order=True):
        pct = [0.0] * bins
        for b, ns in zip(part["bin"].to_list(), part["ns"].to_list(), strict=True):
            if 0 <= b < bins:
                pct[b] += 100.0 * ns / w
        series.setdefault(str(cpu), {})[str(ctx)] = [round(min(p, 100.0), 3) for p in pct]
    return {"bin_ns": w, "bins": bins, "cpus": series}


def occupancy(run: Run, duration_ns: int, bins: int = DEFAULT_BINS) -> dict[str, Any]:
    """Max ring / backlog / socket occupancy per bin, and drops per bin by reason."""
    w = _bin_ns(duration_ns, bins)
    ev = (
        _events(run).filter(pl.col("kind").is_in(["ring", "backlog", "sock"]))
        .with_columns((pl.col("t") // w).alias("bin"),
                      pl.when(pl.col("kind") == "backlog").then(pl.col("cpu"))
                      .otherwise(pl.col("queue")).alias("who"))
        .group_by(["kind", "who", "bin"]).agg(pl.col("value").max())
        .sort(["kind", "who", "bin"]).collect()
    )
    occ: dict[str, dict[str, list[int | None]]] = {}
    for (kind, who), part in ev.group_by(["kind", "who"], maintain_order=True):
        vals: list[int | None] = [None] * bins
        for b, v in zip(part["bin"].to_list(), part["value"].to_list(), strict=True):
            if 0 <= b < bins:
                vals[b] = v
        occ.setdefault(str(kind), {})[str(who)] = vals
    dr = (
        run.scan("packets").filter(pl.col("outcome") == "dropped")
        .select(pl.col("drop_reason").cast(pl.String), (pl.col("t_done") // w).alias("bin"))
        .group_by(["drop_reason", "bin"]).len().sort(["drop_reason", "bin"]).collect()
    )
    drops: dict[str, list[int]] = {}
    for (reason,), part in dr.group_by(["drop_reason"], maintain_order=True):
        counts = [0] * bins
        for b, n in zip(part["bin"].to_list(), part["len"].to_list(), strict=True):
            if b is not None and 0 <= b < bins:
                counts[b] += n
        drops[str(reason)] = counts
    return {"bin_ns": w, "bins": bins, "occupancy": occ, "drops": drops}


def _delay(run: Run, from_kind: str, to_filter: pl.Expr) -> dict[str, int | None]:
    """Percentiles of (first matching net_rx start at or after t) - t, per CPU as-of join."""
    ev = _events(run)
    src = ev.filter(pl.col("kind") == from_kind).select("cpu", "t").sort("t")
    dst = ev.filter(to_filter).select("cpu", pl.col("t").alias("t_run")).sort("t_run")
    j = src.join_asof(dst, left_on="t", right_on="t_run", by="cpu", strategy="forward",
                      check_sortedness=False)
    lf = j.select((pl.col("t_run") - pl.col("t")).alias("d"))
    return _quantiles(lf, ["d"])["d"]


def kernel_figures(run: Run, duration_ns: int) -> dict[str, Any]:
    """The single figures issue 6 lists, each computed from events/packets/cpu."""
    ev = _events(run)
    cfg = run.meta.get("config", {})
    weight = int(cfg.get("sysctl", {}).get("net.core.dev_weight", 64) or 64)
    polls = ev.filter(pl.col("kind") == "poll")
    hist = polls.group_by("value").len().sort("value").collect()
    exits = dict(polls.group_by("detail").len().collect().iter_rows())
    n_polls = int(hist["len"].sum()) if hist.height else 0
    whole = int(hist.filter(pl.col("value") >= weight)["len"].sum()) if hist.height else 0
    squeeze = dict(ev.filter(pl.col("kind") == "squeeze").group_by("detail").len()
                   .collect().iter_rows())
    pk = run.scan("packets").filter(pl.col("cpu_gro").is_not_null())
    g = pk.select(pl.len().alias("segments"), pl.col("skb").n_unique().alias("skbs")).collect()
    segs, skbs = int(g["segments"][0]), int(g["skbs"][0])
    secs = duration_ns / 1e9 if duration_ns else 0.0
    irq = (ev.filter(pl.col("kind") == "irq").group_by("queue").len().sort("queue").collect())
    per_q = (run.scan("packets").filter(pl.col("queue").is_not_null()).group_by("queue").len()
             .sort("queue").collect())
    per_cpu = run.scan("cpu").group_by("cpu").agg(pl.col("ns").sum()).sort("cpu").collect()

    def imbalance(vals: list[int]) -> float | None:
        return round(max(vals) / (sum(vals) / len(vals)), 4) if vals and sum(vals) else None

    return {
        "napi_poll_work": {
            "weight": weight, "polls": n_polls, "whole_weight": whole,
            "whole_weight_ratio": round(whole / n_polls, 6) if n_polls else None,
            "histogram": [{"work": int(v), "polls": int(n)}
                          for v, n in hist.iter_rows() if v is not None],
            "exit": {str(k): int(v) for k, v in exits.items() if k is not None},
        },
        "time_squeeze": {"budget": int(squeeze.get("budget", 0)),
                         "time": int(squeeze.get("time", 0))},
        "gro": {"segments": segs, "skbs": skbs,
                "ratio": round(segs / skbs, 4) if skbs else None},
        "irq": [{"queue": int(q), "irqs": int(n),
                 "per_second": round(n / secs, 1) if secs else None}
                for q, n in irq.iter_rows() if q is not None],
        "rss": {
            "packets_per_queue": {str(q): int(n) for q, n in per_q.iter_rows()},
            "queue_imbalance": imbalance([int(n) for n in per_q["len"].to_list()]),
            "cpu_ns": {str(c): int(n) for c, n in per_cpu.iter_rows()},
            "cpu_imbalance": imbalance([int(n) for n in per_cpu["ns"].to_list()]),
        },
        # raise→entry: IRQ raised (the softirq is raised in its handler) → next net_rx_action
        # start on that CPU; ksoftirqd delay: wake-up → next net_rx run by ksoftirqd there
        "softirq_raise_to_entry_ns": _delay(run, "irq", pl.col("kind") == "net_rx"),
        "ksoftirqd_delay_ns": _delay(
            run, "ksoftirqd_wake",
            (pl.col("kind") == "net_rx") & (pl.col("detail") == "ksoftirqd")),
    }


def percentile_names() -> list[str]:
    return [k for k, _ in PERCENTILES]
