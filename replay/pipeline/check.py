"""A sweep's summary + a baseline summary + thresholds → the thresholds crossed (for CI).

Rows are matched on (trace, every swept knob, seed). A threshold is an allowed *increase* of a
summary column over the baseline: "10%" (relative to the baseline value) or a number (absolute,
in the column's unit). A job that fails now but succeeded in the baseline also counts as crossed;
jobs missing from either side are notes, not failures, so adding a trace does not break CI.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from replay.errors import PipelineError
from replay.pipeline.spec import Check


def load_baseline(path: Path) -> pl.DataFrame:
    p = path / "summary.parquet" if path.is_dir() else path
    if not p.is_file():
        raise PipelineError(
            f"{path}: no baseline summary; make one with `replay pipeline SPEC --write-baseline`"
        )
    try:
        return pl.read_csv(p) if p.suffix == ".csv" else pl.read_parquet(p)
    except (OSError, pl.exceptions.PolarsError) as e:
        raise PipelineError(f"{p}: cannot read the baseline summary ({e})") from None


def _allowed(base: float, threshold: float | str) -> float:
    if isinstance(threshold, str):
        return abs(base) * float(threshold[:-1]) / 100.0
    return float(threshold)


def _fmt_point(row: dict[str, Any], keys: list[str]) -> str:
    return " ".join(f"{k}={row[k]}" for k in keys)


def run_check(current: pl.DataFrame, check: Check, knobs: list[str]) -> tuple[list[str], list[str]]:
    """(failures, notes): one line per crossed threshold, per regression, per unmatched job."""
    base = load_baseline(check.baseline)
    keys = ["trace", *knobs, "seed"]
    missing = [k for k in keys if k not in base.columns]
    if missing:
        raise PipelineError(
            f"{check.baseline}: the baseline has no column(s) {', '.join(missing)}; it must "
            "come from a run of the same sweep (same knobs)"
        )
    cols = list(check.thresholds)
    for c in cols:
        for name, df in (("the sweep", current), ("the baseline", base)):
            if c not in df.columns and not c.startswith("drops_"):
                raise PipelineError(
                    f"[check.thresholds] {c}: {name} has no such column; summary columns are "
                    f"{', '.join(x for x in current.columns if x not in keys)}"
                )

    def prep(df: pl.DataFrame) -> pl.DataFrame:
        extra = [pl.lit(0, pl.Int64).alias(c) for c in cols if c not in df.columns]
        df = df.with_columns(extra).with_columns(pl.col(k).cast(pl.String) for k in keys)
        return df.select([*keys, "status", *cols])

    cur, bl = prep(current), prep(base)
    joined = cur.join(bl, on=keys, how="full", suffix="_base", coalesce=True, nulls_equal=True)
    failures: list[str] = []
    notes: list[str] = []
    for row in joined.iter_rows(named=True):
        where = _fmt_point(row, keys)
        if row["status"] is None:
            notes.append(f"{where}: in the baseline but not in this sweep")
            continue
        if row["status_base"] is None:
            notes.append(f"{where}: not in the baseline")
            continue
        if row["status"] != "ok":
            if row["status_base"] == "ok":
                failures.append(f"{where}: failed now, succeeded in the baseline")
            continue
        if row["status_base"] != "ok":
            notes.append(f"{where}: failed in the baseline, so it has nothing to compare with")
            continue
        for c, t in check.thresholds.items():
            now, was = row[c], row[f"{c}_base"]
            if now is None or was is None:
                continue
            allowed = _allowed(float(was), t)
            if float(now) - float(was) > allowed:
                rel = f" ({(now - was) / was:+.1%})" if was else ""
                failures.append(f"{where}: {c} {was} → {now}{rel}, allowed increase {t}")
    return failures, notes


BASELINE_DROP = ("cached", "error", "key", "run", "report")


def write_baseline(current: pl.DataFrame, check: Check) -> Path:
    """This sweep's summary as the check's new baseline (accepting today's numbers).

    Only the deterministic columns are kept (no wall times, paths or cache state), so a
    committed CSV baseline changes in review exactly where the model's results changed.
    """
    keep = [c for c in current.columns if c not in BASELINE_DROP and "wall" not in c]
    df = current.select(keep)
    p = check.baseline / "summary.parquet" if check.baseline.is_dir() else check.baseline
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.tmp")
    if p.suffix == ".csv":
        df.write_csv(tmp)
    else:
        df.write_parquet(tmp)
    tmp.replace(p)
    return p
