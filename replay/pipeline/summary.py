"""Job records → summary.parquet (one row per job) and the hive-partitioned per-stage dataset/.

Columns of summary.parquet, in order: `job` (position in the spec), `trace`, one column per swept
knob named exactly as the spec names it, `seed`, `status` (ok | failed), `cached`, `error`, the
run.json summary flattened (frames, packets, received, delivered, dropped, consumed, ignored,
`drops_<REASON>` per drop reason, `latency_<stat>_ns`, duration_ns), `key`, `run` and `report`
(paths relative to the output folder), then the columns that time the job itself, which carry
`wall` in their name (`wall_s`: the job in its worker; `run_wall_s`: the replay inside it), so a
comparison of two sweeps can drop them with one filter.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import polars as pl

from replay.pipeline.jobs import STAGES_FILE, PlannedJob

LATENCY_STATS = ("mean", "p50", "p90", "p99", "p999", "max")
COUNTS = ("frames", "packets", "received", "delivered", "dropped", "consumed", "ignored")


def knob_series(name: str, values: list[Any]) -> pl.Series:
    """A knob's values as one typed column; mixed or nested values become their TOML-ish text."""
    if all(isinstance(v, bool) for v in values) or not any(
        isinstance(v, list | dict) for v in values
    ):
        try:
            return pl.Series(name, values, strict=True)
        except (TypeError, pl.exceptions.PolarsError):
            pass
    return pl.Series(
        name, [v if isinstance(v, str) else json.dumps(v) for v in values], dtype=pl.String
    )


def _flat_summary(s: dict[str, Any] | None) -> dict[str, Any]:
    s = s or {}
    out: dict[str, Any] = {
        "frames": s.get("frames"),
        "packets": s.get("packets"),
        "received": s.get("received"),
    }
    oc = s.get("outcomes") or {}
    for k in ("delivered", "dropped", "consumed", "ignored"):
        out[k] = oc.get(k)
    for d in s.get("drops") or []:
        col = f"drops_{d['reason']}"
        out[col] = out.get(col, 0) + int(d["count"])
    lat = s.get("latency_ns") or {}
    for k in LATENCY_STATS:
        out[f"latency_{k}_ns"] = lat.get(k)
    out["duration_ns"] = s.get("duration_ns")
    return out


def summary_frame(planned: list[PlannedJob], knob_names: tuple[str, ...]) -> pl.DataFrame:
    rows = []
    reasons: set[str] = set()
    for pj in planned:
        rec = pj.record
        flat = _flat_summary(rec.get("summary")) if rec.get("status") == "ok" else {}
        reasons.update(k for k in flat if k.startswith("drops_"))
        ok = rec.get("status") == "ok"
        rows.append(
            {
                "job": pj.job.index,
                "trace": pj.job.trace_label,
                "seed": pj.seed,
                "status": rec.get("status", "failed"),
                "cached": bool(rec.get("cached", False)),
                "error": rec.get("error"),
                **flat,
                "key": pj.key,
                "run": f"runs/{pj.dir_name}" if ok else None,
                "report": f"runs/{pj.dir_name}/report.html"
                if ok and rec.get("has_report")
                else None,
                "wall_s": rec.get("wall_s"),
                "run_wall_s": rec.get("run_wall_s"),
            }
        )
    cols: dict[str, pl.Series] = {
        "job": pl.Series("job", [r["job"] for r in rows], dtype=pl.Int64),
        "trace": pl.Series("trace", [r["trace"] for r in rows], dtype=pl.String),
    }
    for k in knob_names:
        if k != "seed":
            cols[k] = knob_series(k, [pj.job.knobs[k] for pj in planned])
    ints = [*COUNTS, *sorted(reasons), *(f"latency_{k}_ns" for k in LATENCY_STATS), "duration_ns"]
    for name, dtype in (
        ("seed", pl.Int64),
        ("status", pl.String),
        ("cached", pl.Boolean),
        ("error", pl.String),
        *((c, pl.Int64) for c in ints),
        ("key", pl.String),
        ("run", pl.String),
        ("report", pl.String),
        ("wall_s", pl.Float64),
        ("run_wall_s", pl.Float64),
    ):
        vals = [r.get(name) for r in rows]
        if name.startswith("drops_"):
            vals = [
                v if v is not None else (0 if r["status"] == "ok" else None)
                for v, r in zip(vals, rows, strict=True)
            ]
        cols[name] = pl.Series(name, vals, dtype=dtype)
    return pl.DataFrame(list(cols.values()))


def write_atomic_parquet(df: pl.DataFrame, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    df.write_parquet(tmp, compression="zstd")
    tmp.replace(path)


def write_dataset(
    planned: list[PlannedJob], summary: pl.DataFrame, out: Path, knob_cols: list[str]
) -> Path:
    """dataset/trace=<trace>/<key>.parquet: each finished job's per-stage rows with its knobs.

    Read it with `pl.scan_parquet("OUT/dataset/**/*.parquet", hive_partitioning=True)`.
    Rebuilt from the job folders on every pipeline run (a few ms per job) into a temporary
    folder that replaces the old one, so it always matches summary.parquet.
    """
    final = out / "dataset"
    tmp = out / f".dataset.{os.getpid()}.{uuid.uuid4().hex[:6]}.tmp"
    tmp.mkdir(parents=True)
    by_job = {
        r["job"]: r
        for r in summary.select(["job", *knob_cols, "seed", "key"]).iter_rows(named=True)
    }
    for pj in planned:
        if pj.record.get("status") != "ok":
            continue
        f = out / "runs" / pj.dir_name / STAGES_FILE
        if not f.exists():
            continue
        row = by_job[pj.job.index]
        df = pl.read_parquet(f).with_columns(
            *(
                pl.lit(row[c], dtype=summary.schema[c]).alias(c)
                for c in (*knob_cols, "seed", "key")
            ),
        )
        part = tmp / f"trace={quote(pj.job.trace_label, safe='')}"
        part.mkdir(exist_ok=True)
        df.write_parquet(part / f"{pj.dir_name}.parquet", compression="zstd")
    old = None
    if final.exists():
        old = out / f".dataset.old.{os.getpid()}.{uuid.uuid4().hex[:6]}"
        final.rename(old)
    tmp.rename(final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return final
