"""packets.parquet → per-stage aggregates of one run (the rows of the sweep's dataset/)."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from replay.model.stages import STAGE_IDS


def stage_table(packets: Path) -> pl.DataFrame:
    """One row per stage id, in path order: packets that reached it (wait_S set), the wait and CPU
    percentiles (ns, nearest-rank as polars computes them), its CPU total, and its drops.

    A stage not on any packet's path has packets 0 and null percentiles.
    """
    lf = pl.scan_parquet(packets)
    aggs: list[pl.Expr] = []
    for s in STAGE_IDS:
        w, c = pl.col(f"wait_{s}"), pl.col(f"cpu_{s}")
        aggs += [
            w.count().alias(f"{s}|packets"),  # reached the stage: its wait is set
            w.quantile(0.5, "nearest").cast(pl.Int64).alias(f"{s}|wait_p50_ns"),
            w.quantile(0.99, "nearest").cast(pl.Int64).alias(f"{s}|wait_p99_ns"),
            c.quantile(0.5, "nearest").cast(pl.Int64).alias(f"{s}|cpu_p50_ns"),
            c.quantile(0.99, "nearest").cast(pl.Int64).alias(f"{s}|cpu_p99_ns"),
            c.sum().alias(f"{s}|cpu_ns"),
            (pl.col("drop_stage").cast(pl.String) == s).sum().alias(f"{s}|drops"),
        ]
    wide = lf.select(aggs).collect().row(0, named=True)
    cols = ["packets", "wait_p50_ns", "wait_p99_ns", "cpu_p50_ns", "cpu_p99_ns", "cpu_ns", "drops"]
    rows = {
        "stage": list(STAGE_IDS),
        **{c: [wide[f"{s}|{c}"] for s in STAGE_IDS] for c in cols},
    }
    return pl.DataFrame(
        rows,
        schema={"stage": pl.String, **{c: pl.Int64 for c in cols}},
    ).with_columns(pl.col("stage").cast(pl.String))
