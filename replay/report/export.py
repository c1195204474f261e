"""Run directory → files other tools open: FlameGraph folded stacks, speedscope, Perfetto JSON.

- folded: FlameGraph's `frame;frame;frame count` lines (stackcollapse-perf.pl output), one per
  (comm, context, symbol), weighted in ns of modeled CPU time, sorted like stackcollapse sorts.
  The model records which symbol ran in which context, not full call chains, so a stack is
  `comm;context;symbol` — the root is the Command as stackcollapse-perf puts it.
- speedscope: https://www.speedscope.app/file-format-schema.json, one "sampled" profile per
  CPU with the same stacks and ns weights.
- perfetto: Chrome trace-event JSON (the "JSON trace format" Perfetto and chrome://tracing load):
  per-CPU complete events ("X") for every symbol inside its span (laid end to end from the span
  start, since cpu.parquet keeps each symbol's ns, not its offset), and the sampled packet
  journeys (aggregate.journeys) as one track per packet with flow arrows between its stages.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import polars as pl

from replay.report import aggregate as ag
from replay.report.aggregate import ReportError
from replay.store.rundir import Run, read_run

FORMATS = ("folded", "speedscope", "perfetto")


def _stacks(run: Run, by_cpu: bool = False) -> pl.DataFrame:
    keys = ["cpu"] if by_cpu else []
    return (
        run.scan("cpu")
        .select(*keys, pl.col("comm").cast(pl.String), pl.col("context").cast(pl.String),
                pl.col("symbol").cast(pl.String), "ns")
        .group_by([*keys, "comm", "context", "symbol"]).agg(pl.col("ns").sum())
        .filter(pl.col("ns") > 0)
        .with_columns(pl.concat_str(["comm", "context", "symbol"], separator=";").alias("stack"))
        .sort([*keys, "stack"])
        .collect()
    )


def folded(run: Run) -> str:
    df = _stacks(run)
    # ';' separates frames and ' ' ends the stack in the folded format: keep names parseable
    clean = [s.replace(" ", "_") for s in df["stack"].to_list()]
    return "".join(f"{s} {n}\n" for s, n in zip(clean, df["ns"].to_list(), strict=True))


def speedscope(run: Run) -> dict[str, Any]:
    df = _stacks(run, by_cpu=True)
    frames: list[dict[str, str]] = []
    index: dict[str, int] = {}

    def fid(name: str) -> int:
        if name not in index:
            index[name] = len(frames)
            frames.append({"name": name})
        return index[name]

    profiles = []
    for (cpu,), part in df.group_by(["cpu"], maintain_order=True):
        samples = [[fid(f) for f in s.split(";")] for s in part["stack"].to_list()]
        weights = [int(w) for w in part["ns"].to_list()]
        profiles.append({
            "type": "sampled", "name": f"CPU {cpu}", "unit": "nanoseconds",
            "startValue": 0, "endValue": sum(weights), "samples": samples, "weights": weights,
        })
    version = run.meta.get("tool", {}).get("version", "")
    return {
        "$schema": "https://www.speedscope.app/file-format-schema.json",
        "shared": {"frames": frames}, "profiles": profiles, "name": run.path.name,
        "activeProfileIndex": 0, "exporter": f"stack-replay {version}".strip(),
    }


def perfetto(run: Run, journeys: int = 40) -> dict[str, Any]:
    us = 1e-3  # trace-event timestamps are microseconds (floats keep the ns)
    cpu = (
        run.scan("cpu")
        .select("cpu", "start", "end", pl.col("context").cast(pl.String),
                pl.col("comm").cast(pl.String), pl.col("symbol").cast(pl.String), "ns")
        .sort(["cpu", "start", "end"], maintain_order=True)
        .with_columns(
            (pl.col("start") + pl.col("ns").cum_sum().over(["cpu", "start", "end"])
             - pl.col("ns")).alias("ts")
        )
        .collect()
    )
    ev: list[dict[str, Any]] = [
        {"ph": "M", "pid": 0, "name": "process_name", "args": {"name": "CPUs"}},
        {"ph": "M", "pid": 1, "name": "process_name", "args": {"name": "packets (sample)"}},
    ]
    for c in sorted(set(cpu["cpu"].to_list())):
        ev.append({"ph": "M", "pid": 0, "tid": c, "name": "thread_name",
                   "args": {"name": f"CPU {c}"}})
    for c, ts, ns, sym, ctx, comm in zip(
        cpu["cpu"].to_list(), cpu["ts"].to_list(), cpu["ns"].to_list(),
        cpu["symbol"].to_list(), cpu["context"].to_list(), cpu["comm"].to_list(), strict=True,
    ):
        ev.append({"ph": "X", "pid": 0, "tid": c, "ts": ts * us, "dur": ns * us, "name": sym,
                   "cat": ctx, "args": {"comm": comm}})
    for j in ag.journeys(run, journeys):
        tid = int(j["pkt"])
        ev.append({"ph": "M", "pid": 1, "tid": tid, "name": "thread_name",
                   "args": {"name": j["label"]}})
        prev_end = None
        for t_end, stage, sym, wait, cpu_ns, note in j["steps"]:
            if wait is None and cpu_ns is None:
                ev.append({"ph": "i", "pid": 1, "tid": tid, "ts": t_end * us, "s": "t",
                           "name": stage, "args": {"note": note}})
                continue
            start = t_end - (cpu_ns or 0) - (wait or 0)
            ev.append({"ph": "X", "pid": 1, "tid": tid, "ts": start * us,
                       "dur": (t_end - start) * us, "name": stage, "cat": "packet",
                       "args": {"symbol": sym, "wait_ns": wait, "cpu_ns": cpu_ns, "note": note}})
            if prev_end is not None:
                ev.append({"ph": "s", "pid": 1, "tid": tid, "ts": prev_end * us, "id": tid,
                           "name": "packet", "cat": "flow"})
                ev.append({"ph": "f", "bp": "e", "pid": 1, "tid": tid, "ts": start * us,
                           "id": tid, "name": "packet", "cat": "flow"})
            prev_end = t_end
    return {"traceEvents": ev, "displayTimeUnit": "ns",
            "metadata": {"run": run.path.name, "command": run.meta.get("command", "")}}


def export_text(run_dir: str | os.PathLike[str] | Run, fmt: str) -> str:
    run = run_dir if isinstance(run_dir, Run) else read_run(run_dir)
    if fmt == "folded":
        return folded(run)
    if fmt == "speedscope":
        return json.dumps(speedscope(run), separators=(",", ":")) + "\n"
    if fmt == "perfetto":
        return json.dumps(perfetto(run), separators=(",", ":")) + "\n"
    raise ReportError(f"--format {fmt!r}: unknown; use one of {', '.join(FORMATS)}")


def export_run(run_dir: str | os.PathLike[str], fmt: str, out: str | os.PathLike[str]) -> Path:
    """Write the export of `run_dir` in `fmt` to `out` (atomically); returns the path."""
    if fmt not in FORMATS:
        raise ReportError(f"--format {fmt!r}: unknown; use one of {', '.join(FORMATS)}")
    text = export_text(run_dir, fmt)
    p = Path(out)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.partial-{os.getpid()}")
    tmp.write_text(text)
    tmp.replace(p)
    return p
