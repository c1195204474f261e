"""Run directory → the report as one JSON document (schema "stack-replay-report/1",
documented field by field in docs/report-json.md; fields are only ever added, never renamed).
"""

from __future__ import annotations

from typing import Any

from replay.report import aggregate as ag
from replay.report import analysis as an
from replay.report.labels import flow_labels
from replay.store.rundir import Run

SCHEMA = "stack-replay-report/1"


def overhead_rows(run: Run, keys: tuple[str, ...], percent_limit: float) -> list[dict[str, Any]]:
    df = ag.overhead(run, keys, percent_limit)
    ksyms = ag.kernel_symbols(run) if "sym" in keys else set()
    rows = []
    for r in df.iter_rows(named=True):
        row = {"percent": round(r["percent"], 6), "ns": int(r["ns"]), "frames": int(r["frames"])}
        row.update({k: r[k] for k in keys})
        if "sym" in keys:
            row["kernel"] = r["sym"] in ksyms
        rows.append(row)
    return rows


def run_section(run: Run) -> dict[str, Any]:
    m = run.meta
    return {"name": run.path.name, "path": str(run.path), "command": m.get("command"),
            "inputs": m.get("inputs", []), "seed": m.get("seed"),
            "tool": m.get("tool", {}), "config": m.get("config", {})}


def report_json(run: Run, keys: tuple[str, ...] = ag.DEFAULT_SORT, percent_limit: float = 0.0,
                base: Run | None = None) -> dict[str, Any]:
    """Every number of the report; with `base`, also the diff against it (perf diff)."""
    t = ag.totals(run)
    flows = ag.top_flows(run, 25)
    names = flow_labels(run, flows["flow"].to_list())
    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "run": run_section(run),
        "totals": {"cpu_ns": t.cpu_ns, "samples": t.spans, "frames": t.frames,
                   "packets": t.packets, "outcomes": t.outcomes, "duration_ns": t.duration_ns,
                   "cpus": t.ncpu},
        "sort": list(keys),
        "percent_limit": percent_limit,
        "overhead": overhead_rows(run, keys, percent_limit),
        "latency": {"stages": ag.stage_latency(run), "end_to_end": ag.end_to_end(run)},
        "drops": ag.drops(run).to_dicts(),
        "flows": [dict(r, label=names.get(r["flow"])) for r in flows.to_dicts()],
        "kernel": an.kernel_figures(run, t.duration_ns),
        "counters": run.counters,
    }
    if base is not None:
        from replay.report.diff import diff_json

        doc["diff"] = diff_json(base, run, keys)
    return doc
