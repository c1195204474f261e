"""Two run directories → perf diff: Baseline / Delta / Ratio per symbol, latency per stage side by
side, counter deltas, and a differential icicle (text, JSON and HTML).

As in `perf diff` (tools/perf/builtin-diff.c): Baseline is the baseline run's overhead %, Delta is
new% − baseline% (percentage points), Ratio is new period / baseline period — here ns of modeled
CPU time. Rows are matched on the sort keys; a row missing on one side has 0 there.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import polars as pl

from replay.report import aggregate as ag
from replay.report.stdio import HEADERS, table
from replay.store.rundir import Run


def overhead_diff(base: Run, new: Run, keys: tuple[str, ...]) -> pl.DataFrame:
    b = ag.overhead(base, keys).select(*keys, pl.col("ns").alias("base_ns"),
                                       pl.col("percent").alias("baseline"))
    n = ag.overhead(new, keys).select(*keys, pl.col("ns").alias("new_ns"),
                                      pl.col("percent").alias("new"))
    df = b.join(n, on=list(keys), how="full", coalesce=True, nulls_equal=True).with_columns(
        pl.col("base_ns", "new_ns").fill_null(0), pl.col("baseline", "new").fill_null(0.0)
    )
    return df.with_columns(
        (pl.col("new") - pl.col("baseline")).alias("delta"),
        pl.when(pl.col("base_ns") > 0).then(pl.col("new_ns") / pl.col("base_ns"))
        .otherwise(None).alias("ratio"),
    ).sort(["baseline", "new", *keys], descending=[True, True, *([False] * len(keys))])


def _flat_numbers(d: Any, prefix: str = "") -> dict[str, float]:
    """Counters block → {"softnet_stat.cpu0.processed": 3, "softirqs.NET_RX.cpu1": 0, ...}."""
    out: dict[str, float] = {}
    if isinstance(d, dict):
        for k, v in d.items():
            out.update(_flat_numbers(v, f"{prefix}{k}."))
    elif isinstance(d, list):
        for i, v in enumerate(d):
            if isinstance(v, dict) and "queue" in v:
                tag, v = f"queue{v['queue']}", {k: x for k, x in v.items() if k != "queue"}
            elif isinstance(v, dict) and "cpu" in v:
                tag, v = f"cpu{v['cpu']}", {k: x for k, x in v.items() if k != "cpu"}
            else:
                tag = f"cpu{i}"  # per-CPU count lists (softirqs, interrupts)
            out.update(_flat_numbers(v, f"{prefix}{tag}."))
    elif isinstance(d, int | float) and not isinstance(d, bool):
        out[prefix.rstrip(".")] = d
    return out


def counter_deltas(base: Run, new: Run) -> list[dict[str, Any]]:
    """Every numeric counter that differs: name, baseline, new, delta."""
    b, n = _flat_numbers(base.counters), _flat_numbers(new.counters)
    rows = []
    for k in sorted(set(b) | set(n)):
        bv, nv = b.get(k, 0), n.get(k, 0)
        if bv != nv:
            rows.append({"counter": k, "baseline": bv, "new": nv, "delta": nv - bv})
    return rows


def latency_side_by_side(base: Run, new: Run) -> list[dict[str, Any]]:
    b = {s["stage"]: s for s in ag.stage_latency(base)}
    n = {s["stage"]: s for s in ag.stage_latency(new)}
    from replay.model.stages import STAGE_IDS

    rows = []
    for s in STAGE_IDS:
        if s not in b and s not in n:
            continue
        row: dict[str, Any] = {"stage": s}
        for side, d in (("baseline", b.get(s)), ("new", n.get(s))):
            for kind in ("wait", "cpu"):
                for p in ("p50", "p99", "p999"):
                    row[f"{side}_{kind}_{p}"] = d[kind][p] if d else None
        rows.append(row)
    return rows


def diff_json(base: Run, new: Run, keys: tuple[str, ...]) -> dict[str, Any]:
    od = overhead_diff(base, new, keys)
    return {
        "baseline": {"name": base.path.name, "path": str(base.path)},
        "overhead": [{k: (round(v, 6) if isinstance(v, float) else v) for k, v in r.items()}
                     for r in od.to_dicts()],
        "latency": latency_side_by_side(base, new),
        "end_to_end": {"baseline": ag.end_to_end(base), "new": ag.end_to_end(new)},
        "counters": counter_deltas(base, new),
    }


def _n(v: Any) -> str:
    return "-" if v is None else str(v)


def render_diff_stdio(base: Run, new: Run, keys: tuple[str, ...] = ag.DEFAULT_SORT,
                      percent_limit: float = 0.0) -> str:
    od = overhead_diff(base, new, keys)
    if percent_limit > 0:
        od = od.filter((pl.col("baseline") >= percent_limit) | (pl.col("new") >= percent_limit))
    ksyms = ag.kernel_symbols(base) | ag.kernel_symbols(new) if "sym" in keys else set()
    lines = [
        f"# stack-replay diff: baseline {base.path.name} vs {new.path.name}",
        "# Event 'cpu-clock' (ns of modeled CPU time)",
        f"# Baseline event count: {ag.totals(base).cpu_ns}",
        f"# New event count:      {ag.totals(new).cpu_ns}",
        "#",
    ]
    rows = []
    for r in od.iter_rows(named=True):
        cells = [f"{r['baseline']:.2f}%" if r["base_ns"] else "",
                 f"{r['delta']:+.2f}%", "" if r["ratio"] is None else f"{r['ratio']:.6f}"]
        for k in keys:
            v = r[k]
            if k == "sym":
                cells.append(f"[{'k' if v in ksyms else '.'}] {v}")
            else:
                cells.append("[overhead]" if v is None and k == "stage" else str(v))
        rows.append(cells)
    lines += table(["Baseline", "Delta", "Ratio"] + [HEADERS[k] for k in keys], rows,
                   [True, True, True] + [k in ("cpu", "queue") for k in keys])
    lat = latency_side_by_side(base, new)
    lines += ["#", "# Latency per stage, baseline -> new (ns, nearest rank)", "#"]
    lrows = [[r["stage"]] + [f"{_n(r[f'baseline_{k}_{p}'])} -> {_n(r[f'new_{k}_{p}'])}"
                             for k in ("wait", "cpu") for p in ("p50", "p99")] for r in lat]
    lines += table(["Stage", "wait p50", "wait p99", "cpu p50", "cpu p99"], lrows,
                   [False, True, True, True, True])
    e_b, e_n = ag.end_to_end(base), ag.end_to_end(new)
    lines += ["#", f"# End to end p50 {_n(e_b['p50'])} -> {_n(e_n['p50'])}, "
              f"p99 {_n(e_b['p99'])} -> {_n(e_n['p99'])}, "
              f"p99.9 {_n(e_b['p999'])} -> {_n(e_n['p999'])}"]
    cd = counter_deltas(base, new)
    lines += ["#", "# Counter deltas (new - baseline)", "#"]
    if cd:
        lines += table(["Counter", "Baseline", "New", "Delta"],
                       [[r["counter"], str(r["baseline"]), str(r["new"]), f"{r['delta']:+d}"]
                        for r in cd], [False, True, True, True])
    else:
        lines.append("# (no counter differs)")
    return "\n".join(lines) + "\n"


def render_diff_html(base: Run, new: Run, out_path: str | os.PathLike[str] | None) -> Path:
    from replay.report.html import Page, default_report_path
    from replay.report.sections import LAYOUT, html_table

    keys = ("comm", "dso", "sym")
    od = overhead_diff(base, new, keys)
    page = Page(f"stack-replay diff: {base.path.name} → {new.path.name}",
                f"baseline {base.path} vs {new.path}")
    rows = [[(f"{r['baseline']:.2f}%", r["baseline"]), (f"{r['new']:.2f}%", r["new"]),
             (f"{r['delta']:+.2f}%", r["delta"]),
             ("" if r["ratio"] is None else f"{r['ratio']:.4f}", r["ratio"]),
             r["base_ns"], r["new_ns"], r["comm"], r["dso"], r["sym"]]
            for r in od.iter_rows(named=True)]
    page.add("overhead", "Overhead: Baseline / Delta / Ratio",
             '<input type="search" id="overhead-filter" data-table="overhead-table" '
             'placeholder="filter">' + html_table(
                 "overhead-table", ["Baseline", "New", "Delta", "Ratio", "base ns", "new ns",
                                    "Command", "Shared Object", "Symbol"],
                 rows, [True] * 6 + [False] * 3))
    lat = latency_side_by_side(base, new)
    fig = go.Figure()
    for side, color in (("baseline", "#9db4d3"), ("new", "#d9534f")):
        for kind in ("wait", "cpu"):
            fig.add_bar(x=[r["stage"] for r in lat], y=[r[f"{side}_{kind}_p99"] or 0 for r in lat],
                        name=f"{side} {kind} p99", offsetgroup=side,
                        marker_color=color, opacity=1.0 if kind == "cpu" else 0.55)
    fig.update_layout(title="p99 per stage, baseline vs new (stacked wait + CPU)",
                      barmode="relative", yaxis_title="ns", **LAYOUT)
    fig.update_layout(barmode="stack")
    lrows = [[r["stage"]] + [r[f"{s}_{k}_{p}"] for k in ("wait", "cpu") for p in ("p50", "p99")
                             for s in ("baseline", "new")] for r in lat]
    heads = ["Stage"] + [f"{k} {p} {s}" for k in ("wait", "cpu") for p in ("p50", "p99")
                         for s in ("base", "new")]
    page.add("latency", "Latency per stage, side by side",
             page.figure("latency-diff", fig)
             + html_table("latency-diff-table", heads, lrows, [False] + [True] * 8))
    # differential icicle: sizes from the new run, colour = change in share (points)
    nb, nn = ag.flame_nodes(base), ag.flame_nodes(new)
    tree = ag.icicle_tree(nn)
    tb, tn = max(int(nb["ns"].sum()), 1), max(int(nn["ns"].sum()), 1)
    bshare = {f"c/{c}/{s}": v / tb for c, s, v in nb.iter_rows()}
    for (c,), part in nb.group_by(["context"]):
        bshare[f"c/{c}"] = int(part["ns"].sum()) / tb
    bshare["all"] = 1.0
    colors = [100 * (v / tn - bshare.get(i, 0.0)) for i, v in zip(tree["ids"], tree["values"],
                                                                   strict=True)]
    icicle = go.Figure(go.Icicle(ids=tree["ids"], labels=tree["labels"], parents=tree["parents"],
                                 values=tree["values"], branchvalues="total",
                                 marker={"colors": colors, "colorscale": "RdBu_r", "cmid": 0,
                                         "showscale": True},
                                 hovertemplate="%{label}<br>%{value} ns<br>share change "
                                               "%{color:+.2f} points<extra></extra>"))
    icicle.update_layout(title="Differential view: size = new run, colour = change in share",
                         **LAYOUT)
    page.add("flame", "Differential icicle", page.figure("flame-diff", icicle, "tall"))
    cd = counter_deltas(base, new)
    page.add("counters", "Counter deltas", html_table(
        "counters-diff-table", ["Counter", "Baseline", "New", "Delta"],
        [[r["counter"], r["baseline"], r["new"], r["delta"]] for r in cd],
        [False, True, True, True]) if cd else "<p>No counter differs.</p>")
    out = Path(out_path) if out_path is not None else default_report_path(
        Path(f"{new.path.name}-vs-{base.path.name}"))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.partial-{os.getpid()}")
    tmp.write_text(page.html(), encoding="utf-8")
    tmp.replace(out)
    return out
